package decision

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/awsname"
	"github.com/gatehouse-dev/gatehouse/internal/iam"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// Condition keys gatehouse's own issuer vouches for in its web-identity
// tokens, readable by trust policies.
const (
	KeyUsername = "gatehouse:username" // single-valued
	KeyGroups   = "gatehouse:groups"   // multi-valued, transitive groups
	KeyRoles    = "gatehouse:roles"    // multi-valued, role ARNs granted by an IdP
	KeyIdP      = "gatehouse:idp"      // single-valued
)

// actionPick is the issuance the role picker stands for: the role is
// pickable when gatehouse's own issuer could assume it for the user.
const actionPick = "sts:AssumeRoleWithWebIdentity"

// Principal is the directory principal a role-picker question is about.
type Principal struct {
	UserID   string
	UserName string
	// Groups are the user's group names, transitively.
	Groups []string
	// IdP names how the user signed in (the gatehouse:idp claim).
	IdP string
}

// PickRequest asks which roles Principal may pick. Context holds the
// request's keys (aws:SourceIp, aws:SecureTransport, aws:UserAgent); the
// principal's keys are set by the point.
type PickRequest struct {
	Principal Principal
	Context   map[string][]string
}

// TrustContext returns the condition keys a web-identity token of issuer
// carries for sub, aud and, for gatehouse's own issuer, the gatehouse:*
// claims (self nil: none). It does no I/O.
func TrustContext(issuer, sub string, aud []string, self *Principal, roles []string) map[string][]string {
	k := store.OIDCIssuerKey(issuer)
	ctx := map[string][]string{
		k + ":sub": {sub},
		k + ":aud": slices.Clone(aud),
	}
	if self != nil {
		ctx[KeyUsername] = []string{self.UserName}
		ctx[KeyGroups] = slices.Clone(self.Groups)
		ctx[KeyRoles] = slices.Clone(roles)
		if self.IdP != "" {
			ctx[KeyIdP] = []string{self.IdP}
		}
	}
	return ctx
}

// SelfProviderARN is the OIDC provider ARN of gatehouse's own issuer.
func (p *Point) SelfProviderARN() string {
	pr := store.OIDCProvider{IssuerURL: p.o.SelfIssuer}
	return pr.ARN(p.o.AccountID)
}

// Pickable returns the roles q.Principal may pick, ordered by name
// (case-insensitively): those whose trust policy allows gatehouse's own
// issuer to assume them with AssumeRoleWithWebIdentity for this principal
// and context. Only the candidates of the trust index are evaluated.
func (p *Point) Pickable(ctx context.Context, q PickRequest) ([]*Role, error) {
	if p.o.SelfIssuer == "" {
		return nil, nil
	}
	ix, err := p.trustIndex(ctx)
	if err != nil {
		return nil, err
	}
	self := p.SelfProviderARN()
	now := p.o.Clock()
	tctx := TrustContext(p.o.SelfIssuer, q.Principal.UserID, []string{p.o.Audience}, &q.Principal, nil)
	tctx["aws:currenttime"] = []string{now.UTC().Format(time.RFC3339)}
	tctx["aws:epochtime"] = []string{strconv.FormatInt(now.Unix(), 10)}
	tctx["aws:federatedprovider"] = []string{self}
	tctx["sts:rolesessionname"] = []string{awsname.SessionNameFrom(q.Principal.UserName)}
	for k, v := range q.Context {
		tctx[strings.ToLower(k)] = v
	}
	var out []*Role
	for _, role := range ix.candidates(q.Principal) {
		a := p.Trust(role, TrustRequest{Action: actionPick, Type: iam.PrincipalFederated, Principals: []string{self}, Context: tctx})
		if a.Outcome == TrustAllowed {
			out = append(out, role)
		}
	}
	return out, nil
}

// entitlement is a user's pickable role ARNs, as of (gen, at).
type entitlement struct {
	roles map[string]bool
	gen   uint64
	at    time.Time // read from the store (or last confirmed current)
	built time.Time
	mark  []byte // the shared change mark read before it was read
}

// Entitled reports whether the directory user userID could pick roleARN in
// the role picker right now (without request context: a trust condition on
// the source address or transport does not hold, so such roles are not
// entitled; fail closed). The S3 gateway asks it, through Authorize's
// ActAs, before acting as a mount's role. Inactive and unknown users are
// entitled to nothing. Answers are cached per user until the next change
// or TTL, so a request touching many keys reads the directory once.
func (p *Point) Entitled(ctx context.Context, userID, roleARN string) (bool, error) {
	p.mu.Lock()
	e, ok := p.entitled[userID]
	p.mu.Unlock()
	if ok && p.fresh(e.gen, e.at) {
		return e.roles[roleARN], nil
	}
	if ok && p.unchanged(ctx, e.gen, e.built, e.mark) {
		kept := *e
		kept.at = p.o.Clock()
		p.mu.Lock()
		p.entitled[userID] = &kept
		p.mu.Unlock()
		return e.roles[roleARN], nil
	}
	now := p.o.Clock()
	e = &entitlement{roles: map[string]bool{}, gen: p.gen.Load(), at: now, built: now, mark: p.readMark(ctx)}
	u, err := p.o.Store.GetUser(ctx, userID)
	switch {
	case errors.Is(err, store.ErrNotFound):
	case err != nil:
		return false, fmt.Errorf("decision: user %q: %w", userID, err)
	case u.Active:
		groups, err := p.o.Store.GroupsOfUser(ctx, u.ID)
		if err != nil {
			return false, fmt.Errorf("decision: groups of %q: %w", u.UserName, err)
		}
		pr := Principal{UserID: u.ID, UserName: u.UserName, IdP: "token"}
		for _, g := range groups {
			pr.Groups = append(pr.Groups, g.DisplayName)
		}
		roles, err := p.Pickable(ctx, PickRequest{Principal: pr})
		if err != nil {
			return false, err
		}
		for _, r := range roles {
			e.roles[r.ARN] = true
		}
	}
	p.mu.Lock()
	if len(p.entitled) >= maxEntitlements {
		clear(p.entitled)
	}
	p.entitled[userID] = e
	p.mu.Unlock()
	return e.roles[roleARN], nil
}

// maxEntitlements bounds the per-user entitlement cache.
const maxEntitlements = 100000
