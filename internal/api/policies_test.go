package api_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-dev/gatehouse/internal/api"
	"github.com/gatehouse-dev/gatehouse/internal/audit"
)

func TestManagedPoliciesCRUD(t *testing.T) {
	e := newEnv(t)
	r := e.do(t, "POST", "/api/v1/policies", e.admin, body(t, map[string]any{
		"name": "lake-read", "path": "/eng/", "description": "Read the lake", "document": raw(readJSON),
	}))
	require.Equal(t, 201, r.status, r.raw)
	id := r.body["id"].(string)
	require.Equal(t, "arn:aws:iam::000000000000:policy/eng/lake-read", r.body["arn"])
	require.Equal(t, "/api/v1/policies/"+id, r.header.Get("Location"))
	require.Equal(t, float64(1), r.body["revision"])
	require.Equal(t, "2012-10-17", r.body["document"].(map[string]any)["Version"])
	ev := e.rec.take()
	require.Equal(t, []audit.Code{audit.CodePolicyCreated}, codesOf(ev))
	require.Equal(t, audit.Allow, ev[0].Decision)
	require.Equal(t, audit.Resource{Type: "policy", ID: id, Name: "lake-read"}, ev[0].Resource)
	require.Equal(t, "arn:aws:iam::000000000000:policy/eng/lake-read", ev[0].Details["arn"])
	require.Contains(t, ev[0].Details["document"], "sha256:")

	r = e.do(t, "POST", "/api/v1/policies", e.admin, body(t, map[string]any{"name": "LAKE-READ", "document": raw(readJSON)}))
	require.Equal(t, 409, r.status, r.raw)
	require.Equal(t, "already_exists", r.errCode())
	require.Equal(t, []audit.Code{audit.CodeRequestRejected}, codesOf(e.rec.take()))

	r = e.do(t, "POST", "/api/v1/policies", e.admin, body(t, map[string]any{"name": "minimal", "document": raw(writeJSON)}))
	require.Equal(t, 201, r.status, r.raw)
	require.Equal(t, "/", r.body["path"])
	require.Equal(t, "arn:aws:iam::000000000000:policy/minimal", r.body["arn"])
	e.rec.take()

	for _, ref := range []string{id, "Lake-Read"} {
		r = e.do(t, "GET", "/api/v1/policies/"+ref, e.admin, "")
		require.Equal(t, 200, r.status, r.raw)
		require.Equal(t, id, r.body["id"])
	}
	r = e.do(t, "GET", "/api/v1/policies", e.admin, "")
	require.Equal(t, 200, r.status, r.raw)
	require.Len(t, r.body["policies"], 2)
	r = e.do(t, "GET", "/api/v1/policies?pathPrefix=/eng/", e.admin, "")
	require.Len(t, r.body["policies"], 1)
	r = e.do(t, "GET", "/api/v1/policies?filter=MIN", e.admin, "")
	require.Len(t, r.body["policies"], 1)
	require.Empty(t, e.rec.take(), "reads are not audited")

	// PUT needs the current revision.
	r = e.do(t, "PUT", "/api/v1/policies/lake-read", e.admin, body(t, map[string]any{"document": raw(writeJSON)}))
	require.Equal(t, 400, r.status, r.raw)
	r = e.do(t, "PUT", "/api/v1/policies/lake-read", e.admin, body(t, map[string]any{"document": raw(writeJSON), "revision": 7}))
	require.Equal(t, 409, r.status, r.raw)
	require.Equal(t, "conflict", r.errCode())
	e.rec.take()
	r = e.do(t, "PUT", "/api/v1/policies/lake-read", e.admin, body(t, map[string]any{"document": raw(writeJSON), "revision": 1}))
	require.Equal(t, 200, r.status, r.raw)
	require.Equal(t, float64(2), r.body["revision"])
	require.Equal(t, "/eng/", r.body["path"], "name and path never change")
	ev = e.rec.take()
	require.Equal(t, []audit.Code{audit.CodePolicyUpdated}, codesOf(ev))
	require.Equal(t, []string{"document"}, ev[0].Details["fields"])
	// Unchanged document: no write, no event.
	r = e.do(t, "PUT", "/api/v1/policies/lake-read", e.admin, body(t, map[string]any{"document": raw(writeJSON), "revision": 2}))
	require.Equal(t, 200, r.status, r.raw)
	require.Equal(t, float64(2), r.body["revision"])
	require.Empty(t, e.rec.take())

	r = e.do(t, "DELETE", "/api/v1/policies/lake-read", e.admin, "")
	require.Equal(t, 204, r.status, r.raw)
	ev = e.rec.take()
	require.Equal(t, []audit.Code{audit.CodePolicyDeleted}, codesOf(ev))
	require.Equal(t, "arn:aws:iam::000000000000:policy/eng/lake-read", ev[0].Details["arn"])
	r = e.do(t, "GET", "/api/v1/policies/"+id, e.admin, "")
	require.Equal(t, 404, r.status, r.raw)
	r = e.do(t, "DELETE", "/api/v1/policies/"+id, e.admin, "")
	require.Equal(t, 404, r.status, r.raw)
	require.Equal(t, []audit.Code{audit.CodeRequestRejected}, codesOf(e.rec.take()))
}

func TestManagedPolicyValidation(t *testing.T) {
	e := newEnv(t)
	for name, tc := range map[string]struct {
		body map[string]any
		msg  string
	}{
		"principal":  {map[string]any{"name": "p", "document": raw(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"*"}]}`)}, "must not name a Principal"},
		"bad effect": {map[string]any{"name": "p", "document": raw(`{"Version":"2012-10-17","Statement":[{"Effect":"Maybe","Action":"s3:*","Resource":"*"}]}`)}, "Statement[0]"},
		"bad name":   {map[string]any{"name": "a/b", "document": raw(readJSON)}, ""},
		"bad path":   {map[string]any{"name": "p", "path": "eng", "document": raw(readJSON)}, ""},
		"no doc":     {map[string]any{"name": "p"}, ""},
		"unknown":    {map[string]any{"name": "p", "document": raw(readJSON), "extra": 1}, ""},
	} {
		r := e.do(t, "POST", "/api/v1/policies", e.admin, body(t, tc.body))
		require.Equal(t, 400, r.status, "%s: %s", name, r.raw)
		require.Contains(t, r.errMsg(), tc.msg, name)
		ev := e.rec.take()
		require.Equal(t, []audit.Code{audit.CodeRequestRejected}, codesOf(ev), name)
		require.Equal(t, audit.Deny, ev[0].Decision)
	}
	r := e.do(t, "GET", "/api/v1/policies", e.admin, "")
	require.Empty(t, r.body["policies"])
}

func TestManagedPoliciesAdminOnly(t *testing.T) {
	e := newEnv(t)
	for _, c := range []struct{ method, path, body string }{
		{"GET", "/api/v1/policies", ""},
		{"POST", "/api/v1/policies", body(t, map[string]any{"name": "p", "document": raw(readJSON)})},
		{"GET", "/api/v1/policies/p", ""},
		{"PUT", "/api/v1/policies/p", body(t, map[string]any{"document": raw(readJSON), "revision": 1})},
		{"DELETE", "/api/v1/policies/p", ""},
		{"POST", "/api/v1/sts/revocations", `{"userName":"root"}`},
	} {
		r := e.do(t, c.method, c.path, e.user, c.body)
		require.Equal(t, 403, r.status, "%s %s: %s", c.method, c.path, r.raw)
		require.Equal(t, []audit.Code{audit.CodeAdminDenied}, codesOf(e.rec.take()))
		e.nextWindow() // each anonymous refusal below is the first of its window
		r = e.do(t, c.method, c.path, "", c.body)
		require.Equal(t, 401, r.status, "%s %s: %s", c.method, c.path, r.raw)
		require.Equal(t, []audit.Code{audit.CodeAuthDenied}, codesOf(e.rec.take()))
	}
}

type fakeRevoker struct {
	mu       sync.Mutex
	users    map[string]time.Time
	sessions map[string]time.Time
	fail     bool
}

func (f *fakeRevoker) RevokeUser(_ context.Context, id string, at time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail {
		return errors.New("store down")
	}
	f.users[id] = at
	return nil
}

func (f *fakeRevoker) RevokeSession(_ context.Context, id string, until time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail {
		return errors.New("store down")
	}
	f.sessions[id] = until
	return nil
}

func TestRevokeCredentials(t *testing.T) {
	e := newEnv(t)
	// Without a revoker the operation exists but is unavailable.
	r := e.do(t, "POST", "/api/v1/sts/revocations", e.admin, `{"sessionId":"00112233445566778899aabbccddeeff"}`)
	require.Equal(t, 503, r.status, r.raw)
	e.rec.take()

	rev := &fakeRevoker{users: map[string]time.Time{}, sessions: map[string]time.Time{}}
	h, err := api.New(api.Options{Store: e.st, Identity: e.svc, Audit: e.rec, Denials: e.denials, Revoker: rev,
		Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	e.srv = httptest.NewServer(h)
	t.Cleanup(e.srv.Close)

	before := time.Now()
	r = e.do(t, "POST", "/api/v1/sts/revocations", e.admin, `{"sessionId":"00112233445566778899aabbccddeeff"}`)
	require.Equal(t, 200, r.status, r.raw)
	until := rev.sessions["00112233445566778899aabbccddeeff"]
	require.WithinRange(t, until, before.Add(api.SessionDenyFor), time.Now().Add(api.SessionDenyFor))
	require.Equal(t, "00112233445566778899aabbccddeeff", r.body["sessionId"])
	ev := e.rec.take()
	require.Equal(t, []audit.Code{audit.CodeSTSRevoked}, codesOf(ev))
	require.Equal(t, audit.Allow, ev[0].Decision)
	require.Equal(t, audit.Resource{Type: "sts-session", ID: "00112233445566778899aabbccddeeff"}, ev[0].Resource)
	require.Equal(t, "root", ev[0].Actor.User)

	for _, b := range []string{`{"userName":"PLAIN"}`, `{"userId":"` + e.userU.ID + `"}`} {
		before := time.Now()
		r = e.do(t, "POST", "/api/v1/sts/revocations", e.admin, b)
		require.Equal(t, 200, r.status, r.raw)
		require.Equal(t, e.userU.ID, r.body["userId"])
		require.Equal(t, "plain", r.body["userName"])
		require.WithinRange(t, rev.users[e.userU.ID], before, time.Now())
		ev = e.rec.take()
		require.Equal(t, []audit.Code{audit.CodeSTSRevoked}, codesOf(ev))
		require.Equal(t, audit.Resource{Type: "user", ID: e.userU.ID, Name: "plain"}, ev[0].Resource)
	}

	for _, b := range []string{`{}`, `{"sessionId":"x1"}`, `{"sessionId":"00112233445566778899aabbccddeeff","userName":"plain"}`, `{"other":"x"}`} {
		r = e.do(t, "POST", "/api/v1/sts/revocations", e.admin, b)
		require.Equal(t, 400, r.status, "%s: %s", b, r.raw)
		require.Equal(t, []audit.Code{audit.CodeRequestRejected}, codesOf(e.rec.take()))
	}
	r = e.do(t, "POST", "/api/v1/sts/revocations", e.admin, `{"userName":"ghost"}`)
	require.Equal(t, 404, r.status, r.raw)
	require.Equal(t, []audit.Code{audit.CodeRequestRejected}, codesOf(e.rec.take()))

	// A failed revocation is reported and its audit event says it did not apply.
	rev.mu.Lock()
	rev.fail = true
	rev.mu.Unlock()
	r = e.do(t, "POST", "/api/v1/sts/revocations", e.admin, `{"userName":"plain"}`)
	require.Equal(t, 500, r.status, r.raw)
	ev = e.rec.take()
	require.Equal(t, []audit.Code{audit.CodeSTSRevoked, audit.CodeSTSRevoked}, codesOf(ev))
	require.Equal(t, audit.Error, ev[1].Decision)

	// Audit down: nothing is revoked (fail closed).
	rev.mu.Lock()
	rev.fail = false
	rev.mu.Unlock()
	e.rec.setFail(true)
	r = e.do(t, "POST", "/api/v1/sts/revocations", e.admin, `{"sessionId":"ffffffffffffffffffffffffffffffff"}`)
	require.Equal(t, 503, r.status, r.raw)
	_, ok := rev.sessions["ffffffffffffffffffffffffffffffff"]
	require.False(t, ok)
}
