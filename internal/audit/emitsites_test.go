package audit

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// emitCheck proves that every audit event is built by the one builder
// (NewEvent, builder.go). It reads the non-test Go files of a module with
// go/parser (no type checking, so it needs no dependencies) and reports:
//
//   - an Event composite literal (also &Event{…}, elided elements of
//     []Event{…}), new(Event) or a `var x Event` declaration anywhere but in
//     the builder's own file: such an event bypasses the builder;
//   - outside the audit package, an assignment to a field of an event (a
//     parameter of type Event, or a variable set from a builder's Event()):
//     the builder's clipping and outcome rules would be bypassed;
//   - an event code (a constant of type Code declared in the audit package)
//     that no non-test code outside its declaration names: a registered
//     code with no emit site.
//
// Test files are exempt: they build events to feed the log itself.
type emitCheck struct {
	auditPath   string // import path of the audit package
	auditDir    string // its directory, relative to the module root
	builderFile string // the one file allowed to write Event literals
}

// run checks the module rooted at root and returns its findings, sorted,
// as "file:line: message" with paths relative to root.
func (c emitCheck) run(root string) ([]string, error) {
	fset := token.NewFileSet()
	var files []*ast.File
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != root && (name == "testdata" || name == "vendor" || strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_")) {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		files = append(files, f)
		return nil
	})
	if err != nil {
		return nil, err
	}
	codes := map[string]token.Position{} // declared codes, by name
	used := map[string]bool{}
	var out []string
	report := func(pos token.Pos, format string, args ...any) {
		p := fset.Position(pos)
		rel, _ := filepath.Rel(root, p.Filename)
		out = append(out, fmt.Sprintf("%s:%d: %s", filepath.ToSlash(rel), p.Line, fmt.Sprintf(format, args...)))
	}
	for _, f := range files {
		path := fset.Position(f.Package).Filename
		rel, _ := filepath.Rel(root, path)
		inAudit := filepath.ToSlash(filepath.Dir(rel)) == c.auditDir
		if inAudit {
			collectCodes(fset, f, codes)
		}
		isEvent := c.eventMatcher(f, inAudit)
		if isEvent == nil {
			continue
		}
		allowed := inAudit && filepath.Base(rel) == c.builderFile
		if !inAudit {
			for _, pos := range eventMutations(f, isEvent) {
				report(pos, "audit event changed after it was built: set it through the builder")
			}
		}
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.CompositeLit:
				if !allowed && isEvent(n.Type) {
					report(n.Pos(), "audit event literal outside the builder: use audit.NewEvent")
				}
				if !allowed && elidedEvents(n, isEvent) {
					report(n.Pos(), "audit event literals (elided) outside the builder: use audit.NewEvent")
				}
			case *ast.CallExpr:
				if id, ok := n.Fun.(*ast.Ident); ok && id.Name == "new" && len(n.Args) == 1 && isEvent(n.Args[0]) && !allowed {
					report(n.Pos(), "new(audit event) outside the builder: use audit.NewEvent")
				}
			case *ast.ValueSpec:
				if n.Type != nil && isEvent(n.Type) && len(n.Values) == 0 && !allowed {
					report(n.Pos(), "zero audit event declared outside the builder: use audit.NewEvent")
				}
			}
			return true
		})
	}
	for _, f := range files {
		rel, _ := filepath.Rel(root, fset.Position(f.Package).Filename)
		inAudit := filepath.ToSlash(filepath.Dir(rel)) == c.auditDir
		local := c.importName(f)
		ast.Inspect(f, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.SelectorExpr:
				if x, ok := n.X.(*ast.Ident); ok && local != "" && x.Name == local {
					used[n.Sel.Name] = true
				}
			case *ast.Ident:
				if inAudit {
					if p, ok := codes[n.Name]; ok && fset.Position(n.Pos()) != p {
						used[n.Name] = true
					}
				}
			}
			return true
		})
	}
	for name, p := range codes {
		if !used[name] {
			rel, _ := filepath.Rel(root, p.Filename)
			out = append(out, fmt.Sprintf("%s:%d: event code %s has no emit site", filepath.ToSlash(rel), p.Line, name))
		}
	}
	sort.Strings(out)
	return out, nil
}

// eventMutations returns the assignments in f to a field of an event: of a
// parameter of type Event (or *Event), or of a variable assigned from a
// call of a method named Event with no arguments (Builder.Event). Names are
// tracked per function, without type information.
func eventMutations(f *ast.File, isEvent func(ast.Expr) bool) []token.Pos {
	var out []token.Pos
	check := func(ftype *ast.FuncType, body *ast.BlockStmt) {
		if body == nil {
			return
		}
		events := map[string]bool{}
		if ftype.Params != nil {
			for _, fld := range ftype.Params.List {
				t := fld.Type
				if st, ok := t.(*ast.StarExpr); ok {
					t = st.X
				}
				if isEvent(t) {
					for _, n := range fld.Names {
						events[n.Name] = true
					}
				}
			}
		}
		ast.Inspect(body, func(n ast.Node) bool {
			as, ok := n.(*ast.AssignStmt)
			if !ok {
				return true
			}
			for i, lhs := range as.Lhs {
				if id, ok := lhs.(*ast.Ident); ok && i < len(as.Rhs) && builtEvent(as.Rhs[i]) {
					events[id.Name] = true
					continue
				}
				if root := fieldRoot(lhs); root != "" && events[root] {
					out = append(out, lhs.Pos())
				}
			}
			return true
		})
	}
	ast.Inspect(f, func(n ast.Node) bool {
		switch fn := n.(type) {
		case *ast.FuncDecl:
			check(fn.Type, fn.Body)
		case *ast.FuncLit:
			check(fn.Type, fn.Body)
		}
		return true
	})
	return out
}

// builtEvent reports whether e is a call x.Event() with no arguments.
func builtEvent(e ast.Expr) bool {
	call, ok := e.(*ast.CallExpr)
	if !ok || len(call.Args) != 0 {
		return false
	}
	sel, ok := call.Fun.(*ast.SelectorExpr)
	return ok && sel.Sel.Name == "Event"
}

// fieldRoot returns the variable at the root of a field or index
// expression such as ev.Actor.User or ev.Details["k"], or "" if e is not one.
func fieldRoot(e ast.Expr) string {
	sawField := false
	for {
		switch x := e.(type) {
		case *ast.SelectorExpr:
			e, sawField = x.X, true
		case *ast.IndexExpr:
			e = x.X
		case *ast.ParenExpr:
			e = x.X
		case *ast.StarExpr:
			e = x.X
		case *ast.Ident:
			if sawField {
				return x.Name
			}
			return ""
		default:
			return ""
		}
	}
}

// collectCodes adds the constants of type Code that f declares.
func collectCodes(fset *token.FileSet, f *ast.File, codes map[string]token.Position) {
	for _, d := range f.Decls {
		gd, ok := d.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST {
			continue
		}
		for _, s := range gd.Specs {
			vs := s.(*ast.ValueSpec)
			if id, ok := vs.Type.(*ast.Ident); !ok || id.Name != "Code" {
				continue
			}
			for _, n := range vs.Names {
				codes[n.Name] = fset.Position(n.Pos())
			}
		}
	}
}

// importName is the name under which f imports the audit package, or "".
func (c emitCheck) importName(f *ast.File) string {
	for _, is := range f.Imports {
		if p, _ := strconv.Unquote(is.Path.Value); p == c.auditPath {
			if is.Name != nil {
				return is.Name.Name
			}
			return filepath.Base(p)
		}
	}
	return ""
}

// eventMatcher returns a predicate that reports whether a type expression
// of f names the audit Event type, or nil if f cannot name it.
func (c emitCheck) eventMatcher(f *ast.File, inAudit bool) func(ast.Expr) bool {
	if inAudit {
		return func(e ast.Expr) bool {
			id, ok := e.(*ast.Ident)
			return ok && id.Name == "Event"
		}
	}
	local := c.importName(f)
	if local == "" || local == "_" {
		return nil
	}
	if local == "." {
		return func(e ast.Expr) bool {
			id, ok := e.(*ast.Ident)
			return ok && id.Name == "Event"
		}
	}
	return func(e ast.Expr) bool {
		sel, ok := e.(*ast.SelectorExpr)
		if !ok || sel.Sel.Name != "Event" {
			return false
		}
		x, ok := sel.X.(*ast.Ident)
		return ok && x.Name == local
	}
}

// elidedEvents reports whether lit is a slice, array or map literal of
// events whose element literals leave their type out ([]Event{{…}}).
func elidedEvents(lit *ast.CompositeLit, isEvent func(ast.Expr) bool) bool {
	var elem ast.Expr
	switch t := lit.Type.(type) {
	case *ast.ArrayType:
		elem = t.Elt
	case *ast.MapType:
		elem = t.Value
	default:
		return false
	}
	if star, ok := elem.(*ast.StarExpr); ok {
		elem = star.X
	}
	if !isEvent(elem) {
		return false
	}
	for _, e := range lit.Elts {
		if kv, ok := e.(*ast.KeyValueExpr); ok {
			e = kv.Value
		}
		if u, ok := e.(*ast.UnaryExpr); ok {
			e = u.X
		}
		if cl, ok := e.(*ast.CompositeLit); ok && cl.Type == nil {
			return true
		}
	}
	return false
}

// TestEmitSitesUseBuilder (issue 12 §2, one audit builder): in gatehouse
// itself, no plane builds an audit event except through audit.NewEvent, and
// every registered event code has an emit site.
func TestEmitSitesUseBuilder(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	require.NoError(t, err)
	mod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	require.NoError(t, err)
	require.Contains(t, string(mod), "module github.com/gatehouse-dev/gatehouse\n")
	c := emitCheck{auditPath: "github.com/gatehouse-dev/gatehouse/internal/audit", auditDir: "internal/audit", builderFile: "builder.go"}
	got, err := c.run(root)
	require.NoError(t, err)
	require.Empty(t, got, "build every audit event with audit.NewEvent; give every event code an emit site")
}

// TestEmitCheckCatchesBypasses runs the same check on a fixture module
// (testdata/emitcheck) that bypasses the builder in every way the check
// knows, and declares a code nothing emits: each must be reported, and the
// builder's own literal and the used code must not be.
func TestEmitCheckCatchesBypasses(t *testing.T) {
	c := emitCheck{auditPath: "example.com/fixture/audit", auditDir: "audit", builderFile: "builder.go"}
	got, err := c.run(filepath.Join("testdata", "emitcheck"))
	require.NoError(t, err)
	want := []string{
		"audit/event.go:8: event code CodeOrphan has no emit site",
		"audit/sneaky.go:5: audit event literal outside the builder: use audit.NewEvent",
		"plane/plane.go:13: audit event literal outside the builder: use audit.NewEvent",
		"plane/plane.go:14: audit event literal outside the builder: use audit.NewEvent",
		"plane/plane.go:15: new(audit event) outside the builder: use audit.NewEvent",
		"plane/plane.go:17: zero audit event declared outside the builder: use audit.NewEvent",
		"plane/plane.go:18: audit event literals (elided) outside the builder: use audit.NewEvent",
		"plane/plane.go:22: audit event literal outside the builder: use audit.NewEvent",
		"plane/plane.go:25: audit event changed after it was built: set it through the builder",
		"plane/plane.go:31: audit event changed after it was built: set it through the builder",
		"plane/plane.go:32: audit event changed after it was built: set it through the builder",
	}
	require.Equal(t, want, got)
}
