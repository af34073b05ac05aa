package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
)

// newBenchCmd returns `gatehouse bench`, scenario runners that report
// ratios against a peer measured in the same run.
func newBenchCmd() *cobra.Command {
	var cpuProfile string
	var stopProfile func()
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Run performance scenarios against a peer measured in the same run",
		PersistentPreRunE: func(*cobra.Command, []string) error {
			if cpuProfile == "" {
				return nil
			}
			f, err := os.Create(cpuProfile)
			if err != nil {
				return err
			}
			if err := pprof.StartCPUProfile(f); err != nil {
				f.Close()
				return err
			}
			stopProfile = func() { pprof.StopCPUProfile(); f.Close() }
			return nil
		},
		PersistentPostRun: func(*cobra.Command, []string) {
			if stopProfile != nil {
				stopProfile()
			}
		},
	}
	cmd.PersistentFlags().StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run to this file (go tool pprof)")
	cmd.AddCommand(newBenchAuditCmd())
	cmd.AddCommand(newBenchSTSCmd())
	cmd.AddCommand(newBenchS3Cmd())
	cmd.AddCommand(newBenchScaleCmd())
	return cmd
}

type auditBenchOpts struct {
	duration        time.Duration
	concurrency     int
	syncConcurrency int
	rounds          int
	dir             string
}

func newBenchAuditCmd() *cobra.Command {
	var o auditBenchOpts
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Audit append throughput and latency: group mode, sync mode and the raw write+fsync floor",
		Long: `Runs four scenarios interleaved in rounds on the same disk:
  group   audit log in group-commit mode, --concurrency emitters
  sync    audit log in sync mode (one fsync per record), --sync-concurrency emitters
  write   audit log at durability write (acknowledged after write(2), fsync paced
          in the background), --sync-concurrency emitters
  floor   a plain loop of one ~500-byte write and one fsync, one goroutine
and reports events/s and p50/p99 append latency, with ratios vs the floor.`,
		Args:         cobra.NoArgs,
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runAuditBench(cmd.Context(), cmd.OutOrStdout(), o)
		},
	}
	fl := cmd.Flags()
	fl.DurationVar(&o.duration, "duration", 30*time.Second, "total measured time, split across scenarios and rounds")
	fl.IntVar(&o.concurrency, "concurrency", 256, "concurrent emitters in group mode")
	fl.IntVar(&o.syncConcurrency, "sync-concurrency", 1, "concurrent emitters in sync mode and at durability write")
	fl.IntVar(&o.rounds, "rounds", 3, "interleaved rounds (group, sync, write, floor in each)")
	fl.StringVar(&o.dir, "dir", "", "scratch directory on the disk to measure (default: a new temp dir, removed after)")
	return cmd
}

type benchResult struct {
	name    string
	conc    int
	events  int64
	elapsed time.Duration
	lat     []time.Duration
}

func (r *benchResult) rate() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.events) / r.elapsed.Seconds()
}

func (r *benchResult) pct(p float64) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	return r.lat[min(len(r.lat)-1, int(float64(len(r.lat))*p))]
}

func runAuditBench(ctx context.Context, out io.Writer, o auditBenchOpts) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if o.duration <= 0 || o.concurrency < 1 || o.syncConcurrency < 1 || o.rounds < 1 {
		return errors.New("bench audit: --duration, --concurrency, --sync-concurrency and --rounds must be positive")
	}
	dir := o.dir
	if dir == "" {
		d, err := os.MkdirTemp("", "gatehouse-bench-audit-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dir = d
	} else {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return err
		}
		d, err := os.MkdirTemp(dir, "bench-audit-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		dir = d
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return err
	}
	scenarios := []string{"group", "sync", "write", "floor"}
	slot := o.duration / time.Duration(len(scenarios)*o.rounds)
	fmt.Fprintf(out, "gatehouse bench audit: %d rounds x %d scenarios x %s, dir %s\n", o.rounds, len(scenarios), slot, dir)

	results := map[string]*benchResult{
		"group": {name: "group", conc: o.concurrency},
		"sync":  {name: "sync", conc: o.syncConcurrency},
		"write": {name: "write", conc: o.syncConcurrency},
		"floor": {name: "floor", conc: 1},
	}
	for round := range o.rounds {
		for _, name := range scenarios {
			if err := ctx.Err(); err != nil {
				return err
			}
			sub := filepath.Join(dir, fmt.Sprintf("%s-%d", name, round))
			var r *benchResult
			var err error
			switch name {
			case "floor":
				r, err = benchFloor(sub, slot)
			default:
				r, err = benchLog(ctx, sub, name, results[name].conc, key, slot)
			}
			if err != nil {
				return fmt.Errorf("bench audit: %s: %w", name, err)
			}
			agg := results[name]
			agg.events += r.events
			agg.elapsed += r.elapsed
			agg.lat = append(agg.lat, r.lat...)
			fmt.Fprintf(out, "  round %d %-5s %10.0f events/s\n", round+1, name, r.rate())
			os.RemoveAll(sub)
		}
	}
	floor := results["floor"]
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\temitters\tevents\tevents/s\tp50\tp99\tp99.9\tmax\tx floor events/s\t")
	for _, name := range scenarios {
		r := results[name]
		slices.Sort(r.lat)
		ratio := 0.0
		if floor.rate() > 0 {
			ratio = r.rate() / floor.rate()
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.0f\t%s\t%s\t%s\t%s\t%.2f\t\n", name, r.conc, r.events, r.rate(),
			fmtDur(r.pct(0.50)), fmtDur(r.pct(0.99)), fmtDur(r.pct(0.999)), fmtDur(r.pct(1)), ratio)
	}
	return tw.Flush()
}

func fmtDur(d time.Duration) string {
	switch {
	case d >= time.Millisecond:
		return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.0fµs", float64(d)/float64(time.Microsecond))
	}
}

func benchEvent(w, i int) audit.Event {
	return audit.NewEvent(time.Now, audit.CodeUserUpdated, "scim.user.update").Allow().
		RequestIDs(fmt.Sprintf("bench-%d-%d", w, i), "").
		Actor(audit.Actor{UserID: "u-123", User: "alice@example.com", SourceIP: "10.1.2.3", AuthMethod: "token", UserAgent: "bench/1.0"}).
		Resource(audit.Resource{Type: "user", ID: "u-456", Name: "bob@example.com"}).
		Details(map[string]any{"fields": "displayName", "bytes": 4096}).Event()
}

func benchLog(ctx context.Context, dir, mode string, conc int, key []byte, d time.Duration) (*benchResult, error) {
	o := audit.Options{Dir: dir, Mode: mode, MasterKey: key}
	if mode == "write" {
		o.Mode, o.Durability = audit.ModeSync, audit.DurabilityWrite
	}
	l, err := audit.Open(o)
	if err != nil {
		return nil, err
	}
	var stop atomic.Bool
	var firstErr atomic.Value
	lats := make([][]time.Duration, conc)
	counts := make([]int64, conc)
	var wg sync.WaitGroup
	start := time.Now()
	for w := range conc {
		wg.Go(func() {
			lat := make([]time.Duration, 0, 4096)
			// At least one event each, however late this writer is
			// scheduled: a loaded machine yields fewer samples, never none.
			for i := 0; i == 0 || !stop.Load(); i++ {
				e := benchEvent(w, i)
				t0 := time.Now()
				if err := l.Emit(ctx, e); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				lat = append(lat, time.Since(t0))
			}
			lats[w], counts[w] = lat, int64(len(lat))
		})
	}
	time.Sleep(d)
	stop.Store(true)
	wg.Wait()
	elapsed := time.Since(start)
	cerr := l.Close()
	if err, _ := firstErr.Load().(error); err != nil {
		return nil, err
	}
	if cerr != nil {
		return nil, cerr
	}
	r := &benchResult{name: mode, conc: conc, elapsed: elapsed}
	for w := range conc {
		r.events += counts[w]
		r.lat = append(r.lat, lats[w]...)
	}
	return r, nil
}

// benchFloor is the raw cost of per-record durability on this disk: one
// record-sized write and one fsync per event, from one goroutine.
func benchFloor(dir string, d time.Duration) (*benchResult, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(dir, "floor.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	line := make([]byte, 512)
	line[len(line)-1] = '\n'
	r := &benchResult{name: "floor", conc: 1}
	start := time.Now()
	for r.events == 0 || time.Since(start) < d { // at least one sample
		t0 := time.Now()
		if _, err := f.Write(line); err != nil {
			return nil, err
		}
		if err := f.Sync(); err != nil {
			return nil, err
		}
		r.lat = append(r.lat, time.Since(t0))
		r.events++
	}
	r.elapsed = time.Since(start)
	return r, nil
}
