package sts

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/iam"
	"github.com/gatehouse-dev/gatehouse/internal/sts/credentials"
)

// roleRefFromARN parses a role ARN from verified claims.
func (s *Service) roleRefFromARN(arn string) (roleRef, error) {
	ref, e := s.parseRoleARN("role", arn)
	if e != nil {
		return roleRef{}, errors.New(e.Cause)
	}
	return ref, nil
}

// sessionCache keeps compiled session policies keyed by their content.
// Entries with managed policy ARNs are re-resolved after the cache TTL.
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

func (s *Service) sessionCompiled(ctx context.Context, c *credentials.Claims) (*iam.Compiled, error) {
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
	now := s.now()
	s.sessions.mu.Lock()
	e, ok := s.sessions.m[key]
	s.sessions.mu.Unlock()
	if ok && (!e.hasARNs || (now.Sub(e.fetched) < s.o.CacheTTL && !now.Before(e.fetched))) {
		return e.c, e.err
	}
	e = &sessionEntry{fetched: now, hasARNs: len(c.PolicyARNs) > 0}
	var pols []iam.NamedPolicy
	if c.SessionPolicy != "" {
		p, err := iam.Parse([]byte(c.SessionPolicy))
		if err != nil {
			e.err = fmt.Errorf("session policy: %w", err)
		} else {
			pols = append(pols, iam.NamedPolicy{Name: "session policy", Layer: iam.LayerIdentity, Policy: p})
		}
	}
	for _, a := range c.PolicyARNs {
		if e.err != nil {
			break
		}
		if s.o.ManagedPolicies == nil {
			e.err = fmt.Errorf("managed session policy %s cannot be resolved", a)
			break
		}
		doc, err := s.o.ManagedPolicies.ManagedPolicy(ctx, a)
		if err != nil {
			return nil, fmt.Errorf("managed session policy %s: %w", a, err) // not cached
		}
		p, err := iam.Parse([]byte(doc))
		if err != nil {
			e.err = fmt.Errorf("managed session policy %s: %w", a, err)
			break
		}
		pols = append(pols, iam.NamedPolicy{Name: a, Layer: iam.LayerIdentity, Policy: p})
	}
	if e.err == nil {
		e.c, e.err = iam.Compile(pols...)
	}
	s.sessions.mu.Lock()
	if len(s.sessions.m) > 10000 {
		clear(s.sessions.m)
	}
	s.sessions.m[key] = e
	s.sessions.mu.Unlock()
	return e.c, e.err
}

// principalContext sets the condition keys that describe the session's
// principal. They overwrite caller-supplied keys of the same name, so a
// request can never claim another principal's tags or identity.
func (s *Service) principalContext(ctx map[string][]string, c *credentials.Claims) {
	for k := range ctx {
		if strings.HasPrefix(k, "aws:principaltag/") {
			delete(ctx, k)
		}
	}
	ctx["aws:userid"] = []string{c.AssumedRoleID}
	ctx["aws:principalarn"] = []string{c.RoleARN}
	ctx["aws:principalaccount"] = []string{s.o.AccountID}
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
	for k, v := range c.SessionTags {
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

// Authorize decides whether the session described by claims (verified by
// LookupCredentials) may perform action on resource: the role's permission
// policies ∩ the session policies ∩ the role's permissions boundary, with
// AWS evaluation logic (explicit deny > allow > implicit deny). reqCtx holds
// the request's condition keys (s3:prefix, aws:SourceIp, ...); it is not
// modified. The principal keys (aws:userid, aws:PrincipalArn,
// aws:PrincipalTag/*, aws:SourceIdentity, aws:username, gatehouse:username,
// gatehouse:groups) are always set from the claims (absent when the claims
// have no value for them), and aws:CurrentTime /
// aws:EpochTime when absent.
//
// Compiled role policies are cached per role revision and re-read from the
// store at most CacheTTL apart, so a policy change applies to live sessions
// within that time. An error (role deleted, invalid stored policy, store
// down) must be treated as a denial. Safe for concurrent use.
func (s *Service) Authorize(ctx context.Context, claims *credentials.Claims, action, resource string, reqCtx map[string][]string) (iam.Result, error) {
	deny := iam.Result{Decision: iam.ImplicitDeny, Action: action, Resource: resource}
	if claims == nil {
		return deny, errors.New("sts: authorize: no claims")
	}
	ref, err := s.roleRefFromARN(claims.RoleARN)
	if err != nil {
		return deny, fmt.Errorf("sts: authorize: %w", err)
	}
	re, err := s.role(ctx, ref)
	if errors.Is(err, errNoRole) {
		return deny, fmt.Errorf("sts: authorize: role %s no longer exists", claims.RoleARN)
	}
	if err != nil {
		return deny, fmt.Errorf("sts: authorize: %w", err)
	}
	if re.permsErr != nil {
		return deny, fmt.Errorf("sts: authorize: role %s: %w", claims.RoleARN, re.permsErr)
	}
	sess, err := s.sessionCompiled(ctx, claims)
	if err != nil {
		return deny, fmt.Errorf("sts: authorize: %w", err)
	}
	c := make(map[string][]string, len(reqCtx)+12)
	for k, v := range reqCtx {
		c[strings.ToLower(k)] = v
	}
	s.principalContext(c, claims)
	if _, ok := c["aws:currenttime"]; !ok {
		now := s.now().UTC()
		c["aws:currenttime"] = []string{now.Format(time.RFC3339)}
		c["aws:epochtime"] = []string{strconv.FormatInt(now.Unix(), 10)}
	}
	r := &iam.Request{Action: action, Resource: resource, Context: c}
	return intersect(re.perms.Evaluate(r), sess, r), nil
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
