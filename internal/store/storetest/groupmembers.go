package storetest

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// testPatchGroupMembers checks store.GroupMemberStore: members are added
// and removed one by one, the revision moves once per effective change,
// and UpdateGroup's rules (members exist, no cycles, stale revisions
// refused) hold.
func testPatchGroupMembers(t *testing.T, s store.Store) {
	ms, ok := s.(store.GroupMemberStore)
	require.True(t, ok, "%T must implement store.GroupMemberStore", s)
	alice, bob, carol := newUser(t, s, "alice"), newUser(t, s, "bob"), newUser(t, s, "carol")
	inner := newGroup(t, s, "inner", userRef(carol))
	g := newGroup(t, s, "eng", userRef(alice))

	p, err := ms.PatchGroupMembers(ctx(t), g.ID, g.Revision, []store.Member{{ID: bob.ID}, userRef(alice)}, nil)
	require.NoError(t, err)
	requireEqual(t, []store.Member{userRef(bob)}, p.Added)
	require.Empty(t, p.Removed)
	require.Equal(t, g.Revision+1, p.Group.Revision)
	require.Empty(t, p.Group.Members, "the patch never returns the member list")
	require.Equal(t, g.CreatedAt, p.Group.CreatedAt)
	got, err := s.GetGroup(ctx(t), g.ID)
	require.NoError(t, err)
	requireEqual(t, []store.Member{userRef(alice), userRef(bob)}, got.Members)
	require.Equal(t, p.Group.Revision, got.Revision)
	require.Equal(t, p.Group.UpdatedAt, got.UpdatedAt)

	// A stale revision changes nothing; zero means "whatever is current".
	_, err = ms.PatchGroupMembers(ctx(t), g.ID, g.Revision, nil, []store.Member{userRef(alice)})
	requireIs(t, err, store.ErrConflict)
	p, err = ms.PatchGroupMembers(ctx(t), g.ID, 0, []store.Member{groupRef(inner)}, []store.Member{{ID: alice.ID}})
	require.NoError(t, err)
	requireEqual(t, []store.Member{groupRef(inner)}, p.Added)
	requireEqual(t, []store.Member{userRef(alice)}, p.Removed)
	require.Equal(t, got.Revision+1, p.Group.Revision)
	got, err = s.GetGroup(ctx(t), g.ID)
	require.NoError(t, err)
	requireEqual(t, []store.Member{userRef(bob), groupRef(inner)}, got.Members)
	of, err := s.GroupsOfUser(ctx(t), carol.ID)
	require.NoError(t, err)
	require.Equal(t, []string{"eng", "inner"}, names(of), "nesting added by a patch is transitive")

	// Nothing to do: no revision bump.
	p, err = ms.PatchGroupMembers(ctx(t), g.ID, 0, []store.Member{userRef(bob)}, []store.Member{userRef(alice)})
	require.NoError(t, err)
	require.Empty(t, p.Added)
	require.Empty(t, p.Removed)
	require.Equal(t, got.Revision, p.Group.Revision)

	// UpdateGroup's rules: missing members, cycles, unknown groups.
	for name, add := range map[string][]store.Member{
		"missing member": {{ID: "ghost", Type: store.MemberUser}},
		"self":           {groupRef(g)},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ms.PatchGroupMembers(ctx(t), g.ID, 0, add, nil)
			requireIs(t, err, store.ErrInvalid)
			after, err := s.GetGroup(ctx(t), g.ID)
			require.NoError(t, err)
			requireEqual(t, got, after)
		})
	}
	_, err = ms.PatchGroupMembers(ctx(t), inner.ID, 0, []store.Member{groupRef(g)}, nil)
	requireIs(t, err, store.ErrInvalid)
	_, err = ms.PatchGroupMembers(ctx(t), "no-such-group", 0, []store.Member{userRef(bob)}, nil)
	requireIs(t, err, store.ErrNotFound)
}

// testExternalIDLookups checks store.ExternalIDStore: exact matches only,
// every holder of a shared id, groups with their members, nothing for an
// empty id.
func testExternalIDLookups(t *testing.T, s store.Store) {
	xs, ok := s.(store.ExternalIDStore)
	require.True(t, ok, "%T must implement store.ExternalIDStore", s)
	a := &store.User{UserName: "a", ExternalID: "okta-1"}
	b := &store.User{UserName: "b", ExternalID: "okta-1"}
	c := &store.User{UserName: "c", ExternalID: "OKTA-1"}
	for _, u := range []*store.User{a, b, c, {UserName: "d"}} {
		require.NoError(t, s.CreateUser(ctx(t), u))
	}
	us, err := xs.UsersByExternalID(ctx(t), "okta-1")
	require.NoError(t, err)
	require.Equal(t, []string{a.ID, b.ID}, []string{us[0].ID, us[1].ID})
	require.Len(t, us, 2, "externalId compares exactly")
	requireEqual(t, a, us[0])
	us, err = xs.UsersByExternalID(ctx(t), "")
	require.NoError(t, err)
	require.Empty(t, us)

	g := &store.Group{DisplayName: "eng", ExternalID: "grp-1", Members: []store.Member{userRef(a)}}
	require.NoError(t, s.CreateGroup(ctx(t), g))
	newGroup(t, s, "other")
	gs, err := xs.GroupsByExternalID(ctx(t), "grp-1")
	require.NoError(t, err)
	require.Len(t, gs, 1)
	requireEqual(t, g, gs[0])
	gs, err = xs.GroupsByExternalID(ctx(t), "grp-2")
	require.NoError(t, err)
	require.Empty(t, gs)
}
