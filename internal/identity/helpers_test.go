package identity

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/store/sqlite"
)

// recorder is an audit.Emitter that keeps events, or fails when told to.
type recorder struct {
	mu     sync.Mutex
	events []audit.Event
	fail   bool
}

func (r *recorder) Emit(_ context.Context, e audit.Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.fail {
		return errors.New("audit sink down")
	}
	r.events = append(r.events, e)
	return nil
}

func (r *recorder) setFail(v bool) { r.mu.Lock(); r.fail = v; r.mu.Unlock() }

func (r *recorder) codes() []audit.Code {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []audit.Code
	for _, e := range r.events {
		out = append(out, e.Code)
	}
	return out
}

func (r *recorder) json(t *testing.T) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	b, err := json.Marshal(r.events)
	require.NoError(t, err)
	return string(b)
}

// fakeClock is a settable clock.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

var fastArgon = Argon2Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

type env struct {
	st    *sqlite.Store
	rec   *recorder
	clock *fakeClock
	logs  *syncBuffer
	svc   *Service
}

// syncBuffer is a log sink shared by several services (each with its own
// slog handler) that may log concurrently.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "gatehouse.db"))
	require.NoError(t, err)
	t.Cleanup(func() { _ = st.Close() })
	e := &env{st: st, rec: &recorder{}, clock: &fakeClock{t: time.Now().UTC()}, logs: &syncBuffer{}}
	e.svc = e.service()
	return e
}

func (e *env) service() *Service {
	logger := slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return NewService(e.st, e.rec, Options{Clock: e.clock.Now, Logger: logger, Argon2: fastArgon})
}

func (e *env) user(t *testing.T, name string, kind store.PrincipalKind, groups ...string) *store.User {
	t.Helper()
	ctx := context.Background()
	u := &store.User{UserName: name, Kind: kind, Active: true}
	require.NoError(t, e.st.CreateUser(ctx, u))
	for _, gn := range groups {
		g, err := e.st.GetGroupByName(ctx, gn)
		if errors.Is(err, store.ErrNotFound) {
			g = &store.Group{DisplayName: gn}
			require.NoError(t, e.st.CreateGroup(ctx, g))
		} else {
			require.NoError(t, err)
		}
		g.Members = append(g.Members, store.Member{ID: u.ID, Type: store.MemberUser})
		require.NoError(t, e.st.UpdateGroup(ctx, g))
	}
	return u
}
