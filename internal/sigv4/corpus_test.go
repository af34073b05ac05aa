package sigv4

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// corpusContext is context.json of an aws-c-auth signing test case.
type corpusContext struct {
	Credentials struct {
		AccessKeyID     string `json:"access_key_id"`
		SecretAccessKey string `json:"secret_access_key"`
		Token           string `json:"token"`
	} `json:"credentials"`
	Expiration       int64  `json:"expiration_in_seconds"`
	Normalize        bool   `json:"normalize"`
	Region           string `json:"region"`
	Service          string `json:"service"`
	SignBody         bool   `json:"sign_body"`
	Timestamp        string `json:"timestamp"`
	OmitSessionToken bool   `json:"omit_session_token"`
}

type corpusCase struct {
	name string
	dir  string
	ctx  corpusContext
	now  time.Time
}

func loadCorpus(t *testing.T) []corpusCase {
	t.Helper()
	root := filepath.Join(corpusRoot(t), "v4")
	ents, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	var cases []corpusCase
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		c := corpusCase{name: e.Name(), dir: filepath.Join(root, e.Name())}
		raw, err := os.ReadFile(filepath.Join(c.dir, "context.json"))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(raw, &c.ctx); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		if c.now, err = time.Parse(time.RFC3339, c.ctx.Timestamp); err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		cases = append(cases, c)
	}
	if len(cases) != 38 {
		t.Fatalf("corpus: want 38 v4 cases, found %d", len(cases))
	}
	return cases
}

func (c *corpusCase) read(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(c.dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// lookup returns the case's credentials and checks that the session token
// reaches the lookup unchanged.
func (c *corpusCase) lookup(t *testing.T) CredentialLookup {
	return LookupFunc(func(_ context.Context, ak, token string) (Credentials, error) {
		if ak != c.ctx.Credentials.AccessKeyID {
			return Credentials{}, ErrUnknownAccessKey
		}
		if token != c.ctx.Credentials.Token {
			t.Errorf("%s: lookup got token %q, want %q", c.name, token, c.ctx.Credentials.Token)
			return Credentials{}, ErrInvalidSessionToken
		}
		return Credentials{SecretAccessKey: c.ctx.Credentials.SecretAccessKey, Principal: "corpus:" + ak}, nil
	})
}

// verifier builds the verifier the corpus case was signed for: standard
// (double-encoding) rules, normalization per the case.
func (c *corpusCase) verifier(t *testing.T) *Verifier {
	return mustVerifier(t, Config{
		Lookup:                   c.lookup(t),
		Service:                  c.ctx.Service,
		Regions:                  []string{c.ctx.Region},
		Mode:                     ModeStandard,
		DisablePathNormalization: !c.ctx.Normalize,
		Clock:                    fixedClock(c.now),
	})
}

// TestCorpus runs every SigV4 case of the aws-c-auth suite in both the
// header and the query form: canonical request, string to sign and signature
// byte for byte; then the full Verify; then tampering.
func TestCorpus(t *testing.T) {
	cases := loadCorpus(t)
	var compared, verified, tampered, s3Agree, s3Disagree int
	for _, c := range cases {
		for _, form := range []string{"header", "query"} {
			t.Run(c.name+"/"+form, func(t *testing.T) {
				v := c.verifier(t)
				signed := c.read(t, form+"-signed-request.txt")
				wantCR := c.read(t, form+"-canonical-request.txt")
				wantSTS := c.read(t, form+"-string-to-sign.txt")
				wantSig := c.read(t, form+"-signature.txt")

				// (1) canonical request, string to sign, signature.
				r := parseRawRequest(t, signed)
				p, e := v.prepare(r)
				if e != nil {
					t.Fatalf("prepare: %v", e)
				}
				if form == "query" && c.ctx.OmitSessionToken {
					// The token was appended to the URL after signing.
					p.in.skipQuery = skipSignatureAndToken
				}
				cr, ok := appendCanonicalRequest(nil, r, &p.in)
				if !ok {
					t.Fatal("canonical request: bad path")
				}
				if !bytes.Equal(cr, wantCR) {
					t.Fatalf("canonical request mismatch\n got: %q\nwant: %q", cr, wantCR)
				}
				sts := stringToSign(p.res, cr)
				if !bytes.Equal(sts, wantSTS) {
					t.Fatalf("string to sign mismatch\n got: %q\nwant: %q", sts, wantSTS)
				}
				key := deriveSigningKey(c.ctx.Credentials.SecretAccessKey, p.a.date, p.a.region, p.a.service)
				m := hmac.New(sha256.New, key[:])
				m.Write(sts)
				if got := hex.EncodeToString(m.Sum(nil)); got != string(wantSig) {
					t.Fatalf("signature %s, want %s", got, wantSig)
				}
				compared++

				// S3 path rules: equal to the unnormalized expectation, and
				// different from the normalized one whenever normalization
				// changes the path.
				s3in := p.in
				s3in.s3, s3in.normalize = true, false
				s3cr, _ := appendCanonicalRequest(nil, r, &s3in)
				switch {
				case !c.ctx.Normalize:
					if !bytes.Equal(s3cr, wantCR) {
						t.Fatalf("S3 rules disagree with unnormalized case\n got: %q\nwant: %q", s3cr, wantCR)
					}
					s3Agree++
				case normalizePath(p.in.rawPath) != p.in.rawPath:
					if bytes.Equal(s3cr, wantCR) {
						t.Fatalf("S3 rules agree with a normalized case whose path normalization changes")
					}
					s3Disagree++
				default:
					if !bytes.Equal(s3cr, wantCR) {
						t.Fatalf("S3 rules disagree on a path that needs no normalization\n got: %q\nwant: %q", s3cr, wantCR)
					}
				}

				// (2) the full verification.
				res, err := v.Verify(parseRawRequest(t, signed))
				if err != nil {
					t.Fatalf("Verify: %v", err)
				}
				if res.AccessKeyID != c.ctx.Credentials.AccessKeyID || res.Principal != "corpus:"+res.AccessKeyID ||
					res.SessionToken != c.ctx.Credentials.Token || res.Presigned != (form == "query") ||
					res.Region != c.ctx.Region || res.Service != c.ctx.Service {
					t.Fatalf("unexpected result %+v", res)
				}
				if res.Presigned && !res.Expires.Equal(c.now.Add(time.Duration(c.ctx.Expiration)*time.Second)) {
					t.Fatalf("presign expiry %v", res.Expires)
				}
				verified++

				// (3) tampering: signature, a signed header, the path.
				for _, tc := range []struct {
					name   string
					mutate func(string) string
				}{
					{"signature", func(s string) string { return flipSignature(t, s, form) }},
					{"host", func(s string) string {
						return strings.Replace(s, "Host:example.amazonaws.com", "Host:example.amazonaws.co", 1)
					}},
					{"path", func(s string) string {
						line, rest, _ := strings.Cut(s, "\n")
						sp := strings.IndexByte(line, ' ')
						return line[:sp+1] + "/x" + line[sp+1:] + "\n" + rest
					}},
				} {
					bad := tc.mutate(string(signed))
					if bad == string(signed) {
						t.Fatalf("%s: mutation changed nothing", tc.name)
					}
					_, err := v.Verify(parseRawRequest(t, []byte(bad)))
					wantCode(t, err, CodeSignatureDoesNotMatch)
					tampered++
				}
			})
		}
	}
	t.Logf("corpus: %d canonical/string-to-sign/signature comparisons, %d verified, %d tamperings rejected; S3 rules agree with %d unnormalized and differ from %d normalized forms",
		compared, verified, tampered, s3Agree, s3Disagree)
	if compared != 76 || verified != 76 {
		t.Errorf("want 76 comparisons and verifications, got %d and %d", compared, verified)
	}
}

func stringToSign(res *Result, canonical []byte) []byte {
	h := sha256.Sum256(canonical)
	return []byte(Algorithm + "\n" + res.amzDate + "\n" + res.scope + "\n" + hex.EncodeToString(h[:]))
}

// flipSignature changes one hex digit of the signature in a signed request.
func flipSignature(t *testing.T, s, form string) string {
	marker := "Signature="
	if form == "query" {
		marker = "X-Amz-Signature="
	}
	i := strings.Index(s, marker)
	if i < 0 {
		t.Fatalf("no %s in request", marker)
	}
	i += len(marker) + 10
	b := []byte(s)
	if b[i] == '0' {
		b[i] = '1'
	} else {
		b[i] = '0'
	}
	return string(b)
}
