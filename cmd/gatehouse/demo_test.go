package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/server"
)

// TestRestartedDemoRenewsItsAdminToken: once the bootstrap token has ended
// (24 h, or retired by making a real admin), a restarted demo writes a
// fresh admin token; a working token is left alone.
func TestRestartedDemoRenewsItsAdminToken(t *testing.T) {
	ctx := context.Background()
	cfg, err := config.Load("", func(string) (string, bool) { return "", false }, []config.Override{
		{Path: "data_dir", Value: t.TempDir()},
		{Path: "api.listen", Value: "127.0.0.1:0"},
		{Path: "admin.listen", Value: "127.0.0.1:0"},
		{Path: "s3.listen", Value: ""},
	})
	require.NoError(t, err)
	srv, err := server.New(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Close() })
	read := func() string {
		b, err := os.ReadFile(cfg.Identity.BootstrapToken)
		require.NoError(t, err)
		return strings.TrimSpace(string(b))
	}
	first := read()
	require.NoError(t, renewDemoAdminToken(ctx, srv, cfg.Identity.BootstrapToken))
	require.Equal(t, first, read(), "a working token is kept")

	p, err := srv.Identity.Authenticate(ctx, first)
	require.NoError(t, err)
	require.NoError(t, srv.Identity.RetireBootstrapToken(ctx, p.TokenID))
	require.NoError(t, renewDemoAdminToken(ctx, srv, cfg.Identity.BootstrapToken))
	second := read()
	require.NotEqual(t, first, second)
	p, err = srv.Identity.Authenticate(ctx, second)
	require.NoError(t, err)
	require.True(t, p.Admin)
	fi, err := os.Stat(cfg.Identity.BootstrapToken)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())

	// A replica that did not bootstrap has no token file and gets none.
	require.NoError(t, os.Remove(cfg.Identity.BootstrapToken))
	require.NoError(t, renewDemoAdminToken(ctx, srv, cfg.Identity.BootstrapToken))
	_, err = os.Stat(cfg.Identity.BootstrapToken)
	require.ErrorIs(t, err, os.ErrNotExist)
}
