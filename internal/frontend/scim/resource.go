package scim

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/awsname"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// Limits on input values, so one request cannot bloat a record.
const (
	maxStringLen   = 2048
	maxMultiValues = 100
)

// A resource document is the JSON form of a resource as map[string]any
// with canonical attribute names (RFC 7643 §2.1), extension attributes
// nested under their schema URN, multi-valued attributes as []any and
// dateTimes as RFC 3339 strings. Filters and PATCH operate on documents;
// docToUser and docToGroup turn a document back into a store record and are
// the single place where input is checked for semantic validity.

// decodeJSON reads one JSON object from r and nothing else.
func decodeJSON(r io.Reader) (map[string]any, error) {
	dec := json.NewDecoder(r)
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, newError(http.StatusRequestEntityTooLarge, "", "request body larger than %d bytes", mbe.Limit)
		}
		if errors.Is(err, io.EOF) {
			return nil, errSyntax("request body is empty")
		}
		return nil, errSyntax("request body is not valid JSON: %v", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, newError(http.StatusRequestEntityTooLarge, "", "request body larger than %d bytes", mbe.Limit)
		}
		return nil, errSyntax("request body has data after the JSON object")
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, errSyntax("request body must be a JSON object")
	}
	return m, nil
}

// checkSchemas validates the "schemas" attribute of a resource body
// (RFC 7643 §3): present, a list of strings, naming the core schema of rt
// and only schemas rt knows.
func checkSchemas(rt *resourceType, raw map[string]any) error {
	var v any
	found := false
	for k, x := range raw {
		if strings.EqualFold(k, "schemas") {
			if found {
				return errSyntax(`duplicate attribute "schemas"`)
			}
			v, found = x, true
		}
	}
	if !found {
		return errSyntax(`missing "schemas"; a %s must list %q`, rt.Name, rt.Core.ID)
	}
	list, ok := v.([]any)
	if !ok {
		return errSyntax(`"schemas" must be a list of schema URIs`)
	}
	core := false
	for _, x := range list {
		s, ok := x.(string)
		if !ok {
			return errSyntax(`"schemas" must be a list of schema URIs`)
		}
		if !rt.knownSchema(s) {
			return errValue("unsupported schema %q for a %s", s, rt.Name)
		}
		if strings.EqualFold(s, rt.Core.ID) {
			core = true
		}
	}
	if !core {
		return errValue(`"schemas" must include %q`, rt.Core.ID)
	}
	return nil
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// normResource turns a resource body into a document: attribute names are
// resolved case-insensitively, unknown attributes are rejected, read-only
// and ignored attributes are dropped (RFC 7643 §7) and values are checked
// against their types.
func normResource(rt *resourceType, raw map[string]any) (map[string]any, error) {
	out := map[string]any{}
	seen := map[string]bool{}
	for _, k := range sortedKeys(raw) {
		if strings.EqualFold(k, "schemas") {
			continue
		}
		a := rt.attr(k)
		if a == nil {
			return nil, errSyntax("unknown attribute %q for a %s", k, rt.Name)
		}
		if seen[a.Name] {
			return nil, errSyntax("duplicate attribute %q", a.Name)
		}
		seen[a.Name] = true
		if a.readOnly() || a.ignored {
			continue
		}
		v, err := normValue(a, raw[k])
		if err != nil {
			return nil, err
		}
		if v != nil {
			out[a.Name] = v
		}
	}
	return out, nil
}

// normValue checks v against a and returns its canonical form; nil means
// unassigned (RFC 7643 §2.5). A single value given for a multi-valued
// attribute is taken as a list of one.
func normValue(a *attribute, v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	if !a.MultiValued {
		return normSingle(a, v)
	}
	list, ok := v.([]any)
	if !ok {
		list = []any{v}
	}
	if len(list) > maxMultiValues && a.Name != "members" {
		return nil, errValue("attribute %q has more than %d values", a.Name, maxMultiValues)
	}
	out := make([]any, 0, len(list))
	for i, e := range list {
		ne, err := normSingle(a, e)
		if err != nil {
			var se *Error
			if errors.As(err, &se) {
				se.Detail = fmt.Sprintf("%s[%d]: %s", a.Name, i, se.Detail)
			}
			return nil, err
		}
		if ne != nil {
			out = append(out, ne)
		}
	}
	return out, nil
}

func normSingle(a *attribute, v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	switch a.Type {
	case typeComplex:
		m, ok := v.(map[string]any)
		if !ok {
			// A bare value for a single-valued complex attribute with a
			// "value" sub-attribute, as Entra sends for manager.
			if vs := a.sub("value"); vs != nil && !a.dynamic && !a.MultiValued {
				m = map[string]any{vs.Name: v}
			} else {
				return nil, errValue("attribute %q must be an object", a.Name)
			}
		}
		out := map[string]any{}
		seen := map[string]bool{}
		for _, k := range sortedKeys(m) {
			s := a.sub(k)
			if s == nil {
				if a.dynamic {
					return nil, errValue("invalid key %q in %q: keys are 1-128 of [A-Za-z0-9_-]", k, a.Name)
				}
				return nil, errSyntax("unknown attribute %q in %q", k, a.Name)
			}
			if seen[s.Name] {
				return nil, errSyntax("duplicate attribute %q in %q", s.Name, a.Name)
			}
			seen[s.Name] = true
			if s.readOnly() || s.ignored {
				continue
			}
			nv, err := normValue(s, m[k])
			if err != nil {
				return nil, err
			}
			if nv != nil {
				out[s.Name] = nv
			}
		}
		return out, nil
	case typeBoolean:
		switch b := v.(type) {
		case bool:
			return b, nil
		case string:
			x, err := parseBool(b)
			if err != nil {
				return nil, errValue("attribute %q must be a boolean", a.Name)
			}
			return x, nil
		}
		return nil, errValue("attribute %q must be a boolean", a.Name)
	case typeString, typeReference:
		s, ok := v.(string)
		if !ok {
			return nil, errValue("attribute %q must be a string", a.Name)
		}
		if len(s) > maxStringLen {
			return nil, errValue("attribute %q is longer than %d bytes", a.Name, maxStringLen)
		}
		return s, nil
	case typeDateTime:
		s, ok := v.(string)
		if !ok {
			return nil, errValue("attribute %q must be a dateTime string", a.Name)
		}
		if _, err := time.Parse(time.RFC3339Nano, s); err != nil {
			return nil, errValue("attribute %q must be an RFC 3339 dateTime", a.Name)
		}
		return s, nil
	case typeInteger:
		n, ok := v.(json.Number)
		if !ok {
			return nil, errValue("attribute %q must be an integer", a.Name)
		}
		if _, err := n.Int64(); err != nil {
			return nil, errValue("attribute %q must be an integer", a.Name)
		}
		return n, nil
	}
	return nil, errValue("attribute %q has an unsupported type", a.Name)
}

func getStr(m map[string]any, k string) string {
	s, _ := m[k].(string)
	return s
}

func getMap(m map[string]any, k string) map[string]any {
	x, _ := m[k].(map[string]any)
	return x
}

func getList(m map[string]any, k string) []any {
	x, _ := m[k].([]any)
	return x
}

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

func etag(rev int64) string { return `W/"` + strconv.FormatInt(rev, 10) + `"` }

func isEnterpriseKey(k string) bool {
	for _, e := range enterpriseKeys {
		if strings.EqualFold(e, k) {
			return true
		}
	}
	return false
}

// docToUser builds the user described by doc on top of base, which carries
// what SCIM does not manage (ID, Kind, PasswordHash, Revision, times).
// Active keeps base's value when doc does not set it.
func docToUser(doc map[string]any, base *store.User) (*store.User, error) {
	u := *base
	u.Emails, u.Attributes = nil, nil
	u.UserName = strings.TrimSpace(getStr(doc, "userName"))
	if u.UserName == "" {
		return nil, errValue(`"userName" is required`)
	}
	// A name that can become aws:username must be in AWS's set (issue 11
	// finding 3); an unchanged legacy name is left alone so that the user
	// can still be deprovisioned.
	if u.UserName != base.UserName {
		if err := awsname.UserName(u.UserName); err != nil {
			return nil, errValue("userName: %v", err)
		}
	}
	u.ExternalID = getStr(doc, "externalId")
	u.DisplayName = getStr(doc, "displayName")
	u.Title = getStr(doc, "title")
	name := getMap(doc, "name")
	u.GivenName, u.FamilyName = getStr(name, "givenName"), getStr(name, "familyName")
	primaries := 0
	for i, e := range getList(doc, "emails") {
		m, _ := e.(map[string]any)
		em := store.Email{Value: strings.TrimSpace(getStr(m, "value")), Type: getStr(m, "type")}
		em.Primary, _ = m["primary"].(bool)
		if em.Value == "" {
			return nil, errValue("emails[%d].value is required", i)
		}
		if em.Primary {
			primaries++
		}
		u.Emails = append(u.Emails, em)
	}
	if primaries > 1 {
		return nil, errValue("at most one email may be primary")
	}
	if b, ok := doc["active"].(bool); ok {
		u.Active = b
	}
	attrs := map[string][]string{}
	ent := getMap(doc, URNEnterprise)
	for _, k := range enterpriseKeys {
		v := getStr(ent, k)
		if k == "manager" {
			v = getStr(getMap(ent, k), "value")
		}
		if v != "" {
			attrs[k] = []string{v}
		}
	}
	for k, v := range getMap(getMap(doc, URNGatehouse), "attributes") {
		if isEnterpriseKey(k) {
			return nil, errValue("attribute key %q is set through the enterprise extension %q", k, URNEnterprise)
		}
		var vals []string
		list, _ := v.([]any)
		for _, x := range list {
			if s, _ := x.(string); s != "" {
				vals = append(vals, s)
			}
		}
		if len(vals) > 0 {
			attrs[k] = vals
		}
	}
	if len(attrs) > 0 {
		u.Attributes = attrs
	}
	return &u, nil
}

// groupRef is one group of a user for the read-only "groups" attribute.
type groupRef struct {
	ID, Name string
	Direct   bool
}

// userToDoc renders u as a document. PasswordHash is never read.
func userToDoc(u *store.User, groups []groupRef, baseURL string) map[string]any {
	doc := map[string]any{
		"id":       u.ID,
		"userName": u.UserName,
		"active":   u.Active,
		"meta": map[string]any{
			"resourceType": "User",
			"created":      formatTime(u.CreatedAt),
			"lastModified": formatTime(u.UpdatedAt),
			"location":     baseURL + "/Users/" + u.ID,
			"version":      etag(u.Revision),
		},
	}
	schemas := []any{URNUser}
	if u.ExternalID != "" {
		doc["externalId"] = u.ExternalID
	}
	if u.GivenName != "" || u.FamilyName != "" {
		name := map[string]any{"formatted": strings.TrimSpace(u.GivenName + " " + u.FamilyName)}
		if u.GivenName != "" {
			name["givenName"] = u.GivenName
		}
		if u.FamilyName != "" {
			name["familyName"] = u.FamilyName
		}
		doc["name"] = name
	}
	if u.DisplayName != "" {
		doc["displayName"] = u.DisplayName
	}
	if u.Title != "" {
		doc["title"] = u.Title
	}
	if len(u.Emails) > 0 {
		var emails []any
		for _, e := range u.Emails {
			m := map[string]any{"value": e.Value}
			if e.Type != "" {
				m["type"] = e.Type
			}
			if e.Primary {
				m["primary"] = true
			}
			emails = append(emails, m)
		}
		doc["emails"] = emails
	}
	if len(groups) > 0 {
		var gs []any
		for _, g := range groups {
			typ := "indirect"
			if g.Direct {
				typ = "direct"
			}
			gs = append(gs, map[string]any{
				"value": g.ID, "display": g.Name, "type": typ,
				"$ref": baseURL + "/Groups/" + g.ID,
			})
		}
		doc["groups"] = gs
	}
	ent := map[string]any{}
	gh := map[string]any{}
	keys := make([]string, 0, len(u.Attributes))
	for k := range u.Attributes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		vals := u.Attributes[k]
		if len(vals) == 0 {
			continue
		}
		if slices.Contains(enterpriseKeys, k) {
			if k == "manager" {
				ent[k] = map[string]any{"value": vals[0], "$ref": baseURL + "/Users/" + vals[0]}
			} else {
				ent[k] = vals[0]
			}
			continue
		}
		list := make([]any, len(vals))
		for i, v := range vals {
			list[i] = v
		}
		gh[k] = list
	}
	if len(ent) > 0 {
		doc[URNEnterprise] = ent
		schemas = append(schemas, URNEnterprise)
	}
	if len(gh) > 0 {
		doc[URNGatehouse] = map[string]any{"attributes": gh}
		schemas = append(schemas, URNGatehouse)
	}
	doc["schemas"] = schemas
	return doc
}

// docToGroup builds the group described by doc on top of base. Members
// whose type is not given keep an empty Type; the caller resolves it.
func docToGroup(doc map[string]any, base *store.Group) (*store.Group, error) {
	g := *base
	g.DisplayName = strings.TrimSpace(getStr(doc, "displayName"))
	if g.DisplayName == "" {
		return nil, errValue(`"displayName" is required`)
	}
	g.ExternalID = getStr(doc, "externalId")
	g.Members = []store.Member{}
	seen := map[string]bool{}
	for i, e := range getList(doc, "members") {
		m, _ := e.(map[string]any)
		id := strings.TrimSpace(getStr(m, "value"))
		if id == "" {
			return nil, errValue("members[%d].value is required", i)
		}
		var typ store.MemberType
		switch t := getStr(m, "type"); {
		case t == "":
		case strings.EqualFold(t, string(store.MemberUser)):
			typ = store.MemberUser
		case strings.EqualFold(t, string(store.MemberGroup)):
			typ = store.MemberGroup
		default:
			return nil, errValue("members[%d].type must be \"User\" or \"Group\"", i)
		}
		if seen[id] {
			continue
		}
		seen[id] = true
		g.Members = append(g.Members, store.Member{ID: id, Type: typ})
	}
	return &g, nil
}

// groupToDoc renders g. display returns the display name of a member, or "".
func groupToDoc(g *store.Group, display func(store.Member) string, baseURL string) map[string]any {
	doc := map[string]any{
		"schemas":     []any{URNGroup},
		"id":          g.ID,
		"displayName": g.DisplayName,
		"meta": map[string]any{
			"resourceType": "Group",
			"created":      formatTime(g.CreatedAt),
			"lastModified": formatTime(g.UpdatedAt),
			"location":     baseURL + "/Groups/" + g.ID,
			"version":      etag(g.Revision),
		},
	}
	if g.ExternalID != "" {
		doc["externalId"] = g.ExternalID
	}
	members := []any{}
	for _, m := range g.Members {
		e := map[string]any{"value": m.ID, "type": string(m.Type)}
		if m.Type == store.MemberGroup {
			e["$ref"] = baseURL + "/Groups/" + m.ID
		} else {
			e["$ref"] = baseURL + "/Users/" + m.ID
		}
		if display != nil {
			if d := display(m); d != "" {
				e["display"] = d
			}
		}
		members = append(members, e)
	}
	doc["members"] = members
	return doc
}

// sameUser reports whether a and b agree on everything SCIM manages.
func sameUser(a, b *store.User) bool {
	if a.UserName != b.UserName || a.ExternalID != b.ExternalID || a.DisplayName != b.DisplayName ||
		a.GivenName != b.GivenName || a.FamilyName != b.FamilyName || a.Title != b.Title || a.Active != b.Active {
		return false
	}
	if len(a.Emails) != len(b.Emails) || len(a.Attributes) != len(b.Attributes) {
		return false
	}
	for i := range a.Emails {
		if a.Emails[i] != b.Emails[i] {
			return false
		}
	}
	for k, v := range a.Attributes {
		if !slices.Equal(v, b.Attributes[k]) {
			return false
		}
	}
	return true
}

// changedUserFields names the SCIM attributes that differ, for audit.
func changedUserFields(a, b *store.User) []string {
	var out []string
	add := func(cond bool, name string) {
		if cond {
			out = append(out, name)
		}
	}
	add(a.UserName != b.UserName, "userName")
	add(a.ExternalID != b.ExternalID, "externalId")
	add(a.DisplayName != b.DisplayName, "displayName")
	add(a.GivenName != b.GivenName, "name.givenName")
	add(a.FamilyName != b.FamilyName, "name.familyName")
	add(a.Title != b.Title, "title")
	add(a.Active != b.Active, "active")
	add(!slices.Equal(a.Emails, b.Emails), "emails")
	keys := map[string]bool{}
	for k := range a.Attributes {
		keys[k] = true
	}
	for k := range b.Attributes {
		keys[k] = true
	}
	var ak []string
	for k := range keys {
		if !slices.Equal(a.Attributes[k], b.Attributes[k]) {
			ak = append(ak, "attributes."+k)
		}
	}
	sort.Strings(ak)
	return append(out, ak...)
}
