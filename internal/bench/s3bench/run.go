package s3bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
)

// Goals from issue 4 (Performance).
const (
	GoalLatencyRatio    = 1.25 // 1 KiB GET/PUT p50 and p99 vs the proxy floor
	GoalThroughputRatio = 0.95 // 64 MiB GET/PUT vs the proxy floor (issue 13)
	GoalCPURatio        = 2.0  // gateway CPU per 1 KiB request vs the proxy's (issue 13)
	GoalAuditP50        = 1.10 // audit on vs off
	GoalAuditP995       = 1.50
	GoalRSSMiB          = 256
)

// Options configure Run.
type Options struct {
	// Duration is the measured time of the 1 KiB scenario per target, split
	// across rounds and the two operations (default 12s).
	Duration time.Duration
	// Rounds of interleaving (default 3); the target order rotates.
	Rounds int
	// Concurrency is the number of concurrent 1 KiB callers (default 4).
	Concurrency int
	// LargeSize is the large object size (default 64 MiB) and LargeIters
	// how many PUTs and GETs of it each target does per round (default 2).
	LargeSize  int64
	LargeIters int
	// Streams concurrent PUTs then GETs of LargeSize through the gateway
	// for the memory scenario (default 16; 0 with NoStreams: skipped).
	Streams   int
	NoStreams bool
	// StreamsShared runs the memory scenario in two phases that need far
	// less backend disk: Streams concurrent GETs of one shared object, then
	// Streams/2 PUTs of new objects concurrent with Streams/2 GETs of the
	// shared object (64 x 1 GiB then needs about 33 GiB, not 64).
	StreamsShared bool
	// Warmup is the unmeasured 1 KiB run per target before round 1 (default
	// 300ms; negative: none).
	Warmup time.Duration
	// Env configures Setup (Run only).
	Env EnvOptions
	// Progress receives one line per measured slot; nil: none.
	Progress io.Writer
}

func (o *Options) fill() error {
	if o.Duration == 0 {
		o.Duration = 12 * time.Second
	}
	if o.Rounds == 0 {
		o.Rounds = 3
	}
	if o.Concurrency == 0 {
		o.Concurrency = 4
	}
	if o.LargeSize == 0 {
		o.LargeSize = 64 << 20
	}
	if o.LargeIters == 0 {
		o.LargeIters = 2
	}
	if o.Streams == 0 && !o.NoStreams {
		o.Streams = 16
	}
	if o.Warmup == 0 {
		o.Warmup = 300 * time.Millisecond
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	if o.Duration < 0 || o.Rounds < 1 || o.Concurrency < 1 || o.LargeSize < 1 || o.LargeIters < 1 || o.Streams < 0 {
		return errors.New("s3bench: duration, rounds, concurrency, large size and iterations must be positive")
	}
	return nil
}

// OpResult is one operation against one target.
type OpResult struct {
	Target Target `json:"target"`
	Op     string `json:"op"`
	N      int64  `json:"requests"`
	// Latency percentiles in microseconds (1 KiB).
	P50Micros  float64 `json:"p50_us,omitempty"`
	P99Micros  float64 `json:"p99_us,omitempty"`
	P995Micros float64 `json:"p99_5_us,omitempty"`
	PerSec     float64 `json:"per_sec,omitempty"`
	// MiBPerSec is the throughput (large objects).
	MiBPerSec float64 `json:"mib_per_s,omitempty"`
	// CPUMicrosPerReq is this process's CPU time (getrusage user+system)
	// during the measured slots divided by requests: it includes the
	// in-process SDK client (and, for proxy and gateways, the server).
	CPUMicrosPerReq float64 `json:"process_cpu_us_per_req"`
	// Ratios vs the proxy floor (latency: this / floor, throughput: this /
	// floor).
	P50VsFloor float64 `json:"p50_vs_floor,omitempty"`
	P99VsFloor float64 `json:"p99_vs_floor,omitempty"`
	TputVsFlr  float64 `json:"throughput_vs_floor,omitempty"`

	lat     []time.Duration
	elapsed time.Duration
	bytes   int64
	cpu     time.Duration
}

// Streams is the memory scenario.
type Streams struct {
	Target    Target  `json:"target"`
	Streams   int     `json:"streams"`
	SizeMiB   float64 `json:"size_mib_each"`
	Op        string  `json:"op"`
	Seconds   float64 `json:"seconds"`
	MiBPerSec float64 `json:"mib_per_s"`
	// RSS of this process in MiB: before the phase, and the peak during it
	// (VmHWM after resetting it through /proc/self/clear_refs, or the
	// sampled VmRSS maximum when that is not possible).
	RSSBeforeMiB float64 `json:"rss_before_mib"`
	PeakRSSMiB   float64 `json:"peak_rss_mib"`
	PeakMethod   string  `json:"peak_method"`
	// PeakGoHeapMiB is the sampled maximum of runtime/metrics
	// /memory/classes/heap/objects:bytes.
	PeakGoHeapMiB float64 `json:"peak_go_heap_mib"`
}

// Report is the result of Run.
type Report struct {
	GOMAXPROCS  int        `json:"gomaxprocs"`
	Rounds      int        `json:"rounds"`
	Concurrency int        `json:"concurrency"`
	SlotMillis  float64    `json:"slot_ms"`
	LargeMiB    float64    `json:"large_mib"`
	LargeIters  int        `json:"large_iters_per_round"`
	Small       []OpResult `json:"small_1kib"`
	Large       []OpResult `json:"large"`
	// Audit on (gateway, at the default durability "write") vs off
	// (gateway-noaudit), per 1 KiB operation, and the same for the audit
	// log at durability "fsync".
	AuditP50Ratio       map[string]float64 `json:"audit_on_off_p50"`
	AuditP995Ratio      map[string]float64 `json:"audit_on_off_p99_5"`
	AuditFsyncP50Ratio  map[string]float64 `json:"audit_fsync_on_off_p50"`
	AuditFsyncP995Ratio map[string]float64 `json:"audit_fsync_on_off_p99_5"`
	// GatewayCPUMicrosPerReq estimates the gateway's own CPU per request:
	// process CPU per request against the gateway minus against versitygw
	// directly (same client work; versitygw runs in another process).
	GatewayCPUMicrosPerReq map[string]float64 `json:"gateway_cpu_us_per_req"`
	ProxyCPUMicrosPerReq   map[string]float64 `json:"proxy_cpu_us_per_req"`
	Streams                []Streams          `json:"streams,omitempty"`
}

// Run sets up the world, runs the scenario and tears it down.
func Run(ctx context.Context, o Options) (*Report, error) {
	if err := o.fill(); err != nil {
		return nil, err
	}
	if o.Env.ClientConns == 0 {
		o.Env.ClientConns = max(o.Concurrency, o.Streams)
	}
	e, err := Setup(ctx, o.Env)
	if err != nil {
		return nil, err
	}
	rep, rerr := RunEnv(ctx, e, o)
	return rep, errors.Join(rerr, e.Close())
}

type slotFunc func(ctx context.Context, c *awss3.Client, w, i int) (int64, error)

// RunEnv runs the scenario against a prepared Env.
func RunEnv(ctx context.Context, e *Env, o Options) (*Report, error) {
	if err := o.fill(); err != nil {
		return nil, err
	}
	slot := o.Duration / time.Duration(2*o.Rounds)
	rep := &Report{GOMAXPROCS: runtime.GOMAXPROCS(0), Rounds: o.Rounds, Concurrency: o.Concurrency,
		SlotMillis: float64(slot) / float64(time.Millisecond), LargeMiB: float64(o.LargeSize) / (1 << 20), LargeIters: o.LargeIters,
		AuditP50Ratio: map[string]float64{}, AuditP995Ratio: map[string]float64{},
		AuditFsyncP50Ratio: map[string]float64{}, AuditFsyncP995Ratio: map[string]float64{},
		GatewayCPUMicrosPerReq: map[string]float64{}, ProxyCPUMicrosPerReq: map[string]float64{}}

	clients := map[Target]*awss3.Client{}
	for _, t := range Targets {
		c, done := e.Client(t, max(o.Concurrency, o.Streams))
		defer done()
		clients[t] = c
	}
	// Objects to read: 16 small ones and one large one, written through
	// versitygw directly.
	small := smallBody
	for i := range 16 {
		if _, err := clients[Versitygw].PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String(e.Bucket),
			Key: aws.String(fmt.Sprintf("small/get-%02d", i)), Body: bytes.NewReader(small), ContentLength: aws.Int64(1024)}); err != nil {
			return nil, fmt.Errorf("s3bench: prepare: %w", err)
		}
	}
	if _, err := clients[Versitygw].PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String(e.Bucket),
		Key: aws.String("large/get"), Body: newGen(o.LargeSize), ContentLength: aws.Int64(o.LargeSize)},
		awss3.WithAPIOptions(v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware)); err != nil {
		return nil, fmt.Errorf("s3bench: prepare large: %w", err)
	}

	ops := ops(e)
	smallRes := map[string]*OpResult{}
	largeRes := map[string]*OpResult{}
	key := func(t Target, op string) string { return string(t) + "/" + op }
	for _, t := range Targets {
		for _, op := range []string{"PUT", "GET"} {
			smallRes[key(t, op)] = &OpResult{Target: t, Op: op}
			if !smallOnly(t) {
				largeRes[key(t, op)] = &OpResult{Target: t, Op: op}
			}
		}
	}
	if o.Warmup > 0 {
		for _, t := range Targets {
			for _, op := range []string{"PUT", "GET"} {
				if _, err := closedLoop(ctx, clients[t], o.Concurrency, o.Warmup/2, ops[op]); err != nil {
					return nil, fmt.Errorf("s3bench: warm-up %s %s: %w", t, op, err)
				}
			}
		}
	}
	for round := range o.Rounds {
		order := slices.Clone(Targets)
		for range round % len(order) {
			order = append(order[1:], order[0])
		}
		for _, t := range order {
			for _, op := range []string{"PUT", "GET"} {
				r, err := closedLoop(ctx, clients[t], o.Concurrency, slot, ops[op])
				if err != nil {
					return nil, fmt.Errorf("s3bench: round %d %s 1 KiB %s: %w", round+1, t, op, err)
				}
				agg := smallRes[key(t, op)]
				agg.N += r.N
				agg.elapsed += r.elapsed
				agg.cpu += r.cpu
				agg.lat = append(agg.lat, r.lat...)
				fmt.Fprintf(o.Progress, "  round %d %-15s 1 KiB %-3s %7.0f req/s p50 %s\n", round+1, t, op,
					float64(r.N)/r.elapsed.Seconds(), fmtMicros(pct(r.lat, 0.5)))
			}
		}
		for _, t := range order {
			if smallOnly(t) {
				continue
			}
			for _, op := range []string{"PUT", "GET"} {
				r, err := large(ctx, e, clients[t], op, o.LargeSize, o.LargeIters)
				if err != nil {
					return nil, fmt.Errorf("s3bench: round %d %s large %s: %w", round+1, t, op, err)
				}
				agg := largeRes[key(t, op)]
				agg.N += r.N
				agg.elapsed += r.elapsed
				agg.cpu += r.cpu
				agg.bytes += r.bytes
				fmt.Fprintf(o.Progress, "  round %d %-15s %.0f MiB %-3s %7.1f MiB/s\n", round+1, t, float64(o.LargeSize)/(1<<20), op,
					float64(r.bytes)/(1<<20)/r.elapsed.Seconds())
			}
		}
	}
	for _, t := range Targets {
		for _, op := range []string{"PUT", "GET"} {
			r := smallRes[key(t, op)]
			slices.Sort(r.lat)
			r.P50Micros, r.P99Micros, r.P995Micros = micros(pct(r.lat, 0.5)), micros(pct(r.lat, 0.99)), micros(pct(r.lat, 0.995))
			if r.elapsed > 0 {
				r.PerSec = float64(r.N) / r.elapsed.Seconds()
			}
			if r.N > 0 {
				r.CPUMicrosPerReq = float64(r.cpu) / float64(time.Microsecond) / float64(r.N)
			}
		}
	}
	for _, t := range Targets {
		for _, op := range []string{"PUT", "GET"} {
			r, f := smallRes[key(t, op)], smallRes[key(Proxy, op)]
			if f.P50Micros > 0 {
				r.P50VsFloor, r.P99VsFloor = r.P50Micros/f.P50Micros, r.P99Micros/f.P99Micros
			}
			rep.Small = append(rep.Small, *r)
		}
	}
	for _, op := range []string{"PUT", "GET"} {
		on, off, d, p := smallRes[key(Gateway, op)], smallRes[key(GatewayNoAudit, op)], smallRes[key(Versitygw, op)], smallRes[key(Proxy, op)]
		onF := smallRes[key(GatewayAuditFsync, op)]
		if off.P50Micros > 0 {
			rep.AuditP50Ratio[op] = on.P50Micros / off.P50Micros
			rep.AuditP995Ratio[op] = on.P995Micros / off.P995Micros
			rep.AuditFsyncP50Ratio[op] = onF.P50Micros / off.P50Micros
			rep.AuditFsyncP995Ratio[op] = onF.P995Micros / off.P995Micros
		}
		rep.GatewayCPUMicrosPerReq[op] = on.CPUMicrosPerReq - d.CPUMicrosPerReq
		rep.ProxyCPUMicrosPerReq[op] = p.CPUMicrosPerReq - d.CPUMicrosPerReq
	}
	for _, t := range Targets {
		if smallOnly(t) {
			continue
		}
		for _, op := range []string{"PUT", "GET"} {
			r := largeRes[key(t, op)]
			if r.elapsed > 0 {
				r.MiBPerSec = float64(r.bytes) / (1 << 20) / r.elapsed.Seconds()
			}
			if r.N > 0 {
				r.CPUMicrosPerReq = float64(r.cpu) / float64(time.Microsecond) / float64(r.N)
			}
		}
	}
	for _, t := range Targets {
		if smallOnly(t) {
			continue
		}
		for _, op := range []string{"PUT", "GET"} {
			r := largeRes[key(t, op)]
			if f := largeRes[key(Proxy, op)]; f.MiBPerSec > 0 {
				r.TputVsFlr = r.MiBPerSec / f.MiBPerSec
			}
			rep.Large = append(rep.Large, *r)
		}
	}

	if o.Streams > 0 {
		for _, t := range []Target{Versitygw, Gateway} {
			ops := []string{streamPut, streamGet}
			if o.StreamsShared {
				ops = []string{streamGetShared, streamMixed}
			}
			for _, op := range ops {
				s, err := streams(ctx, e, clients[t], t, op, o.Streams, o.LargeSize)
				if err != nil {
					return nil, fmt.Errorf("s3bench: streams %s %s: %w", t, op, err)
				}
				fmt.Fprintf(o.Progress, "  streams %-15s %d x %.0f MiB %-3s peak RSS %.0f MiB\n", t, s.Streams, s.SizeMiB, op, s.PeakRSSMiB)
				rep.Streams = append(rep.Streams, s)
			}
		}
	}
	return rep, nil
}

// smallBody is the 1 KiB object.
var smallBody = bytes.Repeat([]byte("0123456789abcdef"), 64)

// ops are the 1 KiB operations: PUT to one of 8 keys per caller, GET of
// one of the 16 prepared objects.
func ops(e *Env) map[string]slotFunc {
	small := smallBody
	return map[string]slotFunc{
		"PUT": func(ctx context.Context, c *awss3.Client, w, i int) (int64, error) {
			_, err := c.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String(e.Bucket),
				Key: aws.String(fmt.Sprintf("small/put-%d-%d", w, i%8)), Body: bytes.NewReader(small), ContentLength: aws.Int64(1024)})
			return 1024, err
		},
		"GET": func(ctx context.Context, c *awss3.Client, w, i int) (int64, error) {
			out, err := c.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String(e.Bucket), Key: aws.String(fmt.Sprintf("small/get-%02d", (w+i)%16))})
			if err != nil {
				return 0, err
			}
			defer out.Body.Close()
			n, err := io.Copy(io.Discard, out.Body)
			if err == nil && n != 1024 {
				err = fmt.Errorf("GET returned %d bytes", n)
			}
			return n, err
		},
	}
}

type slotResult struct {
	N       int64
	elapsed time.Duration
	cpu     time.Duration
	lat     []time.Duration
}

// closedLoop runs conc callers of f for d and measures each call. Each
// caller makes at least one call, however late it is scheduled, so that a
// loaded machine yields fewer samples, never none.
func closedLoop(ctx context.Context, c *awss3.Client, conc int, d time.Duration, f slotFunc) (*slotResult, error) {
	var stop atomic.Bool
	var firstErr atomic.Value
	lats := make([][]time.Duration, conc)
	var wg sync.WaitGroup
	cpu0, _ := processCPU()
	start := time.Now()
	for w := range conc {
		wg.Go(func() {
			lat := make([]time.Duration, 0, 1024)
			for i := 0; i == 0 || !stop.Load(); i++ {
				t0 := time.Now()
				if _, err := f(ctx, c, w, i); err != nil {
					firstErr.CompareAndSwap(nil, err)
					stop.Store(true)
					return
				}
				lat = append(lat, time.Since(t0))
			}
			lats[w] = lat
		})
	}
	t := time.NewTimer(d)
	select {
	case <-t.C:
	case <-ctx.Done():
	}
	stop.Store(true)
	wg.Wait()
	r := &slotResult{elapsed: time.Since(start)}
	cpu1, _ := processCPU()
	r.cpu = cpu1 - cpu0
	if err, _ := firstErr.Load().(error); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for _, l := range lats {
		r.N += int64(len(l))
		r.lat = append(r.lat, l...)
	}
	return r, nil
}

type largeResult struct {
	N       int64
	bytes   int64
	elapsed time.Duration
	cpu     time.Duration
}

func putLarge(ctx context.Context, c *awss3.Client, bucket, key string, size int64) error {
	// UNSIGNED-PAYLOAD (still SigV4-signed headers), as clients do for
	// large plain-HTTP uploads rather than hashing 64 MiB twice.
	_, err := c.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key),
		Body: newGen(size), ContentLength: aws.Int64(size)},
		awss3.WithAPIOptions(v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware))
	return err
}

func getLarge(ctx context.Context, c *awss3.Client, bucket, key string, size int64) error {
	out, err := c.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return err
	}
	defer out.Body.Close()
	n, err := io.Copy(io.Discard, out.Body)
	if err == nil && n != size {
		err = fmt.Errorf("GET returned %d of %d bytes", n, size)
	}
	return err
}

// large does iters sequential PUTs or GETs of a size-byte object.
func large(ctx context.Context, e *Env, c *awss3.Client, op string, size int64, iters int) (*largeResult, error) {
	cpu0, _ := processCPU()
	start := time.Now()
	for range iters {
		var err error
		if op == "PUT" {
			err = putLarge(ctx, c, e.Bucket, "large/put", size)
		} else {
			err = getLarge(ctx, c, e.Bucket, "large/get", size)
		}
		if err != nil {
			return nil, err
		}
	}
	r := &largeResult{N: int64(iters), bytes: int64(iters) * size, elapsed: time.Since(start)}
	cpu1, _ := processCPU()
	r.cpu = cpu1 - cpu0
	return r, nil
}

// The memory scenario's phases.
const (
	streamPut       = "PUT"         // n PUTs of distinct keys
	streamGet       = "GET"         // n GETs of the keys the PUT phase wrote
	streamGetShared = "GET shared"  // n GETs of one object
	streamMixed     = "PUT+GET"     // n/2 PUTs of distinct keys and n/2 GETs of one object
	sharedStreamKey = "-shared-src" // suffix of the shared object's key
)

// streams runs one phase of n concurrent streams of size bytes (see the
// stream* constants) and measures this process's peak RSS during it.
func streams(ctx context.Context, e *Env, c *awss3.Client, t Target, op string, n int, size int64) (Streams, error) {
	s := Streams{Target: t, Streams: n, SizeMiB: float64(size) / (1 << 20), Op: op}
	key := func(i int) string { return fmt.Sprintf("streams/%s-%d", t, i) }
	shared := fmt.Sprintf("streams/%s%s", t, sharedStreamKey)
	if op == streamGetShared {
		if err := putLarge(ctx, c, e.Bucket, shared, size); err != nil {
			return s, err
		}
	}
	runtime.GC()
	debug.FreeOSMemory()
	before := readStatus()
	s.RSSBeforeMiB = before.rss
	reset := resetPeak()
	var peakRSS, peakHeap atomic.Uint64
	done := make(chan struct{})
	var sampler sync.WaitGroup
	sampler.Go(func() {
		tk := time.NewTicker(20 * time.Millisecond)
		defer tk.Stop()
		for {
			st := readStatus()
			if v := uint64(st.rss * (1 << 20)); v > peakRSS.Load() {
				peakRSS.Store(v)
			}
			if h := heapObjects(); h > peakHeap.Load() {
				peakHeap.Store(h)
			}
			select {
			case <-done:
				return
			case <-tk.C:
			}
		}
	})
	start := time.Now()
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			switch {
			case op == streamPut || (op == streamMixed && i < n/2):
				errs[i] = putLarge(ctx, c, e.Bucket, key(i), size)
			case op == streamGet:
				errs[i] = getLarge(ctx, c, e.Bucket, key(i), size)
			default:
				errs[i] = getLarge(ctx, c, e.Bucket, shared, size)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(done)
	sampler.Wait()
	if err := errors.Join(errs...); err != nil {
		return s, err
	}
	after := readStatus()
	s.Seconds = elapsed.Seconds()
	s.MiBPerSec = float64(n) * s.SizeMiB / elapsed.Seconds()
	s.PeakGoHeapMiB = float64(peakHeap.Load()) / (1 << 20)
	sampled := float64(peakRSS.Load()) / (1 << 20)
	switch {
	case reset && after.hwm > 0:
		s.PeakRSSMiB, s.PeakMethod = max(after.hwm, sampled), "VmHWM (reset via /proc/self/clear_refs)"
	case sampled > 0:
		s.PeakRSSMiB, s.PeakMethod = sampled, "VmRSS sampled every 20ms"
	default:
		s.PeakMethod = "unavailable"
	}
	// Objects no longer needed by a later phase are deleted (disk).
	switch op {
	case streamGet:
		for i := range n {
			_, _ = c.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: aws.String(e.Bucket), Key: aws.String(key(i))})
		}
	case streamMixed:
		for i := range n / 2 {
			_, _ = c.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: aws.String(e.Bucket), Key: aws.String(key(i))})
		}
		_, _ = c.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: aws.String(e.Bucket), Key: aws.String(shared)})
	}
	return s, nil
}

func pct(l []time.Duration, p float64) time.Duration {
	if len(l) == 0 {
		return 0
	}
	if !slices.IsSorted(l) {
		l = slices.Clone(l)
		slices.Sort(l)
	}
	return l[min(len(l)-1, int(float64(len(l))*p))]
}

func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

func fmtMicros(d time.Duration) string {
	if d >= time.Millisecond {
		return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
	}
	return fmt.Sprintf("%.0fµs", micros(d))
}

func fmtUS(us float64) string { return fmtMicros(time.Duration(us * float64(time.Microsecond))) }

func verdict(ok bool) string {
	if ok {
		return "ok"
	}
	return "MISS"
}

// WriteText prints the report as tables.
func (r *Report) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "1 KiB, %d callers\top\treq/s\tp50\tp99\tp99.5\tp50 x floor\tp99 x floor\tprocess CPU-µs/req\t\n", r.Concurrency)
	for _, s := range r.Small {
		fmt.Fprintf(tw, "%s\t%s\t%.0f\t%s\t%s\t%s\t%.2f\t%.2f\t%.0f\t\n", s.Target, s.Op, s.PerSec, fmtUS(s.P50Micros),
			fmtUS(s.P99Micros), fmtUS(s.P995Micros), s.P50VsFloor, s.P99VsFloor, s.CPUMicrosPerReq)
	}
	fmt.Fprintln(tw, "\t\t\t\t\t\t\t\t\t")
	fmt.Fprintf(tw, "%.0f MiB, %d/round\top\tMiB/s\tx floor\tprocess CPU-ms/object\t\t\t\t\t\n", r.LargeMiB, r.LargeIters)
	for _, s := range r.Large {
		fmt.Fprintf(tw, "%s\t%s\t%.1f\t%.2f\t%.1f\t\t\t\t\t\n", s.Target, s.Op, s.MiBPerSec, s.TputVsFlr, s.CPUMicrosPerReq/1000)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "goals (issues 4 and 13):\n")
	for _, s := range r.Small {
		if s.Target == Gateway || s.Target == GatewayAuditFsync {
			fmt.Fprintf(w, "  1 KiB %s %s/floor  p50 %.2fx  p99 %.2fx   (<= %.2fx: %s)\n", s.Op, s.Target, s.P50VsFloor, s.P99VsFloor,
				GoalLatencyRatio, verdict(s.P50VsFloor <= GoalLatencyRatio && s.P99VsFloor <= GoalLatencyRatio))
		}
	}
	for _, s := range r.Large {
		if s.Target == Gateway {
			fmt.Fprintf(w, "  %.0f MiB %s gateway/floor  %.2fx   (>= %.2fx: %s)\n", r.LargeMiB, s.Op, s.TputVsFlr,
				GoalThroughputRatio, verdict(s.TputVsFlr >= GoalThroughputRatio))
		}
	}
	for _, a := range []struct {
		name      string
		p50, p995 map[string]float64
	}{{"durability write, the default", r.AuditP50Ratio, r.AuditP995Ratio}, {"durability fsync", r.AuditFsyncP50Ratio, r.AuditFsyncP995Ratio}} {
		for _, op := range []string{"PUT", "GET"} {
			fmt.Fprintf(w, "  audit on/off (%s) 1 KiB %s  p50 %.2fx (<= %.2fx: %s)  p99.5 %.2fx (<= %.2fx: %s)\n", a.name, op,
				a.p50[op], GoalAuditP50, verdict(a.p50[op] <= GoalAuditP50),
				a.p995[op], GoalAuditP995, verdict(a.p995[op] <= GoalAuditP995))
		}
	}
	for _, op := range []string{"PUT", "GET"} {
		g, p := r.GatewayCPUMicrosPerReq[op], r.ProxyCPUMicrosPerReq[op]
		fmt.Fprintf(w, "  gateway CPU per 1 KiB %s: %.0f µs (process CPU/req vs gateway minus vs versitygw; proxy: %.0f µs)  %.2fx (<= %.2fx: %s)\n",
			op, g, p, g/p, GoalCPURatio, verdict(p > 0 && g <= GoalCPURatio*p))
	}
	if len(r.Streams) > 0 {
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintf(tw, "concurrent streams\top\tstreams x MiB\tMiB/s\tRSS before\tpeak RSS\tpeak Go heap\t\n")
		var gwPeak, directPeak float64
		for _, s := range r.Streams {
			fmt.Fprintf(tw, "%s\t%s\t%d x %.0f\t%.1f\t%.0f MiB\t%.0f MiB\t%.0f MiB\t\n", s.Target, s.Op, s.Streams, s.SizeMiB, s.MiBPerSec,
				s.RSSBeforeMiB, s.PeakRSSMiB, s.PeakGoHeapMiB)
			if s.Target == Gateway {
				gwPeak = max(gwPeak, s.PeakRSSMiB)
			} else {
				directPeak = max(directPeak, s.PeakRSSMiB)
			}
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintf(w, "  peak RSS of the whole process (client + gateway) %.0f MiB; with the client alone (to versitygw) %.0f MiB (<= %d MiB: %s)\n  method: %s\n",
			gwPeak, directPeak, GoalRSSMiB, verdict(gwPeak <= GoalRSSMiB), strings.TrimSpace(r.Streams[0].PeakMethod))
	}
	return nil
}
