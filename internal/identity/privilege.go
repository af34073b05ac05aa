package identity

// Privilege assignments: who is a gatehouse administrator and who may call
// the SCIM API (docs/design/0015-admin-privilege.md). They are held outside
// the directory, in the store's server-state space under one key, so that
// nothing a directory writer controls (group names, group members, user
// names, attributes) can confer them. Only the admin REST API (and so the
// admin CLI) and the first-run bootstrap write them.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// Privilege is a gatehouse privilege held by a principal (by id).
type Privilege string

// The privileges.
const (
	// PrivilegeAdmin makes a principal a gatehouse administrator: the
	// admin REST API, SCIM, and every privilege assignment.
	PrivilegeAdmin Privilege = "admin"
	// PrivilegeSCIM lets a principal (typically the IdP's provisioning
	// service principal) call the SCIM API, and nothing else.
	PrivilegeSCIM Privilege = "scim"
)

// Privileges lists every privilege, in a stable order.
var Privileges = []Privilege{PrivilegeAdmin, PrivilegeSCIM}

// ParsePrivilege returns the privilege named s (case-insensitively).
func ParsePrivilege(s string) (Privilege, error) {
	for _, p := range Privileges {
		if strings.EqualFold(s, string(p)) {
			return p, nil
		}
	}
	return "", fmt.Errorf("%w: unknown privilege %q (known: admin, scim)", ErrInvalidPrivilege, s)
}

// Grant is one privilege held by one principal.
type Grant struct {
	PrincipalID string    `json:"principalId"`
	Privilege   Privilege `json:"privilege"`
	GrantedAt   time.Time `json:"grantedAt"`
	// GrantedBy is the id of the principal that granted it, or "system".
	GrantedBy string `json:"grantedBy"`
}

// Errors of privilege assignment.
var (
	// ErrInvalidPrivilege reports an unknown privilege, or a change the
	// rules forbid (revoking the last administrator).
	ErrInvalidPrivilege = errors.New("identity: invalid privilege assignment")
)

// privilegesMeta is the store meta key holding the JSON-encoded grants.
// Its absence means "no grants yet" (a store before the first bootstrap).
const privilegesMeta = "identity/privileges"

type grantsDoc struct {
	Grants []Grant `json:"grants"`
}

// loadGrants returns the grants and the raw value they were read from
// (empty when the key is absent), for a compare-and-swap.
func (s *Service) loadGrants(ctx context.Context) ([]Grant, []byte, error) {
	raw, err := s.st.GetMeta(ctx, privilegesMeta)
	if errors.Is(err, store.ErrNotFound) {
		return nil, []byte{}, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%w: read privileges: %w", ErrUnavailable, err)
	}
	var d grantsDoc
	if err := json.Unmarshal(raw, &d); err != nil {
		// A corrupt assignment confers nothing: fail closed.
		return nil, nil, fmt.Errorf("%w: privileges are corrupt: %w", ErrUnavailable, err)
	}
	return d.Grants, raw, nil
}

// ListGrants returns every privilege grant, ordered by privilege, then
// principal id.
func (s *Service) ListGrants(ctx context.Context) ([]Grant, error) {
	gs, _, err := s.loadGrants(ctx)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(gs, func(a, b Grant) int {
		if c := strings.Compare(string(a.Privilege), string(b.Privilege)); c != 0 {
			return c
		}
		return strings.Compare(a.PrincipalID, b.PrincipalID)
	})
	return gs, nil
}

// PrivilegesOf returns the privileges principalID holds.
func (s *Service) PrivilegesOf(ctx context.Context, principalID string) ([]Privilege, error) {
	gs, _, err := s.loadGrants(ctx)
	if err != nil {
		return nil, err
	}
	var out []Privilege
	for _, g := range gs {
		if g.PrincipalID == principalID {
			out = append(out, g.Privilege)
		}
	}
	return out, nil
}

// HasPrivilege reports whether principalID holds any privilege.
func (s *Service) HasPrivilege(ctx context.Context, principalID string) (bool, error) {
	ps, err := s.PrivilegesOf(ctx, principalID)
	return len(ps) > 0, err
}

// GrantPrivilege gives principal principalID privilege p, recording
// grantedBy. The principal must exist. Granting a held privilege is a
// no-op (changed false). The caller audits before calling (audit before
// effect). Safe for concurrent use: a compare-and-swap on the one key.
func (s *Service) GrantPrivilege(ctx context.Context, principalID string, p Privilege, grantedBy string) (changed bool, err error) {
	if _, err := ParsePrivilege(string(p)); err != nil {
		return false, err
	}
	if _, err := s.st.GetUser(ctx, principalID); err != nil {
		return false, fmt.Errorf("identity: grant %s to %s: %w", p, principalID, err)
	}
	return s.updateGrants(ctx, func(gs []Grant) ([]Grant, bool, error) {
		if slices.ContainsFunc(gs, func(g Grant) bool { return g.PrincipalID == principalID && g.Privilege == p }) {
			return gs, false, nil
		}
		return append(gs, Grant{PrincipalID: principalID, Privilege: p, GrantedAt: s.Now(), GrantedBy: grantedBy}), true, nil
	})
}

// RevokePrivilege takes privilege p from principalID. Revoking a privilege
// not held is a no-op (changed false). Revoking the last administrator is
// refused with ErrInvalidPrivilege, so that gatehouse always has one.
func (s *Service) RevokePrivilege(ctx context.Context, principalID string, p Privilege) (changed bool, err error) {
	if _, err := ParsePrivilege(string(p)); err != nil {
		return false, err
	}
	return s.updateGrants(ctx, func(gs []Grant) ([]Grant, bool, error) {
		held := func(g Grant) bool { return g.PrincipalID == principalID && g.Privilege == p }
		if !slices.ContainsFunc(gs, held) {
			return gs, false, nil
		}
		out := slices.DeleteFunc(slices.Clone(gs), held)
		if p == PrivilegeAdmin && !slices.ContainsFunc(out, func(g Grant) bool { return g.Privilege == PrivilegeAdmin }) {
			return nil, false, fmt.Errorf("%w: cannot revoke the last administrator", ErrInvalidPrivilege)
		}
		return out, true, nil
	})
}

// updateGrants applies edit under compare-and-swap, retrying on contention.
func (s *Service) updateGrants(ctx context.Context, edit func([]Grant) ([]Grant, bool, error)) (bool, error) {
	for range 10 {
		gs, raw, err := s.loadGrants(ctx)
		if err != nil {
			return false, err
		}
		out, changed, err := edit(gs)
		if err != nil || !changed {
			return false, err
		}
		val, err := json.Marshal(grantsDoc{Grants: out})
		if err != nil {
			return false, err
		}
		err = s.st.PutMeta(ctx, privilegesMeta, val, &raw)
		if err == nil {
			return true, nil
		}
		if !errors.Is(err, store.ErrConflict) {
			return false, fmt.Errorf("%w: write privileges: %w", ErrUnavailable, err)
		}
	}
	return false, fmt.Errorf("%w: privileges: too much contention", ErrUnavailable)
}
