package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// ---- roles ----

const roleCols = `id, name, path, description, trust_policy, permission_policies, permissions_boundary,
	max_session_duration, tags, revision, created_at, updated_at`

func scanRole(row pgx.Row) (*store.Role, error) {
	var (
		r              store.Role
		policies, tags string
	)
	if err := row.Scan(&r.ID, &r.Name, &r.Path, &r.Description, &r.TrustPolicy, &policies, &r.PermissionsBoundary,
		&r.MaxSessionDuration, &tags, &r.Revision, &r.CreatedAt, &r.UpdatedAt); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(policies), &r.PermissionPolicies); err != nil {
		return nil, fmt.Errorf("decode policies of role %s: %w", r.ID, err)
	}
	if err := json.Unmarshal([]byte(tags), &r.Tags); err != nil {
		return nil, fmt.Errorf("decode tags of role %s: %w", r.ID, err)
	}
	if len(r.PermissionPolicies) == 0 {
		r.PermissionPolicies = nil
	}
	if len(r.Tags) == 0 {
		r.Tags = nil
	}
	r.CreatedAt, r.UpdatedAt = r.CreatedAt.UTC(), r.UpdatedAt.UTC()
	return &r, nil
}

// prepRole validates r, normalises it in place to what will be stored, and
// returns the JSON columns.
func prepRole(r *store.Role) (policies, tags string, err error) {
	if r.Name == "" {
		return "", "", fmt.Errorf("%w: role name is required", store.ErrInvalid)
	}
	if r.TrustPolicy == "" {
		return "", "", fmt.Errorf("%w: role trust policy is required", store.ErrInvalid)
	}
	if r.Path == "" {
		r.Path = store.DefaultRolePath
	}
	if r.MaxSessionDuration == 0 {
		r.MaxSessionDuration = store.DefaultMaxSessionDuration
	}
	seen := make(map[string]bool, len(r.PermissionPolicies))
	for _, p := range r.PermissionPolicies {
		k := store.FoldName(p.Name)
		if p.Name == "" || seen[k] {
			return "", "", fmt.Errorf("%w: inline policy names must be non-empty and unique, got %q", store.ErrInvalid, p.Name)
		}
		seen[k] = true
	}
	if len(r.PermissionPolicies) == 0 {
		r.PermissionPolicies = nil
	}
	if len(r.Tags) == 0 {
		r.Tags = nil
	}
	pb, tb := []byte("[]"), []byte("{}")
	if r.PermissionPolicies != nil {
		if pb, err = json.Marshal(r.PermissionPolicies); err != nil {
			return "", "", fmt.Errorf("%w: policies: %v", store.ErrInvalid, err)
		}
	}
	if r.Tags != nil {
		if tb, err = json.Marshal(r.Tags); err != nil {
			return "", "", fmt.Errorf("%w: tags: %v", store.ErrInvalid, err)
		}
	}
	return string(pb), string(tb), nil
}

// CreateRole inserts r and fills its ID (if empty), Revision, CreatedAt and
// UpdatedAt. A taken ID or name yields ErrAlreadyExists.
func (s *Store) CreateRole(ctx context.Context, r *store.Role) error {
	policies, tags, err := prepRole(r)
	if err == nil {
		id := r.ID
		if id == "" {
			id = uuid.NewString()
		}
		now := s.stamp()
		_, err = s.pool.Exec(ctx, `INSERT INTO roles (`+roleCols+`, name_key)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 1, $10, $10, $11)`,
			id, r.Name, r.Path, r.Description, r.TrustPolicy, policies, r.PermissionsBoundary,
			r.MaxSessionDuration, tags, now, store.FoldName(r.Name))
		if err = mapErr(err); err == nil {
			r.ID, r.Revision, r.CreatedAt, r.UpdatedAt = id, 1, now, now
			return nil
		}
	}
	return fmt.Errorf("store: create role %q: %w", r.Name, err)
}

// GetRole returns the role with id, or ErrNotFound.
func (s *Store) GetRole(ctx context.Context, id string) (*store.Role, error) {
	r, err := scanRole(s.pool.QueryRow(ctx, `SELECT `+roleCols+` FROM roles WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		err = store.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("store: get role %q: %w", id, err)
	}
	return r, nil
}

// GetRoleByName returns the role whose name matches case-insensitively, or
// ErrNotFound.
func (s *Store) GetRoleByName(ctx context.Context, name string) (*store.Role, error) {
	r, err := scanRole(s.pool.QueryRow(ctx, `SELECT `+roleCols+` FROM roles WHERE name_key = $1`,
		store.FoldName(name)))
	if errors.Is(err, pgx.ErrNoRows) {
		err = store.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("store: get role by name %q: %w", name, err)
	}
	return r, nil
}

// ListRoles returns every role ordered by CreatedAt then ID.
func (s *Store) ListRoles(ctx context.Context) ([]*store.Role, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+roleCols+` FROM roles ORDER BY created_at, id COLLATE "C"`)
	if err != nil {
		return nil, fmt.Errorf("store: list roles: %w", err)
	}
	defer rows.Close()
	roles := []*store.Role{}
	for rows.Next() {
		r, err := scanRole(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list roles: %w", err)
		}
		roles = append(roles, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list roles: %w", err)
	}
	return roles, nil
}

// UpdateRole replaces every field of the stored role r.ID if r.Revision is
// current, then sets r.Revision, r.UpdatedAt and r.CreatedAt to the stored
// values. A stale revision yields ErrConflict and changes nothing.
func (s *Store) UpdateRole(ctx context.Context, r *store.Role) error {
	policies, tags, err := prepRole(r)
	if err == nil {
		now := s.stamp()
		var (
			rev     int64
			created time.Time
		)
		err = s.write(ctx, func(tx pgx.Tx) error {
			err := tx.QueryRow(ctx, `UPDATE roles SET name = $1, name_key = $2, path = $3, description = $4,
					trust_policy = $5, permission_policies = $6, permissions_boundary = $7,
					max_session_duration = $8, tags = $9, revision = revision + 1, updated_at = $10
				WHERE id = $11 AND revision = $12
				RETURNING revision, created_at`,
				r.Name, store.FoldName(r.Name), r.Path, r.Description, r.TrustPolicy, policies,
				r.PermissionsBoundary, r.MaxSessionDuration, tags, now, r.ID, r.Revision,
			).Scan(&rev, &created)
			if errors.Is(err, pgx.ErrNoRows) {
				return notFoundOrConflict(ctx, tx, `SELECT 1 FROM roles WHERE id = $1`, r.ID)
			}
			return err
		})
		if err == nil {
			r.Revision, r.CreatedAt, r.UpdatedAt = rev, created.UTC(), now
			return nil
		}
	}
	return fmt.Errorf("store: update role %q: %w", r.ID, err)
}

// DeleteRole removes the role with its inline policies.
func (s *Store) DeleteRole(ctx context.Context, id string) error {
	if err := s.deleteByID(ctx, `DELETE FROM roles WHERE id = $1`, id); err != nil {
		return fmt.Errorf("store: delete role %q: %w", id, err)
	}
	return nil
}

// deleteByID runs a one-row DELETE and reports ErrNotFound if it removed nothing.
func (s *Store) deleteByID(ctx context.Context, query, id string) error {
	tag, err := s.pool.Exec(ctx, query, id)
	if err == nil && tag.RowsAffected() == 0 {
		err = store.ErrNotFound
	}
	return mapErr(err)
}

// ---- SAML providers ----

const samlCols = `id, name, metadata_xml, entity_id, revision, created_at, updated_at`

func scanSAML(row pgx.Row) (*store.SAMLProvider, error) {
	var p store.SAMLProvider
	if err := row.Scan(&p.ID, &p.Name, &p.MetadataXML, &p.EntityID, &p.Revision, &p.CreatedAt, &p.UpdatedAt); err != nil {
		return nil, err
	}
	p.CreatedAt, p.UpdatedAt = p.CreatedAt.UTC(), p.UpdatedAt.UTC()
	return &p, nil
}

func prepSAML(p *store.SAMLProvider) error {
	switch {
	case p.Name == "":
		return fmt.Errorf("%w: SAML provider name is required", store.ErrInvalid)
	case p.MetadataXML == "":
		return fmt.Errorf("%w: SAML provider metadata is required", store.ErrInvalid)
	case p.EntityID == "":
		return fmt.Errorf("%w: SAML provider entity id is required", store.ErrInvalid)
	}
	return nil
}

// CreateSAMLProvider inserts p and fills its ID (if empty), Revision,
// CreatedAt and UpdatedAt. A taken ID, name or entity id yields
// ErrAlreadyExists.
func (s *Store) CreateSAMLProvider(ctx context.Context, p *store.SAMLProvider) error {
	err := prepSAML(p)
	if err == nil {
		id := p.ID
		if id == "" {
			id = uuid.NewString()
		}
		now := s.stamp()
		_, err = s.pool.Exec(ctx, `INSERT INTO saml_providers (`+samlCols+`, name_key)
			VALUES ($1, $2, $3, $4, 1, $5, $5, $6)`,
			id, p.Name, p.MetadataXML, p.EntityID, now, store.FoldName(p.Name))
		if err = mapErr(err); err == nil {
			p.ID, p.Revision, p.CreatedAt, p.UpdatedAt = id, 1, now, now
			return nil
		}
	}
	return fmt.Errorf("store: create SAML provider %q: %w", p.Name, err)
}

func (s *Store) getSAML(ctx context.Context, op, where string, arg any) (*store.SAMLProvider, error) {
	p, err := scanSAML(s.pool.QueryRow(ctx, `SELECT `+samlCols+` FROM saml_providers WHERE `+where, arg))
	if errors.Is(err, pgx.ErrNoRows) {
		err = store.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("store: %s: %w", op, err)
	}
	return p, nil
}

// GetSAMLProvider returns the SAML provider with id, or ErrNotFound.
func (s *Store) GetSAMLProvider(ctx context.Context, id string) (*store.SAMLProvider, error) {
	return s.getSAML(ctx, fmt.Sprintf("get SAML provider %q", id), `id = $1`, id)
}

// GetSAMLProviderByName returns the SAML provider whose name matches
// case-insensitively, or ErrNotFound.
func (s *Store) GetSAMLProviderByName(ctx context.Context, name string) (*store.SAMLProvider, error) {
	return s.getSAML(ctx, fmt.Sprintf("get SAML provider by name %q", name), `name_key = $1`, store.FoldName(name))
}

// GetSAMLProviderByEntityID returns the SAML provider whose entity id is
// exactly entityID, or ErrNotFound.
func (s *Store) GetSAMLProviderByEntityID(ctx context.Context, entityID string) (*store.SAMLProvider, error) {
	return s.getSAML(ctx, fmt.Sprintf("get SAML provider by entity id %q", entityID), `entity_id = $1`, entityID)
}

// ListSAMLProviders returns every SAML provider ordered by CreatedAt then ID.
func (s *Store) ListSAMLProviders(ctx context.Context) ([]*store.SAMLProvider, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+samlCols+` FROM saml_providers ORDER BY created_at, id COLLATE "C"`)
	if err != nil {
		return nil, fmt.Errorf("store: list SAML providers: %w", err)
	}
	defer rows.Close()
	out := []*store.SAMLProvider{}
	for rows.Next() {
		p, err := scanSAML(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list SAML providers: %w", err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list SAML providers: %w", err)
	}
	return out, nil
}

// UpdateSAMLProvider replaces name, metadata and entity id of p.ID if
// p.Revision is current, then sets p.Revision, p.UpdatedAt and p.CreatedAt
// to the stored values. A stale revision yields ErrConflict and changes
// nothing.
func (s *Store) UpdateSAMLProvider(ctx context.Context, p *store.SAMLProvider) error {
	err := prepSAML(p)
	if err == nil {
		now := s.stamp()
		var (
			rev     int64
			created time.Time
		)
		err = s.write(ctx, func(tx pgx.Tx) error {
			err := tx.QueryRow(ctx, `UPDATE saml_providers SET name = $1, name_key = $2, metadata_xml = $3,
					entity_id = $4, revision = revision + 1, updated_at = $5
				WHERE id = $6 AND revision = $7
				RETURNING revision, created_at`,
				p.Name, store.FoldName(p.Name), p.MetadataXML, p.EntityID, now, p.ID, p.Revision,
			).Scan(&rev, &created)
			if errors.Is(err, pgx.ErrNoRows) {
				return notFoundOrConflict(ctx, tx, `SELECT 1 FROM saml_providers WHERE id = $1`, p.ID)
			}
			return err
		})
		if err == nil {
			p.Revision, p.CreatedAt, p.UpdatedAt = rev, created.UTC(), now
			return nil
		}
	}
	return fmt.Errorf("store: update SAML provider %q: %w", p.ID, err)
}

// DeleteSAMLProvider removes the SAML provider with id.
func (s *Store) DeleteSAMLProvider(ctx context.Context, id string) error {
	if err := s.deleteByID(ctx, `DELETE FROM saml_providers WHERE id = $1`, id); err != nil {
		return fmt.Errorf("store: delete SAML provider %q: %w", id, err)
	}
	return nil
}

// ---- OIDC providers ----

const oidcCols = `id, issuer_url, audiences, thumbprints, jwks_url, groups_claim, roles_claim, username_claim,
	revision, created_at, updated_at`

func scanOIDC(row pgx.Row) (*store.OIDCProvider, error) {
	var (
		p            store.OIDCProvider
		auds, thumbs string
	)
	if err := row.Scan(&p.ID, &p.IssuerURL, &auds, &thumbs, &p.JWKSURL, &p.GroupsClaim, &p.RolesClaim,
		&p.UsernameClaim, &p.Revision, &p.CreatedAt, &p.UpdatedAt); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(auds), &p.Audiences); err != nil {
		return nil, fmt.Errorf("decode audiences of OIDC provider %s: %w", p.ID, err)
	}
	if err := json.Unmarshal([]byte(thumbs), &p.Thumbprints); err != nil {
		return nil, fmt.Errorf("decode thumbprints of OIDC provider %s: %w", p.ID, err)
	}
	if len(p.Thumbprints) == 0 {
		p.Thumbprints = nil
	}
	p.CreatedAt, p.UpdatedAt = p.CreatedAt.UTC(), p.UpdatedAt.UTC()
	return &p, nil
}

func prepOIDC(p *store.OIDCProvider) (auds, thumbs string, err error) {
	if p.IssuerURL == "" {
		return "", "", fmt.Errorf("%w: OIDC provider issuer URL is required", store.ErrInvalid)
	}
	if len(p.Audiences) == 0 {
		return "", "", fmt.Errorf("%w: OIDC provider needs at least one audience", store.ErrInvalid)
	}
	if len(p.Thumbprints) == 0 {
		p.Thumbprints = nil
	}
	ab, err := json.Marshal(p.Audiences)
	if err != nil {
		return "", "", fmt.Errorf("%w: audiences: %v", store.ErrInvalid, err)
	}
	tb := []byte("[]")
	if p.Thumbprints != nil {
		if tb, err = json.Marshal(p.Thumbprints); err != nil {
			return "", "", fmt.Errorf("%w: thumbprints: %v", store.ErrInvalid, err)
		}
	}
	return string(ab), string(tb), nil
}

// CreateOIDCProvider inserts p and fills its ID (if empty), Revision,
// CreatedAt and UpdatedAt. A taken ID or issuer key yields ErrAlreadyExists.
func (s *Store) CreateOIDCProvider(ctx context.Context, p *store.OIDCProvider) error {
	auds, thumbs, err := prepOIDC(p)
	if err == nil {
		id := p.ID
		if id == "" {
			id = uuid.NewString()
		}
		now := s.stamp()
		_, err = s.pool.Exec(ctx, `INSERT INTO oidc_providers (`+oidcCols+`, issuer_key)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 1, $9, $9, $10)`,
			id, p.IssuerURL, auds, thumbs, p.JWKSURL, p.GroupsClaim, p.RolesClaim, p.UsernameClaim,
			now, store.OIDCIssuerKey(p.IssuerURL))
		if err = mapErr(err); err == nil {
			p.ID, p.Revision, p.CreatedAt, p.UpdatedAt = id, 1, now, now
			return nil
		}
	}
	return fmt.Errorf("store: create OIDC provider %q: %w", p.IssuerURL, err)
}

func (s *Store) getOIDC(ctx context.Context, op, where string, arg any) (*store.OIDCProvider, error) {
	p, err := scanOIDC(s.pool.QueryRow(ctx, `SELECT `+oidcCols+` FROM oidc_providers WHERE `+where, arg))
	if errors.Is(err, pgx.ErrNoRows) {
		err = store.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("store: %s: %w", op, err)
	}
	return p, nil
}

// GetOIDCProvider returns the OIDC provider with id, or ErrNotFound.
func (s *Store) GetOIDCProvider(ctx context.Context, id string) (*store.OIDCProvider, error) {
	return s.getOIDC(ctx, fmt.Sprintf("get OIDC provider %q", id), `id = $1`, id)
}

// GetOIDCProviderByIssuer returns the OIDC provider whose issuer URL is
// exactly issuerURL, or ErrNotFound.
func (s *Store) GetOIDCProviderByIssuer(ctx context.Context, issuerURL string) (*store.OIDCProvider, error) {
	return s.getOIDC(ctx, fmt.Sprintf("get OIDC provider by issuer %q", issuerURL), `issuer_url = $1`, issuerURL)
}

// ListOIDCProviders returns every OIDC provider ordered by CreatedAt then ID.
func (s *Store) ListOIDCProviders(ctx context.Context) ([]*store.OIDCProvider, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+oidcCols+` FROM oidc_providers ORDER BY created_at, id COLLATE "C"`)
	if err != nil {
		return nil, fmt.Errorf("store: list OIDC providers: %w", err)
	}
	defer rows.Close()
	out := []*store.OIDCProvider{}
	for rows.Next() {
		p, err := scanOIDC(rows)
		if err != nil {
			return nil, fmt.Errorf("store: list OIDC providers: %w", err)
		}
		out = append(out, p)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list OIDC providers: %w", err)
	}
	return out, nil
}

// UpdateOIDCProvider replaces every field of p.ID if p.Revision is current,
// then sets p.Revision, p.UpdatedAt and p.CreatedAt to the stored values. A
// stale revision yields ErrConflict and changes nothing.
func (s *Store) UpdateOIDCProvider(ctx context.Context, p *store.OIDCProvider) error {
	auds, thumbs, err := prepOIDC(p)
	if err == nil {
		now := s.stamp()
		var (
			rev     int64
			created time.Time
		)
		err = s.write(ctx, func(tx pgx.Tx) error {
			err := tx.QueryRow(ctx, `UPDATE oidc_providers SET issuer_url = $1, issuer_key = $2, audiences = $3,
					thumbprints = $4, jwks_url = $5, groups_claim = $6, roles_claim = $7, username_claim = $8,
					revision = revision + 1, updated_at = $9
				WHERE id = $10 AND revision = $11
				RETURNING revision, created_at`,
				p.IssuerURL, store.OIDCIssuerKey(p.IssuerURL), auds, thumbs, p.JWKSURL, p.GroupsClaim, p.RolesClaim,
				p.UsernameClaim, now, p.ID, p.Revision,
			).Scan(&rev, &created)
			if errors.Is(err, pgx.ErrNoRows) {
				return notFoundOrConflict(ctx, tx, `SELECT 1 FROM oidc_providers WHERE id = $1`, p.ID)
			}
			return err
		})
		if err == nil {
			p.Revision, p.CreatedAt, p.UpdatedAt = rev, created.UTC(), now
			return nil
		}
	}
	return fmt.Errorf("store: update OIDC provider %q: %w", p.ID, err)
}

// DeleteOIDCProvider removes the OIDC provider with id.
func (s *Store) DeleteOIDCProvider(ctx context.Context, id string) error {
	if err := s.deleteByID(ctx, `DELETE FROM oidc_providers WHERE id = $1`, id); err != nil {
		return fmt.Errorf("store: delete OIDC provider %q: %w", id, err)
	}
	return nil
}
