package iam

import (
	"slices"
	"strings"
)

// NamesKeyPrefix reports whether a statement of the set names a condition
// key that starts with prefix (compared case-insensitively): as the key of
// a condition, or as a policy variable in a resource or a condition value.
// A front end uses it to learn whether a request's costly keys (an
// object's existing tags) can matter before it fetches them; a key that
// no statement names cannot change any decision.
func (c *Compiled) NamesKeyPrefix(prefix string) bool {
	if c == nil {
		return false
	}
	prefix = strings.ToLower(prefix)
	for _, k := range c.keys {
		if strings.HasPrefix(k, prefix) {
			return true
		}
	}
	return false
}

// addKeys records the condition keys and policy variables that s names.
func (c *Compiled) addKeys(s *cstmt) {
	add := func(k string) {
		if !slices.Contains(c.keys, k) {
			c.keys = append(c.keys, k)
		}
	}
	vars := func(p *pattern) {
		for _, t := range p.toks {
			if t.kind == tVar {
				add(t.keyLow)
			}
		}
	}
	arnVars := func(a *arnPattern) {
		vars(&a.whole)
		for i := range a.parts {
			vars(&a.parts[i])
		}
	}
	for i := range s.resources {
		arnVars(&s.resources[i])
	}
	for i := range s.actions {
		vars(&s.actions[i])
	}
	for i := range s.conds {
		add(s.conds[i].keyLow)
		for j := range s.conds[i].vals {
			vars(&s.conds[i].vals[j].pat)
			arnVars(&s.conds[i].vals[j].arn)
		}
	}
}
