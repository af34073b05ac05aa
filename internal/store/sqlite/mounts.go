package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/google/uuid"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

var _ store.MountStore = (*Store)(nil)

// ---- S3 gateway mounts ----

const mountCols = `id, bucket, prefix, role_arn, description, revision, created_at, updated_at`

func scanMount(sc scanner) (*store.Mount, error) {
	var (
		m                store.Mount
		created, updated int64
	)
	if err := sc.Scan(&m.ID, &m.Bucket, &m.Prefix, &m.RoleARN, &m.Description, &m.Revision, &created, &updated); err != nil {
		return nil, err
	}
	m.CreatedAt, m.UpdatedAt = fromMicros(created), fromMicros(updated)
	return &m, nil
}

func prepMount(m *store.Mount) error {
	switch {
	case m.Bucket == "":
		return fmt.Errorf("%w: mount bucket is required", store.ErrInvalid)
	case m.Prefix == "" || !strings.HasSuffix(m.Prefix, "/"):
		return fmt.Errorf("%w: mount prefix must be non-empty and end with /", store.ErrInvalid)
	case m.RoleARN == "":
		return fmt.Errorf("%w: mount role ARN is required", store.ErrInvalid)
	}
	return nil
}

// CreateMount inserts m and fills its ID (if empty), Revision, CreatedAt
// and UpdatedAt. A taken ID or (bucket, prefix) yields ErrAlreadyExists.
func (s *Store) CreateMount(ctx context.Context, m *store.Mount) error {
	err := prepMount(m)
	if err == nil {
		id := m.ID
		if id == "" {
			id = uuid.NewString()
		}
		now := s.stamp()
		err = s.write(ctx, func(tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO mounts (`+mountCols+`) VALUES (?, ?, ?, ?, ?, 1, ?, ?)`,
				id, m.Bucket, m.Prefix, m.RoleARN, m.Description, micros(now), micros(now))
			return err
		})
		if err == nil {
			m.ID, m.Revision, m.CreatedAt, m.UpdatedAt = id, 1, now, now
			return nil
		}
	}
	return fmt.Errorf("store: create mount s3://%s/%s: %w", m.Bucket, m.Prefix, err)
}

// GetMount returns the mount with id, or ErrNotFound.
func (s *Store) GetMount(ctx context.Context, id string) (*store.Mount, error) {
	m, err := scanMount(s.r.QueryRowContext(ctx, `SELECT `+mountCols+` FROM mounts WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		err = store.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("store: get mount %q: %w", id, err)
	}
	return m, nil
}

// ListMounts returns every mount ordered by bucket, prefix, then id.
func (s *Store) ListMounts(ctx context.Context) ([]*store.Mount, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+mountCols+` FROM mounts ORDER BY bucket, prefix, id`)
	if err != nil {
		return nil, fmt.Errorf("store: list mounts: %w", err)
	}
	defer rows.Close()
	out := []*store.Mount{}
	for rows.Next() {
		m, err := scanMount(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list mounts: %w", err)
		}
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list mounts: %w", err)
	}
	return out, nil
}

// UpdateMount replaces every field of the stored mount m.ID if m.Revision
// is current, then sets m.Revision, m.UpdatedAt and m.CreatedAt to the
// stored values. A stale revision yields ErrConflict and changes nothing.
func (s *Store) UpdateMount(ctx context.Context, m *store.Mount) error {
	err := prepMount(m)
	if err == nil {
		now := s.stamp()
		var rev, created int64
		err = s.write(ctx, func(tx *sql.Tx) error {
			err := tx.QueryRowContext(ctx, `UPDATE mounts SET bucket = ?, prefix = ?, role_arn = ?, description = ?,
					revision = revision + 1, updated_at = ?
				WHERE id = ? AND revision = ?
				RETURNING revision, created_at`,
				m.Bucket, m.Prefix, m.RoleARN, m.Description, micros(now), m.ID, m.Revision,
			).Scan(&rev, &created)
			if errors.Is(err, sql.ErrNoRows) {
				return notFoundOrConflict(ctx, tx, `SELECT 1 FROM mounts WHERE id = ?`, m.ID)
			}
			return err
		})
		if err == nil {
			m.Revision, m.CreatedAt, m.UpdatedAt = rev, fromMicros(created), now
			return nil
		}
	}
	return fmt.Errorf("store: update mount %q: %w", m.ID, err)
}

// DeleteMount removes the mount with id.
func (s *Store) DeleteMount(ctx context.Context, id string) error {
	if err := s.deleteByID(ctx, `DELETE FROM mounts WHERE id = ?`, id); err != nil {
		return fmt.Errorf("store: delete mount %q: %w", id, err)
	}
	return nil
}
