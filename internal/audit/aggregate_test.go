package audit

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// recorder is an Emitter that keeps events and can be made to fail.
type recorder struct {
	mu   sync.Mutex
	evs  []Event
	fail bool
}

func (r *recorder) Emit(_ context.Context, e Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail {
		return ErrFailed
	}
	r.evs = append(r.evs, e)
	return nil
}

func (r *recorder) byCode(c Code) []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Event
	for _, e := range r.evs {
		if e.Code == c {
			out = append(out, e)
		}
	}
	return out
}

const testSummary Code = "GH5003W"

func denial(action string) Event {
	return Event{Code: "GH5001W", Action: action, Decision: Deny, Resource: Resource{Type: "s3"}}
}

// TestAggregatorOneRecordPerSourceAndCodePerWindow: the first denial of a
// (source, code) in a window is emitted as it is; the rest are one summary
// with their count once the window has passed. Issue 11 finding 6.
func TestAggregatorOneRecordPerSourceAndCodePerWindow(t *testing.T) {
	clk := newFakeClock()
	rec := &recorder{}
	a, err := NewAggregator(AggregatorOptions{Emitter: rec, SummaryCode: testSummary, Clock: clk.Now})
	require.NoError(t, err)
	ctx := context.Background()
	for i := 0; i < 100; i++ {
		require.NoError(t, a.Deny(ctx, denial("s3.GetObject"), "10.0.0.1", "AccessDenied"))
		require.NoError(t, a.Deny(ctx, denial("s3.GetObject"), "10.0.0.1", "SignatureDoesNotMatch"))
		require.NoError(t, a.Deny(ctx, denial("s3.GetObject"), "10.0.0.2", "AccessDenied"))
	}
	require.Len(t, rec.byCode("GH5001W"), 3)
	require.NoError(t, a.Flush(ctx, false))
	require.Empty(t, rec.byCode(testSummary), "the window has not passed")

	clk.Advance(time.Second)
	require.NoError(t, a.Flush(ctx, false))
	sums := rec.byCode(testSummary)
	require.Len(t, sums, 3)
	for _, s := range sums {
		agg := s.Details["aggregate"].(map[string]any)
		require.Equal(t, 99, agg["count"])
		require.Equal(t, Deny, s.Decision)
	}
	// A new window starts afresh: its first denial is recorded again.
	require.NoError(t, a.Deny(ctx, denial("s3.GetObject"), "10.0.0.1", "AccessDenied"))
	require.Len(t, rec.byCode("GH5001W"), 4)
	// Nothing counted, nothing summarized; at shutdown the rest is flushed.
	require.NoError(t, a.Deny(ctx, denial("s3.GetObject"), "10.0.0.1", "AccessDenied"))
	require.NoError(t, a.Flush(ctx, true))
	require.Len(t, rec.byCode(testSummary), 4)
}

// TestAggregatorMemoryIsBoundedAndOverflowCounted: a flood from more sources
// than the table holds grows neither memory nor the log without bound, and
// the denials beyond it are counted, not dropped.
func TestAggregatorMemoryIsBoundedAndOverflowCounted(t *testing.T) {
	clk := newFakeClock()
	rec := &recorder{}
	a, err := NewAggregator(AggregatorOptions{Emitter: rec, SummaryCode: testSummary, Clock: clk.Now, MaxKeys: 16})
	require.NoError(t, err)
	ctx := context.Background()
	for i := 0; i < 10000; i++ {
		require.NoError(t, a.Deny(ctx, denial("s3.GetObject"), fmt.Sprintf("10.%d.%d.%d", i>>16, (i>>8)&255, i&255), "AccessDenied"))
	}
	require.Len(t, a.keys, 16)
	require.Len(t, a.overflow, 1)
	require.Len(t, rec.byCode("GH5001W"), 16)
	clk.Advance(time.Second)
	require.NoError(t, a.Flush(ctx, false))
	sums := rec.byCode(testSummary)
	require.Len(t, sums, 1)
	agg := sums[0].Details["aggregate"].(map[string]any)
	require.Equal(t, 10000-16, agg["count"])
	require.Equal(t, true, agg["overflow"])
	require.Empty(t, a.keys)
}

// TestAggregatorFailsClosed: a first denial that cannot be recorded
// returns the error (the caller fails the request) and is not counted as
// recorded: the next one is emitted again.
func TestAggregatorFailsClosed(t *testing.T) {
	clk := newFakeClock()
	rec := &recorder{fail: true}
	a, err := NewAggregator(AggregatorOptions{Emitter: rec, SummaryCode: testSummary, Clock: clk.Now})
	require.NoError(t, err)
	ctx := context.Background()
	require.True(t, errors.Is(a.Deny(ctx, denial("s3.GetObject"), "10.0.0.1", "AccessDenied"), ErrFailed))
	rec.mu.Lock()
	rec.fail = false
	rec.mu.Unlock()
	require.NoError(t, a.Deny(ctx, denial("s3.GetObject"), "10.0.0.1", "AccessDenied"))
	require.Len(t, rec.byCode("GH5001W"), 1)
}

func TestSourceKey(t *testing.T) {
	for in, want := range map[string]string{
		"192.0.2.7":            "192.0.2.7",
		"::ffff:192.0.2.7":     "::ffff:192.0.2.7",
		"2001:db8:1:2:3:4:5:6": "2001:db8:1:2::/64",
		"2001:db8:1:2:ffff::1": "2001:db8:1:2::/64",
		"not-an-ip":            "not-an-ip",
		"":                     "",
	} {
		require.Equal(t, want, SourceKey(in), in)
	}
}
