// Package testwait gives tests one bound for waits on other processes and
// goroutines: the test binary's own deadline (go test -timeout). A test
// that waits for an event (a line from a child, an acknowledgement, an
// exit) waits as long as it takes; a slow machine is never a failure. Only
// a hang is, and it is reported by the test with its own diagnostics just
// before the runtime would abort the whole binary.
package testwait

import (
	"testing"
	"time"
)

// maxMargin caps how long before the binary's deadline Hung fires.
const maxMargin = 30 * time.Second

// Hung returns a channel that receives once the test binary is about to
// reach its -timeout deadline (a twentieth of the time left, at most 30 s,
// before it), so that a wait that never ends fails with the caller's
// message rather than the runtime's panic. Without a deadline (-timeout 0)
// the channel never receives. Select on it beside the event awaited; it is
// never a time window for the event itself.
func Hung(t *testing.T) <-chan time.Time {
	t.Helper()
	deadline, ok := t.Deadline()
	if !ok {
		return nil
	}
	left := time.Until(deadline)
	timer := time.NewTimer(left - min(left/20, maxMargin))
	t.Cleanup(func() { timer.Stop() })
	return timer.C
}
