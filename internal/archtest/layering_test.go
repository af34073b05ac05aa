package archtest

import (
	"bytes"
	"os/exec"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const module = "github.com/gatehouse-dev/gatehouse/"

// frontEnds are the subtrees that speak a protocol to clients: the admin REST
// API, the S3 gateway, the STS Query API, and everything under
// internal/frontend (web sign-in, the demo IdP, SCIM). sts/credentials is the
// credential domain the STS and the gateway share, so it is not one.
var frontEnds = []string{"internal/frontend", "internal/api", "internal/s3gw", "internal/sts"}

// notDomain are the packages that may import anything: the wiring, the
// benchmark harnesses, CI tools and this test.
var notDomain = []string{"internal/server", "internal/bench", "internal/tools", "internal/archtest"}

// under reports whether pkg (module-relative) is dir or below it.
func under(pkg, dir string) bool { return pkg == dir || strings.HasPrefix(pkg, dir+"/") }

func isFrontEnd(pkg string) bool {
	if under(pkg, "internal/sts/credentials") {
		return false
	}
	for _, f := range frontEnds {
		if under(pkg, f) {
			return true
		}
	}
	return false
}

func isDomain(pkg string) bool {
	if !under(pkg, "internal") || isFrontEnd(pkg) {
		return false
	}
	for _, n := range notDomain {
		if under(pkg, n) {
			return false
		}
	}
	return true
}

// TestDomainNeverImportsAFrontEnd lists every package of the module with all
// its dependencies (go list -deps, so indirect imports count too, test files
// excluded) and fails for each domain package that reaches into a front end's
// subtree (issue 12 §3).
func TestDomainNeverImportsAFrontEnd(t *testing.T) {
	goBin, err := exec.LookPath("go")
	require.NoError(t, err, "the go command must be on PATH to list packages")
	cmd := exec.Command(goBin, "list", "-deps=false", "-f", `{{.ImportPath}}{{range .Deps}} {{.}}{{end}}`, module+"...")
	cmd.Dir = "../.."
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, stderr.String())

	domains := 0
	var violations []string
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		pkg := strings.TrimPrefix(fields[0], module)
		if !isDomain(pkg) {
			continue
		}
		domains++
		for _, dep := range fields[1:] {
			if rel, ok := strings.CutPrefix(dep, module); ok && isFrontEnd(rel) {
				violations = append(violations, pkg+" -> "+rel)
			}
		}
	}
	sort.Strings(violations)
	require.Greater(t, domains, 10, "go list found too few domain packages; the test would prove nothing")
	require.Empty(t, violations, "domain packages must not import a front end (docs/ARCHITECTURE.md)")
}

// TestClassification pins the layering rules themselves, so that a typo in
// the lists above cannot silently empty the check.
func TestClassification(t *testing.T) {
	for pkg, want := range map[string]string{
		"internal/frontend/websso": "front", "internal/frontend/scim": "front", "internal/api": "front",
		"internal/s3gw/backend/s3": "front", "internal/sts": "front", "internal/sts/credentials": "domain",
		"internal/identity": "domain", "internal/identity/saml": "domain", "internal/decision": "domain",
		"internal/store/postgres": "domain", "internal/server": "neither", "internal/bench/s3bench": "neither",
		"internal/stsx": "domain",
	} {
		got := "neither"
		if isFrontEnd(pkg) {
			got = "front"
		} else if isDomain(pkg) {
			got = "domain"
		}
		require.Equal(t, want, got, pkg)
	}
}
