package server

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-dev/gatehouse/internal/decision"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/store/sqlite"
)

type countingNotifier struct{ n int }

func (c *countingNotifier) Changed() { c.n++ }

// TestChangeStoreNotifiesEveryDecisionInput (issue 12 §1: a change applies
// at once on the replica that made it): every write of a user, group, role
// or provider through the server's store tells the decision point, and
// moves the change mark the other replicas check.
func TestChangeStoreNotifiesEveryDecisionInput(t *testing.T) {
	ctx := context.Background()
	sq, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "g.db"))
	require.NoError(t, err)
	t.Cleanup(func() { sq.Close() })
	n := &countingNotifier{}
	st := &changeStore{Store: sq, dp: n, mark: decision.StoreChangeMark{Store: sq}}
	u := &store.User{UserName: "alice", Active: true}
	g := &store.Group{DisplayName: "team"}
	r := &store.Role{Name: "r", TrustPolicy: `{"Version":"2012-10-17","Statement":[]}`}
	sp := &store.SAMLProvider{Name: "idp", EntityID: "https://idp.test", MetadataXML: "<x/>"}
	op := &store.OIDCProvider{IssuerURL: "https://op.test", Audiences: []string{"a"}}
	writes := []struct {
		name string
		do   func() error
	}{
		{"CreateUser", func() error { return st.CreateUser(ctx, u) }},
		{"UpdateUser", func() error { return st.UpdateUser(ctx, u) }},
		{"CreateGroup", func() error { return st.CreateGroup(ctx, g) }},
		{"UpdateGroup", func() error { return st.UpdateGroup(ctx, g) }},
		{"PatchGroupMembers", func() error {
			_, err := st.PatchGroupMembers(ctx, g.ID, 0, []store.Member{{ID: u.ID, Type: store.MemberUser}}, nil)
			return err
		}},
		{"DeleteGroup", func() error { return st.DeleteGroup(ctx, g.ID) }},
		{"DeleteUser", func() error { return st.DeleteUser(ctx, u.ID) }},
		{"CreateRole", func() error { return st.CreateRole(ctx, r) }},
		{"UpdateRole", func() error { return st.UpdateRole(ctx, r) }},
		{"DeleteRole", func() error { return st.DeleteRole(ctx, r.ID) }},
		{"CreateSAMLProvider", func() error { return st.CreateSAMLProvider(ctx, sp) }},
		{"UpdateSAMLProvider", func() error { return st.UpdateSAMLProvider(ctx, sp) }},
		{"DeleteSAMLProvider", func() error { return st.DeleteSAMLProvider(ctx, sp.ID) }},
		{"CreateOIDCProvider", func() error { return st.CreateOIDCProvider(ctx, op) }},
		{"UpdateOIDCProvider", func() error { return st.UpdateOIDCProvider(ctx, op) }},
		{"DeleteOIDCProvider", func() error { return st.DeleteOIDCProvider(ctx, op.ID) }},
	}
	last := []byte{}
	for i, w := range writes {
		require.NoError(t, w.do(), w.name)
		require.Equal(t, i+1, n.n, "%s did not notify", w.name)
		m, err := decision.StoreChangeMark{Store: sq}.Read(ctx)
		require.NoError(t, err)
		require.NotEqual(t, last, m, "%s did not move the shared change mark", w.name)
		last = m
	}
}

// TestServerStoreKeepsFastPaths: the wrappers the server puts around the
// store (revocation, change notification) still offer the one-by-one
// member changes and the indexed external id reads SCIM uses, so that a
// one-member PATCH of a large group and an externalId lookup stay cheap.
func TestServerStoreKeepsFastPaths(t *testing.T) {
	srv, _ := newTestServer(t)
	ctx := context.Background()
	_, ok := srv.Store.(store.GroupMemberStore)
	require.True(t, ok, "%T hides store.GroupMemberStore", srv.Store)
	x, ok := srv.Store.(store.ExternalIDStore)
	require.True(t, ok, "%T hides store.ExternalIDStore", srv.Store)
	u := &store.User{UserName: "ext", ExternalID: "okta-00u1", Active: true}
	require.NoError(t, srv.Store.CreateUser(ctx, u))
	got, err := x.UsersByExternalID(ctx, "okta-00u1")
	require.NoError(t, err)
	require.Len(t, got, 1)
	require.Equal(t, u.ID, got[0].ID)
}

// TestServerRolePolicyChangeAppliesAtOnce: a trust-policy change written
// through the server's store is seen by the very next role-picker answer
// of this replica, without waiting for the decision point's TTL.
func TestServerRolePolicyChangeAppliesAtOnce(t *testing.T) {
	srv, _ := newTestServer(t)
	ctx := context.Background()
	u := &store.User{UserName: "alice", Active: true}
	require.NoError(t, srv.Store.CreateUser(ctx, u))
	self := srv.Decision.SelfProviderARN()
	trust := func(user string) string {
		return fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":%q},
"Action":"sts:AssumeRoleWithWebIdentity","Condition":{"StringEquals":{"gatehouse:username":%q}}}]}`, self, user)
	}
	r := &store.Role{Name: "picked", TrustPolicy: trust("alice")}
	require.NoError(t, srv.Store.CreateRole(ctx, r))
	pick := func() int {
		roles, err := srv.Decision.Pickable(ctx, decision.PickRequest{Principal: decision.Principal{UserID: u.ID, UserName: "alice"}})
		require.NoError(t, err)
		return len(roles)
	}
	require.Equal(t, 1, pick())
	r.TrustPolicy = trust("bob")
	require.NoError(t, srv.Store.UpdateRole(ctx, r))
	require.Equal(t, 0, pick(), "the change must apply at once on this replica")
}
