package stsbench

import (
	"bytes"
	"context"
	"encoding/json"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
)

// TestScenario runs the whole scenario for about a second and checks that
// every side issued, that the audit log recorded the gatehouse issuances,
// and that the report is complete. No timing is asserted.
func TestScenario(t *testing.T) {
	ctx := context.Background()
	e, err := Setup(ctx, EnvOptions{Dir: t.TempDir(), Tokens: 64})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, e.Close()) })

	// The floor refuses what is not a JWT from the bench issuer.
	c, done := e.NewClient(Floor, 1)
	defer done()
	saved := e.Tokens[0]
	e.Tokens[0] = "not.a.jwt"
	require.Error(t, e.Call(ctx, c, 0))
	e.Tokens[0] = saved
	require.NoError(t, e.Call(ctx, c, 0))

	var progress bytes.Buffer
	rep, err := RunEnv(ctx, e, Options{Duration: 300 * time.Millisecond, Concurrency: 4, Rounds: 2,
		Warmup: 50 * time.Millisecond, Progress: &progress})
	require.NoError(t, err)
	for _, s := range []*SideResult{&rep.Gatehouse, &rep.Floor, rep.Handler} {
		require.NotNil(t, s)
		require.Positive(t, s.Issuances, s.Side)
		require.Positive(t, s.PerSec, s.Side)
		require.Positive(t, s.P99Micros, s.Side)
		require.GreaterOrEqual(t, s.P99Micros, s.P50Micros, s.Side)
		require.Len(t, s.Slots, 2, s.Side)
		require.Positive(t, s.CPUMicrosPerIssuance, s.Side)
	}
	require.Positive(t, rep.RatioVsFloor)
	require.Equal(t, 64, rep.Tokens)
	require.Contains(t, progress.String(), "round 2 gatehouse")

	// Open loop: calls start on a schedule.
	open, err := RunEnv(ctx, e, Options{Duration: 200 * time.Millisecond, Concurrency: 4, Rounds: 1,
		Warmup: -1, Rate: 200, NoHandler: true})
	require.NoError(t, err)
	require.Nil(t, open.Handler)
	require.Positive(t, open.Gatehouse.Issuances)
	// Calls start on the schedule, not as fast as the callers go: at most
	// one per 5 ms of the time the slot actually ran (it ends later than
	// planned on a loaded machine), plus the one at its start.
	require.LessOrEqual(t, float64(open.Floor.Issuances), 200*open.Floor.ElapsedSeconds+1,
		"200/s for %.2f s", open.Floor.ElapsedSeconds)

	// Audit on: every real issuance (capture, warm-ups, measured slots,
	// handler scenario) was recorded before its response was sent.
	var issued int64
	for rec, err := range audit.Search(e.AuditDir, audit.Query{Action: "sts.*"}) {
		require.NoError(t, err)
		require.Equal(t, audit.CodeSTSIssued, rec.Event.Code, rec.Event.Reason)
		issued++
	}
	require.GreaterOrEqual(t, issued, 1+rep.Gatehouse.Issuances+rep.Handler.Issuances+open.Gatehouse.Issuances)

	var text bytes.Buffer
	require.NoError(t, rep.WriteText(&text))
	require.Contains(t, text.String(), "gatehouse vs floor")
	b, err := json.Marshal(rep)
	require.NoError(t, err)
	require.Contains(t, string(b), `"ratioVsFloor"`)
}

func TestOptionsValidation(t *testing.T) {
	_, err := Run(context.Background(), Options{Concurrency: -1})
	require.Error(t, err)
}

// BenchmarkAssumeRoleWithWebIdentity is the scenario as a Go benchmark: the
// SDK over loopback against each side, b.N issuances from 32 callers
// (RunParallel with SetParallelism(16) on 2 Ps). It reports issuances/s
// and process CPU-µs per issuance.
//
//	go test ./internal/bench/stsbench/ -run '^$' -bench . -benchtime 3s
func BenchmarkAssumeRoleWithWebIdentity(b *testing.B) {
	e, err := Setup(context.Background(), EnvOptions{Dir: b.TempDir()})
	require.NoError(b, err)
	b.Cleanup(func() { e.Close() })
	var next atomic.Int64
	for _, side := range []Side{Gatehouse, Floor, Handler} {
		b.Run(string(side), func(b *testing.B) {
			var call func(context.Context, int) error
			if side == Handler {
				call = e.handlerCall()
			} else {
				c, done := e.NewClient(side, 32)
				defer done()
				call = func(ctx context.Context, i int) error { return e.Call(ctx, c, i) }
			}
			b.SetParallelism(16)
			cpu0, ok0 := processCPU()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				ctx := context.Background()
				for pb.Next() {
					if err := call(ctx, int(next.Add(1))); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			cpu1, ok1 := processCPU()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "issuances/s")
			if ok0 && ok1 {
				b.ReportMetric(micros(cpu1-cpu0)/float64(b.N), "cpu-µs/op")
			}
		})
	}
}
