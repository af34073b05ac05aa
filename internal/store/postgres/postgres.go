// Package postgres implements store.Store on PostgreSQL through pgx/v5, for
// deployments where several gatehouse replicas share one metadata database.
// The queries are sqlstore's; they run through database/sql on top of the
// pgxpool (pgx/v5/stdlib), which keeps the pool's sizing.
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
	"database/sql"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"

	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/store/migrations"
	"github.com/gatehouse-dev/gatehouse/internal/store/sqlstore"
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
	*sqlstore.Store
	pool *pgxpool.Pool
	db   *sql.DB // database/sql view of pool, for sqlstore
}

var (
	_ store.Store              = (*Store)(nil)
	_ store.ManagedPolicyStore = (*Store)(nil)
	_ store.MountStore         = (*Store)(nil)
	_ store.LinkStore          = (*Store)(nil)
)

// dialect is PostgreSQL's: $n placeholders, byte order by COLLATE "C",
// timestamptz times. Write transactions run at READ COMMITTED and are
// retried on serialization failures and deadlocks; writers of the group
// membership graph take a SHARE ROW EXCLUSIVE lock on group_members (see
// package doc); multi-query reads share a REPEATABLE READ snapshot; single
// statements run on their own.
var dialect = sqlstore.Dialect{
	Numbered:       true,
	Bytewise:       ` COLLATE "C"`,
	Classify:       classify,
	WriteAttempts:  maxAttempts,
	LockMembership: `LOCK TABLE group_members IN SHARE ROW EXCLUSIVE MODE`,
	ReadTx:         &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true},
	Autocommit:     true,
}

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
	db := stdlib.OpenDBFromPool(pool)
	return &Store{Store: sqlstore.New(dialect, db, db), pool: pool, db: db}, nil
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
		rows, err := tx.Query(ctx, `SELECT version FROM schema_migrations`)
		if err != nil {
			return err
		}
		applied, err := pgx.CollectRows(rows, pgx.RowTo[int])
		if err != nil {
			return err
		}
		pending, err := migrations.Pending(ms, applied)
		if err != nil {
			return err
		}
		for _, m := range pending {
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
	err := s.db.Close()
	s.pool.Close()
	return err
}

// classify sorts PostgreSQL errors for sqlstore.
func classify(err error) sqlstore.ErrClass {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return sqlstore.ErrOther
	}
	switch pe.Code {
	case "23505": // unique_violation
		return sqlstore.ErrUnique
	case "23503": // foreign_key_violation
		return sqlstore.ErrForeignKey
	case "23514", "23502": // check_violation, not_null_violation
		return sqlstore.ErrConstraint
	case "40001", "40P01": // serialization_failure, deadlock_detected
		return sqlstore.ErrRetryable
	}
	return sqlstore.ErrOther
}
