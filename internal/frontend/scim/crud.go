package scim

import (
	"errors"
	"net/http"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// This file is the one resource path that /Users and /Groups share
// (RFC 7644 §3.2–3.6): list, search, get, create, replace, patch and
// delete. It owns the plumbing: method checks, the refusal of writes to
// privileged principals, If-Match, audit before effect, retries on
// revision races, the mapping of store errors, filtering and pagination.
// What differs between users and groups is a kind's hooks (kind.go).

// kind is one SCIM resource type's hooks into the resource path, for
// records of type T: where they are stored, how they become documents and
// back, and what their audit events say. userKind and groupKind implement
// it. The hooks only read and write; the path decides and answers.
type kind[T any] interface {
	// info returns the type's fixed facts.
	info() *kindInfo

	// get, byName (the unique attribute), byExternalID, all, create,
	// update and remove are the store operations on records of the type,
	// with the store's errors.
	get(c *call, id string) (*T, error)
	byName(c *call, name string) (*T, error)
	byExternalID(c *call, xs store.ExternalIDStore, externalID string) ([]*T, error)
	all(c *call) ([]*T, error)
	create(c *call, v *T) error
	update(c *call, v *T) error
	remove(c *call, id string) error

	// key returns v's id, its unique attribute's value and its revision.
	key(v *T) (id, name string, rev int64)
	// fromDoc builds a record from a normalized document: a new one with
	// the type's defaults and a fresh id when base is nil, else base with
	// what the document says.
	fromDoc(doc map[string]any, base *T) (*T, error)
	// bareDoc renders v without the references that cost store reads (a
	// user's groups, a group's member names).
	bareDoc(c *call, v *T) map[string]any
	// fullDocs renders vs, in order, with those references.
	fullDocs(c *call, vs []*T) ([]map[string]any, error)
	// createdDoc renders a record just created, for the 201 answer.
	createdDoc(c *call, v *T) (map[string]any, error)

	// createDetails and deleteDetails are the audit details of a create
	// and of a delete of v (nil for none).
	createDetails(v *T) map[string]any
	deleteDetails(v *T) map[string]any
	// updateEvent starts the audit event (decision allow) of replacing cur
	// by nu under action, c.res already naming nu; it returns nil when nu
	// changes nothing SCIM manages in cur.
	updateEvent(c *call, cur, nu *T, action string) *audit.Builder
	// patchFast serves a PATCH of id with ops through a cheaper path when
	// it can, and reports whether it did; false means it did nothing.
	patchFast(c *call, id string, ops []patchOp) bool
}

// kindInfo are a resource type's fixed facts.
type kindInfo struct {
	rt *resourceType
	// name is the type in error messages ("User"); unique is the
	// attribute the store keeps unique ("userName").
	name, unique string
	// audit is the audit resource type and action prefix ("user" for
	// scim.user.create).
	audit string
	// refs is the attribute whose rendering costs store reads ("groups",
	// "members"); excluding it skips them.
	refs string
	// created and deleted are the audit codes of a create and a delete.
	created, deleted audit.Code
	// guardPrivileged refuses writes to a record that holds a gatehouse
	// privilege (refusePrivileged).
	guardPrivileged bool
	// patchNoContent answers a PATCH that asks for no representation with
	// 204 No Content and the ETag (RFC 7644 §3.5.2; what Okta expects), so
	// that the answer never carries a large group's member list unasked.
	patchNoContent bool
}

// kindErr translates a store error about the record id (or name) of k.
func kindErr[T any](k kind[T], err error, id string) error {
	info := k.info()
	return storeErr(err, info.name, id, info.unique)
}

// serveResource serves the path rest below a resource type's endpoint:
// nothing (list, create), ".search", or an id (get, replace, patch,
// delete).
func serveResource[T any](c *call, k kind[T], rest []string) {
	info := k.info()
	c.res.Type = info.audit
	switch {
	case len(rest) == 0:
		if c.allow(http.MethodGet, http.MethodPost) {
			if c.r.Method == http.MethodGet {
				listResources(c, k, nil)
			} else {
				createResource(c, k)
			}
		}
	case rest[0] == ".search":
		if c.allow(http.MethodPost) {
			searchResources(c, k)
		}
	case rest[0] == "":
		c.fail(newError(http.StatusNotFound, "", "not found"))
	default:
		c.res.ID = rest[0]
		if c.allow(http.MethodGet, http.MethodPut, http.MethodPatch, http.MethodDelete) {
			serveOne(c, k, rest[0])
		}
	}
}

// serveOne serves GET, PUT, PATCH or DELETE on the record id, after
// refusing a write to a privileged principal.
func serveOne[T any](c *call, k kind[T], id string) {
	if c.r.Method != http.MethodGet && k.info().guardPrivileged {
		if err := c.refusePrivileged(id); err != nil {
			c.fail(err)
			return
		}
	}
	switch c.r.Method {
	case http.MethodGet:
		getResource(c, k, id)
	case http.MethodDelete:
		deleteResource(c, k, id)
	default:
		updateResource(c, k, id)
	}
}

// getResource serves GET on the record id, with attributes and
// excludedAttributes.
func getResource[T any](c *call, k kind[T], id string) {
	v, err := k.get(c, id)
	if err != nil {
		c.fail(kindErr(k, err, id))
		return
	}
	q := c.r.URL.Query()
	var doc map[string]any
	if excludes(q.Get("excludedAttributes"), k.info().refs) {
		doc = k.bareDoc(c, v)
	} else if doc, err = fullDoc(c, k, v); err != nil {
		c.fail(err)
		return
	}
	if err := c.project(k.info().rt, []map[string]any{doc}, q.Get("attributes"), q.Get("excludedAttributes")); err != nil {
		c.fail(err)
		return
	}
	c.writeResource(http.StatusOK, doc)
}

// fullDoc renders one record with its references.
func fullDoc[T any](c *call, k kind[T], v *T) (map[string]any, error) {
	docs, err := k.fullDocs(c, []*T{v})
	if err != nil {
		return nil, err
	}
	return docs[0], nil
}

// createResource serves POST: it validates the body, records the create
// and only then writes it (audit before effect), and answers 201.
func createResource[T any](c *call, k kind[T]) {
	info := k.info()
	raw, err := c.readBody()
	if err == nil {
		err = checkSchemas(info.rt, raw)
	}
	var doc map[string]any
	if err == nil {
		doc, err = normResource(info.rt, raw)
	}
	var v *T
	if err == nil {
		v, err = k.fromDoc(doc, nil)
	}
	if err != nil {
		c.fail(err)
		return
	}
	id, name, _ := k.key(v)
	c.res = audit.Resource{Type: info.audit, ID: id, Name: name}
	ev := c.event(info.created, "scim."+info.audit+".create").Allow().Details(k.createDetails(v))
	if err := c.auditedWrite(ev, func() error { return k.create(c, v) }); err != nil {
		c.fail(kindErr(k, err, name))
		return
	}
	if doc, err = k.createdDoc(c, v); err != nil {
		c.fail(err)
		return
	}
	c.writeResource(http.StatusCreated, doc)
}

// updateResource serves PUT (full replacement) and PATCH on the record id.
// It reads the record, checks If-Match, computes the new state and, when
// that changes anything, records the change and writes it with the
// revision it read. A lost revision race is retried with fresh state
// unless the client sent If-Match; then, or after maxAttempts, it is 412.
func updateResource[T any](c *call, k kind[T], id string) {
	info := k.info()
	ops, doc, action, err := c.readUpdate(info.rt, "scim."+info.audit)
	if err != nil {
		c.fail(err)
		return
	}
	if ops != nil && k.patchFast(c, id, ops) {
		return
	}
	var cur, nu *T
	for attempt := 0; ; attempt++ {
		if cur, nu, err = nextState(c, k, id, ops, doc); err != nil {
			c.fail(err)
			return
		}
		nid, name, _ := k.key(nu)
		c.res = audit.Resource{Type: info.audit, ID: nid, Name: name}
		ev := k.updateEvent(c, cur, nu, action)
		if ev == nil {
			respondUpdate(c, k, cur)
			return
		}
		err = c.auditedWrite(ev, func() error { return k.update(c, nu) })
		if errors.Is(err, store.ErrConflict) && c.ifMatch() == "" && attempt+1 < maxAttempts {
			backoff(attempt)
			continue
		}
		break
	}
	if errors.Is(err, store.ErrConflict) {
		c.fail(newError(http.StatusPreconditionFailed, "", "the resource was modified concurrently"))
		return
	}
	if err != nil {
		c.fail(kindErr(k, err, id))
		return
	}
	respondUpdate(c, k, nu)
}

// nextState reads the record id, checks If-Match against it, and returns
// it with the state the request asks for: doc (PUT), or the record's
// document with ops applied (PATCH). Errors are ready for fail.
func nextState[T any](c *call, k kind[T], id string, ops []patchOp, doc map[string]any) (cur, nu *T, err error) {
	if cur, err = k.get(c, id); err != nil {
		return nil, nil, kindErr(k, err, id)
	}
	_, _, rev := k.key(cur)
	if err := c.checkVersion(rev); err != nil {
		return nil, nil, err
	}
	d := doc
	if ops != nil {
		d = k.bareDoc(c, cur)
		if err := applyPatch(d, ops); err != nil {
			return nil, nil, err
		}
	}
	if nu, err = k.fromDoc(d, cur); err != nil {
		return nil, nil, err
	}
	return cur, nu, nil
}

// respondUpdate answers a PUT or PATCH with v: 200 and its document, or,
// for a kind with patchNoContent, 204 and the ETag to a PATCH that asks
// for no representation.
func respondUpdate[T any](c *call, k kind[T], v *T) {
	if k.info().patchNoContent && c.r.Method == http.MethodPatch && c.bareResponse() {
		_, _, rev := k.key(v)
		c.w.Header().Set("ETag", etag(rev))
		c.w.WriteHeader(http.StatusNoContent)
		return
	}
	doc, err := fullDoc(c, k, v)
	if err != nil {
		c.fail(err)
		return
	}
	c.writeResource(http.StatusOK, doc)
}

// deleteResource serves DELETE on the record id: it checks If-Match,
// records the delete and only then performs it, and answers 204.
func deleteResource[T any](c *call, k kind[T], id string) {
	info := k.info()
	v, err := k.get(c, id)
	if err == nil {
		_, _, rev := k.key(v)
		err = c.checkVersion(rev)
	}
	if err == nil {
		vid, name, _ := k.key(v)
		c.res = audit.Resource{Type: info.audit, ID: vid, Name: name}
		ev := c.event(info.deleted, "scim."+info.audit+".delete").Allow().Details(k.deleteDetails(v))
		err = c.auditedWrite(ev, func() error { return k.remove(c, id) })
	}
	if err != nil {
		c.fail(kindErr(k, err, id))
		return
	}
	c.w.WriteHeader(http.StatusNoContent)
}

// searchResources serves POST .search (RFC 7644 §3.4.3): a list with its
// parameters in a SearchRequest body.
func searchResources[T any](c *call, k kind[T]) {
	lp, err := c.searchParams()
	if err != nil {
		c.fail(err)
		return
	}
	listResources(c, k, lp)
}

// listResources serves a list (RFC 7644 §3.4.2) with lp, or with the
// query's parameters when lp is nil: it filters, sorts and pages the
// candidate records, renders their references only where the filter, the
// sort or the page needs them, and projects the page.
func listResources[T any](c *call, k kind[T], lp *listParams) {
	rt := k.info().rt
	lq, err := c.parseList(rt, lp)
	if err != nil {
		c.fail(err)
		return
	}
	recs, err := candidates(c, k, lq.filter)
	if err != nil {
		c.fail(err)
		return
	}
	var docs []map[string]any
	byID := make(map[string]*T, len(recs))
	for _, v := range recs {
		id, _, _ := k.key(v)
		byID[id] = v
		docs = append(docs, k.bareDoc(c, v))
	}
	fill := func(ds []map[string]any) error {
		vs := make([]*T, len(ds))
		for i, d := range ds {
			vs[i] = byID[d["id"].(string)]
		}
		full, err := k.fullDocs(c, vs)
		copy(ds, full)
		return err
	}
	page, total, err := lq.page(rt, docs, fill)
	if err != nil {
		c.fail(err)
		return
	}
	c.writePage(rt, lq, page, total)
}
