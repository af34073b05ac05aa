package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/google/uuid"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

var _ store.ManagedPolicyStore = (*Store)(nil)

// ---- managed policies ----

const managedPolicyCols = `id, name, path, description, document, revision, created_at, updated_at`

func scanManagedPolicy(sc scanner) (*store.ManagedPolicy, error) {
	var (
		p                store.ManagedPolicy
		created, updated int64
	)
	if err := sc.Scan(&p.ID, &p.Name, &p.Path, &p.Description, &p.Document, &p.Revision, &created, &updated); err != nil {
		return nil, err
	}
	p.CreatedAt, p.UpdatedAt = fromMicros(created), fromMicros(updated)
	return &p, nil
}

func prepManagedPolicy(p *store.ManagedPolicy) error {
	switch {
	case p.Name == "":
		return fmt.Errorf("%w: managed policy name is required", store.ErrInvalid)
	case p.Document == "":
		return fmt.Errorf("%w: managed policy document is required", store.ErrInvalid)
	}
	if p.Path == "" {
		p.Path = store.DefaultPolicyPath
	}
	return nil
}

// CreateManagedPolicy inserts p and fills its ID (if empty), Revision,
// CreatedAt and UpdatedAt. A taken ID or name yields ErrAlreadyExists.
func (s *Store) CreateManagedPolicy(ctx context.Context, p *store.ManagedPolicy) error {
	err := prepManagedPolicy(p)
	if err == nil {
		id := p.ID
		if id == "" {
			id = uuid.NewString()
		}
		now := s.stamp()
		err = s.write(ctx, func(tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO managed_policies (`+managedPolicyCols+`, name_key)
				VALUES (?, ?, ?, ?, ?, 1, ?, ?, ?)`,
				id, p.Name, p.Path, p.Description, p.Document, micros(now), micros(now), store.FoldName(p.Name))
			return err
		})
		if err == nil {
			p.ID, p.Revision, p.CreatedAt, p.UpdatedAt = id, 1, now, now
			return nil
		}
	}
	return fmt.Errorf("store: create managed policy %q: %w", p.Name, err)
}

// GetManagedPolicy returns the managed policy with id, or ErrNotFound.
func (s *Store) GetManagedPolicy(ctx context.Context, id string) (*store.ManagedPolicy, error) {
	p, err := scanManagedPolicy(s.r.QueryRowContext(ctx, `SELECT `+managedPolicyCols+` FROM managed_policies WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		err = store.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("store: get managed policy %q: %w", id, err)
	}
	return p, nil
}

// GetManagedPolicyByName returns the managed policy whose name matches
// case-insensitively, or ErrNotFound.
func (s *Store) GetManagedPolicyByName(ctx context.Context, name string) (*store.ManagedPolicy, error) {
	p, err := scanManagedPolicy(s.r.QueryRowContext(ctx, `SELECT `+managedPolicyCols+` FROM managed_policies WHERE name_key = ?`,
		store.FoldName(name)))
	if errors.Is(err, sql.ErrNoRows) {
		err = store.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("store: get managed policy by name %q: %w", name, err)
	}
	return p, nil
}

// ListManagedPolicies returns every managed policy ordered by CreatedAt then ID.
func (s *Store) ListManagedPolicies(ctx context.Context) ([]*store.ManagedPolicy, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+managedPolicyCols+` FROM managed_policies ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("store: list managed policies: %w", err)
	}
	defer rows.Close()
	out := []*store.ManagedPolicy{}
	for rows.Next() {
		p, err := scanManagedPolicy(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list managed policies: %w", err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list managed policies: %w", err)
	}
	return out, nil
}

// UpdateManagedPolicy replaces every field of the stored policy p.ID if
// p.Revision is current, then sets p.Revision, p.UpdatedAt and p.CreatedAt
// to the stored values. A stale revision yields ErrConflict and changes
// nothing.
func (s *Store) UpdateManagedPolicy(ctx context.Context, p *store.ManagedPolicy) error {
	err := prepManagedPolicy(p)
	if err == nil {
		now := s.stamp()
		var rev, created int64
		err = s.write(ctx, func(tx *sql.Tx) error {
			err := tx.QueryRowContext(ctx, `UPDATE managed_policies SET name = ?, name_key = ?, path = ?,
					description = ?, document = ?, revision = revision + 1, updated_at = ?
				WHERE id = ? AND revision = ?
				RETURNING revision, created_at`,
				p.Name, store.FoldName(p.Name), p.Path, p.Description, p.Document, micros(now), p.ID, p.Revision,
			).Scan(&rev, &created)
			if errors.Is(err, sql.ErrNoRows) {
				return notFoundOrConflict(ctx, tx, `SELECT 1 FROM managed_policies WHERE id = ?`, p.ID)
			}
			return err
		})
		if err == nil {
			p.Revision, p.CreatedAt, p.UpdatedAt = rev, fromMicros(created), now
			return nil
		}
	}
	return fmt.Errorf("store: update managed policy %q: %w", p.ID, err)
}

// DeleteManagedPolicy removes the managed policy with id.
func (s *Store) DeleteManagedPolicy(ctx context.Context, id string) error {
	if err := s.deleteByID(ctx, `DELETE FROM managed_policies WHERE id = ?`, id); err != nil {
		return fmt.Errorf("store: delete managed policy %q: %w", id, err)
	}
	return nil
}
