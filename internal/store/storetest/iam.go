package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

const (
	trustDoc = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::000000000000:saml-provider/okta"},"Action":"sts:AssumeRoleWithSAML"}]}`
	readDoc  = `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::lake/*"}}`
)

func newRole(t *testing.T, s store.Store, name string) *store.Role {
	t.Helper()
	r := &store.Role{Name: name, TrustPolicy: trustDoc}
	require.NoError(t, s.CreateRole(ctx(t), r))
	return r
}

func testRoleCRUD(t *testing.T, s store.Store) {
	before := time.Now().Add(-time.Second)
	// Whitespace, key order and non-ASCII text in documents survive byte for byte.
	trust := "{\n  \"Version\": \"2012-10-17\",\n  \"Statement\": [{\"Effect\": \"Allow\", \"Principal\": {\"AWS\": \"*\"}, \"Action\": \"sts:AssumeRole\", \"Sid\": \"Grüße\"}]\n}"
	r := &store.Role{
		Name:        "Data-Engineer",
		Path:        "/eng/data/",
		Description: "Reads the lake",
		TrustPolicy: trust,
		PermissionPolicies: []store.NamedPolicy{
			{Name: "zeta-read", Document: readDoc},
			{Name: "alpha", Document: `{"Statement":[{"Effect":"Deny","Action":"*","Resource":"*"}]}`},
		},
		PermissionsBoundary: readDoc,
		MaxSessionDuration:  7200,
		Tags:                map[string]string{"team": "data", "Team": "other", "empty": ""},
	}
	require.NoError(t, s.CreateRole(ctx(t), r))
	_, err := uuid.Parse(r.ID)
	require.NoError(t, err, "generated id must be a uuid")
	require.Equal(t, int64(1), r.Revision)
	require.True(t, r.CreatedAt.After(before), "CreatedAt %v", r.CreatedAt)
	require.Equal(t, time.UTC, r.CreatedAt.Location())
	require.True(t, r.UpdatedAt.Equal(r.CreatedAt))
	require.Equal(t, "arn:aws:iam::123456789012:role/eng/data/Data-Engineer", r.ARN("123456789012"))

	got, err := s.GetRole(ctx(t), r.ID)
	require.NoError(t, err)
	requireEqual(t, r, got)
	require.Equal(t, trust, got.TrustPolicy, "documents are kept verbatim")
	got, err = s.GetRoleByName(ctx(t), "data-ENGINEER")
	require.NoError(t, err)
	requireEqual(t, r, got)
	p, ok := got.Policy("ALPHA")
	require.True(t, ok)
	require.Equal(t, "alpha", p.Name)

	// Defaults: path "/", one hour; empty lists and maps are nil.
	minimal := &store.Role{Name: "minimal", TrustPolicy: trustDoc, PermissionPolicies: []store.NamedPolicy{}, Tags: map[string]string{}}
	require.NoError(t, s.CreateRole(ctx(t), minimal))
	require.Equal(t, store.DefaultRolePath, minimal.Path)
	require.Equal(t, store.DefaultMaxSessionDuration, minimal.MaxSessionDuration)
	require.Nil(t, minimal.PermissionPolicies)
	require.Nil(t, minimal.Tags)
	require.Equal(t, "arn:aws:iam::000000000000:role/minimal", minimal.ARN("000000000000"))
	gotMin, err := s.GetRole(ctx(t), minimal.ID)
	require.NoError(t, err)
	requireEqual(t, minimal, gotMin)

	list, err := s.ListRoles(ctx(t))
	require.NoError(t, err)
	requireEqual(t, []*store.Role{r, minimal}, list)

	// Update replaces every field, inline policies included, and bumps the revision.
	got.Description = ""
	got.TrustPolicy = trustDoc
	got.PermissionPolicies = []store.NamedPolicy{{Name: "alpha", Document: readDoc}}
	got.PermissionsBoundary = ""
	got.MaxSessionDuration = 43200
	got.Tags = nil
	require.NoError(t, s.UpdateRole(ctx(t), got))
	require.Equal(t, int64(2), got.Revision)
	require.True(t, got.CreatedAt.Equal(r.CreatedAt))
	require.False(t, got.UpdatedAt.Before(r.UpdatedAt))
	again, err := s.GetRole(ctx(t), r.ID)
	require.NoError(t, err)
	requireEqual(t, got, again)

	// Renaming onto a taken name (case-insensitively) fails and changes nothing.
	clash := *again
	clash.Name = "MINIMAL"
	requireIs(t, s.UpdateRole(ctx(t), &clash), store.ErrAlreadyExists)
	cur, err := s.GetRole(ctx(t), r.ID)
	require.NoError(t, err)
	requireEqual(t, again, cur)

	require.NoError(t, s.DeleteRole(ctx(t), r.ID))
	_, err = s.GetRole(ctx(t), r.ID)
	requireIs(t, err, store.ErrNotFound)
	_, err = s.GetRoleByName(ctx(t), r.Name)
	requireIs(t, err, store.ErrNotFound)
	requireIs(t, s.DeleteRole(ctx(t), r.ID), store.ErrNotFound)
	requireIs(t, s.UpdateRole(ctx(t), again), store.ErrNotFound)
	list, err = s.ListRoles(ctx(t))
	require.NoError(t, err)
	requireEqual(t, []*store.Role{minimal}, list)

	// The name is free again.
	newRole(t, s, "data-engineer")
}

func testRoleValidation(t *testing.T, s store.Store) {
	for _, r := range []*store.Role{
		{TrustPolicy: trustDoc},
		{Name: "r1"}, // no trust policy
		{Name: "r2", TrustPolicy: trustDoc, PermissionPolicies: []store.NamedPolicy{{Document: readDoc}}},
		{Name: "r3", TrustPolicy: trustDoc, PermissionPolicies: []store.NamedPolicy{{Name: "p", Document: readDoc}, {Name: "P", Document: readDoc}}},
		{Name: "r4", TrustPolicy: trustDoc, PermissionPolicies: []store.NamedPolicy{{Name: "p", Document: readDoc}, {Name: "p", Document: readDoc}}},
	} {
		requireIs(t, s.CreateRole(ctx(t), r), store.ErrInvalid)
	}
	roles, err := s.ListRoles(ctx(t))
	require.NoError(t, err)
	require.Empty(t, roles)

	r := &store.Role{ID: "my-role-id", Name: "Deployer", TrustPolicy: trustDoc}
	require.NoError(t, s.CreateRole(ctx(t), r))
	require.Equal(t, "my-role-id", r.ID)
	requireIs(t, s.CreateRole(ctx(t), &store.Role{ID: "my-role-id", Name: "other", TrustPolicy: trustDoc}), store.ErrAlreadyExists)
	err = s.CreateRole(ctx(t), &store.Role{Name: "dEPLOYER", TrustPolicy: trustDoc})
	requireIs(t, err, store.ErrAlreadyExists)
	require.Contains(t, err.Error(), "dEPLOYER", "error names the role")

	// An invalid update changes nothing.
	cur, err := s.GetRole(ctx(t), r.ID)
	require.NoError(t, err)
	upd := *cur
	upd.TrustPolicy = ""
	requireIs(t, s.UpdateRole(ctx(t), &upd), store.ErrInvalid)
	got, err := s.GetRole(ctx(t), r.ID)
	require.NoError(t, err)
	requireEqual(t, cur, got)

	_, err = s.GetRole(ctx(t), "nope")
	requireIs(t, err, store.ErrNotFound)
	_, err = s.GetRoleByName(ctx(t), "nope")
	requireIs(t, err, store.ErrNotFound)
}

func testRoleRevisionConflict(t *testing.T, s store.Store) {
	r := newRole(t, s, "contended")
	a, err := s.GetRole(ctx(t), r.ID)
	require.NoError(t, err)
	b, err := s.GetRole(ctx(t), r.ID)
	require.NoError(t, err)

	a.PermissionPolicies = []store.NamedPolicy{{Name: "from-a", Document: readDoc}}
	require.NoError(t, s.UpdateRole(ctx(t), a))
	b.PermissionPolicies = []store.NamedPolicy{{Name: "from-b", Document: readDoc}}
	requireIs(t, s.UpdateRole(ctx(t), b), store.ErrConflict)
	require.Equal(t, int64(1), b.Revision, "a failed update leaves the record's revision alone")

	got, err := s.GetRole(ctx(t), r.ID)
	require.NoError(t, err)
	requireEqual(t, a, got)

	got.Revision = 0
	requireIs(t, s.UpdateRole(ctx(t), got), store.ErrConflict)
}

// testConcurrentRolePolicyPuts has writers each attach their own inline
// policy to one role with read-modify-write cycles, retrying on
// ErrConflict. Every policy must survive.
func testConcurrentRolePolicyPuts(t *testing.T, s store.Store) {
	const writers = 6
	r := newRole(t, s, "shared")
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				cur, err := s.GetRole(context.Background(), r.ID)
				if err != nil {
					errs <- err
					return
				}
				cur.PermissionPolicies = append(cur.PermissionPolicies, store.NamedPolicy{Name: fmt.Sprint("p", i), Document: readDoc})
				err = s.UpdateRole(context.Background(), cur)
				if errors.Is(err, store.ErrConflict) {
					continue
				}
				if err != nil {
					errs <- err
				}
				return
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	got, err := s.GetRole(ctx(t), r.ID)
	require.NoError(t, err)
	require.Len(t, got.PermissionPolicies, writers, "lost update")
	require.Equal(t, int64(1+writers), got.Revision)
}

func testSAMLProviderCRUD(t *testing.T, s store.Store) {
	md := `<EntityDescriptor xmlns="urn:oasis:names:tc:SAML:2.0:metadata" entityID="http://www.okta.com/exk1"/>`
	p := &store.SAMLProvider{Name: "Okta", MetadataXML: md, EntityID: "http://www.okta.com/exk1"}
	require.NoError(t, s.CreateSAMLProvider(ctx(t), p))
	_, err := uuid.Parse(p.ID)
	require.NoError(t, err)
	require.Equal(t, int64(1), p.Revision)
	require.Equal(t, time.UTC, p.CreatedAt.Location())
	require.Equal(t, "arn:aws:iam::000000000000:saml-provider/Okta", p.ARN("000000000000"))

	for _, get := range []func() (*store.SAMLProvider, error){
		func() (*store.SAMLProvider, error) { return s.GetSAMLProvider(ctx(t), p.ID) },
		func() (*store.SAMLProvider, error) { return s.GetSAMLProviderByName(ctx(t), "OKTA") },
		func() (*store.SAMLProvider, error) {
			return s.GetSAMLProviderByEntityID(ctx(t), "http://www.okta.com/exk1")
		},
	} {
		got, err := get()
		require.NoError(t, err)
		requireEqual(t, p, got)
	}
	_, err = s.GetSAMLProviderByEntityID(ctx(t), "http://www.okta.com/EXK1")
	requireIs(t, err, store.ErrNotFound) // entity ids are exact

	q := &store.SAMLProvider{Name: "entra", MetadataXML: md, EntityID: "https://sts.windows.net/t/"}
	require.NoError(t, s.CreateSAMLProvider(ctx(t), q))
	list, err := s.ListSAMLProviders(ctx(t))
	require.NoError(t, err)
	requireEqual(t, []*store.SAMLProvider{p, q}, list)

	requireIs(t, s.CreateSAMLProvider(ctx(t), &store.SAMLProvider{Name: "okta", MetadataXML: md, EntityID: "x"}), store.ErrAlreadyExists)
	requireIs(t, s.CreateSAMLProvider(ctx(t), &store.SAMLProvider{Name: "other", MetadataXML: md, EntityID: p.EntityID}), store.ErrAlreadyExists)
	requireIs(t, s.CreateSAMLProvider(ctx(t), &store.SAMLProvider{ID: p.ID, Name: "other", MetadataXML: md, EntityID: "y"}), store.ErrAlreadyExists)
	for _, bad := range []*store.SAMLProvider{
		{MetadataXML: md, EntityID: "z1"},
		{Name: "n2", EntityID: "z2"},
		{Name: "n3", MetadataXML: md},
	} {
		requireIs(t, s.CreateSAMLProvider(ctx(t), bad), store.ErrInvalid)
	}

	// Update: new metadata and entity id; stale revisions conflict.
	stale := *p
	p.MetadataXML = md + "\n"
	p.EntityID = "http://www.okta.com/exk2"
	require.NoError(t, s.UpdateSAMLProvider(ctx(t), p))
	require.Equal(t, int64(2), p.Revision)
	got, err := s.GetSAMLProviderByEntityID(ctx(t), "http://www.okta.com/exk2")
	require.NoError(t, err)
	requireEqual(t, p, got)
	_, err = s.GetSAMLProviderByEntityID(ctx(t), "http://www.okta.com/exk1")
	requireIs(t, err, store.ErrNotFound)
	requireIs(t, s.UpdateSAMLProvider(ctx(t), &stale), store.ErrConflict)
	clash := *got
	clash.EntityID = q.EntityID
	requireIs(t, s.UpdateSAMLProvider(ctx(t), &clash), store.ErrAlreadyExists)

	require.NoError(t, s.DeleteSAMLProvider(ctx(t), p.ID))
	_, err = s.GetSAMLProvider(ctx(t), p.ID)
	requireIs(t, err, store.ErrNotFound)
	requireIs(t, s.DeleteSAMLProvider(ctx(t), p.ID), store.ErrNotFound)
	requireIs(t, s.UpdateSAMLProvider(ctx(t), got), store.ErrNotFound)
	list, err = s.ListSAMLProviders(ctx(t))
	require.NoError(t, err)
	requireEqual(t, []*store.SAMLProvider{q}, list)
}

func testOIDCProviderCRUD(t *testing.T, s store.Store) {
	p := &store.OIDCProvider{
		IssuerURL:     "https://Accounts.Example.com/tenant1",
		Audiences:     []string{"client-b", "client-a"},
		Thumbprints:   []string{"9e99a48a9960b14926bb7f3b02e22da2b0ab7280"},
		JWKSURL:       "https://accounts.example.com/tenant1/keys",
		GroupsClaim:   "groups",
		RolesClaim:    "https://aws.amazon.com/roles",
		UsernameClaim: "preferred_username",
	}
	require.NoError(t, s.CreateOIDCProvider(ctx(t), p))
	_, err := uuid.Parse(p.ID)
	require.NoError(t, err)
	require.Equal(t, int64(1), p.Revision)
	require.Equal(t, "arn:aws:iam::000000000000:oidc-provider/accounts.example.com/tenant1", p.ARN("000000000000"))

	got, err := s.GetOIDCProvider(ctx(t), p.ID)
	require.NoError(t, err)
	requireEqual(t, p, got)
	got, err = s.GetOIDCProviderByIssuer(ctx(t), "https://Accounts.Example.com/tenant1")
	require.NoError(t, err)
	requireEqual(t, p, got)
	_, err = s.GetOIDCProviderByIssuer(ctx(t), "https://accounts.example.com/tenant1")
	requireIs(t, err, store.ErrNotFound) // issuers compare exactly

	// Issuers naming the same ARN collide.
	for _, iss := range []string{"https://accounts.example.com/tenant1", "https://accounts.example.com/tenant1/", "http://ACCOUNTS.example.com/tenant1"} {
		requireIs(t, s.CreateOIDCProvider(ctx(t), &store.OIDCProvider{IssuerURL: iss, Audiences: []string{"x"}}), store.ErrAlreadyExists)
	}
	requireIs(t, s.CreateOIDCProvider(ctx(t), &store.OIDCProvider{IssuerURL: "https://x.example"}), store.ErrInvalid)
	requireIs(t, s.CreateOIDCProvider(ctx(t), &store.OIDCProvider{Audiences: []string{"x"}}), store.ErrInvalid)

	q := &store.OIDCProvider{IssuerURL: "https://token.actions.githubusercontent.com", Audiences: []string{"sts.amazonaws.com"}, Thumbprints: []string{}}
	require.NoError(t, s.CreateOIDCProvider(ctx(t), q))
	require.Nil(t, q.Thumbprints)
	list, err := s.ListOIDCProviders(ctx(t))
	require.NoError(t, err)
	requireEqual(t, []*store.OIDCProvider{p, q}, list)

	stale := *got
	got.Audiences = []string{"client-c"}
	got.Thumbprints = nil
	got.JWKSURL = ""
	require.NoError(t, s.UpdateOIDCProvider(ctx(t), got))
	require.Equal(t, int64(2), got.Revision)
	again, err := s.GetOIDCProvider(ctx(t), p.ID)
	require.NoError(t, err)
	requireEqual(t, got, again)
	requireIs(t, s.UpdateOIDCProvider(ctx(t), &stale), store.ErrConflict)
	noAud := *again
	noAud.Audiences = nil
	requireIs(t, s.UpdateOIDCProvider(ctx(t), &noAud), store.ErrInvalid)

	require.NoError(t, s.DeleteOIDCProvider(ctx(t), p.ID))
	_, err = s.GetOIDCProvider(ctx(t), p.ID)
	requireIs(t, err, store.ErrNotFound)
	requireIs(t, s.DeleteOIDCProvider(ctx(t), p.ID), store.ErrNotFound)
	requireIs(t, s.UpdateOIDCProvider(ctx(t), again), store.ErrNotFound)
	// The issuer is free again.
	require.NoError(t, s.CreateOIDCProvider(ctx(t), &store.OIDCProvider{IssuerURL: "https://accounts.example.com/tenant1/", Audiences: []string{"a"}}))
}
