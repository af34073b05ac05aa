package iam

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
)

// Supported policy language versions. Policy variables are recognised only in
// Version2012; in Version2008 (and when Version is absent, which AWS reads as
// 2008-10-17) "${...}" is literal text.
const (
	Version2012 = "2012-10-17"
	Version2008 = "2008-10-17"
)

// Limits on what Parse accepts. They bound the work done on untrusted input.
const (
	MaxPolicyBytes = 1 << 20 // size of one JSON document
	MaxStatements  = 4096    // statements in one policy
	MaxValues      = 4096    // values in one Action/Resource/Principal/Condition list
	MaxDepth       = 16      // JSON nesting depth
)

// Effect is the Effect of a statement.
type Effect string

// Statement effects.
const (
	Allow Effect = "Allow"
	Deny  Effect = "Deny"
)

// Policy is a parsed and validated IAM policy document. Parse normalizes it:
// single values become one-element lists, Condition entries are sorted by
// operator then key, Principal entries by type. A Policy is a plain value
// and may be re-serialized with encoding/json.
type Policy struct {
	Version    string
	ID         string
	Statements []Statement
}

// Statement is one element of a policy's Statement list. Nil lists mean the
// element was absent.
type Statement struct {
	Sid          string
	Effect       Effect
	Principal    *Principal
	NotPrincipal *Principal
	Action       []string
	NotAction    []string
	Resource     []string
	NotResource  []string
	Condition    []Condition
}

// Principal is a Principal or NotPrincipal element: either "*" (Any) or a
// map from principal type (AWS, Federated, Service, CanonicalUser) to values.
type Principal struct {
	Any     bool
	Entries []PrincipalEntry
}

// PrincipalEntry is one principal type and its values.
type PrincipalEntry struct {
	Type   string
	Values []string
}

// Condition is one (operator, key, values) triple of a Condition block.
// JSON numbers and booleans are kept as their literal text.
type Condition struct {
	Operator string
	Key      string
	Values   []string
}

// Issue is one validation problem, located by its JSON path such as
// "Statement[2].Condition.StringLike".
type Issue struct {
	Path    string
	Message string
}

func (i Issue) String() string {
	if i.Path == "" {
		return i.Message
	}
	return i.Path + ": " + i.Message
}

// ValidationError lists every problem found in a policy document.
type ValidationError struct {
	Issues []Issue
}

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Issues))
	for i, is := range e.Issues {
		parts[i] = is.String()
	}
	return "iam: invalid policy: " + strings.Join(parts, "; ")
}

// ErrInvalidPolicy is matched by every error Parse returns, with errors.Is.
var ErrInvalidPolicy = errors.New("iam: invalid policy")

// Is makes errors.Is(err, ErrInvalidPolicy) true.
func (e *ValidationError) Is(target error) bool { return target == ErrInvalidPolicy }

type parser struct {
	issues []Issue
	vars   bool
}

func (p *parser) addf(path, format string, args ...any) {
	if len(p.issues) < 100 {
		p.issues = append(p.issues, Issue{Path: path, Message: fmt.Sprintf(format, args...)})
	}
}

// jsonDepth returns the maximum nesting depth of JSON text, ignoring strings.
func jsonDepth(data []byte) int {
	depth, maxDepth, inStr, esc := 0, 0, false, false
	for _, c := range data {
		if inStr {
			switch {
			case esc:
				esc = false
			case c == '\\':
				esc = true
			case c == '"':
				inStr = false
			}
			continue
		}
		switch c {
		case '"':
			inStr = true
		case '{', '[':
			depth++
			maxDepth = max(maxDepth, depth)
		case '}', ']':
			depth--
		}
	}
	return maxDepth
}

// Parse parses and validates a JSON policy document. It returns a
// *ValidationError naming the JSON path of every problem found. Parse is
// safe on untrusted input: it bounds size and nesting and never panics.
func Parse(data []byte) (*Policy, error) {
	if len(data) > MaxPolicyBytes {
		return nil, &ValidationError{Issues: []Issue{{Message: fmt.Sprintf("policy is %d bytes, more than the limit of %d", len(data), MaxPolicyBytes)}}}
	}
	if d := jsonDepth(data); d > MaxDepth {
		return nil, &ValidationError{Issues: []Issue{{Message: fmt.Sprintf("policy nests %d levels deep, more than the limit of %d", d, MaxDepth)}}}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	var doc any
	if err := dec.Decode(&doc); err != nil {
		return nil, &ValidationError{Issues: []Issue{{Message: "malformed JSON: " + err.Error()}}}
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, &ValidationError{Issues: []Issue{{Message: "malformed JSON: data after the policy document"}}}
	}
	var p parser
	pol := p.policy(doc)
	if len(p.issues) > 0 {
		return nil, &ValidationError{Issues: p.issues}
	}
	return pol, nil
}

// MustParse is Parse for tests and literals; it panics on error.
func MustParse(data string) *Policy {
	p, err := Parse([]byte(data))
	if err != nil {
		panic(err)
	}
	return p
}

func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	case []any:
		return "a list"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func (p *parser) policy(doc any) *Policy {
	obj, ok := doc.(map[string]any)
	if !ok {
		p.addf("", "policy must be a JSON object, not %s", typeName(doc))
		return nil
	}
	pol := &Policy{}
	for _, k := range sortedKeys(obj) {
		switch k {
		case "Version", "Id", "Statement":
		default:
			p.addf(k, "unknown top-level element")
		}
	}
	if v, ok := obj["Version"]; ok {
		s, ok := v.(string)
		switch {
		case !ok:
			p.addf("Version", "must be a string, not %s", typeName(v))
		case s != Version2012 && s != Version2008:
			p.addf("Version", "unsupported version %q (want %q or %q)", s, Version2012, Version2008)
		default:
			pol.Version = s
		}
	}
	p.vars = pol.Version == Version2012
	if v, ok := obj["Id"]; ok {
		if s, ok := v.(string); ok {
			pol.ID = s
		} else {
			p.addf("Id", "must be a string, not %s", typeName(v))
		}
	}
	st, ok := obj["Statement"]
	if !ok {
		p.addf("Statement", "missing")
		return pol
	}
	switch st := st.(type) {
	case map[string]any:
		pol.Statements = []Statement{p.statement("Statement", st)}
	case []any:
		if len(st) == 0 {
			p.addf("Statement", "must not be empty")
		}
		if len(st) > MaxStatements {
			p.addf("Statement", "%d statements, more than the limit of %d", len(st), MaxStatements)
			return pol
		}
		for i, s := range st {
			path := fmt.Sprintf("Statement[%d]", i)
			m, ok := s.(map[string]any)
			if !ok {
				p.addf(path, "must be an object, not %s", typeName(s))
				continue
			}
			pol.Statements = append(pol.Statements, p.statement(path, m))
		}
	default:
		p.addf("Statement", "must be an object or a list, not %s", typeName(st))
	}
	sids := map[string]string{}
	for i, s := range pol.Statements {
		if s.Sid == "" {
			continue
		}
		if prev, dup := sids[s.Sid]; dup {
			p.addf(fmt.Sprintf("Statement[%d].Sid", i), "duplicate Sid %q (also in %s)", s.Sid, prev)
		} else {
			sids[s.Sid] = fmt.Sprintf("Statement[%d]", i)
		}
	}
	return pol
}

// stringList reads a string or a non-empty list of strings.
func (p *parser) stringList(path string, v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case []any:
		if len(v) == 0 {
			p.addf(path, "must not be an empty list")
			return nil
		}
		if len(v) > MaxValues {
			p.addf(path, "%d values, more than the limit of %d", len(v), MaxValues)
			return nil
		}
		out := make([]string, 0, len(v))
		for i, e := range v {
			s, ok := e.(string)
			if !ok {
				p.addf(fmt.Sprintf("%s[%d]", path, i), "must be a string, not %s", typeName(e))
				continue
			}
			out = append(out, s)
		}
		return out
	}
	p.addf(path, "must be a string or a list of strings, not %s", typeName(v))
	return nil
}

func (p *parser) statement(path string, m map[string]any) Statement {
	var s Statement
	for _, k := range sortedKeys(m) {
		v := m[k]
		kp := path + "." + k
		switch k {
		case "Sid":
			if str, ok := v.(string); ok {
				s.Sid = str
			} else {
				p.addf(kp, "must be a string, not %s", typeName(v))
			}
		case "Effect":
			str, _ := v.(string)
			switch Effect(str) {
			case Allow, Deny:
				s.Effect = Effect(str)
			default:
				p.addf(kp, "must be \"Allow\" or \"Deny\", not %s", jsonText(v))
			}
		case "Principal":
			s.Principal = p.principal(kp, v)
		case "NotPrincipal":
			s.NotPrincipal = p.principal(kp, v)
		case "Action":
			s.Action = p.actions(kp, v)
		case "NotAction":
			s.NotAction = p.actions(kp, v)
		case "Resource":
			s.Resource = p.resources(kp, v)
		case "NotResource":
			s.NotResource = p.resources(kp, v)
		case "Condition":
			s.Condition = p.conditions(kp, v)
		default:
			p.addf(kp, "unknown statement element")
		}
	}
	_, hasEffect := m["Effect"]
	_, hasAction := m["Action"]
	_, hasNotAction := m["NotAction"]
	_, hasResource := m["Resource"]
	_, hasNotResource := m["NotResource"]
	_, hasPrincipal := m["Principal"]
	_, hasNotPrincipal := m["NotPrincipal"]
	if !hasEffect {
		p.addf(path, "missing Effect")
	}
	switch {
	case hasAction && hasNotAction:
		p.addf(path, "has both Action and NotAction")
	case !hasAction && !hasNotAction:
		p.addf(path, "missing Action or NotAction")
	}
	if hasResource && hasNotResource {
		p.addf(path, "has both Resource and NotResource")
	}
	if !hasResource && !hasNotResource && !hasPrincipal && !hasNotPrincipal {
		// Only resource-based (trust) policies, which name a principal, may
		// leave the resource implicit.
		p.addf(path, "missing Resource or NotResource")
	}
	if hasPrincipal && hasNotPrincipal {
		p.addf(path, "has both Principal and NotPrincipal")
	}
	return s
}

func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return typeName(v)
	}
	if len(b) > 64 {
		return string(b[:64]) + "…"
	}
	return string(b)
}

func validServicePrefix(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

func validActionName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '*' || c == '?') {
			return false
		}
	}
	return true
}

func (p *parser) actions(path string, v any) []string {
	list := p.stringList(path, v)
	for i, a := range list {
		if a == "*" {
			continue
		}
		svc, name, ok := strings.Cut(a, ":")
		if !ok || !validServicePrefix(svc) || !validActionName(name) {
			p.addf(fmt.Sprintf("%s[%d]", path, i), "action %q must be \"*\" or \"service:action\" (wildcards only in the action part)", a)
		}
	}
	return list
}

func (p *parser) resources(path string, v any) []string {
	list := p.stringList(path, v)
	for i, r := range list {
		if err := validateResource(r, p.vars); err != nil {
			p.addf(fmt.Sprintf("%s[%d]", path, i), "%v", err)
		}
	}
	return list
}

func validateResource(r string, vars bool) error {
	if r == "*" {
		return nil
	}
	if !strings.HasPrefix(r, "arn:") {
		return fmt.Errorf("resource %q must be \"*\" or an ARN", r)
	}
	a, err := parseARNPattern(r, parseOptions{glob: true, vars: vars})
	if err != nil {
		return err
	}
	if !a.isARN {
		return fmt.Errorf("resource %q is not an ARN: want arn:partition:service:region:account:resource", r)
	}
	if a.parts[1].raw == "" || a.parts[2].raw == "" {
		return fmt.Errorf("resource %q is not an ARN: empty partition or service", r)
	}
	return nil
}

func (p *parser) principal(path string, v any) *Principal {
	switch v := v.(type) {
	case string:
		if v != "*" {
			p.addf(path, "must be \"*\" or an object such as {\"AWS\": ...}, not %q", v)
			return nil
		}
		return &Principal{Any: true}
	case map[string]any:
		if len(v) == 0 {
			p.addf(path, "must not be empty")
			return nil
		}
		pr := &Principal{}
		for _, k := range sortedKeys(v) {
			switch k {
			case "AWS", "Federated", "Service", "CanonicalUser":
			default:
				p.addf(path+"."+k, "unknown principal type")
				continue
			}
			pr.Entries = append(pr.Entries, PrincipalEntry{Type: k, Values: p.stringList(path+"."+k, v[k])})
		}
		return pr
	}
	p.addf(path, "must be \"*\" or an object, not %s", typeName(v))
	return nil
}

func (p *parser) conditions(path string, v any) []Condition {
	m, ok := v.(map[string]any)
	if !ok {
		p.addf(path, "must be an object, not %s", typeName(v))
		return nil
	}
	var out []Condition
	for _, opName := range sortedKeys(m) {
		op, err := parseOperator(opName)
		opPath := path + "." + opName
		if err != nil {
			p.addf(opPath, "%v", err)
			continue
		}
		keys, ok := m[opName].(map[string]any)
		if !ok {
			p.addf(opPath, "must be an object of condition keys, not %s", typeName(m[opName]))
			continue
		}
		if len(keys) == 0 {
			p.addf(opPath, "must name at least one condition key")
		}
		for _, key := range sortedKeys(keys) {
			kp := opPath + "." + key
			if !validVarKey(key) {
				p.addf(kp, "malformed condition key %q", key)
				continue
			}
			vals := p.conditionValues(kp, keys[key])
			if vals == nil {
				continue
			}
			for i, val := range vals {
				if _, err := op.compileValue(val, p.vars); err != nil {
					p.addf(fmt.Sprintf("%s[%d]", kp, i), "%v", err)
				}
			}
			out = append(out, Condition{Operator: opName, Key: key, Values: vals})
		}
	}
	return out
}

func scalarText(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case json.Number:
		return v.String(), true
	case bool:
		if v {
			return "true", true
		}
		return "false", true
	}
	return "", false
}

func (p *parser) conditionValues(path string, v any) []string {
	if s, ok := scalarText(v); ok {
		return []string{s}
	}
	list, ok := v.([]any)
	if !ok {
		p.addf(path, "must be a value or a list of values, not %s", typeName(v))
		return nil
	}
	if len(list) == 0 {
		p.addf(path, "must not be an empty list")
		return nil
	}
	if len(list) > MaxValues {
		p.addf(path, "%d values, more than the limit of %d", len(list), MaxValues)
		return nil
	}
	out := make([]string, 0, len(list))
	for i, e := range list {
		s, ok := scalarText(e)
		if !ok {
			p.addf(fmt.Sprintf("%s[%d]", path, i), "must be a string, number or boolean, not %s", typeName(e))
			return nil
		}
		out = append(out, s)
	}
	return out
}

// MarshalJSON writes the policy in AWS JSON form. Parse(MarshalJSON(p))
// yields a Policy equal to p.
func (p *Policy) MarshalJSON() ([]byte, error) {
	type stmt struct {
		Sid          string                    `json:"Sid,omitempty"`
		Effect       Effect                    `json:"Effect"`
		Principal    any                       `json:"Principal,omitempty"`
		NotPrincipal any                       `json:"NotPrincipal,omitempty"`
		Action       any                       `json:"Action,omitempty"`
		NotAction    any                       `json:"NotAction,omitempty"`
		Resource     any                       `json:"Resource,omitempty"`
		NotResource  any                       `json:"NotResource,omitempty"`
		Condition    map[string]map[string]any `json:"Condition,omitempty"`
	}
	type doc struct {
		Version   string `json:"Version,omitempty"`
		ID        string `json:"Id,omitempty"`
		Statement []stmt `json:"Statement"`
	}
	list := func(v []string) any {
		switch len(v) {
		case 0:
			return nil
		case 1:
			return v[0]
		}
		return v
	}
	princ := func(pr *Principal) any {
		if pr == nil {
			return nil
		}
		if pr.Any {
			return "*"
		}
		m := map[string]any{}
		for _, e := range pr.Entries {
			m[e.Type] = list(e.Values)
		}
		return m
	}
	d := doc{Version: p.Version, ID: p.ID, Statement: make([]stmt, len(p.Statements))}
	for i, s := range p.Statements {
		o := stmt{
			Sid: s.Sid, Effect: s.Effect,
			Principal: princ(s.Principal), NotPrincipal: princ(s.NotPrincipal),
			Action: list(s.Action), NotAction: list(s.NotAction),
			Resource: list(s.Resource), NotResource: list(s.NotResource),
		}
		if len(s.Condition) > 0 {
			o.Condition = map[string]map[string]any{}
			for _, c := range s.Condition {
				if o.Condition[c.Operator] == nil {
					o.Condition[c.Operator] = map[string]any{}
				}
				o.Condition[c.Operator][c.Key] = list(c.Values)
			}
		}
		d.Statement[i] = o
	}
	return json.Marshal(d)
}
