package sqlstore

import (
	"context"
	"fmt"
	"strings"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// ---- managed policies ----

var managedPolicies = table[store.ManagedPolicy]{
	name: "managed_policies",
	cols: `id, name, path, description, document, revision, created_at, updated_at`,
	scan: func(sc scanner) (*store.ManagedPolicy, error) {
		var p store.ManagedPolicy
		if err := sc.Scan(&p.ID, &p.Name, &p.Path, &p.Description, &p.Document, &p.Revision,
			timeCol{&p.CreatedAt}, timeCol{&p.UpdatedAt}); err != nil {
			return nil, err
		}
		return &p, nil
	},
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
		id, now := newID(p.ID), s.stamp()
		err = managedPolicies.insert(ctx, s, now, "name_key", id, p.Name, p.Path, p.Description, p.Document,
			store.FoldName(p.Name))
		if err == nil {
			p.ID, p.Revision, p.CreatedAt, p.UpdatedAt = id, 1, now, now
			return nil
		}
	}
	return fmt.Errorf("store: create managed policy %q: %w", p.Name, err)
}

// GetManagedPolicy returns the managed policy with id, or ErrNotFound.
func (s *Store) GetManagedPolicy(ctx context.Context, id string) (*store.ManagedPolicy, error) {
	return managedPolicies.get(ctx, s, fmt.Sprintf("get managed policy %q", id), `id = ?`, id)
}

// GetManagedPolicyByName returns the managed policy whose name matches
// case-insensitively, or ErrNotFound.
func (s *Store) GetManagedPolicyByName(ctx context.Context, name string) (*store.ManagedPolicy, error) {
	return managedPolicies.get(ctx, s, fmt.Sprintf("get managed policy by name %q", name), `name_key = ?`,
		store.FoldName(name))
}

// ListManagedPolicies returns every managed policy ordered by CreatedAt then ID.
func (s *Store) ListManagedPolicies(ctx context.Context) ([]*store.ManagedPolicy, error) {
	return managedPolicies.list(ctx, s, "list managed policies", s.byCreation())
}

// UpdateManagedPolicy replaces every field of the stored policy p.ID if
// p.Revision is current, then sets p.Revision, p.UpdatedAt and p.CreatedAt
// to the stored values. A stale revision yields ErrConflict and changes
// nothing.
func (s *Store) UpdateManagedPolicy(ctx context.Context, p *store.ManagedPolicy) error {
	err := prepManagedPolicy(p)
	if err == nil {
		now := s.stamp()
		if p.Revision, p.CreatedAt, err = s.updated(ctx, "managed_policies", `name = ?, name_key = ?, path = ?,
			description = ?, document = ?`, now, p.ID, p.Revision, p.CreatedAt,
			p.Name, store.FoldName(p.Name), p.Path, p.Description, p.Document); err == nil {
			p.UpdatedAt = now
			return nil
		}
	}
	return fmt.Errorf("store: update managed policy %q: %w", p.ID, err)
}

// DeleteManagedPolicy removes the managed policy with id.
func (s *Store) DeleteManagedPolicy(ctx context.Context, id string) error {
	return s.deleteRecord(ctx, "managed_policies", "managed policy", id)
}

// ---- S3 gateway mounts ----

var mounts = table[store.Mount]{
	name: "mounts",
	cols: `id, bucket, prefix, role_arn, description, revision, created_at, updated_at`,
	scan: func(sc scanner) (*store.Mount, error) {
		var m store.Mount
		if err := sc.Scan(&m.ID, &m.Bucket, &m.Prefix, &m.RoleARN, &m.Description, &m.Revision,
			timeCol{&m.CreatedAt}, timeCol{&m.UpdatedAt}); err != nil {
			return nil, err
		}
		return &m, nil
	},
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
		id, now := newID(m.ID), s.stamp()
		err = mounts.insert(ctx, s, now, "", id, m.Bucket, m.Prefix, m.RoleARN, m.Description)
		if err == nil {
			m.ID, m.Revision, m.CreatedAt, m.UpdatedAt = id, 1, now, now
			return nil
		}
	}
	return fmt.Errorf("store: create mount s3://%s/%s: %w", m.Bucket, m.Prefix, err)
}

// GetMount returns the mount with id, or ErrNotFound.
func (s *Store) GetMount(ctx context.Context, id string) (*store.Mount, error) {
	return mounts.get(ctx, s, fmt.Sprintf("get mount %q", id), `id = ?`, id)
}

// ListMounts returns every mount ordered by bucket, prefix, then id (bytes).
func (s *Store) ListMounts(ctx context.Context) ([]*store.Mount, error) {
	return mounts.list(ctx, s, "list mounts", s.bytewise("bucket")+", "+s.bytewise("prefix")+", "+s.bytewise("id"))
}

// UpdateMount replaces every field of the stored mount m.ID if m.Revision
// is current, then sets m.Revision, m.UpdatedAt and m.CreatedAt to the
// stored values. A stale revision yields ErrConflict and changes nothing.
func (s *Store) UpdateMount(ctx context.Context, m *store.Mount) error {
	err := prepMount(m)
	if err == nil {
		now := s.stamp()
		if m.Revision, m.CreatedAt, err = s.updated(ctx, "mounts", `bucket = ?, prefix = ?, role_arn = ?,
			description = ?`, now, m.ID, m.Revision, m.CreatedAt,
			m.Bucket, m.Prefix, m.RoleARN, m.Description); err == nil {
			m.UpdatedAt = now
			return nil
		}
	}
	return fmt.Errorf("store: update mount %q: %w", m.ID, err)
}

// DeleteMount removes the mount with id.
func (s *Store) DeleteMount(ctx context.Context, id string) error {
	return s.deleteRecord(ctx, "mounts", "mount", id)
}

// MountsVersion reads the mounts change counter (migration 0009), which
// triggers raise on every insert, update and delete of a mount.
func (s *Store) MountsVersion(ctx context.Context) (int64, error) {
	var v int64
	err := s.read(ctx, func(c conn) error {
		return c.row(ctx, `SELECT value FROM change_counters WHERE name = 'mounts'`).Scan(&v)
	})
	if err != nil {
		return 0, fmt.Errorf("store: mounts version: %w", err)
	}
	return v, nil
}
