// Package sqlite implements store.Store on an embedded SQLite database file
// through modernc.org/sqlite (pure Go, no cgo). It is gatehouse's default
// metadata store for a single replica.
//
// Durability: the database runs in WAL mode with synchronous=FULL, so a write
// that returned nil has been fsynced to the WAL and survives a crash or power
// loss. Foreign keys are enforced.
//
// Concurrency: every write runs in a BEGIN IMMEDIATE transaction on one
// dedicated connection, so writers of this process queue in Go instead of
// failing with SQLITE_BUSY; busy_timeout covers other processes sharing the
// file. Reads use a separate pool of query-only connections and, thanks to
// WAL, never block on or are blocked by the writer.
package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"runtime"
	"strings"
	"time"

	"github.com/google/uuid"
	msqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/store/migrations"
)

// busyTimeout is how long a connection waits for a lock held by another
// process (or by a checkpoint) before SQLite reports SQLITE_BUSY.
const busyTimeout = 10 * time.Second

// Store is a store.Store backed by one SQLite database file. It is safe for
// concurrent use; Close releases both connection pools.
type Store struct {
	w   *sql.DB // exactly one connection; all writes, BEGIN IMMEDIATE
	r   *sql.DB // read-only pool
	now func() time.Time
}

var _ store.Store = (*Store)(nil)

// Open opens (creating if needed) the SQLite database at path and applies
// pending schema migrations in one transaction. Re-opening an up-to-date
// database changes nothing. It fails if the database was migrated by a newer
// gatehouse than this one.
func Open(ctx context.Context, path string) (*Store, error) {
	if path == "" || strings.ContainsAny(path, "?#") || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("sqlite: open: invalid database path %q", path)
	}
	w, err := sql.Open("sqlite", dsn(path, true))
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxIdleTime(0)
	w.SetConnMaxLifetime(0)
	// The writer connects first: it switches the file to WAL mode before any
	// reader looks at it, and migrates.
	if err := migrate(ctx, w); err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	r, err := sql.Open("sqlite", dsn(path, false))
	if err != nil {
		_ = w.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	n := max(4, runtime.NumCPU())
	r.SetMaxOpenConns(n)
	r.SetMaxIdleConns(n)
	if err := r.PingContext(ctx); err != nil {
		_ = w.Close()
		_ = r.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	return &Store{w: w, r: r, now: time.Now}, nil
}

func dsn(path string, write bool) string {
	q := url.Values{}
	q.Add("_pragma", fmt.Sprintf("busy_timeout(%d)", busyTimeout.Milliseconds()))
	q.Add("_pragma", "foreign_keys(1)")
	q.Add("_pragma", "synchronous(FULL)")
	if write {
		q.Add("_pragma", "journal_mode(WAL)")
		q.Set("_txlock", "immediate")
	} else {
		q.Add("_pragma", "query_only(1)")
	}
	return path + "?" + q.Encode()
}

// migrate applies pending migrations inside one BEGIN IMMEDIATE transaction,
// which also excludes other processes migrating the same file.
func migrate(ctx context.Context, db *sql.DB) error {
	ms, err := migrations.Load(migrations.SQLite)
	if err != nil {
		return err
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		name       TEXT NOT NULL,
		applied_at INTEGER NOT NULL
	) STRICT`); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	var cur int
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&cur); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if cur > len(ms) {
		return fmt.Errorf("migrate: database schema version %d is newer than this binary supports (%d)", cur, len(ms))
	}
	for _, m := range ms[cur:] {
		if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
			return fmt.Errorf("migrate: version %d (%s): %w", m.Version, m.Name, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
			m.Version, m.Name, time.Now().UnixMicro()); err != nil {
			return fmt.Errorf("migrate: version %d (%s): %w", m.Version, m.Name, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	return nil
}

// Ping checks that a read connection works.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.r.PingContext(ctx); err != nil {
		return fmt.Errorf("sqlite: ping: %w", err)
	}
	return nil
}

// Close closes both connection pools. The store must not be used afterwards.
func (s *Store) Close() error {
	return errors.Join(s.r.Close(), s.w.Close())
}

// stamp returns the current time as it will be stored: UTC, microseconds.
func (s *Store) stamp() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

// write runs fn in a write transaction and commits it. fn must use only tx:
// the writer pool has a single connection.
func (s *Store) write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return mapErr(err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return mapErr(err)
	}
	return mapErr(tx.Commit())
}

// read runs fn in a read transaction, so that it sees one snapshot.
func (s *Store) read(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.r.BeginTx(ctx, nil)
	if err != nil {
		return mapErr(err)
	}
	defer func() { _ = tx.Rollback() }()
	return mapErr(fn(tx))
}

// mapErr turns constraint violations into domain errors; other errors pass
// through unchanged.
func mapErr(err error) error {
	var se *msqlite.Error
	if err == nil || !errors.As(err, &se) {
		return err
	}
	switch se.Code() {
	case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		return store.ErrAlreadyExists
	case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
		return fmt.Errorf("%w: reference to a missing record", store.ErrInvalid)
	case sqlite3.SQLITE_CONSTRAINT_CHECK, sqlite3.SQLITE_CONSTRAINT_NOTNULL:
		return fmt.Errorf("%w: %v", store.ErrInvalid, err)
	}
	return err
}

type scanner interface{ Scan(dest ...any) error }

func micros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(v int64) time.Time { return time.UnixMicro(v).UTC() }

// trunc normalises a caller-supplied time to what the store keeps.
func trunc(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC().Truncate(time.Microsecond)
}

func nullMicros(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixMicro(), Valid: true}
}

func nullMicrosPtr(t *time.Time) sql.NullInt64 {
	if t == nil {
		return sql.NullInt64{}
	}
	return nullMicros(*t)
}

func timeOf(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return fromMicros(v.Int64)
}

func timePtrOf(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := fromMicros(v.Int64)
	return &t
}

// exists reports whether query (selecting one row by id) finds a row.
func exists(ctx context.Context, tx *sql.Tx, query string, args ...any) (bool, error) {
	var one int
	err := tx.QueryRowContext(ctx, query, args...).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// ---- users ----

const userCols = `id, kind, user_name, external_id, display_name, given_name, family_name, title,
	emails, active, attributes, password_hash, revision, created_at, updated_at`

func scanUser(sc scanner) (*store.User, error) {
	var (
		u                store.User
		kind, em, attrs  string
		created, updated int64
	)
	if err := sc.Scan(&u.ID, &kind, &u.UserName, &u.ExternalID, &u.DisplayName, &u.GivenName, &u.FamilyName,
		&u.Title, &em, &u.Active, &attrs, &u.PasswordHash, &u.Revision, &created, &updated); err != nil {
		return nil, err
	}
	u.Kind = store.PrincipalKind(kind)
	if err := decodeUserJSON(&u, em, attrs); err != nil {
		return nil, err
	}
	u.CreatedAt, u.UpdatedAt = fromMicros(created), fromMicros(updated)
	return &u, nil
}

func decodeUserJSON(u *store.User, emails, attrs string) error {
	if err := json.Unmarshal([]byte(emails), &u.Emails); err != nil {
		return fmt.Errorf("decode emails of user %s: %w", u.ID, err)
	}
	if err := json.Unmarshal([]byte(attrs), &u.Attributes); err != nil {
		return fmt.Errorf("decode attributes of user %s: %w", u.ID, err)
	}
	if len(u.Emails) == 0 {
		u.Emails = nil
	}
	if len(u.Attributes) == 0 {
		u.Attributes = nil
	}
	return nil
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
		err = s.write(ctx, func(tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, `INSERT INTO users (`+userCols+`, user_name_key)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?)`,
				id, string(u.Kind), u.UserName, u.ExternalID, u.DisplayName, u.GivenName, u.FamilyName, u.Title,
				emails, u.Active, attrs, u.PasswordHash, micros(now), micros(now), store.FoldName(u.UserName))
			return err
		})
		if err == nil {
			u.ID, u.Revision, u.CreatedAt, u.UpdatedAt = id, 1, now, now
			return nil
		}
	}
	return fmt.Errorf("store: create user %q: %w", u.UserName, err)
}

// GetUser returns the user with id, or ErrNotFound.
func (s *Store) GetUser(ctx context.Context, id string) (*store.User, error) {
	u, err := scanUser(s.r.QueryRowContext(ctx, `SELECT `+userCols+` FROM users WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
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
	u, err := scanUser(s.r.QueryRowContext(ctx, `SELECT `+userCols+` FROM users WHERE user_name_key = ?`,
		store.FoldName(userName)))
	if errors.Is(err, sql.ErrNoRows) {
		err = store.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("store: get user by name %q: %w", userName, err)
	}
	return u, nil
}

// ListUsers returns every principal ordered by CreatedAt then ID.
func (s *Store) ListUsers(ctx context.Context) ([]*store.User, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+userCols+` FROM users ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("store: list users: %w", err)
	}
	defer rows.Close()
	users := []*store.User{}
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
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
		var rev, created int64
		err = s.write(ctx, func(tx *sql.Tx) error {
			err := tx.QueryRowContext(ctx, `UPDATE users SET kind = ?, user_name = ?, user_name_key = ?,
					external_id = ?, display_name = ?, given_name = ?, family_name = ?, title = ?,
					emails = ?, active = ?, attributes = ?, password_hash = ?,
					revision = revision + 1, updated_at = ?
				WHERE id = ? AND revision = ?
				RETURNING revision, created_at`,
				string(u.Kind), u.UserName, store.FoldName(u.UserName), u.ExternalID, u.DisplayName, u.GivenName,
				u.FamilyName, u.Title, emails, u.Active, attrs, u.PasswordHash, micros(now), u.ID, u.Revision,
			).Scan(&rev, &created)
			if errors.Is(err, sql.ErrNoRows) {
				return notFoundOrConflict(ctx, tx, `SELECT 1 FROM users WHERE id = ?`, u.ID)
			}
			return err
		})
		if err == nil {
			u.Revision, u.CreatedAt, u.UpdatedAt = rev, fromMicros(created), now
			return nil
		}
	}
	return fmt.Errorf("store: update user %q: %w", u.ID, err)
}

// notFoundOrConflict explains why a revision-guarded UPDATE matched no row.
func notFoundOrConflict(ctx context.Context, tx *sql.Tx, query, id string) error {
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
	err := s.write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE groups SET revision = revision + 1, updated_at = ?
			WHERE id IN (SELECT group_id FROM group_members WHERE user_id = ?)`, micros(now), id); err != nil {
			return err
		}
		// Memberships and tokens go by ON DELETE CASCADE.
		res, err := tx.ExecContext(ctx, `DELETE FROM users WHERE id = ?`, id)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return store.ErrNotFound
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: delete user %q: %w", id, err)
	}
	return nil
}

// ---- groups ----

const groupCols = `id, display_name, external_id, revision, created_at, updated_at`

func scanGroup(sc scanner) (*store.Group, error) {
	var (
		g                store.Group
		created, updated int64
	)
	if err := sc.Scan(&g.ID, &g.DisplayName, &g.ExternalID, &g.Revision, &created, &updated); err != nil {
		return nil, err
	}
	g.CreatedAt, g.UpdatedAt = fromMicros(created), fromMicros(updated)
	g.Members = []store.Member{}
	return &g, nil
}

// members loads the direct members of g, in stored order.
func members(ctx context.Context, tx *sql.Tx, g *store.Group) error {
	rows, err := tx.QueryContext(ctx, `SELECT user_id, member_group_id FROM group_members
		WHERE group_id = ? ORDER BY position`, g.ID)
	if err != nil {
		return err
	}
	defer rows.Close()
	g.Members = []store.Member{}
	for rows.Next() {
		var uid, gid sql.NullString
		if err := rows.Scan(&uid, &gid); err != nil {
			return err
		}
		g.Members = append(g.Members, memberOf(uid, gid))
	}
	return rows.Err()
}

func memberOf(uid, gid sql.NullString) store.Member {
	if uid.Valid {
		return store.Member{ID: uid.String, Type: store.MemberUser}
	}
	return store.Member{ID: gid.String, Type: store.MemberGroup}
}

// resolveMembers checks that every member exists, fills in empty types and
// drops duplicates. A group that names itself is a cycle.
func resolveMembers(ctx context.Context, tx *sql.Tx, groupID string, in []store.Member) ([]store.Member, error) {
	out := make([]store.Member, 0, len(in))
	seen := make(map[store.Member]bool, len(in))
	for _, m := range in {
		if m.ID == "" {
			return nil, fmt.Errorf("%w: member without id", store.ErrInvalid)
		}
		isUser, err := exists(ctx, tx, `SELECT 1 FROM users WHERE id = ?`, m.ID)
		if err != nil {
			return nil, err
		}
		isGroup := false
		if !isUser || m.Type == store.MemberGroup {
			if isGroup, err = exists(ctx, tx, `SELECT 1 FROM groups WHERE id = ?`, m.ID); err != nil {
				return nil, err
			}
		}
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
		if !seen[m] {
			seen[m] = true
			out = append(out, m)
		}
	}
	return out, nil
}

// replaceMembers stores ms as the direct members of groupID and rejects the
// result if it makes groupID reachable from itself.
func replaceMembers(ctx context.Context, tx *sql.Tx, groupID string, ms []store.Member) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM group_members WHERE group_id = ?`, groupID); err != nil {
		return err
	}
	for i, m := range ms {
		var uid, gid sql.NullString
		if m.Type == store.MemberUser {
			uid = sql.NullString{String: m.ID, Valid: true}
		} else {
			gid = sql.NullString{String: m.ID, Valid: true}
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO group_members (group_id, position, user_id, member_group_id)
			VALUES (?, ?, ?, ?)`, groupID, i, uid, gid); err != nil {
			return err
		}
	}
	var cycle bool
	if err := tx.QueryRowContext(ctx, `WITH RECURSIVE reach(id) AS (
			SELECT member_group_id FROM group_members WHERE group_id = ? AND member_group_id IS NOT NULL
			UNION
			SELECT gm.member_group_id FROM group_members gm JOIN reach r ON gm.group_id = r.id
			WHERE gm.member_group_id IS NOT NULL
		)
		SELECT EXISTS (SELECT 1 FROM reach WHERE id = ?)`, groupID, groupID).Scan(&cycle); err != nil {
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
		err = s.write(ctx, func(tx *sql.Tx) error {
			if _, err := tx.ExecContext(ctx, `INSERT INTO groups (`+groupCols+`, display_name_key)
				VALUES (?, ?, ?, 1, ?, ?, ?)`, id, g.DisplayName, g.ExternalID, micros(now), micros(now),
				store.FoldName(g.DisplayName)); err != nil {
				return mapErr(err)
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
	g, err := s.getGroup(ctx, `id = ?`, id)
	if err != nil {
		return nil, fmt.Errorf("store: get group %q: %w", id, err)
	}
	return g, nil
}

// GetGroupByName returns the group whose displayName matches
// case-insensitively, or ErrNotFound.
func (s *Store) GetGroupByName(ctx context.Context, displayName string) (*store.Group, error) {
	g, err := s.getGroup(ctx, `display_name_key = ?`, store.FoldName(displayName))
	if err != nil {
		return nil, fmt.Errorf("store: get group by name %q: %w", displayName, err)
	}
	return g, nil
}

func (s *Store) getGroup(ctx context.Context, where string, arg any) (*store.Group, error) {
	var g *store.Group
	err := s.read(ctx, func(tx *sql.Tx) error {
		var err error
		g, err = scanGroup(tx.QueryRowContext(ctx, `SELECT `+groupCols+` FROM groups WHERE `+where, arg))
		if errors.Is(err, sql.ErrNoRows) {
			return store.ErrNotFound
		}
		if err != nil {
			return err
		}
		return members(ctx, tx, g)
	})
	return g, err
}

// ListGroups returns every group with its members, ordered by CreatedAt then ID.
func (s *Store) ListGroups(ctx context.Context) ([]*store.Group, error) {
	var groups []*store.Group
	err := s.read(ctx, func(tx *sql.Tx) error {
		var err error
		groups, err = queryGroups(ctx, tx, `SELECT `+groupCols+` FROM groups ORDER BY created_at, id`)
		if err != nil {
			return err
		}
		byID := make(map[string]*store.Group, len(groups))
		for _, g := range groups {
			byID[g.ID] = g
		}
		rows, err := tx.QueryContext(ctx, `SELECT group_id, user_id, member_group_id FROM group_members
			ORDER BY group_id, position`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				gid      string
				uid, mid sql.NullString
			)
			if err := rows.Scan(&gid, &uid, &mid); err != nil {
				return err
			}
			if g := byID[gid]; g != nil {
				g.Members = append(g.Members, memberOf(uid, mid))
			}
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("store: list groups: %w", err)
	}
	return groups, nil
}

func queryGroups(ctx context.Context, tx *sql.Tx, query string, args ...any) ([]*store.Group, error) {
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	groups := []*store.Group{}
	for rows.Next() {
		g, err := scanGroup(rows)
		if err != nil {
			return nil, err
		}
		groups = append(groups, g)
	}
	return groups, rows.Err()
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
			rev, created int64
			ms           []store.Member
		)
		err = s.write(ctx, func(tx *sql.Tx) error {
			err := tx.QueryRowContext(ctx, `UPDATE groups SET display_name = ?, display_name_key = ?,
					external_id = ?, revision = revision + 1, updated_at = ?
				WHERE id = ? AND revision = ?
				RETURNING revision, created_at`,
				g.DisplayName, store.FoldName(g.DisplayName), g.ExternalID, micros(now), g.ID, g.Revision,
			).Scan(&rev, &created)
			if errors.Is(err, sql.ErrNoRows) {
				return notFoundOrConflict(ctx, tx, `SELECT 1 FROM groups WHERE id = ?`, g.ID)
			}
			if err != nil {
				return mapErr(err)
			}
			if ms, err = resolveMembers(ctx, tx, g.ID, g.Members); err != nil {
				return err
			}
			return replaceMembers(ctx, tx, g.ID, ms)
		})
		if err == nil {
			g.Members, g.Revision, g.CreatedAt, g.UpdatedAt = ms, rev, fromMicros(created), now
			return nil
		}
	}
	return fmt.Errorf("store: update group %q: %w", g.ID, err)
}

// DeleteGroup removes the group and every membership naming it, and bumps
// the revision of the groups it was a member of.
func (s *Store) DeleteGroup(ctx context.Context, id string) error {
	now := s.stamp()
	err := s.write(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE groups SET revision = revision + 1, updated_at = ?
			WHERE id IN (SELECT group_id FROM group_members WHERE member_group_id = ?)`, micros(now), id); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM groups WHERE id = ?`, id)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return store.ErrNotFound
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: delete group %q: %w", id, err)
	}
	return nil
}

// GroupsOfUser returns every group the user belongs to directly or through
// nesting, each once, ordered by DisplayName then ID.
func (s *Store) GroupsOfUser(ctx context.Context, userID string) ([]*store.Group, error) {
	var groups []*store.Group
	err := s.read(ctx, func(tx *sql.Tx) error {
		ok, err := exists(ctx, tx, `SELECT 1 FROM users WHERE id = ?`, userID)
		if err != nil {
			return err
		}
		if !ok {
			return store.ErrNotFound
		}
		groups, err = queryGroups(ctx, tx, `WITH RECURSIVE anc(id) AS (
				SELECT group_id FROM group_members WHERE user_id = ?
				UNION
				SELECT gm.group_id FROM group_members gm JOIN anc a ON gm.member_group_id = a.id
			)
			SELECT `+groupCols+` FROM groups WHERE id IN (SELECT id FROM anc)
			ORDER BY display_name, id`, userID)
		if err != nil {
			return err
		}
		for _, g := range groups {
			if err := members(ctx, tx, g); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: groups of user %q: %w", userID, err)
	}
	return groups, nil
}

// ---- tokens ----

const tokenCols = `id, principal_id, kind, name, hash, created_at, expires_at, revoked_at, last_used_at`

func scanToken(sc scanner) (*store.Token, error) {
	var (
		t                          store.Token
		kind                       string
		created                    int64
		expires, revoked, lastUsed sql.NullInt64
	)
	if err := sc.Scan(&t.ID, &t.PrincipalID, &kind, &t.Name, &t.Hash, &created, &expires, &revoked, &lastUsed); err != nil {
		return nil, err
	}
	t.Kind = store.TokenKind(kind)
	if len(t.Hash) == 0 {
		t.Hash = nil
	}
	t.CreatedAt = fromMicros(created)
	t.ExpiresAt = timeOf(expires)
	t.RevokedAt = timePtrOf(revoked)
	t.LastUsedAt = timePtrOf(lastUsed)
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
		err = s.write(ctx, func(tx *sql.Tx) error {
			ok, err := exists(ctx, tx, `SELECT 1 FROM users WHERE id = ?`, t.PrincipalID)
			if err != nil {
				return err
			}
			if !ok {
				return fmt.Errorf("%w: principal %q does not exist", store.ErrInvalid, t.PrincipalID)
			}
			_, err = tx.ExecContext(ctx, `INSERT INTO tokens (`+tokenCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				id, t.PrincipalID, string(t.Kind), t.Name, hash, micros(now), nullMicros(t.ExpiresAt),
				nullMicrosPtr(t.RevokedAt), nullMicrosPtr(t.LastUsedAt))
			return err
		})
		if err == nil {
			t.ID, t.CreatedAt = id, now
			return nil
		}
	}
	return fmt.Errorf("store: create token %q: %w", t.Name, err)
}

// GetToken returns the token with id, or ErrNotFound.
func (s *Store) GetToken(ctx context.Context, id string) (*store.Token, error) {
	t, err := scanToken(s.r.QueryRowContext(ctx, `SELECT `+tokenCols+` FROM tokens WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		err = store.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("store: get token %q: %w", id, err)
	}
	return t, nil
}

// ListTokens returns the principal's tokens ordered by CreatedAt then ID.
func (s *Store) ListTokens(ctx context.Context, principalID string) ([]*store.Token, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+tokenCols+` FROM tokens WHERE principal_id = ?
		ORDER BY created_at, id`, principalID)
	if err != nil {
		return nil, fmt.Errorf("store: list tokens of %q: %w", principalID, err)
	}
	defer rows.Close()
	tokens := []*store.Token{}
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
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
	err := s.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL`,
			micros(trunc(at)), id)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n > 0 {
			return err
		}
		ok, err := exists(ctx, tx, `SELECT 1 FROM tokens WHERE id = ?`, id)
		if err == nil && !ok {
			err = store.ErrNotFound
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("store: revoke token %q: %w", id, err)
	}
	return nil
}

// TouchToken advances LastUsedAt to at; it never moves it backwards.
func (s *Store) TouchToken(ctx context.Context, id string, at time.Time) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		v := micros(trunc(at))
		res, err := tx.ExecContext(ctx, `UPDATE tokens SET last_used_at = MAX(COALESCE(last_used_at, ?), ?)
			WHERE id = ?`, v, v, id)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return store.ErrNotFound
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: touch token %q: %w", id, err)
	}
	return nil
}

// ---- meta ----

// GetMeta returns the value stored under key, or ErrNotFound.
func (s *Store) GetMeta(ctx context.Context, key string) ([]byte, error) {
	var v []byte
	err := s.r.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = ?`, key).Scan(&v)
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

// PutMeta stores value under key. With expect == nil it overwrites
// unconditionally. Otherwise it is a compare-and-swap: it succeeds only if
// the key is absent and *expect is empty, or the current value equals
// *expect; if not it returns ErrConflict and changes nothing.
func (s *Store) PutMeta(ctx context.Context, key string, value []byte, expect *[]byte) error {
	if value == nil {
		value = []byte{}
	}
	var err error
	if key == "" {
		err = fmt.Errorf("%w: empty key", store.ErrInvalid)
	} else {
		err = s.write(ctx, func(tx *sql.Tx) error {
			var (
				res sql.Result
				err error
			)
			switch {
			case expect == nil:
				res, err = tx.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES (?, ?)
					ON CONFLICT (key) DO UPDATE SET value = excluded.value`, key, value)
			case len(*expect) == 0:
				res, err = tx.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES (?, ?)
					ON CONFLICT (key) DO NOTHING`, key, value)
			default:
				res, err = tx.ExecContext(ctx, `UPDATE meta SET value = ? WHERE key = ? AND value = ?`,
					value, key, *expect)
			}
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil {
				return err
			} else if n == 0 {
				return store.ErrConflict
			}
			return nil
		})
	}
	if err != nil {
		return fmt.Errorf("store: put meta %q: %w", key, err)
	}
	return nil
}
