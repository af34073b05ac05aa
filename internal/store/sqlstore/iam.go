package sqlstore

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// table names one kind of record for the generic operations: the columns
// selected, in scan order, and the scanner.
type table[T any] struct {
	name string // SQL table
	cols string
	scan func(scanner) (*T, error)
}

// get returns the record where (a condition on one ? argument) matches, or
// ErrNotFound; errors name op.
func (t table[T]) get(ctx context.Context, s *Store, op, where string, arg any) (*T, error) {
	v, err := getOne(ctx, s.reader(), t.scan, `SELECT `+t.cols+` FROM `+t.name+` WHERE `+where, arg)
	if err != nil {
		return nil, fmt.Errorf("store: %s: %w", op, err)
	}
	return v, nil
}

// list returns every record in order (an ORDER BY list); errors name op.
func (t table[T]) list(ctx context.Context, s *Store, op, order string) ([]*T, error) {
	out, err := list(ctx, s.reader(), t.scan, `SELECT `+t.cols+` FROM `+t.name+` ORDER BY `+order)
	if err != nil {
		return nil, fmt.Errorf("store: %s: %w", op, err)
	}
	return out, nil
}

// insert inserts a record: args are its values for t.cols, then for extra
// (further columns, e.g. a name key). Revision, created_at and updated_at
// come last in t.cols and are filled from now.
func (t table[T]) insert(ctx context.Context, s *Store, now time.Time, extra string, args ...any) error {
	n := strings.Count(t.cols, ",") + 1 - 3
	vals := append(args[:n:n], 1, s.ts(now), s.ts(now))
	vals = append(vals, args[n:]...)
	cols := t.cols
	if extra != "" {
		cols += ", " + extra
	}
	_, err := s.exec(ctx, `INSERT INTO `+t.name+` (`+cols+`) VALUES (`+marks(len(vals))+`)`, vals...)
	return err
}

// byCreation orders by CreatedAt then ID.
func (s *Store) byCreation() string { return `created_at, ` + s.bytewise("id") }

// ---- roles ----

var roles = table[store.Role]{
	name: "roles",
	cols: `id, name, path, description, trust_policy, permission_policies, permissions_boundary,
	max_session_duration, tags, revision, created_at, updated_at`,
	scan: func(sc scanner) (*store.Role, error) {
		var (
			r              store.Role
			policies, tags string
		)
		if err := sc.Scan(&r.ID, &r.Name, &r.Path, &r.Description, &r.TrustPolicy, &policies,
			&r.PermissionsBoundary, &r.MaxSessionDuration, &tags, &r.Revision, timeCol{&r.CreatedAt},
			timeCol{&r.UpdatedAt}); err != nil {
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
		return &r, nil
	},
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
	if policies, err = jsonOr(r.PermissionPolicies, r.PermissionPolicies == nil, "[]", "policies"); err != nil {
		return "", "", err
	}
	tags, err = jsonOr(r.Tags, r.Tags == nil, "{}", "tags")
	return policies, tags, err
}

// CreateRole inserts r and fills its ID (if empty), Revision, CreatedAt and
// UpdatedAt. A taken ID or name yields ErrAlreadyExists.
func (s *Store) CreateRole(ctx context.Context, r *store.Role) error {
	policies, tags, err := prepRole(r)
	if err == nil {
		id, now := newID(r.ID), s.stamp()
		err = roles.insert(ctx, s, now, "name_key", id, r.Name, r.Path, r.Description, r.TrustPolicy, policies,
			r.PermissionsBoundary, r.MaxSessionDuration, tags, store.FoldName(r.Name))
		if err == nil {
			r.ID, r.Revision, r.CreatedAt, r.UpdatedAt = id, 1, now, now
			return nil
		}
	}
	return fmt.Errorf("store: create role %q: %w", r.Name, err)
}

// GetRole returns the role with id, or ErrNotFound.
func (s *Store) GetRole(ctx context.Context, id string) (*store.Role, error) {
	return roles.get(ctx, s, fmt.Sprintf("get role %q", id), `id = ?`, id)
}

// GetRoleByName returns the role whose name matches case-insensitively, or
// ErrNotFound.
func (s *Store) GetRoleByName(ctx context.Context, name string) (*store.Role, error) {
	return roles.get(ctx, s, fmt.Sprintf("get role by name %q", name), `name_key = ?`, store.FoldName(name))
}

// ListRoles returns every role ordered by CreatedAt then ID.
func (s *Store) ListRoles(ctx context.Context) ([]*store.Role, error) {
	return roles.list(ctx, s, "list roles", s.byCreation())
}

// UpdateRole replaces every field of the stored role r.ID if r.Revision is
// current, then sets r.Revision, r.UpdatedAt and r.CreatedAt to the stored
// values. A stale revision yields ErrConflict and changes nothing.
func (s *Store) UpdateRole(ctx context.Context, r *store.Role) error {
	policies, tags, err := prepRole(r)
	if err == nil {
		now := s.stamp()
		if r.Revision, r.CreatedAt, err = s.updated(ctx, "roles", `name = ?, name_key = ?, path = ?,
			description = ?, trust_policy = ?, permission_policies = ?, permissions_boundary = ?,
			max_session_duration = ?, tags = ?`, now, r.ID, r.Revision, r.CreatedAt,
			r.Name, store.FoldName(r.Name), r.Path, r.Description, r.TrustPolicy, policies,
			r.PermissionsBoundary, r.MaxSessionDuration, tags); err == nil {
			r.UpdatedAt = now
			return nil
		}
	}
	return fmt.Errorf("store: update role %q: %w", r.ID, err)
}

// updated is update for records that keep their revision and creation time
// on failure: it returns the stored values, or rev and created unchanged.
func (s *Store) updated(ctx context.Context, table, set string, now time.Time, id string, rev int64,
	created time.Time, args ...any) (int64, time.Time, error) {
	newRev, newCreated, err := s.update(ctx, table, set, now, id, rev, args...)
	if err != nil {
		return rev, created, err
	}
	return newRev, newCreated, nil
}

// DeleteRole removes the role with its inline policies.
func (s *Store) DeleteRole(ctx context.Context, id string) error {
	return s.deleteRecord(ctx, "roles", "role", id)
}

// deleteRecord deletes record id from table; errors name what.
func (s *Store) deleteRecord(ctx context.Context, table, what, id string) error {
	if err := s.deleteByID(ctx, table, id); err != nil {
		return fmt.Errorf("store: delete %s %q: %w", what, id, err)
	}
	return nil
}

// ---- SAML providers ----

var samlProviders = table[store.SAMLProvider]{
	name: "saml_providers",
	cols: `id, name, metadata_xml, entity_id, binding, revision, created_at, updated_at`,
	scan: func(sc scanner) (*store.SAMLProvider, error) {
		var (
			p       store.SAMLProvider
			binding string
		)
		if err := sc.Scan(&p.ID, &p.Name, &p.MetadataXML, &p.EntityID, &binding, &p.Revision, timeCol{&p.CreatedAt},
			timeCol{&p.UpdatedAt}); err != nil {
			return nil, err
		}
		return &p, decodeBinding(binding, &p.Binding, "SAML provider "+p.ID)
	},
}

// encodeBinding validates and encodes a provider's binding rule.
func encodeBinding(b store.Binding) (string, error) {
	if err := b.Check(); err != nil {
		return "", err
	}
	return jsonOr(b, false, "", "binding")
}

// decodeBinding decodes a stored binding rule into b.
func decodeBinding(raw string, b *store.Binding, what string) error {
	if err := json.Unmarshal([]byte(raw), b); err != nil {
		return fmt.Errorf("decode binding of %s: %w", what, err)
	}
	return nil
}

func prepSAML(p *store.SAMLProvider) (binding string, err error) {
	switch {
	case p.Name == "":
		return "", fmt.Errorf("%w: SAML provider name is required", store.ErrInvalid)
	case p.MetadataXML == "":
		return "", fmt.Errorf("%w: SAML provider metadata is required", store.ErrInvalid)
	case p.EntityID == "":
		return "", fmt.Errorf("%w: SAML provider entity id is required", store.ErrInvalid)
	}
	return encodeBinding(p.Binding)
}

// CreateSAMLProvider inserts p and fills its ID (if empty), Revision,
// CreatedAt and UpdatedAt. A taken ID, name or entity id yields
// ErrAlreadyExists.
func (s *Store) CreateSAMLProvider(ctx context.Context, p *store.SAMLProvider) error {
	binding, err := prepSAML(p)
	if err == nil {
		id, now := newID(p.ID), s.stamp()
		err = samlProviders.insert(ctx, s, now, "name_key", id, p.Name, p.MetadataXML, p.EntityID, binding,
			store.FoldName(p.Name))
		if err == nil {
			p.ID, p.Revision, p.CreatedAt, p.UpdatedAt = id, 1, now, now
			return nil
		}
	}
	return fmt.Errorf("store: create SAML provider %q: %w", p.Name, err)
}

// GetSAMLProvider returns the SAML provider with id, or ErrNotFound.
func (s *Store) GetSAMLProvider(ctx context.Context, id string) (*store.SAMLProvider, error) {
	return samlProviders.get(ctx, s, fmt.Sprintf("get SAML provider %q", id), `id = ?`, id)
}

// GetSAMLProviderByName returns the SAML provider whose name matches
// case-insensitively, or ErrNotFound.
func (s *Store) GetSAMLProviderByName(ctx context.Context, name string) (*store.SAMLProvider, error) {
	return samlProviders.get(ctx, s, fmt.Sprintf("get SAML provider by name %q", name), `name_key = ?`,
		store.FoldName(name))
}

// GetSAMLProviderByEntityID returns the SAML provider whose entity id is
// exactly entityID, or ErrNotFound.
func (s *Store) GetSAMLProviderByEntityID(ctx context.Context, entityID string) (*store.SAMLProvider, error) {
	return samlProviders.get(ctx, s, fmt.Sprintf("get SAML provider by entity id %q", entityID), `entity_id = ?`,
		entityID)
}

// ListSAMLProviders returns every SAML provider ordered by CreatedAt then ID.
func (s *Store) ListSAMLProviders(ctx context.Context) ([]*store.SAMLProvider, error) {
	return samlProviders.list(ctx, s, "list SAML providers", s.byCreation())
}

// UpdateSAMLProvider replaces name, metadata, entity id and binding of p.ID if
// p.Revision is current, then sets p.Revision, p.UpdatedAt and p.CreatedAt
// to the stored values. A stale revision yields ErrConflict and changes
// nothing.
func (s *Store) UpdateSAMLProvider(ctx context.Context, p *store.SAMLProvider) error {
	binding, err := prepSAML(p)
	if err == nil {
		now := s.stamp()
		if p.Revision, p.CreatedAt, err = s.updated(ctx, "saml_providers", `name = ?, name_key = ?,
			metadata_xml = ?, entity_id = ?, binding = ?`, now, p.ID, p.Revision, p.CreatedAt,
			p.Name, store.FoldName(p.Name), p.MetadataXML, p.EntityID, binding); err == nil {
			p.UpdatedAt = now
			return nil
		}
	}
	return fmt.Errorf("store: update SAML provider %q: %w", p.ID, err)
}

// DeleteSAMLProvider removes the SAML provider with id.
func (s *Store) DeleteSAMLProvider(ctx context.Context, id string) error {
	return s.deleteRecord(ctx, "saml_providers", "SAML provider", id)
}

// ---- OIDC providers ----

var oidcProviders = table[store.OIDCProvider]{
	name: "oidc_providers",
	cols: `id, issuer_url, audiences, thumbprints, jwks_url, groups_claim, roles_claim, username_claim,
	binding, revision, created_at, updated_at`,
	scan: func(sc scanner) (*store.OIDCProvider, error) {
		var (
			p                     store.OIDCProvider
			auds, thumbs, binding string
		)
		if err := sc.Scan(&p.ID, &p.IssuerURL, &auds, &thumbs, &p.JWKSURL, &p.GroupsClaim, &p.RolesClaim,
			&p.UsernameClaim, &binding, &p.Revision, timeCol{&p.CreatedAt}, timeCol{&p.UpdatedAt}); err != nil {
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
		return &p, decodeBinding(binding, &p.Binding, "OIDC provider "+p.ID)
	},
}

func prepOIDC(p *store.OIDCProvider) (auds, thumbs, binding string, err error) {
	if p.IssuerURL == "" {
		return "", "", "", fmt.Errorf("%w: OIDC provider issuer URL is required", store.ErrInvalid)
	}
	if len(p.Audiences) == 0 {
		return "", "", "", fmt.Errorf("%w: OIDC provider needs at least one audience", store.ErrInvalid)
	}
	if len(p.Thumbprints) == 0 {
		p.Thumbprints = nil
	}
	if auds, err = jsonOr(p.Audiences, false, "", "audiences"); err != nil {
		return "", "", "", err
	}
	if thumbs, err = jsonOr(p.Thumbprints, p.Thumbprints == nil, "[]", "thumbprints"); err != nil {
		return "", "", "", err
	}
	binding, err = encodeBinding(p.Binding)
	return auds, thumbs, binding, err
}

// CreateOIDCProvider inserts p and fills its ID (if empty), Revision,
// CreatedAt and UpdatedAt. A taken ID or issuer key yields ErrAlreadyExists.
func (s *Store) CreateOIDCProvider(ctx context.Context, p *store.OIDCProvider) error {
	auds, thumbs, binding, err := prepOIDC(p)
	if err == nil {
		id, now := newID(p.ID), s.stamp()
		err = oidcProviders.insert(ctx, s, now, "issuer_key", id, p.IssuerURL, auds, thumbs, p.JWKSURL,
			p.GroupsClaim, p.RolesClaim, p.UsernameClaim, binding, store.OIDCIssuerKey(p.IssuerURL))
		if err == nil {
			p.ID, p.Revision, p.CreatedAt, p.UpdatedAt = id, 1, now, now
			return nil
		}
	}
	return fmt.Errorf("store: create OIDC provider %q: %w", p.IssuerURL, err)
}

// GetOIDCProvider returns the OIDC provider with id, or ErrNotFound.
func (s *Store) GetOIDCProvider(ctx context.Context, id string) (*store.OIDCProvider, error) {
	return oidcProviders.get(ctx, s, fmt.Sprintf("get OIDC provider %q", id), `id = ?`, id)
}

// GetOIDCProviderByIssuer returns the OIDC provider whose issuer URL is
// exactly issuerURL, or ErrNotFound.
func (s *Store) GetOIDCProviderByIssuer(ctx context.Context, issuerURL string) (*store.OIDCProvider, error) {
	return oidcProviders.get(ctx, s, fmt.Sprintf("get OIDC provider by issuer %q", issuerURL), `issuer_url = ?`,
		issuerURL)
}

// ListOIDCProviders returns every OIDC provider ordered by CreatedAt then ID.
func (s *Store) ListOIDCProviders(ctx context.Context) ([]*store.OIDCProvider, error) {
	return oidcProviders.list(ctx, s, "list OIDC providers", s.byCreation())
}

// UpdateOIDCProvider replaces every field of p.ID if p.Revision is current,
// then sets p.Revision, p.UpdatedAt and p.CreatedAt to the stored values. A
// stale revision yields ErrConflict and changes nothing.
func (s *Store) UpdateOIDCProvider(ctx context.Context, p *store.OIDCProvider) error {
	auds, thumbs, binding, err := prepOIDC(p)
	if err == nil {
		now := s.stamp()
		if p.Revision, p.CreatedAt, err = s.updated(ctx, "oidc_providers", `issuer_url = ?, issuer_key = ?,
			audiences = ?, thumbprints = ?, jwks_url = ?, groups_claim = ?, roles_claim = ?, username_claim = ?,
			binding = ?`,
			now, p.ID, p.Revision, p.CreatedAt, p.IssuerURL, store.OIDCIssuerKey(p.IssuerURL), auds, thumbs,
			p.JWKSURL, p.GroupsClaim, p.RolesClaim, p.UsernameClaim, binding); err == nil {
			p.UpdatedAt = now
			return nil
		}
	}
	return fmt.Errorf("store: update OIDC provider %q: %w", p.ID, err)
}

// DeleteOIDCProvider removes the OIDC provider with id.
func (s *Store) DeleteOIDCProvider(ctx context.Context, id string) error {
	return s.deleteRecord(ctx, "oidc_providers", "OIDC provider", id)
}
