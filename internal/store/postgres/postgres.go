// Package postgres implements store.Store on PostgreSQL through pgx/v5, for
// deployments where several gatehouse replicas share one metadata database.
//
// Transactions run at READ COMMITTED. Revision-guarded UPDATEs are atomic
// row operations, so concurrent writers get ErrConflict rather than
// overwriting each other. Writes to the group membership graph (create,
// update and delete of groups, delete of users) take a SHARE ROW EXCLUSIVE
// lock on group_members first, which serializes them across replicas so that
// the cycle check inside the transaction sees every committed edge; readers
// are never blocked by it. Migrations run at Open under a transaction-scoped
// advisory lock, so replicas starting together migrate once.
package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/store/migrations"
)

// migrateLockKey is the pg_advisory_xact_lock key that serializes schema
// migrations of gatehouse replicas sharing a database.
const migrateLockKey int64 = 0x6761_7465_6d69_6772 // "gatemigr"

// maxAttempts bounds retries of a transaction that PostgreSQL aborted with a
// serialization failure or a deadlock.
const maxAttempts = 4

// Store is a store.Store backed by a PostgreSQL connection pool. It is safe
// for concurrent use.
type Store struct {
	pool *pgxpool.Pool
	now  func() time.Time
}

var _ store.Store = (*Store)(nil)

// Open connects to the database named by dsn (a postgres:// URL or key=value
// string; runtime parameters such as search_path are honoured) and applies
// pending schema migrations in one transaction. Errors never contain the
// DSN's password.
func Open(ctx context.Context, dsn string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	if err := migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	return &Store{pool: pool, now: time.Now}, nil
}

// migrate applies pending migrations in one transaction holding an advisory
// lock, so that concurrent replicas wait for each other; the loser then finds
// nothing left to do.
func migrate(ctx context.Context, pool *pgxpool.Pool) error {
	ms, err := migrations.Load(migrations.Postgres)
	if err != nil {
		return err
	}
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrateLockKey); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    integer PRIMARY KEY,
			name       text NOT NULL,
			applied_at timestamptz NOT NULL DEFAULT now()
		)`); err != nil {
			return err
		}
		var cur int
		if err := tx.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&cur); err != nil {
			return err
		}
		if cur > len(ms) {
			return fmt.Errorf("database schema version %d is newer than this binary supports (%d)", cur, len(ms))
		}
		for _, m := range ms[cur:] {
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return fmt.Errorf("version %d (%s): %w", m.Version, m.Name, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`,
				m.Version, m.Name); err != nil {
				return fmt.Errorf("version %d (%s): %w", m.Version, m.Name, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// Ping checks the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("postgres: ping: %w", err)
	}
	return nil
}

// Close closes the pool, waiting for connections in use to be released.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// stamp returns the current time as it will be stored: UTC, microseconds.
func (s *Store) stamp() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

// write runs fn in a read-write transaction, retrying it from the start if
// PostgreSQL aborts it with a serialization failure or deadlock.
func (s *Store) write(ctx context.Context, fn func(tx pgx.Tx) error) error {
	for attempt := 1; ; attempt++ {
		err := pgx.BeginFunc(ctx, s.pool, fn)
		if attempt < maxAttempts && retryable(err) {
			continue
		}
		return mapErr(err)
	}
}

// read runs fn in a read-only REPEATABLE READ transaction, so that its
// queries share one snapshot.
func (s *Store) read(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return mapErr(pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{
		IsoLevel:   pgx.RepeatableRead,
		AccessMode: pgx.ReadOnly,
	}, fn))
}

// lockMembership serializes writers of the membership graph (see package doc).
func lockMembership(ctx context.Context, tx pgx.Tx) error {
	_, err := tx.Exec(ctx, `LOCK TABLE group_members IN SHARE ROW EXCLUSIVE MODE`)
	return err
}

func retryable(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && (pe.Code == "40001" || pe.Code == "40P01")
}

// mapErr turns constraint violations into domain errors; other errors pass
// through unchanged.
func mapErr(err error) error {
	var pe *pgconn.PgError
	if err == nil || !errors.As(err, &pe) {
		return err
	}
	switch pe.Code {
	case "23505": // unique_violation
		return store.ErrAlreadyExists
	case "23503": // foreign_key_violation
		return fmt.Errorf("%w: reference to a missing record", store.ErrInvalid)
	case "23514", "23502": // check_violation, not_null_violation
		return fmt.Errorf("%w: %v", store.ErrInvalid, err)
	}
	return err
}

// trunc normalises a caller-supplied time to what the store keeps.
func trunc(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC().Truncate(time.Microsecond)
}

// nullTime maps the zero time to NULL.
func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	v := t.UTC()
	return &v
}

func exists(ctx context.Context, tx pgx.Tx, query string, args ...any) (bool, error) {
	var ok bool
	err := tx.QueryRow(ctx, `SELECT EXISTS (`+query+`)`, args...).Scan(&ok)
	return ok, err
}

// ---- users ----

const userCols = `id, kind, user_name, external_id, display_name, given_name, family_name, title,
	emails, active, attributes, password_hash, revision, created_at, updated_at`

func scanUser(row pgx.Row) (*store.User, error) {
	var (
		u               store.User
		kind, em, attrs string
	)
	if err := row.Scan(&u.ID, &kind, &u.UserName, &u.ExternalID, &u.DisplayName, &u.GivenName, &u.FamilyName,
		&u.Title, &em, &u.Active, &attrs, &u.PasswordHash, &u.Revision, &u.CreatedAt, &u.UpdatedAt); err != nil {
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
	u.CreatedAt, u.UpdatedAt = u.CreatedAt.UTC(), u.UpdatedAt.UTC()
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
	em, err := json.Marshal(u.Emails)
	if err != nil {
		return "", "", fmt.Errorf("%w: emails: %v", store.ErrInvalid, err)
	}
	at, err := json.Marshal(u.Attributes)
	if err != nil {
		return "", "", fmt.Errorf("%w: attributes: %v", store.ErrInvalid, err)
	}
	if u.Emails == nil {
		em = []byte("[]")
	}
	if u.Attributes == nil {
		at = []byte("{}")
	}
	return string(em), string(at), nil
}

// CreateUser inserts u and fills its ID (if empty), Revision, CreatedAt and
// UpdatedAt. A taken ID or userName yields ErrAlreadyExists.
func (s *Store) CreateUser(ctx context.Context, u *store.User) error {
	emails, attrs, err := prepUser(u)
	if err == nil {
		id := u.ID
		if id == "" {
			id = uuid.NewString()
		}
		now := s.stamp()
		_, err = s.pool.Exec(ctx, `INSERT INTO users (`+userCols+`, user_name_key)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, 1, $13, $13, $14)`,
			id, string(u.Kind), u.UserName, u.ExternalID, u.DisplayName, u.GivenName, u.FamilyName, u.Title,
			emails, u.Active, attrs, u.PasswordHash, now, store.FoldName(u.UserName))
		if err = mapErr(err); err == nil {
			u.ID, u.Revision, u.CreatedAt, u.UpdatedAt = id, 1, now, now
			return nil
		}
	}
	return fmt.Errorf("store: create user %q: %w", u.UserName, err)
}

// GetUser returns the user with id, or ErrNotFound.
func (s *Store) GetUser(ctx context.Context, id string) (*store.User, error) {
	u, err := scanUser(s.pool.QueryRow(ctx, `SELECT `+userCols+` FROM users WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		err = store.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("store: get user %q: %w", id, err)
	}
	return u, nil
}

// GetUserByName returns the user whose userName matches case-insensitively,
// or ErrNotFound.
func (s *Store) GetUserByName(ctx context.Context, userName string) (*store.User, error) {
	u, err := scanUser(s.pool.QueryRow(ctx, `SELECT `+userCols+` FROM users WHERE user_name_key = $1`,
		store.FoldName(userName)))
	if errors.Is(err, pgx.ErrNoRows) {
		err = store.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("store: get user by name %q: %w", userName, err)
	}
	return u, nil
}

// ListUsers returns every principal ordered by CreatedAt then ID.
func (s *Store) ListUsers(ctx context.Context) ([]*store.User, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+userCols+` FROM users ORDER BY created_at, id COLLATE "C"`)
	if err != nil {
		return nil, fmt.Errorf("store: list users: %w", err)
	}
	users := []*store.User{}
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("store: list users: %w", err)
		}
		users = append(users, u)
	}
	if err := rows.Err(); err != nil {
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
		err = s.write(ctx, func(tx pgx.Tx) error {
			err := tx.QueryRow(ctx, `UPDATE users SET kind = $1, user_name = $2, user_name_key = $3,
					external_id = $4, display_name = $5, given_name = $6, family_name = $7, title = $8,
					emails = $9, active = $10, attributes = $11, password_hash = $12,
					revision = revision + 1, updated_at = $13
				WHERE id = $14 AND revision = $15
				RETURNING revision, created_at`,
				string(u.Kind), u.UserName, store.FoldName(u.UserName), u.ExternalID, u.DisplayName, u.GivenName,
				u.FamilyName, u.Title, emails, u.Active, attrs, u.PasswordHash, now, u.ID, u.Revision,
			).Scan(&rev, &created)
			if errors.Is(err, pgx.ErrNoRows) {
				return notFoundOrConflict(ctx, tx, `SELECT 1 FROM users WHERE id = $1`, u.ID)
			}
			return err
		})
		if err == nil {
			u.Revision, u.CreatedAt, u.UpdatedAt = rev, created.UTC(), now
			return nil
		}
	}
	return fmt.Errorf("store: update user %q: %w", u.ID, err)
}

// notFoundOrConflict explains why a revision-guarded UPDATE matched no row.
func notFoundOrConflict(ctx context.Context, tx pgx.Tx, query, id string) error {
	ok, err := exists(ctx, tx, query, id)
	switch {
	case err != nil:
		return err
	case ok:
		return store.ErrConflict
	default:
		return store.ErrNotFound
	}
}

// DeleteUser removes the user, its memberships and its tokens in one
// transaction, and bumps the revision of the groups it was a member of.
func (s *Store) DeleteUser(ctx context.Context, id string) error {
	now := s.stamp()
	err := s.write(ctx, func(tx pgx.Tx) error {
		if err := lockMembership(ctx, tx); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE groups SET revision = revision + 1, updated_at = $1
			WHERE id IN (SELECT group_id FROM group_members WHERE user_id = $2)`, now, id); err != nil {
			return err
		}
		// Memberships and tokens go by ON DELETE CASCADE.
		tag, err := tx.Exec(ctx, `DELETE FROM users WHERE id = $1`, id)
		if err == nil && tag.RowsAffected() == 0 {
			err = store.ErrNotFound
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("store: delete user %q: %w", id, err)
	}
	return nil
}

// ---- groups ----

const groupCols = `id, display_name, external_id, revision, created_at, updated_at`

func scanGroup(row pgx.Row) (*store.Group, error) {
	var g store.Group
	if err := row.Scan(&g.ID, &g.DisplayName, &g.ExternalID, &g.Revision, &g.CreatedAt, &g.UpdatedAt); err != nil {
		return nil, err
	}
	g.CreatedAt, g.UpdatedAt = g.CreatedAt.UTC(), g.UpdatedAt.UTC()
	g.Members = []store.Member{}
	return &g, nil
}

func queryGroups(ctx context.Context, tx pgx.Tx, query string, args ...any) ([]*store.Group, error) {
	rows, err := tx.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	groups := []*store.Group{}
	for rows.Next() {
		g, err := scanGroup(rows)
		if err != nil {
			rows.Close()
			return nil, err
		}
		groups = append(groups, g)
	}
	return groups, rows.Err()
}

// attachMembers loads the direct members of groups, in stored order.
func attachMembers(ctx context.Context, tx pgx.Tx, groups []*store.Group) error {
	if len(groups) == 0 {
		return nil
	}
	byID := make(map[string]*store.Group, len(groups))
	ids := make([]string, 0, len(groups))
	for _, g := range groups {
		byID[g.ID] = g
		ids = append(ids, g.ID)
	}
	rows, err := tx.Query(ctx, `SELECT group_id, user_id, member_group_id FROM group_members
		WHERE group_id = ANY($1) ORDER BY group_id, position`, ids)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			gid      string
			uid, mid *string
		)
		if err := rows.Scan(&gid, &uid, &mid); err != nil {
			return err
		}
		m := store.Member{Type: store.MemberGroup}
		if uid != nil {
			m = store.Member{ID: *uid, Type: store.MemberUser}
		} else if mid != nil {
			m.ID = *mid
		}
		if g := byID[gid]; g != nil {
			g.Members = append(g.Members, m)
		}
	}
	return rows.Err()
}

// resolveMembers checks that every member exists, fills in empty types and
// drops duplicates. A group that names itself is a cycle.
func resolveMembers(ctx context.Context, tx pgx.Tx, groupID string, in []store.Member) ([]store.Member, error) {
	ids := make([]string, 0, len(in))
	for _, m := range in {
		if m.ID == "" {
			return nil, fmt.Errorf("%w: member without id", store.ErrInvalid)
		}
		ids = append(ids, m.ID)
	}
	users, groups := map[string]bool{}, map[string]bool{}
	if len(ids) > 0 {
		rows, err := tx.Query(ctx, `SELECT id, true FROM users WHERE id = ANY($1)
			UNION ALL SELECT id, false FROM groups WHERE id = ANY($1)`, ids)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var (
				id     string
				isUser bool
			)
			if err := rows.Scan(&id, &isUser); err != nil {
				rows.Close()
				return nil, err
			}
			if isUser {
				users[id] = true
			} else {
				groups[id] = true
			}
		}
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	out := make([]store.Member, 0, len(in))
	for _, m := range in {
		isUser, isGroup := users[m.ID], groups[m.ID]
		switch {
		case m.Type == store.MemberUser && isUser, m.Type == store.MemberGroup && isGroup:
		case m.Type == "" && isUser:
			m.Type = store.MemberUser
		case m.Type == "" && isGroup:
			m.Type = store.MemberGroup
		case m.Type != store.MemberUser && m.Type != store.MemberGroup && m.Type != "":
			return nil, fmt.Errorf("%w: member %q has unknown type %q", store.ErrInvalid, m.ID, m.Type)
		default:
			return nil, fmt.Errorf("%w: member %q does not exist", store.ErrInvalid, m.ID)
		}
		if m.Type == store.MemberGroup && m.ID == groupID {
			return nil, fmt.Errorf("%w: group cannot be a member of itself", store.ErrInvalid)
		}
		if !slices.Contains(out, m) {
			out = append(out, m)
		}
	}
	return out, nil
}

// replaceMembers stores ms as the direct members of groupID and rejects the
// result if it makes groupID reachable from itself. The caller holds the
// membership lock.
func replaceMembers(ctx context.Context, tx pgx.Tx, groupID string, ms []store.Member) error {
	if _, err := tx.Exec(ctx, `DELETE FROM group_members WHERE group_id = $1`, groupID); err != nil {
		return err
	}
	if len(ms) > 0 {
		// Empty strings stand for NULL: member ids are never empty.
		uids, gids := make([]string, len(ms)), make([]string, len(ms))
		for i, m := range ms {
			if m.Type == store.MemberUser {
				uids[i] = m.ID
			} else {
				gids[i] = m.ID
			}
		}
		if _, err := tx.Exec(ctx, `INSERT INTO group_members (group_id, position, user_id, member_group_id)
			SELECT $1, t.ord - 1, NULLIF(t.u, ''), NULLIF(t.g, '')
			FROM unnest($2::text[], $3::text[]) WITH ORDINALITY AS t(u, g, ord)`,
			groupID, uids, gids); err != nil {
			return err
		}
	}
	var cycle bool
	if err := tx.QueryRow(ctx, `WITH RECURSIVE reach(id) AS (
			SELECT member_group_id FROM group_members WHERE group_id = $1 AND member_group_id IS NOT NULL
			UNION
			SELECT gm.member_group_id FROM group_members gm JOIN reach r ON gm.group_id = r.id
			WHERE gm.member_group_id IS NOT NULL
		)
		SELECT EXISTS (SELECT 1 FROM reach WHERE id = $1)`, groupID).Scan(&cycle); err != nil {
		return err
	}
	if cycle {
		return fmt.Errorf("%w: membership would create a nesting cycle", store.ErrInvalid)
	}
	return nil
}

func prepGroup(g *store.Group) error {
	if g.DisplayName == "" {
		return fmt.Errorf("%w: displayName is required", store.ErrInvalid)
	}
	return nil
}

// CreateGroup inserts g with its members and fills ID (if empty), Revision,
// CreatedAt and UpdatedAt. Members must exist (ErrInvalid); a taken ID or
// displayName yields ErrAlreadyExists.
func (s *Store) CreateGroup(ctx context.Context, g *store.Group) error {
	err := prepGroup(g)
	if err == nil {
		id := g.ID
		if id == "" {
			id = uuid.NewString()
		}
		now := s.stamp()
		var ms []store.Member
		err = s.write(ctx, func(tx pgx.Tx) error {
			if err := lockMembership(ctx, tx); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `INSERT INTO groups (`+groupCols+`, display_name_key)
				VALUES ($1, $2, $3, 1, $4, $4, $5)`, id, g.DisplayName, g.ExternalID, now,
				store.FoldName(g.DisplayName)); err != nil {
				return err
			}
			var err error
			if ms, err = resolveMembers(ctx, tx, id, g.Members); err != nil {
				return err
			}
			return replaceMembers(ctx, tx, id, ms)
		})
		if err == nil {
			g.ID, g.Members, g.Revision, g.CreatedAt, g.UpdatedAt = id, ms, 1, now, now
			return nil
		}
	}
	return fmt.Errorf("store: create group %q: %w", g.DisplayName, err)
}

// GetGroup returns the group with id and its direct members, or ErrNotFound.
func (s *Store) GetGroup(ctx context.Context, id string) (*store.Group, error) {
	g, err := s.getGroup(ctx, `id = $1`, id)
	if err != nil {
		return nil, fmt.Errorf("store: get group %q: %w", id, err)
	}
	return g, nil
}

// GetGroupByName returns the group whose displayName matches
// case-insensitively, or ErrNotFound.
func (s *Store) GetGroupByName(ctx context.Context, displayName string) (*store.Group, error) {
	g, err := s.getGroup(ctx, `display_name_key = $1`, store.FoldName(displayName))
	if err != nil {
		return nil, fmt.Errorf("store: get group by name %q: %w", displayName, err)
	}
	return g, nil
}

func (s *Store) getGroup(ctx context.Context, where string, arg any) (*store.Group, error) {
	var g *store.Group
	err := s.read(ctx, func(tx pgx.Tx) error {
		var err error
		g, err = scanGroup(tx.QueryRow(ctx, `SELECT `+groupCols+` FROM groups WHERE `+where, arg))
		if errors.Is(err, pgx.ErrNoRows) {
			return store.ErrNotFound
		}
		if err != nil {
			return err
		}
		return attachMembers(ctx, tx, []*store.Group{g})
	})
	return g, err
}

// ListGroups returns every group with its members, ordered by CreatedAt then ID.
func (s *Store) ListGroups(ctx context.Context) ([]*store.Group, error) {
	var groups []*store.Group
	err := s.read(ctx, func(tx pgx.Tx) error {
		var err error
		groups, err = queryGroups(ctx, tx, `SELECT `+groupCols+` FROM groups ORDER BY created_at, id COLLATE "C"`)
		if err != nil {
			return err
		}
		return attachMembers(ctx, tx, groups)
	})
	if err != nil {
		return nil, fmt.Errorf("store: list groups: %w", err)
	}
	return groups, nil
}

// UpdateGroup replaces the name, external id and whole member list of g.ID
// if g.Revision is current, then sets g.Revision, g.UpdatedAt, g.CreatedAt
// and g.Members to the stored values. A stale revision yields ErrConflict;
// a missing member or a nesting cycle yields ErrInvalid; in every error case
// nothing changes.
func (s *Store) UpdateGroup(ctx context.Context, g *store.Group) error {
	err := prepGroup(g)
	if err == nil {
		now := s.stamp()
		var (
			rev     int64
			created time.Time
			ms      []store.Member
		)
		err = s.write(ctx, func(tx pgx.Tx) error {
			if err := lockMembership(ctx, tx); err != nil {
				return err
			}
			err := tx.QueryRow(ctx, `UPDATE groups SET display_name = $1, display_name_key = $2,
					external_id = $3, revision = revision + 1, updated_at = $4
				WHERE id = $5 AND revision = $6
				RETURNING revision, created_at`,
				g.DisplayName, store.FoldName(g.DisplayName), g.ExternalID, now, g.ID, g.Revision,
			).Scan(&rev, &created)
			if errors.Is(err, pgx.ErrNoRows) {
				return notFoundOrConflict(ctx, tx, `SELECT 1 FROM groups WHERE id = $1`, g.ID)
			}
			if err != nil {
				return err
			}
			if ms, err = resolveMembers(ctx, tx, g.ID, g.Members); err != nil {
				return err
			}
			return replaceMembers(ctx, tx, g.ID, ms)
		})
		if err == nil {
			g.Members, g.Revision, g.CreatedAt, g.UpdatedAt = ms, rev, created.UTC(), now
			return nil
		}
	}
	return fmt.Errorf("store: update group %q: %w", g.ID, err)
}

// DeleteGroup removes the group and every membership naming it, and bumps
// the revision of the groups it was a member of.
func (s *Store) DeleteGroup(ctx context.Context, id string) error {
	now := s.stamp()
	err := s.write(ctx, func(tx pgx.Tx) error {
		if err := lockMembership(ctx, tx); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE groups SET revision = revision + 1, updated_at = $1
			WHERE id IN (SELECT group_id FROM group_members WHERE member_group_id = $2)`, now, id); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `DELETE FROM groups WHERE id = $1`, id)
		if err == nil && tag.RowsAffected() == 0 {
			err = store.ErrNotFound
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("store: delete group %q: %w", id, err)
	}
	return nil
}

// GroupsOfUser returns every group the user belongs to directly or through
// nesting, each once, ordered by DisplayName (bytewise) then ID.
func (s *Store) GroupsOfUser(ctx context.Context, userID string) ([]*store.Group, error) {
	var groups []*store.Group
	err := s.read(ctx, func(tx pgx.Tx) error {
		ok, err := exists(ctx, tx, `SELECT 1 FROM users WHERE id = $1`, userID)
		if err != nil {
			return err
		}
		if !ok {
			return store.ErrNotFound
		}
		groups, err = queryGroups(ctx, tx, `WITH RECURSIVE anc(id) AS (
				SELECT group_id FROM group_members WHERE user_id = $1
				UNION
				SELECT gm.group_id FROM group_members gm JOIN anc a ON gm.member_group_id = a.id
			)
			SELECT `+groupCols+` FROM groups WHERE id IN (SELECT id FROM anc)
			ORDER BY display_name COLLATE "C", id COLLATE "C"`, userID)
		if err != nil {
			return err
		}
		return attachMembers(ctx, tx, groups)
	})
	if err != nil {
		return nil, fmt.Errorf("store: groups of user %q: %w", userID, err)
	}
	return groups, nil
}

// ---- tokens ----

const tokenCols = `id, principal_id, kind, name, hash, created_at, expires_at, revoked_at, last_used_at`

func scanToken(row pgx.Row) (*store.Token, error) {
	var (
		t       store.Token
		kind    string
		expires *time.Time
	)
	if err := row.Scan(&t.ID, &t.PrincipalID, &kind, &t.Name, &t.Hash, &t.CreatedAt, &expires,
		&t.RevokedAt, &t.LastUsedAt); err != nil {
		return nil, err
	}
	t.Kind = store.TokenKind(kind)
	if len(t.Hash) == 0 {
		t.Hash = nil
	}
	t.CreatedAt = t.CreatedAt.UTC()
	if expires != nil {
		t.ExpiresAt = expires.UTC()
	}
	t.RevokedAt, t.LastUsedAt = utcPtr(t.RevokedAt), utcPtr(t.LastUsedAt)
	return &t, nil
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

// truncPtr is trunc for optional times; a zero time becomes nil.
func truncPtr(t *time.Time) *time.Time {
	if t == nil || t.IsZero() {
		return nil
	}
	v := trunc(*t)
	return &v
}

// CreateToken inserts t and fills its ID (if empty) and CreatedAt. The
// principal must exist (ErrInvalid).
func (s *Store) CreateToken(ctx context.Context, t *store.Token) error {
	err := prepToken(t)
	if err == nil {
		id := t.ID
		if id == "" {
			id = uuid.NewString()
		}
		now := s.stamp()
		hash := t.Hash
		if hash == nil {
			hash = []byte{}
		}
		_, err = s.pool.Exec(ctx, `INSERT INTO tokens (`+tokenCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
			id, t.PrincipalID, string(t.Kind), t.Name, hash, now, nullTime(t.ExpiresAt), t.RevokedAt, t.LastUsedAt)
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "23503" {
			err = fmt.Errorf("%w: principal %q does not exist", store.ErrInvalid, t.PrincipalID)
		}
		if err = mapErr(err); err == nil {
			t.ID, t.CreatedAt = id, now
			return nil
		}
	}
	return fmt.Errorf("store: create token %q: %w", t.Name, err)
}

// GetToken returns the token with id, or ErrNotFound.
func (s *Store) GetToken(ctx context.Context, id string) (*store.Token, error) {
	t, err := scanToken(s.pool.QueryRow(ctx, `SELECT `+tokenCols+` FROM tokens WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		err = store.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("store: get token %q: %w", id, err)
	}
	return t, nil
}

// ListTokens returns the principal's tokens ordered by CreatedAt then ID.
func (s *Store) ListTokens(ctx context.Context, principalID string) ([]*store.Token, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+tokenCols+` FROM tokens WHERE principal_id = $1
		ORDER BY created_at, id COLLATE "C"`, principalID)
	if err != nil {
		return nil, fmt.Errorf("store: list tokens of %q: %w", principalID, err)
	}
	tokens := []*store.Token{}
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("store: list tokens of %q: %w", principalID, err)
		}
		tokens = append(tokens, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: list tokens of %q: %w", principalID, err)
	}
	return tokens, nil
}

// RevokeToken sets RevokedAt to at (now if zero) unless the token is already
// revoked, in which case it does nothing.
func (s *Store) RevokeToken(ctx context.Context, id string, at time.Time) error {
	if at.IsZero() {
		at = s.stamp()
	}
	// One statement: the CTE tells "already revoked" from "no such token".
	var found bool
	err := s.pool.QueryRow(ctx, `WITH upd AS (
			UPDATE tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL RETURNING 1
		)
		SELECT EXISTS (SELECT 1 FROM upd) OR EXISTS (SELECT 1 FROM tokens WHERE id = $1)`,
		id, trunc(at)).Scan(&found)
	if err == nil && !found {
		err = store.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("store: revoke token %q: %w", id, err)
	}
	return nil
}

// TouchToken advances LastUsedAt to at; it never moves it backwards.
func (s *Store) TouchToken(ctx context.Context, id string, at time.Time) error {
	tag, err := s.pool.Exec(ctx, `UPDATE tokens SET last_used_at = GREATEST(last_used_at, $2) WHERE id = $1`,
		id, trunc(at))
	if err == nil && tag.RowsAffected() == 0 {
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
	err := s.pool.QueryRow(ctx, `SELECT value FROM meta WHERE key = $1`, key).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
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

// PutMeta stores value under key. With expect == nil it overwrites
// unconditionally. Otherwise it is a compare-and-swap: it succeeds only if
// the key is absent and *expect is empty, or the current value equals
// *expect; if not it returns ErrConflict and changes nothing. Each case is
// one atomic statement.
func (s *Store) PutMeta(ctx context.Context, key string, value []byte, expect *[]byte) error {
	if value == nil {
		value = []byte{}
	}
	var (
		tag pgconn.CommandTag
		err error
	)
	switch {
	case key == "":
		err = fmt.Errorf("%w: empty key", store.ErrInvalid)
	case expect == nil:
		tag, err = s.pool.Exec(ctx, `INSERT INTO meta (key, value) VALUES ($1, $2)
			ON CONFLICT (key) DO UPDATE SET value = excluded.value`, key, value)
	case len(*expect) == 0:
		tag, err = s.pool.Exec(ctx, `INSERT INTO meta (key, value) VALUES ($1, $2)
			ON CONFLICT (key) DO NOTHING`, key, value)
	default:
		tag, err = s.pool.Exec(ctx, `UPDATE meta SET value = $2 WHERE key = $1 AND value = $3`,
			key, value, *expect)
	}
	if err == nil && tag.RowsAffected() == 0 {
		err = store.ErrConflict
	}
	if err != nil {
		return fmt.Errorf("store: put meta %q: %w", key, mapErr(err))
	}
	return nil
}
