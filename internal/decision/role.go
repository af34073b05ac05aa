package decision

import (
	"context"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/iam"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// Role is a stored role compiled for decisions, for one revision. It is
// immutable and shared between goroutines.
type Role struct {
	Stored *store.Role
	ARN    string
	// ID is the AWS-style unique role id ("AROA" + 17 characters), stable
	// for the life of the role.
	ID string
	// trust holds the trust policy compiled once per principal type
	// ("Federated", "AWS"): Allow statements keep only principals of that
	// type, because the evaluator compares principal values, not types.
	trust    map[string]*iam.Compiled
	trustDoc *iam.Policy
	// TrustErr is set when the stored trust policy does not compile;
	// every trust question is then denied.
	TrustErr error
	// perms is the role's permission policies and boundary.
	perms *iam.Compiled
	// PermsErr is set when a permission policy or the boundary does not
	// compile; every authorization as the role is then an error (denied).
	PermsErr error
}

// ErrNoRole is returned when a role does not exist (or its ARN's path
// differs from the stored one).
var ErrNoRole = errors.New("decision: no such role")

type roleEntry struct {
	role *Role
	gen  uint64
	at   time.Time
}

// RoleByARN returns the role named by arn (as parsed by the caller: its
// name and full ARN), compiled. A missing role, or one whose stored path
// gives another ARN, is ErrNoRole.
func (p *Point) RoleByARN(ctx context.Context, name, arn string) (*Role, error) {
	key := store.FoldName(name)
	p.mu.Lock()
	e, ok := p.byName[key]
	p.mu.Unlock()
	if !ok || !p.fresh(e.gen, e.at) {
		gen, now := p.gen.Load(), p.o.Clock()
		r, err := p.o.Store.GetRoleByName(ctx, name)
		if errors.Is(err, store.ErrNotFound) {
			return nil, ErrNoRole
		}
		if err != nil {
			return nil, fmt.Errorf("decision: get role %q: %w", name, err)
		}
		e = &roleEntry{role: p.compiled(r), gen: gen, at: now}
		p.mu.Lock()
		p.byName[key] = e
		p.mu.Unlock()
	}
	if e.role.ARN != arn {
		return nil, ErrNoRole
	}
	return e.role, nil
}

// compiled returns r compiled, reusing the compilation of the same
// revision. The cache holds one entry per role id; each index rebuild
// drops the ids of deleted roles, so it is bounded by the number of roles.
func (p *Point) compiled(r *store.Role) *Role {
	p.mu.Lock()
	prev, ok := p.byID[r.ID]
	p.mu.Unlock()
	if ok && prev.Stored.Revision == r.Revision {
		return prev
	}
	c := compileRole(r, p.o.AccountID)
	p.mu.Lock()
	p.byID[r.ID] = c
	p.mu.Unlock()
	return c
}

func compileRole(r *store.Role, account string) *Role {
	e := &Role{Stored: r, ARN: r.ARN(account), ID: roleID(r.ID)}
	e.trustDoc, e.TrustErr = iam.Parse([]byte(r.TrustPolicy))
	if e.TrustErr == nil {
		e.trust = map[string]*iam.Compiled{}
		for _, typ := range []string{iam.PrincipalFederated, iam.PrincipalAWS} {
			c, err := iam.Compile(iam.NamedPolicy{Name: "trust policy of " + r.Name, Layer: iam.LayerIdentity,
				Policy: trustFor(e.trustDoc, typ)})
			if err != nil {
				e.TrustErr = err
				break
			}
			e.trust[typ] = c
		}
	}
	var pols []iam.NamedPolicy
	for _, pp := range r.PermissionPolicies {
		doc, err := iam.Parse([]byte(pp.Document))
		if err != nil {
			e.PermsErr = fmt.Errorf("permission policy %q: %w", pp.Name, err)
			return e
		}
		pols = append(pols, iam.NamedPolicy{Name: pp.Name, Layer: iam.LayerIdentity, Policy: doc})
	}
	if r.PermissionsBoundary != "" {
		doc, err := iam.Parse([]byte(r.PermissionsBoundary))
		if err != nil {
			e.PermsErr = fmt.Errorf("permissions boundary: %w", err)
			return e
		}
		pols = append(pols, iam.NamedPolicy{Name: "permissions boundary", Layer: iam.LayerBoundary, Policy: doc})
	}
	e.perms, e.PermsErr = iam.Compile(pols...)
	return e
}

// trustFor returns a copy of a trust policy in which Allow statements name
// only principals of type typ. Deny and NotPrincipal statements are kept
// whole: denying more is safe.
func trustFor(p *iam.Policy, typ string) *iam.Policy {
	out := &iam.Policy{Version: p.Version, ID: p.ID}
	for _, st := range p.Statements {
		if st.Effect == iam.Allow && st.Principal != nil && !st.Principal.Any {
			var keep []iam.PrincipalEntry
			for _, pe := range st.Principal.Entries {
				if pe.Type == typ {
					keep = append(keep, pe)
				}
			}
			if len(keep) == 0 {
				continue
			}
			st.Principal = &iam.Principal{Entries: keep}
		}
		out.Statements = append(out.Statements, st)
	}
	return out
}

// roleID derives an AWS-style unique role id (AROA + 17 characters) from
// the store id, stable for the life of the role.
func roleID(id string) string {
	sum := sha256.Sum256([]byte("gatehouse/role-id/" + id))
	return "AROA" + base32.StdEncoding.EncodeToString(sum[:])[:17]
}

// namesPrincipal reports whether an Allow statement of the trust policy
// names principal (under typ) or everyone.
func namesPrincipal(p *iam.Policy, typ, principal string) bool {
	if p == nil {
		return false
	}
	for _, st := range p.Statements {
		if st.Effect != iam.Allow || st.Principal == nil {
			continue
		}
		if st.Principal.Any {
			return true
		}
		for _, pe := range st.Principal.Entries {
			if pe.Type != typ {
				continue
			}
			for _, v := range pe.Values {
				if v == principal || v == "*" {
					return true
				}
			}
		}
	}
	return false
}
