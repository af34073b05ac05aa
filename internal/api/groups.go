package api

import (
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/google/uuid"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

type memberRef struct {
	Value string           `json:"value"`
	Type  store.MemberType `json:"type"`
}

func viewGroup(g *store.Group) *store.Group {
	if g.Members == nil {
		g.Members = []store.Member{}
	}
	return g
}

func groupResource(g *store.Group) audit.Resource {
	return audit.Resource{Type: "group", ID: g.ID, Name: g.DisplayName}
}

// resolveGroup finds a group by id, then by displayName.
func (c *call) resolveGroup(ref string) (*store.Group, error) {
	g, err := c.a.st.GetGroup(c.ctx, ref)
	if errors.Is(err, store.ErrNotFound) {
		g, err = c.a.st.GetGroupByName(c.ctx, ref)
	}
	if errors.Is(err, store.ErrNotFound) {
		return nil, errNotFound("no group " + quote(ref))
	}
	return g, err
}

// resolveMember turns a member reference (id, userName or displayName,
// optionally typed) into a stored member. field names the body field for
// error messages.
func (c *call) resolveMember(field string, ref memberRef) (store.Member, error) {
	try := func(t store.MemberType) (string, error) {
		var id string
		var err error
		if t == store.MemberUser {
			var u *store.User
			if u, err = c.a.st.GetUser(c.ctx, ref.Value); err == nil {
				return u.ID, nil
			}
			if errors.Is(err, store.ErrNotFound) {
				if u, err = c.a.st.GetUserByName(c.ctx, ref.Value); err == nil {
					return u.ID, nil
				}
			}
		} else {
			var g *store.Group
			if g, err = c.a.st.GetGroup(c.ctx, ref.Value); err == nil {
				return g.ID, nil
			}
			if errors.Is(err, store.ErrNotFound) {
				if g, err = c.a.st.GetGroupByName(c.ctx, ref.Value); err == nil {
					return g.ID, nil
				}
			}
		}
		return id, err
	}
	types := []store.MemberType{store.MemberUser, store.MemberGroup}
	if ref.Type != "" {
		types = []store.MemberType{ref.Type}
	}
	for _, t := range types {
		id, err := try(t)
		if err == nil {
			return store.Member{ID: id, Type: t}, nil
		}
		if !errors.Is(err, store.ErrNotFound) {
			return store.Member{}, err
		}
	}
	what := "user or group"
	if ref.Type != "" {
		what = strings.ToLower(string(ref.Type))
	}
	return store.Member{}, errInvalid("request body: field %q: no %s %s", field, what, quote(ref.Value))
}

func (c *call) resolveMembers(field string, refs []memberRef) ([]store.Member, error) {
	out := make([]store.Member, 0, len(refs))
	for i, r := range refs {
		m, err := c.resolveMember(fmt.Sprintf("%s.%d.value", field, i), r)
		if err != nil {
			return nil, err
		}
		if !slices.Contains(out, m) {
			out = append(out, m)
		}
	}
	return out, nil
}

func (a *API) listGroups(c *call) error {
	gs, err := a.st.ListGroups(c.ctx)
	if err != nil {
		return err
	}
	prefix := strings.ToLower(c.r.URL.Query().Get("filter"))
	out := make([]*store.Group, 0, len(gs))
	for _, g := range gs {
		if prefix == "" || strings.HasPrefix(strings.ToLower(g.DisplayName), prefix) {
			out = append(out, viewGroup(g))
		}
	}
	return c.json(http.StatusOK, map[string]any{"groups": out})
}

func (a *API) getGroup(c *call) error {
	g, err := c.resolveGroup(c.params["id"])
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, viewGroup(g))
}

func (a *API) createGroup(c *call) error {
	var in struct {
		DisplayName string      `json:"displayName"`
		ExternalID  string      `json:"externalId"`
		Members     []memberRef `json:"members"`
	}
	if err := c.decode(&in); err != nil {
		return err
	}
	members, err := c.resolveMembers("members", in.Members)
	if err != nil {
		return err
	}
	if _, err := a.st.GetGroupByName(c.ctx, in.DisplayName); err == nil {
		return &apiError{status: http.StatusConflict, code: "already_exists", msg: "group " + quote(in.DisplayName) + " already exists"}
	}
	g := &store.Group{ID: uuid.NewString(), DisplayName: in.DisplayName, ExternalID: in.ExternalID, Members: members}
	res := groupResource(g)
	if err := c.allow(audit.CodeGroupCreated, res, map[string]any{"members": memberIDs(members)}); err != nil {
		return err
	}
	if err := a.st.CreateGroup(c.ctx, g); err != nil {
		c.mutationFailed(audit.CodeGroupCreated, res, err)
		return err
	}
	c.w.Header().Set("Location", Prefix+"/groups/"+g.ID)
	return c.json(http.StatusCreated, viewGroup(g))
}

func memberIDs(ms []store.Member) []string {
	ids := make([]string, len(ms))
	for i, m := range ms {
		ids[i] = string(m.Type) + ":" + m.ID
	}
	return ids
}

func (a *API) updateGroup(c *call) error {
	var in struct {
		Revision      int64       `json:"revision"`
		DisplayName   *string     `json:"displayName"`
		ExternalID    *string     `json:"externalId"`
		AddMembers    []memberRef `json:"addMembers"`
		RemoveMembers []memberRef `json:"removeMembers"`
	}
	if err := c.decode(&in); err != nil {
		return err
	}
	g, err := c.resolveGroup(c.params["id"])
	if err != nil {
		return err
	}
	if g.Revision != in.Revision {
		return errConflict(staleRevisionMsg)
	}
	add, err := c.resolveMembers("addMembers", in.AddMembers)
	if err != nil {
		return err
	}
	var remove []string
	for i, r := range in.RemoveMembers {
		id, err := c.existingMember(g, fmt.Sprintf("removeMembers.%d.value", i), r)
		if err != nil {
			return err
		}
		remove = append(remove, id)
	}
	details := map[string]any{}
	if in.DisplayName != nil {
		details["displayName"] = *in.DisplayName
		g.DisplayName = *in.DisplayName
	}
	if in.ExternalID != nil {
		g.ExternalID = *in.ExternalID
	}
	g.Members = slices.DeleteFunc(g.Members, func(m store.Member) bool { return slices.Contains(remove, m.ID) })
	for _, m := range add {
		if !slices.ContainsFunc(g.Members, func(x store.Member) bool { return x.ID == m.ID }) {
			g.Members = append(g.Members, m)
		}
	}
	details["addMembers"], details["removeMembers"] = memberIDs(add), remove
	res := groupResource(g)
	if err := c.allow(audit.CodeGroupUpdated, res, details); err != nil {
		return err
	}
	if err := a.st.UpdateGroup(c.ctx, g); err != nil {
		c.mutationFailed(audit.CodeGroupUpdated, res, err)
		return err
	}
	return c.json(http.StatusOK, viewGroup(g))
}

// existingMember finds the id of a direct member of g named by ref (its id,
// or the userName/displayName it resolves to). Absent members resolve to
// their id as given, so removing them is a no-op.
func (c *call) existingMember(g *store.Group, field string, ref memberRef) (string, error) {
	for _, m := range g.Members {
		if m.ID == ref.Value {
			return m.ID, nil
		}
	}
	m, err := c.resolveMember(field, ref)
	if err != nil {
		var ae *apiError
		if errors.As(err, &ae) && ae.status == http.StatusBadRequest {
			return ref.Value, nil
		}
		return "", err
	}
	return m.ID, nil
}

func (a *API) deleteGroup(c *call) error {
	g, err := c.resolveGroup(c.params["id"])
	if err != nil {
		return err
	}
	res := groupResource(g)
	if err := c.allow(audit.CodeGroupDeleted, res, nil); err != nil {
		return err
	}
	if err := a.st.DeleteGroup(c.ctx, g.ID); err != nil {
		c.mutationFailed(audit.CodeGroupDeleted, res, err)
		return err
	}
	return c.noContent()
}

func (a *API) addGroupMember(c *call) error {
	var in memberRef
	if err := c.decode(&in); err != nil {
		return err
	}
	g, err := c.resolveGroup(c.params["id"])
	if err != nil {
		return err
	}
	m, err := c.resolveMember("value", in)
	if err != nil {
		return err
	}
	has := func(g *store.Group) bool {
		return slices.ContainsFunc(g.Members, func(x store.Member) bool { return x.ID == m.ID })
	}
	if has(g) {
		return c.json(http.StatusOK, viewGroup(g))
	}
	res := groupResource(g)
	if err := c.allow(audit.CodeGroupUpdated, res, map[string]any{"addMembers": memberIDs([]store.Member{m})}); err != nil {
		return err
	}
	err = a.retryGroup(c, g, func(g *store.Group) bool {
		if has(g) {
			return false
		}
		g.Members = append(g.Members, m)
		return true
	})
	if err != nil {
		c.mutationFailed(audit.CodeGroupUpdated, res, err)
		return err
	}
	return c.json(http.StatusOK, viewGroup(g))
}

func (a *API) removeGroupMember(c *call) error {
	g, err := c.resolveGroup(c.params["id"])
	if err != nil {
		return err
	}
	id, err := c.existingMember(g, "memberId", memberRef{Value: c.params["memberId"]})
	if err != nil {
		return err
	}
	has := func(g *store.Group) bool {
		return slices.ContainsFunc(g.Members, func(x store.Member) bool { return x.ID == id })
	}
	if !has(g) {
		return c.json(http.StatusOK, viewGroup(g))
	}
	res := groupResource(g)
	if err := c.allow(audit.CodeGroupUpdated, res, map[string]any{"removeMembers": []string{id}}); err != nil {
		return err
	}
	err = a.retryGroup(c, g, func(g *store.Group) bool {
		if !has(g) {
			return false
		}
		g.Members = slices.DeleteFunc(g.Members, func(x store.Member) bool { return x.ID == id })
		return true
	})
	if err != nil {
		c.mutationFailed(audit.CodeGroupUpdated, res, err)
		return err
	}
	return c.json(http.StatusOK, viewGroup(g))
}

func (a *API) retryGroup(c *call, g *store.Group, mutate func(*store.Group) bool) error {
	for attempt := 0; ; attempt++ {
		if !mutate(g) {
			return nil
		}
		err := a.st.UpdateGroup(c.ctx, g)
		if err == nil || !errors.Is(err, store.ErrConflict) || attempt >= 4 {
			return err
		}
		fresh, gerr := a.st.GetGroup(c.ctx, g.ID)
		if gerr != nil {
			return gerr
		}
		*g = *fresh
	}
}
