// Package identity owns principals, groups, attributes, local passwords and
// bearer tokens, and resolves the caller of every request.
package identity

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/requestid"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// Token lifetimes.
const (
	// DefaultTokenTTL is a personal access token's lifetime when the
	// request names none (still capped by the maximum and by the token
	// it is minted with).
	DefaultTokenTTL = 90 * 24 * time.Hour
	// DefaultMaxTokenTTL is the default of Options.MaxTokenTTL
	// (identity.token_max_ttl).
	DefaultMaxTokenTTL = 90 * 24 * time.Hour
	// MaxTokenTTL is the largest value Options.MaxTokenTTL may take.
	MaxTokenTTL       = 365 * 24 * time.Hour
	DefaultSessionTTL = 12 * time.Hour

	// SessionCookie is the cookie that may carry a session token.
	SessionCookie = "gatehouse_session"

	// touchInterval rate-limits LastUsedAt writes per token.
	touchInterval = time.Minute
	maxTokenName  = 128
	// maxTokenChain bounds how many ancestors (tokens minted with tokens)
	// a token may have; each costs one store read when it authenticates.
	maxTokenChain = 4
)

// Errors returned by the Service besides store errors and ErrUnauthenticated.
var (
	// ErrUnavailable means a dependency (store, audit) failed; the operation
	// was refused (fail closed). Authentication failures caused by it wrap
	// both ErrUnauthenticated and ErrUnavailable.
	ErrUnavailable = errors.New("identity: unavailable")
	// ErrInvalidTokenRequest reports a token request outside policy (TTL,
	// name, disabled principal).
	ErrInvalidTokenRequest = errors.New("identity: invalid token request")
	// ErrNoPassword is returned by SetPassword for service principals,
	// which authenticate with tokens only.
	ErrNoPassword = errors.New("identity: service principals have no password")
)

// Options configure a Service. Zero values pick the defaults.
type Options struct {
	// SessionTTL is the lifetime of login sessions. Default 12h.
	SessionTTL time.Duration
	// MaxTokenTTL is the longest lifetime a personal access token may be
	// given; longer requests are refused. Default DefaultMaxTokenTTL;
	// values above MaxTokenTTL are lowered to it.
	MaxTokenTTL time.Duration
	// Clock returns the current time. Default time.Now.
	Clock func() time.Time
	// Rand is the randomness source for salts and tokens. Default crypto/rand.
	Rand io.Reader
	// Logger receives operational logs, never secrets; it should carry
	// component=identity. Default slog.Default() with that attribute.
	Logger *slog.Logger
	// Argon2 overrides the password hashing cost (tests). Zero: DefaultArgon2Params.
	Argon2 Argon2Params
	// AuditKey keys the hash of attempted user names recorded in failed-login
	// audit events. Empty: a random key persisted in the store meta space.
	AuditKey []byte
	// LoginLimits throttle password sign-in per user name and per source,
	// and cap concurrent argon2 work. Zero fields: DefaultLoginLimits.
	LoginLimits LoginLimits
	// DenialWindow and DenialMaxSources tune the aggregation of the records
	// of refused sign-in attempts (audit.Aggregator; config
	// audit.denial_window, audit.denial_max_sources). Zero: its defaults.
	DenialWindow     time.Duration
	DenialMaxSources int
}

// Service is the identity service. It is safe for concurrent use.
type Service struct {
	st     store.Store
	em     audit.Emitter
	ttl    time.Duration
	maxTTL time.Duration
	now    func() time.Time
	rnd    io.Reader
	log    *slog.Logger
	argon  Argon2Params
	keyMu  sync.Mutex
	key    []byte
	dummy  string
	dummyO sync.Once
	guard  *loginGuard
	// throttled records refused sign-in attempts: one record per source
	// and limit per second, the rest counted.
	throttled *audit.Aggregator
}

var _ Authenticator = (*Service)(nil)

// NewService returns a Service over st that writes audit events to em.
func NewService(st store.Store, em audit.Emitter, opts Options) *Service {
	s := &Service{st: st, em: em, ttl: opts.SessionTTL, maxTTL: opts.MaxTokenTTL,
		now: opts.Clock, rnd: opts.Rand, log: opts.Logger, argon: opts.Argon2, key: opts.AuditKey}
	if s.ttl <= 0 {
		s.ttl = DefaultSessionTTL
	}
	if s.maxTTL <= 0 {
		s.maxTTL = DefaultMaxTokenTTL
	}
	s.maxTTL = min(s.maxTTL, MaxTokenTTL)
	if s.now == nil {
		s.now = time.Now
	}
	if s.rnd == nil {
		s.rnd = rand.Reader
	}
	if s.log == nil {
		s.log = slog.Default().With("component", "identity")
	}
	if s.argon == (Argon2Params{}) {
		s.argon = DefaultArgon2Params
	}
	s.guard = newLoginGuard(opts.LoginLimits)
	s.throttled, _ = audit.NewAggregator(audit.AggregatorOptions{Emitter: em, SummaryCode: audit.CodeLoginThrottledAggregated,
		Window: max(opts.DenialWindow, 0), MaxKeys: max(opts.DenialMaxSources, 0),
		Clock: s.now}) // cannot fail: both required options are set, the limits are not negative
	return s
}

// Now returns the service clock's current time in UTC.
func (s *Service) Now() time.Time { return s.now().UTC() }

// ---- authentication ----

// AuthenticateRequest implements Authenticator. It accepts
// "Authorization: Bearer <token>" (any token kind) or, when no
// Authorization header is present, a session token in the gatehouse_session
// cookie. Every failure wraps ErrUnauthenticated; the cause is logged, never
// returned in a form meant for the caller.
func (s *Service) AuthenticateRequest(r *http.Request) (*Principal, error) {
	raw, fromCookie, err := credentialFrom(r)
	if err != nil {
		return nil, err
	}
	p, err := s.Authenticate(r.Context(), raw)
	if err != nil {
		return nil, err
	}
	if fromCookie && p.AuthMethod != "session" {
		s.log.InfoContext(r.Context(), "authentication failed", "reason", "non-session token in cookie", "token_id", p.TokenID)
		return nil, fmt.Errorf("%w: only session tokens are accepted in the cookie", ErrUnauthenticated)
	}
	return p, nil
}

// CredentialFromCookie reports whether r would be authenticated by the
// session cookie rather than an Authorization header. Front ends use it for
// CSRF checks on state-changing requests.
func CredentialFromCookie(r *http.Request) bool {
	_, fromCookie, err := credentialFrom(r)
	return err == nil && fromCookie
}

func credentialFrom(r *http.Request) (raw string, fromCookie bool, err error) {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
			return "", false, fmt.Errorf("%w: unsupported authorization scheme", ErrUnauthenticated)
		}
		return strings.TrimSpace(tok), false, nil
	}
	if c, err := r.Cookie(SessionCookie); err == nil && c.Value != "" {
		return c.Value, true, nil
	}
	return "", false, fmt.Errorf("%w: no credential", ErrUnauthenticated)
}

// Authenticate resolves a bearer token to its principal. The token, the
// principal and its groups are read fresh from the store on every call, so a
// revoked token or a disabled or deleted principal is refused on the next
// request. Failures wrap ErrUnauthenticated (and ErrUnavailable when the
// store failed).
func (s *Service) Authenticate(ctx context.Context, raw string) (*Principal, error) {
	p, err := s.authenticate(ctx, raw)
	if err != nil {
		s.log.InfoContext(ctx, "authentication failed", "reason", err.Error())
		return nil, fmt.Errorf("%w: %w", ErrUnauthenticated, err)
	}
	return p, nil
}

func (s *Service) authenticate(ctx context.Context, raw string) (*Principal, error) {
	kind, id, secret, err := parseToken(raw)
	if err != nil {
		return nil, err
	}
	tok, err := s.st.GetToken(ctx, id)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("unknown token %s", id)
		}
		return nil, fmt.Errorf("%w: get token: %w", ErrUnavailable, err)
	}
	if subtle.ConstantTimeCompare(hashSecret(secret), tok.Hash) != 1 {
		return nil, fmt.Errorf("token %s: secret mismatch", id)
	}
	if tok.Kind != kind {
		return nil, fmt.Errorf("token %s: kind mismatch", id)
	}
	now := s.now()
	if tok.RevokedAt != nil {
		return nil, fmt.Errorf("token %s: revoked", id)
	}
	if !now.Before(tok.ExpiresAt) {
		return nil, fmt.Errorf("token %s: expired", id)
	}
	if _, err := s.ancestors(ctx, tok, now); err != nil {
		return nil, err
	}
	u, err := s.st.GetUser(ctx, tok.PrincipalID)
	if err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("token %s: principal %s no longer exists", id, tok.PrincipalID)
		}
		return nil, fmt.Errorf("%w: get principal: %w", ErrUnavailable, err)
	}
	if !u.Active {
		return nil, fmt.Errorf("token %s: principal %s is disabled", id, u.ID)
	}
	p, err := s.principalOf(ctx, u)
	if err != nil {
		return nil, err
	}
	p.TokenID = tok.ID
	p.TokenExpiresAt = tok.ExpiresAt
	p.RoleLimit = tok.Roles
	p.AuthMethod = "token"
	if tok.Kind == store.TokenSession {
		p.AuthMethod = "session"
	}
	if tok.LastUsedAt == nil || now.Sub(*tok.LastUsedAt) >= touchInterval {
		if err := s.st.TouchToken(ctx, tok.ID, now.UTC()); err != nil {
			s.log.DebugContext(ctx, "touch token failed", "token_id", tok.ID, "error", err)
		}
	}
	return p, nil
}

// PrincipalOf builds the Principal for user u: transitive groups, and the
// Admin and SCIM flags from the privilege assignments (never from groups,
// which directory writers control). It does not check that u is active.
func (s *Service) PrincipalOf(ctx context.Context, u *store.User) (*Principal, error) {
	return s.principalOf(ctx, u)
}

func (s *Service) principalOf(ctx context.Context, u *store.User) (*Principal, error) {
	groups, err := s.st.GroupsOfUser(ctx, u.ID)
	if err != nil {
		return nil, fmt.Errorf("%w: groups of %s: %w", ErrUnavailable, u.ID, err)
	}
	p := &Principal{UserID: u.ID, UserName: u.UserName, Kind: string(u.Kind), Groups: make([]string, 0, len(groups))}
	for _, g := range groups {
		p.Groups = append(p.Groups, g.DisplayName)
	}
	privs, err := s.PrivilegesOf(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	p.Admin = slices.Contains(privs, PrivilegeAdmin)
	p.SCIM = p.Admin || slices.Contains(privs, PrivilegeSCIM)
	return p, nil
}

// ---- passwords ----

// SetPassword sets the password of local user userID. Service principals
// get ErrNoPassword; a password outside policy gets ErrInvalidPassword.
// Existing login sessions of the user are revoked.
func (s *Service) SetPassword(ctx context.Context, userID, pw string) error {
	hash, err := s.hashPassword(ctx, pw)
	if err != nil {
		return err
	}
	for attempt := 0; ; attempt++ {
		u, err := s.st.GetUser(ctx, userID)
		if err != nil {
			return fmt.Errorf("identity: set password of %s: %w", userID, err)
		}
		if u.Kind == store.KindService {
			return ErrNoPassword
		}
		u.PasswordHash = hash
		err = s.st.UpdateUser(ctx, u)
		if errors.Is(err, store.ErrConflict) && attempt < 3 {
			continue
		}
		if err != nil {
			return fmt.Errorf("identity: set password of %s: %w", userID, err)
		}
		break
	}
	toks, err := s.st.ListTokens(ctx, userID)
	if err != nil {
		return fmt.Errorf("identity: set password of %s: list sessions: %w", userID, err)
	}
	for _, t := range toks {
		if t.Kind == store.TokenSession && t.RevokedAt == nil {
			if err := s.st.RevokeToken(ctx, t.ID, s.Now()); err != nil {
				return fmt.Errorf("identity: set password of %s: revoke session %s: %w", userID, t.ID, err)
			}
		}
	}
	return nil
}

// HashPassword hashes pw with the service's argon2id parameters, for
// callers that create a user with a password in one store write.
// Like every argon2 computation of the service it waits for a hashing slot
// (LoginLimits.MaxConcurrentHashes); none free in time is ErrBusy.
func (s *Service) HashPassword(pw string) (string, error) {
	return s.hashPassword(context.Background(), pw)
}

func (s *Service) hashPassword(ctx context.Context, pw string) (string, error) {
	if err := CheckPasswordPolicy(pw); err != nil {
		return "", err
	}
	release, err := s.guard.hashSlot(ctx)
	if err != nil {
		return "", err
	}
	defer release()
	return HashPassword(pw, s.argon, s.rnd)
}

// ---- tokens ----

// MaxTokenTTL returns the longest lifetime a personal access token may be
// given (Options.MaxTokenTTL).
func (s *Service) MaxTokenTTL() time.Duration { return s.maxTTL }

// CreateToken creates a personal access token for principalID, minted by
// the authenticated caller by (nil: by the server itself, as admin tooling
// and tests do). The secret is returned once and never stored.
//
// A token never outlives or widens the credential that minted it: when by
// is principalID itself and authenticated with a token or session, the new
// token inherits that credential's role restriction (Principal.RoleLimit)
// and must expire no later than it. An administrator minting for another
// principal passes neither on: the new token holds that principal's own
// authority. ttl 0 asks for the longest lifetime allowed, at most
// DefaultTokenTTL. A negative ttl, a ttl above MaxTokenTTL() or beyond the
// minting credential's expiry, an overlong name or an inactive principal
// yield ErrInvalidTokenRequest (the request is refused, never shortened);
// an unknown principal yields store.ErrNotFound.
func (s *Service) CreateToken(ctx context.Context, by *Principal, principalID, name string, ttl time.Duration) (string, *store.Token, error) {
	if len(name) > maxTokenName {
		return "", nil, fmt.Errorf("%w: name longer than %d bytes", ErrInvalidTokenRequest, maxTokenName)
	}
	u, err := s.st.GetUser(ctx, principalID)
	if err != nil {
		return "", nil, fmt.Errorf("identity: create token for %s: %w", principalID, err)
	}
	if !u.Active {
		return "", nil, fmt.Errorf("%w: principal is disabled", ErrInvalidTokenRequest)
	}
	t := &store.Token{Kind: store.TokenPAT, PrincipalID: u.ID, Name: name}
	inherit := by != nil && by.UserID == u.ID && by.TokenID != ""
	if t.ExpiresAt, err = s.tokenExpiry(by, inherit, ttl); err != nil {
		return "", nil, err
	}
	if inherit {
		if err := s.checkChain(ctx, by.TokenID); err != nil {
			return "", nil, err
		}
		t.Roles, t.ParentID = slices.Clone(by.RoleLimit), by.TokenID
	}
	raw, err := s.mintToken(ctx, t)
	if err != nil {
		return "", nil, err
	}
	return raw, t, nil
}

// tokenExpiry is the expiry of a personal access token asked for with ttl;
// see CreateToken. With inherit, by's token bounds it.
func (s *Service) tokenExpiry(by *Principal, inherit bool, ttl time.Duration) (time.Time, error) {
	now := s.Now()
	limit, why := now.Add(s.maxTTL), fmt.Sprintf("the maximum lifetime of %s", s.maxTTL)
	if inherit && !by.TokenExpiresAt.IsZero() && by.TokenExpiresAt.Before(limit) {
		limit = by.TokenExpiresAt
		why = fmt.Sprintf("the expiry of the %s it is minted with (%s)", credentialNoun(by), limit.Format(time.RFC3339))
	}
	switch {
	case ttl < 0:
		return time.Time{}, fmt.Errorf("%w: ttl must not be negative", ErrInvalidTokenRequest)
	case !limit.After(now):
		return time.Time{}, fmt.Errorf("%w: the %s it is minted with has expired", ErrInvalidTokenRequest, credentialNoun(by))
	case ttl == 0:
		return minTime(now.Add(DefaultTokenTTL), limit), nil
	case now.Add(ttl).After(limit):
		return time.Time{}, fmt.Errorf("%w: a ttl of %s would outlive %s; ask for less", ErrInvalidTokenRequest, ttl, why)
	}
	return now.Add(ttl), nil
}

// ancestors checks the tokens tok was minted with (store.Token.ParentID),
// up to the root: each must exist, be unrevoked and unexpired at now, and
// there may be at most maxTokenChain of them. It returns how many there
// are. A store failure wraps ErrUnavailable.
func (s *Service) ancestors(ctx context.Context, tok *store.Token, now time.Time) (int, error) {
	n := 0
	for pid := tok.ParentID; pid != ""; n++ {
		if n == maxTokenChain {
			return n, fmt.Errorf("token %s: more than %d ancestors", tok.ID, maxTokenChain)
		}
		p, err := s.st.GetToken(ctx, pid)
		switch {
		case errors.Is(err, store.ErrNotFound):
			return n, fmt.Errorf("token %s: the token %s it was minted with no longer exists", tok.ID, pid)
		case err != nil:
			return n, fmt.Errorf("%w: get token %s: %w", ErrUnavailable, pid, err)
		case p.RevokedAt != nil:
			return n, fmt.Errorf("token %s: the token %s it was minted with is revoked", tok.ID, pid)
		case !now.Before(p.ExpiresAt):
			return n, fmt.Errorf("token %s: the token %s it was minted with expired", tok.ID, pid)
		}
		pid = p.ParentID
	}
	return n, nil
}

// checkChain refuses to mint with token id when the new token would have
// more than maxTokenChain ancestors.
func (s *Service) checkChain(ctx context.Context, id string) error {
	parent, err := s.st.GetToken(ctx, id)
	if err != nil {
		return fmt.Errorf("identity: token %s: %w", id, err)
	}
	n, err := s.ancestors(ctx, parent, s.now())
	if err != nil {
		return fmt.Errorf("identity: %w", err)
	}
	if n+1 > maxTokenChain {
		return fmt.Errorf("%w: tokens minted with tokens may nest at most %d deep; mint this one with a session",
			ErrInvalidTokenRequest, maxTokenChain)
	}
	return nil
}

func credentialNoun(p *Principal) string {
	if p.AuthMethod == "session" {
		return "session"
	}
	return "token"
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func (s *Service) newToken(ctx context.Context, kind store.TokenKind, principalID, name string, ttl time.Duration) (string, *store.Token, error) {
	t := &store.Token{Kind: kind, PrincipalID: principalID, Name: name, ExpiresAt: s.Now().Add(ttl)}
	raw, err := s.mintToken(ctx, t)
	if err != nil {
		return "", nil, err
	}
	return raw, t, nil
}

// mintToken gives t a fresh id and secret, stores it with the secret's
// hash and returns the bearer token. t's Kind, PrincipalID, Name,
// ExpiresAt and Roles are kept as given.
func (s *Service) mintToken(ctx context.Context, t *store.Token) (string, error) {
	id, secret, err := newTokenParts(s.rnd)
	if err != nil {
		return "", err
	}
	raw, err := formatToken(t.Kind, id, secret)
	if err != nil {
		return "", err
	}
	t.ID, t.Hash, t.CreatedAt = id, hashSecret(secret), s.Now()
	if err := s.st.CreateToken(ctx, t); err != nil {
		return "", fmt.Errorf("identity: create %s token: %w", t.Kind, err)
	}
	return raw, nil
}

// RevokeToken revokes token id. Revoking twice is a no-op.
func (s *Service) RevokeToken(ctx context.Context, id string) error {
	if err := s.st.RevokeToken(ctx, id, s.Now()); err != nil {
		return fmt.Errorf("identity: revoke token %s: %w", id, err)
	}
	return nil
}

// ListTokens lists the tokens (never their secrets) of principalID.
func (s *Service) ListTokens(ctx context.Context, principalID string) ([]*store.Token, error) {
	ts, err := s.st.ListTokens(ctx, principalID)
	if err != nil {
		return nil, fmt.Errorf("identity: list tokens of %s: %w", principalID, err)
	}
	return ts, nil
}

// ---- login ----

// LoginMeta describes where a login attempt came from, for the audit trail.
type LoginMeta struct {
	SourceIP  string
	UserAgent string
	RequestID string
}

// AuditEvent starts the audit event of the attempt m describes: our request
// id (m's, else the one on ctx), the client's request id on ctx, and the
// source. now is the caller's injected clock.
func (m LoginMeta) AuditEvent(ctx context.Context, now func() time.Time, code audit.Code, action string) *audit.Builder {
	rid := m.RequestID
	if rid == "" {
		rid = requestid.From(ctx)
	}
	return audit.NewEvent(now, code, action).RequestIDs(rid, requestid.ClientFrom(ctx)).Source(m.SourceIP, m.UserAgent)
}

// Login checks a local user's password and returns a new session token.
// Every attempt is audited (CodeLoginSucceeded / CodeLoginFailed); the
// password never is. A failed attempt returns an error wrapping
// ErrUnauthenticated that does not say which part was wrong; unknown users
// cost the same argon2 work as known ones. If the audit event cannot be
// written the login fails with ErrUnavailable.
//
// Attempts are throttled per user name and per source (LoginLimits): a
// refused one returns a *ThrottledError (ErrThrottled) before any argon2
// work, and is audited through the throttled-attempt aggregator. The
// argon2 work waits for a hashing slot; none free in time is ErrBusy
// (with ErrUnavailable), audited as a failed attempt.
func (s *Service) Login(ctx context.Context, username, password string, meta LoginMeta) (string, *store.Token, error) {
	if err := s.guard.admit(username, meta.SourceIP, s.Now()); err != nil {
		return "", nil, s.refuseThrottled(ctx, username, meta, err)
	}
	release, err := s.guard.hashSlot(ctx)
	if err != nil {
		return "", nil, s.refuseBusy(ctx, username, meta, err)
	}
	defer release()
	raw, tok, err := s.login(ctx, username, password, meta)
	if err == nil {
		s.guard.succeeded(username, s.Now())
	}
	return raw, tok, err
}

// login is Login once the attempt is admitted and holds a hashing slot.
func (s *Service) login(ctx context.Context, username, password string, meta LoginMeta) (string, *store.Token, error) {
	fail := func(u *store.User, reason string) (string, *store.Token, error) {
		ev := meta.AuditEvent(ctx, s.Now, audit.CodeLoginFailed, "identity.login").Deny(reason)
		if u != nil {
			ev.Actor(audit.Actor{UserID: u.ID, User: u.UserName, AuthMethod: "password"}).
				Resource(audit.Resource{Type: "user", ID: u.ID, Name: u.UserName})
		} else {
			// An unknown name may be a mistyped password: record a keyed
			// hash, which still correlates repeated attempts.
			h, err := s.keyedHash(ctx, strings.ToLower(username))
			if err != nil {
				s.log.ErrorContext(ctx, "login audit key unavailable", "error", err)
				return "", nil, fmt.Errorf("%w: audit key: %w", ErrUnavailable, err)
			}
			ev.Actor(audit.Actor{AuthMethod: "password"}).Resource(audit.Resource{Type: "user"}).
				Detail("attemptedUserHash", h)
		}
		if err := s.emit(ctx, ev); err != nil {
			return "", nil, err
		}
		s.log.InfoContext(ctx, "login failed", "reason", reason, "request_id", meta.RequestID)
		return "", nil, fmt.Errorf("%w: invalid username or password", ErrUnauthenticated)
	}
	if username == "" || len(username) > 256 || password == "" || len(password) > MaxPasswordLen {
		_, _ = VerifyPassword(s.dummyHash(), "x-dummy-password")
		return fail(nil, "malformed credentials")
	}
	u, err := s.st.GetUserByName(ctx, username)
	if err != nil {
		if !errors.Is(err, store.ErrNotFound) {
			s.log.ErrorContext(ctx, "login: get user", "error", err)
			return "", nil, fmt.Errorf("%w: get user: %w", ErrUnavailable, err)
		}
		_, _ = VerifyPassword(s.dummyHash(), password)
		return fail(nil, "unknown user")
	}
	if u.Kind != store.KindUser || u.PasswordHash == "" {
		_, _ = VerifyPassword(s.dummyHash(), password)
		return fail(u, "no password set")
	}
	ok, err := VerifyPassword(u.PasswordHash, password)
	if err != nil {
		s.log.ErrorContext(ctx, "login: stored password hash is malformed", "user_id", u.ID)
		return fail(u, "stored password hash is malformed")
	}
	if !ok {
		return fail(u, "wrong password")
	}
	if !u.Active {
		return fail(u, "user is disabled")
	}
	raw, tok, err := s.newToken(ctx, store.TokenSession, u.ID, "login", s.ttl)
	if err != nil {
		s.log.ErrorContext(ctx, "login: create session", "error", err)
		return "", nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	ev := meta.AuditEvent(ctx, s.Now, audit.CodeLoginSucceeded, "identity.login").Allow().
		Actor(audit.Actor{UserID: u.ID, User: u.UserName, AuthMethod: "password", SessionID: tok.ID}).
		Resource(audit.Resource{Type: "token", ID: tok.ID, Name: u.UserName}).
		Detail("expiresAt", tok.ExpiresAt)
	if err := s.emit(ctx, ev); err != nil {
		if rerr := s.st.RevokeToken(ctx, tok.ID, s.Now()); rerr != nil {
			s.log.ErrorContext(ctx, "login: revoke unaudited session", "token_id", tok.ID, "error", rerr)
		}
		return "", nil, err
	}
	return raw, tok, nil
}

// emit records the event b builds; an error wraps ErrUnavailable.
func (s *Service) emit(ctx context.Context, b *audit.Builder) error {
	ev := b.Event()
	if err := s.em.Emit(ctx, ev); err != nil {
		s.log.ErrorContext(ctx, "audit emit failed", "code", string(ev.Code), "error", err)
		return fmt.Errorf("%w: audit: %w", ErrUnavailable, err)
	}
	return nil
}

func (s *Service) dummyHash() string {
	s.dummyO.Do(func() {
		h, err := HashPassword("gatehouse-dummy-password", s.argon, rand.Reader)
		if err != nil {
			// Cannot happen with crypto/rand; fall back to a fixed valid hash shape.
			h = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHRzYWx0c2FsdA$" + strings.Repeat("A", 43)
		}
		s.dummy = h
	})
	return s.dummy
}

const auditKeyMeta = "identity/audit-hash-key"

// keyedHash returns hex(HMAC-SHA256(key, v))[:32] with the audit hash key,
// creating and persisting the key on first use.
func (s *Service) keyedHash(ctx context.Context, v string) (string, error) {
	key, err := s.auditKey(ctx)
	if err != nil {
		return "", err
	}
	m := hmac.New(sha256.New, key)
	m.Write([]byte(v))
	return "hmac-sha256:" + hex.EncodeToString(m.Sum(nil))[:32], nil
}

func (s *Service) auditKey(ctx context.Context) ([]byte, error) {
	s.keyMu.Lock()
	defer s.keyMu.Unlock()
	if len(s.key) > 0 {
		return s.key, nil
	}
	for range 3 {
		cur, err := s.st.GetMeta(ctx, auditKeyMeta)
		if err == nil && len(cur) >= 32 {
			s.key = cur
			return cur, nil
		}
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
		k := make([]byte, 32)
		if _, err := io.ReadFull(s.rnd, k); err != nil {
			return nil, err
		}
		empty := []byte{}
		err = s.st.PutMeta(ctx, auditKeyMeta, k, &empty)
		if err == nil {
			s.key = k
			return k, nil
		}
		if !errors.Is(err, store.ErrConflict) {
			return nil, err
		}
	}
	return nil, errors.New("identity: audit key: too much contention")
}
