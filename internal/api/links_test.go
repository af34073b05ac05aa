package api_test

import (
	"context"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// TestFederatedLinksAndBindingRules: an admin links a provider's subject
// to a person and sets the provider's binding rule; every change is
// audited before it is applied, a link is never rebound silently, and a
// service principal can never be linked (issue 11 finding 1).
func TestFederatedLinksAndBindingRules(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	op := &store.OIDCProvider{IssuerURL: "https://idp.example.com/realms/corp", Audiences: []string{"gatehouse"}}
	require.NoError(t, e.st.CreateOIDCProvider(ctx, op))
	bot := &store.User{UserName: "ci-bot", Kind: store.KindService, Active: true}
	require.NoError(t, e.st.CreateUser(ctx, bot))
	e.rec.take()

	r := e.do(t, "POST", "/api/v1/federated-links", e.user, body(t, map[string]string{"provider": op.ID, "subject": "00u1", "user": "plain"}))
	require.Equal(t, 403, r.status, r.raw)
	e.rec.take()

	r = e.do(t, "POST", "/api/v1/federated-links", e.admin, body(t, map[string]string{"provider": op.IssuerURL, "subject": "00u1", "user": "plain"}))
	require.Equal(t, 201, r.status, r.raw)
	require.Equal(t, e.userU.ID, r.body["userId"])
	require.Equal(t, "admin", r.body["source"])
	require.Equal(t, op.ARN("000000000000"), r.body["providerArn"])
	ev := e.rec.take()
	require.Equal(t, []audit.Code{audit.CodeLinkCreated}, codesOf(ev))
	require.Equal(t, audit.Resource{Type: "federated-link", ID: e.userU.ID, Name: "plain"}, ev[0].Resource)
	require.Equal(t, "00u1", ev[0].Details["subject"])

	for name, in := range map[string]map[string]string{
		"subject already linked":          {"provider": op.ID, "subject": "00u1", "user": "root"},
		"user already linked to provider": {"provider": op.ID, "subject": "00u2", "user": "plain"},
	} {
		r = e.do(t, "POST", "/api/v1/federated-links", e.admin, body(t, in))
		require.Equal(t, 409, r.status, "%s: %s", name, r.raw)
		require.Equal(t, "already_exists", r.errCode())
		ev = e.rec.take()
		require.Equal(t, []audit.Code{audit.CodeLinkCreated, audit.CodeLinkCreated}, codesOf(ev), name)
		require.Equal(t, audit.Error, ev[1].Decision, "the failed mutation is audited as not applied")
	}
	r = e.do(t, "POST", "/api/v1/federated-links", e.admin, body(t, map[string]string{"provider": op.ID, "subject": "bot", "user": "ci-bot"}))
	require.Equal(t, 400, r.status, r.raw)
	r = e.do(t, "POST", "/api/v1/federated-links", e.admin, body(t, map[string]string{"provider": "nope", "subject": "x", "user": "plain"}))
	require.Equal(t, 404, r.status, r.raw)

	r = e.do(t, "GET", "/api/v1/federated-links?user=plain", e.admin, "")
	require.Equal(t, 200, r.status, r.raw)
	require.Len(t, r.body["federatedLinks"], 1)

	r = e.do(t, "PUT", "/api/v1/oidc-providers/"+op.ID+"/binding", e.admin, body(t, map[string]any{"trustEmail": true, "unlinked": "federated"}))
	require.Equal(t, 200, r.status, r.raw)
	require.Equal(t, map[string]any{"trustEmail": true, "unlinked": "federated"}, r.body["binding"])
	got, err := e.st.GetOIDCProvider(ctx, op.ID)
	require.NoError(t, err)
	require.Equal(t, store.Binding{TrustEmail: true, Unlinked: store.UnlinkedFederated}, got.Binding)
	r = e.do(t, "PUT", "/api/v1/oidc-providers/"+op.ID+"/binding", e.admin, body(t, map[string]any{"unlinked": "allow"}))
	require.Equal(t, 400, r.status, r.raw)
	e.rec.take()

	r = e.do(t, "DELETE", "/api/v1/federated-links?"+url.Values{"provider": {op.ID}, "subject": {"00u1"}}.Encode(), e.admin, "")
	require.Equal(t, 204, r.status, r.raw)
	require.Equal(t, []audit.Code{audit.CodeLinkDeleted}, codesOf(e.rec.take()))
	r = e.do(t, "DELETE", "/api/v1/federated-links?"+url.Values{"provider": {op.ID}, "subject": {"00u1"}}.Encode(), e.admin, "")
	require.Equal(t, 404, r.status, r.raw)
	links, err := e.st.ListFederatedLinks(ctx, "")
	require.NoError(t, err)
	require.Empty(t, links)
}
