package credentials

import (
	"context"
	"crypto/subtle"
	"errors"
	"time"
)

// Verifier checks temporary credentials presented with a request (the
// SigV4 access key id and X-Amz-Security-Token) and returns their claims and
// secret, with which the caller then checks the SigV4 signature. Safe for
// concurrent use.
type Verifier struct {
	kr  *Keyring
	rev *Revoker
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
func (v *Verifier) Verify(ctx context.Context, accessKeyID, sessionToken string, now time.Time) (*Claims, string, error) {
	if !ValidAccessKeyID(accessKeyID) {
		return nil, "", errInvalid(ErrKeyMismatch)
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
			return nil, "", &Error{Code: CodeAccessDenied, Message: "The credentials have been revoked.", Err: err}
		}
		return nil, "", &Error{Code: CodeInternalFailure, Message: "Cannot check revocation; request denied.", Err: err}
	}
	return c, deriveSecret(k, c.AccessKeyID, c.SessionID), nil
}
