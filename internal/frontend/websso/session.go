package websso

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/identity"
	"github.com/gatehouse-dev/gatehouse/internal/secrets"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// newSession creates a gatehouse session for a user who signed in through
// a federated IdP, restricted to roles (nil: unrestricted; see
// store.Token.Roles). It uses the bearer token wire format documented in
// package identity (gh<k>_<id>_<secret>, only SHA-256(secret) stored), so
// identity.Service authenticates it like a password login's session.
// TODO(lead): move into identity.Service as StartSession so the format has
// one owner.
func (s *Service) newSession(ctx context.Context, userID, name string, roles []store.RoleGrant) (string, *store.Token, error) {
	enc := base32.StdEncoding.WithPadding(base32.NoPadding)
	part := func(n int) (string, error) {
		b := make([]byte, n)
		if _, err := io.ReadFull(s.o.Rand, b); err != nil {
			return "", fmt.Errorf("websso: randomness: %w", err)
		}
		return strings.ToLower(enc.EncodeToString(b)), nil
	}
	id, err := part(15)
	if err != nil {
		return "", nil, err
	}
	secret, err := part(32)
	if err != nil {
		return "", nil, err
	}
	h := sha256.Sum256([]byte(secret))
	now := s.now()
	t := &store.Token{ID: id, PrincipalID: userID, Kind: store.TokenSession, Name: name, Hash: h[:],
		CreatedAt: now, ExpiresAt: now.Add(s.o.SessionTTL), Roles: roles}
	if err := s.o.Store.CreateToken(ctx, t); err != nil {
		return "", nil, fmt.Errorf("websso: create session: %w", err)
	}
	return "ghs_" + id + "_" + secret, t, nil
}

// federatedLogin finishes a SAML or OIDC login of user u: it creates the
// session restricted to the roles the IdP granted (nil: the IdP said
// nothing about roles), records the IdP, and audits the login. If the
// audit event cannot be written the session is revoked (fail closed).
func (s *Service) federatedLogin(ctx context.Context, u *store.User, method string, rec sessionRecord, roles []store.RoleGrant, meta identity.LoginMeta, details map[string]any) (string, *store.Token, error) {
	raw, tok, err := s.newSession(ctx, u.ID, "login-"+method, roles)
	if err != nil {
		return "", nil, err
	}
	if err := s.recordSession(ctx, tok, rec); err != nil {
		_ = s.o.Store.RevokeToken(ctx, tok.ID, s.now())
		return "", nil, err
	}
	ev := meta.AuditEvent(ctx, s.now, audit.CodeLoginSucceeded, "identity.login."+method).Allow().
		Actor(audit.Actor{UserID: u.ID, User: u.UserName, AuthMethod: method, SessionID: tok.ID}).
		Resource(audit.Resource{Type: "token", ID: tok.ID, Name: u.UserName}).
		Details(details).Detail("idp", rec.IdP).Detail("expiresAt", tok.ExpiresAt.Format(time.RFC3339))
	if roles != nil {
		ev.Detail("roles", store.RoleARNs(roles))
	}
	if err := s.emit(ctx, ev); err != nil {
		_ = s.o.Store.RevokeToken(ctx, tok.ID, s.now())
		return "", nil, err
	}
	return raw, tok, nil
}

// ---- one-time records in the meta space ----

// Hand-off codes are stored records used once: they are consumed with a
// compare-and-swap that replaces them by "used", so a replay on any replica
// fails. Both the record and its tombstone expire at until, after which the
// sweeper deletes them. (Sign-in state before authentication is sealed,
// not stored: see onetime.go.)
var usedMarker = []byte(`{"used":true}`)

func (s *Service) putOnce(ctx context.Context, key string, v any, until time.Time) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	empty := []byte{}
	return s.o.Store.PutMetaUntil(ctx, key, b, &empty, until)
}

// takeOnce reads and consumes the record under key into v, leaving a
// tombstone until until. It reports false when the record is absent or was
// already used.
func (s *Service) takeOnce(ctx context.Context, key string, v any, until time.Time) (bool, error) {
	cur, err := s.o.Store.GetMeta(ctx, key)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if string(cur) == string(usedMarker) {
		return false, nil
	}
	if err := s.o.Store.PutMetaUntil(ctx, key, usedMarker, &cur, until); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return false, nil
		}
		return false, err
	}
	return true, json.Unmarshal(cur, v)
}

// handoff is a one-time code for the CLI: the session token sealed under
// the master key (it is never stored in clear), and the PKCE challenge.
type handoff struct {
	Sealed    string    `json:"sealed"`
	Challenge string    `json:"challenge"`
	UserName  string    `json:"userName"`
	ExpiresAt time.Time `json:"expiresAt"`
	SessionAt time.Time `json:"sessionExpiresAt"`
}

func codeKey(code string) string {
	h := sha256.Sum256([]byte(code))
	return "websso/code/" + hex.EncodeToString(h[:])
}

const handoffAAD = "gatehouse/websso/cli-handoff/v1"

// newHandoff stores a one-time code for raw and returns it.
func (s *Service) newHandoff(ctx context.Context, p *pendingCLI, raw string, tok *store.Token, userName string) (string, error) {
	code, err := randomID(s.o.Rand, 32)
	if err != nil {
		return "", err
	}
	sealed, err := secrets.Seal(s.o.MasterKey, []byte(raw), []byte(handoffAAD))
	if err != nil {
		return "", err
	}
	h := handoff{Sealed: base64.StdEncoding.EncodeToString(sealed), Challenge: p.Challenge, UserName: userName,
		ExpiresAt: s.now().Add(handoffTTL), SessionAt: tok.ExpiresAt}
	if err := s.putOnce(ctx, codeKey(code), h, h.ExpiresAt); err != nil {
		return "", err
	}
	return code, nil
}

// redeemHandoff consumes code and checks the PKCE verifier (RFC 7636 §4.6,
// S256 only). It returns the session token.
func (s *Service) redeemHandoff(ctx context.Context, code, verifier string) (*handoff, string, error) {
	var h handoff
	ok, err := s.takeOnce(ctx, codeKey(code), &h, s.now().Add(handoffTTL))
	if err != nil {
		return nil, "", err
	}
	if !ok || !s.now().Before(h.ExpiresAt) {
		return nil, "", errBadCode
	}
	sum := sha256.Sum256([]byte(verifier))
	if subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(sum[:])), []byte(h.Challenge)) != 1 {
		return nil, "", errBadCode
	}
	sealed, err := base64.StdEncoding.DecodeString(h.Sealed)
	if err != nil {
		return nil, "", errBadCode
	}
	raw, err := secrets.Open(s.o.MasterKey, sealed, []byte(handoffAAD))
	if err != nil {
		return nil, "", fmt.Errorf("websso: open hand-off: %w", err)
	}
	return &h, string(raw), nil
}

var errBadCode = errors.New("websso: unknown, used or expired code, or wrong code_verifier")
