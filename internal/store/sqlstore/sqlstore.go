// Package sqlstore holds the one implementation of store.Store,
// store.ManagedPolicyStore and store.MountStore shared by the SQL backends
// (store/sqlite and store/postgres): the SQL text, the row scanning and the
// CRUD logic. A backend opens and migrates its database and describes itself
// with a Dialect, the small seam through which the databases differ:
// placeholder style, byte-order collation, how times are stored, error
// classification, transaction options, write retries and the lock that
// serializes writers of the group membership graph.
//
// Queries are written once, with ? placeholders, in SQL both databases
// accept. Times are passed through Dialect.Time and read back by timeCol,
// which accepts either representation (integer microseconds or a time).
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// ErrClass is what a Dialect makes of a database error.
type ErrClass int

const (
	// ErrOther is any error the store passes through unchanged.
	ErrOther ErrClass = iota
	// ErrUnique is a unique or primary key violation (store.ErrAlreadyExists).
	ErrUnique
	// ErrForeignKey is a foreign key violation (store.ErrInvalid).
	ErrForeignKey
	// ErrConstraint is a check or not-null violation (store.ErrInvalid).
	ErrConstraint
	// ErrRetryable aborted a transaction that may succeed if run again
	// (serialization failure, deadlock).
	ErrRetryable
)

// Dialect describes how a database differs from the SQL the store writes.
type Dialect struct {
	// Numbered rewrites the ? placeholders of every query to $1, $2, ...
	Numbered bool
	// Bytewise follows a text column in ORDER BY to make it sort by bytes
	// (e.g. ` COLLATE "C"`); empty if the database already does.
	Bytewise string
	// Time converts a time (UTC, microseconds) to the query argument the
	// database stores.
	Time func(time.Time) any
	// Classify sorts a database error; nil means ErrOther for every error.
	Classify func(error) ErrClass
	// WriteAttempts bounds how often a write transaction is run when it
	// fails with ErrRetryable; 0 or 1 means once.
	WriteAttempts int
	// LockMembership, if set, is run first in every transaction that changes
	// the group membership graph, so that such writers are serialized and
	// the cycle check sees every committed edge.
	LockMembership string
	// ReadTx are the options of the transactions of multi-query reads.
	ReadTx *sql.TxOptions
	// Autocommit runs single-statement writes outside an explicit
	// transaction; otherwise each runs in a write transaction.
	Autocommit bool
}

// Store implements the stores on database/sql handles: w takes every write,
// r every read (they may be the same pool). It is safe for concurrent use.
// It closes neither handle: the backend owns them.
type Store struct {
	d   Dialect
	w   *sql.DB
	r   *sql.DB
	now func() time.Time
}

// New returns a Store writing through w and reading through r.
func New(d Dialect, w, r *sql.DB) *Store {
	if d.Time == nil {
		d.Time = func(t time.Time) any { return t }
	}
	if d.Classify == nil {
		d.Classify = func(error) ErrClass { return ErrOther }
	}
	return &Store{d: d, w: w, r: r, now: time.Now}
}

// ---- statements ----

// querier is what *sql.DB and *sql.Tx have in common.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// conn runs the store's queries on a pool or transaction, in the dialect.
type conn struct {
	q querier
	d *Dialect
}

func (c conn) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	return c.q.ExecContext(ctx, c.d.rebind(query), args...)
}

func (c conn) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	return c.q.QueryContext(ctx, c.d.rebind(query), args...)
}

func (c conn) row(ctx context.Context, query string, args ...any) *sql.Row {
	return c.q.QueryRowContext(ctx, c.d.rebind(query), args...)
}

// affected runs a statement and returns how many rows it changed.
func (c conn) affected(ctx context.Context, query string, args ...any) (int64, error) {
	res, err := c.exec(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// rebind rewrites ? placeholders for databases with numbered ones. The
// store's SQL has no ? inside literals.
func (d *Dialect) rebind(query string) string {
	if !d.Numbered || !strings.Contains(query, "?") {
		return query
	}
	var b strings.Builder
	b.Grow(len(query) + 16)
	n := 0
	for i := 0; i < len(query); i++ {
		if query[i] == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(query[i])
	}
	return b.String()
}

// marks returns n comma-separated placeholders.
func marks(n int) string {
	return strings.TrimSuffix(strings.Repeat("?, ", n), ", ")
}

// bytewise returns col followed by the dialect's byte-order collation.
func (s *Store) bytewise(col string) string { return col + s.d.Bytewise }

// reader runs single queries on the read pool.
func (s *Store) reader() conn { return conn{q: s.r, d: &s.d} }

// ---- transactions and errors ----

// write runs fn in a write transaction and commits it, running it again
// from the start (up to Dialect.WriteAttempts times) if the database aborts
// it as retryable. fn must use only the conn it is given.
func (s *Store) write(ctx context.Context, fn func(c conn) error) error {
	for attempt := 1; ; attempt++ {
		err := s.writeOnce(ctx, fn)
		if attempt < s.d.WriteAttempts && s.d.Classify(err) == ErrRetryable {
			continue
		}
		return s.mapErr(err)
	}
}

func (s *Store) writeOnce(ctx context.Context, fn func(c conn) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(conn{q: tx, d: &s.d}); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// writeMembership is write for transactions that change the membership
// graph: they take Dialect.LockMembership first.
func (s *Store) writeMembership(ctx context.Context, fn func(c conn) error) error {
	return s.write(ctx, func(c conn) error {
		if s.d.LockMembership != "" {
			if _, err := c.exec(ctx, s.d.LockMembership); err != nil {
				return err
			}
		}
		return fn(c)
	})
}

// read runs fn in a read transaction, so that its queries see one snapshot.
func (s *Store) read(ctx context.Context, fn func(c conn) error) error {
	tx, err := s.r.BeginTx(ctx, s.d.ReadTx)
	if err != nil {
		return s.mapErr(err)
	}
	defer func() { _ = tx.Rollback() }()
	return s.mapErr(fn(conn{q: tx, d: &s.d}))
}

// exec runs one write statement and returns how many rows it changed.
func (s *Store) exec(ctx context.Context, query string, args ...any) (int64, error) {
	if s.d.Autocommit {
		n, err := conn{q: s.w, d: &s.d}.affected(ctx, query, args...)
		return n, s.mapErr(err)
	}
	var n int64
	err := s.write(ctx, func(c conn) error {
		var err error
		n, err = c.affected(ctx, query, args...)
		return err
	})
	return n, err
}

// errMissingRef is what a foreign key violation becomes.
var errMissingRef = fmt.Errorf("%w: reference to a missing record", store.ErrInvalid)

// mapErr turns constraint violations into domain errors; other errors pass
// through unchanged.
func (s *Store) mapErr(err error) error {
	if err == nil {
		return nil
	}
	switch s.d.Classify(err) {
	case ErrUnique:
		return store.ErrAlreadyExists
	case ErrForeignKey:
		return errMissingRef
	case ErrConstraint:
		return fmt.Errorf("%w: %v", store.ErrInvalid, err)
	}
	return err
}

// ---- shared record operations ----

type scanner interface{ Scan(dest ...any) error }

// getOne scans the row query selects, or yields ErrNotFound.
func getOne[T any](ctx context.Context, c conn, scan func(scanner) (*T, error), query string, args ...any) (*T, error) {
	v, err := scan(c.row(ctx, query, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, store.ErrNotFound
	}
	return v, err
}

// list scans every row query selects; none is an empty, non-nil slice.
func list[T any](ctx context.Context, c conn, scan func(scanner) (*T, error), query string, args ...any) ([]*T, error) {
	rows, err := c.query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []*T{}
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// exists reports whether query (a SELECT) finds a row.
func exists(ctx context.Context, c conn, query string, args ...any) (bool, error) {
	var ok bool
	err := c.row(ctx, `SELECT EXISTS (`+query+`)`, args...).Scan(&ok)
	return ok, err
}

// updateRow runs the revision-guarded update of record id in table: set
// (column = ? assignments, with args) plus the revision bump and updated_at.
// It returns the stored revision and creation time; a row at another
// revision yields ErrConflict, no row ErrNotFound.
func (s *Store) updateRow(ctx context.Context, c conn, table, set string, now time.Time, id string, rev int64,
	args ...any) (int64, time.Time, error) {
	var (
		newRev  int64
		created time.Time
	)
	args = append(args, s.d.Time(now), id, rev)
	err := c.row(ctx, `UPDATE `+table+` SET `+set+`, revision = revision + 1, updated_at = ?
		WHERE id = ? AND revision = ?
		RETURNING revision, created_at`, args...).Scan(&newRev, timeCol{&created})
	if errors.Is(err, sql.ErrNoRows) {
		ok, xerr := exists(ctx, c, `SELECT 1 FROM `+table+` WHERE id = ?`, id)
		switch {
		case xerr != nil:
			err = xerr
		case ok:
			err = store.ErrConflict
		default:
			err = store.ErrNotFound
		}
	}
	return newRev, created, err
}

// update is updateRow in a write transaction of its own.
func (s *Store) update(ctx context.Context, table, set string, now time.Time, id string, rev int64,
	args ...any) (newRev int64, created time.Time, err error) {
	err = s.write(ctx, func(c conn) error {
		var err error
		newRev, created, err = s.updateRow(ctx, c, table, set, now, id, rev, args...)
		return err
	})
	return newRev, created, err
}

// deleteByID deletes record id from table, or yields ErrNotFound.
func (s *Store) deleteByID(ctx context.Context, table, id string) error {
	n, err := s.exec(ctx, `DELETE FROM `+table+` WHERE id = ?`, id)
	if err == nil && n == 0 {
		err = store.ErrNotFound
	}
	return err
}

// newID returns id, or a fresh UUID if it is empty.
func newID(id string) string {
	if id == "" {
		return uuid.NewString()
	}
	return id
}

// ---- times ----

// stamp returns the current time as it will be stored: UTC, microseconds.
func (s *Store) stamp() time.Time { return s.now().UTC().Truncate(time.Microsecond) }

// ts is the query argument for t.
func (s *Store) ts(t time.Time) any { return s.d.Time(t) }

// nullTS is ts with the zero time as NULL.
func (s *Store) nullTS(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return s.d.Time(t)
}

// ptrTS is ts with nil as NULL.
func (s *Store) ptrTS(t *time.Time) any {
	if t == nil {
		return nil
	}
	return s.nullTS(*t)
}

// trunc normalises a caller-supplied time to what the store keeps.
func trunc(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	return t.UTC().Truncate(time.Microsecond)
}

// truncPtr is trunc for optional times; a zero time becomes nil.
func truncPtr(t *time.Time) *time.Time {
	if t == nil || t.IsZero() {
		return nil
	}
	v := trunc(*t)
	return &v
}

// timeCol scans a stored time, integer microseconds (SQLite) or a time
// (PostgreSQL), into *t in UTC; NULL is the zero time.
type timeCol struct{ t *time.Time }

func (c timeCol) Scan(v any) error {
	switch x := v.(type) {
	case nil:
		*c.t = time.Time{}
	case int64:
		*c.t = time.UnixMicro(x).UTC()
	case time.Time:
		*c.t = x.UTC()
	default:
		return fmt.Errorf("sqlstore: cannot scan %T into a time", v)
	}
	return nil
}

// timePtrCol is timeCol for optional times: NULL is nil.
type timePtrCol struct{ p **time.Time }

func (c timePtrCol) Scan(v any) error {
	if v == nil {
		*c.p = nil
		return nil
	}
	var t time.Time
	if err := (timeCol{&t}).Scan(v); err != nil {
		return err
	}
	*c.p = &t
	return nil
}
