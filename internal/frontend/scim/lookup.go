package scim

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// This file keeps the requests that provisioning clients send most often
// off the paths whose cost grows with the directory (issue 12 §1):
//   - a list filtered by one "eq" on an attribute the store indexes (Okta
//     and Entra look up userName or externalId, Entra also displayName,
//     before every provisioning call) reads those records instead of
//     every record;
//   - a group PATCH that only adds and removes members changes those rows
//     through store.GroupMemberStore instead of reading and rewriting the
//     whole member list, and answers 204 (RFC 7644 §3.5.2) instead of a
//     body holding every member.

// indexedEq returns the attribute and value of f when f is a single "eq"
// comparison with a string on id, externalId, or on userName (Users) or
// displayName (Groups), which the store looks up by index. It returns ""
// otherwise.
// The caller still evaluates f on what the lookup returns, so the lookup
// only has to return a superset of the matches.
func indexedEq(rt *resourceType, f filterNode) (attr, val string) {
	n, ok := f.(*cmpNode)
	if !ok || n.op != "eq" || len(n.segs) != 1 {
		return "", ""
	}
	v, ok := n.val.(string)
	if !ok {
		return "", ""
	}
	switch name := n.segs[0].Name; {
	case name == "id", name == "externalId", rt == userType && name == "userName",
		rt == groupType && name == "displayName":
		return name, v
	}
	return "", ""
}

// oneOrNone turns the result of a lookup by key into a candidate list:
// nothing for ErrNotFound.
func oneOrNone[T any](v *T, err error) ([]*T, error) {
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return []*T{v}, nil
}

// candidates returns the records of k that may match f: the ones an
// indexed lookup finds, or every record.
func candidates[T any](c *call, k kind[T], f filterNode) ([]*T, error) {
	switch attr, val := indexedEq(k.info().rt, f); attr {
	case "":
	case "id":
		return oneOrNone(k.get(c, val))
	case "externalId":
		if xs, ok := c.h.st.(store.ExternalIDStore); ok {
			return k.byExternalID(c, xs, val)
		}
	default: // the unique attribute: userName or displayName
		return oneOrNone(k.byName(c, val))
	}
	return k.all(c)
}

// memberDelta returns the members that ops add and remove when every
// operation is an add to "members", a remove from "members" with a value
// list, or a remove of members[value eq "id"], and no member is both
// added and removed (so that applying all additions, then all removals,
// is what the operations say in order). Otherwise ok is false and the
// caller takes the general path, which also reports any error.
func memberDelta(ops []patchOp) (add, remove []store.Member, ok bool) {
	for _, o := range ops {
		p := o.path
		if p == nil || len(p.segs) != 1 || p.segs[0].Name != "members" || p.sub != nil {
			return nil, nil, false
		}
		var ms []store.Member
		switch {
		case o.op == "add" && p.filter == nil:
			ms, ok = membersIn(o.value)
			add = append(add, ms...)
		case o.op == "remove" && p.filter == nil && o.value != nil:
			ms, ok = membersIn(o.value)
			remove = append(remove, ms...)
		case o.op == "remove" && p.filter != nil:
			var id string
			id, ok = valueEq(p.filter)
			remove = append(remove, store.Member{ID: id})
		default:
			ok = false
		}
		if !ok {
			return nil, nil, false
		}
	}
	for _, a := range add {
		for _, r := range remove {
			if a.ID == r.ID {
				return nil, nil, false
			}
		}
	}
	return add, remove, true
}

// membersIn reads a list of member objects, each with a non-empty "value"
// and an optional "type" (User or Group); other sub-attributes ("display",
// "$ref") are read-only or ignored, as in the general path.
func membersIn(v any) ([]store.Member, bool) {
	list, ok := v.([]any)
	if !ok || len(list) == 0 {
		return nil, false
	}
	g, err := docToGroup(map[string]any{"displayName": "-", "members": list}, &store.Group{})
	if err != nil {
		return nil, false
	}
	for _, x := range list {
		if m, ok := x.(map[string]any); !ok || m["value"] == nil {
			return nil, false
		}
	}
	return g.Members, true
}

// valueEq returns id when f is value eq "id".
func valueEq(f filterNode) (string, bool) {
	n, ok := f.(*cmpNode)
	if !ok || n.op != "eq" || n.last == nil || n.last.Name != "value" {
		return "", false
	}
	id, ok := n.val.(string)
	return id, ok && id != ""
}

// ifMatchRevision returns the revision If-Match demands: zero when it is
// absent or "*", and ok false when it is not one weak or strong ETag.
func (c *call) ifMatchRevision() (rev int64, ok bool) {
	im := c.ifMatch()
	if im == "" || im == "*" {
		return 0, true
	}
	s := strings.Trim(strings.TrimPrefix(im, "W/"), `"`)
	rev, err := strconv.ParseInt(s, 10, 64)
	return rev, err == nil && rev > 0
}

// bareResponse reports whether the request asks for no representation in
// the answer (no "attributes" and no "excludedAttributes"), so that a PATCH
// may answer 204 No Content (RFC 7644 §3.5.2).
func (c *call) bareResponse() bool {
	q := c.r.URL.Query()
	return q.Get("attributes") == "" && q.Get("excludedAttributes") == ""
}

// patchMembers serves a group PATCH that only adds and removes members
// (memberDelta) through ms, if the answer needs no member list. It
// reports false, having done nothing, when the general path must serve
// the request. The audit event, written before the change, lists the
// members the request adds and removes; adding a present member or
// removing an absent one changes nothing.
func (c *call) patchMembers(id string, ops []patchOp) bool {
	ms, ok := c.h.st.(store.GroupMemberStore)
	add, remove, delta := memberDelta(ops)
	rev, plain := c.ifMatchRevision()
	q := c.r.URL.Query()
	if !ok || !delta || !plain || q.Get("attributes") != "" ||
		!c.bareResponse() && !excludes(q.Get("excludedAttributes"), "members") {
		return false
	}
	c.res = audit.Resource{Type: "group", ID: id}
	ev := c.event(audit.CodeGroupUpdated, "scim.group.patch").Allow()
	if len(add) > 0 {
		ev.Detail("membersAdded", memberIDs(add))
	}
	if len(remove) > 0 {
		ev.Detail("membersRemoved", memberIDs(remove))
	}
	var p *store.GroupPatch
	err := c.auditedWrite(ev, func() error {
		var err error
		p, err = ms.PatchGroupMembers(c.ctx, id, rev, add, remove)
		return err
	})
	switch {
	case errors.Is(err, store.ErrConflict):
		c.fail(newError(http.StatusPreconditionFailed, "", "the resource has changed"))
	case err != nil:
		c.fail(kindErr[store.Group](groupKind{}, err, id))
	case c.bareResponse():
		c.w.Header().Set("ETag", etag(p.Group.Revision))
		c.w.WriteHeader(http.StatusNoContent)
	default:
		doc := groupToDoc(p.Group, nil, c.h.base)
		if err := c.project(groupType, []map[string]any{doc}, "", q.Get("excludedAttributes")); err != nil {
			c.fail(err)
			return true
		}
		c.writeResource(http.StatusOK, doc)
	}
	return true
}
