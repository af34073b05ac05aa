package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// ---- users ----

const userCols = `id, kind, user_name, external_id, display_name, given_name, family_name, title,
	emails, active, attributes, password_hash, revision, created_at, updated_at`

func scanUser(sc scanner) (*store.User, error) {
	var (
		u               store.User
		kind, em, attrs string
	)
	if err := sc.Scan(&u.ID, &kind, &u.UserName, &u.ExternalID, &u.DisplayName, &u.GivenName, &u.FamilyName,
		&u.Title, &em, &u.Active, &attrs, &u.PasswordHash, &u.Revision, timeCol{&u.CreatedAt},
		timeCol{&u.UpdatedAt}); err != nil {
		return nil, err
	}
	u.Kind = store.PrincipalKind(kind)
	if err := json.Unmarshal([]byte(em), &u.Emails); err != nil {
		return nil, fmt.Errorf("decode emails of user %s: %w", u.ID, err)
	}
	if err := json.Unmarshal([]byte(attrs), &u.Attributes); err != nil {
		return nil, fmt.Errorf("decode attributes of user %s: %w", u.ID, err)
	}
	if len(u.Emails) == 0 {
		u.Emails = nil
	}
	if len(u.Attributes) == 0 {
		u.Attributes = nil
	}
	return &u, nil
}

// prepUser validates u, normalises it in place to what will be stored, and
// returns the JSON columns.
func prepUser(u *store.User) (emails, attrs string, err error) {
	if u.UserName == "" {
		return "", "", fmt.Errorf("%w: userName is required", store.ErrInvalid)
	}
	if u.Kind == "" {
		u.Kind = store.KindUser
	}
	if u.Kind != store.KindUser && u.Kind != store.KindService {
		return "", "", fmt.Errorf("%w: unknown principal kind %q", store.ErrInvalid, u.Kind)
	}
	if len(u.Emails) == 0 {
		u.Emails = nil
	}
	if len(u.Attributes) == 0 {
		u.Attributes = nil
	}
	em, err := jsonOr(u.Emails, u.Emails == nil, "[]", "emails")
	if err != nil {
		return "", "", err
	}
	at, err := jsonOr(u.Attributes, u.Attributes == nil, "{}", "attributes")
	return em, at, err
}

// jsonOr returns the JSON text of v, or empty if none.
func jsonOr(v any, none bool, empty, what string) (string, error) {
	if none {
		return empty, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return "", fmt.Errorf("%w: %s: %v", store.ErrInvalid, what, err)
	}
	return string(b), nil
}

// CreateUser inserts u and fills its ID (if empty), Revision, CreatedAt and
// UpdatedAt. A taken ID or userName yields ErrAlreadyExists.
func (s *Store) CreateUser(ctx context.Context, u *store.User) error {
	emails, attrs, err := prepUser(u)
	if err == nil {
		id, now := newID(u.ID), s.stamp()
		_, err = s.exec(ctx, `INSERT INTO users (`+userCols+`, user_name_key) VALUES (`+marks(16)+`)`,
			id, string(u.Kind), u.UserName, u.ExternalID, u.DisplayName, u.GivenName, u.FamilyName, u.Title,
			emails, u.Active, attrs, u.PasswordHash, 1, s.ts(now), s.ts(now), store.FoldName(u.UserName))
		if err == nil {
			u.ID, u.Revision, u.CreatedAt, u.UpdatedAt = id, 1, now, now
			return nil
		}
	}
	return fmt.Errorf("store: create user %q: %w", u.UserName, err)
}

// GetUser returns the user with id, or ErrNotFound.
func (s *Store) GetUser(ctx context.Context, id string) (*store.User, error) {
	u, err := getOne(ctx, s.reader(), scanUser, `SELECT `+userCols+` FROM users WHERE id = ?`, id)
	if err != nil {
		return nil, fmt.Errorf("store: get user %q: %w", id, err)
	}
	return u, nil
}

// GetUserByName returns the user whose userName matches case-insensitively,
// or ErrNotFound.
func (s *Store) GetUserByName(ctx context.Context, userName string) (*store.User, error) {
	u, err := getOne(ctx, s.reader(), scanUser, `SELECT `+userCols+` FROM users WHERE user_name_key = ?`,
		store.FoldName(userName))
	if err != nil {
		return nil, fmt.Errorf("store: get user by name %q: %w", userName, err)
	}
	return u, nil
}

// UsersByExternalID implements store.ExternalIDStore.
func (s *Store) UsersByExternalID(ctx context.Context, id string) ([]*store.User, error) {
	if id == "" {
		return []*store.User{}, nil
	}
	users, err := list(ctx, s.reader(), scanUser, `SELECT `+userCols+` FROM users WHERE external_id = ?
		ORDER BY created_at, `+s.bytewise("id"), id)
	if err != nil {
		return nil, fmt.Errorf("store: users by external id: %w", err)
	}
	return users, nil
}

// ListUsers returns every principal ordered by CreatedAt then ID.
func (s *Store) ListUsers(ctx context.Context) ([]*store.User, error) {
	users, err := list(ctx, s.reader(), scanUser, `SELECT `+userCols+` FROM users ORDER BY created_at, `+s.bytewise("id"))
	if err != nil {
		return nil, fmt.Errorf("store: list users: %w", err)
	}
	return users, nil
}

// UpdateUser replaces every field of the stored user u.ID if u.Revision is
// current, then sets u.Revision, u.UpdatedAt and u.CreatedAt to the stored
// values. A stale revision yields ErrConflict and changes nothing.
func (s *Store) UpdateUser(ctx context.Context, u *store.User) error {
	emails, attrs, err := prepUser(u)
	if err == nil {
		now := s.stamp()
		var (
			rev     int64
			created time.Time
		)
		rev, created, err = s.update(ctx, "users", `kind = ?, user_name = ?, user_name_key = ?,
			external_id = ?, display_name = ?, given_name = ?, family_name = ?, title = ?,
			emails = ?, active = ?, attributes = ?, password_hash = ?`, now, u.ID, u.Revision,
			string(u.Kind), u.UserName, store.FoldName(u.UserName), u.ExternalID, u.DisplayName, u.GivenName,
			u.FamilyName, u.Title, emails, u.Active, attrs, u.PasswordHash)
		if err == nil {
			u.Revision, u.CreatedAt, u.UpdatedAt = rev, created, now
			return nil
		}
	}
	return fmt.Errorf("store: update user %q: %w", u.ID, err)
}

// DeleteUser removes the user, its memberships and its tokens in one
// transaction, and bumps the revision of the groups it was a member of.
func (s *Store) DeleteUser(ctx context.Context, id string) error {
	if err := s.deleteMember(ctx, "users", "user_id", id); err != nil {
		return fmt.Errorf("store: delete user %q: %w", id, err)
	}
	return nil
}

// deleteMember deletes record id from table (users or groups) and bumps the
// revision of every group naming it in column of group_members; the
// memberships (and a user's tokens) go by ON DELETE CASCADE.
func (s *Store) deleteMember(ctx context.Context, table, column, id string) error {
	now := s.stamp()
	return s.writeMembership(ctx, func(c conn) error {
		if _, err := c.exec(ctx, `UPDATE groups SET revision = revision + 1, updated_at = ?
			WHERE id IN (SELECT group_id FROM group_members WHERE `+column+` = ?)`, s.ts(now), id); err != nil {
			return err
		}
		n, err := c.affected(ctx, `DELETE FROM `+table+` WHERE id = ?`, id)
		if err == nil && n == 0 {
			err = store.ErrNotFound
		}
		return err
	})
}

// ---- tokens ----

const tokenCols = `id, principal_id, kind, name, hash, created_at, expires_at, revoked_at, last_used_at, roles, parent_id`

func scanToken(sc scanner) (*store.Token, error) {
	var (
		t      store.Token
		kind   string
		roles  sql.NullString
		parent sql.NullString
	)
	if err := sc.Scan(&t.ID, &t.PrincipalID, &kind, &t.Name, &t.Hash, timeCol{&t.CreatedAt},
		timeCol{&t.ExpiresAt}, timePtrCol{&t.RevokedAt}, timePtrCol{&t.LastUsedAt}, &roles, &parent); err != nil {
		return nil, err
	}
	t.Kind = store.TokenKind(kind)
	t.ParentID = parent.String
	if len(t.Hash) == 0 {
		t.Hash = nil
	}
	if roles.Valid {
		t.Roles = []store.RoleGrant{}
		if err := json.Unmarshal([]byte(roles.String), &t.Roles); err != nil {
			return nil, fmt.Errorf("decode roles of token %s: %w", t.ID, err)
		}
	}
	return &t, nil
}

// tokenRoles is the roles column of t: NULL when unrestricted, else the
// JSON array (an empty restriction is "[]", never NULL).
func tokenRoles(t *store.Token) (any, error) {
	if t.Roles == nil {
		return nil, nil
	}
	return jsonOr(t.Roles, false, "[]", "roles")
}

func prepToken(t *store.Token) error {
	if t.Kind != store.TokenPAT && t.Kind != store.TokenSession {
		return fmt.Errorf("%w: unknown token kind %q", store.ErrInvalid, t.Kind)
	}
	if t.PrincipalID == "" {
		return fmt.Errorf("%w: token without principal", store.ErrInvalid)
	}
	t.ExpiresAt = trunc(t.ExpiresAt)
	t.RevokedAt, t.LastUsedAt = truncPtr(t.RevokedAt), truncPtr(t.LastUsedAt)
	return nil
}

// CreateToken inserts t and fills its ID (if empty) and CreatedAt. The
// principal must exist (ErrInvalid).
func (s *Store) CreateToken(ctx context.Context, t *store.Token) error {
	err := prepToken(t)
	if err == nil {
		id, now := newID(t.ID), s.stamp()
		hash := t.Hash
		if hash == nil {
			hash = []byte{}
		}
		var roles any
		if roles, err = tokenRoles(t); err != nil {
			return fmt.Errorf("store: create token %q: %w", t.Name, err)
		}
		var parent any
		if t.ParentID != "" {
			parent = t.ParentID
		}
		_, err = s.exec(ctx, `INSERT INTO tokens (`+tokenCols+`) VALUES (`+marks(11)+`)`,
			id, t.PrincipalID, string(t.Kind), t.Name, hash, s.ts(now), s.nullTS(t.ExpiresAt),
			s.ptrTS(t.RevokedAt), s.ptrTS(t.LastUsedAt), roles, parent)
		if errors.Is(err, errMissingRef) {
			err = fmt.Errorf("%w: principal %q does not exist", store.ErrInvalid, t.PrincipalID)
		}
		if err == nil {
			t.ID, t.CreatedAt = id, now
			return nil
		}
	}
	return fmt.Errorf("store: create token %q: %w", t.Name, err)
}

// GetToken returns the token with id, or ErrNotFound.
func (s *Store) GetToken(ctx context.Context, id string) (*store.Token, error) {
	t, err := getOne(ctx, s.reader(), scanToken, `SELECT `+tokenCols+` FROM tokens WHERE id = ?`, id)
	if err != nil {
		return nil, fmt.Errorf("store: get token %q: %w", id, err)
	}
	return t, nil
}

// ListTokens returns the principal's tokens ordered by CreatedAt then ID.
func (s *Store) ListTokens(ctx context.Context, principalID string) ([]*store.Token, error) {
	tokens, err := list(ctx, s.reader(), scanToken, `SELECT `+tokenCols+` FROM tokens WHERE principal_id = ?
		ORDER BY created_at, `+s.bytewise("id"), principalID)
	if err != nil {
		return nil, fmt.Errorf("store: list tokens of %q: %w", principalID, err)
	}
	return tokens, nil
}

// RevokeToken sets RevokedAt to at (now if zero) unless the token is already
// revoked, in which case it keeps the first time. One statement: a token
// that exists is always matched, so no row means no such token.
func (s *Store) RevokeToken(ctx context.Context, id string, at time.Time) error {
	if at.IsZero() {
		at = s.stamp()
	}
	n, err := s.exec(ctx, `UPDATE tokens SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?`, s.ts(trunc(at)), id)
	if err == nil && n == 0 {
		err = store.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("store: revoke token %q: %w", id, err)
	}
	return nil
}

// TouchToken advances LastUsedAt to at; it never moves it backwards.
func (s *Store) TouchToken(ctx context.Context, id string, at time.Time) error {
	v := s.ts(trunc(at))
	n, err := s.exec(ctx, `UPDATE tokens SET last_used_at = CASE
			WHEN last_used_at IS NULL OR last_used_at < ? THEN ? ELSE last_used_at END
		WHERE id = ?`, v, v, id)
	if err == nil && n == 0 {
		err = store.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("store: touch token %q: %w", id, err)
	}
	return nil
}

// ---- meta ----

// GetMeta returns the value stored under key, or ErrNotFound.
func (s *Store) GetMeta(ctx context.Context, key string) ([]byte, error) {
	var v []byte
	err := s.reader().row(ctx, `SELECT value FROM meta WHERE key = ?`, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		err = store.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("store: get meta %q: %w", key, err)
	}
	if v == nil {
		v = []byte{}
	}
	return v, nil
}

// PutMeta stores value under key, with no expiry. With expect == nil it
// overwrites unconditionally. Otherwise it is a compare-and-swap: it succeeds
// only if the key is absent and *expect is empty, or the current value
// equals *expect; if not it returns ErrConflict and changes nothing. Each
// case is one atomic statement.
func (s *Store) PutMeta(ctx context.Context, key string, value []byte, expect *[]byte) error {
	return s.PutMetaUntil(ctx, key, value, expect, time.Time{})
}

// PutMetaUntil is PutMeta that also sets the row's expiry (zero: none).
func (s *Store) PutMetaUntil(ctx context.Context, key string, value []byte, expect *[]byte, expiresAt time.Time) error {
	exp := s.nullTS(trunc(expiresAt))
	if value == nil {
		value = []byte{}
	}
	var (
		n   int64
		err error
	)
	switch {
	case key == "":
		err = fmt.Errorf("%w: empty key", store.ErrInvalid)
	case expect == nil:
		n, err = s.exec(ctx, `INSERT INTO meta (key, value, expires_at) VALUES (?, ?, ?)
			ON CONFLICT (key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at`, key, value, exp)
	case len(*expect) == 0:
		n, err = s.exec(ctx, `INSERT INTO meta (key, value, expires_at) VALUES (?, ?, ?)
			ON CONFLICT (key) DO NOTHING`, key, value, exp)
	default:
		n, err = s.exec(ctx, `UPDATE meta SET value = ?, expires_at = ? WHERE key = ? AND value = ?`,
			value, exp, key, *expect)
	}
	if err == nil && n == 0 {
		err = store.ErrConflict
	}
	if err != nil {
		return fmt.Errorf("store: put meta %q: %w", key, err)
	}
	return nil
}

// SweepMeta deletes the meta rows whose expiry is at or before now.
func (s *Store) SweepMeta(ctx context.Context, now time.Time) (int64, error) {
	n, err := s.exec(ctx, `DELETE FROM meta WHERE expires_at IS NOT NULL AND expires_at <= ?`, s.ts(trunc(now)))
	if err != nil {
		return 0, fmt.Errorf("store: sweep meta: %w", err)
	}
	return n, nil
}
