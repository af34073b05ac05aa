package sigv4

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/smithy-go/encoding/httpbinding"
)

// Cross-check against the aws-sdk-go-v2 signer (pinned in go.mod): requests
// with random paths, queries and headers signed by the SDK must verify, and
// any mutation must not.

const (
	xAK     = "AKIAGATEHOUSETEST"
	xSecret = "s3cr3t/Key+With=Symbols"
	xToken  = "FQoGZXIvYXdzEXAMPLE//session+token=="
)

var xTime = time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)

func xLookup() CredentialLookup {
	return LookupFunc(func(_ context.Context, ak, token string) (Credentials, error) {
		if ak != xAK {
			return Credentials{}, ErrUnknownAccessKey
		}
		if token != "" && token != xToken {
			return Credentials{}, ErrInvalidSessionToken
		}
		return Credentials{SecretAccessKey: xSecret, Principal: "alice", Expires: xTime.Add(12 * time.Hour)}, nil
	})
}

// alphabet for random path segments, query names/values and header values:
// unreserved, reserved, space, percent, and multi-byte UTF-8.
var pieces = []string{
	"a", "Z", "0", "-", "_", ".", "~", " ", "+", "=", "&", "?", "#", "%", "!", "$", "'", "(", ")", "*",
	",", ";", ":", "@", "[", "]", "é", "ሴ", "😀", "\"", "<", ">", "^", "`", "{", "|", "}", "\\",
}

func randString(rng *rand.Rand, min, max int) string {
	n := min + rng.IntN(max-min+1)
	var b strings.Builder
	for range n {
		if rng.IntN(3) == 0 {
			b.WriteString(pieces[rng.IntN(len(pieces))])
		} else {
			b.WriteByte("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"[rng.IntN(62)])
		}
	}
	return b.String()
}

func randPath(rng *rand.Rand, allowDots bool) string {
	n := 1 + rng.IntN(4)
	segs := make([]string, n)
	for i := range segs {
		switch r := rng.IntN(12); {
		case allowDots && r == 0:
			segs[i] = "."
		case allowDots && r == 1:
			segs[i] = ""
		default:
			for segs[i] == "" || !allowDots && (segs[i] == "." || segs[i] == "..") {
				segs[i] = strings.ReplaceAll(randString(rng, 1, 10), "/", "")
			}
		}
	}
	p := "/" + strings.Join(segs, "/")
	if rng.IntN(3) == 0 {
		p += "/"
	}
	return p
}

// randQuery builds a raw query with repeated keys, escaping spaces either
// as '+' or as %20.
func randQuery(rng *rand.Rand) string {
	var parts []string
	n := rng.IntN(5)
	for range n {
		k := "k" + randString(rng, 0, 6)
		reps := 1 + rng.IntN(2)
		for range reps {
			v := randString(rng, 0, 8)
			esc := url.QueryEscape
			if rng.IntN(2) == 0 {
				esc = func(s string) string { return strings.ReplaceAll(url.QueryEscape(s), "+", "%20") }
			}
			if v == "" && rng.IntN(2) == 0 {
				parts = append(parts, esc(k))
			} else {
				parts = append(parts, esc(k)+"="+esc(v))
			}
		}
	}
	return strings.Join(parts, "&")
}

type xcase struct {
	s3        bool
	presign   bool
	token     bool
	unsigned  bool // S3: UNSIGNED-PAYLOAD
	declare   bool // standard: send x-amz-content-sha256
	normalize bool // standard: verifier normalizes (paths then have no dot segments)
}

// buildSDKRequest signs a random request with the SDK and returns it as the
// server would see it, plus the random header names it carries.
func buildSDKRequest(t *testing.T, rng *rand.Rand, c xcase) (*http.Request, []string, []byte) {
	t.Helper()
	path := randPath(rng, !c.normalize)
	u := &url.URL{Scheme: "https", Host: "gw.example.test", Path: path, RawQuery: randQuery(rng)}
	if c.s3 {
		// The SDK's S3 client puts the AWS-encoded key on the wire.
		u.RawPath = httpbinding.EscapePath(path, false)
	}
	method := []string{"GET", "PUT", "POST", "DELETE", "HEAD"}[rng.IntN(5)]
	var body []byte
	if method == "PUT" || method == "POST" {
		body = []byte(randString(rng, 0, 300))
	}
	req, err := http.NewRequest(method, u.String(), bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.URL = u
	var names []string
	for i := range rng.IntN(4) {
		name := fmt.Sprintf("X-Test-%d-%s", i, []string{"alpha", "Beta", "g"}[rng.IntN(3)])
		for range 1 + rng.IntN(2) {
			v := strings.ReplaceAll(randString(rng, 1, 12), "\\", "")
			v = strings.Map(func(r rune) rune {
				if r < 0x80 {
					return r
				}
				return 'u' // header values on the wire are bytes; keep ASCII
			}, v)
			if rng.IntN(2) == 0 {
				v = "  " + v + "   inner  spaces "
			}
			req.Header.Add(name, v)
		}
		names = append(names, strings.ToLower(name))
	}
	if rng.IntN(3) == 0 {
		req.Header.Set("X-Amz-Meta-Owner", "team   data")
		names = append(names, "x-amz-meta-owner")
	}
	sum := sha256.Sum256(body)
	payload := hex.EncodeToString(sum[:])
	if c.s3 {
		if c.unsigned || c.presign {
			payload = UnsignedPayload
		}
		if !c.presign {
			req.Header.Set("X-Amz-Content-Sha256", payload)
		}
	} else if c.declare && !c.presign {
		req.Header.Set("X-Amz-Content-Sha256", payload)
	}
	creds := aws.Credentials{AccessKeyID: xAK, SecretAccessKey: xSecret}
	if c.token {
		creds.SessionToken = xToken
	}
	service := "sts"
	if c.s3 {
		service = "s3"
	}
	signer := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = c.s3 })
	signTime := xTime.Add(-time.Duration(rng.IntN(600)) * time.Second)
	if c.presign {
		raw := req.URL.RawQuery
		exp := "X-Amz-Expires=" + fmt.Sprint(700+rng.IntN(7200))
		if raw != "" {
			raw += "&"
		}
		req.URL.RawQuery = raw + exp
		signedURI, hdr, err := signer.PresignHTTP(context.Background(), creds, req, payload, service, "eu-west-1", signTime)
		if err != nil {
			t.Fatal(err)
		}
		pu, err := url.Parse(signedURI)
		if err != nil {
			t.Fatal(err)
		}
		if c.s3 {
			pu.RawPath = u.RawPath
		}
		nr, _ := http.NewRequest(method, "https://gw.example.test/", bytes.NewReader(body))
		nr.URL = pu
		for k, vs := range hdr {
			if strings.EqualFold(k, "host") {
				nr.Host = vs[0]
				continue
			}
			for _, v := range vs {
				nr.Header.Add(k, v)
			}
		}
		req = nr
	} else if err := signer.SignHTTP(context.Background(), creds, req, payload, service, "eu-west-1", signTime); err != nil {
		t.Fatal(err)
	}
	return wireRoundTrip(t, req), names, body
}

// wireRoundTrip serializes a client request and parses it back the way
// net/http's server does, so the verifier sees RequestURI, Host and headers
// as on a real connection.
func wireRoundTrip(t testing.TB, req *http.Request) *http.Request {
	t.Helper()
	var buf bytes.Buffer
	if err := req.Write(&buf); err != nil {
		t.Fatal(err)
	}
	sr, err := http.ReadRequest(bufio.NewReader(&buf))
	if err != nil {
		t.Fatalf("ReadRequest: %v\n%s", err, buf.String())
	}
	return sr
}

func cloneServerRequest(t *testing.T, r *http.Request, body []byte) *http.Request {
	c := r.Clone(context.Background())
	c.Body = io.NopCloser(bytes.NewReader(body))
	return c
}

func TestSDKCrossCheck(t *testing.T) {
	modes := []xcase{
		{s3: true}, {s3: true, unsigned: true}, {s3: true, token: true}, {s3: true, presign: true},
		{s3: true, presign: true, token: true},
		{}, {declare: true}, {token: true}, {presign: true}, {presign: true, token: true},
		{normalize: true}, {normalize: true, presign: true},
	}
	rng := rand.New(rand.NewPCG(20260314, 7))
	const perMode = 150
	accepted, rejected := 0, 0
	for _, c := range modes {
		name := fmt.Sprintf("s3=%v/presign=%v/token=%v/unsigned=%v/declare=%v/normalize=%v", c.s3, c.presign, c.token, c.unsigned, c.declare, c.normalize)
		t.Run(name, func(t *testing.T) {
			mode := ModeStandard
			service := "sts"
			if c.s3 {
				mode, service = ModeS3, "s3"
			}
			v := mustVerifier(t, Config{
				Lookup: xLookup(), Service: service, Regions: []string{"us-east-1", "eu-west-1"},
				Mode: mode, DisablePathNormalization: !c.normalize, Clock: fixedClock(xTime),
			})
			for i := range perMode {
				r, names, body := buildSDKRequest(t, rng, c)
				res, err := v.Verify(cloneServerRequest(t, r, body))
				if err != nil {
					t.Fatalf("#%d: SDK-signed %s %s rejected: %v", i, r.Method, r.RequestURI, err)
				}
				if res.Principal != "alice" || res.Region != "eu-west-1" || (res.SessionToken == xToken) != c.token {
					t.Fatalf("#%d: result %+v", i, res)
				}
				got, err := io.ReadAll(res.Body(io.NopCloser(bytes.NewReader(body))))
				if err != nil || !bytes.Equal(got, body) {
					t.Fatalf("#%d: body read: %v", i, err)
				}
				accepted++

				// Mutations.
				type mut struct {
					name  string
					apply func(*http.Request)
					codes []string
				}
				muts := []mut{
					{"method", func(m *http.Request) {
						if m.Method == "PATCH" {
							m.Method = "GET"
						} else {
							m.Method = "PATCH"
						}
					}, []string{CodeSignatureDoesNotMatch}},
					{"path", func(m *http.Request) { m.RequestURI = "/z" + m.RequestURI }, []string{CodeSignatureDoesNotMatch}},
					{"query", func(m *http.Request) {
						if strings.Contains(m.RequestURI, "?") {
							m.RequestURI += "&extra=1"
						} else {
							m.RequestURI += "?extra=1"
						}
					}, []string{CodeSignatureDoesNotMatch}},
					{"host", func(m *http.Request) { m.Host = "evil.example.test" }, []string{CodeSignatureDoesNotMatch}},
					{"signature", func(m *http.Request) {
						if c.presign {
							i := strings.Index(m.RequestURI, "X-Amz-Signature=") + len("X-Amz-Signature=") + 5
							b := []byte(m.RequestURI)
							b[i] = otherHex(b[i])
							m.RequestURI = string(b)
						} else {
							a := m.Header.Get("Authorization")
							j := strings.Index(a, "Signature=") + len("Signature=") + 5
							b := []byte(a)
							b[j] = otherHex(b[j])
							m.Header.Set("Authorization", string(b))
						}
					}, []string{CodeSignatureDoesNotMatch}},
					{"unsigned x-amz header", func(m *http.Request) { m.Header.Set("X-Amz-Grant-Full-Control", "id=mallory") }, []string{CodeAccessDenied}},
				}
				if len(names) > 0 {
					n := names[rng.IntN(len(names))]
					muts = append(muts, mut{"header " + n, func(m *http.Request) {
						vals := m.Header.Values(n)
						m.Header.Set(n, strings.TrimSpace(vals[0])+"x")
					}, []string{CodeSignatureDoesNotMatch}})
				}
				for _, mu := range muts {
					m := cloneServerRequest(t, r, body)
					mu.apply(m)
					_, err := v.Verify(m)
					if err == nil {
						t.Fatalf("#%d: mutation %q accepted: %s %s", i, mu.name, m.Method, m.RequestURI)
					}
					var e *Error
					if !asError(err, &e) || !contains(mu.codes, e.Code) {
						t.Fatalf("#%d: mutation %q: got %v, want %v", i, mu.name, err, mu.codes)
					}
					rejected++
				}

				// A different body.
				if len(body) > 0 && (!c.s3 || !c.unsigned) && !c.presign {
					bad := append([]byte{body[0] ^ 1}, body[1:]...)
					res, err := v.Verify(cloneServerRequest(t, r, bad))
					if err == nil {
						_, err = io.ReadAll(res.Body(io.NopCloser(bytes.NewReader(bad))))
					}
					if err == nil {
						t.Fatalf("#%d: tampered body accepted", i)
					}
					rejected++
				}
			}
		})
	}
	t.Logf("SDK cross-check: %d SDK-signed requests accepted, %d mutations rejected", accepted, rejected)
}

func otherHex(b byte) byte {
	if b == 'a' {
		return 'b'
	}
	return 'a'
}

func asError(err error, e **Error) bool {
	x, ok := err.(*Error)
	*e = x
	return ok
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
