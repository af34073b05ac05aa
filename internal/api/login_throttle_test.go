package api_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-dev/gatehouse/internal/api"
	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/identity"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/store/sqlite"
)

// stepClock is an injected clock that moves only when told to.
type stepClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *stepClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *stepClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// throttleEnv is the REST API on loopback with the given sign-in limits,
// an injected clock and a user "carol" with password "carol-password".
func throttleEnv(t *testing.T, limits identity.LoginLimits) (*env, *stepClock) {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "gh.db"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	clk := &stepClock{t: time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)}
	e := &env{st: st, rec: &recorder{}}
	e.svc = identity.NewService(st, e.rec, identity.Options{Logger: slog.New(slog.DiscardHandler), Clock: clk.now,
		Argon2: identity.Argon2Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}, LoginLimits: limits})
	h, err := api.New(api.Options{Store: st, Identity: e.svc, Audit: e.rec, Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	e.srv = httptest.NewServer(h)
	t.Cleanup(e.srv.Close)
	u := &store.User{UserName: "carol", Kind: store.KindUser, Active: true}
	require.NoError(t, st.CreateUser(ctx, u))
	require.NoError(t, e.svc.SetPassword(ctx, u.ID, "carol-password"))
	return e, clk
}

func loginBody(user, pw string) string {
	return fmt.Sprintf(`{"username":%q,"password":%q}`, user, pw)
}

// TestLoginIsThrottledPerUserAndPerSource is issue 11 finding 6: password
// guessing against the REST/CLI login of a running API is throttled per
// user name and per source with 429 and Retry-After; each refusal is
// audited, and a flood of refusals costs the audit log one record per
// source and limit per second plus a counted summary.
func TestLoginIsThrottledPerUserAndPerSource(t *testing.T) {
	t.Run("per user", func(t *testing.T) {
		e, clk := throttleEnv(t, identity.LoginLimits{PerUser: identity.Rate{Burst: 3, Every: time.Minute},
			PerSource: identity.Rate{Burst: 1000, Every: time.Second}})
		for i := 0; i < 3; i++ {
			require.Equal(t, 401, e.do(t, "POST", "/api/v1/login", "", loginBody("carol", "guess-"+fmt.Sprint(i))).status)
		}
		r := e.do(t, "POST", "/api/v1/login", "", loginBody("CAROL", "guess-again"))
		require.Equal(t, 429, r.status)
		require.Equal(t, "too_many_requests", r.errCode())
		require.Equal(t, "60", r.header.Get("Retry-After"))
		// Even the right password waits: the guesser gains nothing by
		// stumbling on it.
		require.Equal(t, 429, e.do(t, "POST", "/api/v1/login", "", loginBody("carol", "carol-password")).status)
		// Another user from the same source is not affected.
		require.Equal(t, 401, e.do(t, "POST", "/api/v1/login", "", loginBody("dave", "whatever-pw")).status)
		clk.add(time.Minute)
		require.Equal(t, 200, e.do(t, "POST", "/api/v1/login", "", loginBody("carol", "carol-password")).status)
		// Successes give their attempt back: a user signing in often is
		// never throttled.
		for i := 0; i < 10; i++ {
			require.Equal(t, 200, e.do(t, "POST", "/api/v1/login", "", loginBody("carol", "carol-password")).status)
		}
	})
	t.Run("per source, audited and aggregated", func(t *testing.T) {
		e, clk := throttleEnv(t, identity.LoginLimits{PerUser: identity.Rate{Burst: 1000, Every: time.Second},
			PerSource: identity.Rate{Burst: 5, Every: time.Minute}})
		for i := 0; i < 5; i++ {
			require.Equal(t, 401, e.do(t, "POST", "/api/v1/login", "", loginBody(fmt.Sprintf("user%d", i), "whatever-pw")).status)
		}
		e.rec.take()
		for i := 0; i < 200; i++ {
			r := e.do(t, "POST", "/api/v1/login", "", loginBody(fmt.Sprintf("spray%d", i), "whatever-pw"))
			require.Equal(t, 429, r.status)
		}
		evs := e.rec.take()
		require.Len(t, evs, 1, "one record per source and limit per window")
		require.Equal(t, audit.CodeLoginFailed, evs[0].Code)
		require.Equal(t, audit.Deny, evs[0].Decision)
		require.Contains(t, evs[0].Reason, "throttled")
		require.Equal(t, "127.0.0.1", evs[0].Actor.SourceIP)
		clk.add(time.Second)
		require.NoError(t, e.svc.FlushDenials(context.Background(), false))
		evs = e.rec.take()
		require.Len(t, evs, 1)
		require.Equal(t, audit.CodeLoginThrottledAggregated, evs[0].Code)
		require.EqualValues(t, 199, evs[0].Details["aggregate"].(map[string]any)["count"])
	})
}
