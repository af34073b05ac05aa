package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-dev/gatehouse/internal/api"
	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/identity"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/store/sqlite"
)

type recorder struct {
	mu     sync.Mutex
	events []audit.Event
	fail   bool
}

func (r *recorder) Emit(_ context.Context, e audit.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail {
		return errors.New("audit sink down")
	}
	r.events = append(r.events, e)
	return nil
}

func (r *recorder) setFail(v bool) { r.mu.Lock(); r.fail = v; r.mu.Unlock() }

func (r *recorder) take() []audit.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	ev := r.events
	r.events = nil
	return ev
}

type env struct {
	st    *sqlite.Store
	svc   *identity.Service
	rec   *recorder
	srv   *httptest.Server
	logs  *bytes.Buffer
	admin string // admin PAT
	user  string // non-admin PAT
	userU *store.User
	// denials aggregates anonymous refusals on the clock denialClock.
	denials     *audit.Aggregator
	denialClock *stepClock
}

// nextWindow moves the denial aggregator to its next window, so that the
// next anonymous refusal from a source is recorded on its own again.
func (e *env) nextWindow() { e.denialClock.add(time.Second) }

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "gh.db"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	e := &env{st: st, rec: &recorder{}, logs: &bytes.Buffer{}}
	logger := slog.New(slog.NewTextHandler(e.logs, nil))
	e.svc = identity.NewService(st, e.rec, identity.Options{Logger: logger,
		Argon2: identity.Argon2Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}})
	e.denialClock = &stepClock{t: time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)}
	e.denials, err = audit.NewAggregator(audit.AggregatorOptions{Emitter: e.rec, SummaryCode: audit.CodeAuthDeniedAggregated,
		Clock: e.denialClock.now})
	require.NoError(t, err)
	h, err := api.New(api.Options{Store: st, Identity: e.svc, Audit: e.rec, Logger: logger, MaxBodyBytes: 4096, Denials: e.denials})
	require.NoError(t, err)
	e.srv = httptest.NewServer(h)
	t.Cleanup(e.srv.Close)

	root := &store.User{UserName: "root", Kind: store.KindUser, Active: true}
	require.NoError(t, st.CreateUser(ctx, root))
	_, err = e.svc.GrantPrivilege(ctx, root.ID, identity.PrivilegeAdmin, "system")
	require.NoError(t, err)
	e.admin, _, err = e.svc.CreateToken(ctx, nil, root.ID, "admin", 0)
	require.NoError(t, err)
	e.userU = &store.User{UserName: "plain", Kind: store.KindUser, Active: true}
	require.NoError(t, st.CreateUser(ctx, e.userU))
	e.user, _, err = e.svc.CreateToken(ctx, nil, e.userU.ID, "user", 0)
	require.NoError(t, err)
	return e
}

type resp struct {
	status int
	header http.Header
	raw    string
	body   map[string]any
}

func (r resp) errCode() string {
	e, _ := r.body["error"].(map[string]any)
	s, _ := e["code"].(string)
	return s
}

func (r resp) errMsg() string {
	e, _ := r.body["error"].(map[string]any)
	s, _ := e["message"].(string)
	return s
}

func (e *env) do(t *testing.T, method, path, token, body string, hdr ...string) resp {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	require.NoError(t, err)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	out := resp{status: res.StatusCode, header: res.Header, raw: string(b)}
	if len(b) > 0 {
		require.NoError(t, json.Unmarshal(b, &out.body), string(b))
		if res.StatusCode >= 400 {
			// One error shape everywhere.
			require.NotEmpty(t, out.errCode(), string(b))
			require.NotEmpty(t, out.errMsg(), string(b))
			eb := out.body["error"].(map[string]any)
			require.Equal(t, res.Header.Get("X-Request-Id"), eb["request_id"])
		}
	}
	return out
}

func codesOf(evs []audit.Event) []audit.Code {
	var out []audit.Code
	for _, e := range evs {
		out = append(out, e.Code)
	}
	return out
}

func TestUsersCRUD(t *testing.T) {
	e := newEnv(t)
	r := e.do(t, "POST", "/api/v1/users", e.admin, `{"userName":"alice","displayName":"Alice","emails":[{"value":"alice@example.com","primary":true}],"attributes":{"region":["EU"]},"password":"correct-horse"}`)
	require.Equal(t, 201, r.status, r.raw)
	id := r.body["id"].(string)
	require.Equal(t, true, r.body["active"])
	require.Equal(t, true, r.body["hasPassword"])
	require.Equal(t, float64(1), r.body["revision"])
	require.NotContains(t, r.raw, "argon2", "never the password hash")
	require.NotContains(t, r.raw, "correct-horse")
	ev := e.rec.take()
	require.Equal(t, []audit.Code{audit.CodeUserCreated}, codesOf(ev))
	require.Equal(t, audit.Allow, ev[0].Decision)
	require.Equal(t, "root", ev[0].Actor.User)
	require.Equal(t, "127.0.0.1", ev[0].Actor.SourceIP)
	require.Equal(t, id, ev[0].Resource.ID)
	require.NotEmpty(t, ev[0].RequestID)

	r = e.do(t, "POST", "/api/v1/users", e.admin, `{"userName":"ALICE"}`)
	require.Equal(t, 409, r.status, r.raw)
	require.Equal(t, "already_exists", r.errCode())

	r = e.do(t, "GET", "/api/v1/users", e.admin, "")
	require.Equal(t, 200, r.status)
	require.Len(t, r.body["users"], 3)
	r = e.do(t, "GET", "/api/v1/users?filter=AL", e.admin, "")
	require.Len(t, r.body["users"], 1)

	for _, ref := range []string{id, "alice"} {
		r = e.do(t, "GET", "/api/v1/users/"+ref, e.admin, "")
		require.Equal(t, 200, r.status)
		require.Equal(t, id, r.body["id"])
	}

	r = e.do(t, "PATCH", "/api/v1/users/"+id, e.admin, `{"revision":1,"displayName":"Alice A."}`)
	require.Equal(t, 200, r.status, r.raw)
	require.Equal(t, float64(2), r.body["revision"])
	require.Equal(t, "Alice A.", r.body["displayName"])
	require.Equal(t, "alice@example.com", r.body["emails"].([]any)[0].(map[string]any)["value"])

	e.rec.take()
	r = e.do(t, "PATCH", "/api/v1/users/"+id, e.admin, `{"revision":1,"displayName":"stale"}`)
	require.Equal(t, 409, r.status, r.raw)
	require.Equal(t, "conflict", r.errCode())
	r = e.do(t, "GET", "/api/v1/users/"+id, e.admin, "")
	require.Equal(t, "Alice A.", r.body["displayName"], "stale write changed nothing")
	require.Equal(t, []audit.Code{audit.CodeRequestRejected}, codesOf(e.rec.take()))

	r = e.do(t, "DELETE", "/api/v1/users/"+id, e.admin, "")
	require.Equal(t, 204, r.status, r.raw)
	require.Equal(t, []audit.Code{audit.CodeUserDeleted}, codesOf(e.rec.take()))
	r = e.do(t, "GET", "/api/v1/users/"+id, e.admin, "")
	require.Equal(t, 404, r.status)
	require.Equal(t, "not_found", r.errCode())

	r = e.do(t, "DELETE", "/api/v1/users/root", e.admin, "")
	require.Equal(t, 400, r.status, "no self-delete")
}

func TestSchemaViolations(t *testing.T) {
	e := newEnv(t)
	r := e.do(t, "POST", "/api/v1/users", e.admin, `{"userName":"bob"}`)
	require.Equal(t, 201, r.status, r.raw)
	bob := r.body["id"].(string)
	e.rec.take()

	for _, tc := range []struct {
		name, method, path, body string
		status                   int
		field                    string
	}{
		{"unknown field", "POST", "/api/v1/users", `{"userName":"x1","isAdmin":true}`, 400, `"isAdmin"`},
		{"wrong type", "POST", "/api/v1/users", `{"userName":"x2","displayName":5}`, 400, `"displayName"`},
		{"missing required", "POST", "/api/v1/users", `{"displayName":"X"}`, 400, `"userName"`},
		{"bad enum", "POST", "/api/v1/users", `{"userName":"x3","kind":"robot"}`, 400, `"kind"`},
		{"nested unknown field", "POST", "/api/v1/users", `{"userName":"x4","emails":[{"value":"a@b.c","verified":true}]}`, 400, `"emails.0.verified"`},
		{"nested wrong type", "POST", "/api/v1/users", `{"userName":"x5","attributes":{"region":"EU"}}`, 400, `"attributes.region"`},
		{"pattern", "POST", "/api/v1/users", `{"userName":"has space"}`, 400, `"userName"`},
		{"password too short, not echoed", "POST", "/api/v1/users", `{"userName":"x6","password":"pw-zq"}`, 400, `"password"`},
		{"bad attribute key", "POST", "/api/v1/users", `{"userName":"x7","attributes":{"bad key":["v"]}}`, 400, `"attributes.bad key"`},
		{"not json", "POST", "/api/v1/users", `{"userName":`, 400, "JSON"},
		{"empty body", "POST", "/api/v1/users", ``, 400, "body is required"},
		{"patch missing revision", "PATCH", "/api/v1/users/" + bob, `{"displayName":"B"}`, 400, `"revision"`},
		{"patch revision string", "PATCH", "/api/v1/users/" + bob, `{"revision":"1","displayName":"B"}`, 400, `"revision"`},
		{"patch readonly", "PATCH", "/api/v1/users/" + bob, `{"revision":1,"id":"other"}`, 400, `"id"`},
		{"bad query enum", "GET", "/api/v1/users?kind=robot", ``, 400, `"kind"`},
		{"body where none allowed", "POST", "/api/v1/users/" + bob + "/disable", `{"x":1}`, 400, "no request body"},
		{"group member type", "POST", "/api/v1/groups", `{"displayName":"g","members":[{"value":"bob","type":"Robot"}]}`, 400, `"members.0.type"`},
		{"token ttl too long", "POST", "/api/v1/tokens", `{"ttlSeconds":99999999999}`, 400, `"ttlSeconds"`},
		{"unknown member", "POST", "/api/v1/groups", `{"displayName":"g","members":[{"value":"nobody"}]}`, 400, `"members.0.value"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(t, tc.method, tc.path, e.admin, tc.body)
			require.Equal(t, tc.status, r.status, r.raw)
			require.Equal(t, "invalid_request", r.errCode())
			require.Contains(t, r.errMsg(), tc.field)
			require.NotContains(t, r.raw, "pw-zq")
			ev := e.rec.take()
			require.Equal(t, []audit.Code{audit.CodeRequestRejected}, codesOf(ev))
			require.Equal(t, audit.Deny, ev[0].Decision)
		})
	}
	r = e.do(t, "GET", "/api/v1/users", e.admin, "")
	require.Len(t, r.body["users"], 3, "nothing was created")
	r = e.do(t, "GET", "/api/v1/users/"+bob, e.admin, "")
	require.Equal(t, float64(1), r.body["revision"], "nothing was changed")
	require.Equal(t, true, r.body["active"])
	r = e.do(t, "GET", "/api/v1/groups", e.admin, "")
	require.Empty(t, r.body["groups"], "no group was created")

	r = e.do(t, "POST", "/api/v1/users", e.admin, `{"userName":"x8"}`, "Content-Type", "text/plain")
	require.Equal(t, 415, r.status, r.raw)
}

func TestRoutingAndLimits(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		method, path string
		status       int
		code         string
	}{
		{"GET", "/api/v1/nope", 404, "not_found"},
		{"GET", "/api/v2/users", 404, "not_found"},
		{"GET", "/", 404, "not_found"},
		{"GET", "/api/v1/users/a/b", 404, "not_found"},
		{"PUT", "/api/v1/users", 405, "method_not_allowed"},
		{"DELETE", "/api/v1/login", 405, "method_not_allowed"},
	} {
		r := e.do(t, tc.method, tc.path, e.admin, "")
		require.Equal(t, tc.status, r.status, tc.path)
		require.Equal(t, tc.code, r.errCode())
	}
	require.Empty(t, e.rec.take(), "unmatched routes are not audited")

	big := `{"userName":"big","displayName":"` + strings.Repeat("a", 5000) + `"}`
	r := e.do(t, "POST", "/api/v1/users", e.admin, big)
	require.Equal(t, 413, r.status, r.raw)
	require.Equal(t, "payload_too_large", r.errCode())
	require.Equal(t, []audit.Code{audit.CodeRequestRejected}, codesOf(e.rec.take()))

	// Chunked (no Content-Length) is bounded too.
	req, _ := http.NewRequest("POST", e.srv.URL+"/api/v1/users", io.MultiReader(strings.NewReader(big)))
	req.ContentLength = -1
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+e.admin)
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, 413, res.StatusCode)

	r = e.do(t, "GET", "/api/v1/users/big", e.admin, "")
	require.Equal(t, 404, r.status, "nothing created")
}

// TestClientRequestIDNotAdopted (issue 12 §2, client request ids): a client
// that sends the X-Request-Id of another request, to splice its own actions
// into that request's audit trail, gets an id of ours instead; the audit
// event keeps the client's value as clientRequestId only.
func TestClientRequestIDNotAdopted(t *testing.T) {
	e := newEnv(t)
	e.rec.take()
	const forged = "victims-request-1"
	r := e.do(t, "DELETE", "/api/v1/users/nobody", e.admin, "", "X-Request-Id", forged)
	require.Equal(t, 404, r.status, r.raw)
	ours := r.header.Get("X-Request-Id")
	require.NotEmpty(t, ours)
	require.NotEqual(t, forged, ours, "a client's request id is never adopted")
	evs := e.rec.take()
	require.Len(t, evs, 1)
	require.Equal(t, ours, evs[0].RequestID)
	require.Equal(t, forged, evs[0].ClientRequestID)
}

func TestAuthAndAudit(t *testing.T) {
	e := newEnv(t)

	r := e.do(t, "GET", "/api/v1/users", "", "")
	require.Equal(t, 401, r.status)
	require.Equal(t, "unauthenticated", r.errCode())
	require.Contains(t, r.header.Get("WWW-Authenticate"), "Bearer")
	r = e.do(t, "GET", "/api/v1/users", "ghp_aaaa_bbbb", "")
	require.Equal(t, 401, r.status)
	// Anonymous refusals are aggregated: the first of the window on its
	// own, the second counted, then summarized once the window has passed.
	ev := e.rec.take()
	require.Equal(t, []audit.Code{audit.CodeAuthDenied}, codesOf(ev))
	require.Equal(t, audit.Deny, ev[0].Decision)
	e.nextWindow()
	require.NoError(t, e.denials.Flush(context.Background(), false))
	ev = e.rec.take()
	require.Equal(t, []audit.Code{audit.CodeAuthDeniedAggregated}, codesOf(ev))
	require.Equal(t, 1, ev[0].Details["aggregate"].(map[string]any)["count"])

	r = e.do(t, "GET", "/api/v1/whoami", e.user, "")
	require.Equal(t, 200, r.status)
	require.Equal(t, "plain", r.body["userName"])
	require.Equal(t, false, r.body["admin"])

	for _, tc := range []struct{ method, path, body string }{
		{"GET", "/api/v1/users", ""},
		{"POST", "/api/v1/users", `{"userName":"sneaky"}`},
		{"POST", "/api/v1/users", `{"userName":"sneaky","bogus":1}`}, // authz before validation
		{"DELETE", "/api/v1/users/root", ""},
		{"POST", "/api/v1/groups/gatehouse-admins/members", `{"value":"plain"}`},
	} {
		r = e.do(t, tc.method, tc.path, e.user, tc.body)
		require.Equal(t, 403, r.status, tc.path)
		require.Equal(t, "forbidden", r.errCode())
		ev := e.rec.take()
		require.Equal(t, []audit.Code{audit.CodeAdminDenied}, codesOf(ev))
		require.Equal(t, "plain", ev[0].Actor.User)
	}
	r = e.do(t, "GET", "/api/v1/users/sneaky", e.admin, "")
	require.Equal(t, 404, r.status)

	// Disable cuts the user off on the next request.
	r = e.do(t, "POST", "/api/v1/users/plain/disable", e.admin, "")
	require.Equal(t, 200, r.status, r.raw)
	require.Equal(t, false, r.body["active"])
	require.Equal(t, []audit.Code{audit.CodeUserDisabled}, codesOf(e.rec.take()))
	r = e.do(t, "GET", "/api/v1/whoami", e.user, "")
	require.Equal(t, 401, r.status)
	r = e.do(t, "POST", "/api/v1/users/plain/enable", e.admin, "")
	require.Equal(t, 200, r.status)
	r = e.do(t, "GET", "/api/v1/whoami", e.user, "")
	require.Equal(t, 200, r.status)
	r = e.do(t, "POST", "/api/v1/users/root/disable", e.admin, "")
	require.Equal(t, 400, r.status, "no self-disable")
}

func TestAuditFailClosed(t *testing.T) {
	e := newEnv(t)
	e.rec.setFail(true)
	for _, tc := range []struct{ method, path, token, body string }{
		{"POST", "/api/v1/users", e.admin, `{"userName":"ghost"}`},
		{"POST", "/api/v1/users/plain/disable", e.admin, ""},
		{"DELETE", "/api/v1/users/plain", e.admin, ""},
		{"POST", "/api/v1/groups", e.admin, `{"displayName":"ghosts"}`},
		{"POST", "/api/v1/tokens", e.admin, `{"name":"ghost"}`},
		{"GET", "/api/v1/users", "", ""},                             // denial that cannot be recorded
		{"GET", "/api/v1/users", e.user, ""},                         // ditto
		{"POST", "/api/v1/users", e.admin, `{"userName":"x","y":1}`}, // ditto
		{"POST", "/api/v1/login", "", `{"username":"root","password":"whatever-pw"}`},
	} {
		r := e.do(t, tc.method, tc.path, tc.token, tc.body)
		require.Equal(t, 503, r.status, tc.method+" "+tc.path+": "+r.raw)
		require.Equal(t, "unavailable", r.errCode())
	}
	e.rec.setFail(false)
	r := e.do(t, "GET", "/api/v1/users/ghost", e.admin, "")
	require.Equal(t, 404, r.status)
	r = e.do(t, "GET", "/api/v1/users/plain", e.admin, "")
	require.Equal(t, 200, r.status)
	require.Equal(t, true, r.body["active"])
	r = e.do(t, "GET", "/api/v1/groups/ghosts", e.admin, "")
	require.Equal(t, 404, r.status)
	r = e.do(t, "GET", "/api/v1/tokens", e.admin, "")
	for _, tk := range r.body["tokens"].([]any) {
		m := tk.(map[string]any)
		if m["name"] == "ghost" {
			require.NotNil(t, m["revokedAt"], "unaudited token must be revoked")
		}
	}
}

func TestAttributes(t *testing.T) {
	e := newEnv(t)
	r := e.do(t, "GET", "/api/v1/users/plain/attributes", e.admin, "")
	require.Equal(t, 200, r.status)
	require.Equal(t, map[string]any{}, r.body["attributes"])
	rev := r.body["revision"].(float64)

	r = e.do(t, "PUT", "/api/v1/users/plain/attributes", e.admin, `{"attributes":{"region":["EU"],"purpose":["a","b"]},"revision":1}`)
	require.Equal(t, 200, r.status, r.raw)
	require.Equal(t, rev+1, r.body["revision"])
	r = e.do(t, "PUT", "/api/v1/users/plain/attributes", e.admin, `{"attributes":{},"revision":1}`)
	require.Equal(t, 409, r.status)

	r = e.do(t, "PUT", "/api/v1/users/plain/attributes/team", e.admin, `{"values":["data"]}`)
	require.Equal(t, 200, r.status, r.raw)
	require.Equal(t, map[string]any{"region": []any{"EU"}, "purpose": []any{"a", "b"}, "team": []any{"data"}}, r.body["attributes"])
	r = e.do(t, "PUT", "/api/v1/users/plain/attributes/team", e.admin, `{"values":["x"],"revision":1}`)
	require.Equal(t, 409, r.status)
	r = e.do(t, "PUT", "/api/v1/users/plain/attributes/bad%20key", e.admin, `{"values":["x"]}`)
	require.Equal(t, 400, r.status, r.raw)

	r = e.do(t, "DELETE", "/api/v1/users/plain/attributes/region", e.admin, "")
	require.Equal(t, 200, r.status)
	require.NotContains(t, r.body["attributes"], "region")
	e.rec.take()
	r = e.do(t, "DELETE", "/api/v1/users/plain/attributes/region", e.admin, "")
	require.Equal(t, 200, r.status, "absent key: no-op")
	require.Empty(t, e.rec.take())
}

func TestGroups(t *testing.T) {
	e := newEnv(t)
	r := e.do(t, "POST", "/api/v1/groups", e.admin, `{"displayName":"analysts","members":[{"value":"plain"}]}`)
	require.Equal(t, 201, r.status, r.raw)
	analysts := r.body["id"].(string)
	r = e.do(t, "POST", "/api/v1/groups", e.admin, `{"displayName":"data","members":[{"value":"analysts","type":"Group"}]}`)
	require.Equal(t, 201, r.status, r.raw)
	dataID := r.body["id"].(string)

	r = e.do(t, "GET", "/api/v1/whoami", e.user, "")
	require.ElementsMatch(t, []any{"analysts", "data"}, r.body["groups"])

	r = e.do(t, "POST", "/api/v1/groups/analysts/members", e.admin, `{"value":"data"}`)
	require.Equal(t, 400, r.status, "cycle refused: "+r.raw)

	r = e.do(t, "POST", "/api/v1/groups/"+analysts+"/members", e.admin, `{"value":"root","type":"User"}`)
	require.Equal(t, 200, r.status, r.raw)
	require.Len(t, r.body["members"], 2)
	r = e.do(t, "DELETE", "/api/v1/groups/analysts/members/plain", e.admin, "")
	require.Equal(t, 200, r.status, r.raw)
	require.Len(t, r.body["members"], 1)

	r = e.do(t, "GET", "/api/v1/groups/"+dataID, e.admin, "")
	rev := r.body["revision"].(float64)
	r = e.do(t, "PATCH", "/api/v1/groups/data", e.admin, `{"revision":`+jsonNum(rev)+`,"displayName":"data-team","addMembers":[{"value":"plain"}],"removeMembers":[{"value":"analysts"}]}`)
	require.Equal(t, 200, r.status, r.raw)
	require.Equal(t, "data-team", r.body["displayName"])
	require.Len(t, r.body["members"], 1)
	r = e.do(t, "PATCH", "/api/v1/groups/data-team", e.admin, `{"revision":`+jsonNum(rev)+`,"displayName":"stale"}`)
	require.Equal(t, 409, r.status)

	r = e.do(t, "DELETE", "/api/v1/groups/data-team", e.admin, "")
	require.Equal(t, 204, r.status)
	r = e.do(t, "GET", "/api/v1/groups?filter=ANA", e.admin, "")
	require.Len(t, r.body["groups"], 1)
}

func jsonNum(f float64) string { b, _ := json.Marshal(f); return string(b) }

func TestTokensAndLogin(t *testing.T) {
	e := newEnv(t)
	// A plain user manages their own tokens.
	r := e.do(t, "POST", "/api/v1/tokens", e.user, `{"name":"ci","ttlSeconds":3600}`)
	require.Equal(t, 201, r.status, r.raw)
	secret := r.body["token"].(string)
	tokID := r.body["id"].(string)
	require.True(t, strings.HasPrefix(secret, "ghp_"))
	require.NotContains(t, r.raw, "hash")
	r = e.do(t, "GET", "/api/v1/whoami", secret, "")
	require.Equal(t, 200, r.status)
	r = e.do(t, "GET", "/api/v1/tokens", e.user, "")
	require.Len(t, r.body["tokens"], 2)

	// ... but not anyone else's.
	r = e.do(t, "POST", "/api/v1/tokens", e.user, `{"principalId":"root"}`)
	require.Equal(t, 403, r.status)
	r = e.do(t, "GET", "/api/v1/tokens?principal_id=root", e.user, "")
	require.Equal(t, 403, r.status)
	r = e.do(t, "GET", "/api/v1/tokens", e.admin, "")
	adminTok := r.body["tokens"].([]any)[0].(map[string]any)["id"].(string)
	e.rec.take()
	r = e.do(t, "DELETE", "/api/v1/tokens/"+adminTok, e.user, "")
	require.Equal(t, 404, r.status)
	require.Equal(t, []audit.Code{audit.CodeAdminDenied}, codesOf(e.rec.take()))

	// Admins manage anyone's.
	r = e.do(t, "GET", "/api/v1/tokens?principal_id=plain", e.admin, "")
	require.Len(t, r.body["tokens"], 2)
	r = e.do(t, "POST", "/api/v1/tokens", e.admin, `{"principalId":"plain","name":"for-plain"}`)
	require.Equal(t, 201, r.status)
	r = e.do(t, "DELETE", "/api/v1/tokens/"+tokID, e.admin, "")
	require.Equal(t, 200, r.status, r.raw)
	require.NotNil(t, r.body["revokedAt"])
	r = e.do(t, "GET", "/api/v1/whoami", secret, "")
	require.Equal(t, 401, r.status)
	ev := e.rec.take()
	require.Equal(t, []audit.Code{audit.CodeTokenCreated, audit.CodeTokenRevoked, audit.CodeAuthDenied}, codesOf(ev))
	require.NotContains(t, mustJSON(t, ev), secret)

	// Login.
	r = e.do(t, "PUT", "/api/v1/users/plain/password", e.admin, `{"password":"plain-password-1"}`)
	require.Equal(t, 204, r.status, r.raw)
	r = e.do(t, "POST", "/api/v1/login", "", `{"username":"plain","password":"wrong-password"}`)
	require.Equal(t, 401, r.status)
	require.Equal(t, "invalid username or password", r.errMsg())
	r = e.do(t, "POST", "/api/v1/login", "", `{"username":"nobody","password":"wrong-password"}`)
	require.Equal(t, 401, r.status)
	require.Equal(t, "invalid username or password", r.errMsg())
	r = e.do(t, "POST", "/api/v1/login", "", `{"username":"plain","password":"plain-password-1"}`)
	require.Equal(t, 200, r.status, r.raw)
	sess := r.body["token"].(string)
	require.True(t, strings.HasPrefix(sess, "ghs_"))
	require.NotEmpty(t, r.body["expiresAt"])
	require.Contains(t, r.header.Get("Set-Cookie"), "HttpOnly")
	ev = e.rec.take()
	require.Equal(t, []audit.Code{audit.CodeUserUpdated, audit.CodeLoginFailed, audit.CodeLoginFailed, audit.CodeLoginSucceeded}, codesOf(ev))
	require.NotContains(t, mustJSON(t, ev), "plain-password-1")
	require.NotContains(t, e.logs.String(), "plain-password-1")

	// Session cookie: reads fine; state changes need a same-origin signal (CSRF).
	cookie := "gatehouse_session=" + sess
	r = e.do(t, "GET", "/api/v1/whoami", "", "", "Cookie", cookie)
	require.Equal(t, 200, r.status)
	require.Equal(t, "session", r.body["authMethod"])
	r = e.do(t, "POST", "/api/v1/tokens", "", `{"name":"x"}`, "Cookie", cookie, "Origin", "https://evil.example")
	require.Equal(t, 403, r.status)
	r = e.do(t, "POST", "/api/v1/tokens", "", `{"name":"x"}`, "Cookie", cookie, "Sec-Fetch-Site", "same-origin")
	require.Equal(t, 201, r.status, r.raw)
}

func mustJSON(t *testing.T, v any) string {
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

func TestNewRejectsBadSpec(t *testing.T) {
	e := newEnv(t)
	base := api.Options{Store: e.st, Identity: e.svc, Audit: e.rec}
	for name, spec := range map[string]string{
		"unknown operation": `openapi: 3.0.3
info: {title: t, version: "1"}
servers: [{url: /api/v1}]
paths:
  /x:
    get:
      operationId: mystery
      x-gatehouse-auth: admin
      responses: {'200': {description: ok}}
`,
		"missing auth level": `openapi: 3.0.3
info: {title: t, version: "1"}
servers: [{url: /api/v1}]
paths:
  /whoami:
    get:
      operationId: whoami
      responses: {'200': {description: ok}}
`,
		"not yaml": `{`,
	} {
		opts := base
		opts.Spec = []byte(spec)
		_, err := api.New(opts)
		require.Error(t, err, name)
	}
}
