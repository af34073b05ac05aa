package credentials

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// Store meta key prefixes of the revocation state.
const (
	MetaUserNotBefore = "sts/nbf/"  // + principal id: credentials issued before this time fail
	MetaSessionDeny   = "sts/deny/" // + session id: the session fails until this time
	// MaxRevocationTTL is the longest a replica may trust a cached
	// revocation lookup. With it, a revocation made on any replica takes
	// effect on every replica within 2 s (+ store latency), inside the 5 s
	// promise of DESIGN invariant 3.
	MaxRevocationTTL = 2 * time.Second
	// revocationMargin is how long a revocation record is kept past the
	// last moment it can matter, for clocks that disagree between replicas.
	revocationMargin = time.Hour
)

// Revoker records revocations in the store and answers "is this session
// revoked?" for Verifier with a per-key cache whose entries (positive and
// negative) live at most TTL. Safe for concurrent use.
//
// The cache is pull-based per key: each (user, session) pair costs at most
// one store read per TTL on each replica. Every record expires in the store
// once it can no longer matter (see RevokeUser and RevokeSession), and the
// server's sweeper deletes it.
type Revoker struct {
	st  store.Store
	now func() time.Time
	ttl time.Duration

	mu        sync.Mutex
	cache     map[string]cached // meta key -> value
	lastSweep time.Time
}

type cached struct {
	at      time.Time // zero: no record
	fetched time.Time
}

// RevokerOptions: TTL defaults to 1 s and may not exceed MaxRevocationTTL;
// Clock defaults to time.Now.
type RevokerOptions struct {
	TTL   time.Duration
	Clock func() time.Time
}

// NewRevoker returns a Revoker over st.
func NewRevoker(st store.Store, opts RevokerOptions) (*Revoker, error) {
	if opts.TTL == 0 {
		opts.TTL = time.Second
	}
	if opts.TTL < 0 || opts.TTL > MaxRevocationTTL {
		return nil, fmt.Errorf("credentials: revocation cache TTL must be in (0, %s]", MaxRevocationTTL)
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	return &Revoker{st: st, now: opts.Clock, ttl: opts.TTL, cache: map[string]cached{}}, nil
}

// RevokeUser makes every credential of userID issued before at fail (user
// disabled, grant revoked). The not-before time only moves forward: a call
// with an earlier at than the recorded one changes nothing. Idempotent.
//
// The record covers session credentials only: it expires MaxSessionDuration
// (plus skew and a margin) after at, when every credential issued before at
// has expired anyway, and is then swept. It is not a revocation list for
// longer-lived tokens.
func (r *Revoker) RevokeUser(ctx context.Context, userID string, at time.Time) error {
	if userID == "" {
		return errors.New("credentials: revoke user: empty user id")
	}
	return r.raise(ctx, MetaUserNotBefore+userID, at, MaxSessionDuration+ClockSkew+revocationMargin)
}

// RevokeSession makes the session (and every session chained from it) fail
// until until plus ClockSkew (the verifier's tolerance past expiry);
// until is normally the session's expiry. Idempotent; the deny time only
// moves forward. The record expires (plus skew and a margin) after until.
func (r *Revoker) RevokeSession(ctx context.Context, sessionID string, until time.Time) error {
	if sessionID == "" {
		return errors.New("credentials: revoke session: empty session id")
	}
	return r.raise(ctx, MetaSessionDeny+sessionID, until, ClockSkew+revocationMargin)
}

// raise sets key to max(current, t) with the store's compare-and-swap; the
// record expires keep after the time it holds.
func (r *Revoker) raise(ctx context.Context, key string, t time.Time, keep time.Duration) error {
	for range maxCASTries {
		cur, err := r.st.GetMeta(ctx, key)
		expect := []byte{}
		switch {
		case err == nil:
			if old, ok := decodeTime(cur); ok && !t.After(old) {
				r.put(key, old)
				return nil
			}
			expect = cur
		case !errors.Is(err, store.ErrNotFound):
			return fmt.Errorf("credentials: revoke: %w", err)
		}
		err = r.st.PutMetaUntil(ctx, key, encodeTime(t), &expect, t.Add(keep))
		if err == nil {
			r.put(key, t) // this replica sees its own revocation at once
			return nil
		}
		if !errors.Is(err, store.ErrConflict) {
			return fmt.Errorf("credentials: revoke: %w", err)
		}
	}
	return errors.New("credentials: revoke: too much contention")
}

func encodeTime(t time.Time) []byte { return []byte(strconv.FormatInt(t.UnixNano(), 10)) }

func decodeTime(b []byte) (time.Time, bool) {
	n, err := strconv.ParseInt(string(b), 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	return time.Unix(0, n).UTC(), true
}

func (r *Revoker) put(key string, t time.Time) {
	now := r.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cache[key] = cached{at: t, fetched: now}
	if now.Sub(r.lastSweep) > 10*r.ttl {
		for k, e := range r.cache {
			if now.Sub(e.fetched) >= r.ttl {
				delete(r.cache, k)
			}
		}
		r.lastSweep = now
	}
}

// lookup returns the time stored under key (zero if none), from the cache
// when fresh. A store error is returned, never hidden: callers fail closed.
func (r *Revoker) lookup(ctx context.Context, key string) (time.Time, error) {
	now := r.now()
	r.mu.Lock()
	e, ok := r.cache[key]
	r.mu.Unlock()
	if ok && now.Sub(e.fetched) < r.ttl && !now.Before(e.fetched) {
		return e.at, nil
	}
	v, err := r.st.GetMeta(ctx, key)
	var t time.Time
	switch {
	case err == nil:
		var ok bool
		if t, ok = decodeTime(v); !ok {
			// Unreadable revocation record: treat as revoked forever.
			t = time.Unix(0, 1<<62).UTC()
		}
	case errors.Is(err, store.ErrNotFound):
	default:
		return time.Time{}, err
	}
	r.put(key, t)
	return t, nil
}

// Why a session is revoked, wrapped in ErrRevoked by check; revokedWhy
// turns them into the words of the caller's error message.
var (
	errUserRevoked    = errors.New("all sessions of the user revoked")
	errSessionRevoked = errors.New("session revoked")
)

// RevokedReason says why a Verify error refused genuine credentials
// ("session revoked", "all sessions of the user revoked (…)"), in words safe to
// show the caller; ok is false if err is not a revocation.
func RevokedReason(err error) (reason string, ok bool) {
	if !errors.Is(err, ErrRevoked) {
		return "", false
	}
	return revokedWhy(err), true
}

// revokedWhy says why err (from check) revoked a session, for the caller.
func revokedWhy(err error) string {
	if errors.Is(err, errSessionRevoked) {
		return "session revoked"
	}
	return "all sessions of the user revoked (user disabled or deleted, or their entitlements changed)"
}

// check returns ErrRevoked if c is revoked at now. A session denial holds
// until its time plus ClockSkew, since the verifier accepts a session that
// long past its expiry and a denial normally runs to that expiry.
func (r *Revoker) check(ctx context.Context, c *Claims, now time.Time) error {
	nbf, err := r.lookup(ctx, MetaUserNotBefore+c.PrincipalID)
	if err != nil {
		return err
	}
	if !nbf.IsZero() && c.IssuedAt.Before(nbf) {
		return fmt.Errorf("%w: %w", ErrRevoked, errUserRevoked)
	}
	for _, sid := range append([]string{c.SessionID}, c.ChainedFrom...) {
		until, err := r.lookup(ctx, MetaSessionDeny+sid)
		if err != nil {
			return err
		}
		if !until.IsZero() && now.Before(until.Add(ClockSkew)) {
			return fmt.Errorf("%w: %w", ErrRevoked, errSessionRevoked)
		}
	}
	return nil
}
