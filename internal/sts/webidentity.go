package sts

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/awsname"
	"github.com/gatehouse-dev/gatehouse/internal/identity/oidc"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/sts/credentials"
)

// oidcCache keeps provider lookups by issuer for at most the cache TTL,
// and one verifier per OIDC provider revision (the verifier holds the
// provider's fetched JWKS).
type oidcCache struct {
	mu        sync.Mutex
	m         map[string]*oidcEntry // issuer -> entry
	verifiers oidc.ProviderCache[*oidc.Verifier]
}

type oidcEntry struct {
	prov    *store.OIDCProvider // nil: none registered
	v       *oidc.Verifier
	fetched time.Time
}

// verifierFor returns the provider registered for issuer and its verifier;
// a nil provider means none is registered.
func (s *Service) verifierFor(ctx context.Context, issuer string) (*store.OIDCProvider, *oidc.Verifier, error) {
	now := s.now()
	s.oidc.mu.Lock()
	e, ok := s.oidc.m[issuer]
	s.oidc.mu.Unlock()
	if ok && now.Sub(e.fetched) < s.o.CacheTTL && !now.Before(e.fetched) {
		return e.prov, e.v, nil
	}
	p, err := s.o.Store.GetOIDCProviderByIssuer(ctx, issuer)
	if errors.Is(err, store.ErrNotFound) {
		p = nil
	} else if err != nil {
		return nil, nil, fmt.Errorf("sts: get OIDC provider %q: %w", issuer, err)
	}
	ne := &oidcEntry{prov: p, fetched: now}
	if p != nil {
		ne.v, err = s.oidc.verifiers.Get(p.ID, p.Revision, func() (*oidc.Verifier, error) {
			vctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			opts := oidc.Options{HTTPClient: s.o.HTTPClient, Clock: s.now, Logger: s.log}
			if p.IssuerURL == s.o.SelfIssuer && s.o.SelfJWKS != nil {
				if opts.StaticJWKS, err = s.o.SelfJWKS(vctx); err != nil {
					return nil, fmt.Errorf("sts: gatehouse's own signing keys: %w", err)
				}
			}
			return oidc.NewVerifier(vctx, oidc.Provider{
				Issuer:    p.IssuerURL,
				Audiences: p.Audiences,
				JWKSURL:   p.JWKSURL,
				ClaimMappings: oidc.ClaimMappings{
					Groups: p.GroupsClaim, Roles: p.RolesClaim, Username: p.UsernameClaim,
				},
			}, opts)
		})
		if err != nil {
			return p, nil, err
		}
	}
	s.oidc.mu.Lock()
	if len(s.oidc.m) > 1000 {
		clear(s.oidc.m)
	}
	s.oidc.m[issuer] = ne
	s.oidc.mu.Unlock()
	return ne.prov, ne.v, nil
}

// unverifiedIssuer reads iss from a JWT payload without checking anything:
// it only selects which provider's verifier to use.
func unverifiedIssuer(tok string) (string, bool) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return "", false
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return "", false
	}
	var c struct {
		Iss string `json:"iss"`
	}
	if json.Unmarshal(payload, &c) != nil || c.Iss == "" {
		return "", false
	}
	return c.Iss, true
}

type webIdentityResult struct {
	Credentials                 credentialsXML
	SubjectFromWebIdentityToken string
	AssumedRoleUser             assumedRoleUser
	PackedPolicySize            int
	Provider                    string
	Audience                    string
	SourceIdentity              string `xml:",omitempty" json:",omitempty"`
}

// sourceIdentityClaim is the claim AWS reads sts:SourceIdentity from.
const sourceIdentityClaim = "https://aws.amazon.com/source_identity"

// tagsClaim carries session tags in a web identity token (AWS "Passing
// session tags using AssumeRoleWithWebIdentity"):
// {"principal_tags": {"Key": ["Value"]}, "transitive_tag_keys": ["Key"]}.
const tagsClaim = "https://aws.amazon.com/tags"

// webIdentityFlow is AssumeRoleWithWebIdentity
// (https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRoleWithWebIdentity.html):
// the proof is an OpenID Connect ID token from a registered provider.
type webIdentityFlow struct {
	s     *Service
	token string
	// providerID is the optional ProviderId parameter.
	providerID    string
	hasProviderID bool
	// Set by prove, for result.
	id  *oidc.Identity
	aud string
}

var webIdentitySpec = &flowSpec{
	Action:            ActionAssumeRoleWithWebIdentity,
	TrustAction:       "sts:AssumeRoleWithWebIdentity",
	AuthMethod:        "oidc",
	Takes:             []string{"RoleSessionName", "WebIdentityToken", "ProviderId"},
	NoRoleFix:         "create the role, or pass the ARN of an existing role.",
	TagSessionFix:     "allow sts:TagSession for the provider in the role's trust policy, or stop sending the " + tagsClaim + " claim.",
	SourceIdentityFix: "allow sts:SetSourceIdentity for the provider in the role's trust policy.",
}

func (fl *webIdentityFlow) spec() *flowSpec                        { return webIdentitySpec }
func (fl *webIdentityFlow) begin(*http.Request, *auditInfo) *Error { return nil }

// check reads WebIdentityToken; its length is AWS's bound.
func (fl *webIdentityFlow) check(req *request, _ *auditInfo) *Error {
	token, e := req.required("WebIdentityToken")
	if e != nil {
		return e
	}
	if len(token) < 4 || len(token) > 20000 {
		return newErr(CodeValidationError, "token-length", "WebIdentityToken must be 4 to 20000 characters.",
			"pass the raw ID token (a JWT), not a file name or an access token.")
	}
	fl.token = token
	fl.providerID, fl.hasProviderID = req.Params["ProviderId"]
	return nil
}

// prove verifies the token with its issuer's registered provider, checks
// the provider's roles claim grants the role, and reads the session tags
// and source identity the token asserts.
func (fl *webIdentityFlow) prove(ctx context.Context, in *commonInput, info *auditInfo) (*federation, *Error) {
	s := fl.s
	prov, v, e := fl.provider(ctx)
	if e != nil {
		return nil, e
	}
	provARN := prov.ARN(s.o.AccountID)
	info.Provider = provARN
	key := store.OIDCIssuerKey(prov.IssuerURL)
	if pid := fl.providerID; fl.hasProviderID && pid != key && pid != strings.SplitN(key, "/", 2)[0] {
		return nil, newErr(CodeValidationError, "provider-id",
			fmt.Sprintf("ProviderId %q does not name the token's issuer %s.", clip(pid), key), "omit ProviderId for OpenID Connect tokens.")
	}
	id, err := v.Verify(ctx, fl.token)
	if err != nil {
		return nil, fromOIDC(err)
	}
	info.User = clip(id.Username)
	fl.id = id
	for _, a := range id.Audience {
		if slices.Contains(prov.Audiences, a) {
			fl.aud = a
			break
		}
	}
	if id.Roles != nil && !slices.Contains(id.Roles, in.RoleARN) {
		return nil, newErr(CodeAccessDenied, "role-not-granted",
			fmt.Sprintf("The token's roles claim does not include %s.", in.RoleARN),
			"grant the role to the user at the IdP, or pick one of the roles the token lists.")
	}
	sourceID, _ := id.Claims[sourceIdentityClaim].(string)
	if sourceID != "" {
		if err := awsname.SourceIdentity(sourceID); err != nil {
			return nil, newErr(CodeValidationError, "source-identity",
				fmt.Sprintf("The token's %s claim %q is not a valid source identity: %v.", sourceIdentityClaim, clip(sourceID), err),
				"map the claim to 2-64 characters of [\\w+=,.@-].")
		}
	}
	tags, transitive, e := webIdentityTags(id.Claims)
	if e != nil {
		return nil, e
	}
	fid := s.o.Binder.OIDCIdentity(prov, id)
	return &federation{
		Identity: &fid, PrincipalType: "Federated", Principals: []string{provARN},
		SessionName: in.SessionName, SourceIdentity: sourceID,
		Tags: tags, TransitiveKeys: transitive, Groups: id.Groups,
		RoleLimit: webIdentityLimit(id.Roles),
		Context:   fl.context(prov, provARN, id),
	}, nil
}

// provider returns the registered provider of the token's issuer and its
// verifier.
func (fl *webIdentityFlow) provider(ctx context.Context) (*store.OIDCProvider, *oidc.Verifier, *Error) {
	iss, ok := unverifiedIssuer(fl.token)
	if !ok {
		return nil, nil, newErr(CodeInvalidIdentityToken, "not-jwt", "The web identity token is not a JWT with an iss claim.",
			"pass the IdP's ID token (three base64url parts separated by dots).")
	}
	prov, v, err := fl.s.verifierFor(ctx, iss)
	switch {
	case err != nil && prov != nil:
		return nil, nil, fromOIDC(err)
	case err != nil:
		return nil, nil, internalErr(err)
	case prov == nil:
		return nil, nil, newErr(CodeInvalidIdentityToken, "unknown-issuer",
			fmt.Sprintf("No OpenID Connect provider is registered for issuer %q.", clip(iss)),
			"register the issuer as an OIDC provider in gatehouse, or use a token from a registered IdP.")
	}
	return prov, v, nil
}

// context is the web identity trust-policy keys: <issuer>:aud, :sub and
// :amr, aws:FederatedProvider, and the deployment's claim mappings.
func (fl *webIdentityFlow) context(prov *store.OIDCProvider, provARN string, id *oidc.Identity) map[string][]string {
	key := strings.ToLower(store.OIDCIssuerKey(prov.IssuerURL))
	c := map[string][]string{
		key + ":aud":            {fl.aud},
		key + ":sub":            {id.Subject},
		"aws:federatedprovider": {provARN},
	}
	if amr, ok := stringsClaim(id.Claims["amr"]); ok {
		c[key+":amr"] = amr
	}
	if fl.s.o.WebIdentityContext != nil {
		for k, v := range fl.s.o.WebIdentityContext(prov.IssuerURL, id.Claims) {
			c[strings.ToLower(k)] = v
		}
	}
	return c
}

func (fl *webIdentityFlow) result(out issued, pol sessionPolicy) result {
	return result{Action: ActionAssumeRoleWithWebIdentity, Body: webIdentityResult{
		Credentials:                 credsXML(out.Creds),
		SubjectFromWebIdentityToken: fl.id.Subject,
		AssumedRoleUser:             assumedRoleUser{AssumedRoleID: out.AssumedRoleID, Arn: out.ARN},
		PackedPolicySize:            pol.PackedPercent,
		Provider:                    fl.id.Issuer,
		Audience:                    fl.aud,
		SourceIdentity:              out.SourceID,
	}}
}

// webIdentityLimit is the role restriction of a session from a token whose
// roles claim lists roles (the provider's RolesClaim): only those roles,
// even through an S3 mount. A token without the claim (roles nil) leaves
// the session unrestricted; a present but empty claim admits no role.
func webIdentityLimit(roles []string) *credentials.RoleLimit {
	if roles == nil {
		return nil
	}
	return credentials.NewRoleLimit(roles)
}

func stringsClaim(v any) ([]string, bool) {
	switch t := v.(type) {
	case string:
		return []string{t}, true
	case []any:
		var out []string
		for _, x := range t {
			if s, ok := x.(string); ok {
				out = append(out, s)
			}
		}
		return out, len(out) > 0
	}
	return nil, false
}

// webIdentityTags reads the session tags of a web identity token. Each
// principal tag value must be a list of exactly one string (AWS allows one
// value per key); keys are 1-128 and values 0-256 characters, at most 50
// tags, and every transitive key must name a tag.
func webIdentityTags(claims map[string]any) (map[string]string, []string, *Error) {
	raw, ok := claims[tagsClaim]
	if !ok {
		return nil, nil, nil
	}
	bad := func(cause string) *Error {
		return newErr(CodeInvalidIdentityToken, "tags", "The token's "+tagsClaim+" claim is malformed: "+cause+".",
			`send {"principal_tags": {"Key": ["Value"]}, "transitive_tag_keys": ["Key"]}.`)
	}
	obj, ok := raw.(map[string]any)
	if !ok {
		return nil, nil, bad("it is not an object")
	}
	tags := map[string]string{}
	if pt, ok := obj["principal_tags"]; ok {
		m, ok := pt.(map[string]any)
		if !ok {
			return nil, nil, bad("principal_tags is not an object")
		}
		if len(m) > 50 {
			return nil, nil, bad("more than 50 principal tags")
		}
		for k, v := range m {
			vals, ok := stringsClaim(v)
			if !ok || len(vals) != 1 {
				return nil, nil, bad(fmt.Sprintf("tag %q must have exactly one string value", clip(k)))
			}
			if len(k) < 1 || len(k) > 128 || len(vals[0]) > 256 || strings.HasPrefix(strings.ToLower(k), "aws:") {
				return nil, nil, bad(fmt.Sprintf("tag %q has a key or value of the wrong length, or an aws: prefix", clip(k)))
			}
			tags[k] = vals[0]
		}
	}
	var transitive []string
	if tk, ok := obj["transitive_tag_keys"]; ok {
		keys, ok := stringsClaim(tk)
		if !ok {
			return nil, nil, bad("transitive_tag_keys is not a list of strings")
		}
		for _, k := range keys {
			if _, ok := tags[k]; !ok {
				return nil, nil, bad(fmt.Sprintf("transitive key %q names no principal tag", clip(k)))
			}
		}
		transitive = keys
	}
	if len(tags) == 0 {
		tags = nil
	}
	return tags, transitive, nil
}
