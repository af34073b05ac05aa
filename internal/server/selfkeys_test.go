package server

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/identity"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// TestIssuesWhilePublicURLIsDown proves issue 12 §1: a replica verifies the
// web-identity tokens gatehouse itself issued with the signing key from the
// shared store, never by fetching its own JWKS over HTTP from
// api.public_url. With that address unreachable (here a refused loopback
// port, as when the load balancer in front of the replicas is down), a
// signed-in user still gets credentials from /me/credentials.
func TestIssuesWhilePublicURLIsDown(t *testing.T) {
	l := startLive(t, config.Override{Path: "api.public_url", Value: "http://127.0.0.1:9"})
	trust := fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":%q},
	 "Action":"sts:AssumeRoleWithWebIdentity"}]}`, l.srv.SSO.SelfProviderARN())
	require.NoError(t, l.srv.Store.CreateRole(context.Background(), &store.Role{Name: "reader", TrustPolicy: trust,
		MaxSessionDuration: 3600, PermissionPolicies: []store.NamedPolicy{{Name: "p", Document: sourceIPPolicy}}}))
	u := l.user("alice")
	require.NoError(t, l.srv.Identity.SetPassword(context.Background(), u.ID, "alice-password-1"))
	token, _, err := l.srv.Identity.Login(context.Background(), "alice", "alice-password-1", identity.LoginMeta{})
	require.NoError(t, err)

	req, err := http.NewRequest(http.MethodPost, l.srv.APIURL()+"/api/v1/me/credentials", strings.NewReader(`{"role":"reader"}`))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", body)
	require.Contains(t, string(body), "assumed-role/reader/alice")
}
