package decision

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/iam"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// trustIndex maps what a trust policy requires of gatehouse's own issuer
// to the roles that require it, so that the role picker evaluates only the
// roles that could admit a principal. An Allow statement for the self
// provider whose conditions demand a literal gatehouse:groups,
// gatehouse:username or subject value is indexed under each value; a role
// with any other such statement is always a candidate. A role that no
// Allow statement admits the self provider in is never one. The index
// only prunes: every candidate is still evaluated in full.
type trustIndex struct {
	always []*Role
	by     map[string][]*Role // "g:"+group, "u:"+user name, "s:"+subject
	gen    uint64
	at     time.Time // last confirmed current
	built  time.Time
	mark   []byte // the shared change mark read before it was built
}

// trustIndex returns the current index, rebuilding it from the store when
// a change or the TTL has made it stale.
func (p *Point) trustIndex(ctx context.Context) (*trustIndex, error) {
	p.mu.Lock()
	ix := p.index
	p.mu.Unlock()
	if ix != nil && p.fresh(ix.gen, ix.at) {
		return ix, nil
	}
	if ix != nil && p.unchanged(ctx, ix.gen, ix.built, ix.mark) {
		kept := *ix
		kept.at = p.o.Clock()
		p.mu.Lock()
		if p.index == ix {
			p.index = &kept
		}
		p.mu.Unlock()
		return &kept, nil
	}
	gen, now, mark := p.gen.Load(), p.o.Clock(), p.readMark(ctx)
	all, err := p.o.Store.ListRoles(ctx)
	if err != nil {
		return nil, fmt.Errorf("decision: list roles: %w", err)
	}
	ix = &trustIndex{by: map[string][]*Role{}, gen: gen, at: now, built: now, mark: mark}
	present := make(map[string]*Role, len(all))
	self := p.SelfProviderARN()
	subKey := strings.ToLower(store.OIDCIssuerKey(p.o.SelfIssuer) + ":sub")
	for _, r := range all {
		role := p.compiled(r)
		present[r.ID] = role
		if role.TrustErr != nil {
			p.log.WarnContext(ctx, "role picker: trust policy does not parse; role skipped", "role", role.ARN, "err", role.TrustErr)
			continue
		}
		keys, ok := indexKeys(role.trustDoc, self, subKey)
		switch {
		case !ok:
		case keys == nil:
			ix.always = append(ix.always, role)
		default:
			for _, k := range keys {
				ix.by[k] = append(ix.by[k], role)
			}
		}
	}
	p.mu.Lock()
	if p.gen.Load() == gen {
		p.index = ix
		p.byID = present // forget the compilations of deleted roles
	}
	p.mu.Unlock()
	return ix, nil
}

// indexKeys reports whether any Allow statement of doc admits the
// Federated principal self (ok), and the index keys under which the role
// must be found: nil when some admitting statement demands nothing the
// index knows, so that the role is always a candidate.
func indexKeys(doc *iam.Policy, self, subKey string) (keys []string, ok bool) {
	var out []string
	for _, st := range doc.Statements {
		if st.Effect != iam.Allow || !admits(st, self) {
			continue
		}
		ok = true
		k := statementKeys(st, subKey)
		if k == nil {
			return nil, true
		}
		out = append(out, k...)
	}
	return out, ok
}

// admits reports whether an Allow statement can apply to the Federated
// principal self. A NotPrincipal statement may, and counts as admitting.
func admits(st iam.Statement, self string) bool {
	if st.NotPrincipal != nil {
		return true
	}
	if st.Principal == nil {
		return false
	}
	if st.Principal.Any {
		return true
	}
	for _, pe := range st.Principal.Entries {
		if pe.Type != iam.PrincipalFederated {
			continue
		}
		for _, v := range pe.Values {
			if v == self || v == "*" {
				return true
			}
		}
	}
	return false
}

// statementKeys returns the index keys of one statement's first condition
// that demands a literal user name, subject or group (a statement with
// several conditions matches only if each holds, so any one of them is a
// necessary condition), or nil if it has none.
func statementKeys(st iam.Statement, subKey string) []string {
	for _, c := range st.Condition {
		if c.Operator != "StringEquals" && c.Operator != "ForAnyValue:StringEquals" {
			continue
		}
		var prefix string
		switch strings.ToLower(c.Key) {
		case KeyGroups:
			prefix = "g:"
		case KeyUsername:
			prefix = "u:"
		case subKey:
			prefix = "s:"
		default:
			continue
		}
		if len(c.Values) == 0 || hasVariable(c.Values) {
			continue
		}
		keys := make([]string, len(c.Values))
		for i, v := range c.Values {
			keys[i] = prefix + v
		}
		return keys
	}
	return nil
}

func hasVariable(vs []string) bool {
	for _, v := range vs {
		if strings.Contains(v, "${") {
			return true
		}
	}
	return false
}

// candidates returns the roles that could admit pr, each once, ordered by
// name case-insensitively (the picker's order).
func (ix *trustIndex) candidates(pr Principal) []*Role {
	seen := map[*Role]bool{}
	var out []*Role
	add := func(rs []*Role) {
		for _, r := range rs {
			if !seen[r] {
				seen[r] = true
				out = append(out, r)
			}
		}
	}
	add(ix.always)
	add(ix.by["u:"+pr.UserName])
	add(ix.by["s:"+pr.UserID])
	for _, g := range pr.Groups {
		add(ix.by["g:"+g])
	}
	sort.Slice(out, func(i, j int) bool {
		return strings.ToLower(out[i].Stored.Name) < strings.ToLower(out[j].Stored.Name)
	})
	return out
}
