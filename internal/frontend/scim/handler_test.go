package scim

import (
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

func userBody(userName string, extra string) string {
	if extra != "" {
		extra = "," + extra
	}
	return fmt.Sprintf(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":%q%s}`, userName, extra)
}

func listIDs(t *testing.T, r resp) []string {
	t.Helper()
	var ids []string
	res, _ := r.body["Resources"].([]any)
	for _, x := range res {
		ids = append(ids, x.(map[string]any)["id"].(string))
	}
	return ids
}

func q(s string) string { return url.QueryEscape(s) }

// TestProvisioningFlow walks the sequence an IdP runs: look up, create a
// user, create a group, add the user via PATCH, read it back, deactivate,
// then list with filters.
func TestProvisioningFlow(t *testing.T) {
	e := newEnv(t)

	r := e.do("GET", "/Users?filter="+q(`userName eq "jdoe@example.com"`)+"&startIndex=1&count=100", "")
	require.Equal(t, 200, r.status, r.raw)
	require.EqualValues(t, 0, r.body["totalResults"])
	require.Equal(t, "application/scim+json", r.header.Get("Content-Type"))

	r = e.do("POST", "/Users", userBody("jdoe@example.com", `"name":{"givenName":"John","familyName":"Doe"},
		"emails":[{"value":"jdoe@example.com","type":"work","primary":true}],"externalId":"okta-1",
		"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"Finance"},
		"urn:gatehouse:params:scim:schemas:extension:2.0:User":{"attributes":{"region":["EU"]}}`))
	require.Equal(t, 201, r.status, r.raw)
	uid := r.body["id"].(string)
	require.Equal(t, baseURL+"/Users/"+uid, r.header.Get("Location"))
	require.Equal(t, `W/"1"`, r.header.Get("ETag"))
	require.Equal(t, true, r.body["active"])
	require.Equal(t, "John Doe", r.body["name"].(map[string]any)["formatted"])
	require.NotContains(t, r.raw, "password")
	require.ElementsMatch(t, []any{URNUser, URNEnterprise, URNGatehouse}, r.body["schemas"])
	meta := r.body["meta"].(map[string]any)
	require.Equal(t, "User", meta["resourceType"])
	require.Equal(t, `W/"1"`, meta["version"])

	r = e.do("POST", "/Groups", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"Finance"}`)
	require.Equal(t, 201, r.status, r.raw)
	gid := r.body["id"].(string)
	r = e.do("POST", "/Groups", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"All Staff",
		"members":[{"value":"`+gid+`"}]}`)
	require.Equal(t, 201, r.status, r.raw)
	parent := r.body["id"].(string)
	require.Equal(t, "Group", r.body["members"].([]any)[0].(map[string]any)["type"])
	require.Equal(t, "Finance", r.body["members"].([]any)[0].(map[string]any)["display"])

	// A group PATCH answers 204 unless the caller asks for attributes.
	r = e.do("PATCH", "/Groups/"+gid+"?attributes=members", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
		"Operations":[{"op":"add","path":"members","value":[{"value":"`+uid+`"}]}]}`)
	require.Equal(t, 200, r.status, r.raw)
	m := r.body["members"].([]any)[0].(map[string]any)
	require.Equal(t, uid, m["value"])
	require.Equal(t, "jdoe@example.com", m["display"])
	require.Equal(t, "User", m["type"])

	r = e.do("GET", "/Users/"+uid, "")
	require.Equal(t, 200, r.status, r.raw)
	groups := r.body["groups"].([]any)
	require.Len(t, groups, 2)
	byName := map[string]map[string]any{}
	for _, g := range groups {
		byName[g.(map[string]any)["display"].(string)] = g.(map[string]any)
	}
	require.Equal(t, "direct", byName["Finance"]["type"])
	require.Equal(t, "indirect", byName["All Staff"]["type"])
	require.Equal(t, parent, byName["All Staff"]["value"])
	require.Equal(t, "Finance", r.body[URNEnterprise].(map[string]any)["department"])
	require.Equal(t, map[string]any{"attributes": map[string]any{"region": []any{"EU"}}}, r.body[URNGatehouse])

	// Filters that need the groups attribute.
	r = e.do("GET", "/Users?filter="+q(`groups.display eq "all staff"`), "")
	require.Equal(t, []string{uid}, listIDs(t, r))

	// Deactivate with the Okta shape; the store says inactive.
	r = e.do("PATCH", "/Users/"+uid, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
		"Operations":[{"op":"replace","value":{"active":false}}]}`, "If-Match", `W/"1"`)
	require.Equal(t, 200, r.status, r.raw)
	require.Equal(t, false, r.body["active"])
	require.False(t, e.mustUser(uid).Active)

	r = e.do("GET", "/Users?filter="+q(`active eq false and emails[type eq "work" and value co "@EXAMPLE.com"]`), "")
	require.Equal(t, []string{uid}, listIDs(t, r))
	r = e.do("GET", "/Users?filter="+q(`active eq true`), "")
	require.Empty(t, listIDs(t, r))
	r = e.do("GET", "/Groups?excludedAttributes=members&filter="+q(`displayName eq "finance"`), "")
	require.Equal(t, []string{gid}, listIDs(t, r))
	require.NotContains(t, r.raw, `"members"`)
	r = e.do("GET", "/Groups?filter="+q(`members[value eq "`+uid+`"]`), "")
	require.Equal(t, []string{gid}, listIDs(t, r))

	// Delete the user: memberships go with it.
	r = e.do("DELETE", "/Users/"+uid, "")
	require.Equal(t, 204, r.status, r.raw)
	require.Empty(t, e.mustGroup(gid).Members)
	r = e.do("GET", "/Users/"+uid, "")
	require.Equal(t, 404, r.status)
	r = e.do("DELETE", "/Groups/"+parent, "")
	require.Equal(t, 204, r.status, r.raw)

	require.Equal(t, []audit.Code{
		audit.CodeUserCreated, audit.CodeGroupCreated, audit.CodeGroupCreated, audit.CodeGroupUpdated,
		audit.CodeUserDisabled, audit.CodeUserDeleted, audit.CodeGroupDeleted,
	}, e.audit.codes())
	ev := e.audit.all()[3]
	require.Equal(t, []string{uid}, ev.Details["membersAdded"])
	require.Equal(t, audit.Resource{Type: "group", ID: gid, Name: "Finance"}, ev.Resource)
}

func TestListPaginationAndSort(t *testing.T) {
	e := newEnv(t)
	var ids []string
	for i := range 7 {
		u := e.seedUser("", fmt.Sprintf("user%d@example.com", 6-i), func(u *store.User) {
			u.Title = []string{"b", "a"}[i%2]
		})
		ids = append(ids, u.ID)
	}
	r := e.do("GET", "/Users?startIndex=2&count=3", "")
	require.Equal(t, 200, r.status, r.raw)
	require.EqualValues(t, 7, r.body["totalResults"])
	require.EqualValues(t, 3, r.body["itemsPerPage"])
	require.EqualValues(t, 2, r.body["startIndex"])
	require.Equal(t, ids[1:4], listIDs(t, r), "stable creation order")

	r = e.do("GET", "/Users?startIndex=0&count=2", "") // startIndex < 1 is 1
	require.Equal(t, ids[:2], listIDs(t, r))
	require.EqualValues(t, 1, r.body["startIndex"])
	r = e.do("GET", "/Users?count=0", "")
	require.EqualValues(t, 7, r.body["totalResults"])
	require.Empty(t, r.body["Resources"])
	r = e.do("GET", "/Users?startIndex=7&count=5", "")
	require.Equal(t, ids[6:], listIDs(t, r))
	r = e.do("GET", "/Users?startIndex=50", "")
	require.EqualValues(t, 7, r.body["totalResults"])
	require.Empty(t, listIDs(t, r))
	r = e.do("GET", "/Users?count=100000", "")
	require.Len(t, listIDs(t, r), 7)
	r = e.do("GET", "/Users?count=abc", "")
	require.Equal(t, 400, r.status)

	r = e.do("GET", "/Users?sortBy=userName", "")
	require.Equal(t, []string{ids[6], ids[5], ids[4], ids[3], ids[2], ids[1], ids[0]}, listIDs(t, r))
	r = e.do("GET", "/Users?sortBy=title&sortOrder=descending&count=4&filter="+q(`userName sw "USER"`), "")
	require.Equal(t, []string{ids[0], ids[2], ids[4], ids[6]}, listIDs(t, r))

	r = e.do("GET", "/Users?attributes=userName&count=1", "")
	res := r.body["Resources"].([]any)[0].(map[string]any)
	require.ElementsMatch(t, []string{"id", "schemas", "userName"}, keys(res))
	r = e.do("GET", "/Users/"+ids[0]+"?excludedAttributes=meta,title,id", "")
	require.NotContains(t, r.body, "meta")
	require.NotContains(t, r.body, "title")
	require.Contains(t, r.body, "id")

	r = e.do("POST", "/Users/.search", `{"schemas":["urn:ietf:params:scim:api:messages:2.0:SearchRequest"],
		"filter":"title eq \"a\"","startIndex":1,"count":10,"attributes":["userName"]}`)
	require.Equal(t, 200, r.status, r.raw)
	require.EqualValues(t, 3, r.body["totalResults"])
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestDiscovery(t *testing.T) {
	e := newEnv(t)
	r := e.do("GET", "/ServiceProviderConfig", "")
	require.Equal(t, 200, r.status)
	require.Equal(t, true, r.body["patch"].(map[string]any)["supported"])
	require.EqualValues(t, MaxResults, r.body["filter"].(map[string]any)["maxResults"])
	require.Equal(t, "oauthbearertoken", r.body["authenticationSchemes"].([]any)[0].(map[string]any)["type"])

	r = e.do("GET", "/ResourceTypes", "")
	require.EqualValues(t, 2, r.body["totalResults"])
	r = e.do("GET", "/ResourceTypes/User", "")
	require.Equal(t, "/Users", r.body["endpoint"])
	require.Len(t, r.body["schemaExtensions"], 2)
	r = e.do("GET", "/Schemas", "")
	require.EqualValues(t, 4, r.body["totalResults"])
	r = e.do("GET", "/Schemas/"+URNUser, "")
	require.Equal(t, 200, r.status)
	var names []string
	for _, a := range r.body["attributes"].([]any) {
		names = append(names, a.(map[string]any)["name"].(string))
	}
	require.Contains(t, names, "userName")
	require.NotContains(t, names, "password")
	r = e.do("GET", "/Schemas/urn:nope", "")
	require.Equal(t, 404, r.status)
}

func TestErrors(t *testing.T) {
	e := newEnv(t)
	seedFixtures(e)
	patch := func(ops string) string {
		return `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[` + ops + `]}`
	}
	tests := []struct {
		name, method, path, body string
		headers                  []string
		status                   int
		scimType                 string
		detail                   string
	}{
		{"malformed json", "POST", "/Users", `{"schemas":`, nil, 400, "invalidSyntax", "not valid JSON"},
		{"trailing data", "POST", "/Users", userBody("x", "") + `{}`, nil, 400, "invalidSyntax", "after the JSON object"},
		{"not an object", "POST", "/Users", `[1]`, nil, 400, "invalidSyntax", "JSON object"},
		{"no schemas", "POST", "/Users", `{"userName":"x"}`, nil, 400, "invalidSyntax", `missing "schemas"`},
		{"wrong schema", "POST", "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"userName":"x"}`, nil, 400, "invalidValue", "unsupported schema"},
		{"unknown schema", "POST", "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","urn:x"],"userName":"x"}`, nil, 400, "invalidValue", `"urn:x"`},
		{"unknown attribute", "POST", "/Users", userBody("x", `"favoriteColor":"red"`), nil, 400, "invalidSyntax", `"favoriteColor"`},
		{"unknown sub-attribute", "POST", "/Users", userBody("x", `"name":{"nick":"x"}`), nil, 400, "invalidSyntax", `"nick"`},
		{"duplicate attribute", "POST", "/Users", userBody("x", `"USERNAME":"y"`), nil, 400, "invalidSyntax", "duplicate"},
		{"wrong type", "POST", "/Users", userBody("x", `"active":"maybe"`), nil, 400, "invalidValue", `"active"`},
		{"emails not objects", "POST", "/Users", userBody("x", `"emails":["a@b"]`), nil, 400, "invalidValue", "emails[0]"},
		{"two primaries", "POST", "/Users", userBody("x", `"emails":[{"value":"a@b","primary":true},{"value":"c@d","primary":true}]`), nil, 400, "invalidValue", "primary"},
		{"missing userName", "POST", "/Users", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"]}`, nil, 400, "invalidValue", "userName"},
		{"duplicate userName", "POST", "/Users", userBody("ALICE@example.com", ""), nil, 409, "uniqueness", "userName"},
		{"duplicate group", "POST", "/Groups", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"engineering"}`, nil, 409, "uniqueness", "displayName"},
		{"unknown member", "POST", "/Groups", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"x","members":[{"value":"nope"}]}`, nil, 400, "invalidValue", `"nope"`},
		{"reserved attribute key", "POST", "/Users", userBody("x", `"urn:gatehouse:params:scim:schemas:extension:2.0:User":{"attributes":{"department":["x"]}}`), nil, 400, "invalidValue", "enterprise"},
		{"bad attribute key", "POST", "/Users", userBody("x", `"urn:gatehouse:params:scim:schemas:extension:2.0:User":{"attributes":{"a b":["x"]}}`), nil, 400, "invalidValue", "invalid key"},
		{"too large", "POST", "/Users", userBody("x", `"title":"`+strings.Repeat("a", 70<<10)+`"`), nil, 413, "", "larger than"},
		{"bad content type", "POST", "/Users", userBody("x", ""), []string{"Content-Type", "text/plain"}, 415, "", "Content-Type"},
		{"unknown user", "GET", "/Users/nope", "", nil, 404, "", `"nope"`},
		{"unknown group patch", "PATCH", "/Groups/nope", patch(`{"op":"add","path":"members","value":[{"value":"` + idBob + `"}]}`), nil, 404, "", "not found"},
		{"unknown endpoint", "GET", "/Widgets", "", nil, 404, "", "no SCIM endpoint"},
		{"wrong method", "DELETE", "/Users", "", nil, 405, "", "not allowed"},
		{"wrong method on config", "POST", "/ServiceProviderConfig", "{}", nil, 405, "", "not allowed"},
		{"bad filter", "GET", "/Users?filter=" + q(`userName eq`), "", nil, 400, "invalidFilter", "filter"},
		{"filter unknown attribute", "GET", "/Users?filter=" + q(`shoeSize gt "1"`), "", nil, 400, "invalidFilter", "shoeSize"},
		{"filter bool ordering", "GET", "/Users?filter=" + q(`active gt true`), "", nil, 400, "invalidFilter", "boolean"},
		{"patch bad op", "PATCH", "/Users/" + idAlice, patch(`{"op":"merge","path":"title","value":"x"}`), nil, 400, "invalidSyntax", "op"},
		{"patch no schemas", "PATCH", "/Users/" + idAlice, `{"Operations":[{"op":"add","path":"title","value":"x"}]}`, nil, 400, "invalidSyntax", "schemas"},
		{"patch no ops", "PATCH", "/Users/" + idAlice, patch(``), nil, 400, "invalidSyntax", "Operations"},
		{"patch bad path", "PATCH", "/Users/" + idAlice, patch(`{"op":"replace","path":"emails[type eq","value":"x"}`), nil, 400, "invalidPath", "invalid path"},
		{"patch unknown path", "PATCH", "/Users/" + idAlice, patch(`{"op":"replace","path":"shoeSize","value":"x"}`), nil, 400, "invalidPath", "shoeSize"},
		{"patch read-only", "PATCH", "/Users/" + idAlice, patch(`{"op":"replace","path":"id","value":"x"}`), nil, 400, "mutability", "read-only"},
		{"patch groups read-only", "PATCH", "/Users/" + idAlice, patch(`{"op":"add","path":"groups","value":[{"value":"` + idEng + `"}]}`), nil, 400, "mutability", "read-only"},
		{"patch remove no path", "PATCH", "/Users/" + idAlice, patch(`{"op":"remove"}`), nil, 400, "noTarget", "path"},
		{"patch no target", "PATCH", "/Users/" + idAlice, patch(`{"op":"replace","path":"emails[type eq \"home\" or type eq \"other\"].value","value":"x"}`), nil, 400, "noTarget", "matches"},
		{"patch remove userName", "PATCH", "/Users/" + idAlice, patch(`{"op":"remove","path":"userName"}`), nil, 400, "invalidValue", "userName"},
		{"patch wrong value type", "PATCH", "/Users/" + idAlice, patch(`{"op":"replace","path":"active","value":"maybe"}`), nil, 400, "invalidValue", "boolean"},
		{"patch pathless unknown", "PATCH", "/Users/" + idAlice, patch(`{"op":"replace","value":{"shoeSize":"x"}}`), nil, 400, "invalidSyntax", "shoeSize"},
		{"patch value missing", "PATCH", "/Users/" + idAlice, patch(`{"op":"add","path":"title"}`), nil, 400, "invalidValue", "value"},
		{"patch unknown op key", "PATCH", "/Users/" + idAlice, patch(`{"op":"add","path":"title","value":"x","extra":1}`), nil, 400, "invalidSyntax", "extra"},
		{"patch rename to taken", "PATCH", "/Users/" + idAlice, patch(`{"op":"replace","path":"userName","value":"BOB@example.com"}`), nil, 409, "uniqueness", "userName"},
		{"patch group cycle", "PATCH", "/Groups/" + idEng, patch(`{"op":"add","path":"members","value":[{"value":"` + idEng + `","type":"Group"}]}`), nil, 400, "invalidValue", "itself"},
		{"stale if-match", "PATCH", "/Users/" + idAlice, patch(`{"op":"replace","path":"title","value":"x"}`), []string{"If-Match", `W/"7"`}, 412, "", "version"},
		{"stale if-match put", "PUT", "/Groups/" + idEng, `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"x"}`, []string{"If-Match", `W/"2"`}, 412, "", "version"},
		{"stale if-match delete", "DELETE", "/Users/" + idAlice, "", []string{"If-Match", `W/"9"`}, 412, "", "version"},
		{"search across types", "POST", "/.search", `{}`, nil, 501, "", "not supported"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			beforeU, err := e.st.ListUsers(context.Background())
			require.NoError(t, err)
			beforeG, err := e.st.ListGroups(context.Background())
			require.NoError(t, err)
			e.audit.reset()

			r := e.do(tt.method, tt.path, tt.body, tt.headers...)
			require.Equal(t, tt.status, r.status, r.raw)
			require.Equal(t, []any{URNError}, r.body["schemas"])
			require.Equal(t, fmt.Sprint(tt.status), r.body["status"])
			if tt.scimType == "" {
				require.NotContains(t, r.body, "scimType")
			} else {
				require.Equal(t, tt.scimType, r.body["scimType"])
			}
			require.Contains(t, r.body["detail"], tt.detail)

			// Bad input changes nothing.
			afterU, err := e.st.ListUsers(context.Background())
			require.NoError(t, err)
			afterG, err := e.st.ListGroups(context.Background())
			require.NoError(t, err)
			require.Equal(t, beforeU, afterU)
			require.Equal(t, beforeG, afterG)

			// Rejected writes are audited as such; reads are not. A write
			// the store refused was audited first and then as not applied.
			evs := e.audit.all()
			switch {
			case tt.method == "GET" || tt.status >= 500:
				require.Empty(t, evs)
			case len(evs) == 2:
				require.Equal(t, evs[0].Code, evs[1].Code)
				require.Equal(t, []audit.Decision{audit.Allow, audit.Error}, []audit.Decision{evs[0].Decision, evs[1].Decision})
				require.Contains(t, evs[1].Reason, "not applied")
			default:
				require.Equal(t, []audit.Code{audit.CodeRequestRejected}, e.audit.codes())
				require.Equal(t, audit.Deny, evs[0].Decision)
			}
		})
	}
}

func TestAuth(t *testing.T) {
	e := newEnv(t)
	seedFixtures(e)
	tests := []struct {
		name   string
		auth   string
		status int
		code   audit.Code
	}{
		{"no token", "", 401, audit.CodeAuthDenied},
		{"basic auth", "Basic YWRtaW46YWRtaW4=", 401, audit.CodeAuthDenied},
		{"unknown token", "Bearer nope", 401, audit.CodeAuthDenied},
		{"authenticator error", "Bearer " + tokBroken, 500, audit.CodeAuthDenied},
		{"not allowed", "Bearer " + tokPlain, 403, audit.CodeAdminDenied},
		{"scim group member", "Bearer " + tokGroup, 200, ""},
	}
	for _, tt := range tests {
		for _, req := range []struct{ method, path, body string }{
			{"GET", "/Users", ""},
			{"GET", "/ServiceProviderConfig", ""},
			{"PATCH", "/Users/" + idAlice, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"active","value":false}]}`},
		} {
			t.Run(tt.name+" "+req.method+req.path, func(t *testing.T) {
				e.audit.reset()
				e.nextWindow() // each anonymous refusal here is the first of its window
				r := e.do(req.method, req.path, req.body, "Authorization", tt.auth)
				require.Equal(t, tt.status, r.status, r.raw)
				if tt.code == "" {
					return
				}
				require.Equal(t, []audit.Code{tt.code}, e.audit.codes())
				ev := e.audit.all()[0]
				require.NotEqual(t, audit.Allow, ev.Decision)
				require.Equal(t, "192.0.2.1", ev.Actor.SourceIP)
				require.Equal(t, "req-test-1", ev.RequestID)
				if tt.status == 401 {
					require.Equal(t, `Bearer realm="gatehouse-scim"`, r.header.Get("WWW-Authenticate"))
					require.NotContains(t, r.raw, "nope")
				}
				if tt.status == 403 {
					require.Equal(t, "u-plain", ev.Actor.UserID)
				}
				require.True(t, e.mustUser(idAlice).Active, "denied requests change nothing")
			})
		}
	}
	// The group member's change is attributed to it.
	e.audit.reset()
	r := e.do("PATCH", "/Users/"+idAlice, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"title","value":"x"}]}`,
		"Authorization", "Bearer "+tokGroup)
	require.Equal(t, 200, r.status, r.raw)
	require.Equal(t, "okta-scim", e.audit.all()[0].Actor.User)
}

// writeCounter counts the store writes the SCIM handler makes.
type writeCounter struct {
	store.Store
	writes atomic.Int64
}

func (w *writeCounter) CreateUser(ctx context.Context, u *store.User) error {
	w.writes.Add(1)
	return w.Store.CreateUser(ctx, u)
}

func (w *writeCounter) UpdateUser(ctx context.Context, u *store.User) error {
	w.writes.Add(1)
	return w.Store.UpdateUser(ctx, u)
}

func (w *writeCounter) DeleteUser(ctx context.Context, id string) error {
	w.writes.Add(1)
	return w.Store.DeleteUser(ctx, id)
}

func (w *writeCounter) CreateGroup(ctx context.Context, g *store.Group) error {
	w.writes.Add(1)
	return w.Store.CreateGroup(ctx, g)
}

func (w *writeCounter) UpdateGroup(ctx context.Context, g *store.Group) error {
	w.writes.Add(1)
	return w.Store.UpdateGroup(ctx, g)
}

func (w *writeCounter) DeleteGroup(ctx context.Context, id string) error {
	w.writes.Add(1)
	return w.Store.DeleteGroup(ctx, id)
}

// TestAuditFailure proves issue 11 finding 7: SCIM records every change
// before it makes it (audit before effect, like the REST API). With the
// audit log failing, every kind of SCIM write answers 500 and never
// reaches the store: nothing is written and undone, nothing deleted.
func TestAuditFailure(t *testing.T) {
	wc := &writeCounter{}
	e := newEnvWith(t, func(s store.Store) store.Store { wc.Store = s; return wc })
	seedFixtures(e)
	e.audit.fail.Store(true)
	before := e.mustUser(idAlice)
	beforeG := e.mustGroup(idEng)

	for _, req := range []struct{ method, path, body, auth string }{
		{"POST", "/Users", userBody("new@example.com", ""), tokAdmin},
		{"PATCH", "/Users/" + idAlice, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"active":false}}]}`, tokAdmin},
		{"PUT", "/Users/" + idAlice, userBody("alice@example.com", `"title":"CEO"`), tokAdmin},
		{"DELETE", "/Users/" + idAlice, "", tokAdmin},
		{"POST", "/Groups", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"New"}`, tokAdmin},
		{"PATCH", "/Groups/" + idEng, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"add","path":"members","value":[{"value":"` + idBob + `"}]}]}`, tokAdmin},
		{"PUT", "/Groups/" + idEng, `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"Renamed"}`, tokAdmin},
		{"DELETE", "/Groups/" + idEng, "", tokAdmin},
		{"POST", "/Users", `{"bad json`, tokAdmin},
		{"GET", "/Users", "", "nope"},
		{"GET", "/Users", "", tokPlain},
	} {
		r := e.do(req.method, req.path, req.body, "Authorization", "Bearer "+req.auth)
		require.Equal(t, 500, r.status, "%s %s: %s", req.method, req.path, r.raw)
		require.Equal(t, "500", r.body["status"])
		require.Contains(t, r.body["detail"], "req-test-1")
	}
	require.Zero(t, wc.writes.Load(), "no write may reach the store before its audit event is recorded")
	_, err := e.st.GetUserByName(context.Background(), "new@example.com")
	require.ErrorIs(t, err, store.ErrNotFound)
	_, err = e.st.GetGroupByName(context.Background(), "New")
	require.ErrorIs(t, err, store.ErrNotFound)
	after := e.mustUser(idAlice)
	require.Equal(t, before.Revision, after.Revision)
	require.True(t, sameUser(before, after))
	afterG := e.mustGroup(idEng)
	require.Equal(t, beforeG.Revision, afterG.Revision)
	require.Equal(t, beforeG.DisplayName, afterG.DisplayName)
	require.Equal(t, memberSet(beforeG), memberSet(afterG))
}

// TestWriteThatFailsIsRecordedAsNotApplied: a write audited first that the
// store then refuses is recorded a second time, as not applied.
func TestWriteThatFailsIsRecordedAsNotApplied(t *testing.T) {
	e := newEnv(t)
	seedFixtures(e)
	e.audit.reset()
	r := e.do("POST", "/Users", userBody("ALICE@example.com", ""))
	require.Equal(t, 409, r.status, r.raw)
	evs := e.audit.all()
	require.Len(t, evs, 2)
	require.Equal(t, audit.CodeUserCreated, evs[0].Code)
	require.Equal(t, audit.Allow, evs[0].Decision)
	require.Equal(t, audit.CodeUserCreated, evs[1].Code)
	require.Equal(t, audit.Error, evs[1].Decision)
	require.Contains(t, evs[1].Reason, "not applied")
	require.Equal(t, evs[0].Resource, evs[1].Resource)
}

// TestConcurrentMemberAdds: parallel PATCH add-member on one group all land.
func TestConcurrentMemberAdds(t *testing.T) {
	e := newEnv(t)
	g := e.seedGroup("", "Busy")
	const n = 12
	var ids []string
	for i := range n {
		ids = append(ids, e.seedUser("", fmt.Sprintf("c%d@example.com", i)).ID)
	}
	var wg sync.WaitGroup
	statuses := make([]int, n)
	for i, id := range ids {
		wg.Go(func() {
			r := e.do("PATCH", "/Groups/"+g.ID, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
				"Operations":[{"op":"Add","path":"members","value":[{"value":"`+id+`"}]}]}`)
			statuses[i] = r.status
		})
	}
	wg.Wait()
	for _, s := range statuses {
		require.Equal(t, 204, s)
	}
	require.ElementsMatch(t, ids, memberSet(e.mustGroup(g.ID)))
	// Each write attempt is audited first; one that lost a revision race
	// is recorded again as not applied and retried.
	applied := 0
	for _, ev := range e.audit.all() {
		switch ev.Decision {
		case audit.Allow:
			applied++
		case audit.Error:
			applied--
		}
	}
	require.Equal(t, n, applied)
}

func TestPutKeepsWhatSCIMDoesNotManage(t *testing.T) {
	e := newEnv(t)
	u := e.seedUser("", "svc@example.com", func(u *store.User) {
		u.Kind = store.KindService
		u.PasswordHash = "$argon2id$v=19$m=65536,t=1,p=4$c2FsdA$aGFzaA"
		u.Active = false
	})
	r := e.do("PUT", "/Users/"+u.ID, userBody("svc@example.com", `"displayName":"Service"`))
	require.Equal(t, 200, r.status, r.raw)
	require.NotContains(t, r.raw, "argon2id")
	got := e.mustUser(u.ID)
	require.Equal(t, store.KindService, got.Kind)
	require.Equal(t, u.PasswordHash, got.PasswordHash)
	require.False(t, got.Active, "PUT without active keeps it")
	require.Equal(t, "Service", got.DisplayName)
}

func TestNew(t *testing.T) {
	_, err := New(Options{})
	require.Error(t, err)
	st := newEnv(t).st
	for _, b := range []string{"", "/scim/v2", "ftp://x/scim", "https://x/scim?x=1"} {
		_, err := New(Options{Store: st, Audit: &recorder{}, Auth: tokenAuth{}, BaseURL: b})
		require.Error(t, err, b)
	}
	_, err = New(Options{Store: st, Audit: &recorder{}, Auth: tokenAuth{}, BaseURL: "http://localhost:8080/scim/v2"})
	require.Error(t, err, "Privileged is required")
	_, err = New(Options{Store: st, Audit: &recorder{}, Auth: tokenAuth{}, BaseURL: "http://localhost:8080/scim/v2",
		Privileged: func(context.Context, string) (bool, error) { return false, nil }})
	require.NoError(t, err)
}

// TestPrivilegedPrincipalsAreNotSCIMManaged is part of issue 11 finding 2:
// SCIM cannot rename, disable, change or delete a principal that holds a
// gatehouse privilege (renaming an admin to a name an attacker signs in
// with, or disabling the last admin); each attempt is a SCIM 403 that is
// audited and changes nothing. Reads still work.
func TestPrivilegedPrincipalsAreNotSCIMManaged(t *testing.T) {
	e := newEnv(t)
	admin := e.seedUser("u-root", "root")
	e.privileged.Store(admin.ID, true)
	patch := `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"%s","value":%s}]}`
	for _, tt := range []struct{ name, method, body string }{
		{"rename", "PATCH", fmt.Sprintf(patch, "userName", `"mallory"`)},
		{"disable", "PATCH", fmt.Sprintf(patch, "active", "false")},
		{"set attributes", "PATCH", fmt.Sprintf(patch, "emails", `[{"value":"mallory@evil.example","primary":true}]`)},
		{"replace", "PUT", userBody("mallory", "")},
		{"delete", "DELETE", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e.audit.reset()
			r := e.do(tt.method, "/Users/"+admin.ID, tt.body, "Authorization", "Bearer "+tokGroup)
			require.Equal(t, 403, r.status, r.raw)
			require.Equal(t, "403", r.body["status"])
			require.Equal(t, []audit.Code{audit.CodeRequestRejected}, e.audit.codes())
			got := e.mustUser(admin.ID)
			require.Equal(t, admin.Revision, got.Revision)
			require.Equal(t, "root", got.UserName)
		})
	}
	r := e.do("GET", "/Users/"+admin.ID, "", "Authorization", "Bearer "+tokGroup)
	require.Equal(t, 200, r.status, r.raw)
}

// TestChunkedBodyLimit: a body without Content-Length is cut at MaxBodyBytes.
func TestChunkedBodyLimit(t *testing.T) {
	e := newEnv(t)
	body := userBody("big@example.com", `"title":"`+strings.Repeat("a", 70<<10)+`"`)
	r := httptest.NewRequest("POST", "/scim/v2/Users", io.NopCloser(strings.NewReader(body)))
	r.ContentLength = -1
	r.Header.Set("Authorization", "Bearer "+tokAdmin)
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	require.Equal(t, 413, w.Code, w.Body.String())
	_, err := e.st.GetUserByName(context.Background(), "big@example.com")
	require.ErrorIs(t, err, store.ErrNotFound)
}

func (w *writeCounter) PatchGroupMembers(ctx context.Context, id string, rev int64, add, remove []store.Member) (*store.GroupPatch, error) {
	w.writes.Add(1)
	return w.Store.(store.GroupMemberStore).PatchGroupMembers(ctx, id, rev, add, remove)
}
