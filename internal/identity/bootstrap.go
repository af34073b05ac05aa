package identity

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

const (
	// BootstrapMetaKey guards the one-time bootstrap in the store meta space.
	BootstrapMetaKey = "bootstrap/admin"
	// BootstrapPrincipal is the user name of the bootstrap service principal.
	BootstrapPrincipal = "bootstrap-admin"

	// A pending claim older than this is presumed abandoned (crashed replica).
	bootstrapStale = 10 * time.Minute
)

type bootstrapState struct {
	State       string    `json:"state"` // pending, failed, done
	At          time.Time `json:"at"`
	PrincipalID string    `json:"principalId,omitempty"`
	TokenID     string    `json:"tokenId,omitempty"`
}

// Bootstrap performs the one-time first-run setup: it creates the admin
// group and a service principal "bootstrap-admin" in it, issues a personal
// access token for it (valid MaxTokenTTL) and writes the token to tokenPath,
// created exclusively with mode 0600. Only the path is logged, never the
// secret.
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
			return false, nil
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
	g, err := s.ensureAdminGroupWith(ctx, u.ID)
	if err != nil {
		return false, markFailed(err)
	}
	raw, tok, err := s.newToken(ctx, store.TokenPAT, u.ID, "bootstrap", MaxTokenTTL)
	if err != nil {
		return false, markFailed(err)
	}
	revoke := func() {
		if err := s.st.RevokeToken(ctx, tok.ID, s.Now()); err != nil {
			s.log.ErrorContext(ctx, "bootstrap: revoke unissued token", "token_id", tok.ID, "error", err)
		}
	}
	ev := audit.Event{Code: audit.CodeBootstrap, Action: "identity.bootstrap", Decision: audit.Allow,
		Actor:    audit.Actor{User: "system", AuthMethod: "system"},
		Resource: audit.Resource{Type: "user", ID: u.ID, Name: u.UserName},
		Details:  map[string]any{"adminGroup": g.DisplayName, "adminGroupId": g.ID, "tokenId": tok.ID, "tokenPath": tokenPath}}
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

func (s *Service) ensureAdminGroupWith(ctx context.Context, userID string) (*store.Group, error) {
	for attempt := 0; ; attempt++ {
		g, err := s.st.GetGroupByName(ctx, s.admin)
		if errors.Is(err, store.ErrNotFound) {
			g = &store.Group{DisplayName: s.admin, Members: []store.Member{{ID: userID, Type: store.MemberUser}}}
			err = s.st.CreateGroup(ctx, g)
			if errors.Is(err, store.ErrAlreadyExists) && attempt < 3 {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("create admin group: %w", err)
			}
			return g, nil
		}
		if err != nil {
			return nil, fmt.Errorf("get admin group: %w", err)
		}
		if slices.ContainsFunc(g.Members, func(m store.Member) bool { return m.ID == userID }) {
			return g, nil
		}
		g.Members = append(g.Members, store.Member{ID: userID, Type: store.MemberUser})
		err = s.st.UpdateGroup(ctx, g)
		if errors.Is(err, store.ErrConflict) && attempt < 3 {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("add to admin group: %w", err)
		}
		return g, nil
	}
}
