package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"testing/fstest"
	"time"

	"github.com/stretchr/testify/require"
)

const (
	stdlibEntry = `{"id":"GO-2026-0002","modified":"2026-03-01T00:00:00Z",
		"affected":[{"package":{"name":"stdlib"}},{"package":{"name":"toolchain"}},{"package":{"name":"stdlib"}}]}`
	moduleEntry = `{"id":"GO-2026-0001","modified":"0001-01-01T00:00:00Z",
		"affected":[{"package":{"name":"example.com/m"}},{"package":{"name":"stdlib"}}]}`
)

var fallback = time.Date(2026, 11, 5, 23, 49, 57, 0, time.UTC)

// TestBuildWritesGovulncheckLayout checks the three endpoints govulncheck
// reads from a file:// database: the newest modification time, the
// per-module index (sorted, one row per entry even when it lists a module
// twice, zero times replaced by the fallback), and the
// entries copied byte for byte.
func TestBuildWritesGovulncheckLayout(t *testing.T) {
	out := filepath.Join(t.TempDir(), "db")
	n, err := build(fstest.MapFS{
		"GO-2026-0002.json": {Data: []byte(stdlibEntry)},
		"GO-2026-0001.json": {Data: []byte(moduleEntry)},
		"README.md":         {Data: []byte("not an entry")},
	}, fallback, out)
	require.NoError(t, err)
	require.Equal(t, 2, n)

	require.JSONEq(t, `{"modified":"2026-11-05T23:49:57Z"}`, readFile(t, out, "index/db.json"))
	require.JSONEq(t, `[
		{"path":"example.com/m","vulns":[{"id":"GO-2026-0001","modified":"2026-11-05T23:49:57Z"}]},
		{"path":"stdlib","vulns":[
			{"id":"GO-2026-0001","modified":"2026-11-05T23:49:57Z"},
			{"id":"GO-2026-0002","modified":"2026-03-01T00:00:00Z"}]},
		{"path":"toolchain","vulns":[{"id":"GO-2026-0002","modified":"2026-03-01T00:00:00Z"}]}
	]`, readFile(t, out, "index/modules.json"))
	require.Equal(t, stdlibEntry, readFile(t, out, "ID/GO-2026-0002.json"))
	require.Equal(t, moduleEntry, readFile(t, out, "ID/GO-2026-0001.json"))
	_, err = os.Stat(out + ".tmp")
	require.ErrorIs(t, err, os.ErrNotExist)
}

// TestBuildRefusesBadSources checks that a source govulncheck would misread,
// or that would make it pass vacuously, fails the build and leaves a
// previous database in place.
func TestBuildRefusesBadSources(t *testing.T) {
	for name, src := range map[string]fstest.MapFS{
		"empty":             {},
		"no stdlib entry":   {"GO-2026-0003.json": {Data: []byte(`{"id":"GO-2026-0003","affected":[{"package":{"name":"example.com/m"}}]}`)}},
		"not json":          {"GO-2026-0002.json": {Data: []byte(`{"id":`)}},
		"id not file name":  {"GO-2026-0009.json": {Data: []byte(stdlibEntry)}},
		"entry without id":  {".json": {Data: []byte(`{"affected":[{"package":{"name":"stdlib"}}]}`)}},
		"good and bad json": {"GO-2026-0002.json": {Data: []byte(stdlibEntry)}, "GO-2026-0004.json": {Data: []byte(`[]`)}},
	} {
		t.Run(name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "db")
			require.NoError(t, os.MkdirAll(filepath.Join(out, "index"), 0o755))
			require.NoError(t, os.WriteFile(filepath.Join(out, "index", "db.json"), []byte(`{"previous":true}`), 0o644))

			_, err := build(src, fallback, out)
			require.Error(t, err)
			require.Equal(t, `{"previous":true}`, readFile(t, out, "index/db.json"))
		})
	}
}

func readFile(t *testing.T, dir, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(name)))
	require.NoError(t, err)
	require.True(t, json.Valid(b), "%s is not JSON", name)
	return string(b)
}
