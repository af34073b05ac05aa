package iam

import "strings"

// Principal types: the keys of a Principal or NotPrincipal element. They are
// distinct namespaces: a value under one type never names an identity of
// another type, even when the text is the same.
const (
	PrincipalAWS           = "AWS"
	PrincipalFederated     = "Federated"
	PrincipalService       = "Service"
	PrincipalCanonicalUser = "CanonicalUser"
)

// Identity is one identity of the caller, as a Principal element names it:
// a principal type (PrincipalAWS, PrincipalFederated, PrincipalService,
// PrincipalCanonicalUser) and a value, compared case-sensitively:
//
//   - AWS: an IAM user, role, assumed-role session or federated-user ARN,
//     the account root ARN arn:aws:iam::123456789012:root or the bare
//     account id 123456789012 (the two account forms are equivalent);
//   - Federated: a SAML or OIDC provider ARN, or a web identity provider
//     such as accounts.google.com;
//   - Service: a service principal such as ec2.amazonaws.com;
//   - CanonicalUser: an S3 canonical user id.
type Identity struct {
	Type string `json:"type"`
	ID   string `json:"id"`
}

// IdentitiesOf is the caller a Request with Principal s describes, in the
// form of Request.Principals: none (anonymous) for "", else the one
// IdentityOf(s). Setting Principals to it evaluates exactly as setting the
// deprecated Principal to s.
func IdentitiesOf(s string) []Identity {
	if s == "" {
		return nil
	}
	return []Identity{IdentityOf(s)}
}

// IdentityOf infers the type of an untyped principal string, for callers of
// the deprecated Request.Principal field:
//
//   - a 12-digit account id, or an ARN other than a provider ARN: AWS;
//   - an IAM saml-provider/ or oidc-provider/ ARN: Federated;
//   - cognito-identity.amazonaws.com: Federated (web identity);
//   - any other name ending in .amazonaws.com or .amazonaws.com.cn: Service;
//   - 64 hexadecimal digits: CanonicalUser;
//   - anything else (accounts.google.com, an issuer host name): Federated.
//
// The empty string yields the zero Identity. Callers that know the type
// should build an Identity instead.
func IdentityOf(s string) Identity {
	switch {
	case s == "":
		return Identity{}
	case isAccountID(s):
		return Identity{Type: PrincipalAWS, ID: s}
	case strings.HasPrefix(s, "arn:"):
		if idx, ok := splitARN(s, false); ok && s[idx[1]+1:idx[2]] == "iam" {
			res := s[idx[4]+1:]
			if strings.HasPrefix(res, "saml-provider/") || strings.HasPrefix(res, "oidc-provider/") {
				return Identity{Type: PrincipalFederated, ID: s}
			}
		}
		return Identity{Type: PrincipalAWS, ID: s}
	case strings.HasPrefix(s, "cognito-identity.amazonaws.com"):
		return Identity{Type: PrincipalFederated, ID: s}
	case strings.HasSuffix(s, ".amazonaws.com") || strings.HasSuffix(s, ".amazonaws.com.cn"):
		return Identity{Type: PrincipalService, ID: s}
	case len(s) == 64 && isHex(s):
		return Identity{Type: PrincipalCanonicalUser, ID: s}
	}
	return Identity{Type: PrincipalFederated, ID: s}
}

// ptype indexes the principal types.
type ptype uint8

const (
	ptAWS ptype = iota
	ptFederated
	ptService
	ptCanonicalUser
	numPTypes
	ptUnknown = numPTypes
)

func ptypeOf(t string) ptype {
	switch t {
	case PrincipalAWS:
		return ptAWS
	case PrincipalFederated:
		return ptFederated
	case PrincipalService:
		return ptService
	case PrincipalCanonicalUser:
		return ptCanonicalUser
	}
	return ptUnknown
}

// cprincipal is a compiled Principal or NotPrincipal element.
type cprincipal struct {
	any      bool                // "Principal": "*"
	anyOf    [numPTypes]bool     // {"<type>": "*"}
	ids      [numPTypes][]string // exact values per type (AWS account forms excluded)
	accounts []string            // AWS account ids, from "123456789012" or "arn:…:iam::123456789012:root"
}

func compilePrincipal(p *Principal) *cprincipal {
	cp := &cprincipal{any: p.Any}
	for _, e := range p.Entries {
		t := ptypeOf(e.Type)
		if t == ptUnknown {
			continue // Parse rejects unknown types; in a hand-built Policy they name nobody
		}
		for _, v := range e.Values {
			switch {
			case v == "*":
				cp.anyOf[t] = true
			case t == ptAWS:
				if acct, ok := accountIdentity(v); ok {
					cp.accounts = append(cp.accounts, acct)
				} else {
					cp.ids[t] = append(cp.ids[t], v)
				}
			default:
				cp.ids[t] = append(cp.ids[t], v)
			}
		}
	}
	return cp
}

// accountIdentity reports whether an AWS principal value names an account:
// the bare 12-digit id or the root ARN arn:<partition>:iam::<id>:root. AWS
// documents the two forms as equivalent ("AWS account principals").
func accountIdentity(v string) (string, bool) {
	if isAccountID(v) {
		return v, true
	}
	if !strings.HasPrefix(v, "arn:") || !strings.HasSuffix(v, ":root") {
		return "", false
	}
	idx, ok := splitARN(v, false)
	if !ok || v[idx[1]+1:idx[2]] != "iam" || idx[3] != idx[2]+1 || v[idx[4]+1:] != "root" {
		return "", false
	}
	acct := v[idx[3]+1 : idx[4]]
	return acct, isAccountID(acct)
}

// accountOf returns the account an AWS identity belongs to: the account
// itself for an account identity, else the account field of its ARN.
func accountOf(id string) (string, bool) {
	if isAccountID(id) {
		return id, true
	}
	if !strings.HasPrefix(id, "arn:") {
		return "", false
	}
	idx, ok := splitARN(id, false)
	if !ok {
		return "", false
	}
	acct := id[idx[3]+1 : idx[4]]
	return acct, isAccountID(acct)
}

func (p *cprincipal) namesAccount(acct string) bool {
	if p.any || p.anyOf[ptAWS] {
		return true
	}
	for _, a := range p.accounts {
		if a == acct {
			return true
		}
	}
	return false
}

// namesOne reports whether the element names the identity itself.
func (p *cprincipal) namesOne(t ptype, id string) bool {
	if p.any {
		return true
	}
	if t == ptUnknown {
		return false
	}
	if p.anyOf[t] {
		return true
	}
	if t == ptAWS {
		if acct, ok := accountIdentity(id); ok {
			return p.namesAccount(acct)
		}
	}
	for _, v := range p.ids[t] {
		if v == id {
			return true
		}
	}
	return false
}

// check looks at one caller identity and, for an AWS identity, the account
// it belongs to, which AWS always evaluates as one of the caller's
// identities. some: the element names the identity or its account; every:
// it names both.
func (p *cprincipal) check(x Identity) (some, every bool) {
	t := ptypeOf(x.Type)
	self := p.namesOne(t, x.ID)
	if t == ptAWS {
		if acct, ok := accountOf(x.ID); ok {
			a := p.namesAccount(acct)
			return self || a, self && a
		}
	}
	return self, self
}

// applies reports whether a statement with this Principal (not false) or
// NotPrincipal (not true) element applies to the caller of r.
//
// The caller is the set of its identities (Request.Principals, or the one
// inferred from Request.Principal) plus, for each AWS identity, its
// account. A Principal element applies when it names any of them. A
// NotPrincipal element applies unless it names every one of them: AWS
// evaluates the account, the role and the session in turn, so a Deny with
// NotPrincipal must list them all to exempt a caller ("AWS JSON policy
// elements: NotPrincipal"). A caller with no identity is anonymous: only
// "*" and {"AWS": "*"} name it, which AWS documents as equivalent for
// anonymous users ("AWS JSON policy elements: Principal", All principals).
func (p *cprincipal) applies(r *Request, not bool) bool {
	if len(r.Principals) > 0 {
		for _, x := range r.Principals {
			some, every := p.check(x)
			if not && !every || !not && some {
				return true
			}
		}
		return false
	}
	if r.Principal != "" {
		some, every := p.check(IdentityOf(r.Principal))
		if not {
			return !every
		}
		return some
	}
	named := p.any || p.anyOf[ptAWS]
	return named != not
}

func isAccountID(s string) bool {
	return len(s) == 12 && isDigits(s)
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}
