package scim

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/identity"
	"github.com/gatehouse-dev/gatehouse/internal/requestid"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/store/sqlite"
)

const (
	tokAdmin  = "admin-token"  // an admin
	tokGroup  = "group-token"  // holds the scim privilege
	tokPlain  = "plain-token"  // authenticated, not allowed
	tokBroken = "broken-token" // the authenticator fails internally
	baseURL   = "https://gh.example.com/scim/v2"
)

// tokenAuth is a test Authenticator: a fixed principal per bearer token.
type tokenAuth struct{}

func (tokenAuth) AuthenticateRequest(r *http.Request) (*identity.Principal, error) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return nil, identity.ErrUnauthenticated
	}
	switch tok {
	case tokAdmin:
		return &identity.Principal{UserID: "u-admin", UserName: "admin", Kind: "user", Admin: true, SCIM: true, AuthMethod: "token"}, nil
	case tokGroup:
		return &identity.Principal{UserID: "u-okta", UserName: "okta-scim", Kind: "service", SCIM: true, AuthMethod: "token"}, nil
	case tokPlain:
		return &identity.Principal{UserID: "u-plain", UserName: "mallory", Kind: "user", Groups: []string{"analysts"}, AuthMethod: "token"}, nil
	case tokBroken:
		return nil, errors.New("token store unavailable")
	}
	return nil, identity.ErrUnauthenticated
}

// recorder is a test audit.Emitter that records events and can be made to fail.
type recorder struct {
	mu     sync.Mutex
	events []audit.Event
	fail   atomic.Bool
}

func (r *recorder) Emit(_ context.Context, e audit.Event) error {
	if r.fail.Load() {
		return errors.New("audit log unavailable")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
	return nil
}

func (r *recorder) all() []audit.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]audit.Event(nil), r.events...)
}

func (r *recorder) codes() []audit.Code {
	var out []audit.Code
	for _, e := range r.all() {
		out = append(out, e.Code)
	}
	return out
}

func (r *recorder) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = nil
}

type env struct {
	t     *testing.T
	h     http.Handler
	st    *sqlite.Store
	audit *recorder
	// privileged holds the ids of principals with a gatehouse privilege.
	privileged sync.Map
	// denials aggregates anonymous refusals; its clock moves only by
	// nextWindow.
	denials     *audit.Aggregator
	denialMu    sync.Mutex
	denialClock time.Time
}

func (e *env) denialNow() time.Time {
	e.denialMu.Lock()
	defer e.denialMu.Unlock()
	return e.denialClock
}

// nextWindow moves the denial aggregator to its next window, so that the
// next anonymous refusal from a source is recorded on its own again.
func (e *env) nextWindow() {
	e.denialMu.Lock()
	e.denialClock = e.denialClock.Add(time.Second)
	e.denialMu.Unlock()
}

func newEnv(t *testing.T) *env { return newEnvWith(t, nil) }

// newEnvWith is newEnv with the handler's store wrapped by wrap (nil: none).
func newEnvWith(t *testing.T, wrap func(store.Store) store.Store) *env {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "gh.db"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	rec := &recorder{}
	e := &env{t: t, st: st, audit: rec, denialClock: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)}
	e.denials, err = audit.NewAggregator(audit.AggregatorOptions{Emitter: rec, SummaryCode: audit.CodeAuthDeniedAggregated,
		Clock: e.denialNow})
	require.NoError(t, err)
	var hs store.Store = st
	if wrap != nil {
		hs = wrap(st)
	}
	h, err := New(Options{
		Store: hs, Audit: rec, Auth: tokenAuth{}, BaseURL: baseURL + "/",
		Privileged: func(_ context.Context, id string) (bool, error) {
			_, ok := e.privileged.Load(id)
			return ok, nil
		},
		MaxBodyBytes: 64 << 10,
		Clock:        func() time.Time { return time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC) },
		Denials:      e.denials,
	})
	require.NoError(t, err)
	// Mount it the way the server does.
	mux := http.NewServeMux()
	mux.Handle("/scim/v2/", http.StripPrefix("/scim/v2", h))
	wrapped := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mux.ServeHTTP(w, r.WithContext(requestid.With(r.Context(), "req-test-1")))
	})
	e.h = wrapped
	return e
}

type resp struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

// do sends a request as the admin unless headers set Authorization.
func (e *env) do(method, path, body string, headers ...string) resp {
	e.t.Helper()
	var r *http.Request
	if body != "" {
		r = httptest.NewRequest(method, "/scim/v2"+path, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/scim+json")
	} else {
		r = httptest.NewRequest(method, "/scim/v2"+path, nil)
	}
	r.Header.Set("Authorization", "Bearer "+tokAdmin)
	r.Header.Set("User-Agent", "Okta SCIM Client 1.0.0")
	for i := 0; i+1 < len(headers); i += 2 {
		if headers[i+1] == "" {
			r.Header.Del(headers[i])
		} else {
			r.Header.Set(headers[i], headers[i+1])
		}
	}
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	out := resp{status: w.Code, header: w.Header(), raw: w.Body.String()}
	if w.Body.Len() > 0 {
		require.NoError(e.t, json.Unmarshal(w.Body.Bytes(), &out.body), "body: %s", w.Body.String())
	}
	return out
}

// mustUser reads a user straight from the store.
func (e *env) mustUser(id string) *store.User {
	e.t.Helper()
	u, err := e.st.GetUser(context.Background(), id)
	require.NoError(e.t, err)
	return u
}

func (e *env) mustGroup(id string) *store.Group {
	e.t.Helper()
	g, err := e.st.GetGroup(context.Background(), id)
	require.NoError(e.t, err)
	return g
}

func (e *env) seedUser(id, userName string, mod ...func(*store.User)) *store.User {
	e.t.Helper()
	u := &store.User{ID: id, Kind: store.KindUser, UserName: userName, Active: true}
	for _, m := range mod {
		m(u)
	}
	require.NoError(e.t, e.st.CreateUser(context.Background(), u))
	return u
}

func (e *env) seedGroup(id, name string, members ...store.Member) *store.Group {
	e.t.Helper()
	g := &store.Group{ID: id, DisplayName: name, Members: members}
	require.NoError(e.t, e.st.CreateGroup(context.Background(), g))
	return g
}

func memberSet(g *store.Group) []string {
	var out []string
	for _, m := range g.Members {
		out = append(out, m.ID)
	}
	return out
}
