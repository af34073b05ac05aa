package decision_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const iamPath = "github.com/gatehouse-dev/gatehouse/internal/iam"

// evaluators are the directories whose code may evaluate IAM policies:
// the decision point, the policy language itself, and its offline
// simulator (the `gatehouse policy simulate` what-if tool, which decides no
// access).
var evaluators = []string{"internal/decision", "internal/iam"}

// iamEvaluations returns where a Go file evaluates IAM policies: calls of
// iam.Compile or iam.Simulate, and any use of iam.Compiled (holding a
// compiled policy is how one evaluates it). src is the file's text.
func iamEvaluations(t *testing.T, name string, src []byte) []string {
	t.Helper()
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, name, src, parser.SkipObjectResolution)
	require.NoError(t, err)
	alias := ""
	for _, im := range f.Imports {
		p, _ := strconv.Unquote(im.Path.Value)
		if p != iamPath {
			continue
		}
		alias = "iam"
		if im.Name != nil {
			alias = im.Name.Name
		}
	}
	if alias == "" {
		return nil
	}
	var found []string
	ast.Inspect(f, func(n ast.Node) bool {
		sel, ok := n.(*ast.SelectorExpr)
		if !ok {
			return true
		}
		if id, ok := sel.X.(*ast.Ident); ok && id.Name == alias {
			switch sel.Sel.Name {
			case "Compile", "Simulate", "Compiled":
				found = append(found, fset.Position(sel.Pos()).String()+": "+alias+"."+sel.Sel.Name)
			}
		}
		return true
	})
	return found
}

// TestGuardDetectsEvaluation proves the guard below sees what it looks for.
func TestGuardDetectsEvaluation(t *testing.T) {
	src := `package x
import policy "github.com/gatehouse-dev/gatehouse/internal/iam"
func f(c *policy.Compiled) { _, _ = policy.Compile() }`
	require.Len(t, iamEvaluations(t, "x.go", []byte(src)), 2)
	require.Empty(t, iamEvaluations(t, "y.go", []byte(`package y
import "github.com/gatehouse-dev/gatehouse/internal/iam"
func f() { _, _ = iam.Parse(nil) }`)))
}

// TestOnlyTheDecisionPointEvaluatesPolicies (issue 12 §1: one decision
// point) walks every non-test Go file of the module and fails if any
// package other than internal/decision (and the policy language itself)
// compiles or evaluates IAM policies: every access question must go
// through the decision point.
func TestOnlyTheDecisionPointEvaluatesPolicies(t *testing.T) {
	root, err := filepath.Abs("../..")
	require.NoError(t, err)
	_, err = os.Stat(filepath.Join(root, "go.mod"))
	require.NoError(t, err, "module root")
	var bad []string
	files := 0
	err = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			if strings.HasPrefix(d.Name(), ".") || d.Name() == "testdata" || d.Name() == "node_modules" {
				return filepath.SkipDir
			}
			for _, e := range evaluators {
				if rel == e {
					return filepath.SkipDir
				}
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		src, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		files++
		bad = append(bad, iamEvaluations(t, rel, src)...)
		return nil
	})
	require.NoError(t, err)
	require.Greater(t, files, 100, "the walk must see the module's code")
	require.Empty(t, bad, "IAM policies evaluated outside internal/decision; ask the decision point instead")
}
