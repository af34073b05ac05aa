package sigv4

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/testcorpus"
)

// corpusRoot is the sigv4 corpus (see internal/testcorpus).
func corpusRoot(t testing.TB) string {
	t.Helper()
	return testcorpus.Dir(t, "sigv4", "INDEX.md")
}

// parseRawRequest parses a request as the corpus writes it: a request line
// whose target is raw (may hold spaces and UTF-8), "Name:value" headers with
// obs-fold continuation lines, a blank line, a body. The result looks like a
// request Go's server produced: RequestURI holds the raw target, Host is in
// r.Host, Content-Length in r.ContentLength and the header.
func parseRawRequest(t testing.TB, data []byte) *http.Request {
	t.Helper()
	text := string(data)
	head, body, hasBody := strings.Cut(text, "\n\n")
	if !hasBody {
		head = strings.TrimSuffix(head, "\n")
	}
	lines := strings.Split(head, "\n")
	reqLine := lines[0]
	sp1 := strings.IndexByte(reqLine, ' ')
	sp2 := strings.LastIndexByte(reqLine, ' ')
	if sp1 < 0 || sp2 <= sp1 {
		t.Fatalf("bad request line %q", reqLine)
	}
	r := &http.Request{
		Method:     reqLine[:sp1],
		RequestURI: reqLine[sp1+1 : sp2],
		Proto:      reqLine[sp2+1:],
		ProtoMajor: 1, ProtoMinor: 1,
		Header: make(http.Header),
	}
	p, q, _ := strings.Cut(r.RequestURI, "?")
	r.URL = &url.URL{Path: p, RawQuery: q}
	type kv struct{ k, v string }
	var hs []kv
	for _, l := range lines[1:] {
		if l == "" {
			continue
		}
		if l[0] == ' ' || l[0] == '\t' {
			hs[len(hs)-1].v += " " + strings.TrimSpace(l)
			continue
		}
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			t.Fatalf("bad header line %q", l)
		}
		hs = append(hs, kv{k, strings.TrimSpace(v)})
	}
	for _, h := range hs {
		if strings.EqualFold(h.k, "host") {
			r.Host = h.v
			continue
		}
		r.Header.Add(h.k, h.v)
	}
	r.ContentLength = int64(len(body))
	if cl := r.Header.Get("Content-Length"); cl != "" {
		n, err := strconv.ParseInt(cl, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		r.ContentLength = n
	}
	r.Body = http.NoBody
	if body != "" {
		r.Body = nopCloser{bytes.NewReader([]byte(body))}
	}
	return r.WithContext(context.Background())
}

type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }

// staticLookup serves fixed credentials.
type staticLookup map[string]Credentials // key: access key ID

func (s staticLookup) LookupCredentials(_ context.Context, ak, _ string) (Credentials, error) {
	c, ok := s[ak]
	if !ok {
		return Credentials{}, ErrUnknownAccessKey
	}
	return c, nil
}

func fixedClock(t time.Time) func() time.Time { return func() time.Time { return t } }

func mustVerifier(t testing.TB, cfg Config) *Verifier {
	t.Helper()
	v, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// wantCode fails unless err is an *Error with the given code.
func wantCode(t testing.TB, err error, code string) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("want error %s, got %v", code, err)
	}
	if e.Code != code {
		t.Fatalf("want error %s, got %s (%s)", code, e.Code, e.Message)
	}
	if e.Status == 0 {
		t.Fatalf("error %s has no HTTP status", code)
	}
}
