package main

import (
	"bytes"
	"context"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestBenchAuditRunsEveryScenario runs `gatehouse bench audit` briefly and
// checks that each scenario recorded events (no timing is asserted).
func TestBenchAuditRunsEveryScenario(t *testing.T) {
	var out bytes.Buffer
	err := runAuditBench(context.Background(), &out, auditBenchOpts{
		duration: 400 * time.Millisecond, concurrency: 4, syncConcurrency: 1, rounds: 1, dir: t.TempDir()})
	require.NoError(t, err, out.String())
	for _, name := range []string{"group", "sync", "write", "floor"} {
		m := regexp.MustCompile(`(?m)^\s*` + name + `\s+(\d+)\s+(\d+)\s`).FindStringSubmatch(out.String())
		require.NotNil(t, m, "no %s row in:\n%s", name, out.String())
		n, _ := strconv.Atoi(m[2])
		require.Positive(t, n, "%s recorded no events", name)
	}
}

// TestBenchScaleSmoke runs `gatehouse bench scale` on a tiny scaled
// directory and checks that every scenario answered and was reported (no
// timing is asserted).
func TestBenchScaleSmoke(t *testing.T) {
	var out bytes.Buffer
	err := runScaleBench(context.Background(), &out, scaleBenchOpts{
		scaled:   scaleSize{Users: 30, BigGroupMembers: 20, Groups: 4, Roles: 5, Mounts: 3},
		requests: 2, dir: t.TempDir()})
	require.NoError(t, err, out.String())
	for _, name := range scaleScenarios {
		require.Regexp(t, `(?m)^\s*`+regexp.QuoteMeta(name)+`\s+\S+\s+\S+\s+\d+\.\d\d\s`, out.String(), "no %s row", name)
	}
	require.Contains(t, out.String(), "process RSS")
}
