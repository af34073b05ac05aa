package websso

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/clientip"
	"github.com/gatehouse-dev/gatehouse/internal/decision"
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

// grantSource names where a restricted token's role came from: the SAML
// or OIDC provider that granted it.
func grantSource(g store.RoleGrant) string {
	if strings.Contains(g.ProviderARN, ":oidc-provider/") {
		return SourceOIDC
	}
	return SourceSAML
}

// roles lists the session's entitlements, first = default. r is the
// request, for the aws:* keys STS would see. A restricted session
// (si.limit) may pick exactly the granted roles that exist; any other asks
// the decision point which roles its trust policies let it pick.
func (s *Service) roles(ctx context.Context, si *sessionInfo, r *http.Request) ([]Entitlement, error) {
	out := []Entitlement{}
	if si.limit != nil {
		seen := map[string]bool{}
		for _, g := range si.limit {
			if seen[g.RoleARN] {
				continue
			}
			role, err := s.o.Decision.RoleOfARN(ctx, g.RoleARN)
			if errors.Is(err, decision.ErrNoRole) {
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("websso: role %s: %w", g.RoleARN, err)
			}
			seen[g.RoleARN] = true
			out = append(out, entitlementOf(role, grantSource(g), g.ProviderARN))
		}
		return out, nil
	}
	rctx := map[string][]string{}
	if r != nil {
		rctx["aws:securetransport"] = []string{strconv.FormatBool(clientip.SecureTransport(r))}
		if ip := remoteIP(r); ip != "" {
			rctx["aws:sourceip"] = []string{ip}
		}
		if ua := r.UserAgent(); ua != "" {
			rctx["aws:useragent"] = []string{ua}
		}
	}
	roles, err := s.o.Decision.Pickable(ctx, decision.PickRequest{
		Principal: decision.Principal{UserID: si.p.UserID, UserName: si.p.UserName, Groups: si.p.Groups, IdP: si.idp},
		Context:   rctx})
	if err != nil {
		return nil, fmt.Errorf("websso: role picker: %w", err)
	}
	for _, role := range roles {
		out = append(out, entitlementOf(role, SourceTrustPolicy, ""))
	}
	return out, nil
}

func entitlementOf(role *decision.Role, source, provider string) Entitlement {
	return Entitlement{ARN: role.ARN, Name: role.Stored.Name, Description: role.Stored.Description,
		MaxSessionDuration: role.Stored.MaxSessionDuration, Source: source, ProviderARN: provider}
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
