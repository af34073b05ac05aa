package server

import (
	"context"
	"fmt"
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
type revokingStore struct {
	store.Store
	rev userRevoker
	now func() time.Time
}

func (s *revokingStore) UpdateUser(ctx context.Context, u *store.User) error {
	if !u.Active {
		if err := s.rev.RevokeUser(ctx, u.ID, s.now()); err != nil {
			return fmt.Errorf("store: revoke credentials of %q: %w", u.UserName, err)
		}
	}
	return s.Store.UpdateUser(ctx, u)
}

func (s *revokingStore) DeleteUser(ctx context.Context, id string) error {
	if err := s.rev.RevokeUser(ctx, id, s.now()); err != nil {
		return fmt.Errorf("store: revoke credentials of %q: %w", id, err)
	}
	return s.Store.DeleteUser(ctx, id)
}
