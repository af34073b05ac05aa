package identity

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/store/sqlite"
)

// TestBinderRules covers the binding rules of docs/design/0014 that the
// attack tests in websso and sts do not reach: gatehouse's own issuer, SCIM
// subject attributes, disabled and renamed users, ambiguity, reserved
// names, and audit before effect (issue 11 finding 1).
func TestBinderRules(t *testing.T) {
	const prov = "arn:aws:iam::123456789012:saml-provider/okta"
	type want struct {
		user   string // bound user name; "" with reason or federated
		reason string // BindError reason
		fed    bool   // an unlinked federated session
		source string // source of the link made, if any
	}
	tests := []struct {
		name string
		id   FederatedIdentity
		fail bool // the audit sink is down
		want want
	}{
		{"gatehouse issuer binds the subject as a user id", FederatedIdentity{Self: true, Subject: "id-alice"},
			false, want{user: "alice"}},
		{"gatehouse issuer: unknown id", FederatedIdentity{Self: true, Subject: "id-ghost"},
			false, want{reason: "unknown-user"}},
		{"gatehouse issuer: disabled user", FederatedIdentity{Self: true, Subject: "id-dora"},
			false, want{reason: "user-disabled"}},
		{"SCIM externalId carries the subject", FederatedIdentity{Subject: "ext-7", Binding: store.Binding{SCIMSubject: store.SCIMSubjectExternalID}},
			false, want{user: "erin", source: store.LinkSourceSCIM}},
		{"SCIM externalId shared by two people binds nobody", FederatedIdentity{Subject: "ext-dup", Binding: store.Binding{SCIMSubject: store.SCIMSubjectExternalID}},
			false, want{reason: "unlinked"}},
		{"SCIM userName carries the subject", FederatedIdentity{Subject: "alice", Binding: store.Binding{SCIMSubject: store.SCIMSubjectUserName}},
			false, want{user: "alice", source: store.LinkSourceSCIM}},
		{"user-name rule never matches a service principal", FederatedIdentity{Subject: "s", UserName: "ci-bot", Binding: store.Binding{LinkByUserName: true, Unlinked: store.UnlinkedFederated}},
			false, want{fed: true}},
		{"user-name rule on a disabled user refuses", FederatedIdentity{Subject: "s", UserName: "dora", Binding: store.Binding{LinkByUserName: true, Unlinked: store.UnlinkedFederated}},
			false, want{reason: "user-disabled"}},
		{"user-name rule on a name shaped like a federated id refuses", FederatedIdentity{Subject: "s", UserName: "fed-0123456789abcdef0123456789abcdef", Binding: store.Binding{LinkByUserName: true}},
			false, want{reason: "reserved-user-name"}},
		{"user-name rule on a name outside AWS's set refuses", FederatedIdentity{Subject: "s", UserName: "alice/x", Binding: store.Binding{LinkByUserName: true}},
			false, want{reason: "bad-user-name"}},
		{"verified e-mail shared by two people binds nobody", FederatedIdentity{Subject: "s", Email: "team@corp.example", EmailVerified: true, Binding: store.Binding{TrustEmail: true}},
			false, want{reason: "unlinked"}},
		{"no link without its audit record", FederatedIdentity{Subject: "s", UserName: "alice", Binding: store.Binding{LinkByUserName: true}},
			true, want{}},
		{"no subject", FederatedIdentity{UserName: "alice", Binding: store.Binding{LinkByUserName: true}},
			false, want{reason: "no-subject"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "gh.db"))
			require.NoError(t, err)
			t.Cleanup(func() { _ = st.Close() })
			for _, u := range []*store.User{
				{ID: "id-alice", UserName: "alice", Active: true},
				{ID: "id-dora", UserName: "dora", Active: false},
				{ID: "id-erin", UserName: "erin", ExternalID: "ext-7", Active: true},
				{UserName: "x1", ExternalID: "ext-dup", Active: true, Emails: []store.Email{{Value: "team@corp.example"}}},
				{UserName: "x2", ExternalID: "ext-dup", Active: true, Emails: []store.Email{{Value: "TEAM@corp.example"}}},
				{UserName: "ci-bot", Kind: store.KindService, Active: true},
				{UserName: "fed-0123456789abcdef0123456789abcdef", Active: true},
				{UserName: "alice/x", Active: true},
			} {
				require.NoError(t, st.CreateUser(ctx, u))
			}
			rec := &recorder{}
			rec.setFail(tc.fail)
			b, err := NewBinder(BinderOptions{Store: st, Audit: rec, AccountID: "123456789012"})
			require.NoError(t, err)
			id := tc.id
			id.Method, id.ProviderID, id.ProviderARN = "saml", "p1", prov
			got, err := b.Resolve(ctx, id, LoginMeta{SourceIP: "192.0.2.1"})
			links, lerr := st.ListFederatedLinks(ctx, "")
			require.NoError(t, lerr)
			switch {
			case tc.fail:
				require.Error(t, err)
				require.NotErrorAs(t, err, new(*BindError))
				require.Empty(t, links, "no link without its audit record")
			case tc.want.reason != "":
				var be *BindError
				require.ErrorAs(t, err, &be)
				require.Equal(t, tc.want.reason, be.Reason)
				require.Empty(t, links)
			case tc.want.fed:
				require.NoError(t, err)
				require.Nil(t, got.User)
				require.Equal(t, FederatedPrincipalID(prov, id.Subject), got.PrincipalID)
				require.Equal(t, got.PrincipalID, got.UserName)
				require.Empty(t, links)
			default:
				require.NoError(t, err)
				require.Equal(t, tc.want.user, got.UserName)
				if tc.want.source == "" {
					require.Empty(t, links)
					return
				}
				require.Len(t, links, 1)
				require.Equal(t, tc.want.source, links[0].Source)
				require.Equal(t, []audit.Code{audit.CodeLinkCreated}, rec.codes())
				again, err := b.Resolve(ctx, id, LoginMeta{})
				require.NoError(t, err)
				require.Equal(t, ViaLink, again.Via)
			}
		})
	}
}
