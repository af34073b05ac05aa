package sqlite

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/store/migrations"
	"github.com/gatehouse-dev/gatehouse/internal/store/storetest"
)

func openTemp(t *testing.T) *Store {
	t.Helper()
	s, err := Open(t.Context(), filepath.Join(t.TempDir(), "gatehouse.db"))
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return openTemp(t) })
	storetest.RunManagedPolicies(t, func(t *testing.T) store.ManagedPolicyStore { return openTemp(t) })
	storetest.RunMounts(t, func(t *testing.T) store.MountStore { return openTemp(t) })
	storetest.RunLinks(t, func(t *testing.T) storetest.LinkTarget { return openTemp(t) })
}

func TestReopenIsIdempotent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	ctx := context.Background()
	s, err := Open(ctx, path)
	require.NoError(t, err)
	u := &store.User{UserName: "persisted"}
	require.NoError(t, s.CreateUser(ctx, u))
	require.NoError(t, s.Close())

	for range 2 {
		s, err = Open(ctx, path)
		require.NoError(t, err)
		got, err := s.GetUser(ctx, u.ID)
		require.NoError(t, err)
		require.Equal(t, u.UserName, got.UserName)
		var versions int
		require.NoError(t, s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations`).Scan(&versions))
		ms, err := migrations.Load(migrations.SQLite)
		require.NoError(t, err)
		require.Equal(t, len(ms), versions)
		var mode string
		require.NoError(t, s.r.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode))
		require.Equal(t, "wal", mode)
		require.NoError(t, s.Close())
	}
}

func TestRefusesNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	ctx := context.Background()
	s, err := Open(ctx, path)
	require.NoError(t, err)
	_, err = s.w.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, 'future', 0)`)
	require.NoError(t, err)
	require.NoError(t, s.Close())
	_, err = Open(ctx, path)
	require.ErrorContains(t, err, "newer")
}

func TestRejectsBadPath(t *testing.T) {
	for _, p := range []string{"", "x.db?mode=memory", "file:x.db"} {
		_, err := Open(context.Background(), p)
		require.Error(t, err, p)
	}
}

// TestMigration7RevokesLiveSAMLSessions upgrades a database from schema 6
// (see storetest.RunTokenRolesUpgrade).
func TestMigration7RevokesLiveSAMLSessions(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gatehouse.db")
	s, err := Open(t.Context(), path)
	require.NoError(t, err)
	storetest.RunTokenRolesUpgrade(t, s, func(t *testing.T, old store.Store) store.Store {
		_, err := old.(*Store).w.ExecContext(t.Context(), `ALTER TABLE tokens DROP COLUMN roles; ALTER TABLE tokens DROP COLUMN parent_id; DELETE FROM schema_migrations WHERE version = 7`)
		require.NoError(t, err)
		require.NoError(t, old.(*Store).Close())
		s, err := Open(t.Context(), path)
		require.NoError(t, err)
		t.Cleanup(func() { require.NoError(t, s.Close()) })
		return s
	})
}
