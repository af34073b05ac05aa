package s3gw

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/s3gw/backend"
	"github.com/gatehouse-dev/gatehouse/internal/sigv4"
)

func (g *Gateway) createMultipartUpload(w *respWriter, rq *request) error {
	ctx := rq.r.Context()
	meta, err := userMetadata(rq.r.Header)
	if err != nil {
		return err
	}
	tagCtx, err := g.writeTags(rq, &meta)
	if err != nil {
		return err
	}
	if err := g.check(ctx, rq, "s3:PutObject", objectARN(rq.bucket, rq.key), tagCtx); err != nil {
		return err
	}
	if err := g.access(ctx, rq); err != nil {
		return err
	}
	id, err := g.o.Backend.CreateMultipartUpload(ctx, rq.bucket, rq.key, meta)
	if err != nil {
		return err
	}
	writeXML(w, http.StatusOK, initiateMultipartUploadResult{NS: s3NS, Bucket: rq.bucket, Key: rq.key, UploadID: id})
	return nil
}

func partParams(rq *request) (string, int, error) {
	q := rq.r.URL.Query()
	id := q.Get("uploadId")
	n, err := strconv.Atoi(q.Get("partNumber"))
	if id == "" || err != nil || n < 1 || n > backend.MaxParts {
		return "", 0, errInvalidArgument("Part number must be an integer between 1 and 10000, inclusive")
	}
	rq.params = map[string]any{"uploadId": id, "partNumber": n}
	return id, n, nil
}

func (g *Gateway) uploadPart(w *respWriter, rq *request) error {
	ctx := rq.r.Context()
	id, n, err := partParams(rq)
	if err != nil {
		return err
	}
	if err := g.check(ctx, rq, "s3:PutObject", objectARN(rq.bucket, rq.key), nil); err != nil {
		return err
	}
	body, size, err := g.uploadBody(rq)
	if err != nil {
		return err
	}
	rq.bytesIn = size
	if err := g.access(ctx, rq); err != nil {
		return err
	}
	info, err := g.o.Backend.UploadPart(ctx, rq.bucket, rq.key, id, n, body, size)
	if err != nil {
		return err
	}
	echoChecksums(w, rq.r, body)
	w.Header().Set("ETag", quote(info.ETag))
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusOK)
	return nil
}

func (g *Gateway) uploadPartCopy(w *respWriter, rq *request) error {
	ctx := rq.r.Context()
	id, n, err := partParams(rq)
	if err != nil {
		return err
	}
	sb, sk, err := copySource(rq.r.Header.Get("X-Amz-Copy-Source"))
	if err != nil {
		return err
	}
	rq.params["copySource"] = sb + "/" + sk
	if err := g.check(ctx, rq, "s3:GetObject", objectARN(sb, sk), nil); err != nil {
		return err
	}
	if err := g.check(ctx, rq, "s3:PutObject", objectARN(rq.bucket, rq.key), nil); err != nil {
		return err
	}
	src, err := g.o.Backend.HeadObject(ctx, sb, sk)
	if err != nil {
		return err
	}
	if err := copyPreconditions(rq.r, src); err != nil {
		return err
	}
	var rng *backend.Range
	if h := rq.r.Header.Get("X-Amz-Copy-Source-Range"); h != "" {
		var ok bool
		rng, ok, err = backend.ResolveCopySourceRange(h, src.Size)
		switch {
		case !ok:
			return errInvalidArgument("The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy")
		case err != nil:
			return errInvalidArgument("Range specified is not valid for source object of size: " + strconv.FormatInt(src.Size, 10))
		}
	}
	size := src.Size
	if rng != nil {
		size = rng.Length
	}
	rq.bytesIn = size
	if err := g.access(ctx, rq); err != nil {
		return err
	}
	body, _, err := g.o.Backend.GetObject(ctx, sb, sk, rng)
	if err != nil {
		return err
	}
	defer body.Close()
	info, err := g.o.Backend.UploadPart(ctx, rq.bucket, rq.key, id, n, body, size)
	if err != nil {
		return err
	}
	writeXML(w, http.StatusOK, copyPartResult{NS: s3NS, LastModified: xmlTime(info.LastModified), ETag: quote(info.ETag)})
	return nil
}

func (g *Gateway) completeMultipartUpload(w *respWriter, rq *request) error {
	ctx := rq.r.Context()
	id := rq.r.URL.Query().Get("uploadId")
	rq.params = map[string]any{"uploadId": id}
	if err := g.check(ctx, rq, "s3:PutObject", objectARN(rq.bucket, rq.key), nil); err != nil {
		return err
	}
	cond, err := writePrecondition(rq.r.Header)
	if err != nil {
		return err
	}
	var req completeMultipartUpload
	if err := decodeXML(rq.res.Body(rq.r.Body), &req); err != nil {
		var se *sigv4.Error
		if errors.As(err, &se) {
			return err
		}
		return errMalformedXML()
	}
	if len(req.Parts) == 0 || len(req.Parts) > backend.MaxParts {
		return errMalformedXML()
	}
	parts := make([]backend.CompletePart, len(req.Parts))
	for i, p := range req.Parts {
		parts[i] = backend.CompletePart{PartNumber: p.PartNumber, ETag: p.ETag}
	}
	if err := g.checkMPObjectSize(ctx, rq, id, parts); err != nil {
		return err
	}
	var seen backend.Unchanged
	if cond != nil {
		if seen, err = g.checkNow(ctx, rq.bucket, rq.key, cond); err != nil {
			return err
		}
	}
	if err := g.access(ctx, rq); err != nil {
		return err
	}
	info, err := g.completeIf(ctx, rq, id, parts, cond, seen)
	if err != nil {
		return err
	}
	rq.bytesIn = info.Size
	if info.VersionID != "" {
		w.Header().Set("x-amz-version-id", info.VersionID)
	}
	writeXML(w, http.StatusOK, completeMultipartUploadResult{NS: s3NS, Location: g.objectURL(rq),
		Bucket: rq.bucket, Key: rq.key, ETag: quote(info.ETag)})
	return nil
}

// objectURL is the absolute URL of the request's object, in the request's
// addressing style (the Location of CompleteMultipartUpload).
func (g *Gateway) objectURL(rq *request) string {
	u := url.URL{Scheme: "http", Host: rq.r.Host, Path: "/" + rq.bucket + "/" + rq.key}
	if rq.r.TLS != nil {
		u.Scheme = "https"
	}
	if _, ok := g.hostBucket(rq.r.Host); ok {
		u.Path = "/" + rq.key
	}
	return u.String()
}

// checkMPObjectSize compares x-amz-mp-object-size, when sent, with the total
// size of the parts being completed (InvalidRequest on a mismatch). Parts
// that do not exist are left to the backend (InvalidPart).
func (g *Gateway) checkMPObjectSize(ctx context.Context, rq *request, id string, parts []backend.CompletePart) error {
	v, ok := rq.r.Header["X-Amz-Mp-Object-Size"]
	if !ok {
		return nil
	}
	hv := strings.Join(v, ",")
	want, err := strconv.ParseInt(hv, 10, 64)
	switch {
	case err != nil:
		return s3err("InvalidRequest", http.StatusBadRequest, "Value for x-amz-mp-object-size header is invalid: '"+hv+"'")
	case want < 0:
		return s3err("InvalidRequest", http.StatusBadRequest, "Value for x-amz-mp-object-size header is less than zero: '"+hv+"'")
	}
	sizes := map[int]int64{}
	for marker := 0; ; {
		res, err := g.o.Backend.ListParts(ctx, rq.bucket, rq.key, id, marker, 1000)
		if err != nil {
			return err
		}
		for _, p := range res.Parts {
			sizes[p.PartNumber] = p.Size
		}
		if !res.IsTruncated || res.NextPartNumberMarker <= marker {
			break
		}
		marker = res.NextPartNumberMarker
	}
	var got int64
	for _, p := range parts {
		got += sizes[p.PartNumber]
	}
	if got != want {
		return s3err("InvalidRequest", http.StatusBadRequest, fmt.Sprintf(
			"The provided 'x-amz-mp-object-size' header value %d does not match what was computed: %d", want, got))
	}
	return nil
}

func (g *Gateway) abortMultipartUpload(w *respWriter, rq *request) error {
	ctx := rq.r.Context()
	id := rq.r.URL.Query().Get("uploadId")
	rq.params = map[string]any{"uploadId": id}
	if err := g.check(ctx, rq, "s3:AbortMultipartUpload", objectARN(rq.bucket, rq.key), nil); err != nil {
		return err
	}
	if err := g.checkInitiated(ctx, rq, id); err != nil {
		return err
	}
	if err := g.access(ctx, rq); err != nil {
		return err
	}
	if err := g.o.Backend.AbortMultipartUpload(ctx, rq.bucket, rq.key, id); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// checkInitiated applies x-amz-if-match-initiated-time to AbortMultipartUpload:
// 412 unless the upload was initiated at that time (to the second). An upload
// that does not exist is left to the abort (NoSuchUpload).
func (g *Gateway) checkInitiated(ctx context.Context, rq *request, id string) error {
	h := rq.r.Header.Get("X-Amz-If-Match-Initiated-Time")
	if h == "" {
		return nil
	}
	want, err := http.ParseTime(h)
	if err != nil {
		if want, err = time.Parse(time.RFC3339, h); err != nil {
			return errInvalidArgument("Invalid x-amz-if-match-initiated-time header.")
		}
	}
	opts := backend.ListUploadsOptions{Prefix: rq.key, MaxUploads: 1000}
	for {
		res, err := g.o.Backend.ListMultipartUploads(ctx, rq.bucket, opts)
		if err != nil {
			return err
		}
		for _, u := range res.Uploads {
			if u.Key == rq.key && u.UploadID == id {
				if !u.Initiated.Truncate(time.Second).Equal(want.Truncate(time.Second)) {
					return errPreconditionOn("x-amz-if-match-initiated-time")
				}
				return nil
			}
		}
		if !res.IsTruncated || len(res.Uploads) == 0 || res.Uploads[len(res.Uploads)-1].Key != rq.key {
			return nil
		}
		opts.KeyMarker, opts.UploadIDMarker = res.NextKeyMarker, res.NextUploadIDMarker
	}
}

func (g *Gateway) listParts(w *respWriter, rq *request) error {
	ctx := rq.r.Context()
	q := rq.r.URL.Query()
	id := q.Get("uploadId")
	rq.params = map[string]any{"uploadId": id}
	if err := g.check(ctx, rq, "s3:ListMultipartUploadParts", objectARN(rq.bucket, rq.key), nil); err != nil {
		return err
	}
	maxParts, marker := 1000, 0
	if v := q.Get("max-parts"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return errInvalidArgument("Argument max-parts must be an integer between 0 and 2147483647")
		}
		maxParts = min(n, 1000)
	}
	if v := q.Get("part-number-marker"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return errInvalidArgument("Argument part-number-marker must be an integer between 0 and 2147483647")
		}
		marker = n
	}
	bctx, wait := g.accessOverlapped(ctx, rq)
	res, err := g.o.Backend.ListParts(bctx, rq.bucket, rq.key, id, marker, maxParts)
	if aerr := wait(); aerr != nil {
		return aerr
	}
	if err != nil {
		return err
	}
	o := g.owner(rq)
	out := listPartsResult{NS: s3NS, Bucket: rq.bucket, Key: rq.key, UploadID: id, Initiator: o, Owner: o,
		StorageClass: "STANDARD", PartNumberMarker: marker, NextPartNumberMarker: res.NextPartNumberMarker,
		MaxParts: maxParts, IsTruncated: res.IsTruncated}
	for _, p := range res.Parts {
		out.Parts = append(out.Parts, partXML{PartNumber: p.PartNumber, LastModified: xmlTime(p.LastModified), ETag: quote(p.ETag), Size: p.Size})
	}
	writeXML(w, http.StatusOK, out)
	return nil
}

func (g *Gateway) listMultipartUploads(w *respWriter, rq *request) error {
	ctx := rq.r.Context()
	q := rq.r.URL.Query()
	opts := backend.ListUploadsOptions{Prefix: q.Get("prefix"), Delimiter: q.Get("delimiter"),
		KeyMarker: q.Get("key-marker"), UploadIDMarker: q.Get("upload-id-marker"), MaxUploads: 1000}
	// Uploads under a mount are listed as the mount's role, as its objects
	// are; mounts the listing reaches into must allow it too.
	const action = "s3:ListBucketMultipartUploads"
	if err := g.checkAt(ctx, rq, action, bucketARN(rq.bucket), opts.Prefix, nil); err != nil {
		return err
	}
	if err := g.guardListing(ctx, rq, action, opts.Prefix, opts.Delimiter); err != nil {
		return err
	}
	if v := q.Get("max-uploads"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return errInvalidArgument("Argument max-uploads must be an integer between 0 and 2147483647")
		}
		opts.MaxUploads = min(n, 1000)
	}
	encode := q.Get("encoding-type") == "url"
	if err := g.access(ctx, rq); err != nil {
		return err
	}
	res, err := g.o.Backend.ListMultipartUploads(ctx, rq.bucket, opts)
	if err != nil {
		return err
	}
	o := g.owner(rq)
	out := listMultipartUploadsResult{NS: s3NS, Bucket: rq.bucket, KeyMarker: encodeIf(encode, opts.KeyMarker),
		UploadIDMarker: opts.UploadIDMarker, Prefix: encodeIf(encode, opts.Prefix), Delimiter: encodeIf(encode, opts.Delimiter),
		MaxUploads: opts.MaxUploads, IsTruncated: res.IsTruncated}
	if encode {
		out.EncodingType = "url"
	}
	if res.IsTruncated {
		out.NextKeyMarker, out.NextUploadIDMarker = encodeIf(encode, res.NextKeyMarker), res.NextUploadIDMarker
	}
	for _, u := range res.Uploads {
		out.Uploads = append(out.Uploads, uploadXML{Key: encodeIf(encode, u.Key), UploadID: u.UploadID, Initiator: o, Owner: o,
			StorageClass: "STANDARD", Initiated: xmlTime(u.Initiated)})
	}
	for _, p := range res.CommonPrefixes {
		out.CommonPrefixes = append(out.CommonPrefixes, prefixXML{Prefix: encodeIf(encode, p)})
	}
	writeXML(w, http.StatusOK, out)
	return nil
}

var _ io.Reader = (*md5Reader)(nil)
