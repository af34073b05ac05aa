package server

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// changeNotifier is told when something a decision reads has changed.
type changeNotifier interface {
	Changed()
}

// changePublisher tells the other replicas (decision.StoreChangeMark).
type changePublisher interface {
	Bump(ctx context.Context) error
}

// changeStore wraps the metadata store so that every write of a user, a
// group, a role or an identity provider through this replica (SCIM, admin
// REST, CLI, sign-in) tells the decision point at once, after the write
// has landed: its cached roles, trust index and entitlements are then read
// again on their next use. A successful write also moves the shared change
// mark, so that other replicas read theirs again within the decision
// point's TTL; if that fails, the write stands and they catch up within
// decision.MaxAge (logged). A failed write notifies this replica too: a
// notification is never wrong, only a cache miss.
type changeStore struct {
	store.Store
	externalIDLookups
	dp   changeNotifier
	mark changePublisher
	log  *slog.Logger
}

func (s *changeStore) changed(ctx context.Context, err error) error {
	s.dp.Changed()
	if err == nil && s.mark != nil {
		if berr := s.mark.Bump(ctx); berr != nil {
			s.log.WarnContext(ctx, "decision: change not published to other replicas; they apply it within decision.MaxAge", "err", berr)
		}
	}
	return err
}

func (s *changeStore) CreateUser(ctx context.Context, u *store.User) error {
	return s.changed(ctx, s.Store.CreateUser(ctx, u))
}

func (s *changeStore) UpdateUser(ctx context.Context, u *store.User) error {
	return s.changed(ctx, s.Store.UpdateUser(ctx, u))
}

func (s *changeStore) DeleteUser(ctx context.Context, id string) error {
	return s.changed(ctx, s.Store.DeleteUser(ctx, id))
}

func (s *changeStore) CreateGroup(ctx context.Context, g *store.Group) error {
	return s.changed(ctx, s.Store.CreateGroup(ctx, g))
}

func (s *changeStore) UpdateGroup(ctx context.Context, g *store.Group) error {
	return s.changed(ctx, s.Store.UpdateGroup(ctx, g))
}

func (s *changeStore) DeleteGroup(ctx context.Context, id string) error {
	return s.changed(ctx, s.Store.DeleteGroup(ctx, id))
}

func (s *changeStore) CreateRole(ctx context.Context, r *store.Role) error {
	return s.changed(ctx, s.Store.CreateRole(ctx, r))
}

func (s *changeStore) UpdateRole(ctx context.Context, r *store.Role) error {
	return s.changed(ctx, s.Store.UpdateRole(ctx, r))
}

func (s *changeStore) DeleteRole(ctx context.Context, id string) error {
	return s.changed(ctx, s.Store.DeleteRole(ctx, id))
}

func (s *changeStore) CreateSAMLProvider(ctx context.Context, p *store.SAMLProvider) error {
	return s.changed(ctx, s.Store.CreateSAMLProvider(ctx, p))
}

func (s *changeStore) UpdateSAMLProvider(ctx context.Context, p *store.SAMLProvider) error {
	return s.changed(ctx, s.Store.UpdateSAMLProvider(ctx, p))
}

func (s *changeStore) DeleteSAMLProvider(ctx context.Context, id string) error {
	return s.changed(ctx, s.Store.DeleteSAMLProvider(ctx, id))
}

func (s *changeStore) CreateOIDCProvider(ctx context.Context, p *store.OIDCProvider) error {
	return s.changed(ctx, s.Store.CreateOIDCProvider(ctx, p))
}

func (s *changeStore) UpdateOIDCProvider(ctx context.Context, p *store.OIDCProvider) error {
	return s.changed(ctx, s.Store.UpdateOIDCProvider(ctx, p))
}

func (s *changeStore) DeleteOIDCProvider(ctx context.Context, id string) error {
	return s.changed(ctx, s.Store.DeleteOIDCProvider(ctx, id))
}

// PatchGroupMembers changes a group's members one by one through the
// wrapped store (store.GroupMemberStore), then tells the decision point.
func (s *changeStore) PatchGroupMembers(ctx context.Context, id string, revision int64, add,
	remove []store.Member) (*store.GroupPatch, error) {
	ms, ok := s.Store.(store.GroupMemberStore)
	if !ok {
		return nil, fmt.Errorf("store: patch members of group %q: %T cannot change members one by one", id, s.Store)
	}
	p, err := ms.PatchGroupMembers(ctx, id, revision, add, remove)
	return p, s.changed(ctx, err)
}

// externalIDLookups passes store.ExternalIDStore (indexed reads) through a
// wrapper store, so that SCIM's externalId lookups stay indexed behind it.
type externalIDLookups struct{ inner store.Store }

func (e externalIDLookups) lookups() (store.ExternalIDStore, error) {
	x, ok := e.inner.(store.ExternalIDStore)
	if !ok {
		return nil, fmt.Errorf("store: %T has no external id lookups", e.inner)
	}
	return x, nil
}

func (e externalIDLookups) UsersByExternalID(ctx context.Context, id string) ([]*store.User, error) {
	x, err := e.lookups()
	if err != nil {
		return nil, err
	}
	return x.UsersByExternalID(ctx, id)
}

func (e externalIDLookups) GroupsByExternalID(ctx context.Context, id string) ([]*store.Group, error) {
	x, err := e.lookups()
	if err != nil {
		return nil, err
	}
	return x.GroupsByExternalID(ctx, id)
}

var (
	_ store.GroupMemberStore = (*changeStore)(nil)
	_ store.ExternalIDStore  = (*changeStore)(nil)
	_ store.GroupMemberStore = (*revokingStore)(nil)
	_ store.ExternalIDStore  = (*revokingStore)(nil)
)
