package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func writeOptions(dir, mode string) Options {
	o := testOptions(dir, mode, newFakeClock())
	o.Durability = DurabilityWrite
	return o
}

// syncedSeq is the last seq a completed background fsync covers. It never
// holds l.mu across an assertion (a failing require would leave it locked).
func syncedSeq(l *Log) uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.synced
}

// headSeq returns the seq that audit.head currently names.
func headSeq(t *testing.T, dir string) uint64 {
	t.Helper()
	h, err := readHead(dir)
	require.NoError(t, err)
	return h.Seq
}

// headIs reports whether audit.head names seq; for polling conditions,
// which must not call t.FailNow.
func headIs(dir string, seq uint64) bool {
	h, err := readHead(dir)
	return err == nil && h.Seq == seq
}

func TestWriteDurabilityConcurrent(t *testing.T) {
	// Mode does not apply with durability write; both must behave the same.
	for _, mode := range []string{ModeGroup, ModeSync} {
		t.Run(mode, func(t *testing.T) {
			dir := t.TempDir()
			l := openTest(t, writeOptions(dir, mode))
			const workers, per = 8, 500
			var wg sync.WaitGroup
			for w := range workers {
				wg.Go(func() {
					for i := range per {
						e := testEvent(i)
						e.RequestID = fmt.Sprintf("w%d-%d", w, i)
						require.NoError(t, l.Emit(context.Background(), e))
					}
				})
			}
			wg.Wait()
			require.NoError(t, l.Close())
			require.ErrorIs(t, l.Emit(context.Background(), testEvent(0)), ErrClosed)
			require.ErrorIs(t, l.Healthy(), ErrClosed)

			rep, err := Verify(dir, nil)
			require.NoError(t, err)
			require.EqualValues(t, workers*per, rep.Events)
			require.Equal(t, rep.LastSeq, rep.HeadSeq, "Close fsyncs and writes the final head")
			require.Zero(t, rep.TornBytes)

			seen := map[string]int{}
			for r, err := range Search(dir, Query{}) {
				require.NoError(t, err)
				seen[r.Event.RequestID]++
			}
			require.Len(t, seen, workers*per)
			for id, n := range seen {
				require.Equal(t, 1, n, "request %s recorded %d times", id, n)
			}

			// The chain continues across a reopen, in either durability.
			l = openTest(t, writeOptions(dir, mode))
			require.NoError(t, l.Emit(context.Background(), testEvent(1)))
			require.NoError(t, l.Close())
			rep, err = Verify(dir, nil)
			require.NoError(t, err)
			require.EqualValues(t, workers*per+1, rep.Events)
			require.Equal(t, rep.LastSeq, rep.HeadSeq)
		})
	}
}

// TestWriteDurabilityDoesNotWaitForFsync blocks every fsync: Emit still
// returns, the head stays behind, and once fsync proceeds the syncer makes
// everything durable and publishes the head without Close.
func TestWriteDurabilityDoesNotWaitForFsync(t *testing.T) {
	dir := t.TempDir()
	o := writeOptions(dir, ModeGroup)
	gate := make(chan struct{})
	var openGate sync.Once
	var syncs atomic.Int64
	o.syncFile = func(f *os.File) error {
		<-gate
		syncs.Add(1)
		return f.Sync()
	}
	l := openTest(t, o)
	defer func() {
		openGate.Do(func() { close(gate) }) // so that Close can fsync
		l.Close()
	}()

	// 25 events with a checkpoint every 10: seq 11 and 22 are checkpoints.
	emitted := make(chan error, 1)
	go func() {
		for i := range 25 {
			if err := l.Emit(context.Background(), testEvent(i)); err != nil {
				emitted <- err
				return
			}
		}
		emitted <- nil
	}()
	select {
	case err := <-emitted:
		require.NoError(t, err)
	case <-time.After(10 * time.Second):
		openGate.Do(func() { close(gate) })
		t.Fatal("Emit waited for fsync")
	}
	require.Zero(t, syncs.Load())
	require.Never(t, func() bool { return !headIs(dir, 0) }, 300*time.Millisecond, 10*time.Millisecond,
		"the head must not name a record before its fsync")
	b, err := os.ReadFile(filepath.Join(dir, LogFile))
	require.NoError(t, err)
	require.Equal(t, 27, strings.Count(string(b), "\n"), "every acknowledged record is written")

	openGate.Do(func() { close(gate) })
	require.Eventually(t, func() bool { return headIs(dir, 22) }, 10*time.Second, 5*time.Millisecond,
		"the syncer fsyncs and publishes the head promptly")
	// The head of seq 22 may come from an fsync that covered up to 22..26;
	// the next one (within SyncInterval) covers the rest.
	require.Eventually(t, func() bool { return syncedSeq(l) == 27 }, 10*time.Second, time.Millisecond)
	require.NoError(t, l.Healthy())
	require.NoError(t, l.Close())
	rep, err := Verify(dir, nil)
	require.NoError(t, err)
	require.EqualValues(t, 25, rep.Events)
	require.Equal(t, rep.LastSeq, rep.HeadSeq)
}

var errInjected = errors.New("injected fsync failure")

// TestWriteDurabilityFsyncFailure makes a background fsync fail after
// checkpoints were written past the last good fsync: the log fails closed,
// and the head never names a record the failed fsync was to cover, so a
// power loss that drops those records leaves a log that still verifies.
func TestWriteDurabilityFsyncFailure(t *testing.T) {
	dir := t.TempDir()
	o := writeOptions(dir, ModeGroup)
	var failing atomic.Bool
	release := make(chan struct{})
	var openRelease sync.Once
	var durable atomic.Int64 // log bytes covered by the last good fsync
	o.syncFile = func(f *os.File) error {
		if failing.Load() {
			<-release
			return errInjected
		}
		st, err := f.Stat() // written before the fsync starts: covered by it
		if err != nil {
			return err
		}
		if err := f.Sync(); err != nil {
			return err
		}
		durable.Store(st.Size())
		return nil
	}
	l := openTest(t, o)
	defer func() {
		openRelease.Do(func() { close(release) })
		l.Close()
	}()
	logPath := filepath.Join(dir, LogFile)

	for i := range 15 { // seq 1..10, checkpoint 11, seq 12..16
		require.NoError(t, l.Emit(context.Background(), testEvent(i)))
	}
	require.Eventually(t, func() bool {
		st, err := os.Stat(logPath)
		return err == nil && durable.Load() == st.Size() && headIs(dir, 11)
	}, 10*time.Second, 5*time.Millisecond)

	// From here every fsync fails (after a delay), so nothing more is durable.
	failing.Store(true)
	for i := range 25 { // more checkpoints: written, never fsynced
		require.NoError(t, l.Emit(context.Background(), testEvent(100+i)), "acknowledged after write(2)")
	}
	openRelease.Do(func() { close(release) })
	require.Eventually(t, func() bool { return errors.Is(l.Healthy(), ErrFailed) }, 10*time.Second, time.Millisecond)
	require.ErrorContains(t, l.Healthy(), "background fsync")
	require.ErrorIs(t, l.Healthy(), errInjected)
	for i := range 3 {
		require.ErrorIs(t, l.Emit(context.Background(), testEvent(200+i)), ErrFailed, "sticky")
	}
	require.ErrorIs(t, l.Close(), ErrFailed)

	// The head names a record inside the fsynced prefix, although later
	// checkpoint records exist (written, not fsynced).
	head := headSeq(t, dir)
	var end int64
	var headEnd int64 = -1
	lateCheckpoints := 0
	for _, line := range readLines(t, dir) {
		end += int64(len(line))
		var r Record
		require.NoError(t, json.Unmarshal(line, &r))
		if r.Seq == head {
			headEnd = end
		}
		if r.Type == TypeCheckpoint && end > durable.Load() {
			lateCheckpoints++
		}
	}
	require.Positive(t, lateCheckpoints, "the test must write checkpoints that never got fsynced")
	require.Positive(t, headEnd, "head seq %d is in the log", head)
	require.LessOrEqual(t, headEnd, durable.Load(), "head seq %d is beyond the last good fsync", head)
	rep, err := Verify(dir, nil)
	require.NoError(t, err)
	require.Greater(t, rep.LastSeq, rep.HeadSeq)

	// Power loss: everything after the last good fsync is gone. The head is
	// not ahead of the log, so the log verifies and reopens.
	require.NoError(t, os.Truncate(logPath, durable.Load()))
	rep, err = Verify(dir, nil)
	require.NoError(t, err, "the head must never run ahead of fsync")
	require.EqualValues(t, 15, rep.Events)
	l2 := openTest(t, writeOptions(dir, ModeGroup))
	require.NoError(t, l2.Emit(context.Background(), testEvent(300)))
	require.NoError(t, l2.Close())
	rep, err = Verify(dir, nil)
	require.NoError(t, err)
	require.EqualValues(t, 16, rep.Events)
	require.Equal(t, rep.LastSeq, rep.HeadSeq)
}

// TestFsyncDurabilityUsesSyncHook checks that durability fsync still
// acknowledges only after fsync: a failing fsync fails the Emit itself.
func TestFsyncDurabilityUsesSyncHook(t *testing.T) {
	for _, mode := range []string{ModeSync, ModeGroup} {
		t.Run(mode, func(t *testing.T) {
			dir := t.TempDir()
			o := testOptions(dir, mode, newFakeClock())
			var failing atomic.Bool
			o.syncFile = func(f *os.File) error {
				if failing.Load() {
					return errInjected
				}
				return f.Sync()
			}
			l := openTest(t, o)
			require.Equal(t, DurabilityFsync, l.opts.Durability, "the default")
			require.NoError(t, l.Emit(context.Background(), testEvent(1)))
			failing.Store(true)
			err := l.Emit(context.Background(), testEvent(2))
			require.ErrorIs(t, err, ErrFailed)
			require.ErrorIs(t, err, errInjected)
			require.ErrorIs(t, l.Healthy(), ErrFailed)
			require.ErrorIs(t, l.Close(), ErrFailed)
		})
	}
}

func TestWriteDurabilityWriteFailure(t *testing.T) {
	dir := t.TempDir()
	l := openTest(t, writeOptions(dir, ModeSync))
	require.NoError(t, l.Emit(context.Background(), testEvent(1)))
	// Break the file under the log: the next write (or fsync) fails.
	l.mu.Lock()
	err := l.f.Close()
	l.mu.Unlock()
	require.NoError(t, err)
	require.ErrorIs(t, l.Emit(context.Background(), testEvent(2)), ErrFailed)
	require.ErrorIs(t, l.Healthy(), ErrFailed)
	require.ErrorIs(t, l.Emit(context.Background(), testEvent(3)), ErrFailed, "sticky")
	require.ErrorIs(t, l.Close(), ErrFailed)

	l = openTest(t, writeOptions(dir, ModeSync))
	require.NoError(t, l.Emit(context.Background(), testEvent(9)))
	require.NoError(t, l.Close())
	rep, err := Verify(dir, nil)
	require.NoError(t, err)
	require.EqualValues(t, 2, rep.Events)
}

func TestDurabilityValidate(t *testing.T) {
	o := Options{Dir: "x", MasterKey: testMasterKey, Durability: "later"}
	require.ErrorContains(t, o.Validate(), `Durability "later"`)
	o = Options{Dir: "x", MasterKey: testMasterKey}
	require.NoError(t, o.Validate())
	require.Equal(t, DurabilityFsync, o.Durability)
}

// TestSIGKILLKeepsWrittenRecords: a process crash loses nothing that
// durability write acknowledged (the page cache survives the process).
func TestSIGKILLKeepsWrittenRecords(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns child processes")
	}
	dir := t.TempDir()
	acked := map[string]bool{}
	for round := range 3 {
		ids := runAndKill(t, dir, ModeGroup, time.Duration(150+100*round)*time.Millisecond, crashEnvDurability+"="+DurabilityWrite)
		require.NotEmpty(t, ids, "child acknowledged nothing")
		for _, id := range ids {
			acked[id] = true
		}
		// The live log verifies before recovery too (a torn tail is allowed).
		_, err := Verify(dir, nil)
		require.NoError(t, err, "round %d, before reopen", round)

		l, err := Open(writeOptions(dir, ModeGroup))
		require.NoError(t, err, "round %d", round)
		require.NoError(t, l.Close())
		rep, err := Verify(dir, nil)
		require.NoError(t, err, "round %d", round)
		require.Equal(t, rep.LastSeq, rep.HeadSeq)

		present := map[string]int{}
		for r, err := range Search(dir, Query{}) {
			require.NoError(t, err)
			present[r.Event.RequestID]++
		}
		missing := 0
		for id := range acked {
			if present[id] == 0 {
				missing++
			}
		}
		require.Zero(t, missing, "round %d: %d acknowledged records lost", round, missing)
		for id, n := range present {
			require.Equal(t, 1, n, "round %d: %s recorded %d times", round, id, n)
		}
		t.Logf("round %d: %d acked so far, %d records in log, %d recoveries", round, len(acked), rep.Records, rep.Recoveries)
	}
}

// TestWriteDurabilitySyncInterval: the background fsync is paced by
// SyncInterval, so a steady stream of records costs a bounded number of
// fsyncs, and a record is still fsynced within about one interval.
func TestWriteDurabilitySyncInterval(t *testing.T) {
	dir := t.TempDir()
	o := writeOptions(dir, ModeGroup)
	o.SyncInterval = 50 * time.Millisecond
	var syncs atomic.Int64
	o.syncFile = func(f *os.File) error {
		syncs.Add(1)
		return f.Sync()
	}
	l := openTest(t, o)
	start := time.Now()
	n := 0
	for time.Since(start) < 300*time.Millisecond {
		require.NoError(t, l.Emit(context.Background(), testEvent(n)))
		n++
		time.Sleep(time.Millisecond)
	}
	elapsed := time.Since(start)
	got := syncs.Load()
	// One fsync may start at once, then at most one per interval.
	require.LessOrEqual(t, got, int64(elapsed/o.SyncInterval)+2, "%d fsyncs for %d records in %s", got, n, elapsed)
	require.Greater(t, n, int(got), "fsyncs were not batched")
	l.mu.Lock()
	last := l.seq
	l.mu.Unlock()
	require.Eventually(t, func() bool { return syncedSeq(l) == last }, 5*time.Second, time.Millisecond,
		"the last record is fsynced without further writes")
	require.NoError(t, l.Close())
}
