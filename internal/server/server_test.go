package server

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/identity/saml"
	"github.com/gatehouse-dev/gatehouse/internal/secrets"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/sts/credentials"
)

func newTestServer(t *testing.T) (*Server, config.Config) {
	t.Helper()
	dir := t.TempDir()
	cfg, err := config.Load("", func(string) (string, bool) { return "", false }, []config.Override{
		{Path: "data_dir", Value: dir},
		{Path: "api.listen", Value: "127.0.0.1:0"},
		{Path: "admin.listen", Value: "127.0.0.1:0"},
		{Path: "s3.listen", Value: "127.0.0.1:0"},
	})
	require.NoError(t, err)
	srv, err := New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Close() })
	return srv, cfg
}

// TestDisableRevokesCredentialsForGood: credentials issued before a user is
// disabled stay dead after the user is re-enabled, whichever front end
// disabled them (the revocation lives in the store wrapper).
func TestDisableRevokesCredentialsForGood(t *testing.T) {
	srv, cfg := newTestServer(t)
	ctx := context.Background()
	u := &store.User{UserName: "erin", Active: true}
	require.NoError(t, srv.Store.CreateUser(ctx, u))

	mk, err := secrets.LoadOrCreateMasterKey(filepath.Join(cfg.DataDir, "master.key"))
	require.NoError(t, err)
	kr, err := credentials.LoadOrCreateKeyring(ctx, srv.Store, mk, nil)
	require.NoError(t, err)
	creds, err := credentials.NewIssuer(kr, credentials.IssuerOptions{}).Issue(ctx, credentials.SessionRequest{
		PrincipalID: u.ID, UserName: u.UserName, SourceIdentity: u.UserName,
		RoleARN: "arn:aws:iam::000000000000:role/analyst", RoleSessionName: "erin", AssumedRoleID: "AROATEST",
	}, time.Hour)
	require.NoError(t, err)

	_, err = srv.STS.LookupCredentials(ctx, creds.AccessKeyID, creds.SessionToken)
	require.NoError(t, err, "fresh credentials must verify")

	u.Active = false
	require.NoError(t, srv.Store.UpdateUser(ctx, u))
	_, err = srv.STS.LookupCredentials(ctx, creds.AccessKeyID, creds.SessionToken)
	require.Error(t, err, "disabled user's credentials must fail")

	u.Active = true
	require.NoError(t, srv.Store.UpdateUser(ctx, u))
	_, err = srv.STS.LookupCredentials(ctx, creds.AccessKeyID, creds.SessionToken)
	require.Error(t, err, "re-enabling must not resurrect credentials issued before the disable")
	// Past every cache TTL, the old credentials must still be refused. A
	// replica that has cached nothing yet sees what every replica sees once
	// its caches lapse: only the shared store (issue 12 §5: no sleeping
	// past the TTL).
	cold := newTestReplica(t, cfg)
	_, err = cold.STS.LookupCredentials(ctx, creds.AccessKeyID, creds.SessionToken)
	require.Error(t, err, "re-enabling must not resurrect credentials issued before the disable, once caches lapse")
}

// newTestReplica starts (without serving) a second server on the store
// and master key of cfg, with its own data directory and listeners: a
// replica whose caches are all cold.
func newTestReplica(t *testing.T, cfg config.Config) *Server {
	t.Helper()
	rcfg, err := config.Load("", func(string) (string, bool) { return "", false }, []config.Override{
		{Path: "data_dir", Value: t.TempDir()},
		{Path: "store.sqlite_path", Value: cfg.Store.SQLitePath},
		{Path: "secrets.master_key_file", Value: cfg.Secrets.MasterKeyFile},
		{Path: "api.listen", Value: "127.0.0.1:0"},
		{Path: "admin.listen", Value: "127.0.0.1:0"},
		{Path: "s3.listen", Value: "127.0.0.1:0"},
	})
	require.NoError(t, err)
	srv, err := New(context.Background(), rcfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Close() })
	return srv
}

// TestLosingGroupMembershipRevokes: a user removed from a group (directly,
// or by removing the nested group that held them) loses their live
// credentials; a user who keeps membership through another path does not.
func TestLosingGroupMembershipRevokes(t *testing.T) {
	srv, cfg := newTestServer(t)
	ctx := context.Background()
	mk, err := secrets.LoadOrCreateMasterKey(filepath.Join(cfg.DataDir, "master.key"))
	require.NoError(t, err)
	kr, err := credentials.LoadOrCreateKeyring(ctx, srv.Store, mk, nil)
	require.NoError(t, err)
	issuer := credentials.NewIssuer(kr, credentials.IssuerOptions{})

	mkUser := func(name string) (*store.User, credentials.Credentials) {
		u := &store.User{UserName: name, Active: true}
		require.NoError(t, srv.Store.CreateUser(ctx, u))
		c, err := issuer.Issue(ctx, credentials.SessionRequest{
			PrincipalID: u.ID, UserName: name, SourceIdentity: name,
			RoleARN: "arn:aws:iam::000000000000:role/analyst", RoleSessionName: name, AssumedRoleID: "AROATEST",
		}, time.Hour)
		require.NoError(t, err)
		return u, c
	}
	frank, frankCreds := mkUser("frank")
	gina, ginaCreds := mkUser("gina")

	inner := &store.Group{DisplayName: "inner", Members: []store.Member{{ID: frank.ID, Type: store.MemberUser}, {ID: gina.ID, Type: store.MemberUser}}}
	require.NoError(t, srv.Store.CreateGroup(ctx, inner))
	outer := &store.Group{DisplayName: "outer", Members: []store.Member{{ID: inner.ID, Type: store.MemberGroup}, {ID: gina.ID, Type: store.MemberUser}}}
	require.NoError(t, srv.Store.CreateGroup(ctx, outer))

	// Drop the nested group from outer: frank loses "outer", gina keeps it directly.
	outer.Members = []store.Member{{ID: gina.ID, Type: store.MemberUser}}
	require.NoError(t, srv.Store.UpdateGroup(ctx, outer))
	_, err = srv.STS.LookupCredentials(ctx, frankCreds.AccessKeyID, frankCreds.SessionToken)
	require.Error(t, err, "frank lost a group: his credentials must be revoked")
	_, err = srv.STS.LookupCredentials(ctx, ginaCreds.AccessKeyID, ginaCreds.SessionToken)
	require.NoError(t, err, "gina kept her membership: her credentials stay valid")

	// Deleting a group revokes everyone in it.
	require.NoError(t, srv.Store.DeleteGroup(ctx, outer.ID))
	_, err = srv.STS.LookupCredentials(ctx, ginaCreds.AccessKeyID, ginaCreds.SessionToken)
	require.Error(t, err)
}

// TestMaintainKeysPicksUpRotation: a key rotated by another replica becomes
// this replica's current key on the next maintenance tick. The test drives
// the ticks (issue 12 §5: no wall-clock window).
func TestMaintainKeysPicksUpRotation(t *testing.T) {
	srv, cfg := newTestServer(t)
	ctx := context.Background()
	mk, err := secrets.LoadOrCreateMasterKey(filepath.Join(cfg.DataDir, "master.key"))
	require.NoError(t, err)
	other, err := credentials.LoadOrCreateKeyring(ctx, srv.Store, mk, nil)
	require.NoError(t, err)
	ticks := startTicking(t, srv.maintainKeys)
	ticks.barrier() // the pass at start is done
	before := srv.keyring.CurrentKeyID()
	require.NoError(t, other.Rotate(ctx, time.Now()))
	require.NotEqual(t, before, other.CurrentKeyID())
	require.Equal(t, before, srv.keyring.CurrentKeyID(), "picked up before any tick: this test proves nothing")

	ticks.tick()
	require.Equal(t, other.CurrentKeyID(), srv.keyring.CurrentKeyID(), "this replica did not pick up the rotated key")
}

// TestSweepExpiredDeletesOnlyExpiredRecords proves the store half of issue
// 11 finding 5: one-time state written through the production paths (a
// SAML assertion id claimed through the shared replay cache, a user
// revocation) is deleted by the server's sweep once it has expired, and
// not before; records without expiry (the STS keyring) stay.
func TestSweepExpiredDeletesOnlyExpiredRecords(t *testing.T) {
	srv, _ := newTestServer(t)
	ctx := context.Background()
	now := time.Now().UTC()
	replay := saml.StoreReplayCache{Store: srv.Store}
	key := saml.ReplayKey("https://idp.example.test", "_assertion-1")
	seen, err := replay.Seen(key, now.Add(5*time.Minute))
	require.NoError(t, err)
	require.False(t, seen)
	u := &store.User{UserName: "erin", Active: true}
	require.NoError(t, srv.Store.CreateUser(ctx, u))
	u.Active = false
	require.NoError(t, srv.Store.UpdateUser(ctx, u)) // revokes through the store wrapper
	_, err = srv.Store.GetMeta(ctx, credentials.MetaUserNotBefore+u.ID)
	require.NoError(t, err)

	n, err := srv.SweepExpired(ctx, now.Add(5*time.Minute-time.Second))
	require.NoError(t, err)
	require.Zero(t, n, "nothing has expired yet")
	seen, err = replay.Seen(key, now.Add(5*time.Minute))
	require.NoError(t, err)
	require.True(t, seen, "the assertion id is still remembered")

	n, err = srv.SweepExpired(ctx, now.Add(5*time.Minute))
	require.NoError(t, err)
	require.EqualValues(t, 1, n, "the assertion id expired")
	n, err = srv.SweepExpired(ctx, now.Add(credentials.MaxSessionDuration+2*time.Hour))
	require.NoError(t, err)
	require.EqualValues(t, 1, n, "the revocation outlived every credential it covered")
	_, err = srv.Store.GetMeta(ctx, credentials.MetaUserNotBefore+u.ID)
	require.ErrorIs(t, err, store.ErrNotFound)
	_, err = srv.Store.GetMeta(ctx, credentials.MetaKeyring)
	require.NoError(t, err, "records without expiry stay")
}

// TestPatchGroupMembersRevokes: the one-by-one membership path
// (store.GroupMemberStore, used by SCIM PATCH for large groups, issue 12
// §1) revokes like UpdateGroup does. A removed user, and every user of a
// removed nested group, loses their live credentials; an added member and
// a user named in a removal but not a member keep theirs.
func TestPatchGroupMembersRevokes(t *testing.T) {
	srv, cfg := newTestServer(t)
	ctx := context.Background()
	ms, ok := srv.Store.(store.GroupMemberStore)
	require.True(t, ok, "the server's store must offer one-by-one membership changes, revoking on removal")
	mk, err := secrets.LoadOrCreateMasterKey(filepath.Join(cfg.DataDir, "master.key"))
	require.NoError(t, err)
	kr, err := credentials.LoadOrCreateKeyring(ctx, srv.Store, mk, nil)
	require.NoError(t, err)
	issuer := credentials.NewIssuer(kr, credentials.IssuerOptions{})
	live := map[string]credentials.Credentials{}
	users := map[string]*store.User{}
	for _, name := range []string{"hank", "ivy", "jon", "kim"} {
		u := &store.User{UserName: name, Active: true}
		require.NoError(t, srv.Store.CreateUser(ctx, u))
		c, err := issuer.Issue(ctx, credentials.SessionRequest{
			PrincipalID: u.ID, UserName: name, SourceIdentity: name,
			RoleARN: "arn:aws:iam::000000000000:role/analyst", RoleSessionName: name, AssumedRoleID: "AROATEST",
		}, time.Hour)
		require.NoError(t, err)
		users[name], live[name] = u, c
	}
	ref := func(name string) store.Member { return store.Member{ID: users[name].ID, Type: store.MemberUser} }
	inner := &store.Group{DisplayName: "inner", Members: []store.Member{ref("ivy")}}
	require.NoError(t, srv.Store.CreateGroup(ctx, inner))
	outer := &store.Group{DisplayName: "outer", Members: []store.Member{ref("hank"), {ID: inner.ID, Type: store.MemberGroup}}}
	require.NoError(t, srv.Store.CreateGroup(ctx, outer))

	_, err = ms.PatchGroupMembers(ctx, outer.ID, 0, []store.Member{ref("jon")},
		[]store.Member{ref("hank"), {ID: inner.ID, Type: store.MemberGroup}, ref("kim")})
	require.NoError(t, err)
	for name, revoked := range map[string]bool{"hank": true, "ivy": true, "jon": false, "kim": false} {
		_, err := srv.STS.LookupCredentials(ctx, live[name].AccessKeyID, live[name].SessionToken)
		if revoked {
			require.Error(t, err, "%s lost a group: their credentials must be revoked", name)
		} else {
			require.NoError(t, err, "%s lost nothing: their credentials stay valid", name)
		}
	}
}
