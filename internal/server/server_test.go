package server

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/secrets"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/sts/credentials"
)

func newTestServer(t *testing.T) (*Server, config.Config) {
	t.Helper()
	dir := t.TempDir()
	cfg, err := config.Load("", func(string) (string, bool) { return "", false }, []config.Override{
		{Path: "data_dir", Value: dir},
		{Path: "api.listen", Value: "127.0.0.1:0"},
		{Path: "admin.listen", Value: "127.0.0.1:0"},
	})
	require.NoError(t, err)
	srv, err := New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Close() })
	return srv, cfg
}

// TestDisableRevokesCredentialsForGood: credentials issued before a user is
// disabled stay dead after the user is re-enabled, whichever front end
// disabled them (the revocation lives in the store wrapper).
func TestDisableRevokesCredentialsForGood(t *testing.T) {
	srv, cfg := newTestServer(t)
	ctx := context.Background()
	u := &store.User{UserName: "erin", Active: true}
	require.NoError(t, srv.Store.CreateUser(ctx, u))

	mk, err := secrets.LoadOrCreateMasterKey(filepath.Join(cfg.DataDir, "master.key"))
	require.NoError(t, err)
	kr, err := credentials.LoadOrCreateKeyring(ctx, srv.Store, mk, nil)
	require.NoError(t, err)
	creds, err := credentials.NewIssuer(kr, credentials.IssuerOptions{}).Issue(ctx, credentials.SessionRequest{
		PrincipalID: u.ID, UserName: u.UserName, SourceIdentity: u.UserName,
		RoleARN: "arn:aws:iam::000000000000:role/analyst", RoleSessionName: "erin", AssumedRoleID: "AROATEST",
	}, time.Hour)
	require.NoError(t, err)

	_, err = srv.STS.LookupCredentials(ctx, creds.AccessKeyID, creds.SessionToken)
	require.NoError(t, err, "fresh credentials must verify")

	u.Active = false
	require.NoError(t, srv.Store.UpdateUser(ctx, u))
	_, err = srv.STS.LookupCredentials(ctx, creds.AccessKeyID, creds.SessionToken)
	require.Error(t, err, "disabled user's credentials must fail")

	u.Active = true
	require.NoError(t, srv.Store.UpdateUser(ctx, u))
	// Past every cache TTL, the old credentials must still be refused.
	time.Sleep(credentials.MaxRevocationTTL + 200*time.Millisecond)
	_, err = srv.STS.LookupCredentials(ctx, creds.AccessKeyID, creds.SessionToken)
	require.Error(t, err, "re-enabling must not resurrect credentials issued before the disable")
}
