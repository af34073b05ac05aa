package identity

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// TestArgon2WorkIsCapped is issue 11 finding 6: concurrent argon2 work is
// capped. With every hashing slot taken, a sign-in (and a password change)
// is refused at once with ErrBusy, which is also ErrUnavailable (503), and
// audited; once a slot is free it works again.
func TestArgon2WorkIsCapped(t *testing.T) {
	e := newEnv(t)
	svc := NewService(e.st, e.rec, Options{Clock: e.clock.Now, Logger: slog.New(slog.DiscardHandler), Argon2: fastArgon,
		LoginLimits: LoginLimits{MaxConcurrentHashes: 2, HashWait: -1}})
	u := e.user(t, "erin", store.KindUser)
	ctx := context.Background()
	require.NoError(t, svc.SetPassword(ctx, u.ID, "erin-password"))

	var held []func()
	for range 2 {
		release, err := svc.guard.hashSlot(ctx)
		require.NoError(t, err)
		held = append(held, release)
	}
	e.rec.take()
	_, _, err := svc.Login(ctx, "erin", "erin-password", LoginMeta{SourceIP: "192.0.2.7"})
	require.ErrorIs(t, err, ErrBusy)
	require.ErrorIs(t, err, ErrUnavailable)
	require.ErrorIs(t, svc.SetPassword(ctx, u.ID, "erin-password-2"), ErrBusy)
	evs := e.rec.take()
	require.Len(t, evs, 1)
	require.Contains(t, evs[0].Reason, "busy")

	held[0]()
	_, _, err = svc.Login(ctx, "erin", "erin-password", LoginMeta{SourceIP: "192.0.2.7"})
	require.NoError(t, err)
	held[1]()
}

// TestThrottleMemoryIsBounded: a spray of user names and sources larger
// than the tables keeps them at their bound; the names beyond it share one
// bucket, so the spray is throttled all the same.
func TestThrottleMemoryIsBounded(t *testing.T) {
	g := newLoginGuard(LoginLimits{PerUser: Rate{Burst: 2, Every: time.Hour}, PerSource: Rate{Burst: 2, Every: time.Hour}, MaxKeys: 50})
	now := time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)
	refused := 0
	for i := 0; i < 5000; i++ {
		err := g.admit(fmt.Sprintf("user%d", i), fmt.Sprintf("198.51.%d.%d", i/256, i%256), now)
		var te *ThrottledError
		if errors.As(err, &te) {
			refused++
		}
	}
	require.LessOrEqual(t, len(g.users.m), 50)
	require.LessOrEqual(t, len(g.sources.m), 50)
	require.Greater(t, refused, 5000-50*2-2, "names beyond the table share one bucket")
}

// take returns the events recorded so far and forgets them.
func (r *recorder) take() []audit.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	ev := r.events
	r.events = nil
	return ev
}
