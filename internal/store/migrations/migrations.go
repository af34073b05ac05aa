// Package migrations holds the versioned schema of every metadata store
// dialect, embedded into the binary.
//
// Each dialect has a directory of files named NNNN_description.sql. Version
// numbers start at 1 and must be contiguous; a file is never edited after it
// has shipped, a change is a new file. The store packages apply pending
// migrations at Open, inside one transaction, and record each applied version
// in a schema_migrations table, so re-opening an up-to-date database is a
// no-op.
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

// Load returns the migrations of dialect ordered by version. It fails if the
// versions are not exactly 1..n.
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
		if m.Version != i+1 {
			return nil, fmt.Errorf("migrations: %s: version %d missing (found %d)", dialect, i+1, m.Version)
		}
	}
	return ms, nil
}
