package s3gw

import (
	"context"
	"strings"
)

// guardListing keeps a listing (ListObjects v1/v2, ListObjectVersions,
// ListMultipartUploads)
// from revealing key names under mounts the caller may not list. A listing
// of prefix reaches into every mount whose Prefix is longer and starts with
// it; the caller must be allowed action there as that mount's role (with
// the usual entitlement check, through decideAt), unless the delimiter
// folds the whole mount into one common prefix that is itself part of the
// mount's path (e.g. "hr/" when listing "" with delimiter "/"), which names
// no key. Otherwise the whole listing is refused with AccessDenied (fail
// closed): filtering entries out would page unpredictably and could still
// leak names through continuation tokens. See docs/design/0012-mounts.md.
func (g *Gateway) guardListing(ctx context.Context, rq *request, action, prefix, delimiter string) error {
	if g.o.Mounts == nil {
		return nil
	}
	ms, err := g.o.Mounts.MountsUnder(ctx, rq.bucket, prefix)
	if err != nil {
		rq.denyReason = "mount lookup failed: " + err.Error()
		e := errAccessDenied()
		e.Err = err
		return e
	}
	for _, m := range ms {
		if foldsInto(prefix, delimiter, m.Prefix) {
			continue
		}
		extra := map[string][]string{}
		if action == "s3:ListBucket" || action == "s3:ListBucketVersions" {
			extra["s3:prefix"] = []string{m.Prefix}
		}
		if err := g.checkAt(ctx, rq, action, bucketARN(rq.bucket), m.Prefix, extra); err != nil {
			return err
		}
	}
	return nil
}

// foldsInto reports whether, listing prefix with delimiter, every key under
// mountPrefix is rolled up into a common prefix that is a prefix of
// mountPrefix (so the listing shows at most part of the mount's path).
func foldsInto(prefix, delimiter, mountPrefix string) bool {
	if delimiter == "" {
		return false
	}
	return strings.Contains(mountPrefix[len(prefix):], delimiter)
}
