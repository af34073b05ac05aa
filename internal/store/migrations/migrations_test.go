package migrations

import (
	"slices"
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

// TestPending checks that every unrecorded version is applied, in order,
// whatever order branches with reserved numbers landed in, and that a
// database migrated by a newer binary is refused.
func TestPending(t *testing.T) {
	ms := []Migration{{Version: 1}, {Version: 2}, {Version: 5}, {Version: 6}}
	versions := func(ms []Migration) []int {
		var out []int
		for _, m := range ms {
			out = append(out, m.Version)
		}
		return out
	}
	tests := []struct {
		applied []int
		want    []int
		err     bool
	}{
		{applied: nil, want: []int{1, 2, 5, 6}},
		{applied: []int{1, 2}, want: []int{5, 6}},
		{applied: []int{1, 2, 6}, want: []int{5}},
		{applied: []int{6, 5, 2, 1}, want: nil},
		{applied: []int{1, 2, 7}, err: true},
	}
	for _, tc := range tests {
		got, err := Pending(ms, tc.applied)
		if tc.err {
			if err == nil {
				t.Errorf("Pending(%v) accepted an unknown version", tc.applied)
			}
			continue
		}
		if err != nil || !slices.Equal(versions(got), tc.want) {
			t.Errorf("Pending(%v) = %v, %v; want %v", tc.applied, versions(got), err, tc.want)
		}
	}
}
