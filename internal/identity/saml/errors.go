package saml

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Error codes. They are stable: the HTTP front ends put them in the
// X-Gatehouse-Passthrough-Error header and STS maps them to AWS error codes.
const (
	// CodeValidationError: the input is not a usable SAMLResponse value, or an
	// attribute value breaks a documented constraint (length, pattern, range).
	CodeValidationError = "ValidationError"
	// CodeInvalidIdentityToken: the response cannot be trusted: bad or
	// missing signature, weak algorithm, unknown issuer, wrong audience or
	// recipient, outside its validity window, replayed, malformed XML.
	CodeInvalidIdentityToken = "InvalidIdentityToken"
	// CodeAccessDenied: the response is authentic but does not grant access:
	// the IdP reported a failure status, or no (matching) role is granted.
	CodeAccessDenied = "AccessDenied"
	// CodeMalformedRoleAttribute: an https://aws.amazon.com/SAML/Attributes/Role
	// value is not a "roleArn,providerArn" pair.
	CodeMalformedRoleAttribute = "MalformedRoleAttribute"
)

// Error is the error returned for every rejected SAML response. Cause and Fix
// are meant for the person operating the IdP; they quote at most short,
// clipped values from the response and never the response itself.
type Error struct {
	// Code is one of the Code* constants.
	Code string
	// Reason is a short stable token for tests, metrics and audit events,
	// such as "expired" or "audience".
	Reason string
	// Cause says what is wrong, in one sentence.
	Cause string
	// Fix says what to change, in one sentence.
	Fix string
	// Err is the underlying library error, if any. It is for server logs.
	Err error
}

func (e *Error) Error() string {
	return "saml: " + e.Code + ": " + e.Cause
}

func (e *Error) Unwrap() error { return e.Err }

func newError(code, reason, fix, format string, args ...any) *Error {
	return &Error{Code: code, Reason: reason, Cause: fmt.Sprintf(format, args...), Fix: fix}
}

func invalidToken(reason, fix, format string, args ...any) *Error {
	return newError(CodeInvalidIdentityToken, reason, fix, format, args...)
}

// clip shortens an untrusted value for use in an error message.
func clip(s string) string {
	const max = 96
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// q quotes a clipped untrusted value.
func q(s string) string { return fmt.Sprintf("%q", clip(strings.TrimSpace(s))) }
