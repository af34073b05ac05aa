package audit

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

// TestRecordGolden pins the on-disk record format and canonical hashing:
// with a fixed clock the event records, their prev and hash are stable.
func TestRecordGolden(t *testing.T) {
	dir := t.TempDir()
	o := testOptions(dir, ModeSync, newFakeClock())
	o.CheckpointEvery = 1000
	o.CheckpointInterval = time.Hour
	l := openTest(t, o)
	events := []Event{
		testEvent(1),
		{Code: CodeLoginFailed, Action: "auth.login", Actor: Actor{User: "mallory", SourceIP: "192.0.2.1"},
			Resource: Resource{Type: "session"}, Decision: Deny, Reason: "bad password <script>"},
		{Code: CodeServerStarted, Action: "server.start", Actor: Actor{User: "gatehouse", AuthMethod: "system"},
			Resource: Resource{Type: "server", Name: "https://gh.example"}, Decision: Allow},
	}
	for _, e := range events {
		require.NoError(t, l.Emit(context.Background(), e))
	}
	got, err := os.ReadFile(filepath.Join(dir, LogFile))
	require.NoError(t, err)
	require.NoError(t, l.Close())

	golden := filepath.Join("testdata", "records.golden.jsonl")
	if *update {
		require.NoError(t, os.MkdirAll("testdata", 0o755))
		require.NoError(t, os.WriteFile(golden, got, 0o644))
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err, "run go test -run TestRecordGolden -update")
	require.Equal(t, string(want), string(got))

	// And each golden line's hash is its body's SHA-256, as documented.
	for _, line := range bytes.SplitAfter(bytes.TrimSuffix(want, []byte("\n")), []byte("\n")) {
		computed, claimed, ok := splitLine(bytes.TrimSuffix(line, []byte("\n")))
		require.True(t, ok)
		require.Equal(t, claimed, computed)
	}
}

func TestCollectors(t *testing.T) {
	l := openTest(t, testOptions(t.TempDir(), ModeGroup, nil))
	for i := range 25 {
		require.NoError(t, l.Emit(context.Background(), testEvent(i)))
	}
	require.NoError(t, l.Close())
	reg := prometheus.NewRegistry()
	reg.MustRegister(l.Collectors()...) // also checks descriptors are consistent
	mfs, err := reg.Gather()
	require.NoError(t, err)
	got := map[string]float64{}
	for _, mf := range mfs {
		m := mf.GetMetric()[0]
		require.Empty(t, m.GetLabel(), "no labels, so no principals")
		switch {
		case m.GetCounter() != nil:
			got[mf.GetName()] = m.GetCounter().GetValue()
		case m.GetHistogram() != nil:
			got[mf.GetName()] = float64(m.GetHistogram().GetSampleCount())
		}
	}
	require.Equal(t, 25.0, got["gatehouse_audit_appends_total"])
	require.Equal(t, 0.0, got["gatehouse_audit_errors_total"])
	require.GreaterOrEqual(t, got["gatehouse_audit_checkpoints_total"], 1.0)
	require.GreaterOrEqual(t, got["gatehouse_audit_fsync_seconds"], 1.0)
	require.GreaterOrEqual(t, got["gatehouse_audit_batch_records"], 1.0)
}
