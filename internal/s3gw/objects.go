package s3gw

import (
	"context"
	"crypto/md5"
	"encoding/base64"
	"errors"
	"hash"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/s3gw/backend"
	"github.com/gatehouse-dev/gatehouse/internal/s3name"
	"github.com/gatehouse-dev/gatehouse/internal/sigv4"
)

func quote(etag string) string { return `"` + etag + `"` }

// maxUserMetadata is the largest total size of user-defined metadata: the
// bytes of every x-amz-meta-* name (without the prefix) and value (AWS: 2 KB).
const maxUserMetadata = 2048

// userMetadata reads the object metadata of a write request and refuses
// user-defined metadata over maxUserMetadata (MetadataTooLarge).
func userMetadata(h http.Header) (backend.Metadata, error) {
	m := metadataFromHeaders(h)
	n := 0
	for k, v := range m.User {
		n += len(k) + len(v)
	}
	if n > maxUserMetadata {
		return backend.Metadata{}, errMetadataTooLarge(n)
	}
	return m, nil
}

// metadataFromHeaders reads the Content-* headers and x-amz-meta-*.
func metadataFromHeaders(h http.Header) backend.Metadata {
	m := backend.Metadata{
		ContentType:        h.Get("Content-Type"),
		ContentEncoding:    h.Get("Content-Encoding"),
		ContentDisposition: h.Get("Content-Disposition"),
		ContentLanguage:    h.Get("Content-Language"),
		CacheControl:       h.Get("Cache-Control"),
		Expires:            h.Get("Expires"),
	}
	// aws-chunked is a transfer framing, not the object's encoding.
	if enc := strings.TrimSpace(m.ContentEncoding); enc != "" {
		var keep []string
		for e := range strings.SplitSeq(enc, ",") {
			if e = strings.TrimSpace(e); e != "" && !strings.EqualFold(e, "aws-chunked") {
				keep = append(keep, e)
			}
		}
		m.ContentEncoding = strings.Join(keep, ",")
	}
	for k, vs := range h {
		lk := strings.ToLower(k)
		if name, ok := strings.CutPrefix(lk, "x-amz-meta-"); ok && name != "" {
			if m.User == nil {
				m.User = map[string]string{}
			}
			m.User[name] = strings.Join(vs, ",")
		}
	}
	return m
}

// setObjectHeaders writes the object's headers, with the response-*
// overrides of a GetObject request.
func setObjectHeaders(w http.ResponseWriter, info backend.ObjectInfo, q url.Values) {
	h := w.Header()
	ct := info.Metadata.ContentType
	if ct == "" {
		ct = "binary/octet-stream"
	}
	h.Set("Content-Type", ct)
	h.Set("ETag", quote(info.ETag))
	h.Set("Last-Modified", info.LastModified.UTC().Format(http.TimeFormat))
	h.Set("Accept-Ranges", "bytes")
	if info.VersionID != "" {
		h.Set("x-amz-version-id", info.VersionID)
	}
	for name, v := range map[string]string{
		"Content-Encoding": info.Metadata.ContentEncoding, "Content-Disposition": info.Metadata.ContentDisposition,
		"Content-Language": info.Metadata.ContentLanguage, "Cache-Control": info.Metadata.CacheControl,
		"Expires": info.Metadata.Expires,
	} {
		if v != "" {
			h.Set(name, v)
		}
	}
	for k, v := range info.Metadata.User {
		h["X-Amz-Meta-"+k] = []string{v}
	}
	for param, name := range map[string]string{
		"response-content-type": "Content-Type", "response-content-language": "Content-Language",
		"response-expires": "Expires", "response-cache-control": "Cache-Control",
		"response-content-disposition": "Content-Disposition", "response-content-encoding": "Content-Encoding",
	} {
		if v := q.Get(param); v != "" {
			h.Set(name, v)
		}
	}
}

// preconditions evaluates If-Match, If-None-Match, If-Modified-Since and
// If-Unmodified-Since (RFC 9110 section 13.2.2, as S3 applies them). It
// returns 0, 304 or 412.
func preconditions(r *http.Request, info backend.ObjectInfo) int {
	etagMatch := func(list string) bool {
		for e := range strings.SplitSeq(list, ",") {
			e = strings.TrimSpace(e)
			if e == "*" || strings.Trim(strings.TrimPrefix(e, "W/"), `"`) == info.ETag {
				return true
			}
		}
		return false
	}
	lm := info.LastModified.Truncate(time.Second)
	im := r.Header.Get("If-Match")
	if im != "" && !etagMatch(im) {
		return http.StatusPreconditionFailed
	}
	if ius := r.Header.Get("If-Unmodified-Since"); im == "" && ius != "" {
		if t, err := http.ParseTime(ius); err == nil && lm.After(t) {
			return http.StatusPreconditionFailed
		}
	}
	inm := r.Header.Get("If-None-Match")
	if inm != "" && etagMatch(inm) {
		return http.StatusNotModified
	}
	if ims := r.Header.Get("If-Modified-Since"); inm == "" && ims != "" {
		if t, err := http.ParseTime(ims); err == nil && !lm.After(t) {
			return http.StatusNotModified
		}
	}
	return 0
}

func (g *Gateway) conditional(w *respWriter, rq *request, info backend.ObjectInfo, status int) error {
	if status == http.StatusPreconditionFailed {
		return errPrecondition()
	}
	if err := g.access(rq.r.Context(), rq); err != nil {
		return err
	}
	w.Header().Set("ETag", quote(info.ETag))
	w.Header().Set("Last-Modified", info.LastModified.UTC().Format(http.TimeFormat))
	w.WriteHeader(http.StatusNotModified)
	return nil
}

// headVersion is HeadObject of the version the request names (the
// current object when it names none).
func (g *Gateway) headVersion(ctx context.Context, rq *request) (backend.ObjectInfo, error) {
	if v, ok := g.versioner(); ok && rq.versionID != "" {
		return v.HeadObjectVersion(ctx, rq.bucket, rq.key, rq.versionID)
	}
	return g.o.Backend.HeadObject(ctx, rq.bucket, rq.key)
}

// getVersion is GetObject of the version the request names.
func (g *Gateway) getVersion(ctx context.Context, rq *request, rng *backend.Range) (io.ReadCloser, backend.ObjectInfo, error) {
	if v, ok := g.versioner(); ok && rq.versionID != "" {
		return v.GetObjectVersion(ctx, rq.bucket, rq.key, rq.versionID, rng)
	}
	return g.o.Backend.GetObject(ctx, rq.bucket, rq.key, rng)
}

func (g *Gateway) getObject(w *respWriter, rq *request) error {
	ctx := rq.r.Context()
	if err := g.check(ctx, rq, objectAction(rq, "s3:GetObject", "s3:GetObjectVersion"), objectARN(rq.bucket, rq.key), versionCond(rq)); err != nil {
		return err
	}
	var rng *backend.Range
	if rangeHdr := rq.r.Header.Get("Range"); rangeHdr != "" {
		info, err := g.headVersion(ctx, rq)
		if err != nil {
			return err
		}
		if st := preconditions(rq.r, info); st != 0 {
			return g.conditional(w, rq, info, st)
		}
		if rng, err = resolveRange(w, rangeHdr, info.Size); err != nil {
			return err
		}
	}
	body, info, err := g.getVersion(ctx, rq, rng)
	if err != nil {
		return err
	}
	defer body.Close()
	if st := preconditions(rq.r, info); st != 0 {
		return g.conditional(w, rq, info, st)
	}
	length, status := info.Size, http.StatusOK
	if rng != nil {
		length, status = rng.Length, http.StatusPartialContent
	}
	rq.bytesOut = length
	lockH := g.lockHeaders(ctx, rq, info)
	if err := g.access(ctx, rq); err != nil {
		return err
	}
	// Nothing of the object is set before its access event is durable.
	if rng != nil {
		setContentRange(w, rng, info.Size)
	}
	setObjectHeaders(w, info, rq.r.URL.Query())
	g.tagCountHeader(ctx, w, rq, info.TagCount)
	setHeaders(w, lockH)
	w.Header().Set("Content-Length", strconv.FormatInt(length, 10))
	w.WriteHeader(status)
	n, err := copyBody(w, body, length)
	if err != nil || n != length {
		rq.bytesOut = n
		if err == nil {
			err = io.ErrUnexpectedEOF
		}
		return err // recorded as a failure; the server cuts the connection
	}
	return nil
}

func (g *Gateway) headObject(w *respWriter, rq *request) error {
	ctx := rq.r.Context()
	if err := g.check(ctx, rq, objectAction(rq, "s3:GetObject", "s3:GetObjectVersion"), objectARN(rq.bucket, rq.key), versionCond(rq)); err != nil {
		return err
	}
	info, err := g.headVersion(ctx, rq)
	if err != nil {
		return err
	}
	if st := preconditions(rq.r, info); st != 0 {
		return g.conditional(w, rq, info, st)
	}
	var rng *backend.Range
	if rangeHdr := rq.r.Header.Get("Range"); rangeHdr != "" {
		if rng, err = resolveRange(w, rangeHdr, info.Size); err != nil {
			return err
		}
	}
	lockH := g.lockHeaders(ctx, rq, info)
	if err := g.access(ctx, rq); err != nil {
		return err
	}
	setObjectHeaders(w, info, rq.r.URL.Query())
	g.tagCountHeader(ctx, w, rq, info.TagCount)
	setHeaders(w, lockH)
	length, status := info.Size, http.StatusOK
	if rng != nil {
		length, status = rng.Length, http.StatusPartialContent
		setContentRange(w, rng, info.Size)
	}
	w.Header().Set("Content-Length", strconv.FormatInt(length, 10))
	w.WriteHeader(status)
	return nil
}

// resolveRange applies a Range header to an object of size bytes: nil for
// the whole object (no header, or one S3 ignores), 416 InvalidRange (with
// Content-Range: bytes */size) when it cannot be satisfied.
func resolveRange(w http.ResponseWriter, h string, size int64) (*backend.Range, error) {
	rng, err := backend.ResolveRange(h, size)
	if err != nil {
		w.Header().Set("Content-Range", "bytes */"+strconv.FormatInt(size, 10))
		e := errInvalidRange()
		e.Extra = [][2]string{{"RangeRequested", h}, {"ActualObjectSize", strconv.FormatInt(size, 10)}}
		e.Err = err
		return nil, e
	}
	return rng, nil
}

func setContentRange(w http.ResponseWriter, rng *backend.Range, size int64) {
	w.Header().Set("Content-Range", "bytes "+strconv.FormatInt(rng.Start, 10)+"-"+
		strconv.FormatInt(rng.Start+rng.Length-1, 10)+"/"+strconv.FormatInt(size, 10))
}

// md5Reader checks Content-MD5 at EOF: a mismatch is an error instead of
// io.EOF, so the backend discards the upload.
type md5Reader struct {
	r    io.Reader
	h    hash.Hash
	want []byte
}

func (m *md5Reader) Read(p []byte) (int, error) {
	n, err := m.r.Read(p)
	m.h.Write(p[:n])
	if errors.Is(err, io.EOF) {
		if got := m.h.Sum(nil); string(got) != string(m.want) {
			return n, s3err("BadDigest", http.StatusBadRequest, "The Content-MD5 you specified did not match what we received.")
		}
	}
	return n, err
}

// uploadBody returns the verified body of a PutObject or UploadPart and its
// decoded length. Every byte it yields is provisional until io.EOF: the
// backend must discard the write on any other error.
func (g *Gateway) uploadBody(rq *request) (io.Reader, int64, error) {
	r := rq.r
	size := r.ContentLength
	if rq.res.DecodedContentLength >= 0 {
		size = rq.res.DecodedContentLength
	}
	if size < 0 {
		return nil, 0, errMissingLength()
	}
	if size > g.o.MaxObjectSize {
		return nil, 0, errEntityTooLarge()
	}
	body, err := verifiedBody(rq)
	if err != nil {
		return nil, 0, err
	}
	return body, size, nil
}

// verifiedBody returns the request body behind its SigV4 payload check,
// the x-amz-checksum-* header it carries and Content-MD5: each is checked
// at EOF, where a mismatch is an error instead of io.EOF.
func verifiedBody(rq *request) (io.Reader, error) {
	r := rq.r
	body, err := withHeaderChecksums(r.Header, rq.res.Body(r.Body))
	if err != nil {
		return nil, err
	}
	if cms, ok := r.Header["Content-Md5"]; ok { // present, even empty
		cm := strings.Join(cms, ",")
		want, err := base64.StdEncoding.DecodeString(cm)
		if err != nil || len(want) != md5.Size {
			return nil, s3err("InvalidDigest", http.StatusBadRequest, "The Content-MD5 you specified was invalid.")
		}
		body = &md5Reader{r: body, h: md5.New(), want: want}
	}
	return body, nil
}

// echoChecksums copies verified checksum trailers to the response, as S3 does.
func echoChecksums(w http.ResponseWriter, r *http.Request, body io.Reader) {
	for k, vs := range r.Header {
		if strings.HasPrefix(strings.ToLower(k), "x-amz-checksum-") && len(vs) == 1 {
			w.Header().Set(k, vs[0])
		}
	}
	for {
		switch b := body.(type) {
		case *md5Reader:
			body = b.r
			continue
		case *checksumReader:
			body = b.r
			continue
		case sigv4.TrailerReader:
			for k, vs := range b.Trailer() {
				if strings.HasPrefix(strings.ToLower(k), "x-amz-checksum-") && len(vs) == 1 {
					w.Header().Set(k, vs[0])
				}
			}
		}
		return
	}
}

func (g *Gateway) putObject(w *respWriter, rq *request) error {
	ctx := rq.r.Context()
	lock, lockConds, err := g.uploadLock(rq.r.Header)
	if err != nil {
		return err
	}
	meta, err := userMetadata(rq.r.Header)
	if err != nil {
		return err
	}
	tagCtx, err := g.writeTags(rq, &meta)
	if err != nil {
		return err
	}
	if err := g.check(ctx, rq, "s3:PutObject", objectARN(rq.bucket, rq.key), withConds(tagCtx, lockConds)); err != nil {
		return err
	}
	if lock != nil {
		if err := g.checkUploadLock(ctx, rq, lock, lockConds); err != nil {
			return err
		}
	}
	cond, err := writePrecondition(rq.r.Header)
	if err != nil {
		return err
	}
	if cond != nil && lock != nil {
		return s3err("NotImplemented", http.StatusNotImplemented, "Conditional uploads with object lock headers are not supported by this gateway.")
	}
	body, size, err := g.uploadBody(rq)
	if err != nil {
		return err
	}
	var seen backend.Unchanged
	if cond != nil {
		// Refuse before reading the body; checked again when publishing.
		if seen, err = g.checkNow(ctx, rq.bucket, rq.key, cond); err != nil {
			return err
		}
	}
	rq.bytesIn = size
	if err := g.access(ctx, rq); err != nil {
		return err
	}
	var info backend.ObjectInfo
	if lock != nil {
		l, _ := g.locker() // present: refuseLockHeaders let the headers through
		info, err = l.PutObjectLocked(ctx, rq.bucket, rq.key, body, size, meta, *lock)
	} else {
		info, err = g.putObjectIf(ctx, rq, body, size, meta, cond, seen)
	}
	if err != nil {
		return err
	}
	echoChecksums(w, rq.r, body)
	w.Header().Set("ETag", quote(info.ETag))
	if info.VersionID != "" {
		w.Header().Set("x-amz-version-id", info.VersionID)
	}
	// x-amz-object-size: the size stored (PutObjectOutput.Size); versitygw's
	// conformance suite dereferences it.
	w.Header().Set("x-amz-object-size", strconv.FormatInt(size, 10))
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(http.StatusOK)
	return nil
}

// copySource parses x-amz-copy-source: "[/]bucket/key[?versionId=null]",
// URL-encoded.
func copySource(h string) (bucket, key string, err error) {
	src, err := url.PathUnescape(h)
	if err != nil {
		return "", "", errInvalidArgument("Invalid copy source encoding.")
	}
	src = strings.TrimPrefix(src, "/")
	if i := strings.Index(src, "?versionId="); i >= 0 {
		if v := src[i+len("?versionId="):]; v != "null" {
			return "", "", errNotImplemented()
		}
		src = src[:i]
	}
	bucket, key, ok := strings.Cut(src, "/")
	if !ok || bucket == "" || key == "" {
		return "", "", errInvalidArgument("Copy Source must mention the source bucket and key: sourcebucket/sourcekey.")
	}
	if err := s3name.Bucket(bucket); err != nil {
		return "", "", err
	}
	if err := s3name.Key(key); err != nil {
		return "", "", err
	}
	return bucket, key, nil
}

func (g *Gateway) copyObject(w *respWriter, rq *request) error {
	ctx := rq.r.Context()
	sb, sk, err := copySource(rq.r.Header.Get("X-Amz-Copy-Source"))
	if err != nil {
		return err
	}
	rq.params = map[string]any{"copySource": sb + "/" + sk}
	tags, replaceTags, tagCtx, err := g.copyTags(rq)
	if err != nil {
		return err
	}
	if err := g.check(ctx, rq, "s3:GetObject", objectARN(sb, sk), nil); err != nil {
		return err
	}
	if err := g.check(ctx, rq, "s3:PutObject", objectARN(rq.bucket, rq.key), tagCtx); err != nil {
		return err
	}
	// The metadata sent is checked even when it is not used (COPY), as S3 does.
	sent, err := userMetadata(rq.r.Header)
	if err != nil {
		return err
	}
	var meta *backend.Metadata
	switch d := strings.ToUpper(rq.r.Header.Get("X-Amz-Metadata-Directive")); d {
	case "", "COPY":
		if sb == rq.bucket && sk == rq.key {
			return s3err("InvalidRequest", http.StatusBadRequest, "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.")
		}
	case "REPLACE":
		meta = &sent
	default:
		return errInvalidArgument("Unknown metadata directive.")
	}
	src, err := g.o.Backend.HeadObject(ctx, sb, sk)
	if err != nil {
		return err
	}
	if err := copyPreconditions(rq.r, src); err != nil {
		return err
	}
	if meta, err = g.copyMetadata(ctx, rq, sb, sk, src, meta, tags, replaceTags); err != nil {
		return err
	}
	rq.bytesIn = src.Size
	if err := g.access(ctx, rq); err != nil {
		return err
	}
	info, err := g.o.Backend.CopyObject(ctx, sb, sk, rq.bucket, rq.key, meta)
	if err != nil {
		return err
	}
	if info.VersionID != "" {
		w.Header().Set("x-amz-version-id", info.VersionID)
	}
	writeXML(w, http.StatusOK, copyObjectResult{NS: s3NS, LastModified: xmlTime(info.LastModified), ETag: quote(info.ETag)})
	return nil
}

// copyMetadata combines the metadata and tagging directives of a
// CopyObject into what the backend's CopyObject takes: nil (both from the
// source) when neither replaces; otherwise the metadata (the source's, or
// meta when it replaces them) with the tags (the source's, or tags when
// replaceTags).
func (g *Gateway) copyMetadata(ctx context.Context, rq *request, sb, sk string, src backend.ObjectInfo, meta *backend.Metadata, tags map[string]string, replaceTags bool) (*backend.Metadata, error) {
	if meta == nil && !replaceTags {
		return nil, nil
	}
	var m backend.Metadata
	if meta != nil {
		m = *meta
	} else {
		m = src.Metadata
	}
	m.Tags = tags
	if !replaceTags {
		var err error
		if m.Tags, err = g.existingTags(ctx, rq, sb, sk); err != nil {
			return nil, err
		}
	}
	if len(m.Tags) == 0 {
		m.Tags = nil
	}
	return &m, nil
}

// copyPreconditions applies x-amz-copy-source-if-* to the source.
func copyPreconditions(r *http.Request, src backend.ObjectInfo) error {
	fake := &http.Request{Header: http.Header{}}
	for _, n := range []string{"Match", "None-Match", "Modified-Since", "Unmodified-Since"} {
		if v := r.Header.Get("X-Amz-Copy-Source-If-" + n); v != "" {
			fake.Header.Set("If-"+n, v)
		}
	}
	if preconditions(fake, src) != 0 {
		return errPrecondition()
	}
	return nil
}

func (g *Gateway) deleteObject(w *respWriter, rq *request) error {
	ctx := rq.r.Context()
	bypass, err := bypassGovernance(rq.r.Header)
	if err != nil {
		return err
	}
	cond, condErr := deletePrecondition(rq.r.Header) // reported after authorization
	if _, versioned := g.versioner(); versioned && (bypass || rq.versionID != "" || (cond == nil && condErr == nil)) {
		return g.deleteVersion(w, rq, bypass) // answers with the version id or delete marker
	}
	if bypass { // nothing to bypass on this backend; still the caller's right to ask
		if err := g.check(ctx, rq, "s3:BypassGovernanceRetention", objectARN(rq.bucket, rq.key), nil); err != nil {
			return err
		}
	}
	if err := g.check(ctx, rq, "s3:DeleteObject", objectARN(rq.bucket, rq.key), nil); err != nil {
		return err
	}
	if condErr != nil {
		return condErr
	}
	if cond != nil {
		// The outcome reveals the object's ETag, size or time: S3 requires
		// s3:GetObject as well.
		if err := g.check(ctx, rq, "s3:GetObject", objectARN(rq.bucket, rq.key), nil); err != nil {
			return err
		}
		if _, err := g.checkNow(ctx, rq.bucket, rq.key, cond); err != nil {
			return err
		}
	}
	if err := g.access(ctx, rq); err != nil {
		return err
	}
	if cond != nil {
		cond = atCommit(cond)
	}
	if err := g.deleteIf(ctx, rq.bucket, rq.key, cond); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (g *Gateway) deleteObjects(w *respWriter, rq *request) error {
	ctx := rq.r.Context()
	var req deleteRequest
	if err := decodeBody(rq, &req); err != nil {
		return err
	}
	if len(req.Objects) == 0 || len(req.Objects) > 1000 {
		return errMalformedXML()
	}
	bypass, err := bypassGovernance(rq.r.Header)
	if err != nil {
		return err
	}
	if bypass {
		if err := g.check(ctx, rq, "s3:BypassGovernanceRetention", bucketARN(rq.bucket), nil); err != nil {
			return err
		}
	}
	v, versioned := g.versioner()
	for _, o := range req.Objects {
		if !versioned && o.VersionID != "" && namesVersion(o.VersionID) {
			return errVersionsUnsupported() // the whole request, before any delete
		}
	}
	res := deleteResult{NS: s3NS}
	var allowed []deleteObjectXML
	var allowedKeys, denied, versionIDs []string
	conds := map[int]backend.Precondition{}
	for _, o := range req.Objects {
		if !versioned {
			o.VersionID = "" // "null": the current object
		}
		if err := s3name.Key(o.Key); err != nil {
			e := translate(err)
			res.Errors = append(res.Errors, deleteErrorXML{Key: o.Key, VersionID: o.VersionID, Code: e.Code, Message: e.Message})
			denied = append(denied, o.Key)
			continue
		}
		cond := o.condition()
		if cond != nil && o.VersionID != "" {
			res.Errors = append(res.Errors, deleteErrorXML{Key: o.Key, VersionID: o.VersionID, Code: "NotImplemented",
				Message: "Conditional deletes of a version are not supported by this gateway."})
			denied = append(denied, o.Key)
			continue
		}
		action, vc := "s3:DeleteObject", map[string][]string(nil)
		if o.VersionID != "" {
			action, vc = "s3:DeleteObjectVersion", map[string][]string{"s3:versionid": {o.VersionID}}
		}
		ok, _, _ := g.decide(ctx, rq, action, objectARN(rq.bucket, o.Key), vc)
		if ok && cond != nil { // conditional deletes also need s3:GetObject, as in S3
			ok, _, _ = g.decide(ctx, rq, "s3:GetObject", objectARN(rq.bucket, o.Key), nil)
		}
		if !ok {
			res.Errors = append(res.Errors, deleteErrorXML{Key: o.Key, VersionID: o.VersionID, Code: "AccessDenied", Message: "Access Denied"})
			denied = append(denied, o.Key)
			continue
		}
		conds[len(allowed)] = cond
		allowed = append(allowed, o)
		allowedKeys = append(allowedKeys, o.Key)
		if o.VersionID != "" {
			versionIDs = append(versionIDs, o.Key+"@"+o.VersionID)
		}
	}
	rq.params = map[string]any{"keys": allowedKeys, "deniedKeys": denied}
	if len(versionIDs) > 0 {
		rq.params["versions"] = versionIDs
	}
	if err := g.access(ctx, rq); err != nil {
		return err
	}
	for i, o := range allowed {
		d := deletedXML{Key: o.Key, VersionID: o.VersionID}
		var err error
		if versioned && (o.VersionID != "" || conds[i] == nil) {
			var dr backend.DeleteResult
			dr, err = v.DeleteObjectVersion(ctx, rq.bucket, o.Key, o.VersionID, bypass)
			if dr.DeleteMarker {
				d.DeleteMarker, d.DeleteMarkerVersionID = true, dr.VersionID
			}
		} else {
			err = g.deleteIf(ctx, rq.bucket, o.Key, conds[i])
		}
		if err != nil {
			e := translate(err)
			res.Errors = append(res.Errors, deleteErrorXML{Key: o.Key, VersionID: o.VersionID, Code: e.Code, Message: e.Message})
			continue
		}
		if !req.Quiet {
			res.Deleted = append(res.Deleted, d)
		}
	}
	writeXML(w, http.StatusOK, res)
	return nil
}

// smallBody is the largest body copied through the response's own buffer:
// it then leaves with the header in one write, where ReadFrom would flush
// the header first and cost a second system call.
const smallBody = 16 << 10

var smallBufs = sync.Pool{New: func() any { b := make([]byte, smallBody); return &b }}

// copyBody streams body (length bytes expected) to w.
func copyBody(w *respWriter, body io.Reader, length int64) (int64, error) {
	if length > smallBody {
		return io.Copy(w, body)
	}
	bp := smallBufs.Get().(*[]byte)
	defer smallBufs.Put(bp)
	return io.CopyBuffer(struct{ io.Writer }{w}, body, *bp)
}
