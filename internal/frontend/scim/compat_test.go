package scim

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// Fixed ids used by the fixtures in testdata/.
const (
	idAlice = "6d3f2a9e-0c41-4b7a-9a55-1f0e2d3c4b5a"
	idBob   = "8e1b7c6d-2f3a-4e5b-8c9d-0a1b2c3d4e5f"
	idCarol = "c5d4e3f2-a1b0-4c9d-8e7f-6a5b4c3d2e1f"
	idEng   = "3b2f1e0d-9c8b-4a7f-8e6d-5c4b3a2f1e0d"
)

// seedFixtures creates alice (work email), bob, carol (no email) and the
// group Engineering with alice as its only member.
func seedFixtures(e *env) {
	e.seedUser(idAlice, "alice@example.com", func(u *store.User) {
		u.GivenName, u.FamilyName = "Alice", "Example"
		u.Emails = []store.Email{{Value: "alice@example.com", Type: "work", Primary: true}}
	})
	e.seedUser(idBob, "bob@example.com")
	e.seedUser(idCarol, "carol@example.com")
	e.seedGroup(idEng, "Engineering", store.Member{ID: idAlice, Type: store.MemberUser})
}

// TestClientFixtures replays the request bodies Okta and Microsoft Entra ID
// document for their SCIM 2.0 clients (testdata/okta-*.json,
// testdata/entra-*.json) and checks the stored state.
func TestClientFixtures(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		file   string
		method string
		path   string
		setup  func(e *env)
		status int
		code   audit.Code
		check  func(t *testing.T, e *env)
	}{
		{
			file: "okta-create-user.json", method: http.MethodPost, path: "/Users",
			status: http.StatusCreated, code: audit.CodeUserCreated,
			check: func(t *testing.T, e *env) {
				u, err := e.st.GetUserByName(ctx, "TEST.USER@okta.local")
				require.NoError(t, err)
				require.Equal(t, "Test", u.GivenName)
				require.Equal(t, "User", u.FamilyName)
				require.Equal(t, "Test User", u.DisplayName)
				require.Equal(t, "00ujl29u0le5T6Aj10h7", u.ExternalID)
				require.True(t, u.Active)
				require.Equal(t, store.KindUser, u.Kind)
				require.Equal(t, []store.Email{{Value: "test.user@okta.local", Type: "work", Primary: true}}, u.Emails)
				require.Empty(t, u.PasswordHash, "SCIM passwords are ignored")
				require.Empty(t, u.Attributes)
			},
		},
		{
			file: "okta-replace-user.json", method: http.MethodPut, path: "/Users/" + idAlice,
			status: http.StatusOK, code: audit.CodeUserUpdated,
			check: func(t *testing.T, e *env) {
				u := e.mustUser(idAlice)
				require.Equal(t, "Another", u.GivenName)
				require.Equal(t, "Another User", u.DisplayName)
				require.Equal(t, "00u1dhhb1fkIGP7RL1d8", u.ExternalID)
				require.True(t, u.Active)
				require.Equal(t, int64(2), u.Revision)
			},
		},
		{
			file: "okta-deactivate-user.json", method: http.MethodPatch, path: "/Users/" + idAlice,
			status: http.StatusOK, code: audit.CodeUserDisabled,
			check: func(t *testing.T, e *env) {
				u := e.mustUser(idAlice)
				require.False(t, u.Active)
				require.Equal(t, "alice@example.com", u.UserName)
				require.Len(t, u.Emails, 1)
			},
		},
		{
			file: "okta-reactivate-user.json", method: http.MethodPatch, path: "/Users/" + idAlice,
			setup: func(e *env) {
				u := e.mustUser(idAlice)
				u.Active = false
				require.NoError(t, e.st.UpdateUser(ctx, u))
			},
			status: http.StatusOK, code: audit.CodeUserUpdated,
			check: func(t *testing.T, e *env) { require.True(t, e.mustUser(idAlice).Active) },
		},
		{
			file: "okta-create-group.json", method: http.MethodPost, path: "/Groups",
			status: http.StatusCreated, code: audit.CodeGroupCreated,
			check: func(t *testing.T, e *env) {
				g, err := e.st.GetGroupByName(ctx, "test scimv2")
				require.NoError(t, err)
				require.Empty(t, g.Members)
			},
		},
		{
			file: "okta-rename-group.json", method: http.MethodPatch, path: "/Groups/" + idEng,
			status: http.StatusNoContent, code: audit.CodeGroupUpdated,
			check: func(t *testing.T, e *env) {
				g := e.mustGroup(idEng)
				require.Equal(t, "Engineering Renamed", g.DisplayName)
				require.Equal(t, []string{idAlice}, memberSet(g))
			},
		},
		{
			file: "okta-group-add-members.json", method: http.MethodPatch, path: "/Groups/" + idEng,
			status: http.StatusNoContent, code: audit.CodeGroupUpdated,
			check: func(t *testing.T, e *env) {
				require.ElementsMatch(t, []string{idAlice, idBob}, memberSet(e.mustGroup(idEng)))
			},
		},
		{
			file: "okta-group-remove-member.json", method: http.MethodPatch, path: "/Groups/" + idEng,
			status: http.StatusNoContent, code: audit.CodeGroupUpdated,
			check: func(t *testing.T, e *env) { require.Empty(t, e.mustGroup(idEng).Members) },
		},
		{
			file: "okta-group-replace-members.json", method: http.MethodPatch, path: "/Groups/" + idEng,
			status: http.StatusNoContent, code: audit.CodeGroupUpdated,
			check: func(t *testing.T, e *env) {
				require.ElementsMatch(t, []string{idBob, idCarol}, memberSet(e.mustGroup(idEng)))
			},
		},
		{
			file: "okta-replace-group.json", method: http.MethodPut, path: "/Groups/" + idEng,
			status: http.StatusOK, code: audit.CodeGroupUpdated,
			check: func(t *testing.T, e *env) {
				g := e.mustGroup(idEng)
				require.Equal(t, "Engineering", g.DisplayName)
				require.Equal(t, []string{idCarol}, memberSet(g))
			},
		},
		{
			file: "entra-create-user.json", method: http.MethodPost, path: "/Users",
			status: http.StatusCreated, code: audit.CodeUserCreated,
			check: func(t *testing.T, e *env) {
				u, err := e.st.GetUserByName(ctx, "Test_User_ab6490ee@contoso.com")
				require.NoError(t, err)
				require.Equal(t, "givenName", u.GivenName)
				require.Equal(t, "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef", u.ExternalID)
				require.Equal(t, map[string][]string{
					"department": {"Sales"}, "employeeNumber": {"100009"}, "manager": {idBob},
				}, u.Attributes)
			},
		},
		{
			file: "entra-update-user-multi.json", method: http.MethodPatch, path: "/Users/" + idAlice,
			status: http.StatusOK, code: audit.CodeUserUpdated,
			check: func(t *testing.T, e *env) {
				u := e.mustUser(idAlice)
				require.Equal(t, []store.Email{{Value: "updatedEmail@contoso.com", Type: "work", Primary: true}}, u.Emails)
				require.Equal(t, "updatedFamilyName", u.FamilyName)
				require.Equal(t, "Alice", u.GivenName)
			},
		},
		{
			file: "entra-update-user-single.json", method: http.MethodPatch, path: "/Users/" + idAlice,
			status: http.StatusOK, code: audit.CodeUserUpdated,
			check: func(t *testing.T, e *env) {
				require.Equal(t, "alice.renamed@contoso.com", e.mustUser(idAlice).UserName)
			},
		},
		{
			file: "entra-disable-user.json", method: http.MethodPatch, path: "/Users/" + idAlice,
			status: http.StatusOK, code: audit.CodeUserDisabled,
			check: func(t *testing.T, e *env) { require.False(t, e.mustUser(idAlice).Active) },
		},
		{
			file: "entra-disable-user-string.json", method: http.MethodPatch, path: "/Users/" + idAlice,
			status: http.StatusOK, code: audit.CodeUserDisabled,
			check: func(t *testing.T, e *env) { require.False(t, e.mustUser(idAlice).Active) },
		},
		{
			file: "entra-pathless-replace.json", method: http.MethodPatch, path: "/Users/" + idAlice,
			status: http.StatusOK, code: audit.CodeUserUpdated,
			check: func(t *testing.T, e *env) {
				u := e.mustUser(idAlice)
				require.Equal(t, "Alice Liddell", u.DisplayName)
				require.Equal(t, "Alice", u.GivenName)
				require.Equal(t, "Liddell", u.FamilyName)
				require.Equal(t, "a-ext-2", u.ExternalID)
				require.True(t, u.Active)
				require.Equal(t, []store.Email{{Value: "alice.liddell@contoso.com", Type: "work", Primary: true}}, u.Emails)
				require.Equal(t, map[string][]string{"employeeNumber": {"4242"}}, u.Attributes)
			},
		},
		{
			file: "entra-enterprise-department.json", method: http.MethodPatch, path: "/Users/" + idAlice,
			status: http.StatusOK, code: audit.CodeUserUpdated,
			check: func(t *testing.T, e *env) {
				u := e.mustUser(idAlice)
				require.Equal(t, map[string][]string{"department": {"IT"}, "manager": {idBob}}, u.Attributes)
				require.Equal(t, "Engineer", u.Title)
			},
		},
		{
			file: "entra-add-work-email.json", method: http.MethodPatch, path: "/Users/" + idCarol,
			status: http.StatusOK, code: audit.CodeUserUpdated,
			check: func(t *testing.T, e *env) {
				require.Equal(t, []store.Email{{Value: "alice@contoso.com", Type: "work"}}, e.mustUser(idCarol).Emails)
			},
		},
		{
			file: "entra-create-group.json", method: http.MethodPost, path: "/Groups",
			status: http.StatusCreated, code: audit.CodeGroupCreated,
			check: func(t *testing.T, e *env) {
				g, err := e.st.GetGroupByName(ctx, "Entra Group")
				require.NoError(t, err)
				require.Equal(t, "8aa1a0c0-c4c3-4bc0-b4a5-2ef676900159", g.ExternalID)
			},
		},
		{
			file: "entra-group-rename.json", method: http.MethodPatch, path: "/Groups/" + idEng,
			status: http.StatusNoContent, code: audit.CodeGroupUpdated,
			check: func(t *testing.T, e *env) {
				require.Equal(t, "Engineering (Entra)", e.mustGroup(idEng).DisplayName)
			},
		},
		{
			file: "entra-group-add-member.json", method: http.MethodPatch, path: "/Groups/" + idEng,
			status: http.StatusNoContent, code: audit.CodeGroupUpdated,
			check: func(t *testing.T, e *env) {
				require.ElementsMatch(t, []string{idAlice, idCarol}, memberSet(e.mustGroup(idEng)))
			},
		},
		{
			file: "entra-group-remove-member.json", method: http.MethodPatch, path: "/Groups/" + idEng,
			status: http.StatusNoContent, code: audit.CodeGroupUpdated,
			check: func(t *testing.T, e *env) { require.Empty(t, e.mustGroup(idEng).Members) },
		},
		{
			file: "entra-group-remove-member-filter.json", method: http.MethodPatch, path: "/Groups/" + idEng,
			setup: func(e *env) {
				g := e.mustGroup(idEng)
				g.Members = append(g.Members, store.Member{ID: idBob, Type: store.MemberUser})
				require.NoError(t, e.st.UpdateGroup(ctx, g))
			},
			status: http.StatusNoContent, code: audit.CodeGroupUpdated,
			check: func(t *testing.T, e *env) {
				require.Equal(t, []string{idAlice}, memberSet(e.mustGroup(idEng)))
			},
		},
		{
			file: "gatehouse-attributes.json", method: http.MethodPatch, path: "/Users/" + idAlice,
			status: http.StatusOK, code: audit.CodeUserUpdated,
			check: func(t *testing.T, e *env) {
				require.Equal(t, map[string][]string{"region": {"EU", "US"}, "purpose": {"fraud", "audit"}},
					e.mustUser(idAlice).Attributes)
			},
		},
	}
	files, err := filepath.Glob("testdata/*.json")
	require.NoError(t, err)
	covered := map[string]bool{}
	for _, tt := range tests {
		covered[filepath.Join("testdata", tt.file)] = true
		t.Run(tt.file, func(t *testing.T) {
			e := newEnv(t)
			seedFixtures(e)
			if tt.setup != nil {
				tt.setup(e)
			}
			body, err := os.ReadFile(filepath.Join("testdata", tt.file))
			require.NoError(t, err)
			r := e.do(tt.method, tt.path, string(body), "User-Agent", "Microsoft.Identity.Provisioning.Service")
			require.Equal(t, tt.status, r.status, r.raw)
			require.Equal(t, []audit.Code{tt.code}, e.audit.codes())
			ev := e.audit.all()[0]
			require.Equal(t, audit.Allow, ev.Decision)
			require.Equal(t, "u-admin", ev.Actor.UserID)
			require.Equal(t, "req-test-1", ev.RequestID)
			require.Equal(t, "Microsoft.Identity.Provisioning.Service", ev.Actor.UserAgent)
			require.Equal(t, "192.0.2.1", ev.Actor.SourceIP)
			require.NotEmpty(t, r.header.Get("ETag"))
			tt.check(t, e)

			// Replaying the same request is harmless: the state stays the
			// same (creates are refused as duplicates).
			r2 := e.do(tt.method, tt.path, string(body))
			if tt.method == http.MethodPost {
				require.Equal(t, http.StatusConflict, r2.status, r2.raw)
				require.Equal(t, "uniqueness", r2.body["scimType"])
			} else {
				require.Equal(t, tt.status, r2.status, r2.raw)
			}
			tt.check(t, e)
		})
	}
	for _, f := range files {
		require.True(t, covered[f], "fixture %s has no test case", f)
	}
}
