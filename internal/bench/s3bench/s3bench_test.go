package s3bench

import (
	"bytes"
	"context"
	"io"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestScenario runs the whole scenario briefly against versitygw and checks
// that every target served, the report is complete and the gateway's
// requests were audited. No timing is asserted. Skipped when versitygw is
// not reachable, except with CI=true.
func TestScenario(t *testing.T) {
	ep := os.Getenv("GATEHOUSE_TEST_S3_ENDPOINT")
	if ep == "" {
		ep = "http://127.0.0.1:7070"
	}
	if err := Reachable(ep); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("versitygw unreachable at %s (bash .ci/versitygw.sh): %v", ep, err)
		}
		t.Skipf("versitygw unreachable at %s (bash .ci/versitygw.sh): %v", ep, err)
	}
	ctx := context.Background()
	e, err := Setup(ctx, EnvOptions{Endpoint: ep, Dir: t.TempDir(), Bucket: "gatehouse-bench-test", ClientConns: 4})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, e.Close()) })

	// The gateway refuses the root key (it accepts temporary credentials only).
	saved := e.creds[Gateway]
	e.creds[Gateway] = e.creds[Versitygw]
	c, done := e.Client(Gateway, 1)
	_, err = ops(e)["GET"](ctx, c, 0, 0)
	require.Error(t, err)
	done()
	e.creds[Gateway] = saved

	var progress bytes.Buffer
	rep, err := RunEnv(ctx, e, Options{Duration: 400 * time.Millisecond, Rounds: 2, Concurrency: 2,
		LargeSize: 1 << 20, LargeIters: 1, Streams: 2, Warmup: 20 * time.Millisecond, Progress: &progress})
	require.NoError(t, err)
	require.Len(t, rep.Small, 2*len(Targets))
	for _, s := range rep.Small {
		require.Positive(t, s.N, "%s %s", s.Target, s.Op)
		require.Positive(t, s.P50Micros, "%s %s", s.Target, s.Op)
		require.GreaterOrEqual(t, s.P995Micros, s.P50Micros)
		require.Positive(t, s.P50VsFloor)
	}
	require.Len(t, rep.Large, 6)
	for _, l := range rep.Large {
		require.Positive(t, l.MiBPerSec, "%s %s", l.Target, l.Op)
	}
	require.Contains(t, rep.AuditP50Ratio, "GET")
	require.Len(t, rep.Streams, 4)
	for _, s := range rep.Streams {
		require.Positive(t, s.PeakRSSMiB)
	}
	require.Contains(t, progress.String(), "round 2 gateway")
	var text bytes.Buffer
	require.NoError(t, rep.WriteText(&text))
	require.Contains(t, text.String(), "audit on/off")

	// Audit on: the gateway's requests are in the log.
	f, err := os.Open(e.AuditDir + "/audit.log")
	require.NoError(t, err)
	defer f.Close()
	b, err := io.ReadAll(f)
	require.NoError(t, err)
	require.Contains(t, string(b), "GetObject")
	require.Contains(t, string(b), "PutObject")
}
