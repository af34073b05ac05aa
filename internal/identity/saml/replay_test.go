package saml

import (
	"errors"
	"testing"
	"time"
)

func TestMemoryReplayCache(t *testing.T) {
	now := t0
	c := NewMemoryReplayCache(func() time.Time { return now }, 2)
	seen := func(id string, until time.Time) bool {
		t.Helper()
		s, err := c.Seen(id, until)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	if seen("a", t0.Add(time.Minute)) {
		t.Fatal("new id reported seen")
	}
	if !seen("a", t0.Add(time.Minute)) {
		t.Fatal("repeat not reported")
	}
	if seen("b", t0.Add(time.Hour)) {
		t.Fatal("new id reported seen")
	}
	// Full: a third unexpired ID fails closed rather than evicting.
	if _, err := c.Seen("c", t0.Add(time.Hour)); !errors.Is(err, ErrReplayCacheFull) {
		t.Fatalf("full cache: err = %v", err)
	}
	// Once "a" expires it is swept and its slot reused.
	now = t0.Add(2 * time.Minute)
	if seen("c", t0.Add(time.Hour)) {
		t.Fatal("c reported seen")
	}
	if !seen("b", t0.Add(time.Hour)) {
		t.Fatal("b forgotten before expiry")
	}
	if c.Len() != 2 {
		t.Fatalf("Len = %d", c.Len())
	}
}
