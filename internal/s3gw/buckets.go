package s3gw

import (
	"bytes"
	"encoding/base64"
	"encoding/xml"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/gatehouse-dev/gatehouse/internal/s3gw/backend"
	"github.com/gatehouse-dev/gatehouse/internal/s3name"
)

func (g *Gateway) owner(rq *request) owner {
	account, _ := splitRoleARN(rq.claims.RoleARN)
	return owner{ID: account, DisplayName: account}
}

// listBuckets answers ListBuckets. A caller allowed s3:ListAllMyBuckets
// sees every bucket (AWS's behaviour). Any other caller sees the buckets it
// may list at their root (s3:ListBucket with s3:prefix "", each decided by
// the Authorizer like any request: role ∩ session policy), as MinIO does;
// the access record names the buckets shown. A caller who may list none is
// refused with the s3:ListAllMyBuckets denial. Buckets are sorted by name,
// as AWS answers, and paged with prefix, max-buckets and continuation-token
// (bucketPage).
func (g *Gateway) listBuckets(w *respWriter, rq *request) error {
	ctx := rq.r.Context()
	page, err := g.bucketPage(rq)
	if err != nil {
		return err
	}
	all, reason, err := g.decideAt(ctx, rq, "s3:ListAllMyBuckets", allBucketsARN, "", nil)
	if err != nil || !all {
		return g.listVisibleBuckets(w, rq, page)
	}
	rq.decisions = append(rq.decisions, reason)
	bctx, wait := g.accessOverlapped(ctx, rq)
	bs, err := g.o.Backend.ListBuckets(bctx)
	if aerr := wait(); aerr != nil {
		return aerr
	}
	if err != nil {
		return err
	}
	g.writeBuckets(w, rq, page, page.filter(bs))
	return nil
}

// listVisibleBuckets is listBuckets for a caller without
// s3:ListAllMyBuckets. The backend is read before the access record, which
// depends on its answer; nothing is written until the record is durable.
func (g *Gateway) listVisibleBuckets(w *respWriter, rq *request, page bucketPage) error {
	ctx := rq.r.Context()
	bs, err := g.o.Backend.ListBuckets(ctx)
	if err != nil {
		return err
	}
	root := map[string][]string{"s3:prefix": {""}}
	var shown []backend.BucketInfo
	var names []string
	for _, b := range page.filter(bs) {
		ok, reason, err := g.decideAt(ctx, rq, "s3:ListBucket", bucketARN(b.Name), "", root)
		if err != nil {
			return g.check(ctx, rq, "s3:ListAllMyBuckets", allBucketsARN, nil)
		}
		if ok {
			shown = append(shown, b)
			names = append(names, b.Name)
			rq.decisions = append(rq.decisions, b.Name+": "+reason)
		}
	}
	if len(shown) == 0 && !page.narrowed() {
		return g.check(ctx, rq, "s3:ListAllMyBuckets", allBucketsARN, nil)
	}
	slices.Sort(names)
	rq.params["visibleBuckets"] = names
	if err := g.access(ctx, rq); err != nil {
		return err
	}
	g.writeBuckets(w, rq, page, shown)
	return nil
}

// bucketPage selects one page of ListBuckets: names starting with prefix,
// after the continuation token (the last name of the previous page), at
// most max of them, in bucket-region (every bucket is in the gateway's
// region).
type bucketPage struct {
	prefix, token, after string
	max                  int
	otherRegion          bool
}

// maxBuckets is the largest (and default) max-buckets (AWS: 10,000).
const maxBuckets = 10000

// bucketPage reads ListBuckets' parameters and records them.
func (g *Gateway) bucketPage(rq *request) (bucketPage, error) {
	q := rq.r.URL.Query()
	p := bucketPage{prefix: q.Get("prefix"), token: q.Get("continuation-token"), max: maxBuckets}
	rq.params = map[string]any{}
	for _, k := range []string{"prefix", "continuation-token", "max-buckets", "bucket-region"} {
		if v, ok := q[k]; ok {
			rq.params[k] = v[0]
		}
	}
	if v, ok := q["max-buckets"]; ok {
		n, err := strconv.Atoi(v[0])
		if err != nil || n < 1 || n > maxBuckets {
			return p, errInvalidArgument("Argument max-buckets must be an integer between 1 and 10000.")
		}
		p.max = n
	}
	if p.token != "" {
		raw, err := base64.RawURLEncoding.DecodeString(p.token)
		if err != nil || s3name.Bucket(string(raw)) != nil {
			return p, errInvalidArgument("The continuation token provided is incorrect")
		}
		p.after = string(raw)
	}
	if r := q.Get("bucket-region"); r != "" && r != g.o.Region {
		p.otherRegion = true
	}
	return p, nil
}

// narrowed reports whether the page asks for less than every bucket: an
// empty answer is then an answer, not a refusal.
func (p bucketPage) narrowed() bool {
	return p.prefix != "" || p.after != "" || p.otherRegion
}

// filter returns the buckets of bs the page's prefix, token and region
// select, sorted by name, without the max-buckets cut.
func (p bucketPage) filter(bs []backend.BucketInfo) []backend.BucketInfo {
	if p.otherRegion {
		return nil
	}
	slices.SortFunc(bs, func(a, b backend.BucketInfo) int { return strings.Compare(a.Name, b.Name) })
	out := bs[:0:0]
	for _, b := range bs {
		if strings.HasPrefix(b.Name, p.prefix) && b.Name > p.after {
			out = append(out, b)
		}
	}
	return out
}

// writeBuckets writes the ListAllMyBucketsResult of the first page.max of
// bs (sorted and filtered), with the token of the next page when there is
// one.
func (g *Gateway) writeBuckets(w *respWriter, rq *request, page bucketPage, bs []backend.BucketInfo) {
	res := listAllMyBucketsResult{NS: s3NS, Owner: g.owner(rq), Buckets: []bucketXML{}, Prefix: page.prefix}
	if len(bs) > page.max {
		bs = bs[:page.max]
		res.ContinuationToken = base64.RawURLEncoding.EncodeToString([]byte(bs[len(bs)-1].Name))
	}
	for _, b := range bs {
		res.Buckets = append(res.Buckets, bucketXML{Name: b.Name, CreationDate: xmlTime(b.Created), BucketRegion: g.o.Region})
	}
	writeXML(w, http.StatusOK, res)
}

func (g *Gateway) headBucket(w *respWriter, rq *request) error {
	ctx := rq.r.Context()
	if err := g.check(ctx, rq, "s3:ListBucket", bucketARN(rq.bucket), nil); err != nil {
		return err
	}
	if err := g.access(ctx, rq); err != nil {
		return err
	}
	if err := g.o.Backend.HeadBucket(ctx, rq.bucket); err != nil {
		return err
	}
	w.Header().Set("x-amz-bucket-region", g.o.Region)
	w.WriteHeader(http.StatusOK)
	return nil
}

func (g *Gateway) getBucketLocation(w *respWriter, rq *request) error {
	ctx := rq.r.Context()
	if err := g.check(ctx, rq, "s3:GetBucketLocation", bucketARN(rq.bucket), nil); err != nil {
		return err
	}
	if err := g.access(ctx, rq); err != nil {
		return err
	}
	if err := g.o.Backend.HeadBucket(ctx, rq.bucket); err != nil {
		return err
	}
	region := g.o.Region
	if region == "us-east-1" {
		region = "" // as AWS answers for us-east-1
	}
	writeXML(w, http.StatusOK, locationConstraint{NS: s3NS, Region: region})
	return nil
}

// listParams reads the parameters shared by ListObjects v1 and v2 and
// authorizes s3:ListBucket with s3:prefix, s3:delimiter and s3:max-keys.
func (g *Gateway) listParams(rq *request) (opts backend.ListOptions, encode bool, err error) {
	q := rq.r.URL.Query()
	opts.Prefix, opts.Delimiter, opts.MaxKeys = q.Get("prefix"), q.Get("delimiter"), 1000
	if v, ok := q["max-keys"]; ok {
		n, err := strconv.Atoi(v[0])
		if err != nil || n < 0 {
			return opts, false, errInvalidArgument("Provided max-keys not an integer or within integer range")
		}
		opts.MaxKeys = min(n, 1000)
	}
	switch et := q.Get("encoding-type"); et {
	case "":
	case "url":
		encode = true
	default:
		return opts, false, errInvalidArgument("Invalid Encoding Method specified in Request")
	}
	extra := map[string][]string{}
	for param, key := range map[string]string{"prefix": "s3:prefix", "delimiter": "s3:delimiter", "max-keys": "s3:max-keys"} {
		if v, ok := q[param]; ok {
			extra[key] = []string{v[0]}
		}
	}
	rq.params = map[string]any{}
	for _, p := range []string{"prefix", "delimiter", "max-keys", "list-type", "start-after", "marker", "encoding-type"} {
		if v, ok := q[p]; ok {
			rq.params[p] = v[0]
		}
	}
	if err := g.check(rq.r.Context(), rq, "s3:ListBucket", bucketARN(rq.bucket), extra); err != nil {
		return opts, false, err
	}
	if err := g.guardListing(rq.r.Context(), rq, "s3:ListBucket", opts.Prefix, opts.Delimiter); err != nil {
		return opts, false, err
	}
	return opts, encode, nil
}

func encodeIf(on bool, s string) string {
	if on {
		return urlEncode(s)
	}
	return s
}

// listEntries returns a listing's entries; each object names its owner
// when o is not nil (ListObjects always, ListObjectsV2 with fetch-owner).
func listEntries(res backend.ListResult, encode bool, o *owner) ([]objectXML, []prefixXML) {
	objs := make([]objectXML, 0, len(res.Objects))
	for _, obj := range res.Objects {
		objs = append(objs, objectXML{Key: encodeIf(encode, obj.Key), LastModified: xmlTime(obj.LastModified),
			ETag: quote(obj.ETag), Size: obj.Size, StorageClass: "STANDARD", Owner: o})
	}
	var cps []prefixXML
	for _, p := range res.CommonPrefixes {
		cps = append(cps, prefixXML{Prefix: encodeIf(encode, p)})
	}
	return objs, cps
}

func (g *Gateway) listObjectsV2(w *respWriter, rq *request) error {
	ctx := rq.r.Context()
	opts, encode, err := g.listParams(rq)
	if err != nil {
		return err
	}
	q := rq.r.URL.Query()
	startAfter, token := q.Get("start-after"), q.Get("continuation-token")
	var fetchOwner *owner
	switch v := q.Get("fetch-owner"); v {
	case "", "false":
	case "true":
		o := g.owner(rq)
		fetchOwner = &o
		rq.params["fetch-owner"] = v
	default:
		return errInvalidArgument("Invalid fetch-owner value: " + v)
	}
	opts.After = startAfter
	if token != "" {
		raw, err := base64.RawURLEncoding.DecodeString(token)
		if err != nil {
			return errInvalidArgument("The continuation token provided is incorrect")
		}
		opts.After = max(opts.After, string(raw))
	}
	bctx, wait := g.accessOverlapped(ctx, rq)
	res, err := g.o.Backend.ListObjects(bctx, rq.bucket, opts)
	if aerr := wait(); aerr != nil {
		return aerr
	}
	if err != nil {
		return err
	}
	objs, cps := listEntries(res, encode, fetchOwner)
	out := listBucketResultV2{NS: s3NS, Name: rq.bucket, Prefix: encodeIf(encode, opts.Prefix),
		Delimiter: encodeIf(encode, opts.Delimiter), MaxKeys: opts.MaxKeys, KeyCount: len(objs) + len(cps),
		IsTruncated: res.IsTruncated, ContinuationToken: token, StartAfter: encodeIf(encode, startAfter),
		Contents: objs, CommonPrefixes: cps}
	if encode {
		out.EncodingType = "url"
	}
	if res.IsTruncated {
		out.NextContinuationToken = base64.RawURLEncoding.EncodeToString([]byte(res.NextAfter))
	}
	writeXML(w, http.StatusOK, out)
	return nil
}

func (g *Gateway) listObjectsV1(w *respWriter, rq *request) error {
	ctx := rq.r.Context()
	opts, encode, err := g.listParams(rq)
	if err != nil {
		return err
	}
	marker := rq.r.URL.Query().Get("marker")
	opts.After = marker
	bctx, wait := g.accessOverlapped(ctx, rq)
	res, err := g.o.Backend.ListObjects(bctx, rq.bucket, opts)
	if aerr := wait(); aerr != nil {
		return aerr
	}
	if err != nil {
		return err
	}
	o := g.owner(rq)
	objs, cps := listEntries(res, encode, &o)
	// Prefix is sent as given even with encoding-type=url: S3 encodes only
	// Delimiter, Marker, NextMarker, Key and CommonPrefixes in version 1
	// (botocore, which always asks for url, decodes just those).
	out := listBucketResultV1{NS: s3NS, Name: rq.bucket, Prefix: opts.Prefix,
		Marker: encodeIf(encode, marker), Delimiter: encodeIf(encode, opts.Delimiter), MaxKeys: opts.MaxKeys,
		IsTruncated: res.IsTruncated, Contents: objs, CommonPrefixes: cps}
	if encode {
		out.EncodingType = "url"
	}
	if res.IsTruncated {
		out.NextMarker = encodeIf(encode, res.NextAfter)
	}
	writeXML(w, http.StatusOK, out)
	return nil
}

// createBucketConfiguration is CreateBucket's optional request body.
// Location and Bucket (directory buckets) are not served.
type createBucketConfiguration struct {
	XMLName            xml.Name  `xml:"CreateBucketConfiguration"`
	LocationConstraint string    `xml:"LocationConstraint"`
	Location           *struct{} `xml:"Location"`
	Bucket             *struct{} `xml:"Bucket"`
}

// locationConstraint reads CreateBucket's body (empty, or a
// CreateBucketConfiguration) and returns its LocationConstraint. A
// constraint other than the gateway's region is refused as S3 refuses one
// that does not match the endpoint (IllegalLocationConstraintException).
func (g *Gateway) locationConstraint(rq *request) (string, error) {
	data, err := io.ReadAll(io.LimitReader(rq.res.Body(rq.r.Body), maxXMLBody+1))
	if err != nil {
		return "", err // a failed signature or digest check
	}
	if len(data) > maxXMLBody {
		return "", errMalformedXML()
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return "", nil
	}
	var cfg createBucketConfiguration
	if err := parseXML(data, &cfg); err != nil {
		return "", errMalformedXML()
	}
	if cfg.Location != nil || cfg.Bucket != nil {
		return "", errNotHonoured("element", "CreateBucketConfiguration/Location")
	}
	lc := cfg.LocationConstraint
	if lc != "" && lc != g.o.Region {
		return "", s3err("IllegalLocationConstraintException", http.StatusBadRequest,
			"The "+lc+" location constraint is incompatible for the region specific endpoint this request was sent to.")
	}
	return lc, nil
}

// createBucket answers CreateBucket, authorized as s3:CreateBucket on the
// bucket (with s3:LocationConstraint and s3:x-amz-acl when sent) and
// recorded before the bucket is made. The canned ACL "private" and the
// default object ownership are what the gateway does anyway; every other
// ACL, grant and object lock is refused by the honoured table before this
// runs. A backend without backend.BucketAdmin answers NotImplemented.
// Buckets appear in ListBuckets at once (it reads the backend each time);
// mounts name buckets and need no change.
func (g *Gateway) createBucket(w *respWriter, rq *request) error {
	ctx := rq.r.Context()
	lc, err := g.locationConstraint(rq)
	if err != nil {
		return err
	}
	extra := map[string][]string{}
	if lc != "" {
		extra["s3:LocationConstraint"] = []string{lc}
		rq.params = map[string]any{"CreateBucketConfiguration": map[string]string{"LocationConstraint": lc}}
	}
	if acl := rq.r.Header.Get("X-Amz-Acl"); acl != "" {
		extra["s3:x-amz-acl"] = []string{acl}
	}
	if err := g.check(ctx, rq, "s3:CreateBucket", bucketARN(rq.bucket), extra); err != nil {
		return err
	}
	admin, ok := g.o.Backend.(backend.BucketAdmin)
	if !ok {
		return errNotImplemented()
	}
	create := admin.CreateBucket
	if strings.EqualFold(strings.TrimSpace(rq.r.Header.Get("X-Amz-Bucket-Object-Lock-Enabled")), "true") {
		l, ok := g.locker()
		if !ok {
			return errLockUnsupported()
		}
		// As S3: a bucket with object lock also needs the permissions to
		// configure its lock and its versioning.
		for _, action := range []string{"s3:PutBucketObjectLockConfiguration", "s3:PutBucketVersioning"} {
			if err := g.check(ctx, rq, action, bucketARN(rq.bucket), nil); err != nil {
				return err
			}
		}
		create = l.CreateBucketWithObjectLock
		if rq.params == nil {
			rq.params = map[string]any{}
		}
		rq.params["x-amz-bucket-object-lock-enabled"] = true
	}
	if err := g.access(ctx, rq); err != nil {
		return err
	}
	if err := create(ctx, rq.bucket); err != nil {
		return err
	}
	w.Header().Set("Location", "/"+rq.bucket)
	w.Header().Set("x-amz-bucket-arn", bucketARN(rq.bucket))
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusOK)
	return nil
}

// deleteBucket answers DeleteBucket, authorized as s3:DeleteBucket on the
// bucket and recorded before the bucket is removed. Only an empty bucket
// is removed (BucketNotEmpty otherwise).
func (g *Gateway) deleteBucket(w *respWriter, rq *request) error {
	ctx := rq.r.Context()
	if err := g.check(ctx, rq, "s3:DeleteBucket", bucketARN(rq.bucket), nil); err != nil {
		return err
	}
	admin, ok := g.o.Backend.(backend.BucketAdmin)
	if !ok {
		return errNotImplemented()
	}
	if err := g.access(ctx, rq); err != nil {
		return err
	}
	if err := admin.DeleteBucket(ctx, rq.bucket); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
