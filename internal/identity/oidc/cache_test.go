package oidc

import (
	"errors"
	"testing"
)

// TestProviderCache checks that a value is built once per provider
// revision, rebuilt when the revision changes, and that build errors are
// not cached (the next use tries again).
func TestProviderCache(t *testing.T) {
	var c ProviderCache[int]
	builds := 0
	build := func(v int, err error) func() (int, error) {
		return func() (int, error) { builds++; return v, err }
	}
	steps := []struct {
		id       string
		rev      int64
		build    func() (int, error)
		want     int
		wantErr  bool
		wantRuns int
	}{
		{"p1", 1, build(10, nil), 10, false, 1},
		{"p1", 1, build(99, nil), 10, false, 1}, // cached
		{"p2", 1, build(20, nil), 20, false, 2},
		{"p1", 2, build(11, nil), 11, false, 3}, // edited provider
		{"p3", 1, build(0, errors.New("discovery down")), 0, true, 4},
		{"p3", 1, build(30, nil), 30, false, 5}, // the error was not cached
		{"p1", 2, build(99, nil), 11, false, 5},
	}
	for i, s := range steps {
		got, err := c.Get(s.id, s.rev, s.build)
		if (err != nil) != s.wantErr || (err == nil && got != s.want) || builds != s.wantRuns {
			t.Fatalf("step %d: Get(%s, %d) = %d, %v after %d builds; want %d (error %v) after %d",
				i, s.id, s.rev, got, err, builds, s.want, s.wantErr, s.wantRuns)
		}
	}
}
