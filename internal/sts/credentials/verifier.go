package credentials

import (
	"context"
	"crypto/subtle"
	"errors"
	"sync"
	"time"
)

// Verifier checks temporary credentials presented with a request (the
// SigV4 access key id and X-Amz-Security-Token) and returns their claims and
// secret, with which the caller then checks the SigV4 signature. Safe for
// concurrent use.
type Verifier struct {
	kr    *Keyring
	rev   *Revoker
	cache openedTokens
}

// NewVerifier returns a Verifier. rev is required: there is no mode without
// revocation checks.
func NewVerifier(kr *Keyring, rev *Revoker) (*Verifier, error) {
	if kr == nil || rev == nil {
		return nil, errors.New("credentials: verifier needs a keyring and a revoker")
	}
	return &Verifier{kr: kr, rev: rev}, nil
}

// Verify authenticates sessionToken, checks that it belongs to accessKeyID,
// that it has not expired at now (ClockSkew tolerance) and is not revoked,
// and returns its claims and the session's secret access key. Errors are
// *Error with code InvalidClientTokenId (malformed, forged, unknown key,
// wrong access key id), ExpiredToken, AccessDenied (revoked) or
// InternalFailure (revocation state unavailable: fail closed).
//
// On AccessDenied the token is genuine, so the claims and the secret are
// returned with the error: the caller may check the request's signature
// with the secret before it says why the credentials are refused, and name
// their user in the audit record. They must never authorize anything. The
// error's Message is "credentials revoked: <why>".
func (v *Verifier) Verify(ctx context.Context, accessKeyID, sessionToken string, now time.Time) (*Claims, string, error) {
	if !ValidAccessKeyID(accessKeyID) {
		return nil, "", errInvalid(ErrKeyMismatch)
	}
	c, secret, err := v.open(ctx, sessionToken, now)
	if err != nil {
		return nil, "", err
	}
	if subtle.ConstantTimeCompare([]byte(accessKeyID), []byte(c.AccessKeyID)) != 1 {
		return nil, "", errInvalid(ErrKeyMismatch)
	}
	if !now.Before(c.Expiry.Add(ClockSkew)) {
		return nil, "", &Error{Code: CodeExpiredToken, Message: "The security token included in the request is expired", Err: ErrExpired}
	}
	if now.Add(ClockSkew).Before(c.IssuedAt) {
		return nil, "", errInvalid(ErrMalformed)
	}
	if err := v.rev.check(ctx, c, now); err != nil {
		if errors.Is(err, ErrRevoked) {
			return c, secret, &Error{Code: CodeAccessDenied, Message: "credentials revoked: " + revokedWhy(err), Err: err}
		}
		return nil, "", &Error{Code: CodeInternalFailure, Message: "Cannot check revocation; request denied.", Err: err}
	}
	return c, secret, nil
}

// open authenticates and decrypts sessionToken, or takes it from the cache
// of tokens opened before. A cached token is used only while the keyring
// key that sealed it is still the same live key, so retiring or replacing
// a key takes effect at once. Everything that can change over a token's
// life (expiry, revocation) is checked by Verify on every call. The claims
// are a copy; their slices and maps are shared and must not be modified.
func (v *Verifier) open(ctx context.Context, sessionToken string, now time.Time) (*Claims, string, error) {
	if e, ok := v.cache.get(sessionToken); ok {
		if k, ok := v.kr.lookup(e.claims.KeyID, now); ok && k == e.key {
			c := e.claims
			return &c, e.secret, nil
		}
	}
	p, err := decodeToken(sessionToken)
	if err != nil {
		return nil, "", errInvalid(err)
	}
	k, ok := v.kr.lookup(p.keyID, now)
	if !ok {
		// Maybe another replica rotated and we have not refreshed yet.
		v.kr.refreshRateLimited(ctx)
		if k, ok = v.kr.lookup(p.keyID, now); !ok {
			return nil, "", errInvalid(ErrUnknownKey)
		}
	}
	c, err := openToken(k, p)
	if err != nil {
		return nil, "", errInvalid(err)
	}
	secret := deriveSecret(k, c.AccessKeyID, c.SessionID)
	v.cache.put(sessionToken, openedToken{key: k, claims: *c, secret: secret}, now)
	return c, secret, nil
}

// maxOpenedTokens bounds the cache of opened tokens (about 1 KiB each).
const maxOpenedTokens = 4096

// openedTokens caches authenticated, decrypted session tokens by their
// exact text, so that a client sending many requests with one session pays
// for the AEAD open, the JSON decode and the secret derivation once. Only
// tokens that opened under a keyring key are ever stored, so a forged token
// can never hit. Expired entries are dropped when the cache is full; if it
// is still full, it starts over (cheap and bounded, not LRU).
type openedTokens struct {
	mu sync.RWMutex
	m  map[string]openedToken
}

type openedToken struct {
	key    *ringKey
	claims Claims
	secret string
}

func (t *openedTokens) get(tok string) (openedToken, bool) {
	t.mu.RLock()
	e, ok := t.m[tok]
	t.mu.RUnlock()
	return e, ok
}

func (t *openedTokens) put(tok string, e openedToken, now time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m == nil {
		t.m = make(map[string]openedToken)
	}
	if len(t.m) >= maxOpenedTokens {
		for k, old := range t.m {
			if !now.Before(old.claims.Expiry.Add(ClockSkew)) {
				delete(t.m, k)
			}
		}
		if len(t.m) >= maxOpenedTokens {
			clear(t.m)
		}
	}
	t.m[tok] = e
}
