package s3gw

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/s3gw/backend"
	"github.com/gatehouse-dev/gatehouse/internal/s3gw/backend/local"
	"github.com/gatehouse-dev/gatehouse/internal/sts/credentials"
	"github.com/gatehouse-dev/gatehouse/internal/testwait"
)

const secretBody = "top-secret-object-bytes"

// putSecret stores data/secret with user metadata through the gateway.
func putSecret(t *testing.T, e *env, c credentials.Credentials) {
	t.Helper()
	resp := e.signed(t, c, "PUT", "/data/secret", http.Header{"X-Amz-Meta-Color": {"blue"}}, []byte(secretBody))
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
}

// requireNothingOfTheObject checks that a response carries no object header
// and no object byte.
func requireNothingOfTheObject(t *testing.T, name string, h http.Header, body []byte) {
	t.Helper()
	for _, k := range []string{"ETag", "Last-Modified", "Content-Range", "Accept-Ranges", "X-Amz-Meta-Color", "Content-Type"} {
		if k == "Content-Type" && strings.HasPrefix(h.Get(k), "application/xml") {
			continue // the error document
		}
		require.Empty(t, h.Values(k), "%s: header %s leaked", name, k)
	}
	require.NotEqual(t, fmt.Sprint(len(secretBody)), h.Get("Content-Length"), "%s: object length leaked", name)
	require.NotContains(t, string(body), "secret-object", "%s: object bytes leaked", name)
}

// TestReadAuditFailClosed: GetObject and HeadObject whose access event
// cannot be recorded answer 503 ServiceUnavailable with no byte and no
// header of the object (ETag, its length, x-amz-meta-*, Content-Range…).
func TestReadAuditFailClosed(t *testing.T) {
	e := newEnv(t)
	c := e.creds("alice", roleARNs.admin, "")
	putSecret(t, e, c)
	get := e.signed(t, c, "GET", "/data/secret", nil, nil)
	get.Body.Close()
	etag := get.Header.Get("ETag")
	require.NotEmpty(t, etag)

	e.audit.setFail(true)
	for _, tc := range []struct {
		name, method string
		hdr          http.Header
	}{
		{"get", "GET", nil},
		{"get range", "GET", http.Header{"Range": {"bytes=0-3"}}},
		{"get unsatisfiable range", "GET", http.Header{"Range": {"bytes=100-200"}}},
		{"get not modified", "GET", http.Header{"If-None-Match": {etag}}},
		{"get precondition failed", "GET", http.Header{"If-Match": {`"nope"`}}},
		{"head", "HEAD", nil},
		{"head range", "HEAD", http.Header{"Range": {"bytes=0-3"}}},
		{"head not modified", "HEAD", http.Header{"If-None-Match": {etag}}},
	} {
		resp := e.signed(t, c, tc.method, "/data/secret", tc.hdr, nil)
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.NoError(t, err)
		require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, tc.name)
		require.Equal(t, "1", resp.Header.Get("Retry-After"), tc.name)
		if tc.method == "GET" {
			require.Contains(t, string(body), "<Code>ServiceUnavailable</Code>", tc.name)
		}
		requireNothingOfTheObject(t, tc.name, resp.Header, body)
	}
}

// firstWriteRecorder is a ResponseWriter that notes, at the first status or
// body write, whether the request's access event had been recorded then.
type firstWriteRecorder struct {
	h          http.Header
	durable    func() bool
	wrote      bool
	durableAt1 bool
	status     int
	body       strings.Builder
}

func (r *firstWriteRecorder) Header() http.Header { return r.h }

func (r *firstWriteRecorder) first() {
	if !r.wrote {
		r.wrote, r.durableAt1 = true, r.durable()
	}
}

func (r *firstWriteRecorder) WriteHeader(code int) {
	r.first()
	if r.status == 0 {
		r.status = code
	}
}

func (r *firstWriteRecorder) Write(p []byte) (int, error) {
	r.first()
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.body.Write(p)
}

// serveDirect runs one signed request through the gateway's handler with a
// firstWriteRecorder.
func serveDirect(t *testing.T, e *env, c credentials.Credentials, method, path string, hdr http.Header, op string) *firstWriteRecorder {
	t.Helper()
	req := e.signedRequest(t, c, method, path, hdr, nil, signOpts{})
	req.RequestURI, req.RemoteAddr = req.URL.RequestURI(), "127.0.0.1:4711"
	n0 := len(accessEvents(e, op))
	rec := &firstWriteRecorder{h: http.Header{}, durable: func() bool { return len(accessEvents(e, op)) > n0 }}
	e.gw.ServeHTTP(rec, req)
	require.True(t, rec.wrote, "%s %s: nothing written", method, path)
	return rec
}

func accessEvents(e *env, op string) []audit.Event {
	var out []audit.Event
	for _, ev := range e.audit.find(op) {
		if ev.Code == audit.CodeS3Access {
			out = append(out, ev)
		}
	}
	return out
}

// TestReadWaitsForDurableAudit: with an emitter that takes 200 ms, the
// first status/header/body write of every read happens only after the
// access event was recorded (ordering, no timing threshold).
func TestReadWaitsForDurableAudit(t *testing.T) {
	e := newEnv(t)
	c := e.creds("alice", roleARNs.admin, "")
	putSecret(t, e, c)
	up, err := e.client(c).CreateMultipartUpload(context.Background(), &awss3.CreateMultipartUploadInput{
		Bucket: aws.String("data"), Key: aws.String("mp")})
	require.NoError(t, err)
	e.audit.setHook(func(ev audit.Event) {
		if ev.Code == audit.CodeS3Access {
			time.Sleep(200 * time.Millisecond)
		}
	})
	for _, tc := range []struct {
		method, path, op string
		hdr              http.Header
		status           int
		want             string
	}{
		{"GET", "/data/secret", "GetObject", nil, 200, secretBody},
		{"GET", "/data/secret", "GetObject", http.Header{"Range": {"bytes=4-9"}}, 206, "secret"},
		{"HEAD", "/data/secret", "HeadObject", nil, 200, ""},
		{"GET", "/data?list-type=2", "ListObjectsV2", nil, 200, "<Key>secret</Key>"},
		{"GET", "/data", "ListObjects", nil, 200, "<Key>secret</Key>"},
		{"GET", "/", "ListBuckets", nil, 200, "<Name>data</Name>"},
		{"GET", "/data/mp?uploadId=" + *up.UploadId, "ListParts", nil, 200, *up.UploadId},
	} {
		rec := serveDirect(t, e, c, tc.method, tc.path, tc.hdr, tc.op)
		require.Equal(t, tc.status, rec.status, "%s %s: %s", tc.method, tc.path, rec.body.String())
		require.True(t, rec.durableAt1, "%s %s: response written before the access event was recorded", tc.method, tc.path)
		require.Contains(t, rec.body.String(), tc.want)
	}
}

// listSignal wraps a backend and reports list calls.
type listSignal struct {
	*local.Backend
	called chan string
}

func (l *listSignal) signal(op string) {
	select {
	case l.called <- op:
	default:
	}
}

func (l *listSignal) ListBuckets(ctx context.Context) ([]backend.BucketInfo, error) {
	l.signal("ListBuckets")
	return l.Backend.ListBuckets(ctx)
}

func (l *listSignal) ListObjects(ctx context.Context, bucket string, o backend.ListOptions) (backend.ListResult, error) {
	l.signal("ListObjects")
	return l.Backend.ListObjects(ctx, bucket, o)
}

func (l *listSignal) ListParts(ctx context.Context, bucket, key, id string, marker, max int) (backend.ListPartsResult, error) {
	l.signal("ListParts")
	return l.Backend.ListParts(ctx, bucket, key, id, marker, max)
}

// TestListOverlapsAudit: the list reads run their backend call while the
// access event is being made durable, and still answer only afterwards; if
// the event fails, the listing is dropped (503, no key leaks).
func TestListOverlapsAudit(t *testing.T) {
	lb, err := local.Open(filepath.Join(t.TempDir(), "objects"))
	require.NoError(t, err)
	t.Cleanup(func() { lb.Close() })
	require.NoError(t, lb.CreateBucket(context.Background(), "data"))
	be := &listSignal{Backend: lb, called: make(chan string, 1)}
	e := newEnv(t, envOptions{backend: be})
	c := e.creds("alice", roleARNs.admin, "")
	putSecret(t, e, c)
	up, err := e.client(c).CreateMultipartUpload(context.Background(), &awss3.CreateMultipartUploadInput{
		Bucket: aws.String("data"), Key: aws.String("mp")})
	require.NoError(t, err)

	var overlapped atomic.Bool
	hung := testwait.Hung(t)
	e.audit.setHook(func(ev audit.Event) {
		if ev.Code != audit.CodeS3Access {
			return
		}
		// The access event is not durable until the backend was asked: a
		// gateway that does not overlap them never asks it, and the wait
		// ends only at the test binary's own deadline (no window).
		select {
		case <-be.called:
			overlapped.Store(true)
		case <-hung:
			overlapped.Store(false)
		}
	})
	cases := []struct{ path, op, want string }{
		{"/data?list-type=2", "ListObjectsV2", "<Key>secret</Key>"},
		{"/data", "ListObjects", "<Key>secret</Key>"},
		{"/", "ListBuckets", "<Name>data</Name>"},
		{"/data/mp?uploadId=" + *up.UploadId, "ListParts", *up.UploadId},
	}
	for _, tc := range cases {
		overlapped.Store(false)
		rec := serveDirect(t, e, c, "GET", tc.path, nil, tc.op)
		require.Equal(t, http.StatusOK, rec.status, tc.op)
		require.True(t, overlapped.Load(), "%s: the backend was not called while the audit was pending", tc.op)
		require.True(t, rec.durableAt1, tc.op)
		require.Contains(t, rec.body.String(), tc.want, tc.op)
	}

	// Fail closed: the backend answered, the event failed: 503, nothing of the listing.
	e.audit.setHook(nil)
	e.audit.setFail(true)
	for _, tc := range cases {
		resp := e.signed(t, c, "GET", tc.path, nil, nil)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, tc.op)
		require.Contains(t, string(body), "<Code>ServiceUnavailable</Code>", tc.op)
		require.NotContains(t, string(body), tc.want, tc.op)
		require.NotContains(t, string(body), "secret</Key>", tc.op)
	}
	e.audit.setFail(false)

	// A backend failure after the record is still a GH5002W, as before.
	resp := e.signed(t, c, "GET", "/data/mp?uploadId=nope", nil, nil)
	require.Equal(t, "NoSuchUpload", errorCode(t, resp))
	var failed []audit.Event
	for _, ev := range e.audit.find("ListParts") {
		if ev.Code == audit.CodeS3Failed {
			failed = append(failed, ev)
		}
	}
	require.Len(t, failed, 1)
}

// TestConcurrentReadsRace: concurrent reads with a slow emitter (run with -race).
func TestConcurrentReadsRace(t *testing.T) {
	e := newEnv(t)
	c := e.creds("alice", roleARNs.admin, "")
	putSecret(t, e, c)
	e.audit.setHook(func(ev audit.Event) { time.Sleep(time.Millisecond) })
	cl := e.client(c)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 5; j++ {
				out, err := cl.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String("data"), Key: aws.String("secret")})
				if err != nil {
					errs <- err
					return
				}
				b, err := io.ReadAll(out.Body)
				out.Body.Close()
				if err != nil || string(b) != secretBody {
					errs <- fmt.Errorf("body %q, %v", b, err)
					return
				}
				if _, err := cl.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: aws.String("data"), Key: aws.String("secret")}); err != nil {
					errs <- err
					return
				}
				lo, err := cl.ListObjectsV2(ctx, &awss3.ListObjectsV2Input{Bucket: aws.String("data")})
				if err != nil || len(lo.Contents) != 1 {
					errs <- errors.Join(err, fmt.Errorf("list: %d", len(lo.Contents)))
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.Len(t, accessEvents(e, "GetObject"), 40)
}
