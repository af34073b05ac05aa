package decision

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/iam"
)

// Session is a verified temporary-credential session (the STS claims),
// as the decision point reads it. The front end that verified the
// credentials fills it; nothing in it comes from the request.
type Session struct {
	// PrincipalID is the directory user (or federated identity) id behind
	// the session, UserName its name.
	PrincipalID string
	UserName    string
	// RoleARN is the session's role; AssumedRoleID is "AROA…:session-name"
	// and RoleSessionName the session name.
	RoleARN         string
	AssumedRoleID   string
	RoleSessionName string
	SourceIdentity  string
	Groups          []string
	Tags            map[string]string
	IssuedAt        time.Time
	// SessionPolicy and PolicyARNs narrow the role's permissions.
	SessionPolicy string
	PolicyARNs    []string
	// Impersonator, when set, is the principal acting for PrincipalID; it
	// is recorded, never a source of permissions.
	Impersonator string
	// RoleLimit, when non-nil, lists the only roles the session may act as:
	// the sign-in's restriction (a SAML Role list, a roles claim, a
	// restricted gatehouse token) sealed in its credentials. Nil means
	// unrestricted; empty means no other role at all.
	RoleLimit []string
}

// mayActAs reports whether the session's role restriction admits roleARN.
func (s *Session) mayActAs(roleARN string) bool {
	return s.RoleLimit == nil || slices.Contains(s.RoleLimit, roleARN)
}

// Request is one access question about a session: may it perform Action
// on Resource (an ARN; catalog securables later), with Context (the
// request's condition keys: aws:SourceIp, aws:SecureTransport, s3:prefix,
// …)? ActAs, when set and not the session's own role, asks to act as that
// role (a mount's): the session's user must be entitled to it (Entitled),
// and the request is then evaluated as that role, with the session's
// session policies still applied.
type Request struct {
	Session  *Session
	Action   string
	Resource string
	Context  map[string][]string
	ActAs    string
}

// Authorize answers r: the role's permission policies ∩ the session
// policies ∩ the role's permissions boundary, with AWS evaluation logic
// (explicit deny > allow > implicit deny). r.Context is not modified. The
// principal keys (aws:userid, aws:PrincipalArn, aws:PrincipalTag/*,
// aws:SourceIdentity, gatehouse:username, gatehouse:groups) are always set
// from the session, and aws:CurrentTime / aws:EpochTime when absent.
//
// An error (role deleted, invalid stored policy, store down) must be
// treated as a denial; the Answer then denies too. Safe for concurrent use.
func (p *Point) Authorize(ctx context.Context, r Request) (Answer, error) {
	deny := Answer{Result: iam.Result{Decision: iam.ImplicitDeny, Action: r.Action, Resource: r.Resource}}
	if r.Session == nil {
		return deny, errors.New("decision: authorize: no session")
	}
	s := r.Session
	if r.ActAs != "" && r.ActAs != s.RoleARN {
		// A restricted session never widens through a mount, whatever the
		// user's groups would allow (issue 11 finding 9).
		ok := s.mayActAs(r.ActAs)
		if ok {
			var err error
			if ok, err = p.Entitled(ctx, s.PrincipalID, r.ActAs); err != nil {
				return deny, fmt.Errorf("decision: entitlement to %s: %w", r.ActAs, err)
			}
		}
		if !ok {
			deny.Result.Layer = iam.LayerIdentity
			return deny, &NotEntitledError{RoleARN: r.ActAs}
		}
		as := *s
		as.RoleARN = r.ActAs
		as.AssumedRoleID = roleNameOf(r.ActAs) + ":" + s.RoleSessionName
		s = &as
		deny.ActedAs = r.ActAs
	}
	role, err := p.roleOfARN(ctx, s.RoleARN)
	if errors.Is(err, ErrNoRole) {
		return deny, fmt.Errorf("decision: authorize: role %s no longer exists", s.RoleARN)
	}
	if err != nil {
		return deny, fmt.Errorf("decision: authorize: %w", err)
	}
	if role.PermsErr != nil {
		return deny, fmt.Errorf("decision: authorize: role %s: %w", s.RoleARN, role.PermsErr)
	}
	sess, err := p.sessionCompiled(ctx, s)
	if err != nil {
		return deny, fmt.Errorf("decision: authorize: %w", err)
	}
	c := make(map[string][]string, len(r.Context)+12)
	for k, v := range r.Context {
		c[strings.ToLower(k)] = v
	}
	p.PrincipalContext(c, s)
	if _, ok := c["aws:currenttime"]; !ok {
		now := p.o.Clock().UTC()
		c["aws:currenttime"] = []string{now.Format(time.RFC3339)}
		c["aws:epochtime"] = []string{strconv.FormatInt(now.Unix(), 10)}
	}
	ir := &iam.Request{Action: r.Action, Resource: r.Resource, Context: c}
	return Answer{Result: intersect(role.perms.Evaluate(ir), sess, ir), ActedAs: deny.ActedAs}, nil
}

// NotEntitledError is Authorize's error when a session asks to act as a
// role its user is not entitled to. It is a denial, not a failure.
type NotEntitledError struct{ RoleARN string }

func (e *NotEntitledError) Error() string { return "not entitled to role " + e.RoleARN }

// roleOfARN resolves a role ARN of this account.
func (p *Point) roleOfARN(ctx context.Context, arn string) (*Role, error) {
	name := roleNameOf(arn)
	if name == "" {
		return nil, ErrNoRole
	}
	return p.RoleByARN(ctx, name, arn)
}

// roleNameOf is the name part of a role ARN ("" if it is none).
func roleNameOf(arn string) string {
	_, rest, ok := strings.Cut(arn, ":role/")
	if !ok {
		return ""
	}
	if i := strings.LastIndexByte(rest, '/'); i >= 0 {
		rest = rest[i+1:]
	}
	return rest
}

// PrincipalContext sets the condition keys that describe the session's
// principal. They overwrite caller-supplied keys of the same name, so a
// request can never claim another principal's tags or identity.
func (p *Point) PrincipalContext(ctx map[string][]string, c *Session) {
	for k := range ctx {
		if strings.HasPrefix(k, "aws:principaltag/") {
			delete(ctx, k)
		}
	}
	ctx["aws:userid"] = []string{c.AssumedRoleID}
	ctx["aws:principalarn"] = []string{c.RoleARN}
	ctx["aws:principalaccount"] = []string{p.o.AccountID}
	ctx["aws:principaltype"] = []string{"AssumedRole"}
	ctx["aws:tokenissuetime"] = []string{c.IssuedAt.UTC().Format(time.RFC3339)}
	setOrDelete(ctx, "aws:username", c.UserName)
	setOrDelete(ctx, "gatehouse:username", c.UserName)
	if len(c.Groups) > 0 {
		ctx["gatehouse:groups"] = c.Groups
	} else {
		delete(ctx, "gatehouse:groups")
	}
	setOrDelete(ctx, "aws:sourceidentity", c.SourceIdentity)
	for k, v := range c.Tags {
		ctx["aws:principaltag/"+strings.ToLower(k)] = []string{v}
	}
}

// setOrDelete sets the single-valued condition key k to v, or removes it
// when v is empty: a principal attribute with no value is an absent key
// (Null true), never a present empty string.
func setOrDelete(ctx map[string][]string, k, v string) {
	if v == "" {
		delete(ctx, k)
		return
	}
	ctx[k] = []string{v}
}

// intersect combines the role's result (identity ∩ boundary) with the
// session policies, compiled on their own (as an identity layer) so that
// both halves can be cached independently.
func intersect(role iam.Result, sess *iam.Compiled, r *iam.Request) iam.Result {
	if sess == nil || role.Decision == iam.ExplicitDeny {
		return role
	}
	sr := sess.Evaluate(r)
	switch sr.Decision {
	case iam.ExplicitDeny:
		sr.Layer = iam.LayerSession
		sr.Statements = relayer(sr.Statements)
		return sr
	case iam.Allowed:
		if role.Decision != iam.Allowed {
			return role
		}
		ref := sr.Statements[0]
		ref.Layer = iam.LayerSession
		role.SessionStatement = &ref
		return role
	}
	if role.Decision != iam.Allowed {
		return role
	}
	return iam.Result{Decision: iam.ImplicitDeny, Layer: iam.LayerSession, Action: r.Action, Resource: r.Resource}
}

func relayer(refs []iam.StatementRef) []iam.StatementRef {
	out := make([]iam.StatementRef, len(refs))
	for i, r := range refs {
		r.Layer = iam.LayerSession
		out[i] = r
	}
	return out
}

// sessionCache keeps compiled session policies keyed by their content.
// Entries with managed policy ARNs are re-resolved after the TTL.
type sessionCache struct {
	mu sync.Mutex
	m  map[string]*sessionEntry
}

type sessionEntry struct {
	c       *iam.Compiled
	err     error
	fetched time.Time
	hasARNs bool
}

// maxSessionEntries bounds the session-policy cache; past it the oldest
// half is not kept (the map is cleared), which costs a recompile only.
const maxSessionEntries = 10000

func (p *Point) sessionCompiled(ctx context.Context, c *Session) (*iam.Compiled, error) {
	if c.SessionPolicy == "" && len(c.PolicyARNs) == 0 {
		return nil, nil
	}
	h := sha256.New()
	h.Write([]byte(c.SessionPolicy))
	for _, a := range c.PolicyARNs {
		h.Write([]byte{0})
		h.Write([]byte(a))
	}
	key := string(h.Sum(nil))
	now := p.o.Clock()
	p.sessions.mu.Lock()
	e, ok := p.sessions.m[key]
	p.sessions.mu.Unlock()
	if ok && (!e.hasARNs || (now.Sub(e.fetched) < p.o.TTL && !now.Before(e.fetched))) {
		return e.c, e.err
	}
	e = &sessionEntry{fetched: now, hasARNs: len(c.PolicyARNs) > 0}
	var pols []iam.NamedPolicy
	if c.SessionPolicy != "" {
		pol, err := iam.Parse([]byte(c.SessionPolicy))
		if err != nil {
			e.err = fmt.Errorf("session policy: %w", err)
		} else {
			pols = append(pols, iam.NamedPolicy{Name: "session policy", Layer: iam.LayerIdentity, Policy: pol})
		}
	}
	for _, a := range c.PolicyARNs {
		if e.err != nil {
			break
		}
		if p.o.ManagedPolicies == nil {
			e.err = fmt.Errorf("managed session policy %s cannot be resolved", a)
			break
		}
		doc, err := p.o.ManagedPolicies.ManagedPolicy(ctx, a)
		if err != nil {
			return nil, fmt.Errorf("managed session policy %s: %w", a, err) // not cached
		}
		pol, err := iam.Parse([]byte(doc))
		if err != nil {
			e.err = fmt.Errorf("managed session policy %s: %w", a, err)
			break
		}
		pols = append(pols, iam.NamedPolicy{Name: a, Layer: iam.LayerIdentity, Policy: pol})
	}
	if e.err == nil {
		e.c, e.err = iam.Compile(pols...)
	}
	p.sessions.mu.Lock()
	if len(p.sessions.m) >= maxSessionEntries {
		clear(p.sessions.m)
	}
	p.sessions.m[key] = e
	p.sessions.mu.Unlock()
	return e.c, e.err
}

// RoleOfARN returns the role a role ARN of this account names, compiled;
// ErrNoRole when there is none.
func (p *Point) RoleOfARN(ctx context.Context, arn string) (*Role, error) {
	return p.roleOfARN(ctx, arn)
}

// NamesKeyPrefix reports whether a policy that could decide r (the
// permission policies and boundary of the role r would be evaluated as,
// and the session's policies) names a condition key starting with prefix.
// A front end asks it before it pays for a costly key (an object's
// existing tags, s3:ExistingObjectTag/): a key no such policy names
// cannot change r's answer. It reads only cached, compiled policies. On an
// error the caller must assume the key is named (fetch it); Authorize
// then decides, and fails closed on the same error.
func (p *Point) NamesKeyPrefix(ctx context.Context, r Request, prefix string) (bool, error) {
	if r.Session == nil {
		return true, errors.New("decision: names key: no session")
	}
	arn := r.Session.RoleARN
	if r.ActAs != "" {
		arn = r.ActAs
	}
	role, err := p.roleOfARN(ctx, arn)
	if err != nil {
		return true, fmt.Errorf("decision: names key: %w", err)
	}
	if role.PermsErr != nil {
		return true, fmt.Errorf("decision: names key: role %s: %w", arn, role.PermsErr)
	}
	sess, err := p.sessionCompiled(ctx, r.Session)
	if err != nil {
		return true, fmt.Errorf("decision: names key: %w", err)
	}
	return role.perms.NamesKeyPrefix(prefix) || sess.NamesKeyPrefix(prefix), nil
}
