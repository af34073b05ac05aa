package sts

import (
	"context"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"regexp"
	"sync"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/iam"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// ARN shapes (AWS IAM identifiers, "IAM ARNs").
var (
	roleARNRE = regexp.MustCompile(`^arn:aws:iam::([0-9]{12}):role(/|/[\x21-\x7e]*/)([\w+=,.@-]{1,64})$`)
	samlARNRE = regexp.MustCompile(`^arn:aws:iam::([0-9]{12}):saml-provider/([\w.-]{1,128})$`)
	oidcARNRE = regexp.MustCompile(`^arn:aws:iam::([0-9]{12}):oidc-provider/(.+)$`)
)

// roleRef is a parsed role ARN.
type roleRef struct {
	ARN, Path, Name string
}

// parseRoleARN checks a RoleArn parameter: a role of this account.
func (s *Service) parseRoleARN(param, v string) (roleRef, *Error) {
	m := roleARNRE.FindStringSubmatch(v)
	if m == nil {
		e := newErr(CodeValidationError, "role-arn", fmt.Sprintf("%s %q is not an IAM role ARN.", param, clip(v)),
			fmt.Sprintf("pass arn:aws:iam::%s:role/<name>.", s.o.AccountID))
		if samlARNRE.MatchString(v) || oidcARNRE.MatchString(v) {
			e.Cause = fmt.Sprintf("%s %q names an identity provider, not a role.", param, clip(v))
		}
		return roleRef{}, e
	}
	if m[1] != s.o.AccountID {
		return roleRef{}, newErr(CodeValidationError, "account",
			fmt.Sprintf("%s %q is in account %s; this gatehouse is account %s.", param, clip(v), m[1], s.o.AccountID),
			fmt.Sprintf("use arn:aws:iam::%s:role/%s (the account id is the sts.account_id setting).", s.o.AccountID, m[3]))
	}
	return roleRef{ARN: v, Path: m[2], Name: m[3]}, nil
}

// roleEntry is a role with its policies compiled, valid for one revision.
type roleEntry struct {
	role *store.Role
	arn  string
	id   string // AWS-style role id, "AROA…"
	// trust holds the trust policy compiled once per principal type
	// ("Federated", "AWS"): Allow statements keep only principals of that
	// type, because the evaluator compares principal values, not types.
	trust    map[string]*iam.Compiled
	trustDoc *iam.Policy
	trustErr error
	// perms is the role's permission policies and boundary.
	perms    *iam.Compiled
	permsErr error
	fetched  time.Time
}

// roleCache keeps compiled roles by id and revision, and name lookups for
// at most the cache TTL.
type roleCache struct {
	mu     sync.Mutex
	byName map[string]*roleEntry // folded name -> entry (fetched bounds freshness)
	byID   map[string]*roleEntry // role id -> last compiled revision
}

func (c *roleCache) init() {
	c.byName = map[string]*roleEntry{}
	c.byID = map[string]*roleEntry{}
}

// errNoRole is returned by role when the role does not exist.
var errNoRole = errors.New("sts: no such role")

// role returns the role named by ref, compiled, from a cache at most
// CacheTTL old. A missing role (or one whose path differs) is errNoRole.
func (s *Service) role(ctx context.Context, ref roleRef) (*roleEntry, error) {
	key := store.FoldName(ref.Name)
	now := s.now()
	s.roles.mu.Lock()
	e, ok := s.roles.byName[key]
	s.roles.mu.Unlock()
	if !ok || now.Sub(e.fetched) >= s.o.CacheTTL || now.Before(e.fetched) {
		r, err := s.o.Store.GetRoleByName(ctx, ref.Name)
		if errors.Is(err, store.ErrNotFound) {
			return nil, errNoRole
		}
		if err != nil {
			return nil, fmt.Errorf("sts: get role %q: %w", ref.Name, err)
		}
		s.roles.mu.Lock()
		prev, ok := s.roles.byID[r.ID]
		if ok && prev.role.Revision == r.Revision {
			e = &roleEntry{}
			*e = *prev
		} else {
			e = s.compileRole(r)
		}
		e.fetched = now
		if len(s.roles.byName) > 10000 {
			s.roles.init()
		}
		s.roles.byID[r.ID] = e
		s.roles.byName[key] = e
		s.roles.mu.Unlock()
	}
	if e.arn != ref.ARN {
		return nil, errNoRole
	}
	return e, nil
}

func (s *Service) compileRole(r *store.Role) *roleEntry {
	e := &roleEntry{role: r, arn: r.ARN(s.o.AccountID), id: roleID(r.ID)}
	e.trustDoc, e.trustErr = iam.Parse([]byte(r.TrustPolicy))
	if e.trustErr == nil {
		e.trust = map[string]*iam.Compiled{}
		for _, typ := range []string{"Federated", "AWS"} {
			c, err := iam.Compile(iam.NamedPolicy{Name: "trust policy of " + r.Name, Layer: iam.LayerIdentity,
				Policy: trustFor(e.trustDoc, typ)})
			if err != nil {
				e.trustErr = err
				break
			}
			e.trust[typ] = c
		}
	}
	var pols []iam.NamedPolicy
	for _, p := range r.PermissionPolicies {
		doc, err := iam.Parse([]byte(p.Document))
		if err != nil {
			e.permsErr = fmt.Errorf("permission policy %q: %w", p.Name, err)
			return e
		}
		pols = append(pols, iam.NamedPolicy{Name: p.Name, Layer: iam.LayerIdentity, Policy: doc})
	}
	if r.PermissionsBoundary != "" {
		doc, err := iam.Parse([]byte(r.PermissionsBoundary))
		if err != nil {
			e.permsErr = fmt.Errorf("permissions boundary: %w", err)
			return e
		}
		pols = append(pols, iam.NamedPolicy{Name: "permissions boundary", Layer: iam.LayerBoundary, Policy: doc})
	}
	e.perms, e.permsErr = iam.Compile(pols...)
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

// trustCheck is one trust-policy question: may principal (of type typ)
// perform action on the role, with these condition keys?
type trustCheck struct {
	Action     string
	Type       string   // "Federated" or "AWS"
	Principals []string // any of them may be named (role ARN and session ARN)
	Context    map[string][]string
}

// checkTrust evaluates the role's trust policy. An explicit deny for any
// principal denies; otherwise one of them must be allowed.
func (s *Service) checkTrust(re *roleEntry, tc trustCheck) *Error {
	if re.trustErr != nil {
		return &Error{Code: CodeAccessDenied, Reason: "trust-policy-invalid",
			Cause: fmt.Sprintf("The trust policy of role %s is not a valid policy.", re.arn),
			Fix:   "an administrator must fix the role's trust policy.", Err: re.trustErr}
	}
	c := re.trust[tc.Type]
	var allowed bool
	var last string
	for _, p := range tc.Principals {
		res := c.Evaluate(&iam.Request{Action: tc.Action, Resource: re.arn, Principals: iam.IdentitiesOf(p), Context: tc.Context})
		switch res.Decision {
		case iam.ExplicitDeny:
			return &Error{Code: CodeAccessDenied, Reason: "trust-policy-deny",
				Cause: fmt.Sprintf("Not authorized to perform %s on %s: the role's trust policy denies it (%s).", tc.Action, re.arn, res.Reason()),
				Fix:   "ask an administrator to change the Deny statement of the role's trust policy."}
		case iam.Allowed:
			allowed = true
		default:
			last = res.Reason()
		}
	}
	if allowed {
		return nil
	}
	named := false
	for _, p := range tc.Principals {
		named = named || namesPrincipal(re.trustDoc, tc.Type, p)
	}
	if !named {
		return &Error{Code: CodeAccessDenied, Reason: "trust-policy-principal",
			Cause: fmt.Sprintf("%s is not in the trust policy of role %s.", tc.Principals[0], re.arn),
			Fix: fmt.Sprintf("add %q as Principal.%s in a trust policy statement allowing %s, or use a role that trusts it.",
				tc.Principals[0], tc.Type, tc.Action)}
	}
	return &Error{Code: CodeAccessDenied, Reason: "trust-policy-condition",
		Cause: fmt.Sprintf("Not authorized to perform %s on %s: the trust policy names %s but no statement allowing %s matches (%s).",
			tc.Action, re.arn, tc.Principals[0], tc.Action, last),
		Fix: "check the Action and Condition of the trust policy statement (for example SAML:aud, the audience, or session tags)."}
}
