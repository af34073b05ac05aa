package s3

import (
	"context"
	"encoding/xml"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/gatehouse-dev/gatehouse/internal/s3gw/backend"
	"github.com/gatehouse-dev/gatehouse/internal/sigv4"
)

// leanClient sends the hot-path object calls (GetObject, HeadObject,
// PutObject) to a path-style endpoint as plain signed HTTP requests, without
// the SDK's middleware stack, which cost about a third of the gateway's CPU
// for a 1 KiB GET (docs/design/0013). Everything else stays on the SDK.
//
// Its requests are what the SDK sends for the same call (path-style URL,
// SigV4 over the same headers, Accept-Encoding: identity, the same
// retries for idempotent calls), and its errors have the SDK's shape (an
// *smithy.OperationError around an *awshttp.ResponseError carrying the
// HTTP status and an smithy.APIError with the endpoint's XML error code), so
// mapErr classifies both paths alike.
type leanClient struct {
	base     url.URL // the endpoint, path without a trailing slash
	http     *http.Client
	signer   *sigv4.Signer
	now      func() time.Time
	attempts int // tries of an idempotent call (GET, HEAD)
}

func newLeanClient(o Options, hc *http.Client) (*leanClient, error) {
	u, err := url.Parse(o.Endpoint)
	if err != nil {
		return nil, err
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	u.RawPath = strings.TrimSuffix(u.RawPath, "/")
	s, err := sigv4.NewSigner(sigv4.SignerConfig{AccessKeyID: o.AccessKeyID, SecretAccessKey: o.SecretAccessKey,
		SessionToken: o.SessionToken, Region: o.Region, Service: "s3", Mode: sigv4.ModeS3})
	if err != nil {
		return nil, err
	}
	return &leanClient{base: *u, http: hc, signer: s, now: time.Now, attempts: 3}, nil
}

// objectURL is <endpoint>/<bucket>/<key>, the key URI-encoded as SigV4
// encodes it (every byte but the unreserved ones and '/').
func (c *leanClient) objectURL(bucket, key string) *url.URL {
	u := c.base
	u.Path = c.base.Path + "/" + bucket + "/" + key
	u.RawPath = c.base.EscapedPath() + "/" + bucket + "/" + uriEncodePath(key)
	return &u
}

func uriEncodePath(s string) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || strings.IndexByte("-._~/", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&15])
	}
	return b.String()
}

// request is one call: what do sends, and how.
type request struct {
	op, method string
	u          *url.URL
	header     http.Header
	body       io.Reader // nil: no body
	size       int64
	idempotent bool // retried on a transport error or a 5xx (no body)
}

// do signs and sends rq and returns a 2xx response. Any other status becomes
// an error of the SDK's shape (see leanClient); a transport failure is
// returned wrapped in an *smithy.OperationError.
func (c *leanClient) do(ctx context.Context, rq *request) (*http.Response, error) {
	tries := 1
	if rq.idempotent {
		tries = c.attempts
	}
	var err error
	for attempt := range tries {
		if attempt > 0 {
			if werr := backoff(ctx, attempt); werr != nil {
				return nil, opErr(rq.op, werr)
			}
		}
		var resp *http.Response
		resp, err = c.once(ctx, rq)
		if err == nil {
			return resp, nil
		}
		if !retryable(ctx, err) {
			break
		}
	}
	return nil, err
}

func (c *leanClient) once(ctx context.Context, rq *request) (*http.Response, error) {
	r, err := http.NewRequestWithContext(ctx, rq.method, rq.u.String(), rq.body)
	if err != nil {
		return nil, opErr(rq.op, err)
	}
	for k, v := range rq.header {
		r.Header[k] = v
	}
	// The body passes through as stored: no transparent gzip by the transport.
	r.Header.Set("Accept-Encoding", "identity")
	hash := sigv4.EmptySHA256
	if rq.body != nil {
		r.ContentLength = rq.size
		if rq.size == 0 {
			r.Body = http.NoBody
		}
		hash = sigv4.UnsignedPayload
	}
	if err := c.signer.Sign(r, hash, c.now()); err != nil {
		return nil, opErr(rq.op, err)
	}
	resp, err := c.http.Do(r)
	if err != nil {
		return nil, opErr(rq.op, err)
	}
	if resp.StatusCode/100 == 2 {
		return resp, nil
	}
	return nil, opErr(rq.op, responseError(resp))
}

func opErr(op string, err error) error {
	return &smithy.OperationError{ServiceID: "S3", OperationName: op, Err: err}
}

// responseError reads (at most 64 KiB of) an error response and closes it.
// The code is the XML <Code>, or for a body without one (HEAD) the status
// text without spaces, as the SDK names it ("NotFound", "Forbidden").
func responseError(resp *http.Response) error {
	defer resp.Body.Close()
	var body struct {
		Code    string `xml:"Code"`
		Message string `xml:"Message"`
	}
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	_ = xml.Unmarshal(raw, &body)
	if body.Code == "" {
		body.Code = strings.ReplaceAll(http.StatusText(resp.StatusCode), " ", "")
		if body.Code == "" {
			body.Code = "UnknownError"
		}
	}
	if body.Message == "" {
		body.Message = body.Code
	}
	return &awshttp.ResponseError{
		ResponseError: &smithyhttp.ResponseError{
			Response: &smithyhttp.Response{Response: resp},
			Err:      &smithy.GenericAPIError{Code: body.Code, Message: body.Message, Fault: fault(resp.StatusCode)},
		},
		RequestID: resp.Header.Get("X-Amz-Request-Id"),
	}
}

func fault(status int) smithy.ErrorFault {
	if status >= 500 {
		return smithy.FaultServer
	}
	return smithy.FaultClient
}

// retryable reports whether an idempotent call may be tried again: a
// transport failure while ctx is live, a 5xx, or throttling.
func retryable(ctx context.Context, err error) bool {
	if ctx.Err() != nil {
		return false
	}
	var re *awshttp.ResponseError
	if !errors.As(err, &re) {
		return true // no response: the connection failed
	}
	var ae smithy.APIError
	s := re.HTTPStatusCode()
	return s >= 500 || s == http.StatusTooManyRequests || errors.As(err, &ae) && ae.ErrorCode() == "SlowDown"
}

// backoff waits before try number attempt (1, 2, ...): full jitter over an
// exponential bound, like the SDK's standard retryer, or until ctx ends.
func backoff(ctx context.Context, attempt int) error {
	bound := 50 * time.Millisecond << attempt
	t := time.NewTimer(rand.N(bound))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// getObject is GetObject on the lean path.
func (c *leanClient) getObject(ctx context.Context, bucket, key string, rng *backend.Range) (io.ReadCloser, backend.ObjectInfo, error) {
	rq := &request{op: "GetObject", method: http.MethodGet, u: c.objectURL(bucket, key), idempotent: true}
	if rng != nil {
		rq.header = http.Header{"Range": {"bytes=" + strconv.FormatInt(rng.Start, 10) + "-" + strconv.FormatInt(rng.Start+rng.Length-1, 10)}}
	}
	resp, err := c.do(ctx, rq)
	if err != nil {
		return nil, backend.ObjectInfo{}, err
	}
	info := responseInfo(key, resp.Header)
	if rng != nil {
		info.Size = rangeTotal(resp.Header.Get("Content-Range"), info.Size)
	}
	return resp.Body, info, nil
}

// headObject is HeadObject on the lean path.
func (c *leanClient) headObject(ctx context.Context, bucket, key string) (backend.ObjectInfo, error) {
	resp, err := c.do(ctx, &request{op: "HeadObject", method: http.MethodHead, u: c.objectURL(bucket, key), idempotent: true})
	if err != nil {
		return backend.ObjectInfo{}, err
	}
	resp.Body.Close()
	return responseInfo(key, resp.Header), nil
}

// putObject is PutObject on the lean path: body streamed once, unsigned
// (UNSIGNED-PAYLOAD), with an exact Content-Length, never retried. It
// returns the ETag and version id.
func (c *leanClient) putObject(ctx context.Context, bucket, key string, body io.Reader, size int64, meta backend.Metadata, u *backend.Unchanged) (putResult, error) {
	h := make(http.Header, 8)
	for name, v := range map[string]string{
		"Content-Type": meta.ContentType, "Content-Encoding": meta.ContentEncoding,
		"Content-Disposition": meta.ContentDisposition, "Content-Language": meta.ContentLanguage,
		"Cache-Control": meta.CacheControl,
	} {
		if v != "" {
			h[name] = []string{v}
		}
	}
	if t := parseExpires(meta.Expires); t != nil {
		h["Expires"] = []string{t.UTC().Format(http.TimeFormat)}
	}
	for k, v := range meta.User {
		h.Set("X-Amz-Meta-"+k, v)
	}
	if t := encodeTags(meta.Tags); t != nil {
		h["X-Amz-Tagging"] = []string{*t}
	}
	ifMatch, ifNoneMatch := ifUnchanged(u)
	if ifMatch != nil {
		h["If-Match"] = []string{*ifMatch}
	}
	if ifNoneMatch != nil {
		h["If-None-Match"] = []string{*ifNoneMatch}
	}
	resp, err := c.do(ctx, &request{op: "PutObject", method: http.MethodPut, u: c.objectURL(bucket, key), header: h, body: body, size: size})
	if err != nil {
		return putResult{}, err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	return putResult{etag: strings.Trim(resp.Header.Get("ETag"), `"`), versionID: resp.Header.Get("X-Amz-Version-Id")}, nil
}

// responseInfo reads an object's info from GET or HEAD response headers,
// as the SDK does (user metadata keys lowercased, first value).
func responseInfo(key string, h http.Header) backend.ObjectInfo {
	size, _ := strconv.ParseInt(h.Get("Content-Length"), 10, 64)
	var lm time.Time
	if t, err := http.ParseTime(h.Get("Last-Modified")); err == nil {
		lm = t.UTC()
	}
	info := backend.ObjectInfo{
		Key: key, Size: size, ETag: strings.Trim(h.Get("ETag"), `"`), LastModified: lm,
		Metadata: backend.Metadata{
			ContentType: h.Get("Content-Type"), ContentEncoding: h.Get("Content-Encoding"),
			ContentDisposition: h.Get("Content-Disposition"), ContentLanguage: h.Get("Content-Language"),
			CacheControl: h.Get("Cache-Control"), Expires: h.Get("Expires"),
		},
	}
	info.TagCount, _ = strconv.Atoi(h.Get("X-Amz-Tagging-Count"))
	info.VersionID = h.Get("X-Amz-Version-Id")
	info.Lock = lockOf(types.ObjectLockMode(h.Get("X-Amz-Object-Lock-Mode")), parseLockDate(h.Get("X-Amz-Object-Lock-Retain-Until-Date")),
		types.ObjectLockLegalHoldStatus(h.Get("X-Amz-Object-Lock-Legal-Hold")))
	const prefix = "X-Amz-Meta-"
	for k, v := range h {
		if len(k) > len(prefix) && strings.EqualFold(k[:len(prefix)], prefix) && len(v) > 0 {
			if info.Metadata.User == nil {
				info.Metadata.User = map[string]string{}
			}
			info.Metadata.User[strings.ToLower(k[len(prefix):])] = v[0]
		}
	}
	return info
}

// rangeTotal is the whole object's size from Content-Range "bytes a-b/size",
// or def when it is absent or unknown ("*").
func rangeTotal(cr string, def int64) int64 {
	if i := strings.LastIndexByte(cr, '/'); i >= 0 {
		if n, err := strconv.ParseInt(cr[i+1:], 10, 64); err == nil {
			return n
		}
	}
	return def
}

// parseLockDate reads x-amz-object-lock-retain-until-date (ISO 8601, as
// the SDK reads it); nil when absent or malformed.
func parseLockDate(v string) *time.Time {
	if v == "" {
		return nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return nil
	}
	return &t
}
