package demoidp_test

import (
	"context"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-dev/gatehouse/internal/frontend/demoidp"
	"github.com/gatehouse-dev/gatehouse/internal/frontend/websso/ssotest"
	"github.com/gatehouse-dev/gatehouse/internal/identity/saml"
)

func TestMetadataStableAcrossRestartsAndKeySealed(t *testing.T) {
	w := ssotest.New(t, ssotest.Options{Demo: true})
	md := w.Demo.Metadata()
	require.Contains(t, md, "DEMO IdP — not for production")
	idp, err := saml.ParseIdPMetadata([]byte(md))
	require.NoError(t, err)
	require.Equal(t, w.URL+"/demo-idp/saml", idp.EntityID)
	require.NoError(t, idp.Check(), "RSA-2048 signing key")

	// A restart (new instance over the same store) keeps key and certificate,
	// so the registered SAML provider stays valid.
	again, err := demoidp.New(demoidp.Options{Store: w.Store, MasterKey: ssotest.MasterKey, PublicURL: w.URL, AccountID: ssotest.Account})
	require.NoError(t, err)
	require.Equal(t, md, again.Metadata())
	sealed, err := w.Store.GetMeta(context.Background(), "demoidp/signing-key/v1")
	require.NoError(t, err)
	require.False(t, strings.Contains(string(sealed), "PRIVATE KEY"))

	// Seed registers the provider and roles once.
	require.NoError(t, w.Demo.Seed(context.Background()))
	require.NoError(t, again.Seed(context.Background()))
	p, err := w.Store.GetSAMLProviderByName(context.Background(), "demo-idp")
	require.NoError(t, err)
	require.Equal(t, md, p.MetadataXML)
	roles, err := w.Store.ListRoles(context.Background())
	require.NoError(t, err)
	require.Len(t, roles, len(demoidp.DemoRoles))
}
