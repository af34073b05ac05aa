package s3

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-dev/gatehouse/internal/s3gw/backend"
	"github.com/gatehouse-dev/gatehouse/internal/sigv4"
)

// fakeS3 is a loopback S3 endpoint for one bucket that checks every
// request's SigV4 signature with the S3-mode verifier and answers from a
// script per key. It records what it received.
type fakeS3 struct {
	t   *testing.T
	v   *sigv4.Verifier
	mu  sync.Mutex
	got []*http.Request // with Body replaced by the bytes read
	n   map[string]int  // requests per method+key
}

const gzipBytes = "\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xffKL\x04\x00\xa0\x8f\x8f\x9a\x02\x00\x00\x00"

func newFakeS3(t *testing.T) (*fakeS3, *httptest.Server) {
	v, err := sigv4.New(sigv4.Config{
		Lookup: sigv4.LookupFunc(func(_ context.Context, ak, _ string) (sigv4.Credentials, error) {
			if ak != "AKLEAN" {
				return sigv4.Credentials{}, sigv4.ErrUnknownAccessKey
			}
			return sigv4.Credentials{SecretAccessKey: "lean-secret", Principal: "backend"}, nil
		}),
		Service: "s3", Regions: []string{"us-east-1"},
	})
	require.NoError(t, err)
	f := &fakeS3{t: t, v: v, n: map[string]int{}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv
}

func xmlError(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/xml")
	w.Header().Set("X-Amz-Request-Id", "REQ1")
	w.WriteHeader(status)
	io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>`+code+`</Code><Message>m</Message></Error>`)
}

func (f *fakeS3) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	res, err := f.v.Verify(r)
	if err != nil {
		xmlError(w, http.StatusForbidden, "SignatureDoesNotMatch")
		return
	}
	body, err := io.ReadAll(res.Body(r.Body))
	if err != nil {
		xmlError(w, http.StatusBadRequest, "IncompleteBody")
		return
	}
	key := strings.TrimPrefix(r.URL.Path, "/bkt/")
	rec := r.Clone(context.Background())
	rec.Body = io.NopCloser(bytes.NewReader(body))
	f.mu.Lock()
	f.got = append(f.got, rec)
	f.n[r.Method+" "+key]++
	n := f.n[r.Method+" "+key]
	f.mu.Unlock()

	switch {
	case key == "missing" && r.Method == http.MethodHead:
		w.WriteHeader(http.StatusNotFound) // HEAD: no body, no code
	case key == "missing":
		xmlError(w, http.StatusNotFound, "NoSuchKey")
	case key == "denied":
		xmlError(w, http.StatusForbidden, "AccessDenied")
	case key == "flaky" && n == 1:
		xmlError(w, http.StatusServiceUnavailable, "SlowDown")
	case r.Method == http.MethodPut:
		w.Header().Set("ETag", `"etag-of-put"`)
	case key == "gz":
		w.Header().Set("Content-Encoding", "gzip")
		w.Header().Set("Content-Length", "22")
		w.Header().Set("ETag", `"gz-etag"`)
		io.WriteString(w, gzipBytes)
	default:
		h := w.Header()
		h.Set("ETag", `"abc"`)
		h.Set("Last-Modified", "Tue, 08 Dec 2026 01:00:00 GMT")
		h.Set("Content-Type", "text/plain")
		h.Set("Cache-Control", "no-cache")
		h.Set("X-Amz-Meta-Owner", "alice")
		if rg := r.Header.Get("Range"); rg != "" {
			h.Set("Content-Range", "bytes 1-3/10")
			h.Set("Content-Length", "3")
			w.WriteHeader(http.StatusPartialContent)
			io.WriteString(w, "ell")
			return
		}
		h.Set("Content-Length", "10")
		if r.Method != http.MethodHead {
			io.WriteString(w, "hello, s3!")
		}
	}
}

func (f *fakeS3) count(method, key string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.n[method+" "+key]
}

func (f *fakeS3) last() *http.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.got[len(f.got)-1]
}

// TestLeanClientMatchesSDK runs the hot-path calls (GetObject, HeadObject,
// PutObject) through the lean client and through the SDK against the same
// signature-checking endpoint, and requires the same results: object info,
// bodies passed through as stored (a gzip-encoded object is not decoded),
// the endpoint's errors classified into the same backend sentinels (a HEAD
// 404 without a body included), a 4xx that is no sentinel keeping its status
// and code, idempotent calls retried after a 503 and uploads never retried
// (issue 13, the hot path: a lean signed client with the SDK's behaviour).
func TestLeanClientMatchesSDK(t *testing.T) {
	for _, path := range []string{"lean", "sdk"} {
		t.Run(path, func(t *testing.T) {
			f, srv := newFakeS3(t)
			b, err := New(Options{Endpoint: srv.URL, AccessKeyID: "AKLEAN", SecretAccessKey: "lean-secret"})
			require.NoError(t, err)
			require.NotNil(t, b.lean, "path style uses the lean client")
			if path == "sdk" {
				b.lean = nil
			}
			ctx := context.Background()

			rc, info, err := b.GetObject(ctx, "bkt", "dir/a b+c.txt", nil)
			require.NoError(t, err)
			data, _ := io.ReadAll(rc)
			rc.Close()
			require.Equal(t, "hello, s3!", string(data))
			require.Equal(t, "/bkt/dir/a b+c.txt", f.last().URL.Path)
			require.Equal(t, backend.ObjectInfo{Key: "dir/a b+c.txt", Size: 10, ETag: "abc",
				LastModified: info.LastModified, Metadata: backend.Metadata{ContentType: "text/plain",
					CacheControl: "no-cache", User: map[string]string{"owner": "alice"}}}, info)
			require.Equal(t, "2026-12-08T01:00:00Z", info.LastModified.Format("2006-01-02T15:04:05Z07:00"))

			hi, err := b.HeadObject(ctx, "bkt", "dir/a b+c.txt")
			require.NoError(t, err)
			require.Equal(t, info, hi)

			rc, ri, err := b.GetObject(ctx, "bkt", "k", &backend.Range{Start: 1, Length: 3})
			require.NoError(t, err)
			data, _ = io.ReadAll(rc)
			rc.Close()
			require.Equal(t, "ell", string(data))
			require.Equal(t, "bytes=1-3", f.last().Header.Get("Range"))
			require.EqualValues(t, 10, ri.Size, "the whole object's size, from Content-Range")

			rc, gi, err := b.GetObject(ctx, "bkt", "gz", nil)
			require.NoError(t, err)
			data, _ = io.ReadAll(rc)
			rc.Close()
			require.Equal(t, gzipBytes, string(data), "the stored bytes, not decoded")
			require.Equal(t, "gzip", gi.Metadata.ContentEncoding)

			_, _, err = b.GetObject(ctx, "bkt", "missing", nil)
			require.ErrorIs(t, err, backend.ErrNoSuchKey)
			_, err = b.HeadObject(ctx, "bkt", "missing")
			require.ErrorIs(t, err, backend.ErrNoSuchKey, "HEAD 404 without a body")

			_, _, err = b.GetObject(ctx, "bkt", "denied", nil)
			require.Error(t, err)
			require.NotErrorIs(t, err, backend.ErrNoSuchKey)
			var re *awshttp.ResponseError
			require.True(t, errors.As(err, &re), "the endpoint's status stays reachable: %v", err)
			require.Equal(t, http.StatusForbidden, re.HTTPStatusCode())
			require.Contains(t, err.Error(), "AccessDenied")

			rc, _, err = b.GetObject(ctx, "bkt", "flaky", nil)
			require.NoError(t, err, "a GET is retried after a 503")
			rc.Close()
			require.Equal(t, 2, f.count(http.MethodGet, "flaky"))

			meta := backend.Metadata{ContentType: "text/csv", ContentDisposition: `attachment; filename="x.csv"`,
				Expires: "Wed, 09 Dec 2026 00:00:00 GMT", User: map[string]string{"team": "data", "Mixed-Case": "v"}}
			pi, err := b.PutObjectIfUnchanged(ctx, "bkt", "up/x.csv", strings.NewReader("a,b\n"), 4, meta, backend.Unchanged{Absent: true})
			require.NoError(t, err)
			require.Equal(t, "etag-of-put", pi.ETag)
			put := f.last()
			body, _ := io.ReadAll(put.Body)
			require.Equal(t, "a,b\n", string(body))
			require.Equal(t, "text/csv", put.Header.Get("Content-Type"))
			require.Equal(t, `attachment; filename="x.csv"`, put.Header.Get("Content-Disposition"))
			require.Equal(t, "Wed, 09 Dec 2026 00:00:00 GMT", put.Header.Get("Expires"))
			require.Equal(t, "data", put.Header.Get("X-Amz-Meta-Team"))
			require.Equal(t, "v", put.Header.Get("X-Amz-Meta-Mixed-Case"))
			require.Equal(t, "*", put.Header.Get("If-None-Match"))
			require.Equal(t, sigv4.UnsignedPayload, put.Header.Get("X-Amz-Content-Sha256"))

			_, err = b.PutObject(ctx, "bkt", "flaky", strings.NewReader("x"), 1, backend.Metadata{})
			require.Error(t, err, "an upload is sent once")
			require.Equal(t, 1, f.count(http.MethodPut, "flaky"))

			_, err = b.PutObject(ctx, "bkt", "empty", strings.NewReader(""), 0, backend.Metadata{})
			require.NoError(t, err)
		})
	}
}
