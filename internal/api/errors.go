package api

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"

	"github.com/gatehouse-dev/gatehouse/internal/identity"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// apiError is an error with its HTTP status, stable code and a message
// that is safe to show the caller. cause, if set, is logged, never shown.
type apiError struct {
	status int
	code   string
	msg    string
	cause  error
	// retryAfter, when positive, is sent as Retry-After (seconds).
	retryAfter int
}

func (e *apiError) Error() string {
	if e.cause != nil {
		return e.code + ": " + e.msg + ": " + e.cause.Error()
	}
	return e.code + ": " + e.msg
}

func (e *apiError) Unwrap() error { return e.cause }

var (
	errUnauthenticated = &apiError{status: http.StatusUnauthorized, code: "unauthenticated", msg: "authentication required: missing, invalid or expired credential"}
	errUnavailable     = &apiError{status: http.StatusServiceUnavailable, code: "unavailable", msg: "the service is temporarily unable to process the request; nothing was changed"}
)

func errInvalid(format string, args ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, code: "invalid_request", msg: fmt.Sprintf(format, args...)}
}

func errNotFound(msg string) *apiError {
	return &apiError{status: http.StatusNotFound, code: "not_found", msg: msg}
}

func errForbidden(msg string) *apiError {
	return &apiError{status: http.StatusForbidden, code: "forbidden", msg: msg}
}

func errConflict(msg string) *apiError {
	return &apiError{status: http.StatusConflict, code: "conflict", msg: msg}
}

func errTooLarge(limit int64) *apiError {
	return &apiError{status: http.StatusRequestEntityTooLarge, code: "payload_too_large",
		msg: fmt.Sprintf("request body exceeds the limit of %d bytes", limit)}
}

const staleRevisionMsg = "revision is stale: the resource changed since it was read; read it again and retry"

// translate is the REST front end's one error translator.
func translate(err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	switch {
	case errors.Is(err, identity.ErrUnavailable):
		return &apiError{status: errUnavailable.status, code: errUnavailable.code, msg: errUnavailable.msg, cause: err}
	case errors.Is(err, identity.ErrUnauthenticated):
		return errUnauthenticated
	case errors.Is(err, store.ErrNotFound):
		return errNotFound("not found")
	case errors.Is(err, store.ErrConflict):
		return errConflict(staleRevisionMsg)
	case errors.Is(err, store.ErrAlreadyExists):
		return &apiError{status: http.StatusConflict, code: "already_exists", msg: "a resource with that name already exists"}
	case errors.Is(err, identity.ErrInvalidPassword):
		return errInvalid("password: length must be between %d and %d bytes", identity.MinPasswordLen, identity.MaxPasswordLen)
	case errors.Is(err, identity.ErrNoPassword):
		return errInvalid("password: service principals cannot have a password")
	case errors.Is(err, identity.ErrInvalidTokenRequest), errors.Is(err, identity.ErrInvalidPrivilege):
		return errInvalid("%s", strings.TrimPrefix(err.Error(), "identity: "))
	case errors.Is(err, store.ErrInvalid):
		return errInvalid("the store refused the change (unknown member or group nesting cycle)")
	}
	return &apiError{status: http.StatusInternalServerError, code: "internal", msg: "internal error; quote the request id when reporting it", cause: err}
}

var propertyReason = regexp.MustCompile(`^property "(.*)" is (unsupported|missing)$`)

// validationError turns an openapi3filter error into a 400 (or 415) whose
// message names the offending parameter or body field. Only the schema
// error's Reason is used, never its Error(), which would echo the value
// (possibly a password) and the schema.
func validationError(err error) *apiError {
	var re *openapi3filter.RequestError
	if !errors.As(err, &re) {
		return errInvalid("the request does not match the API description")
	}
	var se *openapi3.SchemaError
	hasSE := errors.As(re.Err, &se)
	if re.Parameter != nil {
		where := fmt.Sprintf("%s parameter %q", re.Parameter.In, re.Parameter.Name)
		switch {
		case errors.Is(re.Err, openapi3filter.ErrInvalidRequired):
			return errInvalid("%s is required", where)
		case hasSE:
			return errInvalid("%s: %s", where, schemaReason(se))
		}
		return errInvalid("%s is invalid", where)
	}
	if strings.HasPrefix(re.Reason, "header Content-Type has unexpected value") {
		return &apiError{status: http.StatusUnsupportedMediaType, code: "unsupported_media_type", msg: "request body must be application/json"}
	}
	if re.RequestBody == nil {
		if re.Err != nil && strings.Contains(re.Err.Error(), "request body not allowed") {
			return errInvalid("this operation takes no request body")
		}
		return errInvalid("the request does not match the API description")
	}
	switch {
	case errors.Is(re.Err, openapi3filter.ErrInvalidRequired):
		return errInvalid("request body is required")
	case hasSE:
		path := se.JSONPointer()
		reason := schemaReason(se)
		if m := propertyReason.FindStringSubmatch(se.Reason); m != nil {
			if len(path) == 0 || path[len(path)-1] != m[1] {
				path = append(path, m[1])
			}
			field := strings.Join(path, ".")
			if m[2] == "missing" {
				return errInvalid("request body: field %q is required", field)
			}
			return errInvalid("request body: field %q is not allowed", field)
		}
		if len(path) == 0 {
			return errInvalid("request body: %s", reason)
		}
		return errInvalid("request body: field %q: %s", strings.Join(path, "."), reason)
	case re.Reason == "failed to decode request body":
		return errInvalid("request body is not valid JSON")
	}
	return errInvalid("request body is invalid")
}

func schemaReason(se *openapi3.SchemaError) string {
	if se.Reason != "" {
		return se.Reason
	}
	return fmt.Sprintf("does not satisfy %q", se.SchemaField)
}

func unescapePath(v string) string {
	if u, err := url.PathUnescape(v); err == nil {
		return u
	}
	return v
}
