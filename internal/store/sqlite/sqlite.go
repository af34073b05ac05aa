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
	"errors"
	"fmt"
	"net/url"
	"runtime"
	"strings"
	"time"

	msqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/store/migrations"
	"github.com/gatehouse-dev/gatehouse/internal/store/sqlstore"
)

// busyTimeout is how long a connection waits for a lock held by another
// process (or by a checkpoint) before SQLite reports SQLITE_BUSY.
const busyTimeout = 10 * time.Second

// Store is a store.Store backed by one SQLite database file. It is safe for
// concurrent use; Close releases both connection pools. The queries are
// sqlstore's, in the dialect below.
type Store struct {
	*sqlstore.Store
	w *sql.DB // exactly one connection; all writes, BEGIN IMMEDIATE
	r *sql.DB // read-only pool
}

var (
	_ store.Store              = (*Store)(nil)
	_ store.ManagedPolicyStore = (*Store)(nil)
	_ store.MountStore         = (*Store)(nil)
	_ store.LinkStore          = (*Store)(nil)
)

// dialect is SQLite's: ? placeholders, binary collation, times as INTEGER
// microseconds, and no retries or membership lock, since every write
// transaction already runs BEGIN IMMEDIATE on the single writer connection.
var dialect = sqlstore.Dialect{
	Time:     func(t time.Time) any { return t.UnixMicro() },
	Classify: classify,
}

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
	return &Store{Store: sqlstore.New(dialect, w, r), w: w, r: r}, nil
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
	applied, err := appliedVersions(ctx, tx)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	pending, err := migrations.Pending(ms, applied)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	for _, m := range pending {
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

// appliedVersions lists the versions recorded in schema_migrations.
func appliedVersions(ctx context.Context, tx *sql.Tx) ([]int, error) {
	rows, err := tx.QueryContext(ctx, `SELECT version FROM schema_migrations`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var vs []int
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		vs = append(vs, v)
	}
	return vs, rows.Err()
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

// classify sorts SQLite errors for sqlstore.
func classify(err error) sqlstore.ErrClass {
	var se *msqlite.Error
	if !errors.As(err, &se) {
		return sqlstore.ErrOther
	}
	switch se.Code() {
	case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
		return sqlstore.ErrUnique
	case sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY:
		return sqlstore.ErrForeignKey
	case sqlite3.SQLITE_CONSTRAINT_CHECK, sqlite3.SQLITE_CONSTRAINT_NOTNULL:
		return sqlstore.ErrConstraint
	}
	return sqlstore.ErrOther
}
