package server

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// userRevoker cuts off a user's live temporary credentials.
type userRevoker interface {
	RevokeUser(ctx context.Context, userID string, at time.Time) error
}

// revokingStore wraps the metadata store so that every path that disables
// or deletes a user (SCIM, admin REST, CLI, future connectors) also raises
// the user's credential not-before time. Without it, STS credentials would
// only be refused while the user stays disabled, and would work again after
// a re-enable; with it, credentials issued before the disable never return.
//
// The revocation is written before the user record: if it fails, the
// disable fails too (fail closed), and a retry repeats both.
var _ store.GroupMemberStore = (*revokingStore)(nil)

type revokingStore struct {
	store.Store
	externalIDLookups
	rev userRevoker
	now func() time.Time
}

// UpdateUser revokes the user's live credentials before the update when it
// disables the user, or when it changes what the user's credentials carry
// into policy evaluation: the user name (aws:username,
// gatehouse:username, the role session name) or the attributes (read by
// trust policies and session tags). Credentials minted under the old
// values would otherwise keep matching policies written for them, for
// example home/${aws:username}/ after the name passes to someone else.
// A user that is not in the store is left to the store to refuse.
func (s *revokingStore) UpdateUser(ctx context.Context, u *store.User) error {
	revoke := !u.Active
	if !revoke {
		old, err := s.Store.GetUser(ctx, u.ID)
		switch {
		case err == nil:
			revoke = policyInputsChanged(old, u)
		case !errors.Is(err, store.ErrNotFound):
			return fmt.Errorf("store: read user %q before update: %w", u.ID, err)
		}
	}
	if revoke {
		if err := s.rev.RevokeUser(ctx, u.ID, s.now()); err != nil {
			return fmt.Errorf("store: revoke credentials of %q: %w", u.UserName, err)
		}
	}
	return s.Store.UpdateUser(ctx, u)
}

// policyInputsChanged reports whether an update changes a user field that
// reaches policy evaluation through their credentials.
func policyInputsChanged(old, u *store.User) bool {
	if old.UserName != u.UserName || len(old.Attributes) != len(u.Attributes) {
		return true
	}
	for k, v := range old.Attributes {
		nv, ok := u.Attributes[k]
		if !ok || !slices.Equal(v, nv) {
			return true
		}
	}
	return false
}

func (s *revokingStore) DeleteUser(ctx context.Context, id string) error {
	if err := s.rev.RevokeUser(ctx, id, s.now()); err != nil {
		return fmt.Errorf("store: revoke credentials of %q: %w", id, err)
	}
	return s.Store.DeleteUser(ctx, id)
}

// UpdateGroup revokes the credentials of every user who loses membership
// (directly or through nesting) by this update: group membership is an
// entitlement (trust policies may admit groups), so losing it must cut off
// credentials issued while it held. A rename revokes every member before
// the update, since their credentials carry the old name in
// gatehouse:groups. Revoking is coarse (all of the user's sessions) and
// errs on the side of denial.
func (s *revokingStore) UpdateGroup(ctx context.Context, g *store.Group) error {
	old, err := s.Store.GetGroup(ctx, g.ID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("store: read group %q before update: %w", g.ID, err)
	}
	renamed := old != nil && old.DisplayName != g.DisplayName
	before, err := s.transitiveUsers(ctx, []store.Member{{ID: g.ID, Type: store.MemberGroup}})
	if err != nil {
		return err
	}
	after, err := s.transitiveUsersExcept(ctx, g.Members, g.ID)
	if err != nil {
		return err
	}
	for id := range before {
		if renamed || !after[id] {
			if err := s.rev.RevokeUser(ctx, id, s.now()); err != nil {
				return fmt.Errorf("store: revoke credentials of %q: %w", id, err)
			}
		}
	}
	return s.Store.UpdateGroup(ctx, g)
}

// PatchGroupMembers implements store.GroupMemberStore over the wrapped
// store. Before the change it revokes the credentials of every user it
// removes, directly or through a removed nested group, as UpdateGroup
// does; a named user who is not a direct member is left alone. Adding
// members revokes nothing. A user who stays a member by another path is
// revoked all the same: coarse, on the side of denial.
func (s *revokingStore) PatchGroupMembers(ctx context.Context, id string, revision int64, add,
	remove []store.Member) (*store.GroupPatch, error) {
	ms, ok := s.Store.(store.GroupMemberStore)
	if !ok {
		return nil, fmt.Errorf("store: patch members of group %q: %T cannot change members one by one", id, s.Store)
	}
	var losing []store.Member
	for _, m := range remove {
		direct, err := s.directUser(ctx, id, m)
		if err != nil {
			return nil, err
		}
		if direct || m.Type != store.MemberUser {
			losing = append(losing, m)
		}
	}
	users, err := s.transitiveUsers(ctx, losing)
	if err != nil {
		return nil, err
	}
	for uid := range users {
		if err := s.rev.RevokeUser(ctx, uid, s.now()); err != nil {
			return nil, fmt.Errorf("store: revoke credentials of %q: %w", uid, err)
		}
	}
	return ms.PatchGroupMembers(ctx, id, revision, add, remove)
}

// directUser reports whether m is a user and a direct member of group id,
// through GroupsOfUser, which never loads the group's members.
func (s *revokingStore) directUser(ctx context.Context, id string, m store.Member) (bool, error) {
	if m.Type != store.MemberUser {
		return false, nil
	}
	gs, err := s.Store.GroupsOfUser(ctx, m.ID)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("store: groups of %q: %w", m.ID, err)
	}
	for _, g := range gs {
		if g.ID == id && len(g.Members) > 0 {
			return true, nil
		}
	}
	return false, nil
}

// DeleteGroup revokes the credentials of every (transitive) member.
func (s *revokingStore) DeleteGroup(ctx context.Context, id string) error {
	users, err := s.transitiveUsers(ctx, []store.Member{{ID: id, Type: store.MemberGroup}})
	if err != nil {
		return err
	}
	for uid := range users {
		if err := s.rev.RevokeUser(ctx, uid, s.now()); err != nil {
			return fmt.Errorf("store: revoke credentials of %q: %w", uid, err)
		}
	}
	return s.Store.DeleteGroup(ctx, id)
}

func (s *revokingStore) transitiveUsers(ctx context.Context, members []store.Member) (map[string]bool, error) {
	return s.transitiveUsersExcept(ctx, members, "")
}

// transitiveUsersExcept expands members to user ids through nested groups.
// Group skip (the group being rewritten) is not expanded from the store, so
// the new member list is judged on its own. Unknown groups count as empty.
func (s *revokingStore) transitiveUsersExcept(ctx context.Context, members []store.Member, skip string) (map[string]bool, error) {
	users := map[string]bool{}
	seen := map[string]bool{}
	queue := append([]store.Member(nil), members...)
	for len(queue) > 0 {
		m := queue[0]
		queue = queue[1:]
		if m.Type == "" { // untyped member: a user if one has this id
			if _, err := s.Store.GetUser(ctx, m.ID); err == nil {
				m.Type = store.MemberUser
			} else {
				m.Type = store.MemberGroup
			}
		}
		if m.Type != store.MemberGroup {
			users[m.ID] = true
			continue
		}
		if seen[m.ID] || (m.ID == skip && skip != "") {
			continue
		}
		seen[m.ID] = true
		g, err := s.Store.GetGroup(ctx, m.ID)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("store: expand group %q: %w", m.ID, err)
		}
		queue = append(queue, g.Members...)
	}
	return users, nil
}

// revokingLinks wraps the federated link table so that deleting a link
// revokes the credentials of the user it bound, before the link goes, as
// losing a group membership does. Sessions do not record the link they
// were minted through, so every live session of the user ends (coarse,
// failing toward denial); the user signs in again through what still
// binds them. If the revocation fails, the link stays (fail closed).
type revokingLinks struct {
	store.LinkStore
	rev userRevoker
	now func() time.Time
}

// DeleteFederatedLink revokes the linked user's credentials, then deletes
// the link of (providerID, subject). A link that does not exist is left to
// the store to report.
func (s *revokingLinks) DeleteFederatedLink(ctx context.Context, providerID, subject string) error {
	l, err := s.LinkStore.GetFederatedLink(ctx, providerID, subject)
	switch {
	case err == nil:
		if err := s.rev.RevokeUser(ctx, l.UserID, s.now()); err != nil {
			return fmt.Errorf("store: revoke credentials of %q before unlinking: %w", l.UserID, err)
		}
	case !errors.Is(err, store.ErrNotFound):
		return fmt.Errorf("store: read link before delete: %w", err)
	}
	return s.LinkStore.DeleteFederatedLink(ctx, providerID, subject)
}
