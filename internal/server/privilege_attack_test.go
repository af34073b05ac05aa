package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// restServer is a test server wired like production (newTestServer), serving on loopback,
// with its bootstrap admin token.
type restServer struct {
	t         *testing.T
	url       string
	bootstrap string
}

func startRESTServer(t *testing.T) *restServer {
	t.Helper()
	srv, cfg := newTestServer(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	tok, err := os.ReadFile(cfg.Identity.BootstrapToken)
	require.NoError(t, err)
	return &restServer{t: t, url: srv.APIURL(), bootstrap: strings.TrimSpace(string(tok))}
}

// call sends method path with body (JSON) as token and decodes the answer.
func (s *restServer) call(token, method, path, body string) (int, map[string]any) {
	s.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, s.url+path, rd)
	require.NoError(s.t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	if body != "" {
		ct := "application/json"
		if strings.HasPrefix(path, "/scim/") {
			ct = "application/scim+json"
		}
		req.Header.Set("Content-Type", ct)
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(s.t, err)
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	require.NoError(s.t, err)
	var out map[string]any
	if len(raw) > 0 {
		require.NoError(s.t, json.Unmarshal(raw, &out), "%s %s: %s", method, path, raw)
	}
	return res.StatusCode, out
}

// mustCall is call that requires status want.
func (s *restServer) mustCall(want int, token, method, path, body string) map[string]any {
	s.t.Helper()
	got, out := s.call(token, method, path, body)
	require.Equal(s.t, want, got, "%s %s: %v", method, path, out)
	return out
}

// principalWithToken creates a principal through the admin API and returns
// its id and a personal access token for it.
func (s *restServer) principalWithToken(admin, name, kind string) (string, string) {
	s.t.Helper()
	u := s.mustCall(201, admin, "POST", "/api/v1/users", fmt.Sprintf(`{"userName":%q,"kind":%q}`, name, kind))
	tok := s.mustCall(201, admin, "POST", "/api/v1/tokens", fmt.Sprintf(`{"name":"t","principalId":%q}`, u["id"]))
	return u["id"].(string), tok["token"].(string)
}

// TestAttackLeakedSCIMTokenCannotBecomeAdmin proves issue 11 finding 2
// against a server wired like production: a leaked SCIM token tries every
// path to admin it has (create a group named gatehouse-admins, put members
// into it by PATCH and PUT, rename a group to that name, create a user of
// that name, set attributes, touch the bootstrap admin or itself, call the
// admin REST API), and neither the SCIM caller nor the user it controls
// ever becomes an administrator, or a SCIM caller.
func TestAttackLeakedSCIMTokenCannotBecomeAdmin(t *testing.T) {
	s := startRESTServer(t)
	admin := s.bootstrap
	scimID, scimTok := s.principalWithToken(admin, "okta-scim", "service")
	s.mustCall(200, admin, "PUT", "/api/v1/privileges/scim/principals/"+scimID, "")
	malloryID, malloryTok := s.principalWithToken(admin, "mallory", "user")
	bootID := s.mustCall(200, admin, "GET", "/api/v1/whoami", "")["id"].(string)

	notAdmin := func(step string) {
		t.Helper()
		for who, tok := range map[string]string{"mallory": malloryTok, "scim": scimTok} {
			me := s.mustCall(200, tok, "GET", "/api/v1/whoami", "")
			require.Equal(t, false, me["admin"], "%s: %s became admin", step, who)
			s.mustCall(403, tok, "GET", "/api/v1/users", "")
		}
		code, _ := s.call(malloryTok, "GET", "/scim/v2/Users", "")
		require.Equal(t, 403, code, "%s: mallory became a SCIM caller", step)
	}
	notAdmin("start")

	const grp = `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":%q,"members":[{"value":%q}]}`
	const patchOp = `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[%s]}`
	admins := s.mustCall(201, scimTok, "POST", "/scim/v2/Groups", fmt.Sprintf(grp, "gatehouse-admins", malloryID))
	notAdmin("create a group named gatehouse-admins holding mallory")
	s.mustCall(201, scimTok, "POST", "/scim/v2/Groups", fmt.Sprintf(grp, "gatehouse-scim", malloryID))
	notAdmin("create a group named gatehouse-scim holding mallory")

	staff := s.mustCall(201, scimTok, "POST", "/scim/v2/Groups", fmt.Sprintf(grp, "staff", malloryID))
	s.mustCall(204, scimTok, "DELETE", "/scim/v2/Groups/"+admins["id"].(string), "")
	s.mustCall(204, scimTok, "PATCH", "/scim/v2/Groups/"+staff["id"].(string),
		fmt.Sprintf(patchOp, `{"op":"replace","path":"displayName","value":"Gatehouse-Admins"}`))
	notAdmin("rename a group holding mallory to the admin group's name")
	s.mustCall(200, scimTok, "PUT", "/scim/v2/Groups/"+staff["id"].(string),
		fmt.Sprintf(grp, "gatehouse-admins", scimID))
	notAdmin("PUT the SCIM caller into the group named gatehouse-admins")
	s.mustCall(204, scimTok, "PATCH", "/scim/v2/Groups/"+staff["id"].(string),
		fmt.Sprintf(patchOp, fmt.Sprintf(`{"op":"add","path":"members","value":[{"value":%q},{"value":%q}]}`, malloryID, scimID)))
	notAdmin("PATCH mallory and the SCIM caller into the group named gatehouse-admins")

	s.mustCall(201, scimTok, "POST", "/scim/v2/Users",
		`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"gatehouse-admins"}`)
	code, _ := s.call(scimTok, "POST", "/scim/v2/Users",
		`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"Bootstrap-Admin"}`)
	require.Equal(t, 409, code, "the bootstrap admin's name is taken")
	s.mustCall(200, scimTok, "PATCH", "/scim/v2/Users/"+malloryID, fmt.Sprintf(patchOp,
		`{"op":"add","value":{"title":"admin","urn:gatehouse:params:scim:schemas:extension:2.0:User":{"attributes":{"admin":["true"],"privilege":["admin"],"groups":["gatehouse-admins"]}}}}`))
	notAdmin("create a user named gatehouse-admins, set admin-sounding attributes on mallory")

	for _, target := range []string{bootID, scimID} {
		for _, req := range []struct{ method, body string }{
			{"PATCH", fmt.Sprintf(patchOp, `{"op":"replace","path":"userName","value":"mallory-admin"}`)},
			{"PATCH", fmt.Sprintf(patchOp, `{"op":"replace","path":"active","value":false}`)},
			{"PUT", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"mallory-admin"}`},
			{"DELETE", ""},
		} {
			code, out := s.call(scimTok, req.method, "/scim/v2/Users/"+target, req.body)
			require.Equal(t, 403, code, "%s a privileged principal: %v", req.method, out)
			require.Equal(t, "403", out["status"])
		}
	}
	notAdmin("rename, disable, replace or delete a privileged principal")

	for _, req := range []struct{ method, path, body string }{
		{"PUT", "/api/v1/privileges/admin/principals/" + malloryID, ""},
		{"PUT", "/api/v1/privileges/admin/principals/" + scimID, ""},
		{"POST", "/api/v1/tokens", fmt.Sprintf(`{"name":"x","principalId":%q}`, bootID)},
		{"POST", "/api/v1/groups/gatehouse-admins/members", fmt.Sprintf(`{"value":%q}`, malloryID)},
		{"PATCH", "/api/v1/users/" + malloryID, `{"revision":1,"title":"admin"}`},
	} {
		code, out := s.call(scimTok, req.method, req.path, req.body)
		require.Equal(t, 403, code, "%s %s: %v", req.method, req.path, out)
	}
	notAdmin("use the SCIM token on /api/v1")

	grants := s.mustCall(200, admin, "GET", "/api/v1/privileges", "")["grants"].([]any)
	require.Len(t, grants, 2, "only the bootstrap admin and the SCIM caller hold privileges: %v", grants)
}
