package server

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/store/sqlite"
)

const testHRRole = "arn:aws:iam::000000000000:role/hr-reader"

func mountFor(t *testing.T, srv *Server, bucket, key string) (string, bool) {
	t.Helper()
	m, ok, err := srv.Mounts.MountFor(context.Background(), bucket, key)
	require.NoError(t, err)
	return m.RoleARN, ok
}

// TestMountsLoadedAtStart: mounts already in the store are served from the
// first request on.
func TestMountsLoadedAtStart(t *testing.T) {
	ctx := context.Background()
	cfg, err := config.Load("", func(string) (string, bool) { return "", false }, []config.Override{
		{Path: "data_dir", Value: t.TempDir()},
		{Path: "api.listen", Value: "127.0.0.1:0"},
		{Path: "admin.listen", Value: "127.0.0.1:0"},
		{Path: "s3.listen", Value: "127.0.0.1:0"},
	})
	require.NoError(t, err)
	st, err := sqlite.Open(ctx, cfg.Store.SQLitePath)
	require.NoError(t, err)
	require.NoError(t, st.CreateMount(ctx, &store.Mount{Bucket: "lake", Prefix: "hr/", RoleARN: testHRRole}))
	require.NoError(t, st.Close())

	srv, err := New(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, err)
	t.Cleanup(func() { _ = srv.Close() })
	role, ok := mountFor(t, srv, "lake", "hr/salaries.csv")
	require.True(t, ok)
	require.Equal(t, testHRRole, role)
	_, ok = mountFor(t, srv, "lake", "sales/q3.csv")
	require.False(t, ok)
}

// TestMaintainMountsConverges: a mount written to the shared store by
// another replica applies here on the next tick of the refresh loop, and so
// does its removal. The test drives the loop's ticks itself (issue 12 §5:
// no wall-clock window), and waits for each tick's work to be done.
func TestMaintainMountsConverges(t *testing.T) {
	srv, _ := newTestServer(t)
	require.NotNil(t, srv.MountStore)
	ticks := startTicking(t, srv.maintainMounts)

	m := &store.Mount{Bucket: "lake", Prefix: "hr/", RoleARN: testHRRole}
	require.NoError(t, srv.MountStore.CreateMount(context.Background(), m))
	_, ok := mountFor(t, srv, "lake", "hr/x")
	require.False(t, ok, "applied before any tick: this test proves nothing")
	ticks.tick()
	_, ok = mountFor(t, srv, "lake", "hr/x")
	require.True(t, ok, "the new mount did not apply on the next tick")
	require.NoError(t, srv.MountStore.DeleteMount(context.Background(), m.ID))
	ticks.tick()
	_, ok = mountFor(t, srv, "lake", "hr/x")
	require.False(t, ok, "the deleted mount stayed in force after the next tick")
}

// ticker drives one maintenance loop (runOnTicks) from a test.
type ticker chan time.Time

// startTicking runs loop on its own goroutine with a tick channel the test
// owns, and stops it (and waits for it) when the test ends.
func startTicking(t *testing.T, loop func(context.Context, <-chan time.Time)) ticker {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ticks := make(ticker)
	done := make(chan struct{})
	go func() {
		defer close(done)
		loop(ctx, ticks)
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return ticks
}

// tick makes the loop run once and returns when that run is done: the
// loop takes the barrier (a zero tick, which runs nothing) only after the
// run returned. Nothing else runs until the next tick.
func (c ticker) tick() {
	c <- time.Now()
	c.barrier()
}

// barrier returns once the loop's work so far is done (for maintainKeys,
// the pass it makes at start), without making it run.
func (c ticker) barrier() { c <- time.Time{} }

type failingMounts struct{ store.MountStore }

func (failingMounts) ListMounts(context.Context) ([]*store.Mount, error) {
	return nil, errors.New("store down")
}

// TestReloadMountsKeepsLastGoodTable: a failed reload changes nothing; a
// stored mount the gateway refuses is installed as broken (it denies its
// prefix) without blocking the rest.
func TestReloadMountsKeepsLastGoodTable(t *testing.T) {
	srv, _ := newTestServer(t)
	ctx := context.Background()
	require.NoError(t, srv.MountStore.CreateMount(ctx, &store.Mount{Bucket: "lake", Prefix: "hr/", RoleARN: testHRRole}))
	// Valid for the store, refused by the gateway (not a role ARN).
	require.NoError(t, srv.MountStore.CreateMount(ctx, &store.Mount{Bucket: "lake", Prefix: "bad/", RoleARN: "hr-reader"}))
	require.NoError(t, srv.ReloadMounts(ctx))
	_, ok := mountFor(t, srv, "lake", "hr/x")
	require.True(t, ok)
	m, ok, err := srv.Mounts.MountFor(ctx, "lake", "bad/x")
	require.NoError(t, err)
	require.True(t, ok, "an invalid mount still governs its prefix")
	require.Contains(t, m.Broken, "not an IAM role ARN")

	good := srv.MountStore
	srv.MountStore = failingMounts{good}
	require.Error(t, srv.ReloadMounts(ctx))
	srv.reloadMountsLogged(ctx) // logs, does not panic
	_, ok = mountFor(t, srv, "lake", "hr/x")
	require.True(t, ok, "a failed reload keeps the last good table")
	srv.MountStore = good
}

// allLakePolicy allows every S3 action in bucket lake.
const allLakePolicy = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*",
 "Resource":["arn:aws:s3:::lake","arn:aws:s3:::lake/*"]}]}`

// TestInvalidStoredMountDeniesItsPrefix proves issue 11 finding 10 (mounts
// fail closed): a stored mount that fails validation used to be skipped, so
// the prefix it was meant to restrict fell back to each caller's own role.
// The attack: with the hr/ mount's role ARN mistyped, a caller whose role
// allows s3:* on the bucket reads and writes hr/. Now every request under
// that prefix is denied, and the rest of the bucket is unaffected.
func TestInvalidStoredMountDeniesItsPrefix(t *testing.T) {
	l := startLive(t)
	ctx := context.Background()
	require.NoError(t, l.srv.MountStore.CreateMount(ctx, &store.Mount{Bucket: "lake", Prefix: "hr/", RoleARN: "hr-reader"}))
	require.NoError(t, l.srv.ReloadMounts(ctx))
	u := l.user("mallory")
	c := l.s3(l.creds(u, l.role("lake-admin", allLakePolicy)), nil)
	require.NoError(t, putObj(c, "lake", "sales/q3.csv", "ok"))
	require.Equal(t, "AccessDenied", errCode(putObj(c, "lake", "hr/salaries.csv", "planted")))
	_, err := getObj(c, "lake", "hr/salaries.csv")
	require.Equal(t, "AccessDenied", errCode(err))
	evs := l.auditEvents("s3.PutObject")
	require.NotEmpty(t, evs)
	require.Contains(t, evs[len(evs)-1].Reason, "is invalid and denies its prefix")
}

// countingMounts counts full reads of the mount table.
type countingMounts struct {
	store.MountStore
	lists int
}

func (c *countingMounts) ListMounts(ctx context.Context) ([]*store.Mount, error) {
	c.lists++
	return c.MountStore.ListMounts(ctx)
}

// TestIdleReplicaDoesNotReloadMounts proves issue 12 §1: a replica's
// periodic mount refresh reads the store's mount change counter and
// reloads the table only when it moved. Idle ticks read no mounts; a
// write by another replica (straight to the shared store) is picked up by
// the next tick, once.
func TestIdleReplicaDoesNotReloadMounts(t *testing.T) {
	srv, _ := newTestServer(t)
	ctx := context.Background()
	cm := &countingMounts{MountStore: srv.MountStore}
	srv.MountStore = cm
	require.NoError(t, srv.ReloadMounts(ctx))
	cm.lists = 0
	for range 5 {
		srv.refreshMounts(ctx)
	}
	require.Zero(t, cm.lists, "idle refreshes must not reload the mount table")

	require.NoError(t, cm.MountStore.CreateMount(ctx, &store.Mount{Bucket: "lake", Prefix: "hr/", RoleARN: testHRRole}))
	srv.refreshMounts(ctx)
	srv.refreshMounts(ctx)
	require.Equal(t, 1, cm.lists, "one change, one reload")
	_, ok := mountFor(t, srv, "lake", "hr/x")
	require.True(t, ok, "the other replica's mount applies")
}

// TestMountChangeAppliesWithoutReload proves issue 12 §1: a mount written
// through this replica's API applies at once without reading the mount
// table again (the API hands the change to applyMountChange); only when
// another writer moved the store's change counter in between does it
// reload the whole table, so that change applies too.
func TestMountChangeAppliesWithoutReload(t *testing.T) {
	srv, _ := newTestServer(t)
	ctx := context.Background()
	cm := &countingMounts{MountStore: srv.MountStore}
	srv.MountStore = cm
	require.NoError(t, srv.ReloadMounts(ctx))
	cm.lists = 0

	hr := &store.Mount{Bucket: "lake", Prefix: "hr/", RoleARN: testHRRole}
	require.NoError(t, cm.CreateMount(ctx, hr))
	srv.applyMountChange(ctx, hr, false)
	require.Zero(t, cm.lists, "one change of ours: applied as a delta")
	_, ok := mountFor(t, srv, "lake", "hr/x")
	require.True(t, ok)
	require.NoError(t, cm.DeleteMount(ctx, hr.ID))
	srv.applyMountChange(ctx, hr, true)
	require.Zero(t, cm.lists)
	_, ok = mountFor(t, srv, "lake", "hr/x")
	require.False(t, ok, "the deleted mount is gone")

	// Another replica writes sales/ unseen; our own change then reloads.
	require.NoError(t, cm.CreateMount(ctx, &store.Mount{Bucket: "lake", Prefix: "sales/", RoleARN: testHRRole}))
	ops := &store.Mount{Bucket: "lake", Prefix: "ops/", RoleARN: testHRRole}
	require.NoError(t, cm.CreateMount(ctx, ops))
	srv.applyMountChange(ctx, ops, false)
	require.Equal(t, 1, cm.lists, "another writer in between: a full reload")
	for _, key := range []string{"sales/x", "ops/x"} {
		_, ok := mountFor(t, srv, "lake", key)
		require.True(t, ok, key)
	}
}
