package sqlstore

import (
	"context"
	"fmt"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// ---- federated links ----

const linkCols = `provider_id, subject, user_id, source, created_at`

func scanLink(sc scanner) (*store.FederatedLink, error) {
	var l store.FederatedLink
	if err := sc.Scan(&l.ProviderID, &l.Subject, &l.UserID, &l.Source, timeCol{&l.CreatedAt}); err != nil {
		return nil, err
	}
	return &l, nil
}

// CreateFederatedLink inserts l and fills CreatedAt. A taken (provider,
// subject) or (provider, user) yields ErrAlreadyExists; an empty field or
// an unknown user ErrInvalid.
func (s *Store) CreateFederatedLink(ctx context.Context, l *store.FederatedLink) error {
	if l.ProviderID == "" || l.Subject == "" || l.UserID == "" || l.Source == "" {
		return fmt.Errorf("store: create federated link: %w: provider, subject, user and source are required", store.ErrInvalid)
	}
	now := s.stamp()
	if _, err := s.exec(ctx, `INSERT INTO federated_links (`+linkCols+`) VALUES (?, ?, ?, ?, ?)`,
		l.ProviderID, l.Subject, l.UserID, l.Source, s.ts(now)); err != nil {
		return fmt.Errorf("store: create federated link %s/%q: %w", l.ProviderID, l.Subject, err)
	}
	l.CreatedAt = now
	return nil
}

// GetFederatedLink returns the link of (providerID, subject), or ErrNotFound.
func (s *Store) GetFederatedLink(ctx context.Context, providerID, subject string) (*store.FederatedLink, error) {
	l, err := getOne(ctx, s.reader(), scanLink, `SELECT `+linkCols+` FROM federated_links
		WHERE provider_id = ? AND subject = ?`, providerID, subject)
	if err != nil {
		return nil, fmt.Errorf("store: get federated link %s/%q: %w", providerID, subject, err)
	}
	return l, nil
}

// ListFederatedLinks returns the links of providerID (every link when it
// is empty) ordered by provider id then subject (bytes).
func (s *Store) ListFederatedLinks(ctx context.Context, providerID string) ([]*store.FederatedLink, error) {
	order := ` ORDER BY ` + s.bytewise("provider_id") + `, ` + s.bytewise("subject")
	q, args := `SELECT `+linkCols+` FROM federated_links`, []any{}
	if providerID != "" {
		q, args = q+` WHERE provider_id = ?`, append(args, providerID)
	}
	out, err := list(ctx, s.reader(), scanLink, q+order, args...)
	if err != nil {
		return nil, fmt.Errorf("store: list federated links: %w", err)
	}
	return out, nil
}

// LinksOfUser returns the links of userID ordered by provider id (bytes).
func (s *Store) LinksOfUser(ctx context.Context, userID string) ([]*store.FederatedLink, error) {
	out, err := list(ctx, s.reader(), scanLink, `SELECT `+linkCols+` FROM federated_links WHERE user_id = ?
		ORDER BY `+s.bytewise("provider_id"), userID)
	if err != nil {
		return nil, fmt.Errorf("store: links of user %q: %w", userID, err)
	}
	return out, nil
}

// DeleteFederatedLink removes the link of (providerID, subject), or yields
// ErrNotFound.
func (s *Store) DeleteFederatedLink(ctx context.Context, providerID, subject string) error {
	n, err := s.exec(ctx, `DELETE FROM federated_links WHERE provider_id = ? AND subject = ?`, providerID, subject)
	if err == nil && n == 0 {
		err = store.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("store: delete federated link %s/%q: %w", providerID, subject, err)
	}
	return nil
}
