package scim

import (
	"fmt"
	"net/http"
	"strconv"
)

// scimType values (RFC 7644 §3.12).
const (
	errInvalidFilter = "invalidFilter"
	errTooMany       = "tooMany"
	errUniqueness    = "uniqueness"
	errMutability    = "mutability"
	errInvalidSyntax = "invalidSyntax"
	errInvalidPath   = "invalidPath"
	errNoTarget      = "noTarget"
	errInvalidValue  = "invalidValue"
	errInvalidVers   = "invalidVers"
)

// Error is a SCIM error response (RFC 7644 §3.12). Status is the HTTP
// status; Type is the scimType, empty when the RFC defines none for it.
type Error struct {
	Status int
	Type   string
	Detail string
}

func (e *Error) Error() string {
	if e.Type != "" {
		return fmt.Sprintf("scim: %d %s: %s", e.Status, e.Type, e.Detail)
	}
	return fmt.Sprintf("scim: %d: %s", e.Status, e.Detail)
}

// body is the wire form of e.
func (e *Error) body() map[string]any {
	b := map[string]any{
		"schemas": []string{URNError},
		"status":  strconv.Itoa(e.Status),
		"detail":  e.Detail,
	}
	if e.Type != "" {
		b["scimType"] = e.Type
	}
	return b
}

func newError(status int, typ, format string, args ...any) *Error {
	return &Error{Status: status, Type: typ, Detail: fmt.Sprintf(format, args...)}
}

func errSyntax(format string, args ...any) *Error {
	return newError(http.StatusBadRequest, errInvalidSyntax, format, args...)
}

func errValue(format string, args ...any) *Error {
	return newError(http.StatusBadRequest, errInvalidValue, format, args...)
}
