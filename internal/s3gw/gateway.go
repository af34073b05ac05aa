// Package s3gw is the S3-compatible gateway: the data plane of credential
// passthrough. Each request is authenticated with SigV4 against temporary
// credentials (internal/sts/credentials), authorized as the caller's role
// session through the one decision point (Authorizer), recorded as a
// CloudTrail-shaped data event through the one audit emitter before it takes
// effect (fail closed), and served from a storage backend with bodies
// streaming in both directions. See docs/design/0010-s3-gateway.md.
package s3gw

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/authzmsg"
	"github.com/gatehouse-dev/gatehouse/internal/requestid"
	"github.com/gatehouse-dev/gatehouse/internal/s3gw/backend"
	"github.com/gatehouse-dev/gatehouse/internal/s3name"
	"github.com/gatehouse-dev/gatehouse/internal/sigv4"
	"github.com/gatehouse-dev/gatehouse/internal/sts/credentials"
)

// Options configure the gateway. Backend, Verifier, Authorizer and Audit
// are required.
type Options struct {
	Backend backend.Backend
	// Verifier checks SigV4; build it with Service "s3", ModeS3 and
	// CredentialLookup{Verifier: <*credentials.Verifier>} as Lookup.
	Verifier   *sigv4.Verifier
	Authorizer Authorizer
	Audit      audit.Emitter
	Logger     *slog.Logger // default: discard
	// Region is returned by GetBucketLocation (default us-east-1).
	Region string
	// BaseDomain enables virtual-hosted-style requests: a Host of
	// "<bucket>.<BaseDomain>" addresses bucket. Path style always works.
	BaseDomain string
	// MaxHeaderBytes bounds the request header section (default 64 KiB);
	// larger requests get RequestHeaderSectionTooLarge. Set the listener's
	// http.Server.MaxHeaderBytes to the same value.
	MaxHeaderBytes int
	// Mounts (optional) bind bucket prefixes to roles. Whether a caller
	// may act as a mount's role is the Authorizer's decision.
	Mounts MountResolver
	// MaxObjectSize bounds a single PutObject or part (default 5 GiB, as AWS).
	MaxObjectSize int64
	Clock         func() time.Time // default time.Now
	// AuthzMessages (optional) seals the reason of each policy denial into
	// the AccessDenied message, for an administrator to decode.
	AuthzMessages *authzmsg.Codec
	// DenialWindow and DenialMaxSources tune the aggregation of the audit
	// records of requests refused without valid credentials (one record per
	// source and error code per window, the rest counted; at most
	// DenialMaxSources keys per window, the rest counted together). Defaults
	// 1 s and 4096. See audit.Aggregator.
	DenialWindow     time.Duration
	DenialMaxSources int
}

// Validate checks the options without side effects.
func (o Options) Validate() error {
	var errs []error
	if o.Backend == nil {
		errs = append(errs, errors.New("Backend is required"))
	}
	if o.Verifier == nil {
		errs = append(errs, errors.New("Verifier is required"))
	} else if !o.Verifier.S3Mode() {
		errs = append(errs, errors.New("Verifier must use the S3 mode"))
	}
	if o.Authorizer == nil {
		errs = append(errs, errors.New("Authorizer is required"))
	}
	if o.Audit == nil {
		errs = append(errs, errors.New("Audit is required"))
	}
	if o.MaxHeaderBytes < 0 || o.MaxObjectSize < 0 || o.DenialWindow < 0 || o.DenialMaxSources < 0 {
		errs = append(errs, errors.New("limits must not be negative"))
	}
	if strings.HasPrefix(o.BaseDomain, ".") || strings.Contains(o.BaseDomain, ":") {
		errs = append(errs, fmt.Errorf("BaseDomain %q must be a bare domain name", o.BaseDomain))
	}
	if len(errs) > 0 {
		return fmt.Errorf("s3gw: %w", errors.Join(errs...))
	}
	return nil
}

// Gateway serves the S3 REST API. Safe for concurrent use.
type Gateway struct {
	o       Options
	log     *slog.Logger
	now     func() time.Time
	keys    backend.KeyLocks  // conditional writes on backends that are not ConditionalWriters
	denials *audit.Aggregator // records of requests refused without valid credentials
}

// New validates o and returns the gateway's http.Handler. Mount it at the
// root of its own listener: path-style requests use the whole path.
func New(o Options) (*Gateway, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.Region == "" {
		o.Region = "us-east-1"
	}
	if o.MaxHeaderBytes == 0 {
		o.MaxHeaderBytes = 64 << 10
	}
	if o.MaxObjectSize == 0 {
		o.MaxObjectSize = 5 << 30
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	o.BaseDomain = strings.ToLower(o.BaseDomain)
	agg, err := audit.NewAggregator(audit.AggregatorOptions{Emitter: o.Audit, SummaryCode: audit.CodeS3DeniedAggregated,
		Window: o.DenialWindow, MaxKeys: o.DenialMaxSources, Clock: o.Clock})
	if err != nil {
		return nil, fmt.Errorf("s3gw: %w", err)
	}
	return &Gateway{o: o, log: o.Logger, now: o.Clock, denials: agg}, nil
}

// FlushDenials writes the counts of aggregated denials whose window has
// passed, or with all every count so far (at shutdown, after the listener
// has drained and before the audit log closes).
func (g *Gateway) FlushDenials(ctx context.Context, all bool) error {
	return g.denials.Flush(ctx, all)
}

// RunDenialFlush flushes aggregated denials once per window until ctx
// ends; failures are logged.
func (g *Gateway) RunDenialFlush(ctx context.Context) {
	g.denials.Run(ctx, func(err error) {
		g.log.Error("s3: audit of aggregated denials failed", "err", err)
	})
}

type handlerFunc func(w *respWriter, rq *request) error

// request is the state of one S3 request.
type request struct {
	r           *http.Request
	id          string
	bucket, key string
	op          string // CloudTrail eventName
	readOnly    bool
	handler     handlerFunc
	res         *sigv4.Result
	claims      *credentials.Claims // verified; nil until the signature checks out
	accessKeyID string              // as the request named it (verified only with claims)
	presigned   bool
	refusedAs   *credentials.Claims // genuine credentials refused as revoked: attribution only
	condCtx     map[string][]string
	denyReason  string
	decisions   []string
	params      map[string]any // requestParameters beyond bucket and key
	bytesIn     int64
	bytesOut    int64
	audited     bool // the access event was recorded
	auditFailed bool // an event could not be recorded: the answer is a bare 503
	start       time.Time
	mounts      []Mount // mounts whose role authorized (part of) the request
	// tags caches the existing tags of the objects this request's
	// decisions read (by object ARN), so that each is read once.
	tags map[string]map[string]string
	// existingTagKeys are the keys of the request's object's tags that its
	// decisions were given (s3:ExistingObjectTag/), for the audit record.
	existingTagKeys []string
	versionID       string // the version the request names (backends with versions only)
}

// respWriter tracks what was written.
type respWriter struct {
	http.ResponseWriter
	status int
	n      int64
}

func (w *respWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *respWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(p)
	w.n += int64(n)
	return n, err
}

// ReadFrom keeps the sendfile path of the underlying writer.
func (w *respWriter) ReadFrom(r io.Reader) (int64, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		n, err := rf.ReadFrom(r)
		w.n += n
		return n, err
	}
	n, err := io.Copy(struct{ io.Writer }{w.ResponseWriter}, r)
	w.n += n
	return n, err
}

func (w *respWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// ServeHTTP implements http.Handler.
func (g *Gateway) ServeHTTP(hw http.ResponseWriter, r *http.Request) {
	r, id := requestid.Ensure(r)
	rq := &request{r: r, id: id, start: g.now()}
	w := &respWriter{ResponseWriter: hw}
	h := w.Header()
	h.Set("x-amz-request-id", id)
	h.Set("x-amz-id-2", id)
	h.Set("Server", "gatehouse")
	if err := g.serve(w, rq); err != nil {
		g.fail(w, rq, err)
	}
}

func (g *Gateway) serve(w *respWriter, rq *request) error {
	if n, s3n := headerBytes(rq.r); n > g.o.MaxHeaderBytes || s3n > s3MaxHeaderBytes {
		e := s3err(sigv4.CodeRequestHeaderSectionTooLarge, http.StatusBadRequest,
			"Your request header section exceeds the maximum allowed size.")
		e.Extra = [][2]string{{"MaxSizeAllowed", strconv.Itoa(min(g.o.MaxHeaderBytes, s3MaxHeaderBytes))}}
		return e
	}
	if err := g.route(rq); err != nil {
		return err
	}
	res, err := g.o.Verifier.Verify(rq.r)
	if err != nil {
		var se *sigv4.Error
		if errors.As(err, &se) {
			rq.accessKeyID, rq.presigned = se.AccessKeyID, se.Presigned
			rq.refusedAs, _ = se.Principal.(*credentials.Claims)
		}
		return err
	}
	rq.accessKeyID, rq.presigned = res.AccessKeyID, res.Presigned
	claims, ok := res.Principal.(*credentials.Claims)
	if !ok || claims == nil {
		return &Error{Code: "AccessDenied", Status: http.StatusForbidden, Message: "Access Denied",
			Err: fmt.Errorf("credential lookup returned %T, want *credentials.Claims", res.Principal)}
	}
	rq.res, rq.claims = res, claims
	rq.condCtx = g.conditionContext(rq.r, res, claims)
	if err := g.readVersionID(rq); err != nil {
		return err
	}
	if err := g.refuseLockHeaders(rq); err != nil {
		return err
	}
	if err := refuseUnhonoured(rq); err != nil {
		return err
	}
	if err := g.checkExpectedOwner(rq); err != nil {
		return err
	}
	return rq.handler(w, rq)
}

// s3MaxHeaderBytes is S3's limit of the request header section (8 KB). The
// session token and Authorization are not counted against it: gatehouse
// session tokens can be larger than AWS's. MaxHeaderBytes bounds the whole.
const s3MaxHeaderBytes = 8 << 10

// headerBytes returns the size of the request line and headers, and the size
// of the headers that count against s3MaxHeaderBytes (the request line does
// not: a presigned URL carries the token in it).
func headerBytes(r *http.Request) (all, s3 int) {
	all = len(r.Method) + len(r.RequestURI) + 16
	for k, vs := range r.Header {
		for _, v := range vs {
			n := len(k) + len(v) + 4
			all += n
			if k != "Authorization" && k != "X-Amz-Security-Token" {
				s3 += n
			}
		}
	}
	return all, s3
}

// fail answers with the S3 error document and records the outcome: a
// refusal before the access event is a denial event (if that cannot be
// recorded the client gets 503); a failure after it is a failure event.
// The records are written with a context that outlives the request's: a
// client that goes away (the usual cause of a transfer ending short)
// cancels the request's context, and its failure must still be recorded.
func (g *Gateway) fail(w *respWriter, rq *request, err error) {
	ctx := context.WithoutCancel(rq.r.Context())
	e := translate(err)
	lvl := slog.LevelInfo
	if e.Status >= 500 {
		lvl = slog.LevelError
	}
	g.log.Log(ctx, lvl, "s3 request failed", "request_id", rq.id, "op", rq.op,
		"code", e.Code, "status", e.Status, "err", err)
	if !rq.audited {
		if aerr := g.recordRefusal(ctx, rq, e); aerr != nil {
			g.log.Error("s3: audit of a refused request failed", "request_id", rq.id, "err", aerr)
			e = errServiceUnavailble()
			rq.auditFailed = true
		}
	} else {
		if aerr := g.record(ctx, rq, audit.CodeS3Failed, e); aerr != nil {
			g.log.Error("s3: audit of a failed request failed", "request_id", rq.id, "err", aerr)
		}
	}
	if w.status != 0 {
		return // the response is under way; the connection is cut by the server
	}
	if rq.auditFailed {
		// Nothing learnt from the backend may be sent (Content-Range, ETag…).
		h := w.Header()
		for k := range h {
			switch k {
			case "X-Amz-Request-Id", "X-Amz-Id-2", "Server":
			default:
				delete(h, k)
			}
		}
	}
	g.writeError(w, rq, e)
}

func (g *Gateway) writeError(w *respWriter, rq *request, e *Error) {
	res := "/"
	if rq.bucket != "" {
		res += rq.bucket
		if rq.key != "" {
			res += "/" + rq.key
		}
	}
	doc := errorXML{Code: e.Code, Message: e.Message, Resource: res, RequestID: rq.id, StringToSign: e.StringToSign}
	for _, f := range e.Extra {
		doc.Extra = append(doc.Extra, extraXML{XMLName: xml.Name{Local: f[0]}, Value: f[1]})
	}
	switch e.Code {
	case "NoSuchKey":
		doc.Key = rq.key
	case "NoSuchBucket", "BucketNotEmpty", "BucketAlreadyExists", "BucketAlreadyOwnedByYou":
		doc.BucketName = rq.bucket
	}
	if e.Status == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", "1")
	}
	if rq.r.Method == http.MethodHead {
		w.WriteHeader(e.Status)
		return
	}
	writeXML(w, e.Status, doc)
}

// route finds the bucket, key and operation.
func (g *Gateway) route(rq *request) error {
	r := rq.r
	path := r.URL.Path
	if !strings.HasPrefix(path, "/") {
		return errInvalidArgument("invalid request path")
	}
	if b, ok := g.hostBucket(r.Host); ok {
		rq.bucket, rq.key = b, path[1:]
	} else {
		rq.bucket, rq.key, _ = strings.Cut(path[1:], "/")
	}
	if rq.bucket != "" {
		if err := s3name.Bucket(rq.bucket); err != nil {
			return err
		}
	}
	if rq.key != "" {
		if err := s3name.Key(rq.key); err != nil {
			return err
		}
	}
	q := r.URL.Query()
	has := func(k string) bool { _, ok := q[k]; return ok }
	set := func(op string, ro bool, h handlerFunc) error {
		rq.op, rq.readOnly, rq.handler = op, ro, h
		return nil
	}
	if has("tagging") && rq.key != "" {
		return g.routeObjectTagging(rq, set)
	}
	if ok, err := g.routeVersioning(rq, q); ok {
		return err
	}
	unsupported := []string{"acl", "policy", "cors", "lifecycle", "tagging", "encryption", "replication",
		"website", "logging", "notification", "torrent",
		"restore", "select", "accelerate", "requestPayment", "ownershipControls", "publicAccessBlock", "analytics",
		"inventory", "metrics", "intelligent-tiering", "policyStatus", "attributes"}
	for _, k := range unsupported {
		if has(k) {
			rq.op = "Unsupported:" + k
			return errNotImplemented()
		}
	}
	switch {
	case rq.bucket == "":
		if r.Method == http.MethodGet {
			return set("ListBuckets", true, g.listBuckets)
		}
	case rq.key == "":
		switch r.Method {
		case http.MethodGet:
			switch {
			case has("location"):
				return set("GetBucketLocation", true, g.getBucketLocation)
			case has("uploads"):
				return set("ListMultipartUploads", true, g.listMultipartUploads)
			case q.Get("list-type") == "2":
				return set("ListObjectsV2", true, g.listObjectsV2)
			default:
				return set("ListObjects", true, g.listObjectsV1)
			}
		case http.MethodHead:
			return set("HeadBucket", true, g.headBucket)
		case http.MethodPost:
			if has("delete") {
				return set("DeleteObjects", false, g.deleteObjects)
			}
		case http.MethodPut:
			return set("CreateBucket", false, g.createBucket)
		case http.MethodDelete:
			return set("DeleteBucket", false, g.deleteBucket)
		}
	default:
		switch r.Method {
		case http.MethodGet:
			if has("uploadId") {
				return set("ListParts", true, g.listParts)
			}
			return set("GetObject", true, g.getObject)
		case http.MethodHead:
			return set("HeadObject", true, g.headObject)
		case http.MethodPut:
			copySrc := r.Header.Get("X-Amz-Copy-Source") != ""
			if has("uploadId") || has("partNumber") {
				if copySrc {
					return set("UploadPartCopy", false, g.uploadPartCopy)
				}
				return set("UploadPart", false, g.uploadPart)
			}
			if copySrc {
				return set("CopyObject", false, g.copyObject)
			}
			return set("PutObject", false, g.putObject)
		case http.MethodPost:
			if has("uploads") {
				return set("CreateMultipartUpload", false, g.createMultipartUpload)
			}
			if has("uploadId") {
				return set("CompleteMultipartUpload", false, g.completeMultipartUpload)
			}
		case http.MethodDelete:
			if has("uploadId") {
				return set("AbortMultipartUpload", false, g.abortMultipartUpload)
			}
			return set("DeleteObject", false, g.deleteObject)
		}
	}
	return errMethodNotAllowed()
}

// routeObjectTagging routes ?tagging on an object. Bucket tagging stays
// NotImplemented (the unsupported list): the local backend keeps no bucket
// metadata.
func (g *Gateway) routeObjectTagging(rq *request, set func(string, bool, handlerFunc) error) error {
	switch rq.r.Method {
	case http.MethodGet:
		return set("GetObjectTagging", true, g.getObjectTagging)
	case http.MethodPut:
		return set("PutObjectTagging", false, g.putObjectTagging)
	case http.MethodDelete:
		return set("DeleteObjectTagging", false, g.deleteObjectTagging)
	}
	return errMethodNotAllowed()
}

// hostBucket extracts the bucket of a virtual-hosted-style Host.
func (g *Gateway) hostBucket(host string) (string, bool) {
	if g.o.BaseDomain == "" {
		return "", false
	}
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.ToLower(host)
	b, ok := strings.CutSuffix(host, "."+g.o.BaseDomain)
	if !ok || b == "" {
		return "", false
	}
	return b, true
}

// access records the authorized request before it takes effect. An error
// (the audit log is unavailable) fails the request: 503, nothing done.
func (g *Gateway) access(ctx context.Context, rq *request) error {
	if err := g.record(ctx, rq, audit.CodeS3Access, nil); err != nil {
		g.log.Error("s3: audit unavailable; request refused", "request_id", rq.id, "err", err)
		rq.audited = true // do not try to record it again as a denial
		rq.auditFailed = true
		e := errServiceUnavailble()
		e.Err = err
		return e
	}
	rq.audited = true
	return nil
}

// accessOverlapped starts recording the access event of a read-only request
// whose event does not depend on the backend's answer, and returns the
// context for the backend call and the wait for the record. The caller may
// run side-effect-free backend work with ctx meanwhile, but must call wait,
// and return its error, before it writes anything of the response (status,
// header or body): the response is still withheld until the event is
// durable (fail closed). wait must be called exactly once, on every path,
// and rq must not be modified until it has returned. If the record fails,
// ctx is cancelled (the backend answer is discarded) and wait returns the
// error access returns.
func (g *Gateway) accessOverlapped(ctx context.Context, rq *request) (context.Context, func() error) {
	bctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		err := g.record(ctx, rq, audit.CodeS3Access, nil)
		if err != nil {
			cancel()
		}
		done <- err
	}()
	return bctx, func() error {
		err := <-done
		cancel()
		rq.audited = true
		if err != nil {
			g.log.Error("s3: audit unavailable; request refused", "request_id", rq.id, "err", err)
			rq.auditFailed = true
			e := errServiceUnavailble()
			e.Err = err
			return e
		}
		return nil
	}
}
