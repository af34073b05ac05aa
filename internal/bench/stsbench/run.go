package stsbench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/sts"
)

// Handler is the third, diagnostic scenario: the real STS handler called
// in-process (ServeHTTP with a recorder), with no SDK, no HTTP and no
// loopback. Its CPU per issuance is the server-side cost measured directly.
const Handler Side = "handler"

// Goals from issue 3 (Performance): on 2 cores.
const (
	GoalPerSec = 2000
	GoalP99    = 10 * time.Millisecond
)

// Options configure Run.
type Options struct {
	// Duration is the measured time of each side, split evenly across the
	// rounds (default 10s).
	Duration time.Duration
	// Concurrency is the number of concurrent callers (default 32).
	Concurrency int
	// Rounds is the number of interleaved rounds (default 3). Each round
	// runs gatehouse and floor (the order alternates between rounds), then
	// the in-process handler scenario unless NoHandler is set.
	Rounds int
	// Warmup is the unmeasured run of each scenario before round 1
	// (default 500ms; negative: none).
	Warmup time.Duration
	// NoHandler skips the in-process handler scenario.
	NoHandler bool
	// Rate, when positive, makes the run open-loop: calls are started on a
	// fixed schedule of Rate per second (shared by the Concurrency callers)
	// and latency is measured from each call's scheduled start, so time
	// spent queued behind a slow call counts. Zero: closed loop, every
	// caller starts its next call as soon as the last one returns.
	Rate float64
	// Env configures Setup (Run only).
	Env EnvOptions
	// Progress receives one line per measured slot; nil: none.
	Progress io.Writer
}

func (o *Options) fill() error {
	if o.Duration == 0 {
		o.Duration = 10 * time.Second
	}
	if o.Concurrency == 0 {
		o.Concurrency = 32
	}
	if o.Rounds == 0 {
		o.Rounds = 3
	}
	if o.Warmup == 0 {
		o.Warmup = 500 * time.Millisecond
	}
	if o.Progress == nil {
		o.Progress = io.Discard
	}
	if o.Duration < 0 || o.Concurrency < 1 || o.Rounds < 1 || o.Rate < 0 {
		return errors.New("stsbench: duration, concurrency, rounds and rate must be positive")
	}
	return nil
}

// SlotResult is one measured slot of one side.
type SlotResult struct {
	Round     int     `json:"round"`
	Side      Side    `json:"side"`
	Issuances int64   `json:"issuances"`
	PerSec    float64 `json:"issuancesPerSec"`
	P50Micros float64 `json:"p50Micros"`
	P99Micros float64 `json:"p99Micros"`
	// CPUMicrosPerIssuance is process CPU (user+system) over the slot
	// divided by issuances; -1 when not measurable on this platform.
	CPUMicrosPerIssuance float64 `json:"cpuMicrosPerIssuance"`
}

// SideResult aggregates one side over all rounds.
type SideResult struct {
	Side                 Side         `json:"side"`
	Issuances            int64        `json:"issuances"`
	ElapsedSeconds       float64      `json:"elapsedSeconds"`
	PerSec               float64      `json:"issuancesPerSec"`
	P50Micros            float64      `json:"p50Micros"`
	P90Micros            float64      `json:"p90Micros"`
	P99Micros            float64      `json:"p99Micros"`
	P999Micros           float64      `json:"p999Micros"`
	MaxMicros            float64      `json:"maxMicros"`
	CPUSeconds           float64      `json:"cpuSeconds"`
	CPUMicrosPerIssuance float64      `json:"cpuMicrosPerIssuance"`
	Slots                []SlotResult `json:"slots"`

	elapsed, cpu time.Duration
	lat          []time.Duration
	cpuOK        bool
}

// Report is the outcome of a run.
type Report struct {
	Concurrency int     `json:"concurrency"`
	Rounds      int     `json:"rounds"`
	SlotSeconds float64 `json:"slotSeconds"`
	Tokens      int     `json:"tokens"`
	// Rate is the offered load of an open-loop run; 0: closed loop.
	Rate       float64 `json:"rate,omitempty"`
	GOMAXPROCS int     `json:"gomaxprocs"`
	NumCPU     int     `json:"numCPU"`
	GoVersion  string  `json:"goVersion"`

	Gatehouse SideResult  `json:"gatehouse"`
	Floor     SideResult  `json:"floor"`
	Handler   *SideResult `json:"handler,omitempty"`

	// RatioVsFloor is gatehouse issuances/s ÷ floor issuances/s.
	RatioVsFloor float64 `json:"ratioVsFloor"`
	// ServerCPUMicrosOverFloor is gatehouse CPU-µs/issuance minus floor
	// CPU-µs/issuance: client, HTTP and loopback costs are the same on both
	// sides, so the difference is what the gatehouse handler costs beyond
	// parsing the JWT and writing a canned response.
	ServerCPUMicrosOverFloor float64 `json:"serverCpuMicrosOverFloor"`
	// GoalMet: gatehouse ≥ GoalPerSec issuances/s with p99 ≤ GoalP99. In
	// an open-loop run at Rate ≥ GoalPerSec, keeping up (≥ 99% of Rate)
	// counts as the throughput half.
	GoalMet bool `json:"goalMet"`
}

// Run sets up the world, runs the scenario and tears the world down.
func Run(ctx context.Context, o Options) (*Report, error) {
	if err := o.fill(); err != nil {
		return nil, err
	}
	e, err := Setup(ctx, o.Env)
	if err != nil {
		return nil, err
	}
	rep, err := RunEnv(ctx, e, o)
	if cerr := e.Close(); err == nil && cerr != nil {
		return nil, cerr
	}
	return rep, err
}

// RunEnv runs the scenario against an existing world.
func RunEnv(ctx context.Context, e *Env, o Options) (*Report, error) {
	if err := o.fill(); err != nil {
		return nil, err
	}
	slot := o.Duration / time.Duration(o.Rounds)
	conc := o.Concurrency
	var next atomic.Int64 // token index, shared so no two calls in a row reuse a token
	var closers []func()
	defer func() {
		for _, c := range closers {
			c()
		}
	}()
	call := map[Side]func(context.Context, int) error{}
	for _, s := range []Side{Gatehouse, Floor} {
		c, closeIdle := e.NewClient(s, conc)
		closers = append(closers, closeIdle)
		call[s] = func(ctx context.Context, i int) error { return e.Call(ctx, c, i) }
	}
	order := []Side{Gatehouse, Floor}
	if !o.NoHandler {
		call[Handler] = e.handlerCall()
		order = append(order, Handler)
	}
	res := map[Side]*SideResult{}
	for _, s := range order {
		res[s] = &SideResult{Side: s, cpuOK: true}
		if o.Warmup > 0 {
			if _, err := runSlot(ctx, call[s], conc, o.Rate, o.Warmup, &next); err != nil {
				return nil, fmt.Errorf("stsbench: %s warm-up: %w", s, err)
			}
		}
	}
	for round := 1; round <= o.Rounds; round++ {
		sides := slices.Clone(order)
		if round%2 == 0 {
			sides[0], sides[1] = sides[1], sides[0]
		}
		for _, s := range sides {
			r, err := runSlot(ctx, call[s], conc, o.Rate, slot, &next)
			if err != nil {
				return nil, fmt.Errorf("stsbench: %s round %d: %w", s, round, err)
			}
			sr := r.result(round, s)
			agg := res[s]
			agg.Slots = append(agg.Slots, sr)
			agg.Issuances += r.n
			agg.elapsed += r.elapsed
			agg.cpu += r.cpu
			agg.cpuOK = agg.cpuOK && r.cpuOK
			agg.lat = append(agg.lat, r.lat...)
			fmt.Fprintf(o.Progress, "  round %d %-9s %7.0f issuances/s  p50 %s  p99 %s  %s CPU-µs/issuance\n",
				round, s, sr.PerSec, fmtMicros(sr.P50Micros), fmtMicros(sr.P99Micros), fmtCPU(sr.CPUMicrosPerIssuance))
		}
	}
	for _, s := range order {
		res[s].finish()
	}
	rep := &Report{
		Concurrency: conc, Rounds: o.Rounds, SlotSeconds: slot.Seconds(), Tokens: len(e.Tokens), Rate: o.Rate,
		GOMAXPROCS: runtime.GOMAXPROCS(0), NumCPU: runtime.NumCPU(), GoVersion: runtime.Version(),
		Gatehouse: *res[Gatehouse], Floor: *res[Floor], Handler: res[Handler],
	}
	if rep.Floor.PerSec > 0 {
		rep.RatioVsFloor = rep.Gatehouse.PerSec / rep.Floor.PerSec
	}
	if rep.Gatehouse.cpuOK && rep.Floor.cpuOK {
		rep.ServerCPUMicrosOverFloor = rep.Gatehouse.CPUMicrosPerIssuance - rep.Floor.CPUMicrosPerIssuance
	} else {
		rep.ServerCPUMicrosOverFloor = -1
	}
	rep.GoalMet = rep.Gatehouse.P99Micros <= micros(GoalP99) && (rep.Gatehouse.PerSec >= GoalPerSec ||
		o.Rate >= GoalPerSec && rep.Gatehouse.PerSec >= 0.99*o.Rate)
	return rep, nil
}

// handlerCall returns a caller that runs the real handler in-process.
func (e *Env) handlerCall() func(context.Context, int) error {
	bodies := make([]string, len(e.Tokens))
	for i, t := range e.Tokens {
		bodies[i] = url.Values{
			"Action": {sts.ActionAssumeRoleWithWebIdentity}, "Version": {sts.APIVersion},
			"RoleArn": {e.RoleARN}, "RoleSessionName": {SessionName(i)}, "WebIdentityToken": {t},
		}.Encode()
	}
	return func(ctx context.Context, i int) error {
		req := httptest.NewRequestWithContext(ctx, http.MethodPost, "/sts", strings.NewReader(bodies[i%len(bodies)]))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
		req.RemoteAddr = "127.0.0.1:50000"
		rec := httptest.NewRecorder()
		e.Service.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), "<AccessKeyId>ASIA") {
			return fmt.Errorf("handler: %d: %.300s", rec.Code, rec.Body.String())
		}
		return nil
	}
}

type slotRun struct {
	n       int64
	elapsed time.Duration
	cpu     time.Duration
	cpuOK   bool
	lat     []time.Duration
}

// runSlot runs conc callers for d and measures wall time, process CPU and
// per-call latency, closed-loop, or open-loop at rate calls/s when rate > 0.
// The first error stops the slot and is returned.
func runSlot(ctx context.Context, call func(context.Context, int) error, conc int, rate float64, d time.Duration, next *atomic.Int64) (*slotRun, error) {
	runtime.GC() // start every slot with the same heap state, outside the measurement
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var stop atomic.Bool
	var firstErr error
	var errOnce sync.Once
	lats := make([][]time.Duration, conc)
	var wg sync.WaitGroup
	var sched chan time.Time // open loop: scheduled start times
	if rate > 0 {
		sched = make(chan time.Time, 1<<16)
	}
	cpu0, ok0 := processCPU()
	start := time.Now()
	if sched != nil {
		wg.Go(func() { dispatch(sched, &stop, start, rate) })
	}
	for w := range conc {
		wg.Go(func() {
			lat := make([]time.Duration, 0, 1024)
			// At least one call each, however late this caller is
			// scheduled: a loaded machine yields fewer samples, never none.
			for first := true; first || !stop.Load(); first = false {
				i := int(next.Add(1))
				t0 := time.Now()
				if sched != nil {
					var ok bool
					if t0, ok = <-sched; !ok {
						break
					}
				}
				if err := call(ctx, i); err != nil {
					if !stop.Load() {
						errOnce.Do(func() { firstErr = err })
					}
					stop.Store(true)
					break
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
	t.Stop()
	stop.Store(true)
	wg.Wait()
	elapsed := time.Since(start)
	cpu1, ok1 := processCPU()
	if firstErr != nil {
		return nil, firstErr
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	r := &slotRun{elapsed: elapsed, cpu: cpu1 - cpu0, cpuOK: ok0 && ok1}
	for _, l := range lats {
		r.n += int64(len(l))
		r.lat = append(r.lat, l...)
	}
	slices.Sort(r.lat)
	return r, nil
}

// dispatch sends the scheduled start time of every call, start + k/rate,
// until stop, then closes sched. When callers fall behind the sends block,
// and the calls that follow are measured from their (past) schedule.
func dispatch(sched chan<- time.Time, stop *atomic.Bool, start time.Time, rate float64) {
	defer close(sched)
	interval := time.Duration(float64(time.Second) / rate)
	for k := 0; !stop.Load(); {
		due := int(float64(time.Since(start)) / float64(interval))
		for ; k <= due && !stop.Load(); k++ {
			select {
			case sched <- start.Add(time.Duration(k) * interval):
			case <-time.After(10 * time.Millisecond):
				k-- // retry; lets stop be seen while callers are saturated
			}
		}
		time.Sleep(time.Millisecond)
	}
}

func (r *slotRun) result(round int, s Side) SlotResult {
	sr := SlotResult{Round: round, Side: s, Issuances: r.n, CPUMicrosPerIssuance: -1,
		P50Micros: micros(pct(r.lat, 0.50)), P99Micros: micros(pct(r.lat, 0.99))}
	if r.elapsed > 0 {
		sr.PerSec = float64(r.n) / r.elapsed.Seconds()
	}
	if r.cpuOK && r.n > 0 {
		sr.CPUMicrosPerIssuance = micros(r.cpu) / float64(r.n)
	}
	return sr
}

func (r *SideResult) finish() {
	slices.Sort(r.lat)
	r.ElapsedSeconds = r.elapsed.Seconds()
	if r.elapsed > 0 {
		r.PerSec = float64(r.Issuances) / r.elapsed.Seconds()
	}
	r.P50Micros = micros(pct(r.lat, 0.50))
	r.P90Micros = micros(pct(r.lat, 0.90))
	r.P99Micros = micros(pct(r.lat, 0.99))
	r.P999Micros = micros(pct(r.lat, 0.999))
	r.MaxMicros = micros(pct(r.lat, 1))
	r.CPUMicrosPerIssuance = -1
	if r.cpuOK {
		r.CPUSeconds = r.cpu.Seconds()
		if r.Issuances > 0 {
			r.CPUMicrosPerIssuance = micros(r.cpu) / float64(r.Issuances)
		}
	}
	r.lat = nil
}

// pct returns the p-quantile of sorted lat (nearest rank).
func pct(lat []time.Duration, p float64) time.Duration {
	if len(lat) == 0 {
		return 0
	}
	return lat[min(len(lat)-1, int(float64(len(lat))*p))]
}

func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

func fmtMicros(us float64) string {
	if us >= 1000 {
		return fmt.Sprintf("%.2fms", us/1000)
	}
	return fmt.Sprintf("%.0fµs", us)
}

func fmtCPU(us float64) string {
	if us < 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.0f", us)
}

// WriteText writes the report as a table followed by the derived figures.
func (r *Report) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\tissuances\tissuances/s\tp50\tp90\tp99\tp99.9\tmax\tCPU-µs/issuance\tx floor issuances/s\t")
	sides := []*SideResult{&r.Gatehouse, &r.Floor}
	if r.Handler != nil {
		sides = append(sides, r.Handler)
	}
	for _, s := range sides {
		ratio := "-"
		if s.Side != Handler && r.Floor.PerSec > 0 {
			ratio = fmt.Sprintf("%.2f", s.PerSec/r.Floor.PerSec)
		}
		fmt.Fprintf(tw, "%s\t%d\t%.0f\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", s.Side, s.Issuances, s.PerSec,
			fmtMicros(s.P50Micros), fmtMicros(s.P90Micros), fmtMicros(s.P99Micros), fmtMicros(s.P999Micros),
			fmtMicros(s.MaxMicros), fmtCPU(s.CPUMicrosPerIssuance), ratio)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	if r.Rate > 0 {
		fmt.Fprintf(w, "open loop at %.0f issuances/s offered; latency from each call's scheduled start\n", r.Rate)
	}
	fmt.Fprintf(w, "gatehouse vs floor: %.2fx issuances/s\n", r.RatioVsFloor)
	if r.Gatehouse.CPUMicrosPerIssuance >= 0 && r.Floor.CPUMicrosPerIssuance >= 0 {
		fmt.Fprintf(w, "server-side CPU over floor (gatehouse - floor CPU-µs/issuance): %.0f µs\n", r.ServerCPUMicrosOverFloor)
	}
	if r.Handler != nil && r.Handler.CPUMicrosPerIssuance >= 0 {
		fmt.Fprintf(w, "handler in-process (no SDK/HTTP): %.0f CPU-µs/issuance\n", r.Handler.CPUMicrosPerIssuance)
	}
	verdict := "NOT met"
	if r.GoalMet {
		verdict = "met"
	}
	_, err := fmt.Fprintf(w, "goal (>= %d issuances/s, p99 <= %s): %s (%.0f/s, p99 %s)\n",
		GoalPerSec, GoalP99, verdict, r.Gatehouse.PerSec, fmtMicros(r.Gatehouse.P99Micros))
	return err
}
