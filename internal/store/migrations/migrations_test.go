package migrations

import (
	"strings"
	"testing"
)

func TestLoad(t *testing.T) {
	for _, d := range []string{SQLite, Postgres} {
		ms, err := Load(d)
		if err != nil {
			t.Fatalf("%s: %v", d, err)
		}
		if len(ms) == 0 || ms[0].Version != 1 || !strings.Contains(ms[0].SQL, "CREATE TABLE users") {
			t.Fatalf("%s: unexpected migrations %+v", d, ms)
		}
	}
	// Both dialects must move in lockstep.
	a, _ := Load(SQLite)
	b, _ := Load(Postgres)
	if len(a) != len(b) {
		t.Fatalf("sqlite has %d migrations, postgres %d", len(a), len(b))
	}
	for i := range a {
		if a[i].Name != b[i].Name {
			t.Fatalf("version %d is %q in sqlite but %q in postgres", a[i].Version, a[i].Name, b[i].Name)
		}
	}
	if len(a) < 2 || !strings.Contains(a[1].SQL, "CREATE TABLE roles") || !strings.Contains(b[1].SQL, "CREATE TABLE oidc_providers") {
		t.Fatal("version 2 must create the roles and identity provider tables")
	}
	if _, err := Load("oracle"); err == nil {
		t.Fatal("unknown dialect accepted")
	}
}
