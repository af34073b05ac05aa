package sigv4

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// unsignedCorpusRequest parses request.txt of a corpus case into a request
// as a client would send it: the path verbatim (URL.Opaque), the query raw.
func unsignedCorpusRequest(t *testing.T, c *corpusCase) (*http.Request, []byte) {
	t.Helper()
	raw := c.read(t, "request.txt")
	r := parseRawRequest(t, raw)
	p, q, _ := strings.Cut(r.RequestURI, "?")
	r.URL = &url.URL{Opaque: p, RawQuery: q}
	r.RequestURI = ""
	body, err := io.ReadAll(r.Body)
	require.NoError(t, err)
	return r, body
}

// signedHeaderValue returns a header's value in a corpus *-signed-request.txt.
func signedHeaderValue(t *testing.T, signed []byte, name string) string {
	t.Helper()
	for _, line := range strings.Split(string(signed), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.EqualFold(k, name) {
			return v
		}
	}
	t.Fatalf("no %s in the signed request", name)
	return ""
}

// TestSignerCorpus signs every SigV4 case of the aws-c-auth suite in the
// header form and compares the Authorization header (credential scope,
// signed headers and signature) byte for byte, then checks that the
// Verifier accepts the signed request. A case whose token is added after
// signing (omit_session_token) is signed without it, as the case says.
func TestSignerCorpus(t *testing.T) {
	for _, c := range loadCorpus(t) {
		t.Run(c.name, func(t *testing.T) {
			cfg := SignerConfig{
				AccessKeyID: c.ctx.Credentials.AccessKeyID, SecretAccessKey: c.ctx.Credentials.SecretAccessKey,
				Region: c.ctx.Region, Service: c.ctx.Service, Mode: ModeStandard,
				DisablePathNormalization: !c.ctx.Normalize, ContentSHA256Header: c.ctx.SignBody,
			}
			if !c.ctx.OmitSessionToken {
				cfg.SessionToken = c.ctx.Credentials.Token
			}
			s, err := NewSigner(cfg)
			require.NoError(t, err)
			r, body := unsignedCorpusRequest(t, &c)
			sum := sha256.Sum256(body)
			require.NoError(t, s.Sign(r, hex.EncodeToString(sum[:]), c.now))

			want := c.read(t, "header-signed-request.txt")
			require.Equal(t, signedHeaderValue(t, want, "Authorization"), r.Header.Get("Authorization"))
			require.Equal(t, signedHeaderValue(t, want, "X-Amz-Date"), r.Header.Get("X-Amz-Date"))

			if c.ctx.OmitSessionToken {
				r.Header.Set("X-Amz-Security-Token", c.ctx.Credentials.Token)
			}
			r.RequestURI = r.URL.Opaque
			if r.URL.RawQuery != "" {
				r.RequestURI += "?" + r.URL.RawQuery
			}
			r.Body = io.NopCloser(strings.NewReader(string(body)))
			_, err = c.verifier(t).Verify(r)
			require.NoError(t, err, "the verifier accepts what the signer signed")
		})
	}
}

// TestSignerS3RoundTrip signs S3 requests the way the s3 backend sends them
// (path-style, keys that need escaping, a session token, unsigned and
// signed payloads) over a real loopback connection, and verifies each with
// the S3-mode Verifier on the server side.
func TestSignerS3RoundTrip(t *testing.T) {
	const ak, secret, token = "AKIDS3", "s3-secret", "session-token"
	now := time.Date(2026, 12, 8, 2, 0, 0, 0, time.UTC)
	v := mustVerifier(t, Config{
		Lookup: LookupFunc(func(_ context.Context, id, tok string) (Credentials, error) {
			if id != ak || tok != token {
				return Credentials{}, ErrUnknownAccessKey
			}
			return Credentials{SecretAccessKey: secret, Principal: "backend"}, nil
		}),
		Service: "s3", Regions: []string{"eu-west-1"}, Clock: fixedClock(now),
	})
	got := make(chan error, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		res, err := v.Verify(r)
		if err == nil {
			_, err = io.Copy(io.Discard, res.Body(r.Body))
		}
		got <- err
	}))
	defer srv.Close()
	s, err := NewSigner(SignerConfig{AccessKeyID: ak, SecretAccessKey: secret, SessionToken: token,
		Region: "eu-west-1", Service: "s3", Mode: ModeS3})
	require.NoError(t, err)
	base, err := url.Parse(srv.URL)
	require.NoError(t, err)

	for _, tc := range []struct {
		name, method, key, query, body string
		signBody                       bool
	}{
		{"get", http.MethodGet, "plain.txt", "", "", false},
		{"get escaped key", http.MethodGet, "a b/ሴ+%/x=y&z", "", "", false},
		{"get range query", http.MethodGet, "k", "versionId=v%201&partNumber=2", "", false},
		{"put unsigned", http.MethodPut, "dir/obj", "", "hello", false},
		{"put signed body", http.MethodPut, "dir/obj", "", "hello", true},
		{"head", http.MethodHead, "~tilde", "", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := *base
			u.Path = "/bucket/" + tc.key
			u.RawPath = "/bucket/" + string(appendURIEncode(nil, tc.key, true))
			u.RawQuery = tc.query
			r, err := http.NewRequest(tc.method, u.String(), strings.NewReader(tc.body))
			require.NoError(t, err)
			r.Header.Set("Content-Type", "text/plain")
			r.Header.Set("X-Amz-Meta-Owner", "alice")
			r.Header["x-amz-meta-lower-key"] = []string{"sent as written"} // not in canonical form
			hash := UnsignedPayload
			if tc.signBody {
				sum := sha256.Sum256([]byte(tc.body))
				hash = hex.EncodeToString(sum[:])
			}
			require.NoError(t, s.Sign(r, hash, now))
			resp, err := srv.Client().Do(r)
			require.NoError(t, err)
			resp.Body.Close()
			require.NoError(t, <-got)
		})
	}
}
