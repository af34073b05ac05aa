package audit

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"sync"
	"time"
)

// Aggregator keeps floods of unauthenticated denials from growing the audit
// log without bound, while losing none of them. Within each window (one
// second by default, aligned to the clock) the first denial of each key (a
// source address and an error code) is emitted as it is, synchronously, through
// the Emitter; further denials of that key are only counted. When the
// window has passed, each count is emitted as one summary event (Code
// SummaryCode, Details["aggregate"]) through the same Emitter.
//
// Memory is bounded: at most MaxKeys keys are tracked per window. Denials
// of further keys are not emitted one by one but counted per Action and
// error code, and reported in an overflow summary (source "*"), so nothing
// is dropped silently.
//
// Only denials of requests that carry no valid credentials may go through
// an Aggregator: every authenticated request keeps its own record. Counted
// denials live in memory until the window's summary is written; a crash
// loses at most one window's counts, never a first record. Safe for
// concurrent use.
type Aggregator struct {
	o AggregatorOptions

	mu       sync.Mutex
	window   time.Time // start of the current window
	keys     map[string]*aggEntry
	overflow map[string]*aggEntry // by action and error code
}

// AggregatorOptions configure an Aggregator. Emitter and SummaryCode are
// required.
type AggregatorOptions struct {
	Emitter     Emitter
	SummaryCode Code
	Window      time.Duration    // default 1 s
	MaxKeys     int              // default 4096
	Clock       func() time.Time // default time.Now
}

// aggEntry is what a summary needs of the first event of its key: small
// fields only, so that memory stays bounded whatever the requests carried.
type aggEntry struct {
	action, source, errorCode string
	resourceType              string
	count                     int // denials after the first (overflow: all)
}

// NewAggregator validates o and returns an Aggregator.
func NewAggregator(o AggregatorOptions) (*Aggregator, error) {
	if o.Emitter == nil || o.SummaryCode == "" {
		return nil, errors.New("audit: aggregator needs an Emitter and a SummaryCode")
	}
	if o.Window < 0 || o.MaxKeys < 0 {
		return nil, errors.New("audit: aggregator window and key limit must not be negative")
	}
	if o.Window == 0 {
		o.Window = time.Second
	}
	if o.MaxKeys == 0 {
		o.MaxKeys = 4096
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	return &Aggregator{o: o, keys: map[string]*aggEntry{}, overflow: map[string]*aggEntry{}}, nil
}

// Deny records ev, the denial of an unauthenticated request from source
// with error code errorCode. It emits ev (and returns the Emitter's error,
// which the caller must treat as for any Emit: fail the request) if it is
// the first of its key in this window, and otherwise only counts it and
// returns nil. It first writes the summaries of a window that has passed.
func (a *Aggregator) Deny(ctx context.Context, ev Event, source, errorCode string) error {
	now := a.o.Clock()
	if err := a.rollover(ctx, now, false); err != nil {
		return err
	}
	key := source + "\x00" + errorCode
	a.mu.Lock()
	if e, ok := a.keys[key]; ok {
		e.count++
		a.mu.Unlock()
		return nil
	}
	if len(a.keys) >= a.o.MaxKeys {
		ok := ev.Action + "\x00" + errorCode
		e, found := a.overflow[ok]
		if !found {
			e = &aggEntry{action: ev.Action, source: "*", errorCode: errorCode, resourceType: ev.Resource.Type}
			a.overflow[ok] = e
		}
		e.count++
		a.mu.Unlock()
		return nil
	}
	a.keys[key] = &aggEntry{action: ev.Action, source: source, errorCode: errorCode, resourceType: ev.Resource.Type}
	a.mu.Unlock()
	if err := a.o.Emitter.Emit(ctx, ev); err != nil {
		a.mu.Lock()
		if e, ok := a.keys[key]; ok && e.count == 0 {
			delete(a.keys, key) // not recorded: the next one must be, not counted
		}
		a.mu.Unlock()
		return err
	}
	return nil
}

// Flush writes the summaries of the current window if it has passed, or,
// with all, whatever it has counted so far (at shutdown). Call it
// periodically (Run does) so counts do not wait for the next denial.
func (a *Aggregator) Flush(ctx context.Context, all bool) error {
	return a.rollover(ctx, a.o.Clock(), all)
}

// Run calls Flush once per window until ctx ends, reporting errors to
// onError (may be nil). At shutdown the caller calls Flush(ctx, true) once
// the listener has drained, before the audit log closes.
func (a *Aggregator) Run(ctx context.Context, onError func(error)) {
	t := time.NewTicker(a.o.Window)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := a.Flush(ctx, false); err != nil && onError != nil {
				onError(err)
			}
		}
	}
}

// rollover starts a new window if now is past the current one (or all is
// set) and emits the counts of the old one.
func (a *Aggregator) rollover(ctx context.Context, now time.Time, all bool) error {
	start := now.Truncate(a.o.Window)
	a.mu.Lock()
	if a.window.IsZero() {
		a.window = start
	}
	if !all && !start.After(a.window) {
		a.mu.Unlock()
		return nil
	}
	from, keys, overflow := a.window, a.keys, a.overflow
	a.window, a.keys, a.overflow = start, map[string]*aggEntry{}, map[string]*aggEntry{}
	a.mu.Unlock()
	to := from.Add(a.o.Window)
	if all && now.Before(to) {
		to = now
	}
	var errs []error
	for _, e := range summaries(keys, overflow) {
		if err := a.o.Emitter.Emit(ctx, a.summary(e, from, to)); err != nil {
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("audit: aggregated denials could not be recorded: %w", errors.Join(errs...))
	}
	return nil
}

// summaries lists the entries with something to report, overflow last, in
// a stable order.
func summaries(keys, overflow map[string]*aggEntry) []*aggEntry {
	var out []*aggEntry
	for _, e := range keys {
		if e.count > 0 {
			out = append(out, e)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].source != out[j].source {
			return out[i].source < out[j].source
		}
		return out[i].errorCode < out[j].errorCode
	})
	n := len(out)
	for _, e := range overflow {
		out = append(out, e)
	}
	sort.Slice(out[n:], func(i, j int) bool {
		return out[n+i].action+out[n+i].errorCode < out[n+j].action+out[n+j].errorCode
	})
	return out
}

func (a *Aggregator) summary(e *aggEntry, from, to time.Time) Event {
	reason := fmt.Sprintf("%d more unauthenticated denials (%s) from %s in [%s, %s), after the first one recorded on its own",
		e.count, e.errorCode, e.source, from.UTC().Format(time.RFC3339Nano), to.UTC().Format(time.RFC3339Nano))
	if e.source == "*" {
		reason = fmt.Sprintf("%d unauthenticated denials (%s) from sources beyond the %d tracked per window, in [%s, %s)",
			e.count, e.errorCode, a.o.MaxKeys, from.UTC().Format(time.RFC3339Nano), to.UTC().Format(time.RFC3339Nano))
	}
	windowEnd := func() time.Time { return to } // the summary is dated at the end of its window
	return NewEvent(windowEnd, a.o.SummaryCode, e.action).Source(e.source, "").
		Resource(Resource{Type: e.resourceType}).Deny(reason).
		Detail("aggregate", map[string]any{
			"count": e.count, "errorCode": e.errorCode, "source": e.source, "overflow": e.source == "*",
			"windowStart": from.UTC().Format(time.RFC3339Nano), "windowEnd": to.UTC().Format(time.RFC3339Nano),
		}).Event()
}

// SourceKey is the key under which requests from one source are counted
// (aggregated denials, sign-in throttling): the address itself for IPv4,
// its /64 network for IPv6, since one IPv6 client commonly holds a whole
// /64. A value that is not an IP address is returned as it is.
func SourceKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil || a.Unmap().Is4() {
		return ip
	}
	p, err := a.Prefix(64)
	if err != nil {
		return ip
	}
	return p.String()
}
