package sigv4

import (
	"errors"
	"fmt"
	"net/http"
)

// Error is a verification failure with a stable AWS error code, the AWS-style
// message and the HTTP status AWS uses for it. Front ends translate it into
// the AWS XML error document (S3 and STS use the same <Code>/<Message> pair).
//
// Error never carries secrets: not the secret access key, not a signing key,
// not a session token. Err may hold an internal cause (for example the
// lookup's error) for logs; it is not meant for clients.
type Error struct {
	Code    string // AWS error code, e.g. "SignatureDoesNotMatch"
	Message string // AWS-style human message, safe to return to the client
	Status  int    // HTTP status code
	// StringToSign is set on SignatureDoesNotMatch for the request itself
	// (not for chunks): the string to sign the server computed, as AWS
	// returns it to help clients debug. It contains no secret.
	StringToSign string
	// AccessKeyID and Presigned say which access key the request named and
	// whether it was a presigned URL, as far as the request was parsed
	// before it failed (empty and false if it never got that far). They are
	// attacker-chosen until verified: for attribution in the audit record,
	// clipped there.
	AccessKeyID string
	Presigned   bool
	// Principal is set on the AccessDenied of credentials that are genuine
	// (the signature verified with their secret) but refused by the lookup
	// (a *RevokedError): who they belong to, for the audit record.
	Principal any
	Err       error // internal cause, for logs only; may be nil
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("sigv4: %s: %s: %v", e.Code, e.Message, e.Err)
	}
	return "sigv4: " + e.Code + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is an *Error with the same Code, so that
// errors.Is(err, sigv4.ErrSignatureDoesNotMatch) works on any error of that
// code whatever its message.
func (e *Error) Is(target error) bool {
	var t *Error
	if errors.As(target, &t) {
		return t.Code == e.Code
	}
	return false
}

// AWS error codes produced by this package.
const (
	CodeSignatureDoesNotMatch             = "SignatureDoesNotMatch"
	CodeAuthorizationHeaderMalformed      = "AuthorizationHeaderMalformed"
	CodeAuthorizationQueryParametersError = "AuthorizationQueryParametersError"
	CodeExpiredToken                      = "ExpiredToken"
	CodeInvalidToken                      = "InvalidToken"
	CodeInvalidAccessKeyID                = "InvalidAccessKeyId"
	CodeInvalidClientTokenID              = "InvalidClientTokenId"
	CodeRequestTimeTooSkewed              = "RequestTimeTooSkewed"
	CodeAccessDenied                      = "AccessDenied"
	CodeMissingSecurityHeader             = "MissingSecurityHeader"
	CodeMissingAuthenticationToken        = "MissingAuthenticationToken"
	CodeXAmzContentSHA256Mismatch         = "XAmzContentSHA256Mismatch"
	CodeInvalidDigest                     = "InvalidDigest"
	CodeBadDigest                         = "BadDigest"
	CodeIncompleteBody                    = "IncompleteBody"
	CodeInvalidRequest                    = "InvalidRequest"
	CodeInvalidArgument                   = "InvalidArgument"
	CodeMissingContentLength              = "MissingContentLength"
	CodeRequestHeaderSectionTooLarge      = "RequestHeaderSectionTooLarge"
	CodeEntityTooLarge                    = "EntityTooLarge"
	CodeNotImplemented                    = "NotImplemented"
	CodeInternalError                     = "InternalError"
)

// Sentinels for errors.Is; they match any *Error with the same code.
var (
	ErrSignatureDoesNotMatch             = &Error{Code: CodeSignatureDoesNotMatch}
	ErrAuthorizationHeaderMalformed      = &Error{Code: CodeAuthorizationHeaderMalformed}
	ErrAuthorizationQueryParametersError = &Error{Code: CodeAuthorizationQueryParametersError}
	ErrExpiredToken                      = &Error{Code: CodeExpiredToken}
	ErrInvalidAccessKeyID                = &Error{Code: CodeInvalidAccessKeyID}
	ErrInvalidClientTokenID              = &Error{Code: CodeInvalidClientTokenID}
	ErrRequestTimeTooSkewed              = &Error{Code: CodeRequestTimeTooSkewed}
	ErrAccessDenied                      = &Error{Code: CodeAccessDenied}
	ErrMissingSecurityHeader             = &Error{Code: CodeMissingSecurityHeader}
	ErrXAmzContentSHA256Mismatch         = &Error{Code: CodeXAmzContentSHA256Mismatch}
	ErrInvalidDigest                     = &Error{Code: CodeInvalidDigest}
	ErrBadDigest                         = &Error{Code: CodeBadDigest}
	ErrIncompleteBody                    = &Error{Code: CodeIncompleteBody}
	ErrInvalidRequest                    = &Error{Code: CodeInvalidRequest}
	ErrNotImplemented                    = &Error{Code: CodeNotImplemented}
)

// Errors a CredentialLookup returns (possibly wrapped) so the verifier can
// answer with the right AWS code. Any other lookup error is an internal error
// and the request is denied (fail closed).
var (
	// ErrUnknownAccessKey: no such access key (InvalidAccessKeyId for S3,
	// InvalidClientTokenId for STS).
	ErrUnknownAccessKey = errors.New("sigv4: unknown access key")
	// ErrCredentialsExpired: the temporary credentials have expired (ExpiredToken).
	ErrCredentialsExpired = errors.New("sigv4: credentials expired")
	// ErrInvalidSessionToken: the session token is malformed, forged, revoked
	// or does not belong to the access key (InvalidToken for S3,
	// InvalidClientTokenId for STS).
	ErrInvalidSessionToken = errors.New("sigv4: invalid session token")
)

// RevokedError is what a CredentialLookup returns, possibly wrapped, for
// credentials that are genuine but refused: revoked, or their end user
// disabled. Credentials are the resolved credentials all the same: the
// verifier checks the request's signature with them first, so only the
// holder of the secret learns why they are refused (a request that does
// not verify gets SignatureDoesNotMatch), and then answers AccessDenied
// with "credentials revoked: <Reason>", carrying Credentials.Principal in
// Error.Principal for attribution.
type RevokedError struct {
	// Reason is safe to show to the caller, e.g. "user disabled".
	Reason      string
	Credentials Credentials
	Err         error // internal cause, for logs
}

func (e *RevokedError) Error() string {
	if e.Err != nil {
		return "sigv4: credentials revoked: " + e.Reason + ": " + e.Err.Error()
	}
	return "sigv4: credentials revoked: " + e.Reason
}

func (e *RevokedError) Unwrap() error { return e.Err }

// RevokedMessage is the AccessDenied message for credentials refused for
// reason (see RevokedError).
func RevokedMessage(reason string) string { return "credentials revoked: " + reason }

func newErr(code string, status int, msg string) *Error {
	return &Error{Code: code, Status: status, Message: msg}
}

func errf(code string, status int, format string, args ...any) *Error {
	return &Error{Code: code, Status: status, Message: fmt.Sprintf(format, args...)}
}

func malformedHeader(format string, args ...any) *Error {
	return errf(CodeAuthorizationHeaderMalformed, http.StatusBadRequest,
		"The authorization header is malformed; "+format, args...)
}

func malformedQuery(format string, args ...any) *Error {
	return errf(CodeAuthorizationQueryParametersError, http.StatusBadRequest, format, args...)
}

func sigMismatch() *Error {
	return newErr(CodeSignatureDoesNotMatch, http.StatusForbidden,
		"The request signature we calculated does not match the signature you provided. Check your key and signing method.")
}

func chunkSigMismatch() *Error {
	return newErr(CodeSignatureDoesNotMatch, http.StatusForbidden,
		"The chunk signature we calculated does not match the signature you provided.")
}

func incompleteBody() *Error {
	return newErr(CodeIncompleteBody, http.StatusBadRequest,
		"You did not provide the number of bytes specified by the Content-Length HTTP header.")
}

func badChunk(format string, args ...any) *Error {
	return errf(CodeInvalidRequest, http.StatusBadRequest, "Invalid aws-chunked body: "+format, args...)
}
