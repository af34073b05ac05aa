package main

import (
	"encoding/json"
	"fmt"
	"os"
	"runtime"
	"time"

	"github.com/spf13/cobra"

	"github.com/gatehouse-dev/gatehouse/internal/bench/s3bench"
)

// newBenchS3Cmd returns `gatehouse bench s3`.
func newBenchS3Cmd() *cobra.Command {
	var (
		o      s3bench.Options
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "s3",
		Short: "S3 gateway latency, throughput, audit cost, CPU and memory vs versitygw and a reverse-proxy floor",
		Long: `Drives these targets with aws-sdk-go-v2 and real SigV4 signing over loopback, in
interleaved rounds, in one run:
  versitygw           the S3 server itself (start it with: bash .ci/versitygw.sh)
  proxy               a plain httputil.ReverseProxy in front of it (the floor)
  gateway             the gatehouse S3 gateway in front of it: s3 backend, temporary
                      credentials from a real keyring verified and authorized by
                      sts.Service, audit log at the default durability (write),
                      as 'gatehouse serve' runs it
  gateway-auditfsync  the same gateway with its audit log at durability fsync
  gateway-noaudit     the same gateway with a discarding audit emitter
and reports 1 KiB GET/PUT latency (p50/p99/p99.5, ratio vs the floor), large
object GET/PUT throughput (ratio vs the floor), audit on vs off, process CPU-µs
per request (getrusage delta / requests; the SDK client runs in this process and
versitygw in its own, so the gateway's share is gateway minus versitygw), and
the peak RSS of this process while --streams concurrent large objects stream
through the gateway (bodies are generated, never held in memory).`,
		Args:         cobra.NoArgs,
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := cmd.OutOrStdout()
			if o.Streams == 0 {
				o.NoStreams = true
			}
			if !asJSON {
				o.Progress = out
				fmt.Fprintf(out, "gatehouse bench s3: versitygw %s, %d rounds, 1 KiB: %s per target, %d callers; %d MiB x %d per round; streams %d x %d MiB; GOMAXPROCS %d\n",
					o.Env.Endpoint, o.Rounds, o.Duration, o.Concurrency, o.LargeSize>>20, o.LargeIters, o.Streams, o.LargeSize>>20, runtime.GOMAXPROCS(0))
			}
			rep, err := s3bench.Run(cmd.Context(), o)
			if err != nil {
				return fmt.Errorf("bench s3: %w", err)
			}
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(rep)
			}
			return rep.WriteText(out)
		},
	}
	ep := os.Getenv("GATEHOUSE_TEST_S3_ENDPOINT")
	if ep == "" {
		ep = "http://127.0.0.1:7070"
	}
	fl := cmd.Flags()
	fl.DurationVar(&o.Duration, "duration", 12*time.Second, "measured 1 KiB time per target, split across rounds and GET/PUT")
	fl.IntVar(&o.Rounds, "rounds", 3, "interleaved rounds (target order rotates)")
	fl.IntVar(&o.Concurrency, "concurrency", 4, "concurrent 1 KiB callers")
	fl.Int64Var(&o.LargeSize, "large-size", 64<<20, "large object size in bytes (throughput and streams)")
	fl.IntVar(&o.LargeIters, "large-iters", 2, "large PUTs and GETs per target per round")
	fl.IntVar(&o.Streams, "streams", 16, "concurrent large streams for the memory scenario (issue: 64 x 1 GiB; 0: skip)")
	fl.BoolVar(&o.StreamsShared, "streams-shared", false, "memory scenario: --streams GETs of one object, then half PUTs + half GETs (about half the backend disk)")
	fl.DurationVar(&o.Warmup, "warmup", 300*time.Millisecond, "unmeasured 1 KiB warm-up per target")
	fl.StringVar(&o.Env.Endpoint, "endpoint", ep, "versitygw endpoint")
	fl.StringVar(&o.Env.AccessKeyID, "access-key", "gatehouse-test", "versitygw root access key")
	fl.StringVar(&o.Env.SecretAccessKey, "secret-key", "gatehouse-test-secret", "versitygw root secret key")
	fl.StringVar(&o.Env.Bucket, "bucket", "gatehouse-bench", "bucket created on versitygw for the run")
	fl.BoolVar(&o.Env.StageUploads, "stage-uploads", false, "s3 backend StageUploads (server-side copy per PUT; versitygw truncation workaround)")
	fl.StringVar(&o.Env.Dir, "dir", "", "scratch directory for the store and audit log (default: a new temp dir, removed after)")
	fl.BoolVar(&asJSON, "json", false, "print the report as JSON")
	return cmd
}
