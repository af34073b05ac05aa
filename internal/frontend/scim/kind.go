package scim

import (
	"errors"
	"slices"

	"github.com/google/uuid"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// userKind is the Users resource type's hooks into the resource path.
type userKind struct{}

var _ kind[store.User] = userKind{}

var userInfo = &kindInfo{rt: userType, name: "User", unique: "userName", audit: "user", refs: "groups",
	created: audit.CodeUserCreated, deleted: audit.CodeUserDeleted, guardPrivileged: true}

func (userKind) info() *kindInfo { return userInfo }

func (userKind) get(c *call, id string) (*store.User, error) { return c.h.st.GetUser(c.ctx, id) }

func (userKind) byName(c *call, name string) (*store.User, error) {
	return c.h.st.GetUserByName(c.ctx, name)
}

func (userKind) byExternalID(c *call, xs store.ExternalIDStore, externalID string) ([]*store.User, error) {
	return xs.UsersByExternalID(c.ctx, externalID)
}

func (userKind) all(c *call) ([]*store.User, error)       { return c.h.st.ListUsers(c.ctx) }
func (userKind) create(c *call, u *store.User) error      { return c.h.st.CreateUser(c.ctx, u) }
func (userKind) update(c *call, u *store.User) error      { return c.h.st.UpdateUser(c.ctx, u) }
func (userKind) remove(c *call, id string) error          { return c.h.st.DeleteUser(c.ctx, id) }
func (userKind) deleteDetails(*store.User) map[string]any { return nil }

func (userKind) patchFast(*call, string, []patchOp) bool { return false }

func (userKind) key(u *store.User) (id, name string, rev int64) { return u.ID, u.UserName, u.Revision }

func (userKind) fromDoc(doc map[string]any, base *store.User) (*store.User, error) {
	if base != nil {
		return docToUser(doc, base)
	}
	u, err := docToUser(doc, &store.User{Kind: store.KindUser, Active: true})
	if err != nil {
		return nil, err
	}
	u.ID = uuid.NewString()
	return u, nil
}

func (userKind) bareDoc(c *call, u *store.User) map[string]any { return userToDoc(u, nil, c.h.base) }

// fullDocs renders each user with the groups it belongs to, directly or
// through nested groups.
func (userKind) fullDocs(c *call, us []*store.User) ([]map[string]any, error) {
	docs := make([]map[string]any, len(us))
	for i, u := range us {
		gs, err := c.h.st.GroupsOfUser(c.ctx, u.ID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		docs[i] = userToDoc(u, refsFor(u.ID, gs), c.h.base)
	}
	return docs, nil
}

// createdDoc renders a new user, who belongs to no group yet, without
// looking its groups up.
func (k userKind) createdDoc(c *call, u *store.User) (map[string]any, error) {
	return k.bareDoc(c, u), nil
}

func (userKind) createDetails(u *store.User) map[string]any {
	return map[string]any{"active": u.Active, "externalId": u.ExternalID}
}

// updateEvent records a disable (active true to false) as such, and every
// other change as an update naming the changed fields.
func (userKind) updateEvent(c *call, cur, nu *store.User, action string) *audit.Builder {
	if sameUser(cur, nu) {
		return nil
	}
	code := audit.CodeUserUpdated
	if cur.Active && !nu.Active {
		code, action = audit.CodeUserDisabled, "scim.user.disable"
	}
	return c.event(code, action).Allow().
		Details(map[string]any{"changed": changedUserFields(cur, nu), "revision": cur.Revision + 1})
}

// refsFor returns the "groups" references of the user userID, who belongs
// to gs, marking the groups it is a direct member of.
func refsFor(userID string, gs []*store.Group) []groupRef {
	refs := make([]groupRef, 0, len(gs))
	for _, g := range gs {
		direct := slices.Contains(g.Members, store.Member{ID: userID, Type: store.MemberUser})
		refs = append(refs, groupRef{ID: g.ID, Name: g.DisplayName, Direct: direct})
	}
	return refs
}

// groupKind is the Groups resource type's hooks into the resource path.
type groupKind struct{}

var _ kind[store.Group] = groupKind{}

var groupInfo = &kindInfo{rt: groupType, name: "Group", unique: "displayName", audit: "group", refs: "members",
	created: audit.CodeGroupCreated, deleted: audit.CodeGroupDeleted, patchNoContent: true}

func (groupKind) info() *kindInfo { return groupInfo }

func (groupKind) get(c *call, id string) (*store.Group, error) { return c.h.st.GetGroup(c.ctx, id) }

func (groupKind) byName(c *call, name string) (*store.Group, error) {
	return c.h.st.GetGroupByName(c.ctx, name)
}

func (groupKind) byExternalID(c *call, xs store.ExternalIDStore, externalID string) ([]*store.Group, error) {
	return xs.GroupsByExternalID(c.ctx, externalID)
}

func (groupKind) all(c *call) ([]*store.Group, error)  { return c.h.st.ListGroups(c.ctx) }
func (groupKind) create(c *call, g *store.Group) error { return c.h.st.CreateGroup(c.ctx, g) }
func (groupKind) update(c *call, g *store.Group) error { return c.h.st.UpdateGroup(c.ctx, g) }
func (groupKind) remove(c *call, id string) error      { return c.h.st.DeleteGroup(c.ctx, id) }

func (groupKind) patchFast(c *call, id string, ops []patchOp) bool { return c.patchMembers(id, ops) }

func (groupKind) key(g *store.Group) (id, name string, rev int64) {
	return g.ID, g.DisplayName, g.Revision
}

func (groupKind) fromDoc(doc map[string]any, base *store.Group) (*store.Group, error) {
	if base != nil {
		return docToGroup(doc, base)
	}
	g, err := docToGroup(doc, &store.Group{})
	if err != nil {
		return nil, err
	}
	g.ID = uuid.NewString()
	return g, nil
}

func (groupKind) bareDoc(c *call, g *store.Group) map[string]any { return groupToDoc(g, nil, c.h.base) }

// fullDocs renders each group with its members' display names, loading
// every user and group once when the groups have more than 50 members in
// all, and looking members up one by one otherwise.
func (groupKind) fullDocs(c *call, gs []*store.Group) ([]map[string]any, error) {
	n := 0
	for _, g := range gs {
		n += len(g.Members)
	}
	names, err := c.memberNames(n > 50)
	if err != nil {
		return nil, err
	}
	docs := make([]map[string]any, len(gs))
	for i, g := range gs {
		docs[i] = groupToDoc(g, names, c.h.base)
	}
	return docs, nil
}

func (k groupKind) createdDoc(c *call, g *store.Group) (map[string]any, error) {
	return fullDoc(c, k, g)
}

func (groupKind) createDetails(g *store.Group) map[string]any {
	return map[string]any{"membersAdded": memberIDs(g.Members), "externalId": g.ExternalID}
}

func (groupKind) deleteDetails(g *store.Group) map[string]any {
	return map[string]any{"membersRemoved": memberIDs(g.Members)}
}

// updateEvent names the members added and removed, and the previous
// display name and the new externalId when they change; nil when none
// does.
func (groupKind) updateEvent(c *call, cur, ng *store.Group, action string) *audit.Builder {
	added, removed := memberDiff(cur.Members, ng.Members)
	if len(added) == 0 && len(removed) == 0 && cur.DisplayName == ng.DisplayName && cur.ExternalID == ng.ExternalID {
		return nil
	}
	ev := c.event(audit.CodeGroupUpdated, action).Allow()
	ev.Details(map[string]any{"revision": cur.Revision + 1})
	if len(added) > 0 {
		ev.Detail("membersAdded", added)
	}
	if len(removed) > 0 {
		ev.Detail("membersRemoved", removed)
	}
	if cur.DisplayName != ng.DisplayName {
		ev.Detail("previousDisplayName", cur.DisplayName)
	}
	if cur.ExternalID != ng.ExternalID {
		ev.Detail("externalId", ng.ExternalID)
	}
	return ev
}

// memberNames returns a display-name lookup for group members. With
// preload it loads every user and group once (for lists and big groups);
// otherwise it looks members up one by one.
func (c *call) memberNames(preload bool) (func(store.Member) string, error) {
	if preload {
		return c.allMemberNames()
	}
	names := map[store.Member]string{}
	return func(m store.Member) string {
		if n, ok := names[m]; ok {
			return n
		}
		var n string
		if m.Type == store.MemberGroup {
			if g, err := c.h.st.GetGroup(c.ctx, m.ID); err == nil {
				n = g.DisplayName
			}
		} else if u, err := c.h.st.GetUser(c.ctx, m.ID); err == nil {
			n = u.UserName
		}
		names[m] = n
		return n
	}, nil
}

// allMemberNames loads the names of every user and group once.
func (c *call) allMemberNames() (func(store.Member) string, error) {
	names := map[store.Member]string{}
	us, err := c.h.st.ListUsers(c.ctx)
	if err != nil {
		return nil, err
	}
	for _, u := range us {
		names[store.Member{ID: u.ID, Type: store.MemberUser}] = u.UserName
	}
	gs, err := c.h.st.ListGroups(c.ctx)
	if err != nil {
		return nil, err
	}
	for _, g := range gs {
		names[store.Member{ID: g.ID, Type: store.MemberGroup}] = g.DisplayName
	}
	return func(m store.Member) string { return names[m] }, nil
}

func memberIDs(ms []store.Member) []string {
	out := make([]string, 0, len(ms))
	for _, m := range ms {
		out = append(out, m.ID)
	}
	return out
}

// memberDiff returns the member ids in b but not a, and in a but not b.
func memberDiff(a, b []store.Member) (added, removed []string) {
	in := func(ms []store.Member, id string) bool {
		return slices.ContainsFunc(ms, func(m store.Member) bool { return m.ID == id })
	}
	for _, m := range b {
		if !in(a, m.ID) {
			added = append(added, m.ID)
		}
	}
	for _, m := range a {
		if !in(b, m.ID) {
			removed = append(removed, m.ID)
		}
	}
	return added, removed
}
