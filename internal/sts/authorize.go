package sts

import (
	"context"
	"errors"
	"fmt"

	"github.com/gatehouse-dev/gatehouse/internal/decision"
	"github.com/gatehouse-dev/gatehouse/internal/iam"
	"github.com/gatehouse-dev/gatehouse/internal/sts/credentials"
)

// sessionOf is the decision point's view of verified claims.
func sessionOf(c *credentials.Claims) *decision.Session {
	return &decision.Session{
		PrincipalID: c.PrincipalID, UserName: c.UserName,
		RoleARN: c.RoleARN, AssumedRoleID: c.AssumedRoleID, RoleSessionName: c.RoleSessionName,
		SourceIdentity: c.SourceIdentity, Groups: c.Groups, Tags: c.SessionTags, IssuedAt: c.IssuedAt,
		SessionPolicy: c.SessionPolicy, PolicyARNs: c.PolicyARNs,
		RoleLimit: roleLimitOf(c),
	}
}

// roleLimitOf is the session's role restriction as the decision point
// takes it: nil when unrestricted, else a non-nil (maybe empty) list.
func roleLimitOf(c *credentials.Claims) []string {
	if c.RoleLimit == nil {
		return nil
	}
	return append([]string{}, c.RoleLimit.RoleARNs...)
}

// principalContext sets the condition keys that describe the session's
// principal (decision.Point.PrincipalContext).
func (s *Service) principalContext(ctx map[string][]string, c *credentials.Claims) {
	s.dp.PrincipalContext(ctx, sessionOf(c))
}

// Authorize asks the decision point (internal/decision) whether the session
// described by claims (verified by LookupCredentials) may perform action on
// resource: the role's permission
// policies ∩ the session policies ∩ the role's permissions boundary, with
// AWS evaluation logic (explicit deny > allow > implicit deny). reqCtx holds
// the request's condition keys (s3:prefix, aws:SourceIp, ...); it is not
// modified. The principal keys (aws:userid, aws:PrincipalArn,
// aws:PrincipalTag/*, aws:SourceIdentity, aws:username, gatehouse:username,
// gatehouse:groups) are always set from the claims (absent when the claims
// have no value for them), and aws:CurrentTime /
// aws:EpochTime when absent.
//
// The decision point caches compiled role policies per role revision; a
// change through this replica applies at once, one through another replica
// within CacheTTL. An error (role deleted, invalid stored policy, store
// down) must be treated as a denial. Safe for concurrent use.
func (s *Service) Authorize(ctx context.Context, claims *credentials.Claims, action, resource string, reqCtx map[string][]string) (iam.Result, error) {
	return s.AuthorizeAs(ctx, claims, "", action, resource, reqCtx)
}

// AuthorizeAs is Authorize for a session that asks to act as roleARN (a
// mount's role; "" or its own role: as itself). The decision point checks
// that the session's end user is entitled to roleARN (the role picker's
// rule) and evaluates the request as that role, the session's own session
// policies still applied. Not being entitled is an implicit deny with a
// *decision.NotEntitledError (a denial, not a failure).
func (s *Service) AuthorizeAs(ctx context.Context, claims *credentials.Claims, roleARN, action, resource string, reqCtx map[string][]string) (iam.Result, error) {
	if claims == nil {
		return iam.Result{Decision: iam.ImplicitDeny, Action: action, Resource: resource}, errors.New("sts: authorize: no claims")
	}
	a, err := s.dp.Authorize(ctx, decision.Request{Session: sessionOf(claims), Action: action, Resource: resource, Context: reqCtx, ActAs: roleARN})
	if err != nil {
		return a.Result, fmt.Errorf("sts: %w", err)
	}
	return a.Result, nil
}

// NamesKeyPrefix reports whether a policy that could decide a request of
// the session described by claims, acting as roleARN ("" or its own role:
// as itself), names a condition key starting with prefix
// (decision.Point.NamesKeyPrefix). The S3 gateway asks it (s3gw.KeyNamer)
// before it reads an object's tags for s3:ExistingObjectTag/. On an error
// the caller must assume the key is named.
func (s *Service) NamesKeyPrefix(ctx context.Context, claims *credentials.Claims, roleARN, prefix string) (bool, error) {
	if claims == nil {
		return true, errors.New("sts: names key: no claims")
	}
	named, err := s.dp.NamesKeyPrefix(ctx, decision.Request{Session: sessionOf(claims), ActAs: roleARN}, prefix)
	if err != nil {
		return true, fmt.Errorf("sts: %w", err)
	}
	return named, nil
}

// Decision returns the decision point the service asks.
func (s *Service) Decision() *decision.Point { return s.dp }
