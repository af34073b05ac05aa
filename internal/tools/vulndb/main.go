// Command vulndb builds an offline Go vulnerability database for govulncheck
// from a pinned golang.org/x/vulndb module, so that CI, which reaches only
// package registries, can run govulncheck without vuln.go.dev.
//
// Usage:
//
//	go run ./internal/tools/vulndb -module golang.org/x/vulndb@VERSION -out DIR
//
// It downloads the module with `go mod download -json` (through the Go module
// proxy, like any other module), reads the OSV entries it ships under
// data/osv, and writes DIR in the layout that `govulncheck -db file:///DIR`
// reads (https://go.dev/security/vuln/database#api):
//
//	DIR/index/db.json       {"modified": newest entry modification time}
//	DIR/index/modules.json  [{"path": module, "vulns": [{"id", "modified"}]}], sorted
//	DIR/ID/<id>.json        each OSV entry, byte for byte
//
// The stored entries carry a zero "modified" time (vuln.go.dev fills it in
// from git history); the index uses the module version's commit time instead.
// The index leaves out the optional "fixed" hint, so govulncheck reads every
// entry of a module and applies the ranges itself: slower by milliseconds,
// and never wrong.
//
// It fails, writing nothing usable, when an entry does not parse, is not named
// <id>.json, or when the source holds no standard-library entry: an empty or
// misread database would make govulncheck pass vacuously.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"time"
)

func main() {
	module := flag.String("module", "", "golang.org/x/vulndb@VERSION to build from (pinned)")
	out := flag.String("out", "", "directory to write the database to (replaced)")
	flag.Parse()
	if *module == "" || *out == "" {
		fmt.Fprintln(os.Stderr, "usage: vulndb -module golang.org/x/vulndb@VERSION -out DIR")
		os.Exit(2)
	}
	if err := run(*module, *out); err != nil {
		fmt.Fprintln(os.Stderr, "vulndb:", err)
		os.Exit(1)
	}
}

// run downloads module and writes its database to out.
func run(module, out string) error {
	src, err := download(module)
	if err != nil {
		return err
	}
	n, err := build(os.DirFS(filepath.Join(src.Dir, "data", "osv")), src.Time, out)
	if err != nil {
		return fmt.Errorf("build from %s: %w", module, err)
	}
	fmt.Printf("vulndb: %d entries from %s into %s\n", n, module, out)
	return nil
}

// source is a downloaded module: its extracted directory and commit time.
type source struct {
	Dir  string
	Time time.Time
}

// download fetches module through the go command and returns where it is.
func download(module string) (source, error) {
	cmd := exec.Command("go", "mod", "download", "-json", module)
	cmd.Stderr = os.Stderr
	raw, err := cmd.Output()
	if err != nil {
		return source{}, fmt.Errorf("go mod download %s: %w", module, err)
	}
	var info struct{ Dir, Info, Error string }
	if err := json.Unmarshal(raw, &info); err != nil {
		return source{}, fmt.Errorf("go mod download %s: %w", module, err)
	}
	if info.Error != "" || info.Dir == "" || info.Info == "" {
		return source{}, fmt.Errorf("go mod download %s: %q", module, info.Error)
	}
	rawInfo, err := os.ReadFile(info.Info)
	if err != nil {
		return source{}, err
	}
	var meta struct{ Time time.Time }
	if err := json.Unmarshal(rawInfo, &meta); err != nil || meta.Time.IsZero() {
		return source{}, fmt.Errorf("%s: no commit time (%v)", info.Info, err)
	}
	return source{Dir: info.Dir, Time: meta.Time.UTC()}, nil
}

// entry is the part of an OSV entry (https://ossf.github.io/osv-schema/)
// that the index needs. In the Go database, affected[].package.name is a
// module path ("stdlib" and "toolchain" for Go itself).
type entry struct {
	ID       string    `json:"id"`
	Modified time.Time `json:"modified"`
	Affected []struct {
		Package struct {
			Name string `json:"name"`
		} `json:"package"`
	} `json:"affected"`
}

// moduleVuln and moduleMeta are the rows of index/modules.json.
type moduleVuln struct {
	ID       string    `json:"id"`
	Modified time.Time `json:"modified"`
}

type moduleMeta struct {
	Path  string       `json:"path"`
	Vulns []moduleVuln `json:"vulns"`
}

// build reads every <id>.json OSV entry at the top of osv, writes the
// database to out (removing what was there), and returns how many entries
// it wrote. Entries with a zero modification time are indexed as modified at
// fallback. It writes into a sibling directory and renames it into place,
// so out is never left half-written: a failure keeps the old database.
func build(osv fs.FS, fallback time.Time, out string) (int, error) {
	names, err := fs.Glob(osv, "*.json")
	if err != nil {
		return 0, err
	}
	tmp := out + ".tmp"
	if err := os.RemoveAll(tmp); err != nil {
		return 0, err
	}
	defer os.RemoveAll(tmp)
	idx := index{modules: map[string]*moduleMeta{}}
	for _, name := range names {
		e, err := copyEntry(osv, name, filepath.Join(tmp, "ID"))
		if err != nil {
			return 0, err
		}
		if e.Modified.IsZero() {
			e.Modified = fallback
		}
		idx.add(e)
	}
	if idx.modules["stdlib"] == nil {
		return 0, errors.New("no entry for the standard library (module \"stdlib\"): refusing an incomplete database")
	}
	if err := idx.write(filepath.Join(tmp, "index")); err != nil {
		return 0, err
	}
	// Install with one rename. When out already holds a database (another
	// run built the same pinned version meanwhile), keep it: removing it
	// could pull it from under a govulncheck reading it.
	if err := os.Rename(tmp, out); err != nil {
		if _, serr := os.Stat(filepath.Join(out, "index", "modules.json")); serr == nil {
			return len(names), nil
		}
		return 0, err
	}
	return len(names), nil
}

// index accumulates index/db.json (the newest modification) and
// index/modules.json (the entries of each module) as entries are added.
type index struct {
	newest  time.Time
	modules map[string]*moduleMeta
}

// add indexes e under every module it affects, once per module.
func (x *index) add(e entry) {
	if e.Modified.After(x.newest) {
		x.newest = e.Modified
	}
	for _, a := range e.Affected {
		m := x.modules[a.Package.Name]
		if m == nil {
			m = &moduleMeta{Path: a.Package.Name}
			x.modules[a.Package.Name] = m
		}
		if n := len(m.Vulns); n == 0 || m.Vulns[n-1].ID != e.ID {
			m.Vulns = append(m.Vulns, moduleVuln{ID: e.ID, Modified: e.Modified})
		}
	}
}

// copyEntry parses osv/name, checks that it is named after its id, and
// copies it unchanged into dir.
func copyEntry(osv fs.FS, name, dir string) (entry, error) {
	raw, err := fs.ReadFile(osv, name)
	if err != nil {
		return entry{}, err
	}
	var e entry
	if err := json.Unmarshal(raw, &e); err != nil {
		return entry{}, fmt.Errorf("%s: %w", name, err)
	}
	if e.ID == "" || name != e.ID+".json" {
		return entry{}, fmt.Errorf("%s: entry id %q does not match its file name", name, e.ID)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return entry{}, err
	}
	return e, os.WriteFile(filepath.Join(dir, name), raw, 0o644)
}

// write writes db.json and modules.json (modules sorted by path,
// vulnerabilities by id) into dir.
func (x *index) write(dir string) error {
	list := make([]*moduleMeta, 0, len(x.modules))
	for _, m := range x.modules {
		sort.Slice(m.Vulns, func(i, j int) bool { return m.Vulns[i].ID < m.Vulns[j].ID })
		list = append(list, m)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].Path < list[j].Path })
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := writeJSON(filepath.Join(dir, "db.json"), struct {
		Modified time.Time `json:"modified"`
	}{x.newest}); err != nil {
		return err
	}
	return writeJSON(filepath.Join(dir, "modules.json"), list)
}

func writeJSON(path string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return os.WriteFile(path, b, 0o644)
}
