package scim

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// scanCounter counts the store calls whose cost grows with the directory
// or with a group's size: whole-table lists, member-loading group reads and
// whole-member-list rewrites. It passes one-by-one membership changes
// through, as the server's store does.
type scanCounter struct {
	store.Store
	lists, groupReads, groupRewrites atomic.Int64
}

func (s *scanCounter) ListUsers(ctx context.Context) ([]*store.User, error) {
	s.lists.Add(1)
	return s.Store.ListUsers(ctx)
}

func (s *scanCounter) UsersByExternalID(ctx context.Context, id string) ([]*store.User, error) {
	return s.Store.(store.ExternalIDStore).UsersByExternalID(ctx, id)
}

func (s *scanCounter) GroupsByExternalID(ctx context.Context, id string) ([]*store.Group, error) {
	return s.Store.(store.ExternalIDStore).GroupsByExternalID(ctx, id)
}

func (s *scanCounter) ListGroups(ctx context.Context) ([]*store.Group, error) {
	s.lists.Add(1)
	return s.Store.ListGroups(ctx)
}

func (s *scanCounter) GetGroup(ctx context.Context, id string) (*store.Group, error) {
	s.groupReads.Add(1)
	return s.Store.GetGroup(ctx, id)
}

func (s *scanCounter) UpdateGroup(ctx context.Context, g *store.Group) error {
	s.groupRewrites.Add(1)
	return s.Store.UpdateGroup(ctx, g)
}

func (s *scanCounter) PatchGroupMembers(ctx context.Context, id string, rev int64, add, remove []store.Member) (*store.GroupPatch, error) {
	return s.Store.(store.GroupMemberStore).PatchGroupMembers(ctx, id, rev, add, remove)
}

// newScaleEnv seeds alice, bob and carol, and the group Engineering holding
// alice and n other users.
func newScaleEnv(t *testing.T, n int) (*env, *scanCounter) {
	sc := &scanCounter{}
	e := newEnvWith(t, func(s store.Store) store.Store { sc.Store = s; return sc })
	seedFixtures(e)
	ctx := context.Background()
	bob := e.mustUser(idBob)
	bob.ExternalID = "00u-bob"
	require.NoError(t, e.st.UpdateUser(ctx, bob))
	g := e.mustGroup(idEng)
	g.ExternalID = "grp-eng"
	for i := range n {
		u := e.seedUser(fmt.Sprintf("crowd-%05d", i), fmt.Sprintf("crowd%05d@example.com", i))
		g.Members = append(g.Members, store.Member{ID: u.ID, Type: store.MemberUser})
	}
	require.NoError(t, e.st.UpdateGroup(ctx, g))
	return e, sc
}

// TestLookupFiltersDoNotScan proves issue 12 §1: the lookups Okta and
// Entra send before provisioning each user or group (userName eq,
// externalId eq, id eq, displayName eq) are answered from the store's
// indexes, never by listing the whole directory, with the same answers as
// the general filter.
func TestLookupFiltersDoNotScan(t *testing.T) {
	e, sc := newScaleEnv(t, 200)
	for _, tc := range []struct {
		path, filter string
		want         []string
	}{
		{"/Users?count=10", `userName eq "ALICE@example.com"`, []string{idAlice}},
		{"/Users?count=10", `userName eq "nobody@example.com"`, nil},
		{"/Users?count=10", `id eq "` + idBob + `"`, []string{idBob}},
		{"/Users?count=10", `id eq "no-such-id"`, nil},
		{"/Users?count=10", `externalId eq "00u-bob"`, []string{idBob}},
		{"/Users?count=10", `externalId eq "00U-BOB"`, nil},
		{"/Groups?excludedAttributes=members", `displayName eq "engineering"`, []string{idEng}},
		{"/Groups?excludedAttributes=members", `externalId eq "grp-eng"`, []string{idEng}},
		{"/Groups?excludedAttributes=members", `id eq "` + idEng + `"`, []string{idEng}},
		{"/Groups?excludedAttributes=members", `displayName eq "Nobody"`, nil},
	} {
		t.Run(tc.filter, func(t *testing.T) {
			before := sc.lists.Load()
			r := e.do(http.MethodGet, tc.path+"&filter="+url.QueryEscape(tc.filter), "")
			require.Equal(t, http.StatusOK, r.status, r.raw)
			require.Equal(t, before, sc.lists.Load(), "an eq lookup must not list the directory")
			var got []string
			for _, x := range r.body["Resources"].([]any) {
				got = append(got, x.(map[string]any)["id"].(string))
			}
			require.Equal(t, tc.want, got)
			require.EqualValues(t, len(tc.want), r.body["totalResults"])
		})
	}
}

// TestPatchOneMemberOfLargeGroup proves issue 12 §1: adding or removing one
// member of a large group neither reads nor rewrites its member list, and
// the answer does not carry the members (RFC 7644 §3.5.2: 204 No Content
// with the new ETag).
func TestPatchOneMemberOfLargeGroup(t *testing.T) {
	e, sc := newScaleEnv(t, 2000)
	rev := e.mustGroup(idEng).Revision
	for i, body := range []string{
		`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"add","path":"members","value":[{"value":"` + idBob + `","display":"bob"}]}]}`,
		`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Remove","path":"members[value eq \"` + idAlice + `\"]"}]}`,
		`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Remove","path":"members","value":[{"value":"` + idBob + `"}]},{"op":"Add","path":"members","value":[{"value":"` + idCarol + `","type":"User"}]}]}`,
	} {
		reads, rewrites := sc.groupReads.Load(), sc.groupRewrites.Load()
		r := e.do(http.MethodPatch, "/Groups/"+idEng, body)
		require.Equal(t, http.StatusNoContent, r.status, r.raw)
		require.Empty(t, r.raw)
		require.Equal(t, fmt.Sprintf(`W/"%d"`, rev+int64(i)+1), r.header.Get("ETag"))
		require.Equal(t, reads, sc.groupReads.Load(), "the member list must not be read")
		require.Equal(t, rewrites, sc.groupRewrites.Load(), "the member list must not be rewritten")
	}
	g := e.mustGroup(idEng)
	require.Len(t, g.Members, 2001)
	require.Equal(t, store.Member{ID: idCarol, Type: store.MemberUser}, g.Members[len(g.Members)-1])
	require.NotContains(t, memberSet(g), idAlice)
	require.NotContains(t, memberSet(g), idBob)

	// If-Match still guards the change.
	r := e.do(http.MethodPatch, "/Groups/"+idEng, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"add","path":"members","value":[{"value":"`+idBob+`"}]}]}`,
		"If-Match", `W/"1"`)
	require.Equal(t, http.StatusPreconditionFailed, r.status, r.raw)
	require.NotContains(t, memberSet(e.mustGroup(idEng)), idBob)
}
