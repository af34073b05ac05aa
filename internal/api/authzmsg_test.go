package api_test

import (
	"bytes"
	"log/slog"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-dev/gatehouse/internal/api"
	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/authzmsg"
)

func TestDecodeAuthorizationMessage(t *testing.T) {
	e := newEnv(t)
	// Without a codec the operation is unavailable.
	r := e.do(t, "POST", "/api/v1/authorization-messages/decode", e.admin, `{"message":"ghm1.x"}`)
	require.Equal(t, 503, r.status, r.raw)
	e.rec.take()

	codec, err := authzmsg.New(bytes.Repeat([]byte{3}, 32))
	require.NoError(t, err)
	h, err := api.New(api.Options{Store: e.st, Identity: e.svc, Audit: e.rec, Denials: e.denials,
		Logger: slog.New(slog.NewTextHandler(e.logs, nil)), AuthzMessages: codec})
	require.NoError(t, err)
	e.srv = httptest.NewServer(h)
	t.Cleanup(e.srv.Close)

	msg, err := codec.Encode(authzmsg.Explanation{Principal: "arn:aws:sts::000000000000:assumed-role/analyst/alice",
		SourceIdentity: "alice", Action: "s3:GetObject", Resource: "arn:aws:s3:::demo/hr/x.csv", Reason: "no statement allows it"})
	require.NoError(t, err)

	r = e.do(t, "POST", "/api/v1/authorization-messages/decode", e.user, body(t, map[string]any{"message": msg}))
	require.Equal(t, 403, r.status, "only admins decode: %s", r.raw)
	require.Equal(t, []audit.Code{audit.CodeAdminDenied}, codesOf(e.rec.take()))

	r = e.do(t, "POST", "/api/v1/authorization-messages/decode", e.admin, body(t, map[string]any{"message": msg}))
	require.Equal(t, 200, r.status, r.raw)
	require.Equal(t, "s3:GetObject", r.body["action"])
	require.Equal(t, "alice", r.body["sourceIdentity"])
	require.Equal(t, "no statement allows it", r.body["reason"])
	ev := e.rec.take()
	require.Equal(t, []audit.Code{audit.CodeAuthzMessageDecoded}, codesOf(ev))
	require.Equal(t, "arn:aws:sts::000000000000:assumed-role/analyst/alice", ev[0].Details["deniedPrincipal"])

	for _, bad := range []string{`{"message":"ghm1.tampered"}`, `{"message":""}`, `{"msg":"x"}`, `{"message":"x","extra":1}`} {
		r = e.do(t, "POST", "/api/v1/authorization-messages/decode", e.admin, bad)
		require.Equal(t, 400, r.status, "%s: %s", bad, r.raw)
		require.Equal(t, []audit.Code{audit.CodeRequestRejected}, codesOf(e.rec.take()), bad)
	}
}
