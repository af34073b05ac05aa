// Package migrations holds the versioned schema of every metadata store
// dialect, embedded into the binary.
//
// Each dialect has a directory of files named NNNN_description.sql. Version
// numbers are positive and unique, and each is reserved for one change before
// it is written, so a branch may lack a number that another branch holds; a
// file is never edited after it has shipped, a change is a new file. The
// store packages apply pending migrations at Open, inside one transaction,
// and record each applied version in a schema_migrations table. Pending
// picks every version not yet recorded, in order, so re-opening an
// up-to-date database is a no-op and the order in which branches land does
// not matter.
package migrations

import (
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"
)

//go:embed sqlite/*.sql postgres/*.sql
var files embed.FS

// Dialects with embedded migrations.
const (
	SQLite   = "sqlite"
	Postgres = "postgres"
)

// Migration is one schema version.
type Migration struct {
	Version int
	Name    string // the file name without the version prefix and extension
	SQL     string
}

// Load returns the migrations of dialect ordered by version. It fails if a
// version repeats or the first is not 1.
func Load(dialect string) ([]Migration, error) {
	names, err := fs.Glob(files, dialect+"/*.sql")
	if err != nil {
		return nil, fmt.Errorf("migrations: %s: %w", dialect, err)
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("migrations: unknown dialect %q", dialect)
	}
	ms := make([]Migration, 0, len(names))
	for _, n := range names {
		base := strings.TrimSuffix(path.Base(n), ".sql")
		num, name, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migrations: %s: bad file name %q (want NNNN_name.sql)", dialect, n)
		}
		body, err := files.ReadFile(n)
		if err != nil {
			return nil, fmt.Errorf("migrations: %s: %w", dialect, err)
		}
		ms = append(ms, Migration{Version: v, Name: name, SQL: string(body)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].Version < ms[j].Version })
	for i, m := range ms {
		if (i == 0 && m.Version != 1) || (i > 0 && m.Version == ms[i-1].Version) {
			return nil, fmt.Errorf("migrations: %s: version %d repeated or version 1 missing", dialect, m.Version)
		}
	}
	return ms, nil
}

// Pending returns the migrations of ms whose versions are not in applied,
// in version order. It fails if applied holds a version that ms does not
// have: the database was migrated by a newer gatehouse.
func Pending(ms []Migration, applied []int) ([]Migration, error) {
	known := make(map[int]bool, len(ms))
	for _, m := range ms {
		known[m.Version] = true
	}
	done := make(map[int]bool, len(applied))
	for _, v := range applied {
		if !known[v] {
			return nil, fmt.Errorf("migrations: database schema version %d is unknown to this binary (newer gatehouse?)", v)
		}
		done[v] = true
	}
	var out []Migration
	for _, m := range ms {
		if !done[m.Version] {
			out = append(out, m)
		}
	}
	return out, nil
}
