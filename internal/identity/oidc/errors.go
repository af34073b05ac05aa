package oidc

import (
	"errors"
	"fmt"
)

// Error codes. They are the error codes of AWS STS AssumeRoleWithWebIdentity
// (https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRoleWithWebIdentity.html#API_AssumeRoleWithWebIdentity_Errors),
// so the STS front end can put Code straight into <Error><Code>.
const (
	// CodeInvalidIdentityToken: the token is malformed, its signature does
	// not verify, or a claim (iss, aud, nbf, iat, alg) is unacceptable.
	CodeInvalidIdentityToken = "InvalidIdentityToken"
	// CodeExpiredToken: the token's exp is in the past (beyond the skew).
	CodeExpiredToken = "ExpiredTokenException"
	// CodeIDPCommunicationError: the IdP's discovery document or JWKS could
	// not be fetched, so the token cannot be checked now (retryable).
	CodeIDPCommunicationError = "IDPCommunicationError"
	// CodeIDPRejectedClaim: a claim gatehouse needs (sub) is missing or has
	// the wrong type.
	CodeIDPRejectedClaim = "IDPRejectedClaim"
)

// Error is every error returned by Verifier.Verify. Code is a stable AWS
// STS error code; Cause says which check failed (for logs and operators);
// Fix is a hint for the administrator or caller. None of them ever contains
// the token or any part of it, so an Error is safe to log. Front ends should
// still give end users only Code and a generic message ("failed logins don't
// say which part was wrong").
type Error struct {
	Code  string
	Cause error
	Fix   string
}

func (e *Error) Error() string {
	msg := "oidc: " + e.Code
	if e.Cause != nil {
		msg += ": " + e.Cause.Error()
	}
	if e.Fix != "" {
		msg += " (fix: " + e.Fix + ")"
	}
	return msg
}

// Unwrap returns Cause.
func (e *Error) Unwrap() error { return e.Cause }

// Sentinel causes, testable with errors.Is through an *Error.
var (
	ErrMalformed        = errors.New("token is not a compact JWS")
	ErrAlgorithm        = errors.New("signature algorithm not allowed")
	ErrSignature        = errors.New("signature does not verify with any acceptable key")
	ErrUnknownKey       = errors.New("no acceptable key for the token's kid")
	ErrIssuer           = errors.New("issuer mismatch")
	ErrAudience         = errors.New("audience mismatch")
	ErrExpired          = errors.New("token expired")
	ErrNotYetValid      = errors.New("token not yet valid (nbf in the future)")
	ErrIssuedInFuture   = errors.New("token issued in the future (iat)")
	ErrClaims           = errors.New("claims are not acceptable")
	ErrIDPCommunication = errors.New("cannot fetch the identity provider's keys")
)

func invalid(cause error, fix string) *Error {
	return &Error{Code: CodeInvalidIdentityToken, Cause: cause, Fix: fix}
}

func invalidf(sentinel error, format string, args ...any) *Error {
	return &Error{Code: CodeInvalidIdentityToken, Cause: fmt.Errorf("%w: "+format, append([]any{sentinel}, args...)...)}
}
