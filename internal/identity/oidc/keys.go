package oidc

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"slices"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// Key policy (DESIGN invariant 6). Library defaults are not trusted: every
// key is checked here before it can verify anything.
const (
	minRSABits = 2048
	maxRSABits = 8192 // bounds the cost of a verification an attacker can make us do
	maxJWKSize = 1 << 20
)

// allowedAlgs is the signature algorithm allowlist. No "none", no HMAC
// (HS256/384/512) ever: an IdP's keys are public, so accepting HMAC would let
// anyone who fetched the JWKS forge tokens (key confusion).
var allowedAlgs = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512,
	jose.PS256, jose.PS384, jose.PS512,
	jose.ES256, jose.ES384, jose.ES512,
	jose.EdDSA,
}

// AllowedAlgorithms returns the JWS "alg" values Verify can accept.
func AllowedAlgorithms() []string {
	out := make([]string, len(allowedAlgs))
	for i, a := range allowedAlgs {
		out[i] = string(a)
	}
	return out
}

func isAllowedAlg(alg string) bool {
	return slices.Contains(allowedAlgs, jose.SignatureAlgorithm(alg))
}

// verifyKey is one public key that passed the key policy.
type verifyKey struct {
	kid string
	alg string // the JWK's "alg", or "" when the JWK names none
	pub crypto.PublicKey
}

// allows reports whether k may verify a signature made with alg: the JWK's
// own "alg" (RFC 7517 §4.4) must match when present, and the key type and
// curve must be the ones alg is defined for (RFC 7518 §3.1, RFC 8037 §3.1).
func (k verifyKey) allows(alg string) bool {
	if k.alg != "" && k.alg != alg {
		return false
	}
	return keyFitsAlg(k.pub, alg)
}

func keyFitsAlg(pub crypto.PublicKey, alg string) bool {
	switch p := pub.(type) {
	case *rsa.PublicKey:
		switch jose.SignatureAlgorithm(alg) {
		case jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512:
			return true
		}
	case *ecdsa.PublicKey:
		switch jose.SignatureAlgorithm(alg) {
		case jose.ES256:
			return p.Curve == elliptic.P256()
		case jose.ES384:
			return p.Curve == elliptic.P384()
		case jose.ES512:
			return p.Curve == elliptic.P521()
		}
	case ed25519.PublicKey:
		return jose.SignatureAlgorithm(alg) == jose.EdDSA
	}
	return false
}

// privateMembers are JWK members that carry private or secret key material
// (RFC 7518 §6.2.2, §6.3.2, §6.4; RFC 8037 §2). A JWKS published by an IdP
// must hold public keys only; a key with any of these is refused.
var privateMembers = []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"}

// parseJWK checks one JWK against the key policy and returns it as a
// verifyKey. The error says which rule failed and never contains key
// material.
func parseJWK(raw json.RawMessage) (verifyKey, error) {
	var members map[string]json.RawMessage
	if err := json.Unmarshal(raw, &members); err != nil {
		return verifyKey{}, errors.New("JWK is not a JSON object")
	}
	for _, m := range privateMembers {
		if _, ok := members[m]; ok {
			return verifyKey{}, fmt.Errorf("JWK carries private or symmetric key material (%q)", m)
		}
	}
	var meta struct {
		Kty    string   `json:"kty"`
		Use    string   `json:"use"`
		Alg    string   `json:"alg"`
		Kid    string   `json:"kid"`
		KeyOps []string `json:"key_ops"`
	}
	if err := json.Unmarshal(raw, &meta); err != nil {
		return verifyKey{}, errors.New("JWK has members of the wrong type")
	}
	if meta.Use != "" && meta.Use != "sig" {
		return verifyKey{}, fmt.Errorf("JWK use is %q, not \"sig\"", meta.Use)
	}
	if _, ok := members["key_ops"]; ok && !slices.Contains(meta.KeyOps, "verify") {
		return verifyKey{}, errors.New("JWK key_ops does not include \"verify\"")
	}
	alg := normalizeKeyAlg(meta.Alg)
	if alg != "" && !isAllowedAlg(alg) {
		return verifyKey{}, fmt.Errorf("JWK alg %q is not an allowed signature algorithm", meta.Alg)
	}
	var jwk jose.JSONWebKey
	if err := jwk.UnmarshalJSON(raw); err != nil {
		// go-jose rejects unknown kty, missing members and EC points that
		// are not on the curve.
		return verifyKey{}, fmt.Errorf("JWK rejected by parser: %w", err)
	}
	if !jwk.IsPublic() || !jwk.Valid() {
		return verifyKey{}, errors.New("JWK is not a valid public key")
	}
	if err := checkPublicKey(jwk.Key); err != nil {
		return verifyKey{}, err
	}
	k := verifyKey{kid: meta.Kid, alg: alg, pub: jwk.Key}
	if alg != "" && !keyFitsAlg(k.pub, alg) {
		return verifyKey{}, fmt.Errorf("JWK alg %q does not fit its key type or curve", meta.Alg)
	}
	return k, nil
}

// normalizeKeyAlg maps "ES521", a common misspelling of ES512 (the curve is
// P-521, the hash SHA-512) found in published key sets, to ES512. keyFitsAlg
// still requires a P-521 key for it.
func normalizeKeyAlg(alg string) string {
	if alg == "ES521" {
		return string(jose.ES512)
	}
	return alg
}

// checkPublicKey enforces key strength: RSA 2048..8192 bits with an odd
// exponent ≥ 3, EC on P-256/P-384/P-521, Ed25519.
func checkPublicKey(pub crypto.PublicKey) error {
	switch p := pub.(type) {
	case *rsa.PublicKey:
		if p.N == nil || p.N.Sign() <= 0 {
			return errors.New("RSA key has no modulus")
		}
		if bits := p.N.BitLen(); bits < minRSABits || bits > maxRSABits {
			return fmt.Errorf("RSA key has %d bits, want %d to %d", bits, minRSABits, maxRSABits)
		}
		if p.E < 3 || p.E%2 == 0 {
			return errors.New("RSA public exponent must be odd and at least 3")
		}
		if hasROCAFingerprint(p.N) {
			return errors.New("RSA key has the ROCA fingerprint (CVE-2017-15361): its private key is recoverable")
		}
		return nil
	case *ecdsa.PublicKey:
		switch p.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
			return nil
		}
		return errors.New("EC key is not on P-256, P-384 or P-521")
	case ed25519.PublicKey:
		if len(p) != ed25519.PublicKeySize {
			return errors.New("Ed25519 key has the wrong size")
		}
		return nil
	}
	return fmt.Errorf("unsupported key type %T", pub)
}

// parseJWKS parses a JWK Set (RFC 7517 §5). Keys that fail the key policy
// are left out and described in skipped; so are all keys that share a kid
// with another key (ambiguous). err is set only when data is not a JWK Set.
func parseJWKS(data []byte) (keys []verifyKey, skipped []string, err error) {
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, nil, errors.New("JWKS is not a JSON object with a \"keys\" array")
	}
	if set.Keys == nil {
		return nil, nil, errors.New("JWKS has no \"keys\" array")
	}
	seen := map[string]int{}
	var all []verifyKey
	for i, raw := range set.Keys {
		k, err := parseJWK(raw)
		if err != nil {
			skipped = append(skipped, fmt.Sprintf("key %d: %v", i, err))
			continue
		}
		all = append(all, k)
		if k.kid != "" {
			seen[k.kid]++
		}
	}
	for _, k := range all {
		if k.kid != "" && seen[k.kid] > 1 {
			skipped = append(skipped, fmt.Sprintf("kid %q: used by %d keys (ambiguous)", k.kid, seen[k.kid]))
			seen[k.kid] = -1 // report once
			continue
		}
		if k.kid != "" && seen[k.kid] < 0 {
			continue
		}
		keys = append(keys, k)
	}
	return keys, skipped, nil
}

// keySource yields the keys a token may be verified with. refresh asks for
// a refetch because the token named a kid the current keys lack; a source
// may ignore it (static keys, rate limit).
type keySource interface {
	keys(ctx context.Context, refresh bool) ([]verifyKey, error)
}

type staticKeys []verifyKey

func (s staticKeys) keys(context.Context, bool) ([]verifyKey, error) { return s, nil }

// remoteKeys caches a JWKS fetched over HTTP. It refetches when the cache is
// older than maxAge, and when a token names an unknown kid (key rotation,
// OpenID Connect Core §10.1.1) but at most once per minInterval, so a flood of
// tokens with random kids cannot turn into a flood of requests to the IdP.
// Safe for concurrent use; concurrent refetches are collapsed into one.
type remoteKeys struct {
	url         string
	client      *http.Client
	now         func() time.Time
	minInterval time.Duration
	maxAge      time.Duration
	log         *slog.Logger

	fetchMu sync.Mutex // serializes fetches

	mu          sync.Mutex
	cached      []verifyKey
	fetchedAt   time.Time // last successful fetch
	attemptedAt time.Time // last attempt, successful or not
	generation  uint64    // bumped on every attempt
}

func (r *remoteKeys) snapshot() (keys []verifyKey, fetchedAt, attemptedAt time.Time, gen uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cached, r.fetchedAt, r.attemptedAt, r.generation
}

func (r *remoteKeys) keys(ctx context.Context, refresh bool) ([]verifyKey, error) {
	keys, fetchedAt, attemptedAt, gen := r.snapshot()
	now := r.now()
	stale := fetchedAt.IsZero() || now.Sub(fetchedAt) >= r.maxAge
	mayRetry := attemptedAt.IsZero() || now.Sub(attemptedAt) >= r.minInterval
	if !(stale || refresh) || !mayRetry {
		if fetchedAt.IsZero() {
			return nil, fmt.Errorf("%w: last fetch failed, next attempt after %s", ErrIDPCommunication, attemptedAt.Add(r.minInterval).Format(time.RFC3339))
		}
		return keys, nil
	}
	r.fetchMu.Lock()
	defer r.fetchMu.Unlock()
	if k, f, _, g := r.snapshot(); g != gen {
		// Another goroutine fetched while we waited.
		if f.IsZero() {
			return nil, fmt.Errorf("%w: fetch failed", ErrIDPCommunication)
		}
		return k, nil
	}
	fresh, err := r.fetch(ctx)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.generation++
	r.attemptedAt = r.now()
	if err != nil {
		r.log.Warn("oidc: JWKS fetch failed", "url", r.url, "err", err)
		if r.fetchedAt.IsZero() {
			return nil, fmt.Errorf("%w: %v", ErrIDPCommunication, err)
		}
		// Keep serving the last good key set; a kid it lacks still fails.
		return r.cached, nil
	}
	r.cached, r.fetchedAt = fresh, r.attemptedAt
	return fresh, nil
}

func (r *remoteKeys) fetch(ctx context.Context) ([]verifyKey, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.url, nil)
	if err != nil {
		return nil, fmt.Errorf("JWKS request: %w", err)
	}
	req.Header.Set("Accept", "application/json, application/jwk-set+json")
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET JWKS: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET JWKS: status %s", resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSize+1))
	if err != nil {
		return nil, fmt.Errorf("read JWKS: %w", err)
	}
	if len(body) > maxJWKSize {
		return nil, errors.New("JWKS larger than 1 MiB")
	}
	keys, skipped, err := parseJWKS(body)
	if err != nil {
		return nil, err
	}
	for _, s := range skipped {
		r.log.Warn("oidc: JWKS key ignored", "url", r.url, "reason", s)
	}
	if len(keys) == 0 {
		return nil, errors.New("JWKS holds no acceptable key")
	}
	return keys, nil
}

// rocaPrimes are the small primes of the ROCA fingerprint test (Nemec et al.,
// "The Return of Coppersmith's Attack", CCS 2017, §2.3).
var rocaPrimes = []int64{3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47, 53, 59, 61, 67, 71, 73,
	79, 83, 89, 97, 101, 103, 107, 109, 113, 127, 131, 137, 139, 149, 151, 157, 163, 167}

// rocaSubgroups[i] marks the residues mod rocaPrimes[i] in the subgroup
// generated by 65537.
var rocaSubgroups = func() [][]bool {
	out := make([][]bool, len(rocaPrimes))
	for i, p := range rocaPrimes {
		in := make([]bool, p)
		g := int64(65537) % p
		for x := int64(1); !in[x]; x = x * g % p {
			in[x] = true
		}
		out[i] = in
	}
	return out
}()

// hasROCAFingerprint reports whether n has the structure of moduli generated
// by the vulnerable Infineon RSALib: n mod p lies in the subgroup generated
// by 65537 for every small prime p. A random modulus passes all 38 tests
// with negligible probability.
func hasROCAFingerprint(n *big.Int) bool {
	var r, bp big.Int
	for i, p := range rocaPrimes {
		bp.SetInt64(p)
		r.Mod(n, &bp)
		if !rocaSubgroups[i][r.Int64()] {
			return false
		}
	}
	return true
}
