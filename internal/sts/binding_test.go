package sts

import (
	"context"
	"net/http"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/identity"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// TestWebIdentityBindingRules proves issue 11 finding 1 at
// AssumeRoleWithWebIdentity, against a running STS: an ID token binds to a
// directory user only through a (provider, subject) link, made on first
// sign-in by the provider's rule: by user name only where the admin opted
// in, by e-mail only when email_verified is true at a provider trusted for
// e-mail. Every other token is a federated session of its own (never the
// claimed user's principal or name), or is refused, as the provider says.
func TestWebIdentityBindingRules(t *testing.T) {
	const (
		asAlice   = "alice"
		federated = "federated"
		refused   = "refused"
	)
	tests := []struct {
		name    string
		binding store.Binding
		claims  []map[string]any // signed in one after another
		want    []string
	}{
		{"unverified e-mail at a provider trusted for e-mail",
			store.Binding{TrustEmail: true, Unlinked: store.UnlinkedFederated},
			[]map[string]any{{"preferred_username": nil, "email": alice}}, []string{federated}},
		{"e-mail_verified false as a string",
			store.Binding{TrustEmail: true, Unlinked: store.UnlinkedFederated},
			[]map[string]any{{"preferred_username": nil, "email": alice, "email_verified": "false"}}, []string{federated}},
		{"verified e-mail at a provider not trusted for e-mail",
			store.Binding{Unlinked: store.UnlinkedFederated},
			[]map[string]any{{"preferred_username": nil, "email": alice, "email_verified": true}}, []string{federated}},
		{"claimed user name without the user-name rule",
			store.Binding{Unlinked: store.UnlinkedFederated},
			[]map[string]any{{"preferred_username": alice}}, []string{federated}},
		{"claimed user name at a provider that refuses unlinked identities",
			store.Binding{},
			[]map[string]any{{"preferred_username": alice}}, []string{refused}},
		{"verified e-mail at a trusted provider links once; another subject never rebinds",
			store.Binding{TrustEmail: true, Unlinked: store.UnlinkedFederated},
			[]map[string]any{
				{"preferred_username": nil, "email": alice, "email_verified": true},
				{"preferred_username": "someone", "email": "other@example.test"},
				{"sub": "u-mallory-9", "preferred_username": nil, "email": alice, "email_verified": true},
			}, []string{asAlice, asAlice, refused}},
		{"user-name rule links the subject, which then binds whatever name it claims",
			store.Binding{LinkByUserName: true},
			[]map[string]any{{"preferred_username": alice}, {"preferred_username": "renamed"}, {"sub": "u-eve-7", "preferred_username": alice}},
			[]string{asAlice, asAlice, refused}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			ctx := context.Background()
			u, err := w.st.GetUser(ctx, w.aliceID)
			require.NoError(t, err)
			u.Emails = []store.Email{{Value: alice, Primary: true}}
			require.NoError(t, w.st.UpdateUser(ctx, u))
			p, err := w.st.GetOIDCProviderByIssuer(ctx, w.oidc.issuer)
			require.NoError(t, err)
			p.Binding = tc.binding
			require.NoError(t, w.st.UpdateOIDCProvider(ctx, p))

			for i, claims := range tc.claims {
				tok := w.oidc.token(t, claims)
				resp, body := w.post(url.Values{"Action": {ActionAssumeRoleWithWebIdentity}, "RoleArn": {analystARN},
					"RoleSessionName": {"session"}, "WebIdentityToken": {tok}}, "")
				sub := "u-bob-123"
				if s, ok := claims["sub"].(string); ok {
					sub = s
				}
				switch tc.want[i] {
				case refused:
					require.Equal(t, http.StatusForbidden, resp.StatusCode, body)
					code, _ := errorCode(t, body)
					require.Equal(t, CodeAccessDenied, code)
				case asAlice:
					require.Equal(t, 200, resp.StatusCode, body)
					ev := lastIssued(t, w)
					require.Equal(t, w.aliceID, ev.Actor.UserID, "token %d", i)
					require.Contains(t, []any{identity.ViaEmail, identity.ViaUserName, identity.ViaLink}, ev.Details["binding"])
				case federated:
					require.Equal(t, 200, resp.StatusCode, body)
					ev := lastIssued(t, w)
					require.Equal(t, identity.FederatedPrincipalID(w.oidcARN, sub), ev.Actor.UserID, "token %d", i)
					require.Equal(t, ev.Actor.UserID, ev.Actor.User, "the audit names the federated session, not the claimed name")
					require.Equal(t, sub, ev.Details["subject"], "the audit keeps the IdP's subject")
					require.Equal(t, identity.ViaUnlinked, ev.Details["binding"])
				}
			}
		})
	}
}

// lastIssued returns the audit event of the last issuance.
func lastIssued(t *testing.T, w *world) audit.Event {
	t.Helper()
	var last audit.Event
	for _, ev := range w.auditEvents(t) {
		if ev.Code == audit.CodeSTSIssued {
			last = ev
		}
	}
	return last
}
