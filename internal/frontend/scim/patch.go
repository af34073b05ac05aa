package scim

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// This file is the PATCH engine (RFC 7644 §3.5.2). It applies operations to
// a resource document; the caller turns the result back into a record with
// docToUser/docToGroup, which validates it as a whole, and writes it with
// the revision it read. Operations are all-or-nothing: any error leaves the
// stored resource unchanged.
//
// Accepted deviations, for the clients we must interoperate with:
//   - op names are case-insensitive ("Replace", "Add": Microsoft Entra ID);
//   - booleans may be strings ("False": Entra);
//   - a path-less add/replace value may use attribute paths as keys,
//     e.g. {"name.givenName": "x", "emails[type eq \"work\"].value": "y"}
//     (Entra);
//   - remove with path "members" and a value list removes those members
//     (Entra), instead of all members;
//   - add/replace on "attr[filter].sub" where no element matches creates
//     the element when the filter is a conjunction of "eq" comparisons,
//     e.g. emails[type eq "work"].value (Entra); other filters get noTarget;
//   - remove whose filter matches nothing is a no-op (idempotent retries).

const maxPatchOps = 1000

type patchOp struct {
	op    string // add, replace, remove
	path  *path  // nil only before expansion of a path-less op
	value any
}

func errPath(format string, args ...any) *Error {
	return newError(http.StatusBadRequest, errInvalidPath, format, args...)
}

// parsePatch validates a PatchOp body and returns its operations with
// resolved paths; path-less add/replace are expanded into one operation per
// attribute of their value.
func parsePatch(rt *resourceType, raw map[string]any) ([]patchOp, error) {
	var ops []any
	var haveSchemas, haveOps bool
	for _, k := range sortedKeys(raw) {
		switch {
		case strings.EqualFold(k, "schemas"):
			list, _ := raw[k].([]any)
			for _, s := range list {
				if s, _ := s.(string); strings.EqualFold(s, URNPatchOp) {
					haveSchemas = true
				}
			}
			if !haveSchemas {
				return nil, errSyntax(`"schemas" must be [%q]`, URNPatchOp)
			}
		case strings.EqualFold(k, "Operations"):
			list, ok := raw[k].([]any)
			if !ok {
				return nil, errSyntax(`"Operations" must be a list`)
			}
			ops, haveOps = list, true
		default:
			return nil, errSyntax("unknown attribute %q in a PatchOp request", k)
		}
	}
	if !haveSchemas {
		return nil, errSyntax(`missing "schemas": a PATCH body must list %q`, URNPatchOp)
	}
	if !haveOps || len(ops) == 0 {
		return nil, errSyntax(`"Operations" must list at least one operation`)
	}
	if len(ops) > maxPatchOps {
		return nil, newError(http.StatusBadRequest, errTooMany, "more than %d operations", maxPatchOps)
	}
	var out []patchOp
	for i, x := range ops {
		m, ok := x.(map[string]any)
		if !ok {
			return nil, errSyntax("Operations[%d] must be an object", i)
		}
		var opName, pathStr string
		var value any
		var hasValue, hasPath bool
		for _, k := range sortedKeys(m) {
			switch strings.ToLower(k) {
			case "op":
				opName, _ = m[k].(string)
			case "path":
				s, ok := m[k].(string)
				if !ok {
					return nil, errPath("Operations[%d].path must be a string", i)
				}
				pathStr, hasPath = strings.TrimSpace(s), true
			case "value":
				value, hasValue = m[k], true
			default:
				return nil, errSyntax("unknown attribute %q in Operations[%d]", k, i)
			}
		}
		opName = strings.ToLower(opName)
		switch opName {
		case "add", "replace", "remove":
		default:
			return nil, errSyntax(`Operations[%d].op must be "add", "replace" or "remove"`, i)
		}
		if hasPath && pathStr == "" {
			hasPath = false
		}
		if !hasPath {
			if opName == "remove" {
				return nil, newError(http.StatusBadRequest, errNoTarget, "Operations[%d]: remove requires a path", i)
			}
			obj, ok := value.(map[string]any)
			if !ok {
				return nil, errValue("Operations[%d]: without a path, value must be an object of attributes", i)
			}
			expanded, err := expandPathless(rt, opName, obj)
			if err != nil {
				return nil, err
			}
			out = append(out, expanded...)
			continue
		}
		if opName != "remove" && !hasValue {
			return nil, errValue("Operations[%d]: %s requires a value", i, opName)
		}
		p, skip, err := resolveOpPath(rt, pathStr, true)
		if err != nil {
			return nil, err
		}
		if skip {
			continue
		}
		if opName == "replace" && value == nil {
			opName = "remove" // null is unassigned (RFC 7643 §2.5)
		}
		out = append(out, patchOp{op: opName, path: p, value: value})
	}
	return out, nil
}

// resolveOpPath parses and resolves a PATCH path. skip reports a path to an
// attribute gatehouse ignores. With explicit set, read-only targets are a
// mutability error; otherwise (keys of a path-less value) they are skipped.
func resolveOpPath(rt *resourceType, s string, explicit bool) (p *path, skip bool, err error) {
	rp, err := parsePath(s)
	if err != nil {
		return nil, false, errPath("invalid path %q: %v", s, err)
	}
	p, err = resolveRawPath(rt, rp)
	if err != nil {
		return nil, false, errPath("invalid path %q: %v", s, err)
	}
	all := append([]*attribute(nil), p.segs...)
	if p.sub != nil {
		all = append(all, p.sub)
	}
	for _, a := range all {
		if a.ignored {
			return nil, true, nil
		}
	}
	for _, a := range all {
		if a.readOnly() {
			if !explicit {
				return nil, true, nil
			}
			return nil, false, newError(http.StatusBadRequest, errMutability, "attribute %q is read-only", p.String())
		}
	}
	return p, false, nil
}

func expandPathless(rt *resourceType, op string, obj map[string]any) ([]patchOp, error) {
	var out []patchOp
	for _, k := range sortedKeys(obj) {
		if strings.EqualFold(k, "schemas") {
			continue
		}
		p, skip, err := resolveOpPath(rt, k, false)
		if err != nil {
			var se *Error
			if errors.As(err, &se) && rt.attr(k) == nil && !strings.ContainsAny(k, ".[:") {
				return nil, errSyntax("unknown attribute %q for a %s", k, rt.Name)
			}
			return nil, err
		}
		if skip {
			continue
		}
		v := obj[k]
		o := op
		if v == nil && o == "replace" {
			o = "remove"
		}
		out = append(out, patchOp{op: o, path: p, value: v})
	}
	return out, nil
}

// applyPatch applies ops to doc in order.
func applyPatch(doc map[string]any, ops []patchOp) error {
	for _, o := range ops {
		if err := applyOp(doc, o); err != nil {
			return err
		}
	}
	return nil
}

// container walks segs (single-valued complex attributes) and returns the
// object that holds the next attribute, creating objects when create is
// set. It returns nil when an object on the way is absent and !create.
func container(doc map[string]any, segs []*attribute, create bool) (map[string]any, error) {
	cur := doc
	for _, s := range segs {
		if s.MultiValued {
			return nil, errPath("attribute %q is multi-valued; address its elements with a filter", s.Name)
		}
		next, ok := cur[s.Name].(map[string]any)
		if !ok {
			if !create {
				return nil, nil
			}
			next = map[string]any{}
			cur[s.Name] = next
		}
		cur = next
	}
	return cur, nil
}

func applyOp(doc map[string]any, o patchOp) error {
	p := o.path
	n := len(p.segs)
	target := p.segs[n-1]
	parent, err := container(doc, p.segs[:n-1], o.op != "remove")
	if err != nil || parent == nil {
		return err
	}
	if p.filter == nil {
		switch o.op {
		case "remove":
			if o.value != nil && target.MultiValued && target.Type == typeComplex {
				return removeValues(parent, target, o.value)
			}
			delete(parent, target.Name)
			return nil
		default:
			nv, err := normValue(target, o.value)
			if err != nil {
				return err
			}
			if nv == nil {
				delete(parent, target.Name)
				return nil
			}
			setValue(parent, target, nv, o.op == "add")
			return nil
		}
	}

	elems, _ := parent[target.Name].([]any)
	var matched []map[string]any
	for _, e := range elems {
		if m, ok := e.(map[string]any); ok && eval(p.filter, m) {
			matched = append(matched, m)
		}
	}
	if o.op == "remove" {
		if p.sub != nil {
			for _, m := range matched {
				delete(m, p.sub.Name)
			}
			return nil
		}
		kept := []any{}
		for _, e := range elems {
			if m, ok := e.(map[string]any); !ok || !eval(p.filter, m) {
				kept = append(kept, e)
			}
		}
		if len(kept) == 0 {
			delete(parent, target.Name)
		} else {
			parent[target.Name] = kept
		}
		return nil
	}
	if len(matched) == 0 {
		if p.sub != nil {
			if el := elementFromFilter(p.filter); el != nil {
				nv, err := normValue(p.sub, o.value)
				if err != nil {
					return err
				}
				if nv == nil {
					return nil
				}
				el[p.sub.Name] = nv
				ne, err := normSingle(target, el)
				if err != nil {
					return err
				}
				setValue(parent, target, []any{ne}, true)
				return nil
			}
		}
		return newError(http.StatusBadRequest, errNoTarget, "no value of %q matches the filter in path %q", target.Name, p.String())
	}
	if p.sub != nil {
		nv, err := normValue(p.sub, o.value)
		if err != nil {
			return err
		}
		for _, m := range matched {
			if nv == nil {
				delete(m, p.sub.Name)
			} else {
				m[p.sub.Name] = nv
			}
		}
		return nil
	}
	nv, err := normSingle(target, o.value)
	if err != nil {
		return err
	}
	obj, _ := nv.(map[string]any)
	for _, m := range matched {
		for k, v := range obj {
			m[k] = v
		}
	}
	return nil
}

// setValue stores the normalised nv as a in parent. add appends to
// multi-valued attributes (skipping duplicates) and merges complex ones;
// replace replaces multi-valued attributes wholesale and merges complex
// ones sub-attribute by sub-attribute (RFC 7644 §3.5.2.1, §3.5.2.3).
func setValue(parent map[string]any, a *attribute, nv any, add bool) {
	switch {
	case a.MultiValued:
		list, _ := nv.([]any)
		if !add {
			if len(list) == 0 {
				delete(parent, a.Name)
			} else {
				parent[a.Name] = list
			}
			return
		}
		existing, _ := parent[a.Name].([]any)
		newPrimary := false
		for _, x := range list {
			if m, ok := x.(map[string]any); ok && m["primary"] == true {
				newPrimary = true
			}
		}
		if newPrimary {
			for _, e := range existing {
				if m, ok := e.(map[string]any); ok {
					delete(m, "primary")
				}
			}
		}
		for _, x := range list {
			dup := false
			for _, e := range existing {
				if sameElement(a, e, x) {
					dup = true
					break
				}
			}
			if !dup {
				existing = append(existing, x)
			}
		}
		if len(existing) > 0 {
			parent[a.Name] = existing
		}
	case a.Type == typeComplex:
		obj, _ := nv.(map[string]any)
		cur, ok := parent[a.Name].(map[string]any)
		if !ok {
			cur = map[string]any{}
		}
		for _, k := range sortedKeys(obj) {
			s := a.sub(k)
			if s == nil {
				continue
			}
			if s.Type == typeComplex || (add && s.MultiValued) {
				setValue(cur, s, obj[k], add)
			} else {
				cur[s.Name] = obj[k]
			}
		}
		if len(cur) > 0 {
			parent[a.Name] = cur
		} else {
			delete(parent, a.Name)
		}
	default:
		parent[a.Name] = nv
	}
}

// sameElement reports whether two values of multi-valued a are the same for
// the purpose of add: equal "value" (and "type", when a has one), or equal
// scalars.
func sameElement(a *attribute, x, y any) bool {
	mx, okx := x.(map[string]any)
	my, oky := y.(map[string]any)
	if !okx || !oky {
		return x == y
	}
	vs := a.sub("value")
	if vs == nil {
		return fmt.Sprint(mx) == fmt.Sprint(my)
	}
	eq := func(p, q any) bool {
		ps, _ := p.(string)
		qs, _ := q.(string)
		if vs.CaseExact {
			return ps == qs
		}
		return strings.EqualFold(ps, qs)
	}
	if !eq(mx["value"], my["value"]) {
		return false
	}
	if a.Name == "members" {
		return true
	}
	tx, _ := mx["type"].(string)
	ty, _ := my["type"].(string)
	return strings.EqualFold(tx, ty)
}

// removeValues removes from multi-valued a every element whose "value"
// equals the "value" of an element of v (Entra's member removal form).
func removeValues(parent map[string]any, a *attribute, v any) error {
	nv, err := normValue(a, v)
	if err != nil {
		return err
	}
	drop, _ := nv.([]any)
	existing, _ := parent[a.Name].([]any)
	kept := []any{}
	for _, e := range existing {
		m, _ := e.(map[string]any)
		remove := false
		for _, d := range drop {
			dm, _ := d.(map[string]any)
			if m != nil && dm != nil && getStr(m, "value") == getStr(dm, "value") {
				remove = true
				break
			}
		}
		if !remove {
			kept = append(kept, e)
		}
	}
	if len(kept) == 0 {
		delete(parent, a.Name)
	} else {
		parent[a.Name] = kept
	}
	return nil
}

// elementFromFilter returns the element a filter made only of "eq"
// comparisons joined by "and" describes, e.g. {"type": "work"}, or nil.
func elementFromFilter(f filterNode) map[string]any {
	out := map[string]any{}
	var walk func(filterNode) bool
	walk = func(n filterNode) bool {
		switch n := n.(type) {
		case *logNode:
			return n.and && walk(n.l) && walk(n.r)
		case *cmpNode:
			if n.op != "eq" || n.val == nil || len(n.segs) != 1 {
				return false
			}
			switch n.val.(type) {
			case string, bool:
				out[n.segs[0].Name] = n.val
				return true
			}
		}
		return false
	}
	if !walk(f) {
		return nil
	}
	return out
}
