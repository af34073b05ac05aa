package scim

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// This file implements the filter language of RFC 7644 §3.4.2.2 and the
// PATCH path language of RFC 7644 §3.5.2, which share their grammar:
//
//	FILTER    = attrExp / logExp / valuePath / *1"not" "(" FILTER ")"
//	valuePath = attrPath "[" valFilter "]"
//	attrExp   = (attrPath SP "pr") / (attrPath SP compareOp SP compValue)
//	PATH      = attrPath / valuePath [subAttr]
//
// Precedence is "not" over "and" over "or"; parentheses group. Keywords,
// operators and attribute names are case-insensitive. A filter is parsed
// once (pure, no schema) and then compiled against a resource type, which
// resolves attribute names and checks each operator against the attribute
// type, so evaluation cannot fail.

const (
	maxFilterLen   = 4096
	maxFilterDepth = 32
)

type tokKind int

const (
	tkWord tokKind = iota
	tkString
	tkLParen
	tkRParen
	tkLBrack
	tkRBrack
)

type token struct {
	kind tokKind
	text string // word text, or the decoded string
	pos  int
}

func lex(s string) ([]token, error) {
	var toks []token
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '(':
			toks = append(toks, token{tkLParen, "(", i})
			i++
		case c == ')':
			toks = append(toks, token{tkRParen, ")", i})
			i++
		case c == '[':
			toks = append(toks, token{tkLBrack, "[", i})
			i++
		case c == ']':
			toks = append(toks, token{tkRBrack, "]", i})
			i++
		case c == '"':
			j := i + 1
			for ; j < len(s); j++ {
				if s[j] == '\\' {
					j++
					continue
				}
				if s[j] == '"' {
					break
				}
			}
			if j >= len(s) {
				return nil, fmt.Errorf("unterminated string at offset %d", i)
			}
			var v string
			if err := json.Unmarshal([]byte(s[i:j+1]), &v); err != nil {
				return nil, fmt.Errorf("invalid string at offset %d", i)
			}
			toks = append(toks, token{tkString, v, i})
			i = j + 1
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" \t\r\n()[]\"", rune(s[j])) {
				j++
			}
			toks = append(toks, token{tkWord, s[i:j], i})
			i = j
		}
	}
	return toks, nil
}

// filterNode is a parsed filter expression.
type filterNode interface{ node() }

type logNode struct {
	and  bool // false: or
	l, r filterNode
}

type notNode struct{ x filterNode }

// cmpNode is attrExp: attrPath "pr", or attrPath op value.
type cmpNode struct {
	path string
	op   string // lower case: pr eq ne co sw ew gt lt ge le
	val  any    // string, float64, bool or nil
	// Compiled:
	segs []*attribute
	last *attribute
}

// valuePathNode is attrPath "[" valFilter "]", optionally followed by
// ".subAttr op value" (an extension some clients send in filters).
type valuePathNode struct {
	path   string
	filter filterNode
	cmp    *cmpNode // optional comparison on a sub-attribute of the matched element
	// Compiled:
	segs []*attribute
}

func (*logNode) node()       {}
func (*notNode) node()       {}
func (*cmpNode) node()       {}
func (*valuePathNode) node() {}

var compareOps = map[string]bool{"eq": true, "ne": true, "co": true, "sw": true, "ew": true, "gt": true, "lt": true, "ge": true, "le": true}

type parser struct {
	toks  []token
	i     int
	depth int
}

func (p *parser) peek() *token {
	if p.i < len(p.toks) {
		return &p.toks[p.i]
	}
	return nil
}

func (p *parser) isWord(w string) bool {
	t := p.peek()
	return t != nil && t.kind == tkWord && strings.EqualFold(t.text, w)
}

func (p *parser) expect(k tokKind, what string) error {
	t := p.peek()
	if t == nil {
		return fmt.Errorf("expected %s at end of input", what)
	}
	if t.kind != k {
		return fmt.Errorf("expected %s at offset %d", what, t.pos)
	}
	p.i++
	return nil
}

// parseFilter parses a filter expression (RFC 7644 §3.4.2.2).
func parseFilter(s string) (filterNode, error) {
	if len(s) > maxFilterLen {
		return nil, fmt.Errorf("filter longer than %d bytes", maxFilterLen)
	}
	toks, err := lex(s)
	if err != nil {
		return nil, err
	}
	if len(toks) == 0 {
		return nil, errors.New("empty filter")
	}
	p := &parser{toks: toks}
	n, err := p.parseOr()
	if err != nil {
		return nil, err
	}
	if t := p.peek(); t != nil {
		return nil, fmt.Errorf("unexpected %q at offset %d", t.text, t.pos)
	}
	return n, nil
}

func (p *parser) parseOr() (filterNode, error) {
	p.depth++
	defer func() { p.depth-- }()
	if p.depth > maxFilterDepth {
		return nil, errors.New("filter nested too deeply")
	}
	l, err := p.parseAnd()
	if err != nil {
		return nil, err
	}
	for p.isWord("or") {
		p.i++
		r, err := p.parseAnd()
		if err != nil {
			return nil, err
		}
		l = &logNode{and: false, l: l, r: r}
	}
	return l, nil
}

func (p *parser) parseAnd() (filterNode, error) {
	l, err := p.parseUnary()
	if err != nil {
		return nil, err
	}
	for p.isWord("and") {
		p.i++
		r, err := p.parseUnary()
		if err != nil {
			return nil, err
		}
		l = &logNode{and: true, l: l, r: r}
	}
	return l, nil
}

func (p *parser) parseUnary() (filterNode, error) {
	t := p.peek()
	if t == nil {
		return nil, errors.New("unexpected end of filter")
	}
	if t.kind == tkWord && strings.EqualFold(t.text, "not") && p.i+1 < len(p.toks) && p.toks[p.i+1].kind == tkLParen {
		p.i += 2
		x, err := p.parseOr()
		if err != nil {
			return nil, err
		}
		if err := p.expect(tkRParen, `")"`); err != nil {
			return nil, err
		}
		return &notNode{x: x}, nil
	}
	if t.kind == tkLParen {
		p.i++
		x, err := p.parseOr()
		if err != nil {
			return nil, err
		}
		if err := p.expect(tkRParen, `")"`); err != nil {
			return nil, err
		}
		return x, nil
	}
	return p.parseAttrExp()
}

func (p *parser) parseAttrExp() (filterNode, error) {
	t := p.peek()
	if t.kind != tkWord || !validPathWord(t.text) {
		return nil, fmt.Errorf("expected attribute name at offset %d", t.pos)
	}
	path := t.text
	p.i++
	if n := p.peek(); n != nil && n.kind == tkLBrack {
		p.i++
		inner, err := p.parseOr()
		if err != nil {
			return nil, err
		}
		if err := p.expect(tkRBrack, `"]"`); err != nil {
			return nil, err
		}
		vp := &valuePathNode{path: path, filter: inner}
		if n := p.peek(); n != nil && n.kind == tkWord && strings.HasPrefix(n.text, ".") {
			sub := n.text[1:]
			if !validPathWord(sub) || strings.Contains(sub, ".") {
				return nil, fmt.Errorf("invalid sub-attribute at offset %d", n.pos)
			}
			p.i++
			c, err := p.parseComparison(sub)
			if err != nil {
				return nil, err
			}
			vp.cmp = c
		}
		return vp, nil
	}
	return p.parseComparison(path)
}

func (p *parser) parseComparison(path string) (*cmpNode, error) {
	t := p.peek()
	if t == nil || t.kind != tkWord {
		return nil, fmt.Errorf("expected operator after %q", path)
	}
	op := strings.ToLower(t.text)
	p.i++
	if op == "pr" {
		return &cmpNode{path: path, op: op}, nil
	}
	if !compareOps[op] {
		return nil, fmt.Errorf("unknown operator %q at offset %d", t.text, t.pos)
	}
	v := p.peek()
	if v == nil {
		return nil, fmt.Errorf("expected value after %q", t.text)
	}
	p.i++
	c := &cmpNode{path: path, op: op}
	switch v.kind {
	case tkString:
		c.val = v.text
	case tkWord:
		switch strings.ToLower(v.text) {
		case "true":
			c.val = true
		case "false":
			c.val = false
		case "null":
			c.val = nil
		default:
			f, err := parseNumber(v.text)
			if err != nil {
				return nil, fmt.Errorf("invalid value %q at offset %d (strings must be quoted)", v.text, v.pos)
			}
			c.val = f
		}
	default:
		return nil, fmt.Errorf("expected value at offset %d", v.pos)
	}
	return c, nil
}

func parseNumber(s string) (float64, error) {
	if !json.Valid([]byte(s)) || s == "" || !(s[0] == '-' || (s[0] >= '0' && s[0] <= '9')) {
		return 0, errors.New("not a number")
	}
	return strconv.ParseFloat(s, 64)
}

// validPathWord checks the characters of an attribute path, including an
// optional schema URN prefix: ALPHA, DIGIT, "_", "-", "$", ":", ".".
func validPathWord(s string) bool {
	if s == "" || len(s) > 512 {
		return false
	}
	for _, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9',
			c == '_', c == '-', c == '$', c == ':', c == '.':
		default:
			return false
		}
	}
	return true
}

// resolvePath resolves an attribute path to its attribute chain. At the top
// level (parent nil) the chain is [attr], [attr, sub], [ext], [ext, attr] or
// [ext, attr, sub]; inside a value filter it is [sub] of parent.
// Attribute names of extensions may be given unqualified when unambiguous.
func resolvePath(rt *resourceType, parent *attribute, word string) ([]*attribute, error) {
	if parent != nil {
		s := parent.sub(word)
		if s == nil {
			return nil, fmt.Errorf("unknown sub-attribute %q of %q", word, parent.Name)
		}
		return []*attribute{s}, nil
	}
	var segs []*attribute
	scope := rt.Core.Attributes
	rest := word
	if len(word) > 4 && strings.EqualFold(word[:4], "urn:") {
		hasURN := func(urn string) bool {
			return len(word) >= len(urn) && strings.EqualFold(word[:len(urn)], urn) &&
				(len(word) == len(urn) || word[len(urn)] == ':')
		}
		switch {
		case hasURN(rt.Core.ID):
			if len(word) == len(rt.Core.ID) {
				return nil, fmt.Errorf("path %q names a schema, not an attribute", word)
			}
			rest = word[len(rt.Core.ID)+1:]
		default:
			var ext *attribute
			for _, a := range rt.top {
				if a.extension && hasURN(a.Name) {
					ext = a
					break
				}
			}
			if ext == nil {
				return nil, fmt.Errorf("unknown schema in attribute path %q", word)
			}
			if len(word) == len(ext.Name) {
				return []*attribute{ext}, nil
			}
			rest = word[len(ext.Name)+1:]
			segs, scope = []*attribute{ext}, ext.Sub
		}
	}
	names := strings.Split(rest, ".")
	if len(names) > 2 {
		return nil, fmt.Errorf("attribute path %q is too deep", word)
	}
	var first *attribute
	for _, a := range scope {
		if strings.EqualFold(a.Name, names[0]) {
			first = a
			break
		}
	}
	if first == nil && segs == nil {
		// Unqualified extension attribute.
		for _, e := range rt.top {
			if !e.extension {
				continue
			}
			for _, a := range e.Sub {
				if strings.EqualFold(a.Name, names[0]) {
					segs, first = []*attribute{e}, a
					break
				}
			}
			if first != nil {
				break
			}
		}
	}
	if first == nil {
		return nil, fmt.Errorf("unknown attribute %q", names[0])
	}
	segs = append(segs, first)
	if len(names) == 2 {
		s := first.sub(names[1])
		if s == nil {
			return nil, fmt.Errorf("unknown sub-attribute %q of %q", names[1], first.Name)
		}
		segs = append(segs, s)
	}
	return segs, nil
}

// compileFilter resolves and type-checks n against rt, or against the
// sub-attributes of parent inside a value filter.
func compileFilter(rt *resourceType, parent *attribute, n filterNode) error {
	switch n := n.(type) {
	case *logNode:
		if err := compileFilter(rt, parent, n.l); err != nil {
			return err
		}
		return compileFilter(rt, parent, n.r)
	case *notNode:
		return compileFilter(rt, parent, n.x)
	case *cmpNode:
		segs, err := resolvePath(rt, parent, n.path)
		if err != nil {
			return err
		}
		return n.compile(segs)
	case *valuePathNode:
		if parent != nil {
			return errors.New("value filters cannot be nested")
		}
		segs, err := resolvePath(rt, nil, n.path)
		if err != nil {
			return err
		}
		last := segs[len(segs)-1]
		if last.Type != typeComplex || last.dynamic || last.extension {
			return fmt.Errorf("attribute %q does not take a value filter", last.Name)
		}
		n.segs = segs
		if err := compileFilter(rt, last, n.filter); err != nil {
			return err
		}
		if n.cmp != nil {
			s := last.sub(n.cmp.path)
			if s == nil {
				return fmt.Errorf("unknown sub-attribute %q of %q", n.cmp.path, last.Name)
			}
			return n.cmp.compile([]*attribute{s})
		}
		return nil
	}
	return errors.New("invalid filter")
}

func (n *cmpNode) compile(segs []*attribute) error {
	last := segs[len(segs)-1]
	if last.Type == typeComplex {
		if n.op == "pr" {
			n.segs, n.last = segs, last
			return nil
		}
		v := last.sub("value")
		if v == nil || last.dynamic {
			return fmt.Errorf("cannot compare complex attribute %q", last.Name)
		}
		segs = append(append([]*attribute(nil), segs...), v)
		last = v
	}
	n.segs, n.last = segs, last
	if n.op == "pr" {
		return nil
	}
	if n.val == nil {
		if n.op != "eq" && n.op != "ne" {
			return fmt.Errorf("operator %q cannot compare with null", n.op)
		}
		return nil
	}
	switch last.Type {
	case typeBoolean:
		if n.op != "eq" && n.op != "ne" {
			return fmt.Errorf("operator %q is not supported for boolean attribute %q", n.op, last.Name)
		}
		if s, ok := n.val.(string); ok {
			b, err := parseBool(s)
			if err != nil {
				return fmt.Errorf("attribute %q compares with true or false", last.Name)
			}
			n.val = b
		}
		if _, ok := n.val.(bool); !ok {
			return fmt.Errorf("attribute %q compares with true or false", last.Name)
		}
	case typeDateTime:
		s, ok := n.val.(string)
		if !ok {
			return fmt.Errorf("attribute %q compares with a quoted dateTime", last.Name)
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return fmt.Errorf("invalid dateTime %q (want RFC 3339, e.g. 2011-05-13T04:42:34Z)", s)
		}
		if n.op == "co" || n.op == "sw" || n.op == "ew" {
			return fmt.Errorf("operator %q is not supported for dateTime attribute %q", n.op, last.Name)
		}
		n.val = t
	case typeInteger:
		if _, ok := n.val.(float64); !ok {
			return fmt.Errorf("attribute %q compares with a number", last.Name)
		}
	default: // string, reference
		if _, ok := n.val.(string); !ok {
			return fmt.Errorf("attribute %q compares with a quoted string", last.Name)
		}
	}
	return nil
}

// collect returns the values at segs in obj, flattening multi-valued
// attributes. Absent and null values are skipped.
func collect(obj map[string]any, segs []*attribute) []any {
	cur := []any{obj}
	for _, s := range segs {
		var next []any
		for _, v := range cur {
			m, ok := v.(map[string]any)
			if !ok {
				continue
			}
			x, ok := m[s.Name]
			if !ok || x == nil {
				continue
			}
			if arr, ok := x.([]any); ok {
				next = append(next, arr...)
			} else {
				next = append(next, x)
			}
		}
		cur = next
	}
	return cur
}

func present(v any) bool {
	switch v := v.(type) {
	case nil:
		return false
	case string:
		return v != ""
	case []any:
		return len(v) > 0
	case map[string]any:
		return len(v) > 0
	}
	return true
}

// eval reports whether obj (a resource document, or an element of a
// multi-valued attribute inside a value filter) matches the compiled n.
func eval(n filterNode, obj map[string]any) bool {
	switch n := n.(type) {
	case *logNode:
		if n.and {
			return eval(n.l, obj) && eval(n.r, obj)
		}
		return eval(n.l, obj) || eval(n.r, obj)
	case *notNode:
		return !eval(n.x, obj)
	case *cmpNode:
		return n.eval(obj)
	case *valuePathNode:
		for _, e := range collect(obj, n.segs) {
			m, ok := e.(map[string]any)
			if !ok || !eval(n.filter, m) {
				continue
			}
			if n.cmp == nil || n.cmp.eval(m) {
				return true
			}
		}
	}
	return false
}

func (n *cmpNode) eval(obj map[string]any) bool {
	vals := collect(obj, n.segs)
	any := false
	for _, v := range vals {
		if present(v) {
			any = true
			break
		}
	}
	switch {
	case n.op == "pr":
		return any
	case n.val == nil && n.op == "eq":
		return !any
	case n.val == nil && n.op == "ne":
		return any
	case n.op == "ne":
		for _, v := range vals {
			if compareValue(n.last, "eq", v, n.val) {
				return false
			}
		}
		return true
	}
	for _, v := range vals {
		if compareValue(n.last, n.op, v, n.val) {
			return true
		}
	}
	return false
}

// compareValue applies op to a document value and a compiled filter value.
func compareValue(a *attribute, op string, dv, fv any) bool {
	switch f := fv.(type) {
	case bool:
		b, ok := dv.(bool)
		return ok && op == "eq" && b == f
	case time.Time:
		s, ok := dv.(string)
		if !ok {
			return false
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return false
		}
		return ordered(op, t.Compare(f))
	case float64:
		var d float64
		switch x := dv.(type) {
		case float64:
			d = x
		case json.Number:
			var err error
			if d, err = x.Float64(); err != nil {
				return false
			}
		default:
			return false
		}
		switch {
		case d < f:
			return ordered(op, -1)
		case d > f:
			return ordered(op, 1)
		}
		return ordered(op, 0)
	case string:
		d, ok := dv.(string)
		if !ok {
			return false
		}
		if !a.CaseExact {
			d, f = strings.ToLower(d), strings.ToLower(f)
		}
		switch op {
		case "co":
			return strings.Contains(d, f)
		case "sw":
			return strings.HasPrefix(d, f)
		case "ew":
			return strings.HasSuffix(d, f)
		}
		return ordered(op, strings.Compare(d, f))
	}
	return false
}

func ordered(op string, c int) bool {
	switch op {
	case "eq":
		return c == 0
	case "gt":
		return c > 0
	case "ge":
		return c >= 0
	case "lt":
		return c < 0
	case "le":
		return c <= 0
	}
	return false
}

// parseBool accepts JSON booleans sent as strings, in any case: Microsoft
// Entra ID sends "True" and "False".
func parseBool(s string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, fmt.Errorf("%q is not a boolean", s)
}

// refersTo reports whether the filter mentions attribute a at the top level.
func refersTo(n filterNode, a *attribute) bool {
	switch n := n.(type) {
	case *logNode:
		return refersTo(n.l, a) || refersTo(n.r, a)
	case *notNode:
		return refersTo(n.x, a)
	case *cmpNode:
		return len(n.segs) > 0 && n.segs[0] == a
	case *valuePathNode:
		return len(n.segs) > 0 && n.segs[0] == a
	}
	return false
}

// rawPath is a parsed PATCH path (RFC 7644 §3.5.2): attrPath, or
// attrPath "[" valFilter "]" with an optional ".subAttr".
type rawPath struct {
	attr   string
	filter filterNode
	sub    string
}

func parsePath(s string) (*rawPath, error) {
	if len(s) > maxFilterLen {
		return nil, fmt.Errorf("path longer than %d bytes", maxFilterLen)
	}
	toks, err := lex(s)
	if err != nil {
		return nil, err
	}
	if len(toks) == 0 || toks[0].kind != tkWord || !validPathWord(toks[0].text) {
		return nil, fmt.Errorf("invalid path %q", s)
	}
	rp := &rawPath{attr: toks[0].text}
	p := &parser{toks: toks, i: 1}
	if t := p.peek(); t != nil && t.kind == tkLBrack {
		p.i++
		f, err := p.parseOr()
		if err != nil {
			return nil, err
		}
		if err := p.expect(tkRBrack, `"]"`); err != nil {
			return nil, err
		}
		rp.filter = f
		if t := p.peek(); t != nil && t.kind == tkWord && strings.HasPrefix(t.text, ".") {
			rp.sub = t.text[1:]
			if !validPathWord(rp.sub) || strings.Contains(rp.sub, ".") {
				return nil, fmt.Errorf("invalid sub-attribute in path %q", s)
			}
			p.i++
		}
	}
	if t := p.peek(); t != nil {
		return nil, fmt.Errorf("unexpected %q at offset %d of path", t.text, t.pos)
	}
	return rp, nil
}

// path is a resolved PATCH path.
type path struct {
	segs   []*attribute // the attribute chain up to the filtered attribute
	filter filterNode   // compiled against segs' last element, or nil
	sub    *attribute   // sub-attribute after the filter, or nil
}

func (p *path) String() string {
	var b strings.Builder
	for i, s := range p.segs {
		if i > 0 {
			if p.segs[i-1].extension {
				b.WriteByte(':')
			} else {
				b.WriteByte('.')
			}
		}
		b.WriteString(s.Name)
	}
	if p.filter != nil {
		b.WriteString("[...]")
	}
	if p.sub != nil {
		b.WriteString("." + p.sub.Name)
	}
	return b.String()
}

func resolveRawPath(rt *resourceType, rp *rawPath) (*path, error) {
	segs, err := resolvePath(rt, nil, rp.attr)
	if err != nil {
		return nil, err
	}
	p := &path{segs: segs}
	if rp.filter == nil {
		return p, nil
	}
	last := segs[len(segs)-1]
	if !last.MultiValued || last.Type != typeComplex {
		return nil, fmt.Errorf("attribute %q does not take a value filter", last.Name)
	}
	if err := compileFilter(rt, last, rp.filter); err != nil {
		return nil, err
	}
	p.filter = rp.filter
	if rp.sub != "" {
		if p.sub = last.sub(rp.sub); p.sub == nil {
			return nil, fmt.Errorf("unknown sub-attribute %q of %q", rp.sub, last.Name)
		}
	}
	return p, nil
}
