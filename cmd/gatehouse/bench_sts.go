package main

import (
	"encoding/json"
	"fmt"
	"runtime"
	"time"

	"github.com/spf13/cobra"

	"github.com/gatehouse-dev/gatehouse/internal/bench/stsbench"
)

// newBenchSTSCmd returns `gatehouse bench sts`.
func newBenchSTSCmd() *cobra.Command {
	var (
		o       stsbench.Options
		asJSON  bool
		tokens  int
		dir     string
		handler bool
	)
	cmd := &cobra.Command{
		Use:   "sts",
		Short: "AssumeRoleWithWebIdentity issuance throughput and latency vs a JWT-parse-only floor",
		Long: `Runs AssumeRoleWithWebIdentity with pre-minted RS256 ID tokens (distinct jti, sub and
user name) through the aws-sdk-go-v2 STS client over loopback, against:
  gatehouse  the real STS handler: SQLite store, audit log at the default durability, keyring,
             OIDC provider with its JWKS served on loopback, role with a trust policy
  floor      a server that only parses the form and the JWT (no signature check)
             and returns a canned response captured from gatehouse
  handler    (diagnostic) the real handler called in-process, no SDK or HTTP
in interleaved rounds, in one process. Reports issuances/s, p50/p99 latency, the
ratio vs the floor and process CPU-µs per issuance (getrusage delta / issuances;
the client runs in-process, so the server-side share is estimated as gatehouse
minus floor, and measured directly by the handler scenario).`,
		Args:         cobra.NoArgs,
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			out := cmd.OutOrStdout()
			o.Env = stsbench.EnvOptions{Dir: dir, Tokens: tokens}
			o.NoHandler = !handler
			if !asJSON {
				o.Progress = out
				load := "closed loop"
				if o.Rate > 0 {
					load = fmt.Sprintf("open loop at %.0f/s", o.Rate)
				}
				fmt.Fprintf(out, "gatehouse bench sts: %d rounds x %s per side, %d callers, %s, %d tokens, GOMAXPROCS %d\n",
					o.Rounds, o.Duration/time.Duration(max(o.Rounds, 1)), o.Concurrency, load, tokens, runtime.GOMAXPROCS(0))
			}
			rep, err := stsbench.Run(cmd.Context(), o)
			if err != nil {
				return fmt.Errorf("bench sts: %w", err)
			}
			if asJSON {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(rep)
			}
			return rep.WriteText(out)
		},
	}
	fl := cmd.Flags()
	fl.DurationVar(&o.Duration, "duration", 10*time.Second, "measured time per side, split across rounds")
	fl.IntVar(&o.Concurrency, "concurrency", 32, "concurrent SDK callers")
	fl.IntVar(&o.Rounds, "rounds", 3, "interleaved rounds (gatehouse and floor, order alternating, then handler)")
	fl.Float64Var(&o.Rate, "rate", 0, "open loop: start this many issuances/s in total (latency from the scheduled start); 0: closed loop")
	fl.DurationVar(&o.Warmup, "warmup", 500*time.Millisecond, "unmeasured warm-up per scenario")
	fl.IntVar(&tokens, "tokens", 2048, "pre-minted RS256 tokens in the pool")
	fl.BoolVar(&handler, "handler", true, "also run the in-process handler scenario (server-side CPU, no SDK/HTTP)")
	fl.StringVar(&dir, "dir", "", "scratch directory for the store and audit log (default: a new temp dir, removed after)")
	fl.BoolVar(&asJSON, "json", false, "print the report as JSON")
	return cmd
}
