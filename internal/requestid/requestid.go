// Package requestid carries the per-request ids that tie logs, errors and
// audit events together. The server assigns its own id to every inbound
// request before any handler runs. An id the client sent (X-Request-Id) is
// never adopted as ours: it travels separately, as the client request id,
// and is recorded in audit events as its own field.
package requestid

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
)

// Header is the HTTP header that carries our id back to the client, and
// the one a client may send its own id in.
const Header = "X-Request-Id"

type key struct{}

type clientKey struct{}

// With returns ctx carrying id as our request id.
func With(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, key{}, id)
}

// From returns our id on ctx, or "".
func From(ctx context.Context) string {
	id, _ := ctx.Value(key{}).(string)
	return id
}

// WithClient returns ctx carrying the client's request id, if it is Valid;
// an invalid one is dropped, never stored raw.
func WithClient(ctx context.Context, id string) context.Context {
	if !Valid(id) {
		return ctx
	}
	return context.WithValue(ctx, clientKey{}, id)
}

// ClientFrom returns the client's request id on ctx, or "".
func ClientFrom(ctx context.Context) string {
	id, _ := ctx.Value(clientKey{}).(string)
	return id
}

// Ensure returns r with a request id of ours on its context (a fresh one
// unless one is there already) and the client's X-Request-Id, when valid,
// kept as the client request id. Front ends call it first so that they work
// both behind the server's middleware and on their own.
func Ensure(r *http.Request) (*http.Request, string) {
	ctx := r.Context()
	if id := From(ctx); id != "" {
		return r, id
	}
	id := New()
	ctx = WithClient(With(ctx, id), r.Header.Get(Header))
	return r.WithContext(ctx), id
}

// New returns a fresh random id (16 hex characters).
func New() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Valid reports whether a client-supplied id is safe to record: 1–64
// characters of [A-Za-z0-9._-]. Anything else is dropped, never logged raw.
func Valid(id string) bool {
	if len(id) == 0 || len(id) > 64 {
		return false
	}
	for _, c := range id {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}
