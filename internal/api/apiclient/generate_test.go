package apiclient

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// specPath is the admin API's OpenAPI document, relative to this package.
const specPath = "../../../api/openapi.yaml"

// TestGeneratedUpToDate proves that apiclient.gen.go is exactly what the
// oapi-codegen pinned in go.mod makes of api/openapi.yaml with
// oapi-codegen.yaml, so that the admin CLI built on it cannot drift from the
// API (issue 12 §3, the admin CLI's wire types come from api/openapi.yaml).
// Its second case edits a copy of the document without regenerating and
// proves that the comparison then fails.
func TestGeneratedUpToDate(t *testing.T) {
	committed, err := os.ReadFile("apiclient.gen.go")
	if err != nil {
		t.Fatal(err)
	}
	spec, err := os.ReadFile(specPath)
	if err != nil {
		t.Fatal(err)
	}
	const anchor = "        tokenId: {type: string}\n"
	if !bytes.Contains(spec, []byte(anchor)) {
		t.Fatalf("%s no longer has %q: pick another edit for the drift case", specPath, anchor)
	}
	edited := bytes.Replace(spec, []byte(anchor), []byte(anchor+"        driftProbe: {type: string}\n"), 1)

	for _, tc := range []struct {
		name     string
		spec     []byte
		wantSame bool
	}{
		{"the committed file is generated from the document", spec, true},
		{"an edit of the document without go generate is caught", edited, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := generate(t, tc.spec)
			if same := bytes.Equal(got, committed); same != tc.wantSame {
				if tc.wantSame {
					t.Fatalf("apiclient.gen.go is stale: run go generate ./internal/api/apiclient and commit the result (first difference at %s)",
						firstDiff(got, committed))
				}
				t.Fatal("the generated code did not change when the document did")
			}
		})
	}
}

// generate runs the oapi-codegen pinned in go.mod (go tool oapi-codegen)
// with this package's configuration on a copy of the OpenAPI document spec,
// and returns the code it writes.
func generate(t *testing.T, spec []byte) []byte {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command runs the pinned generator: %v", err)
	}
	dir := t.TempDir()
	in, out := filepath.Join(dir, "openapi.yaml"), filepath.Join(dir, "apiclient.gen.go")
	if err := os.WriteFile(in, spec, 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(goBin, "tool", "oapi-codegen", "-config", "oapi-codegen.yaml", "-o", out, in)
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go tool oapi-codegen: %v\n%s", err, msg)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// firstDiff names the first line where got and want differ, with both
// versions of it.
func firstDiff(got, want []byte) string {
	g, w := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	for i := 0; i < max(len(g), len(w)); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			return fmt.Sprintf("line %d:\n  generated: %s\n  committed: %s", i+1, gl, wl)
		}
	}
	return "no line (the files differ only in their line endings)"
}
