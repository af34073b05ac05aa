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

// syncEvents records the test hooks of a log: every background fsync
// (the seq it was to cover and its error) and every head write, so tests
// wait on those events instead of polling with a deadline.
type syncEvents struct {
	syncs chan syncEvent
	heads chan uint64
}

type syncEvent struct {
	seq uint64
	err error
}

func hookEvents(o *Options) *syncEvents {
	ev := &syncEvents{syncs: make(chan syncEvent, 1024), heads: make(chan uint64, 1024)}
	o.onSync = func(seq uint64, err error) { ev.syncs <- syncEvent{seq, err} }
	o.onHead = func(seq uint64) { ev.heads <- seq }
	return ev
}

// waitSynced waits for a background fsync that covered seq and succeeded.
func (ev *syncEvents) waitSynced(t *testing.T, seq uint64) {
	t.Helper()
	for s := range ev.syncs {
		require.NoError(t, s.err)
		if s.seq >= seq {
			return
		}
	}
}

// waitSyncFailed waits for a background fsync that failed.
func (ev *syncEvents) waitSyncFailed(t *testing.T) error {
	t.Helper()
	for s := range ev.syncs {
		if s.err != nil {
			return s.err
		}
	}
	return nil
}

// waitHead waits for a head write that names seq.
func (ev *syncEvents) waitHead(t *testing.T, seq uint64) {
	t.Helper()
	for h := range ev.heads {
		if h == seq {
			return
		}
		require.Less(t, h, seq, "a head past the one awaited")
	}
}

// TestWriteDurabilityDoesNotWaitForFsync blocks every fsync: Emit still
// returns, the head stays behind, and once fsync proceeds the syncer makes
// everything durable and publishes the head without Close.
func TestWriteDurabilityDoesNotWaitForFsync(t *testing.T) {
	dir := t.TempDir()
	o := writeOptions(dir, ModeGroup)
	ev := hookEvents(&o)
	gate := make(chan struct{})
	entered := make(chan struct{}, 16)
	var openGate sync.Once
	var syncs atomic.Int64
	o.syncFile = func(f *os.File) error {
		entered <- struct{}{}
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
	// Emit returns although every fsync is blocked (were it to wait, the
	// test would hang here and the test binary's timeout would say so).
	for i := range 25 {
		require.NoError(t, l.Emit(context.Background(), testEvent(i)))
	}
	<-entered // the syncer is inside its first fsync, which has not returned
	require.Zero(t, syncs.Load())
	require.Empty(t, ev.heads, "no head before its fsync")
	require.True(t, headIs(dir, 0), "the head must not name a record before its fsync")
	b, err := os.ReadFile(filepath.Join(dir, LogFile))
	require.NoError(t, err)
	require.Equal(t, 27, strings.Count(string(b), "\n"), "every acknowledged record is written")

	openGate.Do(func() { close(gate) })
	// The first fsync may have covered only part of the records (the syncer
	// takes its snapshot before it enters syncFile); a later one, woken by
	// the writes, covers the rest, and the head of seq 22 follows it.
	ev.waitSynced(t, 27)
	ev.waitHead(t, 22)
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
	ev := hookEvents(&o)
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
	ev.waitSynced(t, 16)
	ev.waitHead(t, 11)
	st, err := os.Stat(logPath)
	require.NoError(t, err)
	require.Equal(t, st.Size(), durable.Load())

	// From here every fsync fails (after a delay), so nothing more is durable.
	failing.Store(true)
	for i := range 25 { // more checkpoints: written, never fsynced
		require.NoError(t, l.Emit(context.Background(), testEvent(100+i)), "acknowledged after write(2)")
	}
	openRelease.Do(func() { close(release) })
	require.ErrorIs(t, ev.waitSyncFailed(t), errInjected)
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
	require.Equal(t, DurabilityWrite, o.Durability, "the default: acknowledged after write(2)")
}

// TestSIGKILLKeepsWrittenRecords: at the default durability (write), a
// process crash loses nothing acknowledged (the page cache survives the
// process). Issue 13, the durability default.
func TestSIGKILLKeepsWrittenRecords(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns child processes")
	}
	dir := t.TempDir()
	acked := map[string]bool{}
	for round := range 3 {
		ids := runAndKill(t, dir, ModeGroup, 200<<round) // the default durability
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
// SyncInterval (one fsync per interval, whatever the record rate), and a
// write is fsynced without any further write once the interval has passed.
// The interval timer is injected and fired by the test.
func TestWriteDurabilitySyncInterval(t *testing.T) {
	dir := t.TempDir()
	o := writeOptions(dir, ModeGroup)
	o.SyncInterval = 50 * time.Millisecond
	ev := hookEvents(&o)
	timers := make(chan chan time.Time, 16)
	var waits atomic.Int64 // the intervals asked for, added up
	o.after = func(d time.Duration) <-chan time.Time {
		waits.Add(int64(d))
		c := make(chan time.Time, 1)
		timers <- c
		return c
	}
	var syncs atomic.Int64
	o.syncFile = func(f *os.File) error {
		syncs.Add(1)
		return f.Sync()
	}
	l := openTest(t, o)
	defer l.Close()

	require.NoError(t, l.Emit(context.Background(), testEvent(0)))
	ev.waitSynced(t, 1) // the first write is fsynced at once
	timer := <-timers   // then the syncer waits one interval
	for i := 1; i <= 100; i++ {
		require.NoError(t, l.Emit(context.Background(), testEvent(i)))
	}
	require.EqualValues(t, 1, syncs.Load(), "no fsync within the interval, however many records")
	require.Equal(t, uint64(1), syncedSeq(l))

	timer <- time.Time{} // the interval passes: one fsync covers all 100 (and the checkpoints)
	l.mu.Lock()
	last := l.seq
	l.mu.Unlock()
	ev.waitSynced(t, last)
	require.EqualValues(t, 2, syncs.Load())
	timer = <-timers

	// An interval passes with no writes: no fsync. The next write is
	// fsynced at once, by one fsync.
	timer <- time.Time{}
	require.NoError(t, l.Emit(context.Background(), testEvent(101)))
	ev.waitSynced(t, last+1)
	require.EqualValues(t, 3, syncs.Load())
	<-timers
	require.EqualValues(t, 3*o.SyncInterval, waits.Load(), "each wait is one SyncInterval")
	require.NoError(t, l.Close())
}

// TestDefaultDurabilityOSCrash proves design 0002's guarantee at the default
// durability (issue 13, the durability default): an OS crash or power loss
// can lose only the records written after the last completed fsync; what
// survives (any prefix of the log from that point on, possibly with a torn
// final line) verifies against the head on disk, which never names a record
// past that fsync; the log reopens and continues its chain. The crash is
// simulated by copying the directory with the log cut where the page cache
// could have lost it, while the syncer is held inside an fsync.
func TestDefaultDurabilityOSCrash(t *testing.T) {
	dir := t.TempDir()
	o := Options{Dir: dir, MasterKey: testMasterKey, CheckpointEvery: 10, Clock: newFakeClock().Now}
	ev := hookEvents(&o)
	var holding atomic.Bool
	entered := make(chan struct{}, 16)
	release := make(chan struct{})
	var durable atomic.Int64 // log bytes covered by the last completed fsync
	o.syncFile = func(f *os.File) error {
		st, err := f.Stat() // written before the fsync starts: covered by it
		if err != nil {
			return err
		}
		if holding.Load() {
			entered <- struct{}{}
			<-release
		}
		if err := f.Sync(); err != nil {
			return err
		}
		durable.Store(st.Size())
		return nil
	}
	l := openTest(t, o)
	require.Equal(t, DurabilityWrite, l.opts.Durability, "the default")
	var releaseOnce sync.Once
	defer func() {
		releaseOnce.Do(func() { close(release) })
		l.Close()
	}()

	for i := range 15 { // seq 1..10, checkpoint 11, seq 12..16
		require.NoError(t, l.Emit(context.Background(), testEvent(i)))
	}
	ev.waitSynced(t, 16)
	ev.waitHead(t, 11)

	// From here the syncer is held inside its next fsync: 25 records are
	// acknowledged (written) but not durable, with checkpoints among them.
	holding.Store(true)
	for i := range 25 {
		require.NoError(t, l.Emit(context.Background(), testEvent(100+i)))
	}
	<-entered
	logBytes, err := os.ReadFile(filepath.Join(dir, LogFile))
	require.NoError(t, err)
	cut := durable.Load()
	require.Greater(t, int64(len(logBytes)), cut, "records past the last fsync")
	require.Equal(t, uint64(11), headSeq(t, dir), "the head stays within the fsynced prefix")

	// What the page cache may have kept past the fsync: nothing, one whole
	// record more, or a torn part of it.
	nextLine := int64(strings.IndexByte(string(logBytes[cut:]), '\n')) + 1
	for _, tc := range []struct {
		name       string
		keep       int64
		events     int
		recoveries int
	}{
		{"at the fsync", cut, 15, 0},
		{"torn record after it", cut + nextLine/2, 15, 1},
		{"one whole record after it", cut + nextLine, 16, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			crashed := crashCopy(t, dir, logBytes[:tc.keep])
			rep, err := Verify(crashed, nil)
			require.NoError(t, err, "the log as an OS crash can leave it verifies")
			require.EqualValues(t, 11, rep.HeadSeq)

			l2 := openTest(t, Options{Dir: crashed, MasterKey: testMasterKey})
			require.NoError(t, l2.Emit(context.Background(), testEvent(999)))
			require.NoError(t, l2.Close())
			rep, err = Verify(crashed, nil)
			require.NoError(t, err)
			require.EqualValues(t, tc.events+1, rep.Events, "only records after the last fsync are lost")
			require.EqualValues(t, tc.recoveries, rep.Recoveries)
			require.Equal(t, rep.LastSeq, rep.HeadSeq)
		})
	}

	// The process itself did not crash: release the fsync, and everything
	// acknowledged is durable and covered by the final head.
	releaseOnce.Do(func() { close(release) })
	require.NoError(t, l.Close())
	rep, err := Verify(dir, nil)
	require.NoError(t, err)
	require.EqualValues(t, 40, rep.Events)
	require.Equal(t, rep.LastSeq, rep.HeadSeq)
}

// crashCopy copies the audit directory dir (key, public key, head) into a
// new directory with log as its audit.log: the state a crash left.
func crashCopy(t *testing.T, dir string, log []byte) string {
	t.Helper()
	out := t.TempDir()
	for _, name := range []string{KeyFile, PubFile, HeadFile} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(out, name), b, 0o600))
	}
	require.NoError(t, os.WriteFile(filepath.Join(out, LogFile), log, 0o600))
	return out
}
