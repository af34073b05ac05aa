package sts

import (
	"errors"
	"net/http"

	"github.com/gatehouse-dev/gatehouse/internal/identity/oidc"
	"github.com/gatehouse-dev/gatehouse/internal/identity/saml"
	"github.com/gatehouse-dev/gatehouse/internal/sigv4"
	"github.com/gatehouse-dev/gatehouse/internal/sts/credentials"
)

// AWS STS error codes this front end answers with
// (https://docs.aws.amazon.com/STS/latest/APIReference/CommonErrors.html and
// the Errors section of each action).
const (
	CodeValidationError            = "ValidationError"
	CodeInvalidIdentityToken       = "InvalidIdentityToken"
	CodeExpiredTokenException      = "ExpiredTokenException"
	CodeIDPRejectedClaim           = "IDPRejectedClaim"
	CodeIDPCommunicationError      = "IDPCommunicationError"
	CodeMalformedPolicyDocument    = "MalformedPolicyDocument"
	CodePackedPolicyTooLarge       = "PackedPolicyTooLarge"
	CodeAccessDenied               = "AccessDenied"
	CodeInvalidClientTokenID       = "InvalidClientTokenId"
	CodeExpiredToken               = "ExpiredToken"
	CodeSignatureDoesNotMatch      = "SignatureDoesNotMatch"
	CodeMissingAuthenticationToken = "MissingAuthenticationToken"
	CodeInvalidAction              = "InvalidAction"
	CodeMissingParameter           = "MissingParameter"
	CodeInvalidParameterValue      = "InvalidParameterValue"
	CodeInternalFailure            = "InternalFailure"
	// CodeInvalidAuthorizationMessage: DecodeAuthorizationMessage was given
	// a message that is not one of this deployment's.
	CodeInvalidAuthorizationMessage = "InvalidAuthorizationMessageException"
)

// Values of the X-Gatehouse-Passthrough-Error header: what kind of problem
// stopped a federation, for the person troubleshooting it.
const (
	HeaderPassthroughError = "X-Gatehouse-Passthrough-Error"

	PassValidationError        = "ValidationError"
	PassInvalidIdentityToken   = "InvalidIdentityToken"
	PassAccessDenied           = "AccessDenied"
	PassMalformedRoleAttribute = "MalformedRoleAttribute"
)

// statusOf is the HTTP status AWS STS uses for each code.
var statusOf = map[string]int{
	CodeValidationError:             http.StatusBadRequest,
	CodeInvalidIdentityToken:        http.StatusBadRequest,
	CodeExpiredTokenException:       http.StatusBadRequest,
	CodeIDPRejectedClaim:            http.StatusForbidden,
	CodeIDPCommunicationError:       http.StatusBadRequest,
	CodeMalformedPolicyDocument:     http.StatusBadRequest,
	CodePackedPolicyTooLarge:        http.StatusBadRequest,
	CodeAccessDenied:                http.StatusForbidden,
	CodeInvalidClientTokenID:        http.StatusForbidden,
	CodeExpiredToken:                http.StatusForbidden,
	CodeSignatureDoesNotMatch:       http.StatusForbidden,
	CodeMissingAuthenticationToken:  http.StatusForbidden,
	CodeInvalidAction:               http.StatusBadRequest,
	CodeMissingParameter:            http.StatusBadRequest,
	CodeInvalidParameterValue:       http.StatusBadRequest,
	CodeInternalFailure:             http.StatusInternalServerError,
	CodeInvalidAuthorizationMessage: http.StatusBadRequest,
}

// Error is a refused STS call. It is the one translator input: the handler
// renders it as AWS ErrorResponse XML, JSON or an HTML page. Cause and Fix
// are for the caller and never contain a token, an assertion or a secret;
// Err is the internal cause, for logs only.
type Error struct {
	Code   string // AWS error code
	Status int    // HTTP status; 0 means statusOf[Code]
	// Passthrough is the X-Gatehouse-Passthrough-Error value; "" derives it
	// from Code.
	Passthrough string
	// Reason is a short stable token for audit events and tests ("expired",
	// "trust-policy", ...).
	Reason string
	Cause  string // what is wrong, one sentence
	Fix    string // what to change, one sentence; may be empty
	Err    error
}

func (e *Error) Error() string {
	s := "sts: " + e.Code + ": " + e.Cause
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// Message is the AWS <Message>: the cause, then the fix.
func (e *Error) Message() string {
	if e.Fix == "" {
		return e.Cause
	}
	return e.Cause + " Fix: " + e.Fix
}

// HTTPStatus returns the status to answer with.
func (e *Error) HTTPStatus() int {
	if e.Status != 0 {
		return e.Status
	}
	if s, ok := statusOf[e.Code]; ok {
		return s
	}
	return http.StatusBadRequest
}

// PassthroughCode returns the X-Gatehouse-Passthrough-Error value.
func (e *Error) PassthroughCode() string {
	if e.Passthrough != "" {
		return e.Passthrough
	}
	switch e.Code {
	case CodeValidationError, CodeMissingParameter, CodeInvalidParameterValue, CodeMalformedPolicyDocument,
		CodePackedPolicyTooLarge, CodeInvalidAction:
		return PassValidationError
	case CodeInvalidIdentityToken, CodeExpiredTokenException, CodeIDPRejectedClaim, CodeIDPCommunicationError,
		CodeInvalidClientTokenID, CodeExpiredToken, CodeSignatureDoesNotMatch, CodeMissingAuthenticationToken:
		return PassInvalidIdentityToken
	}
	// AccessDenied, and internal failures: either way, no access.
	return PassAccessDenied
}

func newErr(code, reason, cause, fix string) *Error {
	return &Error{Code: code, Reason: reason, Cause: cause, Fix: fix}
}

func internalErr(err error) *Error {
	return &Error{Code: CodeInternalFailure, Reason: "internal", Cause: "The request could not be completed; no credentials were issued.",
		Fix: "retry; if it persists, give the request id to the gatehouse administrator.", Err: err}
}

// fromSAML translates a SAML validation error. An expired assertion is AWS's
// ExpiredTokenException; a malformed Role attribute keeps its own
// passthrough code.
func fromSAML(err error) *Error {
	var se *saml.Error
	if !errors.As(err, &se) {
		return internalErr(err)
	}
	e := &Error{Code: se.Code, Reason: "saml-" + se.Reason, Cause: se.Cause, Fix: se.Fix, Err: se.Err}
	switch se.Code {
	case saml.CodeMalformedRoleAttribute:
		e.Code, e.Passthrough = CodeInvalidIdentityToken, PassMalformedRoleAttribute
	case saml.CodeInvalidIdentityToken:
		if se.Reason == "expired" {
			e.Code, e.Passthrough = CodeExpiredTokenException, PassInvalidIdentityToken
		}
	case saml.CodeValidationError, saml.CodeAccessDenied:
	default:
		e.Code = CodeInvalidIdentityToken
	}
	return e
}

// fromOIDC translates a web identity token verification error; the oidc
// package's codes are already AWS's.
func fromOIDC(err error) *Error {
	var oe *oidc.Error
	if !errors.As(err, &oe) {
		return internalErr(err)
	}
	cause := "The web identity token was rejected"
	if oe.Cause != nil {
		cause += ": " + oe.Cause.Error()
	}
	cause += "."
	return &Error{Code: oe.Code, Reason: "oidc-" + reasonOfOIDC(oe), Cause: cause, Fix: oe.Fix, Err: oe}
}

func reasonOfOIDC(e *oidc.Error) string {
	for _, p := range []struct {
		err error
		r   string
	}{
		{oidc.ErrMalformed, "malformed"}, {oidc.ErrAlgorithm, "algorithm"}, {oidc.ErrSignature, "signature"},
		{oidc.ErrUnknownKey, "unknown-key"}, {oidc.ErrIssuer, "issuer"}, {oidc.ErrAudience, "audience"},
		{oidc.ErrExpired, "expired"}, {oidc.ErrNotYetValid, "not-yet-valid"}, {oidc.ErrIssuedInFuture, "issued-in-future"},
		{oidc.ErrClaims, "claims"}, {oidc.ErrIDPCommunication, "idp-communication"},
	} {
		if errors.Is(e, p.err) {
			return p.r
		}
	}
	return "invalid"
}

// fromCredentials translates an Issue error of the credentials package.
func fromCredentials(err error) *Error {
	var ce *credentials.Error
	if !errors.As(err, &ce) {
		return internalErr(err)
	}
	switch ce.Code {
	case credentials.CodeValidationError:
		return &Error{Code: CodeValidationError, Reason: "session", Cause: ce.Message + ".", Err: ce}
	case credentials.CodeAccessDenied:
		return &Error{Code: CodeAccessDenied, Reason: "revoked", Cause: ce.Message, Err: ce}
	}
	return internalErr(err)
}

// errRevoked and errUserDisabled mark lookup failures that STS reports as
// AccessDenied rather than InvalidClientTokenId.
var (
	errRevoked      = errors.New("sts: credentials revoked")
	errUserDisabled = errors.New("sts: end user is disabled or no longer exists")
)

// fromSigV4 translates a signature verification failure, keeping the AWS
// code of the sigv4 package but STS's status codes.
func fromSigV4(err error) *Error {
	switch {
	case errors.Is(err, errUserDisabled):
		return &Error{Code: CodeAccessDenied, Reason: "user-disabled", Cause: sigv4.RevokedMessage("user disabled") + ".",
			Fix: "ask an administrator to re-enable the user; then sign in again.", Err: err}
	case errors.Is(err, errRevoked):
		cause := sigv4.RevokedMessage("credentials revoked")
		if ve := (*sigv4.Error)(nil); errors.As(err, &ve) && ve.Code == sigv4.CodeAccessDenied {
			cause = ve.Message
		}
		return &Error{Code: CodeAccessDenied, Reason: "revoked", Cause: cause + ".",
			Fix: "sign in again to get new credentials.", Err: err}
	case errors.Is(err, sigv4.ErrUnsigned):
		return &Error{Code: CodeMissingAuthenticationToken, Reason: "unsigned",
			Cause: "Request is missing Authentication Token.",
			Fix:   "sign the request with SigV4 using gatehouse temporary credentials (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN).", Err: err}
	}
	var ve *sigv4.Error
	if !errors.As(err, &ve) {
		return internalErr(err)
	}
	e := &Error{Code: ve.Code, Reason: "sigv4-" + ve.Code, Cause: ve.Message, Err: ve}
	switch ve.Code {
	case sigv4.CodeInternalError:
		return internalErr(err)
	case sigv4.CodeInvalidClientTokenID, sigv4.CodeInvalidAccessKeyID, sigv4.CodeInvalidToken:
		e.Code = CodeInvalidClientTokenID
		e.Cause = "The security token included in the request is invalid."
		e.Fix = "use the AccessKeyId, SecretAccessKey and SessionToken of one gatehouse AssumeRole* response together."
	case sigv4.CodeExpiredToken:
		e.Cause = "The security token included in the request is expired."
		e.Fix = "assume the role again to get fresh credentials."
	case sigv4.CodeSignatureDoesNotMatch:
		e.Fix = "check the secret access key and that the client signs for service sts."
	default:
		e.Status = ve.Status
	}
	return e
}
