package websso

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/awsname"
	"github.com/gatehouse-dev/gatehouse/internal/clientip"
	"github.com/gatehouse-dev/gatehouse/internal/iam"
	"github.com/gatehouse-dev/gatehouse/internal/identity"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// Entitlement sources.
const (
	SourceSAML        = "saml"
	SourceOIDC        = "oidc"
	SourceTrustPolicy = "trust-policy"
)

// Entitlement is one role a session may pick.
type Entitlement struct {
	ARN                string `json:"arn"`
	Name               string `json:"name"`
	Description        string `json:"description,omitempty"`
	MaxSessionDuration int    `json:"maxSessionDuration"`
	Source             string `json:"source"`
	// ProviderARN is the SAML or OIDC provider that granted the role
	// (source saml or oidc).
	ProviderARN string `json:"providerArn,omitempty"`
}

// sessionRecord is what a federated login records for its session, in the
// store meta space under sessionMetaKey(token id). It expires with the
// session; expired records are ignored. The roles the IdP granted are not
// here but on the session's token (store.Token.Roles), where tokens minted
// with the session inherit them.
type sessionRecord struct {
	IdP       string    `json:"idp"`
	ExpiresAt time.Time `json:"expiresAt"`
}

func sessionMetaKey(tokenID string) string { return "websso/session/" + tokenID }

// sessionInfo is an authenticated caller with what its login recorded.
type sessionInfo struct {
	p   *identity.Principal
	idp string
	// limit restricts the roles the caller may pick (p.RoleLimit): nil
	// means the trust policies decide; non-nil, even empty, means exactly
	// the listed roles.
	limit []store.RoleGrant
}

// sessionOf resolves the login record of an authenticated principal.
func (s *Service) sessionOf(ctx context.Context, p *identity.Principal) (*sessionInfo, error) {
	si := &sessionInfo{p: p, idp: IdPToken, limit: p.RoleLimit}
	if p.AuthMethod == "session" {
		si.idp = IdPPassword
	}
	if p.TokenID == "" {
		return si, nil
	}
	raw, err := s.o.Store.GetMeta(ctx, sessionMetaKey(p.TokenID))
	if errors.Is(err, store.ErrNotFound) {
		return si, nil
	}
	if err != nil {
		return nil, fmt.Errorf("websso: session record: %w", err)
	}
	var rec sessionRecord
	if err := json.Unmarshal(raw, &rec); err != nil {
		return nil, fmt.Errorf("websso: session record %s is corrupt: %w", p.TokenID, err)
	}
	if !s.now().Before(rec.ExpiresAt) {
		return si, nil
	}
	si.idp = rec.IdP
	return si, nil
}

func (s *Service) recordSession(ctx context.Context, tok *store.Token, rec sessionRecord) error {
	rec.ExpiresAt = tok.ExpiresAt
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	empty := []byte{}
	// The record goes with its token: it expires (an hour after, for clocks
	// that disagree) when the token does, and is then swept. A token
	// without expiry keeps its record.
	var until time.Time
	if !tok.ExpiresAt.IsZero() {
		until = tok.ExpiresAt.Add(time.Hour)
	}
	if err := s.o.Store.PutMetaUntil(ctx, sessionMetaKey(tok.ID), b, &empty, until); err != nil {
		return fmt.Errorf("websso: record session: %w", err)
	}
	return nil
}

// entitlements evaluates which roles a session may pick.
type entitlements struct {
	s     *Service
	mu    sync.Mutex
	cache map[string]cachedPolicy // role id -> compiled trust policy
}

type cachedPolicy struct {
	rev int64
	c   *iam.Compiled
	err error
}

func (e *entitlements) trust(r *store.Role) (*iam.Compiled, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if c, ok := e.cache[r.ID]; ok && c.rev == r.Revision {
		return c.c, c.err
	}
	var cp cachedPolicy
	cp.rev = r.Revision
	pol, err := iam.Parse([]byte(r.TrustPolicy))
	if err == nil {
		cp.c, err = iam.Compile(iam.NamedPolicy{Name: "trust policy of " + r.Name, Policy: pol})
	}
	cp.err = err
	if len(e.cache) > 10000 {
		clear(e.cache)
	}
	e.cache[r.ID] = cp
	return cp.c, cp.err
}

// grantSource names where a restricted token's role came from: the SAML
// or OIDC provider that granted it.
func grantSource(g store.RoleGrant) string {
	if strings.Contains(g.ProviderARN, ":oidc-provider/") {
		return SourceOIDC
	}
	return SourceSAML
}

// roles lists the session's entitlements, first = default. r is the
// request, for the aws:* keys STS would see.
func (s *Service) roles(ctx context.Context, si *sessionInfo, r *http.Request) ([]Entitlement, error) {
	all, err := s.o.Store.ListRoles(ctx)
	if err != nil {
		return nil, fmt.Errorf("websso: list roles: %w", err)
	}
	byARN := make(map[string]*store.Role, len(all))
	for _, role := range all {
		byARN[role.ARN(s.o.AccountID)] = role
	}
	out := []Entitlement{}
	if si.limit != nil {
		seen := map[string]bool{}
		for _, g := range si.limit {
			role, ok := byARN[g.RoleARN]
			if !ok || seen[g.RoleARN] {
				continue
			}
			seen[g.RoleARN] = true
			out = append(out, Entitlement{ARN: g.RoleARN, Name: role.Name, Description: role.Description,
				MaxSessionDuration: role.MaxSessionDuration, Source: grantSource(g), ProviderARN: g.ProviderARN})
		}
		return out, nil
	}
	self := s.SelfProviderARN()
	now := s.now()
	base := map[string][]string{
		"aws:currenttime":       {now.Format(time.RFC3339)},
		"aws:epochtime":         {strconv.FormatInt(now.Unix(), 10)},
		"aws:federatedprovider": {self},
		"sts:rolesessionname":   {awsname.SessionNameFrom(si.p.UserName)},
	}
	if r != nil {
		base["aws:securetransport"] = []string{strconv.FormatBool(clientip.SecureTransport(r))}
		if ip := remoteIP(r); ip != "" {
			base["aws:sourceip"] = []string{ip}
		}
		if ua := r.UserAgent(); ua != "" {
			base["aws:useragent"] = []string{ua}
		}
	}
	tctx := TrustContext(s.o.PublicURL, si.p.UserID, []string{s.o.Audience},
		&SelfClaims{Username: si.p.UserName, Groups: si.p.Groups, Roles: nil, IdP: si.idp})
	for k, v := range base {
		tctx[k] = v
	}
	sort.Slice(all, func(i, j int) bool { return strings.ToLower(all[i].Name) < strings.ToLower(all[j].Name) })
	for _, role := range all {
		arn := role.ARN(s.o.AccountID)
		c, err := s.ent.trust(role)
		if err != nil {
			s.log.WarnContext(ctx, "role picker: trust policy does not parse; role skipped", "role", arn, "err", err)
			continue
		}
		res := c.Evaluate(&iam.Request{Action: "sts:AssumeRoleWithWebIdentity", Resource: arn, Principals: iam.IdentitiesOf(self), Context: tctx})
		if res.Decision != iam.Allowed {
			continue
		}
		out = append(out, Entitlement{ARN: arn, Name: role.Name, Description: role.Description,
			MaxSessionDuration: role.MaxSessionDuration, Source: SourceTrustPolicy})
	}
	return out, nil
}

// WebIdentityContext is the hook STS calls when it evaluates a trust policy
// for AssumeRoleWithWebIdentity; see WebIdentityContextFor.
func (s *Service) WebIdentityContext(issuer string, claims map[string]any) map[string][]string {
	return WebIdentityContextFor(s.o.PublicURL)(issuer, claims)
}

// WebIdentityContextFor returns the STS hook for gatehouse's own issuer
// selfIssuer (api.public_url): for a verified token of that issuer it
// returns the gatehouse:* condition keys (see TrustContext) from the
// claims; for any other issuer nil, since only gatehouse vouches for them.
// It does no I/O and is safe for concurrent use.
func WebIdentityContextFor(selfIssuer string) func(issuer string, claims map[string]any) map[string][]string {
	self := strings.TrimRight(selfIssuer, "/")
	return func(issuer string, claims map[string]any) map[string][]string {
		if strings.TrimRight(issuer, "/") != self || self == "" {
			return nil
		}
		ctx := TrustContext(issuer, "", nil, SelfClaimsFrom(claims))
		// The per-issuer keys are STS's own; return only the extension keys.
		for k := range ctx {
			if !strings.HasPrefix(k, "gatehouse:") {
				delete(ctx, k)
			}
		}
		return ctx
	}
}

// Entitled reports whether the directory user u could pick roleARN in the
// role picker right now: the role's trust policy admits gatehouse's own
// issuer for u's current groups. The S3 gateway asks this before acting
// as a mount's role for a caller. Inactive users are entitled to nothing.
func (s *Service) Entitled(ctx context.Context, u *store.User, roleARN string) (bool, error) {
	if u == nil || !u.Active {
		return false, nil
	}
	groups, err := s.o.Store.GroupsOfUser(ctx, u.ID)
	if err != nil {
		return false, fmt.Errorf("websso: groups of %q: %w", u.UserName, err)
	}
	names := make([]string, len(groups))
	for i, g := range groups {
		names[i] = g.DisplayName
	}
	si := &sessionInfo{p: &identity.Principal{UserID: u.ID, UserName: u.UserName, Groups: names}, idp: IdPToken}
	roles, err := s.roles(ctx, si, nil)
	if err != nil {
		return false, err
	}
	for _, r := range roles {
		if r.ARN == roleARN {
			return true, nil
		}
	}
	return false, nil
}
