package iam

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// tokenKind is the kind of one element of a compiled pattern.
type tokenKind uint8

const (
	tLit   tokenKind = iota // literal text (compared exactly, or folded)
	tStar                   // '*': any run of characters, possibly empty
	tQmark                  // '?': exactly one character
	tVar                    // ${key} or ${key, 'default'}: resolved from the request context
)

type token struct {
	kind   tokenKind
	lit    string // tLit text
	key    string // tVar key as written
	keyLow string // tVar key, lower-cased
	def    string // tVar default
	hasDef bool
}

// pattern is a parsed string value: literal text, wildcards and variables.
type pattern struct {
	raw  string
	toks []token
	// plain is true when the pattern is a single literal (or empty): the fast
	// path compares strings directly.
	plain bool
}

// parseOptions say how a value is read: whether '*' and '?' are wildcards
// and whether ${...} introduces a policy variable (Version 2012-10-17 only).
type parseOptions struct {
	glob bool
	vars bool
}

// validVarKey reports whether s is a usable variable name: a context key such
// as aws:username or aws:PrincipalTag/team.
func validVarKey(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == ':' || c == '/' || c == '_' || c == '-' || c == '.' || c == '@' || c == '+' || c == '=':
		default:
			return false
		}
	}
	return true
}

// parsePattern tokenizes s. It fails on a malformed variable.
func parsePattern(s string, o parseOptions) (pattern, error) {
	p := pattern{raw: s}
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			p.toks = append(p.toks, token{kind: tLit, lit: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case o.glob && c == '*':
			flush()
			p.toks = append(p.toks, token{kind: tStar})
			i++
		case o.glob && c == '?':
			flush()
			p.toks = append(p.toks, token{kind: tQmark})
			i++
		case o.vars && c == '$' && i+1 < len(s) && s[i+1] == '{':
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				return pattern{}, fmt.Errorf("unterminated policy variable in %q", s)
			}
			body := s[i+2 : i+2+end]
			i += 2 + end + 1
			switch body {
			case "*", "?", "$":
				lit.WriteString(body)
				continue
			}
			name, def, hasDef := body, "", false
			if k, d, ok := strings.Cut(body, ","); ok {
				name = strings.TrimSpace(k)
				d = strings.TrimSpace(d)
				if len(d) < 2 || d[0] != '\'' || d[len(d)-1] != '\'' {
					return pattern{}, fmt.Errorf("policy variable ${%s}: default must be a single-quoted string", body)
				}
				def, hasDef = d[1:len(d)-1], true
				if strings.ContainsRune(def, '\'') {
					return pattern{}, fmt.Errorf("policy variable ${%s}: default must not contain a quote", body)
				}
			}
			if !validVarKey(name) {
				return pattern{}, fmt.Errorf("malformed policy variable ${%s}", body)
			}
			flush()
			p.toks = append(p.toks, token{kind: tVar, key: name, keyLow: strings.ToLower(name), def: def, hasDef: hasDef})
		default:
			lit.WriteByte(c)
			i++
		}
	}
	flush()
	p.plain = len(p.toks) == 0 || (len(p.toks) == 1 && p.toks[0].kind == tLit)
	return p, nil
}

// literal returns the text of a plain pattern.
func (p *pattern) literal() string {
	if len(p.toks) == 0 {
		return ""
	}
	return p.toks[0].lit
}

// literalPrefix returns the literal text that every string matched by p must
// start with, whatever the variables resolve to.
func (p *pattern) literalPrefix() string {
	var b strings.Builder
	for _, t := range p.toks {
		if t.kind != tLit {
			break
		}
		b.WriteString(t.lit)
	}
	return b.String()
}

// hasPrefixFold reports whether s starts with prefix, ASCII case-insensitively
// when fold is set.
func hasPrefixFold(s, prefix string, fold bool) bool {
	if len(s) < len(prefix) {
		return false
	}
	if !fold {
		return s[:len(prefix)] == prefix
	}
	for i := 0; i < len(prefix); i++ {
		a, b := s[i], prefix[i]
		if a == b {
			continue
		}
		if 'A' <= a && a <= 'Z' {
			a += 'a' - 'A'
		}
		if 'A' <= b && b <= 'Z' {
			b += 'a' - 'A'
		}
		if a != b {
			return false
		}
	}
	return true
}

// matchTokens reports whether s matches the tokens. Variables are resolved
// from the request; a variable with no value (and no default) is null and
// makes the whole pattern match nothing. Resolved variable values are
// literal text: a '*' in a user name is not a wildcard. It does not allocate.
func matchTokens(toks []token, s string, fold bool, r *Request) bool {
	ti, si := 0, 0
	starTi, starSi := -1, 0
	for {
		if ti < len(toks) {
			t := &toks[ti]
			switch t.kind {
			case tStar:
				starTi, starSi = ti, si
				ti++
				continue
			case tQmark:
				if si < len(s) {
					_, n := utf8.DecodeRuneInString(s[si:])
					si += n
					ti++
					continue
				}
			case tLit:
				if hasPrefixFold(s[si:], t.lit, fold) {
					si += len(t.lit)
					ti++
					continue
				}
			case tVar:
				v, ok := r.resolve(t)
				if !ok {
					return false
				}
				if hasPrefixFold(s[si:], v, fold) {
					si += len(v)
					ti++
					continue
				}
			}
		} else if si == len(s) {
			return true
		}
		if starTi < 0 || starSi >= len(s) {
			return false
		}
		_, n := utf8.DecodeRuneInString(s[starSi:])
		starSi += n
		si, ti = starSi, starTi+1
	}
}

// matches reports whether s matches p.
func (p *pattern) matches(s string, fold bool, r *Request) bool {
	if p.plain {
		lit := p.literal()
		if fold {
			return len(lit) == len(s) && hasPrefixFold(s, lit, true)
		}
		return lit == s
	}
	return matchTokens(p.toks, s, fold, r)
}

// arnPattern is an ARN pattern split into its six colon-separated parts
// (arn, partition, service, region, account, resource). Each part is matched
// separately, as AWS does: a wildcard never crosses a colon in the first five
// parts.
type arnPattern struct {
	raw   string
	any   bool // the pattern is exactly "*"
	parts [6]pattern
	whole pattern // used when the pattern is not an ARN (condition values only)
	isARN bool
}

// splitARN returns the indexes of the first five colons of s, outside ${...}
// when vars is set, and whether there are five.
func splitARN(s string, vars bool) (idx [5]int, ok bool) {
	n, depth := 0, 0
	for i := 0; i < len(s) && n < 5; i++ {
		switch {
		case vars && s[i] == '$' && i+1 < len(s) && s[i+1] == '{':
			depth++
		case vars && s[i] == '}' && depth > 0:
			depth--
		case s[i] == ':' && depth == 0:
			idx[n] = i
			n++
		}
	}
	return idx, n == 5
}

func parseARNPattern(s string, o parseOptions) (arnPattern, error) {
	a := arnPattern{raw: s}
	if s == "*" {
		a.any = true
		return a, nil
	}
	idx, ok := splitARN(s, o.vars)
	if !ok {
		w, err := parsePattern(s, o)
		a.whole = w
		return a, err
	}
	a.isARN = true
	start := 0
	for i := 0; i < 6; i++ {
		end := len(s)
		if i < 5 {
			end = idx[i]
		}
		p, err := parsePattern(s[start:end], o)
		if err != nil {
			return a, err
		}
		a.parts[i] = p
		start = end + 1
	}
	return a, nil
}

// matches reports whether the ARN s matches the pattern, part by part.
func (a *arnPattern) matches(s string, r *Request) bool {
	if a.any {
		return true
	}
	if !a.isARN {
		return a.whole.matches(s, false, r)
	}
	idx, ok := splitARN(s, false)
	if !ok {
		return false
	}
	start := 0
	for i := 0; i < 6; i++ {
		end := len(s)
		if i < 5 {
			end = idx[i]
		}
		if !a.parts[i].matches(s[start:end], false, r) {
			return false
		}
		start = end + 1
	}
	return true
}

// literalPrefix returns the literal text every matching ARN starts with.
func (a *arnPattern) literalPrefix() string {
	if a.any {
		return ""
	}
	if !a.isARN {
		return a.whole.literalPrefix()
	}
	var b strings.Builder
	for i := 0; i < 6; i++ {
		p := &a.parts[i]
		pre := p.literalPrefix()
		b.WriteString(pre)
		if !p.plain {
			break
		}
		if i < 5 {
			b.WriteByte(':')
		}
	}
	return b.String()
}
