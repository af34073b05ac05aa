package s3gw

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/s3gw/backend"
)

// Conditional writes (If-Match / If-None-Match on PutObject and
// CompleteMultipartUpload, If-Match and the x-amz-if-match-* headers on
// DeleteObject), as S3 does them:
//   - the precondition is checked once before any work (the body is not read
//     when it fails: 412 PreconditionFailed, or 404 NoSuchKey for If-Match on
//     a key that does not exist), and again atomically with publishing; a
//     write that passed the first check but not the second lost a race with a
//     concurrent write of the key: 409 ConditionalRequestConflict;
//   - If-None-Match accepts only "*", and If-Match and If-None-Match cannot be
//     combined: 501 NotImplemented, as S3 answers.
//
// The atomic check is the backend's: a backend.ConditionalWriter (local)
// re-evaluates the precondition under its own per-key lock, and a
// backend.UnchangedWriter (s3) has its store publish only if the object is
// still as the first check saw it (If-None-Match: * or If-Match: "<ETag>"
// on the wire), which holds across gateway processes. Otherwise (the s3
// backend with StageUploads) the gateway holds a per-key lock around check
// and write, which serializes conditional writes of this process only.

var errConditionalConflict = func() *Error {
	return s3err("ConditionalRequestConflict", http.StatusConflict,
		"A conflicting operation occurred. If using PutObject you can retry the request. If using multipart upload you should initiate another CreateMultipartUpload request and re-upload each part.")
}

// etagListMatches reports whether an If-Match / If-None-Match value (a
// comma-separated list of quoted or unquoted ETags, or "*") names etag.
func etagListMatches(list, etag string) bool {
	for e := range strings.SplitSeq(list, ",") {
		e = strings.TrimSpace(e)
		if e == "*" || strings.Trim(strings.TrimPrefix(e, "W/"), `"`) == etag {
			return true
		}
	}
	return false
}

// writePrecondition returns the precondition of a PutObject or
// CompleteMultipartUpload request (nil without conditional headers). The
// returned function answers with the S3 error for a failed check.
func writePrecondition(h http.Header) (backend.Precondition, error) {
	im, hasIM := h["If-Match"]
	inm, hasINM := h["If-None-Match"]
	if !hasIM && !hasINM {
		return nil, nil
	}
	if hasIM && hasINM {
		return nil, errNotImplemented()
	}
	if hasINM {
		if strings.TrimSpace(strings.Join(inm, ",")) != "*" {
			return nil, errNotImplemented()
		}
		return func(cur *backend.ObjectInfo) error {
			if cur != nil {
				return errPreconditionOn("If-None-Match")
			}
			return nil
		}, nil
	}
	list := strings.Join(im, ",")
	return func(cur *backend.ObjectInfo) error {
		if cur == nil {
			return errNoSuchKey()
		}
		if !etagListMatches(list, cur.ETag) {
			return errPreconditionOn("If-Match")
		}
		return nil
	}, nil
}

// deletePrecondition returns the precondition of a DeleteObject request:
// If-Match (an ETag or "*"; a missing object is NoSuchKey),
// x-amz-if-match-size and x-amz-if-match-last-modified-time (a missing object
// passes, as S3 documents for them).
func deletePrecondition(h http.Header) (backend.Precondition, error) {
	im, hasIM := h["If-Match"]
	sizeH, timeH := h.Get("X-Amz-If-Match-Size"), h.Get("X-Amz-If-Match-Last-Modified-Time")
	if !hasIM && sizeH == "" && timeH == "" {
		return nil, nil
	}
	size := int64(-1)
	if sizeH != "" {
		n, err := strconv.ParseInt(sizeH, 10, 64)
		if err != nil || n < 0 {
			return nil, errInvalidArgument("Invalid x-amz-if-match-size header.")
		}
		size = n
	}
	var lm time.Time
	if timeH != "" {
		t, err := http.ParseTime(timeH)
		if err != nil {
			if t, err = time.Parse(time.RFC3339, timeH); err != nil {
				return nil, errInvalidArgument("Invalid x-amz-if-match-last-modified-time header.")
			}
		}
		lm = t
	}
	return deleteCondition(strings.Join(im, ","), hasIM, size, lm), nil
}

// deleteCondition: If-Match list (when hasIM), size (when >= 0) and
// last-modified time (when not zero) must all match the object.
func deleteCondition(list string, hasIM bool, size int64, lm time.Time) backend.Precondition {
	return func(cur *backend.ObjectInfo) error {
		if cur == nil {
			if hasIM {
				return errNoSuchKey()
			}
			return nil
		}
		switch {
		case hasIM && !etagListMatches(list, cur.ETag):
			return errPreconditionOn("If-Match")
		case size >= 0 && cur.Size != size:
			return errPreconditionOn("x-amz-if-match-size")
		case !lm.IsZero() && !cur.LastModified.Truncate(time.Second).Equal(lm.Truncate(time.Second)):
			return errPreconditionOn("x-amz-if-match-last-modified-time")
		}
		return nil
	}
}

// checkNow evaluates cond against the object as it is now, and returns
// what it saw.
func (g *Gateway) checkNow(ctx context.Context, bucket, key string, cond backend.Precondition) (backend.Unchanged, error) {
	info, err := g.o.Backend.HeadObject(ctx, bucket, key)
	switch {
	case errors.Is(err, backend.ErrNoSuchKey):
		return backend.Unchanged{Absent: true}, cond(nil)
	case err != nil:
		return backend.Unchanged{}, err
	}
	return backend.Unchanged{ETag: info.ETag}, cond(&info)
}

// unchangedWriter returns the backend as an UnchangedWriter when it can
// check conditional writes at its store.
func (g *Gateway) unchangedWriter() (backend.UnchangedWriter, bool) {
	uw, ok := g.o.Backend.(backend.UnchangedWriter)
	return uw, ok && uw.WritesIfUnchanged()
}

// lostRace turns the store's refusal of an UnchangedWriter call into the
// answer for a write that passed the first check but not the second.
func lostRace(err error) error {
	if errors.Is(err, backend.ErrPreconditionFailed) {
		return errConditionalConflict()
	}
	return err
}

// atCommit wraps cond for the check done when publishing: by then a failure
// means a concurrent write changed the object since the first check.
func atCommit(cond backend.Precondition) backend.Precondition {
	return func(cur *backend.ObjectInfo) error {
		if err := cond(cur); err != nil {
			return errConditionalConflict()
		}
		return nil
	}
}

// putObjectIf stores the object, under cond when it is not nil; seen is
// what the first check of cond saw.
func (g *Gateway) putObjectIf(ctx context.Context, rq *request, body io.Reader, size int64, meta backend.Metadata, cond backend.Precondition, seen backend.Unchanged) (backend.ObjectInfo, error) {
	if cond == nil {
		return g.o.Backend.PutObject(ctx, rq.bucket, rq.key, body, size, meta)
	}
	if cw, ok := g.o.Backend.(backend.ConditionalWriter); ok {
		return cw.PutObjectIf(ctx, rq.bucket, rq.key, body, size, meta, atCommit(cond))
	}
	if uw, ok := g.unchangedWriter(); ok {
		info, err := uw.PutObjectIfUnchanged(ctx, rq.bucket, rq.key, body, size, meta, seen)
		return info, lostRace(err)
	}
	defer g.keys.Lock(rq.bucket + "/" + rq.key)()
	if _, err := g.checkNow(ctx, rq.bucket, rq.key, atCommit(cond)); err != nil {
		return backend.ObjectInfo{}, err
	}
	return g.o.Backend.PutObject(ctx, rq.bucket, rq.key, body, size, meta)
}

func (g *Gateway) completeIf(ctx context.Context, rq *request, id string, parts []backend.CompletePart, cond backend.Precondition, seen backend.Unchanged) (backend.ObjectInfo, error) {
	if cond == nil {
		return g.o.Backend.CompleteMultipartUpload(ctx, rq.bucket, rq.key, id, parts)
	}
	if cw, ok := g.o.Backend.(backend.ConditionalWriter); ok {
		return cw.CompleteMultipartUploadIf(ctx, rq.bucket, rq.key, id, parts, atCommit(cond))
	}
	if uw, ok := g.unchangedWriter(); ok {
		info, err := uw.CompleteMultipartUploadIfUnchanged(ctx, rq.bucket, rq.key, id, parts, seen)
		return info, lostRace(err)
	}
	defer g.keys.Lock(rq.bucket + "/" + rq.key)()
	if _, err := g.checkNow(ctx, rq.bucket, rq.key, atCommit(cond)); err != nil {
		return backend.ObjectInfo{}, err
	}
	return g.o.Backend.CompleteMultipartUpload(ctx, rq.bucket, rq.key, id, parts)
}

// deleteIf deletes key under cond (checked atomically with the delete; a
// failure is returned as cond returns it).
func (g *Gateway) deleteIf(ctx context.Context, bucket, key string, cond backend.Precondition) error {
	if cond == nil {
		return g.o.Backend.DeleteObject(ctx, bucket, key)
	}
	if cw, ok := g.o.Backend.(backend.ConditionalWriter); ok {
		return cw.DeleteObjectIf(ctx, bucket, key, cond)
	}
	if uw, ok := g.unchangedWriter(); ok {
		// Check, then delete only what was checked; if the object changed
		// in between, check again (a bounded number of times).
		for range 3 {
			seen, err := g.checkNow(ctx, bucket, key, cond)
			if err != nil {
				return err
			}
			if err := uw.DeleteObjectIfUnchanged(ctx, bucket, key, seen); !errors.Is(err, backend.ErrPreconditionFailed) {
				return err
			}
		}
		return errConditionalConflict()
	}
	defer g.keys.Lock(bucket + "/" + key)()
	if _, err := g.checkNow(ctx, bucket, key, cond); err != nil {
		return err
	}
	return g.o.Backend.DeleteObject(ctx, bucket, key)
}
