package identity

import (
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
)

// ErrThrottled is wrapped by the error of a login attempt refused because
// too many were made for its user name or from its source address. The
// error is a *ThrottledError, which says when to retry. Front ends answer
// 429 with Retry-After.
var ErrThrottled = errors.New("identity: too many sign-in attempts")

// ErrBusy is wrapped (together with ErrUnavailable) by the error of an
// attempt that found no free password-hashing slot within
// LoginLimits.HashWait. Front ends answer 503 with Retry-After.
var ErrBusy = errors.New("identity: too many password checks at once")

// ThrottledError is a login attempt refused by the throttle.
type ThrottledError struct {
	Scope      string        // "user" or "source": which limit was reached
	RetryAfter time.Duration // when one more attempt will be allowed
}

func (e *ThrottledError) Error() string {
	return fmt.Sprintf("identity: too many sign-in attempts for this %s; retry in %s", e.Scope, e.RetryAfter)
}

// Is makes errors.Is(err, ErrThrottled) hold.
func (e *ThrottledError) Is(target error) bool { return target == ErrThrottled }

// RetryAfterSeconds is RetryAfter in whole seconds, at least 1, for the
// Retry-After header.
func (e *ThrottledError) RetryAfterSeconds() int {
	return max(1, int(math.Ceil(e.RetryAfter.Seconds())))
}

// Rate is a token bucket: Burst attempts at once, then one more per Every.
type Rate struct {
	Burst int
	Every time.Duration
}

// LoginLimits bound password sign-in, wherever argon2 verification runs
// (web sign-in form, REST/CLI login). Zero fields take the defaults of
// DefaultLoginLimits.
type LoginLimits struct {
	// PerUser limits attempts per user name (case-insensitive), known or
	// not. A successful attempt gives its token back, so only failures
	// use up a user's allowance.
	PerUser Rate
	// PerSource limits attempts per source address.
	PerSource Rate
	// MaxKeys bounds each table (user names, sources). When a table is
	// full, keys not seen before share one bucket of that table's rate, so
	// memory stays bounded and a flood from many sources stays throttled.
	MaxKeys int
	// MaxConcurrentHashes caps argon2 computations (verification and
	// hashing) running at once; each costs Argon2Params.Memory.
	MaxConcurrentHashes int
	// HashWait is how long an attempt waits for a free hashing slot before
	// it is refused with ErrBusy (503); negative: not at all.
	HashWait time.Duration
}

// DefaultLoginLimits: 10 attempts per user name, then one per 30 s; 60 per
// source, then one per second; at most max(2, NumCPU) argon2 computations
// at once, waiting up to 2 s for a slot.
func DefaultLoginLimits() LoginLimits {
	return LoginLimits{
		PerUser:             Rate{Burst: 10, Every: 30 * time.Second},
		PerSource:           Rate{Burst: 60, Every: time.Second},
		MaxKeys:             10000,
		MaxConcurrentHashes: max(2, runtime.NumCPU()),
		HashWait:            2 * time.Second,
	}
}

func (l LoginLimits) withDefaults() LoginLimits {
	d := DefaultLoginLimits()
	if l.PerUser.Burst <= 0 || l.PerUser.Every <= 0 {
		l.PerUser = d.PerUser
	}
	if l.PerSource.Burst <= 0 || l.PerSource.Every <= 0 {
		l.PerSource = d.PerSource
	}
	if l.MaxKeys <= 0 {
		l.MaxKeys = d.MaxKeys
	}
	if l.MaxConcurrentHashes <= 0 {
		l.MaxConcurrentHashes = d.MaxConcurrentHashes
	}
	if l.HashWait < 0 {
		l.HashWait = 0
	} else if l.HashWait == 0 {
		l.HashWait = d.HashWait
	}
	return l
}

// buckets is a bounded table of token buckets of one rate. Safe for
// concurrent use.
type buckets struct {
	rate Rate
	max  int
	mu   sync.Mutex
	m    map[string]*bucket
	over bucket // shared by new keys while the table is full
}

type bucket struct {
	tokens float64
	at     time.Time
}

func newBuckets(r Rate, maxKeys int) *buckets {
	return &buckets{rate: r, max: maxKeys, m: map[string]*bucket{}}
}

// take uses one attempt of key at now. If none is left it returns how long
// until one is.
func (b *buckets) take(key string, now time.Time) (ok bool, wait time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	bk := b.lookup(key, now)
	b.refill(bk, now)
	if bk.tokens >= 1 {
		bk.tokens--
		return true, 0
	}
	return false, time.Duration((1 - bk.tokens) * float64(b.rate.Every))
}

// give returns one attempt to key (a successful sign-in).
func (b *buckets) give(key string, now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if bk, ok := b.m[key]; ok {
		b.refill(bk, now)
		bk.tokens = min(bk.tokens+1, float64(b.rate.Burst))
	}
}

// lookup returns key's bucket, creating it; when the table is full it
// first drops buckets that have refilled (idle keys), and failing that
// returns the shared overflow bucket.
func (b *buckets) lookup(key string, now time.Time) *bucket {
	if bk, ok := b.m[key]; ok {
		return bk
	}
	if len(b.m) >= b.max {
		for k, bk := range b.m {
			b.refill(bk, now)
			if bk.tokens >= float64(b.rate.Burst) {
				delete(b.m, k)
			}
		}
	}
	if len(b.m) >= b.max {
		if b.over.at.IsZero() {
			b.over = bucket{tokens: float64(b.rate.Burst), at: now}
		}
		return &b.over
	}
	bk := &bucket{tokens: float64(b.rate.Burst), at: now}
	b.m[key] = bk
	return bk
}

func (b *buckets) refill(bk *bucket, now time.Time) {
	if d := now.Sub(bk.at); d > 0 {
		bk.tokens = min(float64(b.rate.Burst), bk.tokens+float64(d)/float64(b.rate.Every))
		bk.at = now
	}
}

// loginGuard throttles sign-in attempts and caps concurrent argon2 work.
type loginGuard struct {
	users, sources *buckets
	slots          chan struct{}
	wait           time.Duration
}

func newLoginGuard(l LoginLimits) *loginGuard {
	l = l.withDefaults()
	return &loginGuard{users: newBuckets(l.PerUser, l.MaxKeys), sources: newBuckets(l.PerSource, l.MaxKeys),
		slots: make(chan struct{}, l.MaxConcurrentHashes), wait: l.HashWait}
}

// admit uses one attempt of the user name and of the source, or returns a
// *ThrottledError. A refused attempt uses nothing up.
func (g *loginGuard) admit(user, source string, now time.Time) error {
	user = strings.ToLower(audit.Clip(user, 256))
	source = audit.SourceKey(source)
	ok, wait := g.sources.take(source, now)
	if !ok {
		return &ThrottledError{Scope: "source", RetryAfter: wait}
	}
	if ok, wait = g.users.take(user, now); !ok {
		g.sources.give(source, now)
		return &ThrottledError{Scope: "user", RetryAfter: wait}
	}
	return nil
}

// succeeded gives the user name its attempt back.
func (g *loginGuard) succeeded(user string, now time.Time) {
	g.users.give(strings.ToLower(audit.Clip(user, 256)), now)
}

// hashSlot waits up to the configured time for an argon2 slot and returns
// its release, or an error wrapping ErrBusy and ErrUnavailable.
func (g *loginGuard) hashSlot(ctx context.Context) (func(), error) {
	select {
	case g.slots <- struct{}{}:
		return func() { <-g.slots }, nil
	default:
	}
	if g.wait > 0 {
		t := time.NewTimer(g.wait)
		defer t.Stop()
		select {
		case g.slots <- struct{}{}:
			return func() { <-g.slots }, nil
		case <-ctx.Done():
		case <-t.C:
		}
	}
	return nil, fmt.Errorf("%w: %w", ErrUnavailable, ErrBusy)
}

// refuseThrottled audits an attempt the throttle refused (through the
// aggregator: one record per source and limit per window, the rest
// counted) and returns cause, or ErrUnavailable if it cannot be recorded.
func (s *Service) refuseThrottled(ctx context.Context, username string, meta LoginMeta, cause error) error {
	var te *ThrottledError
	errors.As(cause, &te)
	return s.refuseAttempt(ctx, username, meta, cause, "throttled-"+te.Scope,
		"throttled: too many sign-in attempts for this "+te.Scope, map[string]any{"retryAfterSeconds": te.RetryAfterSeconds()})
}

// refuseBusy audits an attempt refused for want of a hashing slot.
func (s *Service) refuseBusy(ctx context.Context, username string, meta LoginMeta, cause error) error {
	s.log.WarnContext(ctx, "login refused: every password-hashing slot is busy", "request_id", meta.RequestID)
	return s.refuseAttempt(ctx, username, meta, cause, "busy", "busy: no password-hashing slot free", nil)
}

func (s *Service) refuseAttempt(ctx context.Context, username string, meta LoginMeta, cause error, key, reason string, details map[string]any) error {
	h, err := s.keyedHash(ctx, strings.ToLower(audit.Clip(username, 256)))
	if err != nil {
		return fmt.Errorf("%w: audit key: %w", ErrUnavailable, err)
	}
	ev := meta.AuditEvent(ctx, s.Now, audit.CodeLoginFailed, "identity.login").Deny(reason).
		Actor(audit.Actor{AuthMethod: "password"}).Resource(audit.Resource{Type: "user"}).
		Details(details).Detail("attemptedUserHash", h).Event()
	if err := s.throttled.Deny(ctx, ev, audit.SourceKey(meta.SourceIP), key); err != nil {
		s.log.ErrorContext(ctx, "audit emit failed", "code", string(ev.Code), "error", err)
		return fmt.Errorf("%w: audit: %w", ErrUnavailable, err)
	}
	return cause
}

// FlushDenials writes the counts of aggregated refused sign-in attempts
// whose window has passed, or with all every count so far (at shutdown).
func (s *Service) FlushDenials(ctx context.Context, all bool) error {
	return s.throttled.Flush(ctx, all)
}

// RunDenialFlush flushes refused sign-in attempts once per window until
// ctx ends; failures are logged.
func (s *Service) RunDenialFlush(ctx context.Context) {
	s.throttled.Run(ctx, func(err error) {
		s.log.ErrorContext(ctx, "audit of aggregated sign-in refusals failed", "error", err)
	})
}
