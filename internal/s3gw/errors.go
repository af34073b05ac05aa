package s3gw

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/gatehouse-dev/gatehouse/internal/s3gw/backend"
	"github.com/gatehouse-dev/gatehouse/internal/s3name"
	"github.com/gatehouse-dev/gatehouse/internal/sigv4"
)

// Error is an S3 error response: the AWS code, message and HTTP status
// ("Error responses", Amazon S3 API Reference). It is the one translator
// from domain errors to what S3 clients parse.
type Error struct {
	Code    string
	Message string
	Status  int
	// StringToSign accompanies SignatureDoesNotMatch.
	StringToSign string
	// Extra elements of the error document, in order (name, value pairs).
	Extra [][2]string
	// Err is the internal cause, logged, never sent.
	Err error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("s3gw: %s: %s: %v", e.Code, e.Message, e.Err)
	}
	return "s3gw: " + e.Code + ": " + e.Message
}

func (e *Error) Unwrap() error { return e.Err }

func s3err(code string, status int, msg string) *Error {
	return &Error{Code: code, Status: status, Message: msg}
}

// Errors used by the gateway.
var (
	errAccessDenied = func() *Error { return s3err("AccessDenied", http.StatusForbidden, "Access Denied") }
	errNoSuchBucket = func() *Error {
		return s3err("NoSuchBucket", http.StatusNotFound, "The specified bucket does not exist")
	}
	errNoSuchKey    = func() *Error { return s3err("NoSuchKey", http.StatusNotFound, "The specified key does not exist.") }
	errNoSuchUpload = func() *Error {
		return s3err("NoSuchUpload", http.StatusNotFound, "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.")
	}
	errMethodNotAllowed = func() *Error {
		return s3err("MethodNotAllowed", http.StatusMethodNotAllowed, "The specified method is not allowed against this resource.")
	}
	errNotImplemented = func() *Error {
		return s3err("NotImplemented", http.StatusNotImplemented, "A header you provided implies functionality that is not implemented.")
	}
	errMalformedXML = func() *Error {
		return s3err("MalformedXML", http.StatusBadRequest, "The XML you provided was not well-formed or did not validate against our published schema.")
	}
	errInvalidArgument = func(msg string) *Error { return s3err("InvalidArgument", http.StatusBadRequest, msg) }
	errMissingLength   = func() *Error {
		return s3err("MissingContentLength", http.StatusLengthRequired, "You must provide the Content-Length HTTP header.")
	}
	errPrecondition = func() *Error {
		return s3err("PreconditionFailed", http.StatusPreconditionFailed, "At least one of the pre-conditions you specified did not hold")
	}
	errPreconditionOn = func(condition string) *Error {
		e := errPrecondition()
		e.Extra = [][2]string{{"Condition", condition}}
		return e
	}
	errMetadataTooLarge = func(size int) *Error {
		e := s3err("MetadataTooLarge", http.StatusBadRequest, "Your metadata headers exceed the maximum allowed metadata size")
		e.Extra = [][2]string{{"Size", strconv.Itoa(size)}, {"MaxSizeAllowed", strconv.Itoa(maxUserMetadata)}}
		return e
	}
	errInvalidRange = func() *Error {
		return s3err("InvalidRange", http.StatusRequestedRangeNotSatisfiable, "The requested range is not satisfiable")
	}
	errEntityTooLarge = func() *Error {
		return s3err("EntityTooLarge", http.StatusBadRequest, "Your proposed upload exceeds the maximum allowed object size.")
	}
	errServiceUnavailble = func() *Error {
		return s3err("ServiceUnavailable", http.StatusServiceUnavailable, "The service is unavailable. Please retry.")
	}
)

// translate maps any error to the S3 error the client sees. A store's own
// client error (backend.ClientError) passes as the store answered it.
// Unknown errors are the backend (or a dependency) failing: 503, details
// only in the log.
func translate(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	var se *sigv4.Error
	if errors.As(err, &se) {
		status := se.Status
		if status == 0 {
			status = http.StatusBadRequest
		}
		return &Error{Code: se.Code, Message: se.Message, Status: status, StringToSign: se.StringToSign, Err: err}
	}
	wrap := func(x *Error) *Error { x.Err = err; return x }
	var ce *backend.ClientError
	switch {
	case errors.Is(err, backend.ErrNoSuchVersion):
		return wrap(s3err("NoSuchVersion", http.StatusNotFound, "The specified version does not exist."))
	case errors.As(err, &ce):
		return wrap(s3err(ce.Code, ce.Status, ce.Message))
	case errors.Is(err, backend.ErrNoSuchBucket):
		return wrap(errNoSuchBucket())
	case errors.Is(err, backend.ErrBucketExists):
		return wrap(s3err("BucketAlreadyOwnedByYou", http.StatusConflict, "Your previous request to create the named bucket succeeded and you already own it."))
	case errors.Is(err, backend.ErrBucketTaken):
		return wrap(s3err("BucketAlreadyExists", http.StatusConflict, "The requested bucket name is not available. The bucket namespace is shared by all users of the system. Please select a different name and try again."))
	case errors.Is(err, backend.ErrBucketNotEmpty):
		return wrap(s3err("BucketNotEmpty", http.StatusConflict, "The bucket you tried to delete is not empty"))
	case errors.Is(err, backend.ErrNoSuchKey):
		return wrap(errNoSuchKey())
	case errors.Is(err, backend.ErrNoSuchUpload):
		return wrap(errNoSuchUpload())
	case errors.Is(err, backend.ErrInvalidPart):
		return wrap(s3err("InvalidPart", http.StatusBadRequest, "One or more of the specified parts could not be found. The part may not have been uploaded, or the specified entity tag may not match the part's entity tag."))
	case errors.Is(err, backend.ErrInvalidOrder):
		return wrap(s3err("InvalidPartOrder", http.StatusBadRequest, "The list of parts was not in ascending order. Parts must be ordered by part number."))
	case errors.Is(err, backend.ErrEntityTooSmall):
		return wrap(s3err("EntityTooSmall", http.StatusBadRequest, "Your proposed upload is smaller than the minimum allowed object size."))
	case errors.Is(err, s3name.ErrInvalidKey):
		return wrap(errInvalidArgument("Object key is not allowed: it must be a relative path without empty, '.' or '..' segments, backslashes, control characters or encoded separators."))
	case errors.Is(err, s3name.ErrInvalidBucket):
		return wrap(s3err("InvalidBucketName", http.StatusBadRequest, "The specified bucket is not valid."))
	case errors.Is(err, backend.ErrInvalidRange):
		return wrap(errInvalidRange())
	case errors.Is(err, backend.ErrMetadataTooLarge):
		return wrap(s3err("MetadataTooLarge", http.StatusBadRequest, "The object's metadata and tags together exceed what the storage can keep."))
	case errors.Is(err, backend.ErrKeyConflict):
		return wrap(s3err("InvalidRequest", http.StatusConflict, "The key conflicts with an existing key (a key cannot also be a prefix of other keys on this storage)."))
	case errors.Is(err, backend.ErrInvalidUploadIDMarker):
		return wrap(errInvalidArgument("Invalid uploadId marker"))
	case errors.Is(err, backend.ErrIncompleteBody):
		return wrap(s3err("IncompleteBody", http.StatusBadRequest, "You did not provide the number of bytes specified by the Content-Length HTTP header."))
	case errors.Is(err, errXMLTooLarge):
		return wrap(errMalformedXML())
	case errors.Is(err, context.Canceled):
		return wrap(s3err("RequestTimeout", http.StatusBadRequest, "Your socket connection to the server was not read from or written to within the timeout period."))
	}
	return wrap(errServiceUnavailble())
}
