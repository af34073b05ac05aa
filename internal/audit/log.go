package audit

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// Durability modes.
const (
	// ModeSync writes and fsyncs each record on its own before Emit returns.
	ModeSync = "sync"
	// ModeGroup batches concurrent records: one write and one fsync per
	// batch; each Emit returns when its batch is durable.
	ModeGroup = "group"
)

// Durability levels: when Emit acknowledges a record.
const (
	// DurabilityFsync acknowledges a record once it has been written and
	// fsynced, according to Mode.
	DurabilityFsync = "fsync"
	// DurabilityWrite (the default) acknowledges a record once it has been appended to the
	// log file with write(2), in chain order: it is in the page cache, so a
	// crash of the process loses nothing acknowledged, but an OS crash or
	// power loss can lose the records written since the last completed
	// fsync. A background syncer fsyncs as soon as records are written, and
	// audit.head only ever names a record that has been fsynced.
	DurabilityWrite = "write"
)

// Defaults for Options.
const (
	DefaultGroupWindow        = 2 * time.Millisecond
	DefaultSyncInterval       = 5 * time.Millisecond
	DefaultCheckpointEvery    = 1000
	DefaultCheckpointInterval = 10 * time.Second
	maxBatchRecords           = 8192
	headMinInterval           = 100 * time.Millisecond
)

var (
	// ErrClosed is returned by Emit after Close.
	ErrClosed = errors.New("audit: log is closed")
	// ErrFailed wraps the first write or fsync failure. Once it happens every
	// Emit fails (fail closed) until the log is reopened.
	ErrFailed = errors.New("audit: log failed; no more events can be recorded until it is reopened")
)

// Options configure a Log. Dir and MasterKey are required.
type Options struct {
	Dir  string // the audit directory (audit.log, audit.head, audit.key, audit.pub)
	Mode string // ModeSync or ModeGroup (default); see Durability
	// Durability is DurabilityWrite (default) or DurabilityFsync. With
	// DurabilityWrite, Mode and GroupWindow do not apply: each Emit appends
	// its record under the log mutex on its own goroutine (like ModeSync
	// without the fsync) and one background syncer fsyncs behind the
	// writers, so there is nothing left to batch.
	Durability string
	// SyncInterval paces the background fsync of DurabilityWrite: at most
	// one fsync per interval (default 5ms; negative: fsync again as soon as
	// one ends). Together with the fsync's own time it bounds what an OS
	// crash can lose, and it keeps the fsync rate (and the filesystem
	// journal's CPU) independent of the request rate.
	SyncInterval time.Duration
	// GroupWindow is how long the group writer may hold the oldest pending
	// record to gather a larger batch (default 2ms; negative: never wait).
	// It stops waiting early once as many records are pending as the last
	// batch held, so a lone emitter is not delayed.
	GroupWindow time.Duration
	// A checkpoint is written after CheckpointEvery records (default 1000)
	// or CheckpointInterval (default 10s), whichever comes first.
	CheckpointEvery    int
	CheckpointInterval time.Duration
	// MasterKey (32 bytes) seals the Ed25519 signing key at rest (audit.key).
	MasterKey []byte
	Logger    *slog.Logger     // the caller sets component=audit
	Clock     func() time.Time // default time.Now

	// syncFile fsyncs the log file (default (*os.File).Sync). Tests inject
	// failures and delays through it.
	syncFile func(*os.File) error
	// after paces the background syncer of DurabilityWrite (default
	// time.After). Tests fire it by hand instead of waiting.
	after func(time.Duration) <-chan time.Time
	// onSync, when set, is called after every background fsync of
	// DurabilityWrite with the last seq it was to cover and its error.
	// onHead, when set, is called after every head file write with the
	// head's seq. Both are test hooks: tests wait on them, never on time.
	onSync func(seq uint64, err error)
	onHead func(seq uint64)
}

// Validate checks o and fills defaults. It does no I/O.
func (o *Options) Validate() error {
	var errs []error
	if o.Dir == "" {
		errs = append(errs, errors.New("audit: Dir is required"))
	}
	switch o.Mode {
	case "":
		o.Mode = ModeGroup
	case ModeSync, ModeGroup:
	default:
		errs = append(errs, fmt.Errorf("audit: Mode %q: want %q or %q", o.Mode, ModeSync, ModeGroup))
	}
	switch o.Durability {
	case "":
		o.Durability = DurabilityWrite
	case DurabilityFsync, DurabilityWrite:
	default:
		errs = append(errs, fmt.Errorf("audit: Durability %q: want %q or %q", o.Durability, DurabilityFsync, DurabilityWrite))
	}
	if len(o.MasterKey) != 32 {
		errs = append(errs, errors.New("audit: MasterKey must be 32 bytes"))
	}
	if o.CheckpointEvery < 0 || o.CheckpointInterval < 0 {
		errs = append(errs, errors.New("audit: checkpoint settings must not be negative"))
	}
	if o.GroupWindow == 0 {
		o.GroupWindow = DefaultGroupWindow
	}
	if o.SyncInterval == 0 {
		o.SyncInterval = DefaultSyncInterval
	}
	if o.CheckpointEvery == 0 {
		o.CheckpointEvery = DefaultCheckpointEvery
	}
	if o.CheckpointInterval == 0 {
		o.CheckpointInterval = DefaultCheckpointInterval
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.syncFile == nil {
		o.syncFile = (*os.File).Sync
	}
	if o.after == nil {
		o.after = time.After
	}
	return errors.Join(errs...)
}

// Log is the hash-chained, checkpointed audit log of one directory. It
// implements Emitter. All methods are safe for concurrent use. Only one Log
// (one process) may have a directory open at a time.
type Log struct {
	opts   Options
	log    *slog.Logger
	clock  func() time.Time
	priv   ed25519.PrivateKey
	pub    ed25519.PublicKey
	keyID  string
	lockF  *os.File
	m      *metrics
	bufs   sync.Pool
	stopCh chan struct{}
	doneCh chan struct{}

	// mu guards the file and the chain state below.
	mu        sync.Mutex
	f         *os.File
	seq       uint64
	prevHex   [64]byte
	sinceCkpt int // records after the last checkpoint record
	lastCkpt  time.Time
	err       error // sticky failure
	closed    bool
	wbuf      []byte

	// Durability write (deferSync): commit only writes; the syncer fsyncs.
	// deferSync is set once in Open, before any goroutine starts. synced is
	// the last seq covered by a completed fsync and pendHead the newest head
	// whose checkpoint record is written but not yet fsynced; both are
	// guarded by mu.
	deferSync bool
	synced    uint64
	pendHead  *Checkpoint
	syncWake  chan struct{}
	syncDone  chan struct{}

	// qmu guards the group-mode queue and the closed state.
	qmu       sync.Mutex
	cur       *batch
	lastBatch int
	qerr      error // ErrClosed or the sticky failure, seen before enqueueing
	wake      chan struct{}

	// head writer: the newest signed head waiting to be written.
	hmu      sync.Mutex
	headNext *Checkpoint
	headWake chan struct{}
	headDone chan struct{}
}

var _ Emitter = (*Log)(nil)

type batch struct {
	evs   []*[]byte
	first time.Time
	done  chan struct{}
	err   error
}

func newBatch() *batch { return &batch{done: make(chan struct{})} }

// Open opens (creating if needed) the audit log in opts.Dir, verifies the
// whole existing chain, recovers a torn final line left by a crash, and
// starts the background writer. A chain that does not verify for any other
// reason is refused: Open never repairs tampering.
func Open(opts Options) (*Log, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	l := &Log{
		opts: opts, clock: opts.Clock,
		log:    opts.Logger,
		m:      newMetrics(),
		stopCh: make(chan struct{}), doneCh: make(chan struct{}),
		wake: make(chan struct{}, 1), headWake: make(chan struct{}, 1), headDone: make(chan struct{}),
		cur: newBatch(),
	}
	l.bufs.New = func() any { b := make([]byte, 0, 1024); return &b }
	if err := os.MkdirAll(opts.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("audit: open: %w", err)
	}
	if err := l.lock(); err != nil {
		return nil, err
	}
	if err := l.openLog(); err != nil {
		l.lockF.Close()
		if l.f != nil {
			l.f.Close()
		}
		return nil, err
	}
	// Everything Open itself appended (a recovery record) is fsynced.
	if opts.Durability == DurabilityWrite {
		l.deferSync = true
		l.synced = l.seq
		l.syncWake = make(chan struct{}, 1)
		l.syncDone = make(chan struct{})
		go l.syncer()
	}
	go l.headWriter()
	go l.run()
	return l, nil
}

func (l *Log) lock() error {
	f, err := os.OpenFile(filepath.Join(l.opts.Dir, lockFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("audit: open lock: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return fmt.Errorf("audit: %s is in use by another process: %w", l.opts.Dir, err)
	}
	l.lockF = f
	return nil
}

func (l *Log) openLog() error {
	dir := l.opts.Dir
	path := filepath.Join(dir, LogFile)
	size, err := fileSize(path)
	if err != nil {
		return fmt.Errorf("audit: open: %w", err)
	}
	if l.priv, err = loadOrCreateSigningKey(dir, l.opts.MasterKey, size > 0); err != nil {
		return err
	}
	l.pub = l.priv.Public().(ed25519.PublicKey)
	l.keyID = KeyID(l.pub)

	head, err := readHead(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("audit: open: %w", err)
	}
	if head != nil && !head.verify(l.pub) {
		return fmt.Errorf("audit: open: %s signature is invalid; refusing to continue a log that may have been tampered with", HeadFile)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("audit: open: %w", err)
	}
	l.f = f
	st, p, err := scan(f, l.pub, head)
	if err != nil {
		return fmt.Errorf("audit: open: read %s: %w", LogFile, err)
	}
	if p != nil {
		return fmt.Errorf("audit: open refused, the log does not verify (run `gatehouse audit verify`): %w", p)
	}
	if head == nil && st.records > 0 {
		return fmt.Errorf("audit: open refused: %s is missing but %s has %d records", HeadFile, LogFile, st.records)
	}
	l.seq = st.lastSeq
	hex.Encode(l.prevHex[:], st.lastHash[:])
	if st.records == 0 {
		copy(l.prevHex[:], GenesisHash)
	}
	l.sinceCkpt = st.sinceCkpt
	l.lastCkpt = st.lastCkptTime
	if l.lastCkpt.IsZero() {
		l.lastCkpt = l.clock()
	}

	var rec *Recovery
	if st.tornBytes > 0 {
		if rec, err = l.truncateTorn(st.goodOffset, st.tornBytes); err != nil {
			return err
		}
	}
	if size == 0 || head == nil {
		if err := syncDir(dir); err != nil {
			return fmt.Errorf("audit: open: sync dir: %w", err)
		}
	}
	if head == nil {
		// Genesis head: from now on a missing head means tampering.
		c := signCheckpoint(l.priv, l.keyID, 0, GenesisHash, l.clock())
		if err := writeHead(dir, c, true); err != nil {
			return err
		}
	}
	if rec == nil && head != nil && st.records > 0 && st.sinceCkpt == 0 && head.Seq < l.seq {
		// The log ends with a checkpoint whose head was never written (the
		// process died in between): make the log durable, then write it.
		if err := l.f.Sync(); err != nil {
			return fmt.Errorf("audit: open: sync: %w", err)
		}
		if err := writeHead(dir, signCheckpoint(l.priv, l.keyID, l.seq, string(l.prevHex[:]), l.clock()), true); err != nil {
			return err
		}
	}
	if rec != nil {
		payload, _ := json.Marshal(rec)
		l.mu.Lock()
		err := l.commit(nil, payload)
		l.mu.Unlock()
		if err != nil {
			return err
		}
		l.log.Warn("audit: recovered a torn final line after a crash",
			"truncated_bytes", rec.TruncatedBytes, "saved_as", rec.SavedAs, "seq", l.seq)
	}
	return nil
}

// truncateTorn saves the torn tail to a side file and cuts it off.
func (l *Log) truncateTorn(good, n int64) (*Recovery, error) {
	torn := make([]byte, n)
	if _, err := l.f.ReadAt(torn, good); err != nil {
		return nil, fmt.Errorf("audit: open: read torn tail: %w", err)
	}
	sum := sha256.Sum256(torn)
	name := LogFile + ".torn-" + strconv.FormatUint(l.seq+1, 10) + "-" + strconv.FormatInt(time.Now().UnixNano(), 10)
	if err := os.WriteFile(filepath.Join(l.opts.Dir, name), torn, 0o600); err != nil {
		return nil, fmt.Errorf("audit: open: save torn tail: %w", err)
	}
	if err := l.f.Truncate(good); err != nil {
		return nil, fmt.Errorf("audit: open: truncate torn tail: %w", err)
	}
	if err := l.f.Sync(); err != nil {
		return nil, fmt.Errorf("audit: open: sync after truncation: %w", err)
	}
	return &Recovery{
		Reason:         "torn final line after a crash (unacknowledged record)",
		TruncatedBytes: n, SHA256: hex.EncodeToString(sum[:]), SavedAs: name,
	}, nil
}

// PublicKey returns the Ed25519 key that verifies this log's checkpoints.
func (l *Log) PublicKey() ed25519.PublicKey { return l.pub }

// Healthy returns nil while the log accepts events, ErrClosed after Close,
// and the sticky failure (wrapping ErrFailed) after a write or fsync error.
// Readiness checks use it.
func (l *Log) Healthy() error {
	l.qmu.Lock()
	defer l.qmu.Unlock()
	return l.qerr
}

// Dir returns the audit directory.
func (l *Log) Dir() string { return l.opts.Dir }

// Emit appends e to the log and returns once it is durable: fsynced with
// DurabilityFsync, written to the log file (in the page cache, fsynced
// shortly after by the syncer) with DurabilityWrite. It fills e.Time when
// zero. An error means the event was not (or not provably) recorded and the
// caller must fail the access it describes. After a write or fsync failure
// (including a background fsync) every Emit fails until the log is reopened.
func (l *Log) Emit(ctx context.Context, e Event) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("audit: emit: %w", err)
	}
	if e.Time.IsZero() {
		e.Time = l.clock()
	}
	bp := l.bufs.Get().(*[]byte)
	b, err := encodeEvent((*bp)[:0], &e)
	*bp = b
	if err != nil {
		l.putBuf(bp)
		l.m.errors.Inc()
		return err
	}
	if l.opts.Mode == ModeSync || l.deferSync {
		return l.emitDirect(bp)
	}
	l.qmu.Lock()
	if l.qerr != nil {
		err := l.qerr
		l.qmu.Unlock()
		l.putBuf(bp)
		return err
	}
	bt := l.cur
	bt.evs = append(bt.evs, bp)
	n := len(bt.evs)
	if n == 1 {
		bt.first = time.Now()
	}
	target := l.lastBatch
	l.qmu.Unlock()
	if n == 1 || n >= target || n >= maxBatchRecords {
		select {
		case l.wake <- struct{}{}:
		default:
		}
	}
	select {
	case <-bt.done:
		return bt.err
	case <-ctx.Done():
		return fmt.Errorf("audit: emit: gave up waiting for durability (the record may still be written): %w", ctx.Err())
	}
}

// emitDirect commits one record under l.mu on the caller's goroutine: mode
// sync, and durability write (where commit does not fsync).
func (l *Log) emitDirect(bp *[]byte) error {
	l.qmu.Lock()
	qerr := l.qerr
	l.qmu.Unlock()
	if qerr != nil {
		l.putBuf(bp)
		return qerr
	}
	l.mu.Lock()
	err := l.commit([]*[]byte{bp}, nil)
	l.mu.Unlock()
	l.putBuf(bp)
	return err
}

func (l *Log) putBuf(bp *[]byte) {
	if cap(*bp) <= 64<<10 {
		l.bufs.Put(bp)
	}
}

// run is the background writer: group batches and interval checkpoints.
func (l *Log) run() {
	defer close(l.doneCh)
	tick := time.NewTicker(min(l.opts.CheckpointInterval/2+1, time.Second))
	defer tick.Stop()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case <-l.stopCh:
			l.flushQueue()
			return
		case <-tick.C:
			l.mu.Lock()
			if l.err == nil && l.sinceCkpt > 0 && l.clock().Sub(l.lastCkpt) >= l.opts.CheckpointInterval {
				_ = l.commit(nil, nil)
			}
			l.mu.Unlock()
			continue
		case <-timer.C:
		case <-l.wake:
		}
		// Group mode: take the pending batch, or wait for it to fill.
		for {
			l.qmu.Lock()
			bt := l.cur
			n := len(bt.evs)
			if n == 0 {
				l.qmu.Unlock()
				break
			}
			if w := l.opts.GroupWindow; w > 0 && n < l.lastBatch && n < maxBatchRecords {
				if wait := w - time.Since(bt.first); wait > 0 {
					l.qmu.Unlock()
					timer.Reset(wait)
					break
				}
			}
			l.cur = newBatch()
			l.lastBatch = n
			l.qmu.Unlock()
			l.writeBatch(bt)
		}
	}
}

func (l *Log) writeBatch(bt *batch) {
	l.mu.Lock()
	bt.err = l.commit(bt.evs, nil)
	l.mu.Unlock()
	close(bt.done)
	for _, bp := range bt.evs {
		l.putBuf(bp)
	}
}

// flushQueue writes whatever is pending; used by Close after qerr is set.
func (l *Log) flushQueue() {
	l.qmu.Lock()
	bt := l.cur
	l.cur = newBatch()
	l.qmu.Unlock()
	if len(bt.evs) > 0 {
		l.writeBatch(bt)
	}
}

// commit appends event records (evs), or a recovery record, then a
// checkpoint if one is due (or forced by an interval tick with evs == nil),
// with one write and one fsync. With deferSync it only writes: the new head,
// if any, waits in pendHead for the syncer's next fsync. Caller holds l.mu.
func (l *Log) commit(evs []*[]byte, recovery []byte) error {
	if l.err != nil {
		return l.err
	}
	if l.closed {
		return ErrClosed
	}
	now := l.clock()
	w := l.wbuf[:0]
	var sum [32]byte
	for _, bp := range evs {
		l.seq++
		w, sum = appendRecord(w, l.seq, now, TypeEvent, &l.prevHex, *bp)
		hex.Encode(l.prevHex[:], sum[:])
	}
	if recovery != nil {
		l.seq++
		w, sum = appendRecord(w, l.seq, now, TypeRecovery, &l.prevHex, recovery)
		hex.Encode(l.prevHex[:], sum[:])
	}
	n := len(evs)
	if recovery != nil {
		n++
	}
	l.sinceCkpt += n
	var head *Checkpoint
	if l.sinceCkpt > 0 && (n == 0 || l.sinceCkpt >= l.opts.CheckpointEvery || now.Sub(l.lastCkpt) >= l.opts.CheckpointInterval) {
		var hc Checkpoint
		w, hc = l.appendCheckpoint(w, now)
		head = &hc
	}
	l.wbuf = w
	if len(w) == 0 {
		return nil
	}
	if _, err := l.f.Write(w); err != nil {
		return l.fail(fmt.Errorf("audit: write: %w", err))
	}
	if l.deferSync {
		if head != nil {
			l.pendHead = head // newest wins; the head writer coalesces anyway
		}
		select {
		case l.syncWake <- struct{}{}:
		default:
		}
	} else {
		t0 := time.Now()
		if err := l.opts.syncFile(l.f); err != nil {
			return l.fail(fmt.Errorf("audit: fsync: %w", err))
		}
		l.m.fsync.Observe(time.Since(t0).Seconds())
	}
	if len(evs) > 0 {
		l.m.appends.Add(float64(len(evs)))
		l.m.batch.Observe(float64(len(evs)))
	}
	if cap(l.wbuf) > 8<<20 {
		l.wbuf = nil
	}
	if head != nil {
		l.m.checkpoints.Inc()
		if !l.deferSync {
			l.queueHead(*head)
		}
	}
	return nil
}

// syncer is the background fsync of durability write. Each round fsyncs
// everything written before it started. Every write signals syncWake; after
// a round the syncer waits SyncInterval before it takes the next signal, so
// while records keep coming there is one fsync per interval, and a record
// waits at most about one interval plus one fsync to become durable.
func (l *Log) syncer() {
	defer close(l.syncDone)
	for {
		select {
		case <-l.stopCh:
			return // Close does the final fsync
		case <-l.syncWake:
			l.syncOnce()
		}
		if d := l.opts.SyncInterval; d > 0 {
			select {
			case <-l.stopCh:
				return
			case <-l.opts.after(d):
			}
		}
	}
}

// syncOnce fsyncs the records written so far and then hands the newest head
// they cover to the head writer, so audit.head never names a record that is
// not yet durable. It holds l.mu only to take and publish its snapshot, not
// across the fsync, so writers go on appending meanwhile. A failed fsync
// fails the log. Calls must not overlap (the syncer, then Close after the
// syncer stopped).
func (l *Log) syncOnce() {
	l.mu.Lock()
	if l.err != nil || l.seq == l.synced {
		l.mu.Unlock()
		return
	}
	// Every write up to target completed under l.mu, before this fsync.
	from, target, head := l.synced+1, l.seq, l.pendHead
	l.pendHead = nil
	l.mu.Unlock()

	t0 := time.Now()
	err := l.opts.syncFile(l.f)
	if hook := l.opts.onSync; hook != nil {
		defer hook(target, err)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.fail(fmt.Errorf("audit: background fsync (records %d..%d written, not durable): %w", from, target, err))
		return
	}
	l.m.fsync.Observe(time.Since(t0).Seconds())
	l.synced = target
	if head != nil {
		l.queueHead(*head)
	}
}

// appendCheckpoint appends a checkpoint record over the current last record
// and returns the head statement over the checkpoint record itself.
func (l *Log) appendCheckpoint(w []byte, now time.Time) ([]byte, Checkpoint) {
	c := signCheckpoint(l.priv, l.keyID, l.seq, string(l.prevHex[:]), now)
	payload, _ := json.Marshal(c)
	l.seq++
	w, sum := appendRecord(w, l.seq, now, TypeCheckpoint, &l.prevHex, payload)
	hex.Encode(l.prevHex[:], sum[:])
	l.sinceCkpt = 0
	l.lastCkpt = now
	return w, signCheckpoint(l.priv, l.keyID, l.seq, string(l.prevHex[:]), now)
}

// fail records the first failure; every later Emit returns it. A later
// failure is logged but does not replace the first. Caller holds l.mu.
func (l *Log) fail(err error) error {
	l.m.errors.Inc()
	if l.err != nil {
		l.log.Error("audit: another failure after the log failed", "err", err)
		return l.err
	}
	l.err = fmt.Errorf("%w: %w", ErrFailed, err)
	l.log.Error("audit: log failed; refusing further events", "err", err)
	l.qmu.Lock()
	if l.qerr == nil || errors.Is(l.qerr, ErrClosed) {
		l.qerr = l.err
	}
	l.qmu.Unlock()
	return l.err
}

// queueHead hands the newest head to the head writer (coalescing).
func (l *Log) queueHead(c Checkpoint) {
	l.hmu.Lock()
	l.headNext = &c
	l.hmu.Unlock()
	select {
	case l.headWake <- struct{}{}:
	default:
	}
}

// headWriter writes signed heads off the append path. A head only ever
// covers records already fsynced, so it may lag but never lead the log.
func (l *Log) headWriter() {
	defer close(l.headDone)
	var last time.Time
	for {
		_, open := <-l.headWake
		if open {
			// Coalesce: at most one head write per headMinInterval while
			// appending; Close writes the final head without waiting.
			if wait := headMinInterval - time.Since(last); wait > 0 {
				select {
				case <-time.After(wait):
				case <-l.stopCh:
				}
			}
		}
		last = time.Now()
		l.hmu.Lock()
		c := l.headNext
		l.headNext = nil
		l.hmu.Unlock()
		if c != nil {
			closing := false
			select {
			case <-l.stopCh:
				closing = true
			default:
			}
			if err := writeHead(l.opts.Dir, *c, closing); err != nil {
				l.mu.Lock()
				l.fail(err)
				l.mu.Unlock()
			} else if hook := l.opts.onHead; hook != nil {
				hook(c.Seq)
			}
		}
		if !open {
			return
		}
	}
}

// Close writes every pending record and a final checkpoint, fsyncs them
// (also with DurabilityWrite), writes the final head, and closes the log.
// Later Emits fail with ErrClosed. Close is idempotent; it returns the
// sticky failure, if any.
func (l *Log) Close() error {
	l.qmu.Lock()
	if errors.Is(l.qerr, ErrClosed) || l.lockF == nil {
		l.qmu.Unlock()
		return nil
	}
	alreadyFailed := l.qerr
	l.qerr = ErrClosed
	l.qmu.Unlock()
	close(l.stopCh)
	<-l.doneCh // drains the group queue
	if l.deferSync {
		<-l.syncDone
	}
	l.mu.Lock()
	if l.err == nil && l.sinceCkpt > 0 {
		_ = l.commit(nil, nil)
	}
	l.closed = true
	l.mu.Unlock()
	if l.deferSync {
		l.syncOnce() // the final fsync; it queues the final head
	}
	l.mu.Lock()
	err := l.err
	l.mu.Unlock()
	close(l.headWake)
	<-l.headDone // writes the final head
	l.mu.Lock()
	if err == nil {
		err = l.err // a failed final head write
	}
	l.mu.Unlock()
	if cerr := l.f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("audit: close: %w", cerr)
	}
	l.lockF.Close()
	l.lockF = nil
	if err == nil && alreadyFailed != nil {
		err = alreadyFailed
	}
	return err
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
