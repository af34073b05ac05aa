package api_test

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-dev/gatehouse/internal/api"
	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

const hrARN = "arn:aws:iam::000000000000:role/hr-reader"

// mountEnv is newEnv with two roles and an OnMountsChanged counter.
func mountEnv(t *testing.T) (*env, *atomic.Int64) {
	t.Helper()
	e := newEnv(t)
	for _, r := range []*store.Role{
		{Name: "hr-reader", TrustPolicy: trustJSON},
		{Name: "sales", Path: "/biz/", TrustPolicy: trustJSON},
	} {
		require.NoError(t, e.st.CreateRole(context.Background(), r))
	}
	var changed atomic.Int64
	h, err := api.New(api.Options{Store: e.st, Identity: e.svc, Audit: e.rec, Denials: e.denials, Logger: slog.New(slog.DiscardHandler),
		OnMountsChanged: func(ctx context.Context, _ *store.Mount, _ bool) {
			require.NoError(t, ctx.Err())
			changed.Add(1)
		}})
	require.NoError(t, err)
	e.srv = httptest.NewServer(h)
	t.Cleanup(e.srv.Close)
	return e, &changed
}

func TestMountsCRUD(t *testing.T) {
	e, changed := mountEnv(t)
	r := e.do(t, "POST", "/api/v1/mounts", e.admin, body(t, map[string]any{
		"bucket": "lake", "prefix": "hr/", "roleArn": hrARN, "description": "HR data",
	}))
	require.Equal(t, 201, r.status, r.raw)
	id := r.body["id"].(string)
	require.Equal(t, "/api/v1/mounts/"+id, r.header.Get("Location"))
	require.Equal(t, hrARN, r.body["roleArn"])
	require.Equal(t, float64(1), r.body["revision"])
	require.Equal(t, int64(1), changed.Load(), "the server is told at once")
	ev := e.rec.take()
	require.Equal(t, []audit.Code{audit.CodeMountCreated}, codesOf(ev))
	require.Equal(t, audit.Allow, ev[0].Decision)
	require.Equal(t, "root", ev[0].Actor.User)
	require.Equal(t, audit.Resource{Type: "mount", ID: id, Name: "s3://lake/hr/"}, ev[0].Resource)
	require.Equal(t, hrARN, ev[0].Details["roleArn"])

	// The same (bucket, prefix) again: 409, audited, nothing stored.
	r = e.do(t, "POST", "/api/v1/mounts", e.admin, body(t, map[string]any{
		"bucket": "lake", "prefix": "hr/", "roleArn": "arn:aws:iam::000000000000:role/biz/sales",
	}))
	require.Equal(t, 409, r.status, r.raw)
	require.Equal(t, "already_exists", r.errCode())
	require.Equal(t, []audit.Code{audit.CodeRequestRejected}, codesOf(e.rec.take()))
	require.Equal(t, int64(1), changed.Load())

	// A nested prefix and another bucket are separate mounts.
	r = e.do(t, "POST", "/api/v1/mounts", e.admin, body(t, map[string]any{
		"bucket": "lake", "prefix": "hr/payroll/", "roleArn": "arn:aws:iam::000000000000:role/biz/sales",
	}))
	require.Equal(t, 201, r.status, r.raw)
	nested := r.body["id"].(string)
	r = e.do(t, "POST", "/api/v1/mounts", e.admin, body(t, map[string]any{"bucket": "archive", "prefix": "hr/", "roleArn": hrARN}))
	require.Equal(t, 201, r.status, r.raw)
	e.rec.take()

	r = e.do(t, "GET", "/api/v1/mounts", e.admin, "")
	require.Equal(t, 200, r.status, r.raw)
	list := r.body["mounts"].([]any)
	require.Len(t, list, 3)
	require.Equal(t, "archive", list[0].(map[string]any)["bucket"], "ordered by bucket, prefix")
	r = e.do(t, "GET", "/api/v1/mounts?bucket=lake", e.admin, "")
	require.Len(t, r.body["mounts"], 2)
	r = e.do(t, "GET", "/api/v1/mounts/"+id, e.admin, "")
	require.Equal(t, 200, r.status, r.raw)
	require.Equal(t, "HR data", r.body["description"])
	r = e.do(t, "GET", "/api/v1/mounts/nope", e.admin, "")
	require.Equal(t, 404, r.status, r.raw)
	require.Empty(t, e.rec.take(), "reads are not audited")

	// PATCH needs the current revision; moving onto a taken prefix is 409.
	r = e.do(t, "PATCH", "/api/v1/mounts/"+id, e.admin, body(t, map[string]any{"description": "x"}))
	require.Equal(t, 400, r.status, r.raw)
	r = e.do(t, "PATCH", "/api/v1/mounts/"+id, e.admin, body(t, map[string]any{"description": "x", "revision": 9}))
	require.Equal(t, 409, r.status, r.raw)
	require.Equal(t, "conflict", r.errCode())
	r = e.do(t, "PATCH", "/api/v1/mounts/"+nested, e.admin, body(t, map[string]any{"prefix": "hr/", "revision": 1}))
	require.Equal(t, 409, r.status, r.raw)
	require.Equal(t, "already_exists", r.errCode())
	require.Equal(t, []audit.Code{audit.CodeRequestRejected, audit.CodeRequestRejected, audit.CodeRequestRejected}, codesOf(e.rec.take()))
	before := changed.Load()
	r = e.do(t, "PATCH", "/api/v1/mounts/"+id, e.admin, body(t, map[string]any{
		"prefix": "people/", "roleArn": "arn:aws:iam::000000000000:role/biz/sales", "revision": 1,
	}))
	require.Equal(t, 200, r.status, r.raw)
	require.Equal(t, float64(2), r.body["revision"])
	require.Equal(t, "people/", r.body["prefix"])
	require.Equal(t, "HR data", r.body["description"], "absent fields are kept")
	ev = e.rec.take()
	require.Equal(t, []audit.Code{audit.CodeMountUpdated}, codesOf(ev))
	require.Equal(t, []string{"prefix", "roleArn"}, ev[0].Details["fields"])
	require.Equal(t, before+1, changed.Load())
	// Unchanged: no write, no event, no reload.
	r = e.do(t, "PATCH", "/api/v1/mounts/"+id, e.admin, body(t, map[string]any{"prefix": "people/", "revision": 2}))
	require.Equal(t, 200, r.status, r.raw)
	require.Equal(t, float64(2), r.body["revision"])
	require.Empty(t, e.rec.take())
	require.Equal(t, before+1, changed.Load())

	r = e.do(t, "DELETE", "/api/v1/mounts/"+id, e.admin, "")
	require.Equal(t, 204, r.status, r.raw)
	ev = e.rec.take()
	require.Equal(t, []audit.Code{audit.CodeMountDeleted}, codesOf(ev))
	require.Equal(t, "people/", ev[0].Details["prefix"])
	require.Equal(t, before+2, changed.Load())
	r = e.do(t, "DELETE", "/api/v1/mounts/"+id, e.admin, "")
	require.Equal(t, 404, r.status, r.raw)
	require.Equal(t, []audit.Code{audit.CodeRequestRejected}, codesOf(e.rec.take()))
}

func TestMountValidation(t *testing.T) {
	e, changed := mountEnv(t)
	long := strings.Repeat("a/", 513)
	for name, tc := range map[string]struct {
		body map[string]any
		msg  string
	}{
		"bucket upper":      {map[string]any{"bucket": "Lake", "prefix": "hr/", "roleArn": hrARN}, `"bucket"`},
		"bucket ip":         {map[string]any{"bucket": "10.0.0.1", "prefix": "hr/", "roleArn": hrARN}, `"bucket"`},
		"bucket short":      {map[string]any{"bucket": "ab", "prefix": "hr/", "roleArn": hrARN}, ""},
		"prefix no slash":   {map[string]any{"bucket": "lake", "prefix": "hr", "roleArn": hrARN}, `"prefix"`},
		"prefix leading /":  {map[string]any{"bucket": "lake", "prefix": "/hr/", "roleArn": hrARN}, `"prefix"`},
		"prefix dotdot":     {map[string]any{"bucket": "lake", "prefix": "hr/../x/", "roleArn": hrARN}, `"prefix"`},
		"prefix dotdot2":    {map[string]any{"bucket": "lake", "prefix": "hr..x/", "roleArn": hrARN}, `"prefix"`},
		"prefix empty seg":  {map[string]any{"bucket": "lake", "prefix": "hr//", "roleArn": hrARN}, `"prefix"`},
		"prefix encoded":    {map[string]any{"bucket": "lake", "prefix": "hr%2f/", "roleArn": hrARN}, `"prefix"`},
		"prefix too long":   {map[string]any{"bucket": "lake", "prefix": long, "roleArn": hrARN}, ""},
		"prefix empty":      {map[string]any{"bucket": "lake", "prefix": "", "roleArn": hrARN}, ""},
		"role unknown":      {map[string]any{"bucket": "lake", "prefix": "hr/", "roleArn": "arn:aws:iam::000000000000:role/nobody"}, "no role"},
		"role wrong path":   {map[string]any{"bucket": "lake", "prefix": "hr/", "roleArn": "arn:aws:iam::000000000000:role/sales"}, "did you mean"},
		"role wrong acct":   {map[string]any{"bucket": "lake", "prefix": "hr/", "roleArn": "arn:aws:iam::111111111111:role/hr-reader"}, `"roleArn"`},
		"role not arn":      {map[string]any{"bucket": "lake", "prefix": "hr/", "roleArn": "hr-reader"}, `"roleArn"`},
		"role missing":      {map[string]any{"bucket": "lake", "prefix": "hr/"}, ""},
		"unknown field":     {map[string]any{"bucket": "lake", "prefix": "hr/", "roleArn": hrARN, "extra": 1}, ""},
		"description ctrls": {map[string]any{"bucket": "lake", "prefix": "hr/", "roleArn": hrARN, "description": "a\x00b"}, `"description"`},
	} {
		r := e.do(t, "POST", "/api/v1/mounts", e.admin, body(t, tc.body))
		require.Equal(t, 400, r.status, "%s: %s", name, r.raw)
		require.Contains(t, r.errMsg(), tc.msg, name)
		ev := e.rec.take()
		require.Equal(t, []audit.Code{audit.CodeRequestRejected}, codesOf(ev), name)
		require.Equal(t, audit.Deny, ev[0].Decision)
	}
	r := e.do(t, "GET", "/api/v1/mounts", e.admin, "")
	require.Empty(t, r.body["mounts"])
	require.Zero(t, changed.Load())

	// The same checks guard PATCH.
	r = e.do(t, "POST", "/api/v1/mounts", e.admin, body(t, map[string]any{"bucket": "lake", "prefix": "hr/", "roleArn": hrARN}))
	require.Equal(t, 201, r.status, r.raw)
	id := r.body["id"].(string)
	e.rec.take()
	for _, b := range []map[string]any{
		{"revision": 1, "prefix": "../"},
		{"revision": 1, "bucket": "Bad_Bucket"},
		{"revision": 1, "roleArn": "arn:aws:iam::000000000000:role/ghost"},
	} {
		r = e.do(t, "PATCH", "/api/v1/mounts/"+id, e.admin, body(t, b))
		require.Equal(t, 400, r.status, r.raw)
		require.Equal(t, []audit.Code{audit.CodeRequestRejected}, codesOf(e.rec.take()))
	}
	r = e.do(t, "GET", "/api/v1/mounts/"+id, e.admin, "")
	require.Equal(t, float64(1), r.body["revision"])
}

func TestMountsAdminOnly(t *testing.T) {
	e, changed := mountEnv(t)
	for _, c := range []struct{ method, path, body string }{
		{"GET", "/api/v1/mounts", ""},
		{"POST", "/api/v1/mounts", body(t, map[string]any{"bucket": "lake", "prefix": "hr/", "roleArn": hrARN})},
		{"GET", "/api/v1/mounts/x", ""},
		{"PATCH", "/api/v1/mounts/x", `{"revision":1}`},
		{"DELETE", "/api/v1/mounts/x", ""},
	} {
		r := e.do(t, c.method, c.path, e.user, c.body)
		require.Equal(t, 403, r.status, "%s %s: %s", c.method, c.path, r.raw)
		require.Equal(t, "forbidden", r.errCode())
		require.Equal(t, []audit.Code{audit.CodeAdminDenied}, codesOf(e.rec.take()))
		e.nextWindow() // each anonymous refusal below is the first of its window
		r = e.do(t, c.method, c.path, "", c.body)
		require.Equal(t, 401, r.status, "%s %s: %s", c.method, c.path, r.raw)
		require.Equal(t, []audit.Code{audit.CodeAuthDenied}, codesOf(e.rec.take()))
	}
	require.Zero(t, changed.Load())
}

func TestMountAuditFailClosed(t *testing.T) {
	e, changed := mountEnv(t)
	e.rec.setFail(true)
	r := e.do(t, "POST", "/api/v1/mounts", e.admin, body(t, map[string]any{"bucket": "lake", "prefix": "hr/", "roleArn": hrARN}))
	require.Equal(t, 503, r.status, r.raw)
	e.rec.setFail(false)
	list, err := e.st.ListMounts(context.Background())
	require.NoError(t, err)
	require.Empty(t, list, "an unaudited mutation does not happen")
	require.Zero(t, changed.Load())
}
