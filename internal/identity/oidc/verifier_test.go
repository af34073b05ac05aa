package oidc

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type testKey struct {
	kid  string
	alg  jose.SignatureAlgorithm
	priv crypto.Signer
}

func (k testKey) jwk() jose.JSONWebKey {
	return jose.JSONWebKey{Key: k.priv.Public(), KeyID: k.kid, Algorithm: string(k.alg), Use: "sig"}
}

var (
	keysOnce sync.Once
	rsaA     testKey
	rsaB     testKey
	ecKey    testKey
	edKey    testKey
	ec384Key testKey
	psKey    testKey
)

func keys(t testing.TB) {
	t.Helper()
	keysOnce.Do(func() {
		ra, _ := rsa.GenerateKey(rand.Reader, 2048)
		rb, _ := rsa.GenerateKey(rand.Reader, 2048)
		ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		ec3, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		_, ed, _ := ed25519.GenerateKey(rand.Reader)
		rsaA = testKey{"rsa-a", jose.RS256, ra}
		rsaB = testKey{"rsa-b", jose.RS256, rb}
		ecKey = testKey{"ec-1", jose.ES256, ec}
		ec384Key = testKey{"ec-384", jose.ES384, ec3}
		edKey = testKey{"ed-1", jose.EdDSA, ed}
		psKey = testKey{"ps-1", jose.PS256, rb}
	})
}

func jwksJSON(t testing.TB, ks ...testKey) []byte {
	t.Helper()
	set := jose.JSONWebKeySet{}
	for _, k := range ks {
		set.Keys = append(set.Keys, k.jwk())
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sign(t testing.TB, k testKey, claims map[string]any, opts ...func(*jose.SignerOptions)) string {
	t.Helper()
	so := (&jose.SignerOptions{}).WithType("JWT")
	for _, o := range opts {
		o(so)
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: k.alg, Key: jose.JSONWebKey{Key: k.priv, KeyID: k.kid}}, so)
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(claims)
	obj, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// idp is an httptest OIDC provider with a replaceable JWKS.
type idp struct {
	srv     *httptest.Server
	jwks    atomic.Value // []byte
	fetches atomic.Int32
	fail    atomic.Bool
}

func newIDP(t *testing.T, jwks []byte) *idp {
	p := &idp{}
	p.jwks.Store(jwks)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{
			"issuer":                                p.srv.URL,
			"authorization_endpoint":                p.srv.URL + "/auth",
			"token_endpoint":                        p.srv.URL + "/token",
			"jwks_uri":                              p.srv.URL + "/jwks",
			"id_token_signing_alg_values_supported": []string{"RS256", "ES256", "EdDSA"},
		})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		p.fetches.Add(1)
		if p.fail.Load() {
			http.Error(w, "down", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(p.jwks.Load().([]byte))
	})
	p.srv = httptest.NewServer(mux)
	t.Cleanup(p.srv.Close)
	return p
}

func (p *idp) claims(extra map[string]any) map[string]any {
	c := map[string]any{
		"iss": p.srv.URL, "aud": "gatehouse", "sub": "u-123",
		"iat": t0.Unix(), "exp": t0.Add(time.Hour).Unix(),
	}
	for k, v := range extra {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

func (p *idp) verifier(t *testing.T, clk *fakeClock, mod ...func(*Provider)) *Verifier {
	t.Helper()
	prov := Provider{Issuer: p.srv.URL, Audiences: []string{"other", "gatehouse"}}
	for _, m := range mod {
		m(&prov)
	}
	v, err := NewVerifier(context.Background(), prov, Options{HTTPClient: p.srv.Client(), Clock: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// assertRejected checks the error is an *Error with code and cause, and that
// it never echoes the token or any of its parts.
func assertRejected(t *testing.T, err error, token, code string, cause error) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T), want *oidc.Error", err, err)
	}
	if e.Code != code {
		t.Errorf("code %q, want %q (%v)", e.Code, code, err)
	}
	if cause != nil && !errors.Is(err, cause) {
		t.Errorf("error %v, want cause %v", err, cause)
	}
	for _, part := range strings.Split(token, ".") {
		if len(part) >= 8 && strings.Contains(err.Error(), part) {
			t.Errorf("error echoes part of the token: %v", err)
		}
	}
}

func TestVerifyDiscoveryAndMapping(t *testing.T) {
	keys(t)
	p := newIDP(t, jwksJSON(t, rsaA, ecKey))
	clk := &fakeClock{now: t0}
	v := p.verifier(t, clk)
	if v.JWKSURL() != p.srv.URL+"/jwks" {
		t.Fatalf("discovered %q", v.JWKSURL())
	}
	tok := sign(t, rsaA, p.claims(map[string]any{
		"aud":                []string{"x", "gatehouse"},
		"preferred_username": "alice", "email": "alice@example.com",
		"groups":       []any{"eng", "data", 7},
		AWSRolesClaim:  []string{"arn:aws:iam::123456789012:role/Analyst"},
		"roles":        []string{"ignored"},
		"custom_claim": "x",
	}))
	id, err := v.Verify(context.Background(), tok)
	if err != nil {
		t.Fatal(err)
	}
	if id.Subject != "u-123" || id.Username != "alice" || id.Email != "alice@example.com" || id.Issuer != p.srv.URL {
		t.Errorf("identity %+v", id)
	}
	if strings.Join(id.Groups, ",") != "eng,data" || strings.Join(id.Roles, ",") != "arn:aws:iam::123456789012:role/Analyst" {
		t.Errorf("groups %v roles %v", id.Groups, id.Roles)
	}
	if !id.Expiry.Equal(t0.Add(time.Hour)) || !id.IssuedAt.Equal(t0) || id.Claims["custom_claim"] != "x" {
		t.Errorf("expiry %v iat %v claims %v", id.Expiry, id.IssuedAt, id.Claims)
	}

	// Custom mappings, string-valued groups, "roles" fallback, username fallbacks.
	v2 := p.verifier(t, clk, func(pr *Provider) {
		pr.ClaimMappings = ClaimMappings{Groups: "grp", Username: "upn"}
	})
	id, err = v2.Verify(context.Background(), sign(t, ecKey, p.claims(map[string]any{
		"grp": "solo", "upn": "bob@corp", "roles": []string{"arn:aws:iam::1:role/R"},
	})))
	if err != nil {
		t.Fatal(err)
	}
	if id.Username != "bob@corp" || strings.Join(id.Groups, ",") != "solo" || strings.Join(id.Roles, ",") != "arn:aws:iam::1:role/R" {
		t.Errorf("mapped identity %+v", id)
	}
	for _, tc := range []struct {
		extra map[string]any
		want  string
	}{
		{map[string]any{"email": "e@x"}, "e@x"},
		{map[string]any{}, "u-123"},
	} {
		id, err := v.Verify(context.Background(), sign(t, rsaA, p.claims(tc.extra)))
		if err != nil || id.Username != tc.want {
			t.Errorf("username %v %v, want %q", id, err, tc.want)
		}
	}
}

// TestRolesClaimPresentButEmpty checks that a roles claim that is present
// but empty, null or not a list of strings grants no role (non-nil, empty
// Roles) and is never read as "no restriction" (issue 11 finding 9); only
// an absent claim leaves Roles nil.
func TestRolesClaimPresentButEmpty(t *testing.T) {
	keys(t)
	p := newIDP(t, jwksJSON(t, rsaA, ecKey))
	v := p.verifier(t, &fakeClock{now: t0})
	for _, tc := range []struct {
		name   string
		claims map[string]any
		want   []string
	}{
		{"absent", map[string]any{}, nil},
		{"empty AWS claim", map[string]any{AWSRolesClaim: []string{}}, []string{}},
		{"empty AWS claim shadows roles", map[string]any{AWSRolesClaim: []string{}, "roles": []string{"arn:aws:iam::1:role/R"}}, []string{}},
		{"empty roles", map[string]any{"roles": []any{}}, []string{}},
		{"null roles", map[string]any{"roles": json.RawMessage("null")}, []string{}},
		{"number", map[string]any{"roles": 7}, []string{}},
		{"only non-strings", map[string]any{"roles": []any{7, true}}, []string{}},
		{"one string", map[string]any{"roles": "arn:aws:iam::1:role/R"}, []string{"arn:aws:iam::1:role/R"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id, err := v.Verify(context.Background(), sign(t, rsaA, p.claims(tc.claims)))
			if err != nil {
				t.Fatal(err)
			}
			if (id.Roles == nil) != (tc.want == nil) || strings.Join(id.Roles, ",") != strings.Join(tc.want, ",") {
				t.Errorf("roles %#v, want %#v", id.Roles, tc.want)
			}
		})
	}
}

func TestKeyRotation(t *testing.T) {
	keys(t)
	p := newIDP(t, jwksJSON(t, rsaA))
	clk := &fakeClock{now: t0}
	v := p.verifier(t, clk)
	ctx := context.Background()
	oldTok := sign(t, rsaA, p.claims(nil))
	if _, err := v.Verify(ctx, oldTok); err != nil {
		t.Fatal(err)
	}
	if n := p.fetches.Load(); n != 1 {
		t.Fatalf("%d fetches, want 1", n)
	}
	if _, err := v.Verify(ctx, oldTok); err != nil || p.fetches.Load() != 1 {
		t.Fatalf("cached verify: %v, %d fetches", err, p.fetches.Load())
	}

	// The IdP rotates: the new key is published first, the old one is removed.
	p.jwks.Store(jwksJSON(t, rsaB))
	newTok := sign(t, rsaB, p.claims(nil))
	clk.Advance(11 * time.Second) // past the refetch rate limit
	if _, err := v.Verify(ctx, newTok); err != nil {
		t.Fatalf("token with the new kid after rotation: %v", err)
	}
	if n := p.fetches.Load(); n != 2 {
		t.Fatalf("%d fetches, want 2 (refetch on unknown kid)", n)
	}
	// The removed key no longer verifies.
	clk.Advance(11 * time.Second)
	_, err := v.Verify(ctx, oldTok)
	assertRejected(t, err, oldTok, CodeInvalidIdentityToken, ErrUnknownKey)

	// Unknown kids cannot make us hammer the IdP: one refetch per interval.
	before := p.fetches.Load()
	for range 20 {
		v.Verify(ctx, oldTok)
	}
	if n := p.fetches.Load() - before; n > 1 {
		t.Errorf("%d fetches for 20 unknown-kid tokens within the interval", n)
	}

	// A key the IdP has removed stops verifying after the cache's max age
	// even without unknown kids.
	p.jwks.Store(jwksJSON(t, rsaA))
	clk.Advance(2 * time.Hour)
	tok := sign(t, rsaB, p.claims(map[string]any{"iat": clk.Now().Unix(), "exp": clk.Now().Add(time.Hour).Unix()}))
	_, err = v.Verify(ctx, tok)
	assertRejected(t, err, tok, CodeInvalidIdentityToken, ErrUnknownKey)
}

func TestIDPCommunicationError(t *testing.T) {
	keys(t)
	p := newIDP(t, jwksJSON(t, rsaA))
	p.fail.Store(true)
	clk := &fakeClock{now: t0}
	v := p.verifier(t, clk)
	tok := sign(t, rsaA, p.claims(nil))
	_, err := v.Verify(context.Background(), tok)
	assertRejected(t, err, tok, CodeIDPCommunicationError, ErrIDPCommunication)
	// Recovers once the IdP is back and the retry interval passed.
	p.fail.Store(false)
	clk.Advance(11 * time.Second)
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Fatal(err)
	}
	// Discovery failure is reported at construction.
	_, err = NewVerifier(context.Background(), Provider{Issuer: p.srv.URL + "/nope", Audiences: []string{"a"}},
		Options{HTTPClient: p.srv.Client()})
	var e *Error
	if !errors.As(err, &e) || e.Code != CodeIDPCommunicationError {
		t.Errorf("discovery failure: %v", err)
	}
}

func hs256(secret []byte, header, claims string) string {
	enc := base64.RawURLEncoding
	in := enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(claims))
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(in))
	return in + "." + enc.EncodeToString(m.Sum(nil))
}

func TestAlgorithmAttacks(t *testing.T) {
	keys(t)
	p := newIDP(t, jwksJSON(t, rsaA, ecKey))
	clk := &fakeClock{now: t0}
	v := p.verifier(t, clk)
	ctx := context.Background()
	claims, _ := json.Marshal(p.claims(nil))

	// Key confusion: HMAC keyed with every plausible encoding of the public key.
	pub := rsaA.priv.Public().(*rsa.PublicKey)
	der, _ := x509.MarshalPKIXPublicKey(pub)
	pemBytes := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	jwkBytes, _ := json.Marshal(rsaA.jwk())
	secrets := map[string][]byte{"pem": pemBytes, "der": der, "jwk": jwkBytes, "n": pub.N.Bytes(),
		"pkcs1": x509.MarshalPKCS1PublicKey(pub)}
	for name, secret := range secrets {
		for _, alg := range []string{"HS256", "HS384", "HS512"} {
			tok := hs256(secret, `{"alg":"`+alg+`","kid":"rsa-a","typ":"JWT"}`, string(claims))
			_, err := v.Verify(ctx, tok)
			assertRejected(t, err, tok, CodeInvalidIdentityToken, ErrAlgorithm)
			_ = name
		}
	}

	enc := base64.RawURLEncoding
	body := enc.EncodeToString(claims)
	for _, tok := range []string{
		enc.EncodeToString([]byte(`{"alg":"none"}`)) + "." + body + ".",
		enc.EncodeToString([]byte(`{"alg":"none","kid":"rsa-a"}`)) + "." + body + ".",
		enc.EncodeToString([]byte(`{"alg":"None"}`)) + "." + body + ".",
		enc.EncodeToString([]byte(`{"alg":"RS1"}`)) + "." + body + ".AAAA",
	} {
		_, err := v.Verify(ctx, tok)
		assertRejected(t, err, tok, CodeInvalidIdentityToken, ErrAlgorithm)
	}

	// Missing alg, JSON serialization, two dots only, garbage.
	good := sign(t, rsaA, p.claims(nil))
	parts := strings.Split(good, ".")
	for _, tok := range []string{
		enc.EncodeToString([]byte(`{"kid":"rsa-a"}`)) + "." + body + "." + parts[2],
		`{"payload":"` + parts[1] + `","protected":"` + parts[0] + `","signature":"` + parts[2] + `"}`,
		parts[0] + "." + parts[1],
		parts[0] + "." + parts[1] + "." + parts[2] + ".",
		"", "...", "not a token",
	} {
		_, err := v.Verify(ctx, tok)
		assertRejected(t, err, tok, CodeInvalidIdentityToken, nil)
	}

	// Header names an RSA alg but the kid points to the EC key.
	tok := sign(t, testKey{"ec-1", jose.RS256, rsaA.priv}, p.claims(nil))
	_, err := v.Verify(ctx, tok)
	assertRejected(t, err, tok, CodeInvalidIdentityToken, nil)

	// Attacker-signed token embedding its own key in the "jwk" header,
	// claiming a trusted kid.
	attacker, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tok = sign(t, testKey{"ec-1", jose.ES256, attacker}, p.claims(nil), func(o *jose.SignerOptions) { o.EmbedJWK = true })
	_, err = v.Verify(ctx, tok)
	assertRejected(t, err, tok, CodeInvalidIdentityToken, ErrSignature)

	// Signature by an unknown key under a known kid.
	tok = sign(t, testKey{"rsa-a", jose.RS256, rsaB.priv}, p.claims(nil))
	_, err = v.Verify(ctx, tok)
	assertRejected(t, err, tok, CodeInvalidIdentityToken, ErrSignature)

	// A flipped payload bit.
	b, _ := enc.DecodeString(parts[1])
	b[len(b)/2] ^= 1
	tok = parts[0] + "." + enc.EncodeToString(b) + "." + parts[2]
	_, err = v.Verify(ctx, tok)
	assertRejected(t, err, tok, CodeInvalidIdentityToken, ErrSignature)
}

func TestClaimChecks(t *testing.T) {
	keys(t)
	p := newIDP(t, jwksJSON(t, rsaA))
	clk := &fakeClock{now: t0}
	v := p.verifier(t, clk)
	ctx := context.Background()
	for _, tc := range []struct {
		name  string
		extra map[string]any
		code  string
		cause error
	}{
		{"ok", nil, "", nil},
		{"aud list", map[string]any{"aud": []string{"a", "gatehouse"}}, "", nil},
		{"exp within skew", map[string]any{"exp": t0.Add(-30 * time.Second).Unix(), "iat": t0.Add(-time.Hour).Unix()}, "", nil},
		{"nbf within skew", map[string]any{"nbf": t0.Add(30 * time.Second).Unix()}, "", nil},
		{"wrong iss", map[string]any{"iss": "https://evil.example"}, CodeInvalidIdentityToken, ErrIssuer},
		{"iss trailing slash", map[string]any{"iss": p.srv.URL + "/"}, CodeInvalidIdentityToken, ErrIssuer},
		{"no iss", map[string]any{"iss": nil}, CodeInvalidIdentityToken, ErrIssuer},
		{"wrong aud", map[string]any{"aud": "someone-else"}, CodeInvalidIdentityToken, ErrAudience},
		{"aud list without us", map[string]any{"aud": []string{"a", "b"}}, CodeInvalidIdentityToken, ErrAudience},
		{"no aud", map[string]any{"aud": nil}, CodeInvalidIdentityToken, ErrAudience},
		{"expired", map[string]any{"exp": t0.Add(-2 * time.Minute).Unix(), "iat": t0.Add(-time.Hour).Unix()}, CodeExpiredToken, ErrExpired},
		{"no exp", map[string]any{"exp": nil}, CodeInvalidIdentityToken, ErrClaims},
		{"exp string", map[string]any{"exp": "tomorrow"}, CodeInvalidIdentityToken, ErrClaims},
		{"exp huge", map[string]any{"exp": 1e300}, CodeInvalidIdentityToken, ErrClaims},
		{"nbf in future", map[string]any{"nbf": t0.Add(5 * time.Minute).Unix()}, CodeInvalidIdentityToken, ErrNotYetValid},
		{"iat in future", map[string]any{"iat": t0.Add(10 * time.Minute).Unix(), "exp": t0.Add(time.Hour).Unix()}, CodeInvalidIdentityToken, ErrIssuedInFuture},
		{"exp before iat", map[string]any{"iat": t0.Unix(), "exp": t0.Add(-10 * time.Second).Unix()}, CodeInvalidIdentityToken, ErrClaims},
		{"no sub", map[string]any{"sub": nil}, CodeIDPRejectedClaim, ErrClaims},
		{"sub number", map[string]any{"sub": 42}, CodeIDPRejectedClaim, ErrClaims},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok := sign(t, rsaA, p.claims(tc.extra))
			id, err := v.Verify(ctx, tok)
			if tc.code == "" {
				if err != nil || id == nil {
					t.Fatalf("want ok, got %v", err)
				}
				return
			}
			assertRejected(t, err, tok, tc.code, tc.cause)
		})
	}
	// Not a JSON object payload, trailing data.
	for _, payload := range []string{`[1]`, `"x"`, `{"sub":"a"} {}`, `null`} {
		s, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: rsaA.priv, KeyID: rsaA.kid}}, nil)
		obj, _ := s.Sign([]byte(payload))
		tok, _ := obj.CompactSerialize()
		_, err := v.Verify(ctx, tok)
		assertRejected(t, err, tok, CodeInvalidIdentityToken, ErrClaims)
	}
}

func TestAlgorithmsAccepted(t *testing.T) {
	keys(t)
	for _, k := range []testKey{rsaA, psKey, ecKey, ec384Key, edKey,
		{"rsa-384", jose.RS384, rsaA.priv}, {"rsa-512", jose.RS512, rsaA.priv},
		{"ps-512", jose.PS512, rsaB.priv}} {
		t.Run(string(k.alg)+"/"+k.kid, func(t *testing.T) {
			p := newIDP(t, jwksJSON(t, k))
			v := p.verifier(t, &fakeClock{now: t0})
			if _, err := v.Verify(context.Background(), sign(t, k, p.claims(nil))); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestKeyPolicy(t *testing.T) {
	keys(t)
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	smallKey := testKey{"small", jose.RS256, small}
	p224, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	hmacJWK := `{"kty":"oct","kid":"h","alg":"HS256","k":"c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"}`
	privJWK, _ := json.Marshal(jose.JSONWebKey{Key: rsaA.priv, KeyID: "priv", Algorithm: "RS256"})
	encJWK, _ := json.Marshal(jose.JSONWebKey{Key: rsaA.priv.Public(), KeyID: "enc", Use: "enc"})
	wrongAlg, _ := json.Marshal(jose.JSONWebKey{Key: ecKey.priv.Public(), KeyID: "wa", Algorithm: "ES384"})
	for name, set := range map[string]string{
		"rsa 1024":    string(jwksJSON(t, smallKey)),
		"private key": `{"keys":[` + string(privJWK) + `]}`,
		"hmac key":    `{"keys":[` + hmacJWK + `]}`,
		"use enc":     `{"keys":[` + string(encJWK) + `]}`,
		"key_ops":     `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","key_ops":["sign"]}]}`,
		"alg/curve":   `{"keys":[` + string(wrongAlg) + `]}`,
		"P-224":       `{"keys":[{"kty":"EC","crv":"P-224","x":"` + b64(p224.X.Bytes()) + `","y":"` + b64(p224.Y.Bytes()) + `"}]}`,
		"dup kid":     `{"keys":[` + string(mustJSON(rsaA.jwk())) + `,` + string(mustJSON(testKey{"rsa-a", jose.RS256, rsaB.priv}.jwk())) + `]}`,
		"not jwks":    `[1,2]`,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := NewVerifier(context.Background(), Provider{Issuer: "https://idp.example", Audiences: []string{"a"}},
				Options{StaticJWKS: []byte(set)})
			if err == nil {
				t.Fatal("static JWKS accepted")
			}
			if strings.Contains(err.Error(), "c2VjcmV0") {
				t.Errorf("error echoes key material: %v", err)
			}
		})
	}

	// Remote: the weak key is skipped, a token signed with it is rejected.
	p := newIDP(t, []byte(`{"keys":[`+string(mustJSON(smallKey.jwk()))+`,`+string(mustJSON(rsaA.jwk()))+`]}`))
	v := p.verifier(t, &fakeClock{now: t0})
	tok := sign(t, smallKey, p.claims(nil))
	_, err = v.Verify(context.Background(), tok)
	assertRejected(t, err, tok, CodeInvalidIdentityToken, ErrUnknownKey)
	if _, err := v.Verify(context.Background(), sign(t, rsaA, p.claims(nil))); err != nil {
		t.Fatalf("the good key of the same set: %v", err)
	}
}

func TestProviderValidate(t *testing.T) {
	for name, p := range map[string]Provider{
		"empty issuer": {Audiences: []string{"a"}},
		"http issuer":  {Issuer: "http://idp.example", Audiences: []string{"a"}},
		"relative":     {Issuer: "idp.example", Audiences: []string{"a"}},
		"no audience":  {Issuer: "https://idp.example"},
		"empty aud":    {Issuer: "https://idp.example", Audiences: []string{""}},
		"http jwks":    {Issuer: "https://idp.example", Audiences: []string{"a"}, JWKSURL: "http://idp.example/jwks"},
	} {
		if err := p.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if err := (Provider{Issuer: "http://127.0.0.1:8080", Audiences: []string{"a"}}).Validate(); err != nil {
		t.Errorf("loopback http: %v", err)
	}
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func FuzzVerify(f *testing.F) {
	keys(f)
	v, err := NewVerifier(context.Background(), Provider{Issuer: "https://idp.example", Audiences: []string{"gatehouse"}},
		Options{StaticJWKS: jwksJSON(f, rsaA, ecKey, edKey), Clock: func() time.Time { return t0 }})
	if err != nil {
		f.Fatal(err)
	}
	claims := map[string]any{"iss": "https://idp.example", "aud": "gatehouse", "sub": "s", "exp": t0.Add(time.Hour).Unix()}
	for _, k := range []testKey{rsaA, ecKey, edKey} {
		f.Add(sign(f, k, claims))
	}
	f.Add("eyJhbGciOiJub25lIn0.e30.")
	f.Add("a.b.c")
	f.Add("")
	f.Fuzz(func(t *testing.T, raw string) {
		id, err := v.Verify(context.Background(), raw)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error of type %T", err)
			}
			return
		}
		if id.Issuer != "https://idp.example" || id.Subject == "" {
			t.Fatalf("accepted identity %+v", id)
		}
	})
}

// TestEmailVerified: only the boolean true or the string "true" count as a
// verified address (issue 11 finding 1: an unverified e-mail must never
// bind to a directory user).
func TestEmailVerified(t *testing.T) {
	keys(t)
	p := newIDP(t, jwksJSON(t, rsaA))
	v := p.verifier(t, &fakeClock{now: t0})
	for _, tc := range []struct {
		claim any // nil: absent
		want  bool
	}{
		{nil, false}, {true, true}, {false, false}, {"true", true}, {"false", false}, {"TRUE", false}, {1, false},
	} {
		extra := map[string]any{"email": "alice@example.com"}
		if tc.claim != nil {
			extra["email_verified"] = tc.claim
		}
		id, err := v.Verify(context.Background(), sign(t, rsaA, p.claims(extra)))
		if err != nil {
			t.Fatal(err)
		}
		if id.EmailVerified != tc.want {
			t.Errorf("email_verified %#v: EmailVerified %v, want %v", tc.claim, id.EmailVerified, tc.want)
		}
	}
}
