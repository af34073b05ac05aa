package server

import (
	"context"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// TestDeletingFederatedLinkRevokesCredentials proves the link gap left by
// issue 11 (findings 1 and 10): credentials minted while an IdP subject was
// linked to alice must stop working when an administrator deletes that
// link, as they do when a group membership is taken away; otherwise the
// person behind the subject keeps alice's access for up to 12 hours after
// the directory has cut them loose. The deletion is audited, and its record
// says that the user's credentials were revoked.
func TestDeletingFederatedLinkRevokesCredentials(t *testing.T) {
	ctx := context.Background()
	l := startLive(t)
	tok, err := os.ReadFile(l.cfg.Identity.BootstrapToken)
	require.NoError(t, err)
	admin := &restServer{t: t, url: l.srv.APIURL(), bootstrap: strings.TrimSpace(string(tok))}

	role := l.role("r", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:GetObject","s3:PutObject"],"Resource":"arn:aws:s3:::lake/*"}]}`)
	alice := l.user("alice")
	op := &store.OIDCProvider{IssuerURL: "https://idp.example.com", Audiences: []string{"gatehouse"}}
	require.NoError(t, l.srv.Store.CreateOIDCProvider(ctx, op))
	require.NoError(t, l.srv.Links.CreateFederatedLink(ctx, &store.FederatedLink{ProviderID: op.ID, Subject: "00u1",
		UserID: alice.ID, Source: store.LinkSourceAdmin}))

	client := l.s3(l.creds(alice, role), nil)
	require.NoError(t, putObj(client, "lake", "shared/x", "v"), "credentials minted through the link work")

	q := url.Values{"provider": {op.ID}, "subject": {"00u1"}}
	admin.mustCall(204, admin.bootstrap, "DELETE", "/api/v1/federated-links?"+q.Encode(), "")

	_, err = getObj(client, "lake", "shared/x")
	require.Contains(t, []string{"ExpiredToken", "AccessDenied", "InvalidToken"}, errCode(err),
		"credentials minted through a deleted link must be refused")

	var deleted []audit.Event
	for _, ev := range l.auditEvents("") {
		if ev.Code == audit.CodeLinkDeleted && ev.Decision == audit.Allow {
			deleted = append(deleted, ev)
		}
	}
	require.Len(t, deleted, 1)
	require.Equal(t, alice.ID, deleted[0].Resource.ID)
	require.Equal(t, true, deleted[0].Details["credentialsRevoked"])
}
