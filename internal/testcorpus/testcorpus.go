// Package testcorpus finds the external test vectors (../shared/corpora in
// the workplace layout: SigV4, SAML, Iceberg, Trino OPA) for tests.
package testcorpus

import (
	"os"
	"path/filepath"
	"testing"
)

// Dir returns the directory of corpus name (e.g. "sigv4"), the first of
//   - <repository>/../shared/corpora/<name> (the repository found by
//     walking up from the working directory to go.mod),
//   - $GATEHOUSE_CORPORA/<name>,
//   - /work/shared/corpora/<name> (where the workplace keeps them, for a
//     clone made elsewhere, e.g. in a temporary directory),
//
// that holds marker (a file path relative to it). Missing everywhere is a
// test failure naming every place tried: the corpus tests are never skipped.
func Dir(t testing.TB, name, marker string) string {
	t.Helper()
	var tried []string
	for _, base := range bases() {
		d := filepath.Join(base, name)
		if _, err := os.Stat(filepath.Join(d, marker)); err == nil {
			return d
		}
		tried = append(tried, d)
	}
	t.Fatalf("testcorpus: %s corpus (with %s) not found; tried %v", name, marker, tried)
	return ""
}

func bases() []string {
	var out []string
	if dir, err := os.Getwd(); err == nil {
		for {
			if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
				out = append(out, filepath.Join(dir, "..", "shared", "corpora"))
				break
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
	}
	if env := os.Getenv("GATEHOUSE_CORPORA"); env != "" {
		out = append(out, env)
	}
	return append(out, "/work/shared/corpora")
}
