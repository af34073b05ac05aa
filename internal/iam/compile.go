package iam

import (
	"bytes"
	"fmt"
	"strings"
)

// Layer says which part of the AWS evaluation a policy belongs to.
type Layer uint8

// Policy layers. Each present layer must allow a request; an explicit deny in
// any layer denies it ("Policy evaluation logic", AWS IAM User Guide).
const (
	LayerIdentity Layer = iota // identity-based policies (the role's or user's)
	LayerSession               // session policies passed to AssumeRole*
	LayerBoundary              // the permissions boundary
	numLayers
)

func (l Layer) String() string {
	switch l {
	case LayerIdentity:
		return "identity"
	case LayerSession:
		return "session"
	case LayerBoundary:
		return "boundary"
	}
	return fmt.Sprintf("Layer(%d)", l)
}

// NamedPolicy is a policy with the name used in explanations and the layer
// it belongs to.
type NamedPolicy struct {
	Name   string
	Layer  Layer
	Policy *Policy
}

// Decision is the outcome of an evaluation.
type Decision uint8

// Decisions, in the AWS order of precedence: an explicit deny beats an
// allow, which beats the implicit deny.
const (
	ImplicitDeny Decision = iota
	Allowed
	ExplicitDeny
)

func (d Decision) String() string {
	switch d {
	case Allowed:
		return "Allow"
	case ExplicitDeny:
		return "ExplicitDeny"
	}
	return "ImplicitDeny"
}

// MarshalText writes the decision name.
func (d Decision) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// Request is one access to authorize.
type Request struct {
	// Action is "service:Action", compared case-insensitively.
	Action string
	// Resource is an ARN, compared case-sensitively part by part.
	Resource string
	// Context holds the condition keys (aws:username, aws:CurrentTime,
	// aws:SourceIp, s3:prefix, …) with their values. Keys are matched
	// case-insensitively; lower-case keys are found fastest.
	Context map[string][]string
	// Principals are the caller's identities, checked against Principal
	// and NotPrincipal elements (identity policies have none). Each has a
	// type, and a value names only identities of its own type. A caller may
	// hold several identities, such as a role session's ARN and the role's
	// ARN; the account of every AWS identity is added implicitly, so
	// {"AWS": "123456789012"} names every AWS identity of that account. A
	// request with neither Principals nor Principal is anonymous.
	Principals []Identity
	// Principal is the caller as one untyped string, read as the single
	// identity IdentityOf(Principal) when Principals is empty.
	//
	// Deprecated: the type is guessed from the text; set Principals.
	Principal string
}

// lookup returns the values of a context key, case-insensitively. An empty
// list counts as absent.
func (r *Request) lookup(key, keyLow string) ([]string, bool) {
	if r == nil || r.Context == nil {
		return nil, false
	}
	if v, ok := r.Context[keyLow]; ok {
		return v, len(v) > 0
	}
	if v, ok := r.Context[key]; ok {
		return v, len(v) > 0
	}
	for k, v := range r.Context {
		if strings.EqualFold(k, key) {
			return v, len(v) > 0
		}
	}
	return nil, false
}

// has reports whether the context has the key, even with no values.
func (r *Request) has(key, keyLow string) bool {
	if r == nil || r.Context == nil {
		return false
	}
	if _, ok := r.Context[keyLow]; ok {
		return true
	}
	for k := range r.Context {
		if strings.EqualFold(k, key) {
			return true
		}
	}
	return false
}

// resolve returns the value of a policy variable: the context key's single
// value, else the default. A key that is missing, has several values or has
// one empty value has no value (AWS: "Policy variables with no value"), so
// an empty user name or tag can never widen home/${aws:username}/* to
// home//* or satisfy a comparison with the empty string.
func (r *Request) resolve(t *token) (string, bool) {
	if v, ok := r.lookup(t.key, t.keyLow); ok && len(v) == 1 && v[0] != "" {
		return v[0], true
	}
	if t.hasDef {
		return t.def, true
	}
	return "", false
}

// StatementRef names one statement of one policy.
type StatementRef struct {
	Policy string `json:"policy"`
	Layer  Layer  `json:"-"`
	Sid    string `json:"sid,omitempty"`
	Index  int    `json:"index"`
}

func (s StatementRef) String() string {
	if s.Sid != "" {
		return fmt.Sprintf("statement '%s' of policy '%s'", s.Sid, s.Policy)
	}
	return fmt.Sprintf("statement #%d of policy '%s'", s.Index, s.Policy)
}

// Result is the outcome of an evaluation with what decided it.
type Result struct {
	Decision Decision
	// Statements are the deciding statements: every matching Deny for an
	// ExplicitDeny, the allowing identity statement for an Allow, none for
	// an ImplicitDeny. The slice is shared with the Compiled policy set and
	// must not be modified.
	Statements []StatementRef
	// SessionStatement and BoundaryStatement are the statements of those
	// layers that also allowed the request, when the layers are present.
	SessionStatement  *StatementRef
	BoundaryStatement *StatementRef
	// Layer is the layer that did not allow the request (ImplicitDeny) or
	// that holds the first deny (ExplicitDeny).
	Layer    Layer
	Action   string
	Resource string
}

// Reason explains the decision in one sentence, for people and audit logs.
func (r Result) Reason() string {
	switch r.Decision {
	case Allowed:
		if len(r.Statements) > 0 {
			return fmt.Sprintf("allowed by %s", r.Statements[0])
		}
		return "allowed"
	case ExplicitDeny:
		if len(r.Statements) > 0 {
			return fmt.Sprintf("denied by %s", r.Statements[0])
		}
		return "explicitly denied"
	}
	switch r.Layer {
	case LayerSession:
		return fmt.Sprintf("session policy does not allow %s on %s", r.Action, r.Resource)
	case LayerBoundary:
		return fmt.Sprintf("permissions boundary does not allow %s on %s", r.Action, r.Resource)
	}
	return fmt.Sprintf("no statement allows %s on %s", r.Action, r.Resource)
}

// cstmt is a compiled statement.
type cstmt struct {
	ref          []StatementRef // one element, shared with Results
	allow        bool
	notAction    bool
	actions      []pattern // lower-cased, folded matching
	notResource  bool
	anyResource  bool // no Resource element (trust policies)
	resources    []arnPattern
	principal    *cprincipal // nil: no Principal or NotPrincipal element
	notPrincipal bool
	conds        []compiledCond
}

// Compiled is a set of policies compiled for evaluation. It is immutable and
// safe for concurrent use by many goroutines.
type Compiled struct {
	stmts   []cstmt
	layers  [numLayers]struct{ allow, deny actionIndex }
	present [numLayers]bool
	names   []string
	keys    []string // lower-cased condition keys and policy variables named (NamesKeyPrefix)
}

// actionIndex finds the statements that may match an action: by exact
// (lower-cased) action name, by service prefix for patterns such as
// "s3:Get*", and a catch-all for "*" and NotAction. Each bucket is a
// resource-prefix trie.
type actionIndex struct {
	exact   map[string]*trie
	service map[string]*trie
	global  *trie
}

// trie is a byte trie over the literal prefixes of resource patterns. Walking
// a request resource through it visits every statement whose resource
// pattern could match.
type trie struct {
	nodes []tnode
}

type tnode struct {
	edges []tedge
	stmts []int32
}

type tedge struct {
	b     byte
	child int32
}

func newTrie() *trie { return &trie{nodes: make([]tnode, 1)} }

func (t *trie) insert(prefix string, stmt int32) {
	n := int32(0)
	for i := 0; i < len(prefix); i++ {
		c := prefix[i]
		next := int32(-1)
		for _, e := range t.nodes[n].edges {
			if e.b == c {
				next = e.child
				break
			}
		}
		if next < 0 {
			t.nodes = append(t.nodes, tnode{})
			next = int32(len(t.nodes) - 1)
			t.nodes[n].edges = append(t.nodes[n].edges, tedge{b: c, child: next})
		}
		n = next
	}
	st := t.nodes[n].stmts
	if len(st) > 0 && st[len(st)-1] == stmt {
		return
	}
	t.nodes[n].stmts = append(st, stmt)
}

// walk calls f for every statement whose prefix is a prefix of s, until f
// returns false.
func (t *trie) walk(s string, f func(int32) bool) bool {
	if t == nil {
		return true
	}
	n := int32(0)
	for i := 0; ; i++ {
		for _, st := range t.nodes[n].stmts {
			if !f(st) {
				return false
			}
		}
		if i == len(s) {
			return true
		}
		next := int32(-1)
		for _, e := range t.nodes[n].edges {
			if e.b == s[i] {
				next = e.child
				break
			}
		}
		if next < 0 {
			return true
		}
		n = next
	}
}

func (ix *actionIndex) bucket(m *map[string]*trie, key string) *trie {
	if *m == nil {
		*m = map[string]*trie{}
	}
	t := (*m)[key]
	if t == nil {
		t = newTrie()
		(*m)[key] = t
	}
	return t
}

func (ix *actionIndex) add(s *cstmt, idx int32, actionsRaw []string) {
	var prefixes []string
	if s.notResource || s.anyResource {
		prefixes = []string{""}
	} else {
		for i := range s.resources {
			prefixes = append(prefixes, s.resources[i].literalPrefix())
		}
	}
	var buckets []*trie
	if s.notAction {
		if ix.global == nil {
			ix.global = newTrie()
		}
		buckets = append(buckets, ix.global)
	} else {
		for _, a := range actionsRaw {
			low := strings.ToLower(a)
			svc, name, ok := strings.Cut(low, ":")
			switch {
			case !ok || strings.ContainsAny(svc, "*?"):
				if ix.global == nil {
					ix.global = newTrie()
				}
				buckets = append(buckets, ix.global)
			case strings.ContainsAny(name, "*?"):
				buckets = append(buckets, ix.bucket(&ix.service, svc))
			default:
				buckets = append(buckets, ix.bucket(&ix.exact, low))
			}
		}
	}
	for _, b := range buckets {
		for _, p := range prefixes {
			b.insert(p, idx)
		}
	}
}

// Compile validates nothing more than Parse did; it pre-parses patterns and
// builds the index. Policies without a Name are named by their position.
func Compile(policies ...NamedPolicy) (*Compiled, error) {
	c := &Compiled{}
	for pi, np := range policies {
		if np.Policy == nil {
			return nil, fmt.Errorf("iam: compile: policy %d is nil", pi)
		}
		if np.Layer >= numLayers {
			return nil, fmt.Errorf("iam: compile: policy %d: unknown layer %d", pi, np.Layer)
		}
		name := np.Name
		if name == "" {
			name = fmt.Sprintf("policy%d", pi)
		}
		c.names = append(c.names, name)
		c.present[np.Layer] = true
		vars := np.Policy.Version == Version2012
		for si, s := range np.Policy.Statements {
			cs, err := compileStatement(s, vars)
			if err != nil {
				return nil, fmt.Errorf("iam: compile: policy %q statement %d: %w", name, si, err)
			}
			cs.ref = []StatementRef{{Policy: name, Layer: np.Layer, Sid: s.Sid, Index: si}}
			idx := int32(len(c.stmts))
			c.stmts = append(c.stmts, cs)
			c.addKeys(&c.stmts[idx])
			l := &c.layers[np.Layer]
			ix := &l.allow
			if !cs.allow {
				ix = &l.deny
			}
			raw := s.Action
			if cs.notAction {
				raw = s.NotAction
			}
			ix.add(&c.stmts[idx], idx, raw)
		}
	}
	return c, nil
}

func compileStatement(s Statement, vars bool) (cstmt, error) {
	cs := cstmt{allow: s.Effect == Allow}
	if s.Effect != Allow && s.Effect != Deny {
		return cs, fmt.Errorf("bad Effect %q", s.Effect)
	}
	acts := s.Action
	if s.NotAction != nil {
		cs.notAction, acts = true, s.NotAction
	}
	for _, a := range acts {
		p, err := parsePattern(strings.ToLower(a), parseOptions{glob: true})
		if err != nil {
			return cs, err
		}
		cs.actions = append(cs.actions, p)
	}
	res := s.Resource
	switch {
	case s.NotResource != nil:
		cs.notResource, res = true, s.NotResource
	case s.Resource == nil:
		cs.anyResource = true
	}
	for _, r := range res {
		if err := validateResource(r, vars); err != nil {
			return cs, err
		}
		a, err := parseARNPattern(r, parseOptions{glob: true, vars: vars})
		if err != nil {
			return cs, err
		}
		cs.resources = append(cs.resources, a)
	}
	switch {
	case s.Principal != nil:
		cs.principal = compilePrincipal(s.Principal)
	case s.NotPrincipal != nil:
		cs.principal, cs.notPrincipal = compilePrincipal(s.NotPrincipal), true
	}
	for _, cond := range s.Condition {
		cc, err := compileCondition(cond, vars)
		if err != nil {
			return cs, fmt.Errorf("condition %s %s: %w", cond.Operator, cond.Key, err)
		}
		cs.conds = append(cs.conds, cc)
	}
	return cs, nil
}

// matches reports whether the statement applies to the request.
func (s *cstmt) matches(r *Request) bool {
	hit := false
	for i := range s.actions {
		if s.actions[i].matches(r.Action, true, r) {
			hit = true
			break
		}
	}
	if hit == s.notAction {
		return false
	}
	if !s.anyResource {
		hit = false
		for i := range s.resources {
			if s.resources[i].matches(r.Resource, r) {
				hit = true
				break
			}
		}
		if hit == s.notResource {
			return false
		}
	}
	if s.principal != nil && !s.principal.applies(r, s.notPrincipal) {
		return false
	}
	for i := range s.conds {
		if !s.conds[i].eval(r) {
			return false
		}
	}
	return true
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// lowerASCII lower-cases a into buf and returns the used part, or nil when
// a does not fit.
func lowerASCII(a string, buf []byte) []byte {
	if len(a) > len(buf) {
		return nil
	}
	for i := 0; i < len(a); i++ {
		c := a[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf[i] = c
	}
	return buf[:len(a)]
}

// searchState is one search of an index: it visits the candidate
// statements for the request and keeps the lowest-numbered match (best), or
// with all set every match. It lives on the caller's stack.
type searchState struct {
	c      *Compiled
	r      *Request
	low    [128]byte // the lower-cased action
	lowLen int       // -1 when the action does not fit in low
	best   int32
	all    bool
	nfound int
	found  [8]int32
	more   []int32 // matches beyond len(found); rare
}

func (st *searchState) init(c *Compiled, r *Request, all bool) {
	st.c, st.r, st.all, st.best, st.nfound, st.more = c, r, all, -1, 0, nil
	if l := lowerASCII(r.Action, st.low[:]); l != nil {
		st.lowLen = len(l)
	} else {
		st.lowLen = -1
	}
}

func (st *searchState) matches() []int32 {
	if st.more != nil {
		return st.more
	}
	return st.found[:st.nfound]
}

func (st *searchState) visit(i int32) bool {
	if st.all {
		for _, f := range st.matches() {
			if f == i {
				return true
			}
		}
	} else if st.best >= 0 && i >= st.best {
		return true
	}
	if !st.c.stmts[i].matches(st.r) {
		return true
	}
	if !st.all {
		st.best = i
		return true
	}
	if st.more == nil && st.nfound < len(st.found) {
		st.found[st.nfound] = i
		st.nfound++
		return true
	}
	if st.more == nil {
		st.more = append([]int32(nil), st.found[:]...)
	}
	st.more = append(st.more, i)
	return true
}

func (c *Compiled) search(ix *actionIndex, st *searchState) {
	res := st.r.Resource
	if st.lowLen < 0 {
		low := strings.ToLower(st.r.Action)
		ix.exact[low].walk(res, st.visit)
		if svc, _, ok := strings.Cut(low, ":"); ok {
			ix.service[svc].walk(res, st.visit)
		}
		ix.global.walk(res, st.visit)
		return
	}
	low := st.low[:st.lowLen]
	if ix.exact != nil {
		ix.exact[string(low)].walk(res, st.visit)
	}
	if ix.service != nil {
		if colon := bytes.IndexByte(low, ':'); colon >= 0 {
			ix.service[string(low[:colon])].walk(res, st.visit)
		}
	}
	ix.global.walk(res, st.visit)
}

// Evaluate decides the request with AWS logic: an explicit Deny in any
// layer denies; otherwise the identity layer and every other present layer
// (session policy, permissions boundary) must each allow. Evaluate is safe
// for concurrent use; on the common paths it does not allocate.
func (c *Compiled) Evaluate(r *Request) Result {
	res := Result{Action: r.Action, Resource: r.Resource}
	var st searchState
	st.init(c, r, true)
	for l := range numLayers {
		if c.present[l] {
			c.search(&c.layers[l].deny, &st)
		}
	}
	if found := st.matches(); len(found) > 0 {
		res.Decision = ExplicitDeny
		if len(found) == 1 {
			res.Statements = c.stmts[found[0]].ref
			res.Layer = res.Statements[0].Layer
			return res
		}
		sortInt32(found)
		res.Statements = make([]StatementRef, len(found))
		for i, f := range found {
			res.Statements[i] = c.stmts[f].ref[0]
		}
		res.Layer = res.Statements[0].Layer
		return res
	}
	for _, l := range [...]Layer{LayerIdentity, LayerBoundary, LayerSession} {
		if l != LayerIdentity && !c.present[l] {
			continue
		}
		st.init(c, r, false)
		c.search(&c.layers[l].allow, &st)
		if st.best < 0 {
			res.Decision = ImplicitDeny
			res.Layer = l
			res.Statements = nil
			res.SessionStatement, res.BoundaryStatement = nil, nil
			return res
		}
		ref := c.stmts[st.best].ref
		switch l {
		case LayerIdentity:
			res.Statements = ref
		case LayerSession:
			res.SessionStatement = &ref[0]
		case LayerBoundary:
			res.BoundaryStatement = &ref[0]
		}
	}
	res.Decision = Allowed
	return res
}

func sortInt32(s []int32) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}

// evaluateLinear is Evaluate without the index: it scans every statement.
// Tests use it to check the index never loses a statement.
func (c *Compiled) evaluateLinear(r *Request) Decision {
	var allowed [numLayers]bool
	for i := range c.stmts {
		s := &c.stmts[i]
		if !s.matches(r) {
			continue
		}
		if !s.allow {
			return ExplicitDeny
		}
		allowed[s.ref[0].Layer] = true
	}
	if !allowed[LayerIdentity] {
		return ImplicitDeny
	}
	for l := range numLayers {
		if c.present[l] && !allowed[l] {
			return ImplicitDeny
		}
	}
	return Allowed
}
