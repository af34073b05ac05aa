package identity

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

const (
	// BootstrapMetaKey guards the one-time bootstrap in the store meta space.
	BootstrapMetaKey = "bootstrap/admin"
	// BootstrapPrincipal is the user name of the bootstrap service principal.
	BootstrapPrincipal = "bootstrap-admin"

	// BootstrapTokenTTL is the longest the bootstrap token lives; it ends
	// sooner, when it is first used to make another principal an admin.
	BootstrapTokenTTL = 24 * time.Hour

	// A pending claim older than this is presumed abandoned (crashed replica).
	bootstrapStale = 10 * time.Minute
)

type bootstrapState struct {
	State       string    `json:"state"` // pending, failed, done
	At          time.Time `json:"at"`
	PrincipalID string    `json:"principalId,omitempty"`
	TokenID     string    `json:"tokenId,omitempty"`
}

// Bootstrap performs the one-time first-run setup: it creates a service
// principal "bootstrap-admin", grants it the admin privilege, issues a
// personal access token for it (valid BootstrapTokenTTL, and retired by
// RetireBootstrapToken once it has made a real admin) and writes the token
// to tokenPath, created exclusively with mode 0600. Only the path is
// logged, never the secret.
//
// On a store bootstrapped before privileges were held outside the
// directory (marker done, no privilege assignments yet), Bootstrap instead
// grants admin to the principal the marker names, once, and audits it.
//
// A compare-and-swap on the store meta key "bootstrap/admin" makes sure
// only one replica ever bootstraps; later calls return (false, nil). A
// claim left pending by a crashed replica is taken over after ten minutes.
// If tokenPath already exists, Bootstrap refuses rather than overwrite it.
func (s *Service) Bootstrap(ctx context.Context, tokenPath string) (created bool, err error) {
	cur, err := s.st.GetMeta(ctx, BootstrapMetaKey)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return false, fmt.Errorf("identity: bootstrap: read marker: %w", err)
	}
	expect := []byte{}
	if err == nil && len(cur) > 0 {
		var st bootstrapState
		if jerr := json.Unmarshal(cur, &st); jerr != nil {
			return false, fmt.Errorf("identity: bootstrap: marker is corrupt: %w", jerr)
		}
		switch {
		case st.State == "done":
			return false, s.adoptBootstrapAdmin(ctx, st.PrincipalID)
		case st.State == "pending" && s.now().Sub(st.At) < bootstrapStale:
			s.log.WarnContext(ctx, "bootstrap is in progress on another replica", "since", st.At)
			return false, nil
		}
		expect = cur // take over a failed or abandoned attempt
	}
	if tokenPath == "" {
		return false, errors.New("identity: bootstrap: no token path configured")
	}

	f, err := os.OpenFile(tokenPath, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return false, fmt.Errorf("identity: bootstrap: create token file (remove a stale one to retry): %w", err)
	}
	written := false
	defer func() {
		if !written {
			_ = f.Close()
			_ = os.Remove(tokenPath)
		}
	}()

	claim, _ := json.Marshal(bootstrapState{State: "pending", At: s.Now()})
	if err := s.st.PutMeta(ctx, BootstrapMetaKey, claim, &expect); err != nil {
		if errors.Is(err, store.ErrConflict) {
			s.log.InfoContext(ctx, "bootstrap claimed by another replica")
			return false, nil
		}
		return false, fmt.Errorf("identity: bootstrap: claim: %w", err)
	}
	markFailed := func(cause error) error {
		failed, _ := json.Marshal(bootstrapState{State: "failed", At: s.Now()})
		if err := s.st.PutMeta(ctx, BootstrapMetaKey, failed, &claim); err != nil {
			s.log.ErrorContext(ctx, "bootstrap: mark failed", "error", err)
		}
		return fmt.Errorf("identity: bootstrap: %w", cause)
	}

	u, err := s.ensureBootstrapPrincipal(ctx)
	if err != nil {
		return false, markFailed(err)
	}
	if _, err := s.GrantPrivilege(ctx, u.ID, PrivilegeAdmin, "system"); err != nil {
		return false, markFailed(err)
	}
	raw, tok, err := s.newToken(ctx, store.TokenPAT, u.ID, "bootstrap", BootstrapTokenTTL)
	if err != nil {
		return false, markFailed(err)
	}
	revoke := func() {
		if err := s.st.RevokeToken(ctx, tok.ID, s.Now()); err != nil {
			s.log.ErrorContext(ctx, "bootstrap: revoke unissued token", "token_id", tok.ID, "error", err)
		}
	}
	ev := audit.NewEvent(s.Now, audit.CodeBootstrap, "identity.bootstrap").Allow().Request(ctx).
		Actor(audit.Actor{User: "system", AuthMethod: "system"}).
		Resource(audit.Resource{Type: "user", ID: u.ID, Name: u.UserName}).
		Details(map[string]any{"privilege": string(PrivilegeAdmin), "tokenId": tok.ID, "tokenPath": tokenPath,
			"tokenExpiresAt": tok.ExpiresAt})
	if err := s.emit(ctx, ev); err != nil {
		revoke()
		return false, markFailed(err)
	}
	if _, err := f.WriteString(raw + "\n"); err != nil {
		revoke()
		return false, markFailed(fmt.Errorf("write token file: %w", err))
	}
	if err := f.Sync(); err != nil {
		revoke()
		return false, markFailed(fmt.Errorf("sync token file: %w", err))
	}
	if err := f.Close(); err != nil {
		revoke()
		return false, markFailed(fmt.Errorf("close token file: %w", err))
	}
	written = true
	done, _ := json.Marshal(bootstrapState{State: "done", At: s.Now(), PrincipalID: u.ID, TokenID: tok.ID})
	if err := s.st.PutMeta(ctx, BootstrapMetaKey, done, &claim); err != nil {
		// The token exists and was handed over; only the marker is stale.
		s.log.ErrorContext(ctx, "bootstrap: mark done", "error", err)
	}
	s.log.InfoContext(ctx, "bootstrap admin token written", "path", tokenPath, "principal", u.UserName, "token_id", tok.ID)
	return true, nil
}

func (s *Service) ensureBootstrapPrincipal(ctx context.Context) (*store.User, error) {
	u, err := s.st.GetUserByName(ctx, BootstrapPrincipal)
	switch {
	case err == nil:
		if u.Kind != store.KindService || !u.Active {
			return nil, fmt.Errorf("principal %q exists but is not an active service principal", BootstrapPrincipal)
		}
		return u, nil
	case !errors.Is(err, store.ErrNotFound):
		return nil, fmt.Errorf("get principal: %w", err)
	}
	u = &store.User{Kind: store.KindService, UserName: BootstrapPrincipal, DisplayName: "Bootstrap administrator", Active: true}
	if err := s.st.CreateUser(ctx, u); err != nil {
		return nil, fmt.Errorf("create principal: %w", err)
	}
	return u, nil
}

// adoptBootstrapAdmin grants admin to the bootstrap principal of a store
// bootstrapped before privilege assignments existed (no assignment yet),
// so that an upgrade keeps one administrator. It does nothing once any
// assignment exists. Group membership is deliberately not imported: a
// directory writer may have shaped it.
func (s *Service) adoptBootstrapAdmin(ctx context.Context, principalID string) error {
	gs, _, err := s.loadGrants(ctx)
	if err != nil || len(gs) > 0 || principalID == "" {
		return err
	}
	u, err := s.st.GetUser(ctx, principalID)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("identity: bootstrap: adopt admin: %w", err)
	}
	ev := audit.NewEvent(s.Now, audit.CodePrivilegeGranted, "identity.privilege.grant").Allow().Request(ctx).
		Actor(audit.Actor{User: "system", AuthMethod: "system"}).
		Resource(audit.Resource{Type: "user", ID: u.ID, Name: u.UserName}).
		Details(map[string]any{"privilege": string(PrivilegeAdmin), "reason": "bootstrap principal of an earlier version"})
	if err := s.emit(ctx, ev); err != nil {
		return fmt.Errorf("identity: bootstrap: adopt admin: %w", err)
	}
	if _, err := s.GrantPrivilege(ctx, u.ID, PrivilegeAdmin, "system"); err != nil {
		return fmt.Errorf("identity: bootstrap: adopt admin: %w", err)
	}
	return nil
}

// IsBootstrapToken reports whether tokenID is the first-run bootstrap
// token (as recorded in the bootstrap marker).
func (s *Service) IsBootstrapToken(ctx context.Context, tokenID string) (bool, error) {
	if tokenID == "" {
		return false, nil
	}
	cur, err := s.st.GetMeta(ctx, BootstrapMetaKey)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("%w: read bootstrap marker: %w", ErrUnavailable, err)
	}
	var st bootstrapState
	if err := json.Unmarshal(cur, &st); err != nil {
		return false, fmt.Errorf("%w: bootstrap marker is corrupt: %w", ErrUnavailable, err)
	}
	return st.TokenID == tokenID, nil
}

// RetireBootstrapToken revokes the bootstrap token tokenID once it has
// been used to make another principal an admin: its job is done. The
// caller audits the grant that retires it, naming the token.
func (s *Service) RetireBootstrapToken(ctx context.Context, tokenID string) error {
	if err := s.st.RevokeToken(ctx, tokenID, s.Now()); err != nil {
		return fmt.Errorf("identity: retire bootstrap token %s: %w", tokenID, err)
	}
	s.log.InfoContext(ctx, "bootstrap token retired: a real admin exists", "token_id", tokenID)
	return nil
}
