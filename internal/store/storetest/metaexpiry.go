package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// testMetaExpiry checks PutMetaUntil and SweepMeta: an expiring row is read
// and compared like any other until it is swept; the sweep deletes exactly
// the rows whose expiry is at or before the time given, never a row without
// expiry; rewriting a row with PutMeta clears its expiry.
func testMetaExpiry(t *testing.T, s store.Store) {
	c := ctx(t)
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	empty := []byte{}
	tests := []struct {
		key     string
		expires time.Time // zero: PutMeta (never)
		gone    bool      // after SweepMeta(t0)
	}{
		{key: "never"},
		{key: "past", expires: t0.Add(-time.Hour), gone: true},
		{key: "now", expires: t0, gone: true},
		{key: "future", expires: t0.Add(time.Microsecond)},
		{key: "far-future", expires: t0.AddDate(1, 0, 0)},
	}
	for _, tc := range tests {
		if tc.expires.IsZero() {
			require.NoError(t, s.PutMeta(c, tc.key, []byte(tc.key), &empty))
		} else {
			require.NoError(t, s.PutMetaUntil(c, tc.key, []byte(tc.key), &empty, tc.expires))
		}
	}
	// Not yet swept: an expired row still answers and still conflicts.
	v, err := s.GetMeta(c, "past")
	require.NoError(t, err)
	require.Equal(t, "past", string(v))
	requireIs(t, s.PutMetaUntil(c, "past", []byte("again"), &empty, t0.AddDate(1, 0, 0)), store.ErrConflict)

	n, err := s.SweepMeta(c, t0)
	require.NoError(t, err)
	require.EqualValues(t, 2, n)
	for _, tc := range tests {
		_, err := s.GetMeta(c, tc.key)
		if tc.gone {
			requireIs(t, err, store.ErrNotFound)
		} else {
			require.NoError(t, err, tc.key)
		}
	}
	n, err = s.SweepMeta(c, t0)
	require.NoError(t, err)
	require.Zero(t, n, "a second sweep finds nothing")

	// A swept key can be claimed again.
	require.NoError(t, s.PutMetaUntil(c, "past", []byte("again"), &empty, t0.Add(time.Hour)))
	// The compare-and-swap forms set the expiry too; PutMeta clears it.
	cur := []byte("far-future")
	require.NoError(t, s.PutMetaUntil(c, "far-future", []byte("soon"), &cur, t0.Add(-time.Second)))
	soon := []byte("soon")
	require.NoError(t, s.PutMeta(c, "future", []byte("kept"), nil))
	require.NoError(t, s.PutMetaUntil(c, "never", []byte("later"), nil, t0.Add(-time.Second)))
	n, err = s.SweepMeta(c, t0)
	require.NoError(t, err)
	require.EqualValues(t, 2, n, "far-future and never now expire")
	_, err = s.GetMeta(c, "far-future")
	requireIs(t, err, store.ErrNotFound)
	requireIs(t, s.PutMetaUntil(c, "far-future", []byte("x"), &soon, time.Time{}), store.ErrConflict)
	v, err = s.GetMeta(c, "future")
	require.NoError(t, err)
	require.Equal(t, "kept", string(v), "PutMeta cleared the expiry")
	n, err = s.SweepMeta(c, t0.AddDate(10, 0, 0))
	require.NoError(t, err)
	require.EqualValues(t, 1, n, "only the re-claimed key is left to expire")
	_, err = s.GetMeta(c, "future")
	require.NoError(t, err)
	requireIs(t, s.PutMetaUntil(c, "", []byte("x"), nil, t0), store.ErrInvalid)
}

// testMetaClaimOnce has writers race to claim one key with a conditional
// insert: exactly one wins, whichever connection or replica it uses.
func testMetaClaimOnce(t *testing.T, s store.Store) {
	const n = 8
	empty := []byte{}
	until := time.Now().Add(time.Hour)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		wins int
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := s.PutMetaUntil(context.Background(), "once/abc", []byte(fmt.Sprint(i)), &empty, until)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins++
			case !errors.Is(err, store.ErrConflict):
				t.Errorf("PutMetaUntil: %v", err)
			}
		}()
	}
	wg.Wait()
	require.Equal(t, 1, wins)
}
