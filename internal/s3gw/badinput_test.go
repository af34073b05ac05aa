package s3gw

import (
	"bufio"
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	s3backend "github.com/gatehouse-dev/gatehouse/internal/s3gw/backend/s3"
	"github.com/gatehouse-dev/gatehouse/internal/sts/credentials"
)

type signOpts struct {
	at          time.Time
	secret      string // override (forgery)
	payloadHash string // default: SHA-256 of the body
}

// signedRequest builds a request signed with the aws-sdk-go-v2 signer.
func (e *env) signedRequest(t *testing.T, c credentials.Credentials, method, path string, hdr http.Header, body []byte, o signOpts) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, bytes.NewReader(body))
	require.NoError(t, err)
	for k, vs := range hdr {
		req.Header[k] = vs
	}
	if o.at.IsZero() {
		o.at = time.Now()
	}
	if o.secret == "" {
		o.secret = c.SecretAccessKey
	}
	if o.payloadHash == "" {
		sum := sha256.Sum256(body)
		o.payloadHash = hex.EncodeToString(sum[:])
	}
	req.Header.Set("X-Amz-Content-Sha256", o.payloadHash)
	creds := aws.Credentials{AccessKeyID: c.AccessKeyID, SecretAccessKey: o.secret, SessionToken: c.SessionToken}
	err = v4.NewSigner(func(so *v4.SignerOptions) { so.DisableURIPathEscaping = true }).
		SignHTTP(context.Background(), creds, req, o.payloadHash, "s3", "us-east-1", o.at)
	require.NoError(t, err)
	return req
}

func (e *env) signed(t *testing.T, c credentials.Credentials, method, path string, hdr http.Header, body []byte) *http.Response {
	t.Helper()
	resp, err := e.srv.Client().Do(e.signedRequest(t, c, method, path, hdr, body, signOpts{}))
	require.NoError(t, err)
	return resp
}

func errorCode(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	s := string(b)
	i, j := strings.Index(s, "<Code>"), strings.Index(s, "</Code>")
	if i < 0 || j < i {
		return fmt.Sprintf("status %d", resp.StatusCode)
	}
	return s[i+6 : j]
}

func (e *env) objectExists(t *testing.T, bucket, key string) bool {
	_, err := os.Stat(filepath.Join(e.backend.Dir(), bucket, filepath.FromSlash(key)))
	return err == nil
}

func TestBadSignatures(t *testing.T) {
	var offset atomic.Int64
	clock := func() time.Time { return time.Now().Add(time.Duration(offset.Load())) }
	e := newEnv(t, envOptions{clock: clock})
	c := e.creds("alice", roleARNs.admin, "")
	body := []byte("payload")

	do := func(req *http.Request) *http.Response {
		resp, err := e.srv.Client().Do(req)
		require.NoError(t, err)
		return resp
	}
	cases := []struct {
		name   string
		req    func() *http.Request
		status int
		code   string
	}{
		{"forged secret", func() *http.Request {
			return e.signedRequest(t, c, "PUT", "/data/forged", nil, body, signOpts{secret: "not-the-secret"})
		}, 403, "SignatureDoesNotMatch"},
		{"skewed clock", func() *http.Request {
			return e.signedRequest(t, c, "PUT", "/data/skewed", nil, body, signOpts{at: time.Now().Add(-20 * time.Minute)})
		}, 403, "RequestTimeTooSkewed"},
		{"payload hash mismatch", func() *http.Request {
			sum := sha256.Sum256([]byte("something else"))
			return e.signedRequest(t, c, "PUT", "/data/mismatch", nil, body, signOpts{payloadHash: hex.EncodeToString(sum[:])})
		}, 400, "XAmzContentSHA256Mismatch"},
		{"forged session token", func() *http.Request {
			bad := c
			bad.SessionToken = c.SessionToken[:len(c.SessionToken)-4] + "AAAA"
			return e.signedRequest(t, bad, "PUT", "/data/token", nil, body, signOpts{})
		}, 400, "InvalidToken"},
		{"no session token", func() *http.Request {
			bad := c
			bad.SessionToken = ""
			return e.signedRequest(t, bad, "PUT", "/data/token", nil, body, signOpts{})
		}, 403, "InvalidAccessKeyId"},
		{"anonymous", func() *http.Request {
			req, _ := http.NewRequest("PUT", e.srv.URL+"/data/anon", bytes.NewReader(body))
			return req
		}, 403, "AccessDenied"},
		{"sigv2", func() *http.Request {
			req, _ := http.NewRequest("GET", e.srv.URL+"/data/x", nil)
			req.Header.Set("Authorization", "AWS "+c.AccessKeyID+":c2lnbmF0dXJl")
			return req
		}, 400, "InvalidRequest"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp := do(tc.req())
			require.Equal(t, tc.status, resp.StatusCode)
			require.Equal(t, tc.code, errorCode(t, resp))
		})
	}
	for _, k := range []string{"forged", "skewed", "mismatch", "token", "anon"} {
		require.False(t, e.objectExists(t, "data", k), "%s must not exist", k)
	}

	// Expired credentials (and a presigned URL replayed after expiry).
	req := e.signedRequest(t, c, "GET", "/data/", nil, nil, signOpts{})
	offset.Store(int64(2 * time.Hour))
	resp := do(e.signedRequest(t, c, "GET", "/data/", nil, nil, signOpts{at: clock()}))
	require.Equal(t, "ExpiredToken", errorCode(t, resp))
	resp = do(req)
	require.NotEqual(t, http.StatusOK, resp.StatusCode, "replayed after expiry")
	resp.Body.Close()

	// Every refusal was audited: as a denial, or (the payload hash, which
	// is checked at the end of the body) as an access that then failed.
	codes := map[audit.Code]int{}
	for _, ev := range e.audit.find("PutObject") {
		codes[ev.Code]++
	}
	require.Equal(t, map[audit.Code]int{audit.CodeS3Denied: 5, audit.CodeS3Access: 1, audit.CodeS3Failed: 1}, codes)
}

func TestTraversalAndOddPaths(t *testing.T) {
	e := newEnv(t)
	c := e.creds("alice", roleARNs.admin, "")
	for _, p := range []string{"/data/../escape", "/data/a/../../escape", "/data/%2e%2e/escape", "/data/a%2f..%2f..%2fescape",
		"/data/a%00b", "/data/a%5c..%5cescape", "/data//abs", "/data/%252e%252e/escape", "/data/C:/x", "/data/a/./b", "/..%2f/escape"} {
		t.Run(p, func(t *testing.T) {
			req := e.signedRequest(t, c, "PUT", "/", nil, []byte("x"), signOpts{})
			req.URL.Opaque = p // bypass client-side cleaning: the raw path goes on the wire
			req.URL.RawPath = ""
			resp, err := e.srv.Client().Do(req)
			require.NoError(t, err)
			code := errorCode(t, resp)
			require.Equal(t, http.StatusBadRequest, resp.StatusCode, code)
			require.Contains(t, []string{"InvalidArgument", "InvalidBucketName"}, code)
		})
	}
	ents, err := os.ReadDir(e.backend.Dir())
	require.NoError(t, err)
	var names []string
	for _, d := range ents {
		names = append(names, d.Name())
	}
	require.ElementsMatch(t, []string{".gatehouse", "data", "other"}, names, "nothing escaped the bucket")
}

func TestOversizedHeaders(t *testing.T) {
	e := newEnv(t)
	c := e.creds("alice", roleARNs.admin, "")
	hdr := http.Header{"X-Amz-Meta-Big": {strings.Repeat("a", 20<<10)}}
	resp := e.signed(t, c, "PUT", "/data/big-header", hdr, []byte("x"))
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	require.Equal(t, "RequestHeaderSectionTooLarge", errorCode(t, resp))
	hdr = http.Header{"X-Amz-Meta-Huge": {strings.Repeat("a", 64<<10)}}
	resp = e.signed(t, c, "PUT", "/data/huge-header", hdr, []byte("x"))
	resp.Body.Close()
	require.Equal(t, http.StatusRequestHeaderFieldsTooLarge, resp.StatusCode, "the listener's own limit")
	require.False(t, e.objectExists(t, "data", "big-header"))
}

// chunkedBody frames data as STREAMING-AWS4-HMAC-SHA256-PAYLOAD, signing
// each chunk from seed (the request signature).
func chunkedBody(data []byte, chunk int, secret, date, amzDate, seed string, tamper int) []byte {
	mac := func(k []byte, s string) []byte { h := hmac.New(sha256.New, k); h.Write([]byte(s)); return h.Sum(nil) }
	key := mac(mac(mac(mac([]byte("AWS4"+secret), date), "us-east-1"), "s3"), "aws4_request")
	scope := date + "/us-east-1/s3/aws4_request"
	empty := sha256.Sum256(nil)
	prev := seed
	var out bytes.Buffer
	for i := 0; ; i++ {
		n := min(chunk, len(data))
		part := data[:n]
		data = data[n:]
		sum := sha256.Sum256(part)
		sts := "AWS4-HMAC-SHA256-PAYLOAD\n" + amzDate + "\n" + scope + "\n" + prev + "\n" + hex.EncodeToString(empty[:]) + "\n" + hex.EncodeToString(sum[:])
		sig := hex.EncodeToString(mac(key, sts))
		prev = sig
		if i == tamper && n > 0 {
			part = append([]byte(nil), part...)
			part[0] ^= 1 // the chunk's bytes no longer match its signature
		}
		fmt.Fprintf(&out, "%x;chunk-signature=%s\r\n", n, sig)
		out.Write(part)
		out.WriteString("\r\n")
		if n == 0 {
			return out.Bytes()
		}
	}
}

func (e *env) chunkedPut(t *testing.T, c credentials.Credentials, key string, data []byte, tamper int) *http.Response {
	t.Helper()
	now := time.Now().UTC()
	hdr := http.Header{
		"Content-Encoding":             {"aws-chunked"},
		"X-Amz-Decoded-Content-Length": {strconv.Itoa(len(data))},
	}
	req := e.signedRequest(t, c, "PUT", "/data/"+key, hdr, nil, signOpts{at: now, payloadHash: "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"})
	authz := req.Header.Get("Authorization")
	seed := authz[strings.LastIndex(authz, "Signature=")+len("Signature="):]
	body := chunkedBody(data, 64<<10, c.SecretAccessKey, now.Format("20060102"), now.Format("20060102T150405Z"), seed, tamper)
	req.Body = io.NopCloser(bytes.NewReader(body))
	req.ContentLength = int64(len(body))
	resp, err := e.srv.Client().Do(req)
	require.NoError(t, err)
	return resp
}

func TestChunkSignatures(t *testing.T) {
	e := newEnv(t)
	c := e.creds("alice", roleARNs.admin, "")
	data := bytes.Repeat([]byte("0123456789abcdef"), 20_000) // 5 chunks
	resp := e.chunkedPut(t, c, "chunked-ok", data, -1)
	require.Equal(t, http.StatusOK, resp.StatusCode, errorCode(t, resp))
	got, err := os.ReadFile(filepath.Join(e.backend.Dir(), "data", "chunked-ok"))
	require.NoError(t, err)
	require.Equal(t, data, got)

	for _, i := range []int{0, 2, 4} {
		resp := e.chunkedPut(t, c, "chunked-bad", data, i)
		require.Equal(t, http.StatusForbidden, resp.StatusCode)
		require.Equal(t, "SignatureDoesNotMatch", errorCode(t, resp))
		require.False(t, e.objectExists(t, "data", "chunked-bad"), "a tampered chunk %d leaves no object", i)
	}
	// A failed body check is recorded as a failure after the access event.
	var failed int
	for _, ev := range e.audit.find("PutObject") {
		if ev.Code == audit.CodeS3Failed {
			failed++
			require.Equal(t, "SignatureDoesNotMatch", ev.Details["cloudTrail"].(map[string]any)["errorCode"])
		}
	}
	require.Equal(t, 3, failed)
	tmp, _ := os.ReadDir(filepath.Join(e.backend.Dir(), ".gatehouse", "tmp"))
	require.Empty(t, tmp, "no temporary files left")
}

func TestContentMD5AndChecksumHeaders(t *testing.T) {
	e := newEnv(t)
	c := e.creds("alice", roleARNs.admin, "")
	hdr := http.Header{"Content-Md5": {"1B2M2Y8AsgTpgAmY7PhCfg=="}} // MD5 of ""
	resp := e.signedRequestDo(t, c, "PUT", "/data/md5", hdr, []byte("not empty"), signOpts{payloadHash: "UNSIGNED-PAYLOAD"})
	require.Equal(t, "BadDigest", errorCode(t, resp))
	hdr = http.Header{"X-Amz-Checksum-Crc32": {"AAAAAA=="}}
	resp = e.signedRequestDo(t, c, "PUT", "/data/crc", hdr, []byte("not empty"), signOpts{payloadHash: "UNSIGNED-PAYLOAD"})
	require.Equal(t, "BadDigest", errorCode(t, resp))
	require.False(t, e.objectExists(t, "data", "md5"))
	require.False(t, e.objectExists(t, "data", "crc"))
}

func (e *env) signedRequestDo(t *testing.T, c credentials.Credentials, method, path string, hdr http.Header, body []byte, o signOpts) *http.Response {
	resp, err := e.srv.Client().Do(e.signedRequest(t, c, method, path, hdr, body, o))
	require.NoError(t, err)
	return resp
}

// TestDisconnectMidUpload: a client that goes away mid-body leaves no object.
// It waits on audit events, not on time: the client goes away once the
// upload's access event shows the server is reading the body, and the test
// ends once the failure is recorded.
func TestDisconnectMidUpload(t *testing.T) {
	e := newEnv(t)
	reading, failed := make(chan struct{}, 1), make(chan struct{}, 1)
	e.audit.setHook(func(ev audit.Event) {
		if ev.Action != "s3.PutObject" {
			return
		}
		switch ev.Code {
		case audit.CodeS3Access:
			reading <- struct{}{}
		case audit.CodeS3Failed:
			failed <- struct{}{}
		}
	})
	c := e.creds("alice", roleARNs.admin, "")
	req := e.signedRequest(t, c, "PUT", "/data/partial", nil, nil, signOpts{payloadHash: "UNSIGNED-PAYLOAD"})
	req.ContentLength = 1 << 20
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.srv.URL, "http://"))
	require.NoError(t, err)
	w := bufio.NewWriter(conn)
	fmt.Fprintf(w, "PUT /data/partial HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n", req.Host, 1<<20)
	for k, vs := range req.Header {
		for _, v := range vs {
			fmt.Fprintf(w, "%s: %s\r\n", k, v)
		}
	}
	w.WriteString("\r\n")
	w.Write(bytes.Repeat([]byte("x"), 300<<10))
	require.NoError(t, w.Flush())
	<-reading
	conn.Close()
	<-failed
	require.False(t, e.objectExists(t, "data", "partial"))
	tmp, _ := os.ReadDir(filepath.Join(e.backend.Dir(), ".gatehouse", "tmp"))
	require.Empty(t, tmp)
}

// TestAuditFailClosed: if the access cannot be recorded it does not happen.
func TestAuditFailClosed(t *testing.T) {
	e := newEnv(t)
	c := e.creds("alice", roleARNs.admin, "")
	e.audit.setFail(true)
	resp := e.signed(t, c, "PUT", "/data/unaudited", nil, []byte("x"))
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	require.Equal(t, "ServiceUnavailable", errorCode(t, resp))
	require.False(t, e.objectExists(t, "data", "unaudited"))
	e.audit.setFail(false)
	require.Equal(t, http.StatusOK, e.signed(t, c, "PUT", "/data/audited", nil, []byte("x")).StatusCode)
	e.audit.setFail(true)
	resp = e.signed(t, c, "GET", "/data/audited", nil, nil)
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	body, _ := io.ReadAll(resp.Body)
	require.NotContains(t, string(body), "x</", "no object bytes without an audit record")
	resp = e.signed(t, c, "DELETE", "/data/audited", nil, nil)
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
	require.True(t, e.objectExists(t, "data", "audited"))
	// A denial that cannot be recorded is also refused with 503.
	bob := e.creds("bob", roleARNs.analyst, "")
	resp = e.signed(t, bob, "GET", "/data/audited", nil, nil)
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
}

// TestBackendDown: an unreachable S3 backend is a clean 503, no object.
func TestBackendDown(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	l.Close()
	be, err := s3backend.New(s3backend.Options{Endpoint: "http://" + addr, AccessKeyID: "a", SecretAccessKey: "b"})
	require.NoError(t, err)
	e := newEnv(t, envOptions{backend: be})
	c := e.creds("alice", roleARNs.admin, "")
	for _, m := range []string{"PUT", "GET", "HEAD", "DELETE"} {
		var body []byte
		if m == "PUT" {
			body = bytes.Repeat([]byte("x"), 1<<20)
		}
		resp := e.signed(t, c, m, "/data/k", nil, body)
		require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, m)
		resp.Body.Close()
		require.Equal(t, "1", resp.Header.Get("Retry-After"))
	}
}
