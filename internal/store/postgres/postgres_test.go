package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/store/migrations"
	"github.com/gatehouse-dev/gatehouse/internal/store/storetest"
)

// testDSN returns the DSN of the test database. Without one the tests skip,
// except in CI (CI=true), where skipping the Postgres suite would hide a
// broken backend: there it is a failure.
func testDSN(t *testing.T) string {
	t.Helper()
	dsn := os.Getenv("GATEHOUSE_TEST_POSTGRES_DSN")
	if dsn == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("GATEHOUSE_TEST_POSTGRES_DSN is empty but CI=true: the PostgreSQL store suite must run in CI (see .ci/postgres.sh)")
		}
		t.Skip("GATEHOUSE_TEST_POSTGRES_DSN not set; start a server with: export GATEHOUSE_TEST_POSTGRES_DSN=$(bash .ci/postgres.sh | tail -1)")
	}
	return dsn
}

// freshSchema creates an empty schema with a random name, dropped at the end
// of the test, and returns dsn with search_path pointing at it.
func freshSchema(t *testing.T, dsn string) string {
	t.Helper()
	ctx := context.Background()
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	schema := "gatehouse_test_" + hex.EncodeToString(b)

	conn, err := pgx.Connect(ctx, dsn)
	require.NoError(t, err)
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, `CREATE SCHEMA `+schema)
	require.NoError(t, err)
	t.Cleanup(func() {
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, `DROP SCHEMA `+schema+` CASCADE`); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})

	if u, err := url.Parse(dsn); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
		return u.String()
	}
	return dsn + " search_path=" + schema
}

// openFresh opens a store on a new schema; cleanups run in reverse order, so
// the store is closed before its schema is dropped.
func openFresh(t *testing.T, dsn string) *Store {
	t.Helper()
	scoped := freshSchema(t, dsn)
	s, err := Open(t.Context(), scoped)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close()) })
	return s
}

func TestConformance(t *testing.T) {
	dsn := testDSN(t)
	storetest.Run(t, func(t *testing.T) store.Store { return openFresh(t, dsn) })
	storetest.RunManagedPolicies(t, func(t *testing.T) store.ManagedPolicyStore { return openFresh(t, dsn) })
	storetest.RunMounts(t, func(t *testing.T) store.MountStore { return openFresh(t, dsn) })
	storetest.RunLinks(t, func(t *testing.T) storetest.LinkTarget { return openFresh(t, dsn) })
}

// TestConcurrentMigration opens several stores on one empty schema at once,
// like replicas starting together: all succeed and the schema is migrated once.
func TestConcurrentMigration(t *testing.T) {
	scoped := freshSchema(t, testDSN(t))
	ctx := context.Background()
	const replicas = 5
	stores := make([]*Store, replicas)
	errs := make([]error, replicas)
	var wg sync.WaitGroup
	for i := range replicas {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stores[i], errs[i] = Open(ctx, scoped)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		require.NoError(t, err, "replica %d", i)
		defer stores[i].Close()
	}
	var n int
	require.NoError(t, stores[0].pool.QueryRow(ctx, `SELECT COUNT(*) FROM schema_migrations`).Scan(&n))
	require.Equal(t, wantVersions(t), n)

	// A user written through one replica is visible through another.
	u := &store.User{UserName: "shared"}
	require.NoError(t, stores[1].CreateUser(ctx, u))
	got, err := stores[replicas-1].GetUserByName(ctx, "SHARED")
	require.NoError(t, err)
	require.Equal(t, u.ID, got.ID)

	// Re-opening is a no-op.
	again, err := Open(ctx, scoped)
	require.NoError(t, err)
	require.NoError(t, again.Close())
	require.NoError(t, stores[0].pool.QueryRow(ctx, `SELECT COUNT(*) FROM schema_migrations`).Scan(&n))
	require.Equal(t, wantVersions(t), n)
}

func TestRefusesNewerSchema(t *testing.T) {
	scoped := freshSchema(t, testDSN(t))
	ctx := context.Background()
	s, err := Open(ctx, scoped)
	require.NoError(t, err)
	_, err = s.pool.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES (999, 'future')`)
	require.NoError(t, err)
	require.NoError(t, s.Close())
	_, err = Open(ctx, scoped)
	require.ErrorContains(t, err, "newer")
}

func TestOpenErrorHidesPassword(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Open(ctx, "postgres://gatehouse:s3cr3t-pw@127.0.0.1:1/nope?sslmode=disable&connect_timeout=1")
	require.Error(t, err)
	require.NotContains(t, err.Error(), "s3cr3t-pw")
}

// wantVersions is the number of embedded migrations, each recorded once.
func wantVersions(t *testing.T) int {
	t.Helper()
	ms, err := migrations.Load(migrations.Postgres)
	require.NoError(t, err)
	return len(ms)
}

// TestMigration7RevokesLiveSAMLSessions upgrades a database from schema 6
// (see storetest.RunTokenRolesUpgrade).
func TestMigration7RevokesLiveSAMLSessions(t *testing.T) {
	scoped := freshSchema(t, testDSN(t))
	s, err := Open(t.Context(), scoped)
	require.NoError(t, err)
	storetest.RunTokenRolesUpgrade(t, s, func(t *testing.T, old store.Store) store.Store {
		_, err := old.(*Store).pool.Exec(t.Context(), `ALTER TABLE tokens DROP COLUMN roles; ALTER TABLE tokens DROP COLUMN parent_id; DELETE FROM schema_migrations WHERE version = 7`)
		require.NoError(t, err)
		require.NoError(t, old.(*Store).Close())
		s, err := Open(t.Context(), scoped)
		require.NoError(t, err)
		t.Cleanup(func() { require.NoError(t, s.Close()) })
		return s
	})
}
