package storetest

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// LinkTarget is what the link suite needs: users to link to, providers
// that carry binding rules, and the links themselves.
type LinkTarget interface {
	store.Store
	store.LinkStore
}

// RunLinks runs the conformance suite of store.LinkStore and of the
// providers' Binding rules. open must return a fresh, empty store for each
// call and arrange for it to be closed and discarded with t.Cleanup.
func RunLinks(t *testing.T, open func(t *testing.T) LinkTarget) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s LinkTarget)
	}{
		{"CRUD", testLinkCRUD},
		{"NeverRebindsSilently", testLinkUniqueness},
		{"Validation", testLinkValidation},
		{"UserDeletionRemovesLinks", testLinkUserDeletion},
		{"ProviderBindingRoundTrip", testProviderBinding},
	}
	for _, tc := range tests {
		t.Run("Link"+tc.name, func(t *testing.T) {
			tc.fn(t, open(t))
		})
	}
}

func linkUser(t *testing.T, s LinkTarget, name string) *store.User {
	t.Helper()
	u := &store.User{UserName: name, Active: true}
	require.NoError(t, s.CreateUser(ctx(t), u))
	return u
}

func testLinkCRUD(t *testing.T, s LinkTarget) {
	alice, bob := linkUser(t, s, "alice"), linkUser(t, s, "bob")
	before := time.Now().Add(-time.Second)
	la := &store.FederatedLink{ProviderID: "p-okta", Subject: "00u1Ab/É", UserID: alice.ID, Source: store.LinkSourceAdmin}
	require.NoError(t, s.CreateFederatedLink(ctx(t), la))
	require.True(t, la.CreatedAt.After(before), "CreatedAt %v", la.CreatedAt)
	require.Equal(t, time.UTC, la.CreatedAt.Location())
	lb := &store.FederatedLink{ProviderID: "p-okta", Subject: "00u0zz", UserID: bob.ID, Source: store.LinkSourceSignIn}
	require.NoError(t, s.CreateFederatedLink(ctx(t), lb))
	le := &store.FederatedLink{ProviderID: "p-entra", Subject: "00u1Ab/É", UserID: bob.ID, Source: store.LinkSourceSCIM}
	require.NoError(t, s.CreateFederatedLink(ctx(t), le))

	got, err := s.GetFederatedLink(ctx(t), "p-okta", "00u1Ab/É")
	require.NoError(t, err)
	requireEqual(t, la, got)
	// Subjects compare exactly: case matters.
	_, err = s.GetFederatedLink(ctx(t), "p-okta", "00U1AB/É")
	requireIs(t, err, store.ErrNotFound)
	_, err = s.GetFederatedLink(ctx(t), "p-other", "00u1Ab/É")
	requireIs(t, err, store.ErrNotFound)

	okta, err := s.ListFederatedLinks(ctx(t), "p-okta")
	require.NoError(t, err)
	requireEqual(t, []*store.FederatedLink{lb, la}, okta)
	all, err := s.ListFederatedLinks(ctx(t), "")
	require.NoError(t, err)
	requireEqual(t, []*store.FederatedLink{le, lb, la}, all)
	ofBob, err := s.LinksOfUser(ctx(t), bob.ID)
	require.NoError(t, err)
	requireEqual(t, []*store.FederatedLink{le, lb}, ofBob)
	none, err := s.ListFederatedLinks(ctx(t), "p-none")
	require.NoError(t, err)
	require.Empty(t, none)

	require.NoError(t, s.DeleteFederatedLink(ctx(t), "p-okta", "00u0zz"))
	requireIs(t, s.DeleteFederatedLink(ctx(t), "p-okta", "00u0zz"), store.ErrNotFound)
	_, err = s.GetFederatedLink(ctx(t), "p-okta", "00u0zz")
	requireIs(t, err, store.ErrNotFound)
}

// testLinkUniqueness: a linked subject never moves to another user, and a
// user never gets a second subject of the same provider, without an
// explicit delete first.
func testLinkUniqueness(t *testing.T, s LinkTarget) {
	alice, bob := linkUser(t, s, "alice"), linkUser(t, s, "bob")
	require.NoError(t, s.CreateFederatedLink(ctx(t), &store.FederatedLink{ProviderID: "p", Subject: "s1", UserID: alice.ID, Source: store.LinkSourceAdmin}))
	requireIs(t, s.CreateFederatedLink(ctx(t), &store.FederatedLink{ProviderID: "p", Subject: "s1", UserID: bob.ID, Source: store.LinkSourceAdmin}), store.ErrAlreadyExists)
	requireIs(t, s.CreateFederatedLink(ctx(t), &store.FederatedLink{ProviderID: "p", Subject: "s2", UserID: alice.ID, Source: store.LinkSourceSignIn}), store.ErrAlreadyExists)
	got, err := s.GetFederatedLink(ctx(t), "p", "s1")
	require.NoError(t, err)
	require.Equal(t, alice.ID, got.UserID)
	_, err = s.GetFederatedLink(ctx(t), "p", "s2")
	requireIs(t, err, store.ErrNotFound)
}

func testLinkValidation(t *testing.T, s LinkTarget) {
	alice := linkUser(t, s, "alice")
	for _, bad := range []*store.FederatedLink{
		{Subject: "s", UserID: alice.ID, Source: store.LinkSourceAdmin},
		{ProviderID: "p", UserID: alice.ID, Source: store.LinkSourceAdmin},
		{ProviderID: "p", Subject: "s", Source: store.LinkSourceAdmin},
		{ProviderID: "p", Subject: "s", UserID: alice.ID},
		{ProviderID: "p", Subject: "s", UserID: "no-such-user", Source: store.LinkSourceAdmin},
	} {
		requireIs(t, s.CreateFederatedLink(ctx(t), bad), store.ErrInvalid)
	}
	all, err := s.ListFederatedLinks(ctx(t), "")
	require.NoError(t, err)
	require.Empty(t, all)
}

func testLinkUserDeletion(t *testing.T, s LinkTarget) {
	alice := linkUser(t, s, "alice")
	require.NoError(t, s.CreateFederatedLink(ctx(t), &store.FederatedLink{ProviderID: "p", Subject: "s", UserID: alice.ID, Source: store.LinkSourceAdmin}))
	require.NoError(t, s.DeleteUser(ctx(t), alice.ID))
	_, err := s.GetFederatedLink(ctx(t), "p", "s")
	requireIs(t, err, store.ErrNotFound)
	// The subject can be linked again, to a new user.
	carol := linkUser(t, s, "carol")
	require.NoError(t, s.CreateFederatedLink(ctx(t), &store.FederatedLink{ProviderID: "p", Subject: "s", UserID: carol.ID, Source: store.LinkSourceAdmin}))
}

// testProviderBinding: both provider kinds keep their binding rule, the
// zero rule reads back as the zero value, and unknown enum values are
// refused.
func testProviderBinding(t *testing.T, s LinkTarget) {
	rule := store.Binding{LinkByUserName: true, TrustEmail: true, Unlinked: store.UnlinkedFederated, SCIMSubject: store.SCIMSubjectExternalID}
	sp := &store.SAMLProvider{Name: "okta", MetadataXML: "<md/>", EntityID: "http://okta/1", Binding: rule}
	require.NoError(t, s.CreateSAMLProvider(ctx(t), sp))
	op := &store.OIDCProvider{IssuerURL: "https://idp.example.com", Audiences: []string{"c"}}
	require.NoError(t, s.CreateOIDCProvider(ctx(t), op))

	gs, err := s.GetSAMLProvider(ctx(t), sp.ID)
	require.NoError(t, err)
	require.Equal(t, rule, gs.Binding)
	gop, err := s.GetOIDCProvider(ctx(t), op.ID)
	require.NoError(t, err)
	require.Equal(t, store.Binding{}, gop.Binding)
	require.True(t, gop.Binding.RefusesUnlinked(), "the zero rule refuses unlinked identities")

	gop.Binding = store.Binding{TrustEmail: true, Unlinked: store.UnlinkedRefuse, SCIMSubject: store.SCIMSubjectUserName}
	require.NoError(t, s.UpdateOIDCProvider(ctx(t), gop))
	again, err := s.GetOIDCProviderByIssuer(ctx(t), op.IssuerURL)
	require.NoError(t, err)
	require.Equal(t, gop.Binding, again.Binding)
	gs.Binding = store.Binding{}
	require.NoError(t, s.UpdateSAMLProvider(ctx(t), gs))
	list, err := s.ListSAMLProviders(ctx(t))
	require.NoError(t, err)
	require.Equal(t, store.Binding{}, list[0].Binding)

	requireIs(t, s.CreateOIDCProvider(ctx(t), &store.OIDCProvider{IssuerURL: "https://x", Audiences: []string{"c"}, Binding: store.Binding{Unlinked: "allow"}}), store.ErrInvalid)
	gs.Binding = store.Binding{SCIMSubject: "emails"}
	requireIs(t, s.UpdateSAMLProvider(ctx(t), gs), store.ErrInvalid)
}
