// Package storetest is the one conformance suite every store.Store
// implementation must pass. Backends call Run from their own tests.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// Run runs the conformance suite. open must return a fresh, empty store for
// each call and arrange for it to be closed and discarded with t.Cleanup.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s store.Store)
	}{
		{"UserCRUD", testUserCRUD},
		{"UserValidation", testUserValidation},
		{"UserNameCaseInsensitive", testUserNameCaseInsensitive},
		{"UserRevisionConflict", testUserRevisionConflict},
		{"ConcurrentUpdatesLoseNothing", testConcurrentUpdates},
		{"GroupCRUD", testGroupCRUD},
		{"GroupRevisionConflict", testGroupRevisionConflict},
		{"GroupMembersMustExist", testGroupMembersMustExist},
		{"LargeGroups", testLargeGroups},
		{"NestedGroupsTransitive", testNestedGroups},
		{"GroupCycleRejected", testGroupCycle},
		{"PatchGroupMembers", testPatchGroupMembers},
		{"ExternalIDLookups", testExternalIDLookups},
		{"ConcurrentEdgesNeverCycle", testConcurrentEdges},
		{"DeleteUserCascades", testDeleteUserCascades},
		{"DeleteGroupCascades", testDeleteGroupCascades},
		{"Tokens", testTokens},
		{"TokenRevokeAndTouch", testTokenRevokeTouch},
		{"TokenRoles", testTokenRoles},
		{"Meta", testMeta},
		{"MetaConcurrentCAS", testMetaConcurrentCAS},
		{"MetaExpiry", testMetaExpiry},
		{"MetaClaimOnce", testMetaClaimOnce},
		{"TimeRoundTrip", testTimeRoundTrip},
		{"RoleCRUD", testRoleCRUD},
		{"RoleValidation", testRoleValidation},
		{"RoleRevisionConflict", testRoleRevisionConflict},
		{"ConcurrentRolePolicyPuts", testConcurrentRolePolicyPuts},
		{"SAMLProviderCRUD", testSAMLProviderCRUD},
		{"OIDCProviderCRUD", testOIDCProviderCRUD},
		{"Ping", func(t *testing.T, s store.Store) { require.NoError(t, s.Ping(context.Background())) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t)
			tc.fn(t, s)
		})
	}
}

func ctx(t *testing.T) context.Context { return t.Context() }

// diff compares records; time.Time compares with Equal.
func requireEqual(t *testing.T, want, got any) {
	t.Helper()
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("mismatch (-want +got):\n%s", d)
	}
}

func requireIs(t *testing.T, err, target error) {
	t.Helper()
	require.Error(t, err)
	require.Truef(t, errors.Is(err, target), "error %q is not %q", err, target)
}

func newUser(t *testing.T, s store.Store, name string) *store.User {
	t.Helper()
	u := &store.User{UserName: name, Active: true}
	require.NoError(t, s.CreateUser(ctx(t), u))
	return u
}

func newGroup(t *testing.T, s store.Store, name string, members ...store.Member) *store.Group {
	t.Helper()
	g := &store.Group{DisplayName: name, Members: members}
	require.NoError(t, s.CreateGroup(ctx(t), g))
	return g
}

func userRef(u *store.User) store.Member   { return store.Member{ID: u.ID, Type: store.MemberUser} }
func groupRef(g *store.Group) store.Member { return store.Member{ID: g.ID, Type: store.MemberGroup} }

func names(gs []*store.Group) []string {
	out := []string{}
	for _, g := range gs {
		out = append(out, g.DisplayName)
	}
	return out
}

func testUserCRUD(t *testing.T, s store.Store) {
	before := time.Now().Add(-time.Second)
	u := &store.User{
		Kind:         store.KindUser,
		UserName:     "alice@example.com",
		ExternalID:   "ext-1",
		DisplayName:  "Alice Liddell",
		GivenName:    "Alice",
		FamilyName:   "Liddell",
		Title:        "Analyst",
		Emails:       []store.Email{{Value: "alice@example.com", Type: "work", Primary: true}, {Value: "a@home.example"}},
		Active:       true,
		Attributes:   map[string][]string{"region": {"EU"}, "purpose": {"b", "a"}, "Region": {"x"}},
		PasswordHash: "$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA",
	}
	require.NoError(t, s.CreateUser(ctx(t), u))
	_, err := uuid.Parse(u.ID)
	require.NoError(t, err, "generated id must be a uuid")
	require.Equal(t, int64(1), u.Revision)
	require.True(t, u.CreatedAt.After(before) && u.CreatedAt.Before(time.Now().Add(time.Second)), "CreatedAt %v", u.CreatedAt)
	require.Equal(t, time.UTC, u.CreatedAt.Location())
	require.True(t, u.UpdatedAt.Equal(u.CreatedAt))

	got, err := s.GetUser(ctx(t), u.ID)
	require.NoError(t, err)
	requireEqual(t, u, got)

	got, err = s.GetUserByName(ctx(t), "ALICE@Example.COM")
	require.NoError(t, err)
	requireEqual(t, u, got)

	svc := &store.User{Kind: store.KindService, UserName: "etl-bot"}
	require.NoError(t, s.CreateUser(ctx(t), svc))
	list, err := s.ListUsers(ctx(t))
	require.NoError(t, err)
	requireEqual(t, []*store.User{u, svc}, list)

	// Update replaces every field and bumps the revision.
	got.DisplayName = "Alice L."
	got.Emails = nil
	got.Attributes = map[string][]string{"region": {"US", "EU"}}
	got.Active = false
	got.PasswordHash = ""
	require.NoError(t, s.UpdateUser(ctx(t), got))
	require.Equal(t, int64(2), got.Revision)
	require.True(t, !got.UpdatedAt.Before(u.UpdatedAt))
	require.True(t, got.CreatedAt.Equal(u.CreatedAt))
	again, err := s.GetUser(ctx(t), u.ID)
	require.NoError(t, err)
	requireEqual(t, got, again)

	require.NoError(t, s.DeleteUser(ctx(t), u.ID))
	_, err = s.GetUser(ctx(t), u.ID)
	requireIs(t, err, store.ErrNotFound)
	_, err = s.GetUserByName(ctx(t), u.UserName)
	requireIs(t, err, store.ErrNotFound)
	requireIs(t, s.DeleteUser(ctx(t), u.ID), store.ErrNotFound)
	requireIs(t, s.UpdateUser(ctx(t), again), store.ErrNotFound)
	list, err = s.ListUsers(ctx(t))
	require.NoError(t, err)
	requireEqual(t, []*store.User{svc}, list)
}

func testUserValidation(t *testing.T, s store.Store) {
	requireIs(t, s.CreateUser(ctx(t), &store.User{}), store.ErrInvalid)
	requireIs(t, s.CreateUser(ctx(t), &store.User{UserName: "x", Kind: "robot"}), store.ErrInvalid)

	u := &store.User{ID: "my-own-id", UserName: "bob"}
	require.NoError(t, s.CreateUser(ctx(t), u))
	require.Equal(t, "my-own-id", u.ID)
	require.Equal(t, store.KindUser, u.Kind, "empty kind means user")

	err := s.CreateUser(ctx(t), &store.User{ID: "my-own-id", UserName: "carol"})
	requireIs(t, err, store.ErrAlreadyExists)

	_, err = s.GetUser(ctx(t), "nope")
	requireIs(t, err, store.ErrNotFound)
	users, err := s.ListUsers(ctx(t))
	require.NoError(t, err)
	require.Len(t, users, 1)
}

func testUserNameCaseInsensitive(t *testing.T, s store.Store) {
	alice := newUser(t, s, "Alice")
	err := s.CreateUser(ctx(t), &store.User{UserName: "aLICE"})
	requireIs(t, err, store.ErrAlreadyExists)
	require.Contains(t, err.Error(), "aLICE", "error names the user")

	// Non-ASCII folds too, identically on every backend.
	newUser(t, s, "Ärger")
	requireIs(t, s.CreateUser(ctx(t), &store.User{UserName: "äRGER"}), store.ErrAlreadyExists)
	got, err := s.GetUserByName(ctx(t), "ÄRGER")
	require.NoError(t, err)
	require.Equal(t, "Ärger", got.UserName)

	// Renaming onto a taken name fails and changes nothing.
	bob := newUser(t, s, "bob")
	stale := *bob
	stale.UserName = "ALICE"
	requireIs(t, s.UpdateUser(ctx(t), &stale), store.ErrAlreadyExists)
	got, err = s.GetUser(ctx(t), bob.ID)
	require.NoError(t, err)
	requireEqual(t, bob, got)

	// Changing only the case of one's own name is fine.
	alice.UserName = "ALICE"
	require.NoError(t, s.UpdateUser(ctx(t), alice))
	got, err = s.GetUserByName(ctx(t), "alice")
	require.NoError(t, err)
	require.Equal(t, "ALICE", got.UserName)
}

func testUserRevisionConflict(t *testing.T, s store.Store) {
	u := newUser(t, s, "dave")
	a, err := s.GetUser(ctx(t), u.ID)
	require.NoError(t, err)
	b, err := s.GetUser(ctx(t), u.ID)
	require.NoError(t, err)

	a.DisplayName = "from a"
	require.NoError(t, s.UpdateUser(ctx(t), a))
	b.DisplayName = "from b"
	requireIs(t, s.UpdateUser(ctx(t), b), store.ErrConflict)
	require.Equal(t, int64(1), b.Revision, "a failed update leaves the record's revision alone")

	got, err := s.GetUser(ctx(t), u.ID)
	require.NoError(t, err)
	requireEqual(t, a, got)

	// A zero revision never matches.
	got.Revision = 0
	requireIs(t, s.UpdateUser(ctx(t), got), store.ErrConflict)
}

// testConcurrentUpdates has writers race read-modify-write cycles on one
// user, retrying on ErrConflict. Every increment must survive.
func testConcurrentUpdates(t *testing.T, s store.Store) {
	const writers, increments = 8, 15
	u := &store.User{UserName: "counter", Attributes: map[string][]string{"n": {"0"}}}
	require.NoError(t, s.CreateUser(ctx(t), u))

	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		conflicts int
		errs      = make(chan error, writers)
	)
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for done := 0; done < increments; {
				cur, err := s.GetUser(context.Background(), u.ID)
				if err != nil {
					errs <- err
					return
				}
				n, err := strconv.Atoi(cur.Attributes["n"][0])
				if err != nil {
					errs <- err
					return
				}
				cur.Attributes["n"] = []string{strconv.Itoa(n + 1)}
				err = s.UpdateUser(context.Background(), cur)
				switch {
				case errors.Is(err, store.ErrConflict):
					mu.Lock()
					conflicts++
					mu.Unlock()
				case err != nil:
					errs <- err
					return
				default:
					done++
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	got, err := s.GetUser(ctx(t), u.ID)
	require.NoError(t, err)
	require.Equal(t, []string{strconv.Itoa(writers * increments)}, got.Attributes["n"], "lost update")
	require.Equal(t, int64(1+writers*increments), got.Revision)
	t.Logf("%d conflicts retried", conflicts)
}

func testGroupCRUD(t *testing.T, s store.Store) {
	alice, bob := newUser(t, s, "alice"), newUser(t, s, "bob")
	empty := &store.Group{DisplayName: "Empty"}
	require.NoError(t, s.CreateGroup(ctx(t), empty))
	require.NotNil(t, empty.Members, "members are never nil")
	require.Empty(t, empty.Members)

	g := &store.Group{
		DisplayName: "Data Engineers",
		ExternalID:  "okta-42",
		Members:     []store.Member{userRef(bob), userRef(alice), groupRef(empty)},
	}
	require.NoError(t, s.CreateGroup(ctx(t), g))
	_, err := uuid.Parse(g.ID)
	require.NoError(t, err)
	require.Equal(t, int64(1), g.Revision)
	require.Equal(t, time.UTC, g.CreatedAt.Location())

	got, err := s.GetGroup(ctx(t), g.ID)
	require.NoError(t, err)
	requireEqual(t, g, got)
	got, err = s.GetGroupByName(ctx(t), "data ENGINEERS")
	require.NoError(t, err)
	requireEqual(t, g, got)
	list, err := s.ListGroups(ctx(t))
	require.NoError(t, err)
	requireEqual(t, []*store.Group{empty, g}, list)

	requireIs(t, s.CreateGroup(ctx(t), &store.Group{DisplayName: "DATA engineers"}), store.ErrAlreadyExists)
	requireIs(t, s.CreateGroup(ctx(t), &store.Group{ID: g.ID, DisplayName: "other"}), store.ErrAlreadyExists)
	requireIs(t, s.CreateGroup(ctx(t), &store.Group{}), store.ErrInvalid)

	// Update replaces the whole member list.
	got.DisplayName = "Data Platform"
	got.ExternalID = ""
	got.Members = []store.Member{userRef(alice)}
	require.NoError(t, s.UpdateGroup(ctx(t), got))
	require.Equal(t, int64(2), got.Revision)
	again, err := s.GetGroup(ctx(t), g.ID)
	require.NoError(t, err)
	requireEqual(t, got, again)
	_, err = s.GetGroupByName(ctx(t), "Data Engineers")
	requireIs(t, err, store.ErrNotFound)

	got.DisplayName = "empty"
	requireIs(t, s.UpdateGroup(ctx(t), got), store.ErrAlreadyExists)

	require.NoError(t, s.DeleteGroup(ctx(t), g.ID))
	_, err = s.GetGroup(ctx(t), g.ID)
	requireIs(t, err, store.ErrNotFound)
	requireIs(t, s.DeleteGroup(ctx(t), g.ID), store.ErrNotFound)
	requireIs(t, s.UpdateGroup(ctx(t), again), store.ErrNotFound)
	// Members survive the deletion of a group that listed them.
	_, err = s.GetUser(ctx(t), alice.ID)
	require.NoError(t, err)
}

func testGroupRevisionConflict(t *testing.T, s store.Store) {
	alice := newUser(t, s, "alice")
	g := newGroup(t, s, "admins")
	a, err := s.GetGroup(ctx(t), g.ID)
	require.NoError(t, err)
	b, err := s.GetGroup(ctx(t), g.ID)
	require.NoError(t, err)
	a.Members = []store.Member{userRef(alice)}
	require.NoError(t, s.UpdateGroup(ctx(t), a))
	b.DisplayName = "renamed"
	requireIs(t, s.UpdateGroup(ctx(t), b), store.ErrConflict)
	got, err := s.GetGroup(ctx(t), g.ID)
	require.NoError(t, err)
	requireEqual(t, a, got)
}

func testGroupMembersMustExist(t *testing.T, s store.Store) {
	alice := newUser(t, s, "alice")
	other := newGroup(t, s, "other")

	bad := [][]store.Member{
		{{ID: "no-such-user", Type: store.MemberUser}},
		{{ID: "no-such-group", Type: store.MemberGroup}},
		{{ID: alice.ID, Type: store.MemberGroup}}, // wrong type
		{{ID: other.ID, Type: store.MemberUser}},  // wrong type
		{{ID: alice.ID, Type: "Robot"}},
		{{ID: "", Type: store.MemberUser}},
		{userRef(alice), {ID: "ghost"}},
	}
	for i, ms := range bad {
		err := s.CreateGroup(ctx(t), &store.Group{DisplayName: fmt.Sprintf("bad-%d", i), Members: ms})
		requireIs(t, err, store.ErrInvalid)
		_, err = s.GetGroupByName(ctx(t), fmt.Sprintf("bad-%d", i))
		requireIs(t, err, store.ErrNotFound) // nothing was written
	}

	// An update with a missing member changes nothing either.
	cur, err := s.GetGroup(ctx(t), other.ID)
	require.NoError(t, err)
	upd := *cur
	upd.DisplayName = "changed"
	upd.Members = []store.Member{{ID: "ghost", Type: store.MemberUser}}
	requireIs(t, s.UpdateGroup(ctx(t), &upd), store.ErrInvalid)
	got, err := s.GetGroup(ctx(t), other.ID)
	require.NoError(t, err)
	requireEqual(t, cur, got)

	// Empty types are resolved and duplicates are stored once.
	g := &store.Group{DisplayName: "resolved", Members: []store.Member{
		{ID: alice.ID}, {ID: other.ID}, userRef(alice),
	}}
	require.NoError(t, s.CreateGroup(ctx(t), g))
	want := []store.Member{userRef(alice), groupRef(other)}
	requireEqual(t, want, g.Members)
	got, err = s.GetGroup(ctx(t), g.ID)
	require.NoError(t, err)
	requireEqual(t, want, got.Members)
}

func testNestedGroups(t *testing.T, s store.Store) {
	u := newUser(t, s, "u")
	loner := newUser(t, s, "loner")
	// u ∈ a ∈ b ∈ c, u ∈ d ∈ c (diamond), e unrelated.
	a := newGroup(t, s, "a", userRef(u))
	b := newGroup(t, s, "B", groupRef(a))
	d := newGroup(t, s, "d", userRef(u))
	c := newGroup(t, s, "c", groupRef(b), groupRef(d))
	newGroup(t, s, "e", userRef(loner))

	// A crowd of other members must not come back: GroupsOfUser never loads
	// a group's members (issue 12 §1), it reports only u's own direct
	// membership, so its cost does not grow with the groups' sizes.
	crowd := newUser(t, s, "crowd")
	a.Members = append(a.Members, userRef(crowd), userRef(loner))
	require.NoError(t, s.UpdateGroup(ctx(t), a))

	gs, err := s.GroupsOfUser(ctx(t), u.ID)
	require.NoError(t, err)
	require.Equal(t, []string{"B", "a", "c", "d"}, names(gs), "each group once, ordered by DisplayName")
	direct := map[string]bool{a.ID: true, d.ID: true}
	for _, g := range gs {
		want := []store.Member{}
		if direct[g.ID] {
			want = []store.Member{userRef(u)}
		}
		requireEqual(t, want, g.Members)
		if g.ID == c.ID {
			wantC := *c
			wantC.Members = []store.Member{}
			requireEqual(t, &wantC, g)
		}
	}

	// Breaking the a→b edge removes b and c through a, but c stays via d.
	b.Members = []store.Member{}
	require.NoError(t, s.UpdateGroup(ctx(t), b))
	gs, err = s.GroupsOfUser(ctx(t), u.ID)
	require.NoError(t, err)
	require.Equal(t, []string{"a", "c", "d"}, names(gs))

	nobody := newUser(t, s, "nobody")
	gs, err = s.GroupsOfUser(ctx(t), nobody.ID)
	require.NoError(t, err)
	require.Empty(t, gs)

	_, err = s.GroupsOfUser(ctx(t), "no-such-user")
	requireIs(t, err, store.ErrNotFound)
}

func testGroupCycle(t *testing.T, s store.Store) {
	a := newGroup(t, s, "a")
	b := newGroup(t, s, "b", groupRef(a))
	c := newGroup(t, s, "c", groupRef(b))

	// Self-membership.
	self, err := s.GetGroup(ctx(t), a.ID)
	require.NoError(t, err)
	self.Members = []store.Member{groupRef(a)}
	requireIs(t, s.UpdateGroup(ctx(t), self), store.ErrInvalid)

	// a ∈ b ∈ c; making c a member of a closes a cycle.
	cur, err := s.GetGroup(ctx(t), a.ID)
	require.NoError(t, err)
	upd := *cur
	upd.Members = []store.Member{groupRef(c)}
	requireIs(t, s.UpdateGroup(ctx(t), &upd), store.ErrInvalid)
	got, err := s.GetGroup(ctx(t), a.ID)
	require.NoError(t, err)
	requireEqual(t, cur, got)

	// Two-node cycle.
	cur, err = s.GetGroup(ctx(t), a.ID)
	require.NoError(t, err)
	cur.Members = []store.Member{groupRef(b)}
	requireIs(t, s.UpdateGroup(ctx(t), cur), store.ErrInvalid)

	// A DAG with shared descendants is not a cycle.
	d := newGroup(t, s, "d", groupRef(a), groupRef(b), groupRef(c))
	require.Len(t, d.Members, 3)
}

// testConcurrentEdges races two updates that are each fine alone but close a
// cycle together (a ∈ b and b ∈ a). The cycle check must see the other
// writer's edge, so at most one may succeed.
func testConcurrentEdges(t *testing.T, s store.Store) {
	for round := range 10 {
		a := newGroup(t, s, fmt.Sprint("a", round))
		b := newGroup(t, s, fmt.Sprint("b", round))
		var wg sync.WaitGroup
		errs := make([]error, 2)
		for i, pair := range [][2]*store.Group{{a, b}, {b, a}} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				parent := *pair[0]
				parent.Members = []store.Member{groupRef(pair[1])}
				errs[i] = s.UpdateGroup(context.Background(), &parent)
			}()
		}
		wg.Wait()
		ok := 0
		for _, err := range errs {
			if err == nil {
				ok++
			} else if !errors.Is(err, store.ErrInvalid) {
				t.Fatalf("round %d: unexpected error %v", round, err)
			}
		}
		require.Equal(t, 1, ok, "round %d: exactly one edge may land (errors %v)", round, errs)
	}
}

func testDeleteUserCascades(t *testing.T, s store.Store) {
	u, keep := newUser(t, s, "leaver"), newUser(t, s, "stayer")
	g := newGroup(t, s, "team", userRef(u), userRef(keep))
	parent := newGroup(t, s, "parent", groupRef(g))
	tok := &store.Token{PrincipalID: u.ID, Kind: store.TokenPAT, Name: "laptop", Hash: []byte("h1")}
	require.NoError(t, s.CreateToken(ctx(t), tok))
	other := &store.Token{PrincipalID: keep.ID, Kind: store.TokenSession, Hash: []byte("h2")}
	require.NoError(t, s.CreateToken(ctx(t), other))

	require.NoError(t, s.DeleteUser(ctx(t), u.ID))

	got, err := s.GetGroup(ctx(t), g.ID)
	require.NoError(t, err)
	requireEqual(t, []store.Member{userRef(keep)}, got.Members)
	require.Greater(t, got.Revision, g.Revision, "a group whose members changed gets a new revision")
	got, err = s.GetGroup(ctx(t), parent.ID)
	require.NoError(t, err)
	require.Equal(t, parent.Revision, got.Revision, "indirect parents are unchanged")

	_, err = s.GetToken(ctx(t), tok.ID)
	requireIs(t, err, store.ErrNotFound)
	toks, err := s.ListTokens(ctx(t), u.ID)
	require.NoError(t, err)
	require.Empty(t, toks)
	_, err = s.GetToken(ctx(t), other.ID)
	require.NoError(t, err)
	_, err = s.GroupsOfUser(ctx(t), u.ID)
	requireIs(t, err, store.ErrNotFound)

	// The id can be reused afterwards without inheriting anything.
	again := &store.User{ID: u.ID, UserName: "leaver"}
	require.NoError(t, s.CreateUser(ctx(t), again))
	gs, err := s.GroupsOfUser(ctx(t), u.ID)
	require.NoError(t, err)
	require.Empty(t, gs)
}

func testDeleteGroupCascades(t *testing.T, s store.Store) {
	u := newUser(t, s, "u")
	child := newGroup(t, s, "child", userRef(u))
	parent := newGroup(t, s, "parent", groupRef(child), userRef(u))
	top := newGroup(t, s, "top", groupRef(parent))

	require.NoError(t, s.DeleteGroup(ctx(t), child.ID))
	got, err := s.GetGroup(ctx(t), parent.ID)
	require.NoError(t, err)
	requireEqual(t, []store.Member{userRef(u)}, got.Members)
	require.Greater(t, got.Revision, parent.Revision)

	require.NoError(t, s.DeleteGroup(ctx(t), parent.ID))
	got, err = s.GetGroup(ctx(t), top.ID)
	require.NoError(t, err)
	require.Empty(t, got.Members)
	gs, err := s.GroupsOfUser(ctx(t), u.ID)
	require.NoError(t, err)
	require.Empty(t, gs)
	_, err = s.GetUser(ctx(t), u.ID)
	require.NoError(t, err)
}

func testTokens(t *testing.T, s store.Store) {
	u := newUser(t, s, "tokenholder")
	exp := time.Now().Add(90 * 24 * time.Hour)
	pat := &store.Token{PrincipalID: u.ID, Kind: store.TokenPAT, Name: "ci", Hash: []byte{0, 1, 2, 0xff}, ExpiresAt: exp}
	require.NoError(t, s.CreateToken(ctx(t), pat))
	_, err := uuid.Parse(pat.ID)
	require.NoError(t, err)
	require.False(t, pat.CreatedAt.IsZero())
	require.Nil(t, pat.RevokedAt)

	got, err := s.GetToken(ctx(t), pat.ID)
	require.NoError(t, err)
	requireEqual(t, pat, got)

	sess := &store.Token{ID: "sess-1", PrincipalID: u.ID, Kind: store.TokenSession, Hash: []byte("x")}
	require.NoError(t, s.CreateToken(ctx(t), sess))
	got, err = s.GetToken(ctx(t), "sess-1")
	require.NoError(t, err)
	require.True(t, got.ExpiresAt.IsZero(), "zero ExpiresAt round-trips")
	requireEqual(t, sess, got)

	list, err := s.ListTokens(ctx(t), u.ID)
	require.NoError(t, err)
	requireEqual(t, []*store.Token{pat, sess}, list)
	list, err = s.ListTokens(ctx(t), "nobody")
	require.NoError(t, err)
	require.Empty(t, list)

	requireIs(t, s.CreateToken(ctx(t), &store.Token{ID: "sess-1", PrincipalID: u.ID, Kind: store.TokenSession}), store.ErrAlreadyExists)
	requireIs(t, s.CreateToken(ctx(t), &store.Token{PrincipalID: "ghost", Kind: store.TokenPAT}), store.ErrInvalid)
	requireIs(t, s.CreateToken(ctx(t), &store.Token{PrincipalID: u.ID, Kind: "cookie"}), store.ErrInvalid)
	_, err = s.GetToken(ctx(t), "nope")
	requireIs(t, err, store.ErrNotFound)
}

// testTokenRoles checks that a token's role restriction round-trips and
// that nil (unrestricted) and empty (no role) stay apart (issue 11
// finding 9).
func testTokenRoles(t *testing.T, s store.Store) {
	u := newUser(t, s, "restricted")
	cases := []struct {
		name  string
		roles []store.RoleGrant
	}{
		{"unrestricted", nil},
		{"no role", []store.RoleGrant{}},
		{"listed", []store.RoleGrant{
			{RoleARN: "arn:aws:iam::123456789012:role/analyst", ProviderARN: "arn:aws:iam::123456789012:saml-provider/idp"},
			{RoleARN: "arn:aws:iam::123456789012:role/reader"},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tok := &store.Token{PrincipalID: u.ID, Kind: store.TokenPAT, Name: c.name, Hash: []byte("h"), Roles: c.roles,
				ParentID: "parent-of-" + c.name}
			require.NoError(t, s.CreateToken(ctx(t), tok))
			got, err := s.GetToken(ctx(t), tok.ID)
			require.NoError(t, err)
			require.Equal(t, c.roles == nil, got.Roles == nil, "nil and empty must stay apart")
			requireEqual(t, tok, got)
			list, err := s.ListTokens(ctx(t), u.ID)
			require.NoError(t, err)
			i := slices.IndexFunc(list, func(x *store.Token) bool { return x.ID == tok.ID })
			require.GreaterOrEqual(t, i, 0)
			requireEqual(t, tok, list[i])
		})
	}
}

func testTokenRevokeTouch(t *testing.T, s store.Store) {
	u := newUser(t, s, "u")
	tok := &store.Token{PrincipalID: u.ID, Kind: store.TokenPAT, Hash: []byte("h")}
	require.NoError(t, s.CreateToken(ctx(t), tok))

	first := time.Date(2030, 1, 2, 3, 4, 5, 6_000_000, time.UTC)
	require.NoError(t, s.RevokeToken(ctx(t), tok.ID, first))
	require.NoError(t, s.RevokeToken(ctx(t), tok.ID, first.Add(time.Hour)), "revoking again is a no-op")
	got, err := s.GetToken(ctx(t), tok.ID)
	require.NoError(t, err)
	require.NotNil(t, got.RevokedAt)
	require.True(t, got.RevokedAt.Equal(first), "first revocation time kept, got %v", got.RevokedAt)
	requireIs(t, s.RevokeToken(ctx(t), "nope", first), store.ErrNotFound)

	t1 := time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)
	require.NoError(t, s.TouchToken(ctx(t), tok.ID, t1))
	require.NoError(t, s.TouchToken(ctx(t), tok.ID, t1.Add(-time.Minute)), "older touch is accepted")
	got, err = s.GetToken(ctx(t), tok.ID)
	require.NoError(t, err)
	require.NotNil(t, got.LastUsedAt)
	require.True(t, got.LastUsedAt.Equal(t1), "LastUsedAt never moves backwards, got %v", got.LastUsedAt)
	require.NoError(t, s.TouchToken(ctx(t), tok.ID, t1.Add(time.Minute)))
	got, err = s.GetToken(ctx(t), tok.ID)
	require.NoError(t, err)
	require.True(t, got.LastUsedAt.Equal(t1.Add(time.Minute)))
	requireIs(t, s.TouchToken(ctx(t), "nope", t1), store.ErrNotFound)
}

func testMeta(t *testing.T, s store.Store) {
	_, err := s.GetMeta(ctx(t), "k")
	requireIs(t, err, store.ErrNotFound)
	empty := []byte{}
	one, two := []byte("one"), []byte{0, 't', 'w', 'o', 0xff}

	// Conditional create.
	requireIs(t, s.PutMeta(ctx(t), "k", one, &one), store.ErrConflict) // absent, expected "one"
	require.NoError(t, s.PutMeta(ctx(t), "k", one, &empty))
	requireIs(t, s.PutMeta(ctx(t), "k", two, &empty), store.ErrConflict) // present now
	v, err := s.GetMeta(ctx(t), "k")
	require.NoError(t, err)
	require.Equal(t, one, v)

	// Compare and swap.
	requireIs(t, s.PutMeta(ctx(t), "k", two, &two), store.ErrConflict)
	require.NoError(t, s.PutMeta(ctx(t), "k", two, &one))
	v, err = s.GetMeta(ctx(t), "k")
	require.NoError(t, err)
	require.Equal(t, two, v)

	// Unconditional put overwrites and creates.
	require.NoError(t, s.PutMeta(ctx(t), "k", one, nil))
	require.NoError(t, s.PutMeta(ctx(t), "other", []byte("x"), nil))
	v, err = s.GetMeta(ctx(t), "k")
	require.NoError(t, err)
	require.Equal(t, one, v)
	v, err = s.GetMeta(ctx(t), "other")
	require.NoError(t, err)
	require.Equal(t, []byte("x"), v)

	requireIs(t, s.PutMeta(ctx(t), "", one, nil), store.ErrInvalid)
}

// testMetaConcurrentCAS has writers race to swap the same old value; exactly
// one may win.
func testMetaConcurrentCAS(t *testing.T, s store.Store) {
	old := []byte("v0")
	require.NoError(t, s.PutMeta(ctx(t), "leader", old, nil))
	const n = 8
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		wins []int
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := s.PutMeta(context.Background(), "leader", []byte(fmt.Sprint("v", i+1)), &old)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins = append(wins, i+1)
			case !errors.Is(err, store.ErrConflict):
				t.Errorf("PutMeta: %v", err)
			}
		}()
	}
	wg.Wait()
	require.Len(t, wins, 1)
	v, err := s.GetMeta(ctx(t), "leader")
	require.NoError(t, err)
	require.Equal(t, fmt.Sprint("v", wins[0]), string(v))
}

func testTimeRoundTrip(t *testing.T, s store.Store) {
	u := newUser(t, s, "timekeeper")
	loc := time.FixedZone("UTC+5:30", 5*3600+1800)
	cases := []time.Time{
		time.Date(2026, 3, 29, 1, 30, 0, 123_456_789, loc),
		time.Date(1999, 12, 31, 23, 59, 59, 999_999_999, time.UTC),
		time.Date(2262, 1, 1, 0, 0, 0, 1_000_000, time.UTC),
	}
	for i, want := range cases {
		tok := &store.Token{PrincipalID: u.ID, Kind: store.TokenSession, Name: fmt.Sprint(i), ExpiresAt: want}
		require.NoError(t, s.CreateToken(ctx(t), tok))
		got, err := s.GetToken(ctx(t), tok.ID)
		require.NoError(t, err)
		require.Equal(t, time.UTC, got.ExpiresAt.Location())
		d := want.Sub(got.ExpiresAt)
		require.True(t, d >= 0 && d < time.Millisecond, "%v round-tripped as %v", want, got.ExpiresAt)
		require.True(t, got.ExpiresAt.Equal(tok.ExpiresAt), "the record passed in holds what was stored")
		require.Equal(t, time.UTC, got.CreatedAt.Location())
	}

	// Stored timestamps are ordered like the calls that made them.
	a := newUser(t, s, "first")
	b := newUser(t, s, "second")
	require.False(t, b.CreatedAt.Before(a.CreatedAt))
	ga, err := s.GetUser(ctx(t), a.ID)
	require.NoError(t, err)
	require.True(t, ga.CreatedAt.Equal(a.CreatedAt))
	require.True(t, ga.UpdatedAt.Equal(a.UpdatedAt))
}

// testLargeGroups uses more members and groups than a backend is likely to
// bind in one statement: member order, de-duplication and the members of
// every listed group must survive batching.
func testLargeGroups(t *testing.T, s store.Store) {
	ctx := context.Background()
	const nUsers, nGroups = 510, 505
	var want []store.Member
	for i := range nUsers {
		u := &store.User{UserName: fmt.Sprintf("bulk-%04d", i)}
		require.NoError(t, s.CreateUser(ctx, u))
		// Newest first, so stored order is not insertion or id order.
		want = append([]store.Member{{ID: u.ID, Type: store.MemberUser}}, want...)
	}
	in := append([]store.Member{}, want...)
	for _, m := range want[:7] {
		in = append(in, store.Member{ID: m.ID}) // duplicates, type to resolve
	}
	big := &store.Group{DisplayName: "big", Members: in}
	require.NoError(t, s.CreateGroup(ctx, big))
	require.Equal(t, want, big.Members)
	got, err := s.GetGroup(ctx, big.ID)
	require.NoError(t, err)
	require.Equal(t, want, got.Members)

	small := map[string][]store.Member{big.ID: want}
	for i := range nGroups - 1 {
		g := &store.Group{DisplayName: fmt.Sprintf("g-%04d", i), Members: []store.Member{want[i%nUsers]}}
		if i%50 == 0 {
			g.Members = append(g.Members, store.Member{ID: big.ID, Type: store.MemberGroup})
		}
		require.NoError(t, s.CreateGroup(ctx, g))
		small[g.ID] = g.Members
	}
	groups, err := s.ListGroups(ctx)
	require.NoError(t, err)
	require.Len(t, groups, nGroups)
	for _, g := range groups {
		require.Equal(t, small[g.ID], g.Members, "members of %s", g.DisplayName)
	}
	// want[nUsers-1] is directly in big only, and through it in every group
	// nesting big: g-0000, g-0050, ... g-0500.
	of, err := s.GroupsOfUser(ctx, want[nUsers-1].ID)
	require.NoError(t, err)
	require.Len(t, of, 1+(nGroups-1+49)/50)
}

// RunTokenRolesUpgrade checks migration 0007 on a store s at the current
// schema: it writes tokens, calls toSchema6 to take the database back to
// schema 6 (drop tokens.roles and parent_id, forget version 7) and reopen
// it, and checks that live SAML sessions, whose Role list lived in the meta
// space where tokens could not inherit it, are revoked, while other tokens
// are untouched and come back unrestricted.
func RunTokenRolesUpgrade(t *testing.T, s store.Store, toSchema6 func(t *testing.T, s store.Store) store.Store) {
	u := newUser(t, s, "upgraded")
	earlier := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	toks := map[string]*store.Token{
		"saml":    {Kind: store.TokenSession, Name: "login-saml"},
		"revoked": {Kind: store.TokenSession, Name: "login-saml", RevokedAt: &earlier},
		"oidc":    {Kind: store.TokenSession, Name: "login-oidc"},
		"pat":     {Kind: store.TokenPAT, Name: "login-saml"},
	}
	for _, tok := range toks {
		tok.PrincipalID, tok.Hash = u.ID, []byte("h")
		require.NoError(t, s.CreateToken(ctx(t), tok))
	}
	s = toSchema6(t, s)
	for name, tok := range toks {
		got, err := s.GetToken(ctx(t), tok.ID)
		require.NoError(t, err)
		require.Nil(t, got.Roles, name)
		switch name {
		case "saml":
			require.NotNil(t, got.RevokedAt, "a live SAML session is revoked")
		case "revoked":
			require.True(t, earlier.Equal(*got.RevokedAt), "the first revocation time is kept")
		default:
			require.Nil(t, got.RevokedAt, "%s is untouched", name)
		}
	}
}
