package websso

import (
	"context"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/gatehouse-dev/gatehouse/internal/decision"
	"github.com/gatehouse-dev/gatehouse/internal/identity/oidc"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// Paths served for the self OIDC issuer (OpenID Connect Discovery 1.0 §4).
const (
	DiscoveryPath = "/.well-known/openid-configuration"
	JWKSPath      = "/oauth/jwks"
)

// signingKeyMeta is the store meta key of the sealed issuer key.
const signingKeyMeta = "websso/oidc-signing-key/v1"

// Claim names of web-identity tokens besides the registered ones
// (RFC 7519 §4.1). Groups and roles use the names the oidc verifier reads
// by default, so the ordinary OIDC-provider path maps them.
const (
	ClaimUsername = "preferred_username"
	ClaimGroups   = "groups"
	ClaimRoles    = "roles"
	// ClaimIdP names how the session was established: "password" (local
	// password), "token" (personal access token), or the ARN of the SAML
	// or OIDC provider the user signed in through.
	ClaimIdP = "gatehouse:idp"
	// ClaimSession is the id of the gatehouse session (or token) the web
	// identity token was minted from, for audit correlation.
	ClaimSession = "sid"
)

// IAM condition keys available when a role's trust policy is evaluated for
// a web-identity token of the gatehouse issuer (and only then: an external
// IdP cannot set them). The per-issuer keys are "<issuer key>:sub" and
// "<issuer key>:aud", where the issuer key is store.OIDCIssuerKey of the
// issuer URL, as AWS does for OIDC providers. See TrustContext.
const (
	// KeyUsername is the gatehouse user name (single-valued).
	KeyUsername = decision.KeyUsername
	// KeyGroups are the user's groups, transitively (multi-valued: use
	// ForAnyValue:/ForAllValues:).
	KeyGroups = decision.KeyGroups
	// KeyRoles are the role ARNs the session is entitled to (multi-valued).
	// For a SAML session these are the IdP's Role attribute values, so a
	// trust policy can say "whoever the IdP entitles to this role".
	KeyRoles = decision.KeyRoles
	// KeyIdP is the ClaimIdP value (single-valued).
	KeyIdP = decision.KeyIdP
)

// Identity-provider values of ClaimIdP for local logins.
const (
	IdPPassword = "password"
	IdPToken    = "token"
)

// SelfClaims are the gatehouse-specific claims of a web-identity token.
type SelfClaims struct {
	Username string
	Groups   []string
	Roles    []string
	IdP      string
}

// SelfClaimsFrom reads SelfClaims from a verified token's claims. Callers
// must only use it for tokens whose issuer is gatehouse itself.
func SelfClaimsFrom(claims map[string]any) *SelfClaims {
	sc := &SelfClaims{}
	sc.Username, _ = claims[ClaimUsername].(string)
	sc.Groups = stringList(claims[ClaimGroups])
	sc.Roles = stringList(claims[ClaimRoles])
	sc.IdP, _ = claims[ClaimIdP].(string)
	return sc
}

func stringList(v any) []string {
	switch t := v.(type) {
	case string:
		return []string{t}
	case []string:
		return t
	case []any:
		out := make([]string, 0, len(t))
		for _, e := range t {
			if s, ok := e.(string); ok {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

// TrustContext returns the IAM condition context under which a role's trust
// policy is evaluated for action sts:AssumeRoleWithWebIdentity with a token
// of issuer: "<issuer key>:sub" and "<issuer key>:aud" always, and the
// gatehouse:* keys when self is non-nil (tokens of the gatehouse issuer
// only). The role picker (entitlements) and the STS endpoint must both use
// it, so a role listed to a user is a role STS lets the user assume.
func TrustContext(issuer, sub string, aud []string, self *SelfClaims) map[string][]string {
	if self == nil {
		return decision.TrustContext(issuer, sub, aud, nil, nil)
	}
	return decision.TrustContext(issuer, sub, aud,
		&decision.Principal{UserName: self.Username, Groups: self.Groups, IdP: self.IdP}, self.Roles)
}

// issuer signs web-identity tokens with a sealed RSA-2048 key.
type issuer struct {
	s     *Service
	mu    sync.Mutex
	key   *rsa.PrivateKey
	kid   string
	signr jose.Signer
}

func (is *issuer) load(ctx context.Context) (jose.Signer, *rsa.PrivateKey, string, error) {
	is.mu.Lock()
	defer is.mu.Unlock()
	if is.signr != nil {
		return is.signr, is.key, is.kid, nil
	}
	k, err := SealedRSAKey(ctx, is.s.o.Store, is.s.o.MasterKey, signingKeyMeta, is.s.o.Rand)
	if err != nil {
		return nil, nil, "", err
	}
	jwk := jose.JSONWebKey{Key: &k.PublicKey}
	tp, err := jwk.Thumbprint(cryptoSHA256)
	if err != nil {
		return nil, nil, "", fmt.Errorf("websso: key thumbprint: %w", err)
	}
	kid := base64.RawURLEncoding.EncodeToString(tp)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: k, KeyID: kid}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return nil, nil, "", fmt.Errorf("websso: signer: %w", err)
	}
	is.key, is.kid, is.signr = k, kid, signer
	return signer, k, kid, nil
}

// WebIdentityToken is a minted token and what it says.
type WebIdentityToken struct {
	Token     string    `json:"token"`
	Issuer    string    `json:"issuer"`
	Audience  string    `json:"audience"`
	Subject   string    `json:"subject"`
	UserName  string    `json:"userName"`
	Roles     []string  `json:"roles"`
	ExpiresAt time.Time `json:"expiresAt"`
}

// mint signs a web-identity token for the session.
func (is *issuer) mint(ctx context.Context, sess *sessionInfo, roles []string) (*WebIdentityToken, error) {
	signer, _, _, err := is.load(ctx)
	if err != nil {
		return nil, err
	}
	now := is.s.now().Truncate(time.Second)
	exp := now.Add(is.s.o.TokenTTL)
	jti, err := randomID(is.s.o.Rand, 16)
	if err != nil {
		return nil, err
	}
	if roles == nil {
		roles = []string{}
	}
	groups := sess.p.Groups
	if groups == nil {
		groups = []string{}
	}
	claims := map[string]any{
		"iss":         is.s.o.PublicURL,
		"aud":         is.s.o.Audience,
		"sub":         sess.p.UserID,
		"iat":         now.Unix(),
		"nbf":         now.Unix(),
		"exp":         exp.Unix(),
		"jti":         jti,
		ClaimUsername: sess.p.UserName,
		ClaimGroups:   groups,
		ClaimRoles:    roles,
		ClaimIdP:      sess.idp,
		ClaimSession:  sess.p.TokenID,
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return nil, err
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return nil, fmt.Errorf("websso: sign token: %w", err)
	}
	raw, err := jws.CompactSerialize()
	if err != nil {
		return nil, fmt.Errorf("websso: serialize token: %w", err)
	}
	return &WebIdentityToken{Token: raw, Issuer: is.s.o.PublicURL, Audience: is.s.o.Audience, Subject: sess.p.UserID,
		UserName: sess.p.UserName, Roles: roles, ExpiresAt: exp}, nil
}

func (is *issuer) serveDiscovery(w http.ResponseWriter, r *http.Request) {
	base := is.s.o.PublicURL
	doc := map[string]any{
		"issuer":                                base,
		"jwks_uri":                              base + JWKSPath,
		"response_types_supported":              []string{"id_token"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"claims_supported": []string{"iss", "aud", "sub", "exp", "iat", "nbf", "jti",
			ClaimUsername, ClaimGroups, ClaimRoles, ClaimIdP, ClaimSession},
	}
	w.Header().Set("Cache-Control", "public, max-age=300")
	writeJSON(w, http.StatusOK, doc)
}

func (is *issuer) serveJWKS(w http.ResponseWriter, r *http.Request) {
	set, err := is.keySet(r.Context())
	if err != nil {
		is.s.log.ErrorContext(r.Context(), "jwks: signing key unavailable", "err", err)
		writeAPIError(w, r, http.StatusServiceUnavailable, "unavailable", "the signing key is unavailable")
		return
	}
	w.Header().Set("Cache-Control", "public, max-age=300")
	writeJSON(w, http.StatusOK, set)
}

// keySet is the public key set of the self issuer, as /oauth/jwks serves it.
func (is *issuer) keySet(ctx context.Context) (jose.JSONWebKeySet, error) {
	_, k, kid, err := is.load(ctx)
	if err != nil {
		return jose.JSONWebKeySet{}, err
	}
	return jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &k.PublicKey, KeyID: kid, Algorithm: string(jose.RS256), Use: "sig"}}}, nil
}

// SelfJWKS returns the key set of gatehouse's own issuer (RFC 7517 §5
// JSON, the body of /oauth/jwks), read from the store, not over HTTP. The
// STS verifies gatehouse-issued tokens with it (sts.Options.SelfJWKS).
func (s *Service) SelfJWKS(ctx context.Context) ([]byte, error) {
	set, err := s.iss.keySet(ctx)
	if err != nil {
		return nil, fmt.Errorf("websso: self key set: %w", err)
	}
	return json.Marshal(set)
}

// SelfProviderARN returns the ARN of the OIDC provider that stands for
// gatehouse's own issuer.
func (s *Service) SelfProviderARN() string {
	p := store.OIDCProvider{IssuerURL: s.o.PublicURL}
	return p.ARN(s.o.AccountID)
}

// Issuer returns the self issuer URL (api.public_url).
func (s *Service) Issuer() string { return s.o.PublicURL }

// EnsureSelfProvider registers gatehouse's own issuer as an OIDC provider in
// the store (issuer = public URL, audience = Options.Audience, JWKS at
// public URL + /oauth/jwks) unless a provider with that issuer exists, so
// STS AssumeRoleWithWebIdentity accepts web-identity tokens through the
// ordinary OIDC-provider path. It also creates the signing key. It is
// idempotent and safe to call from several replicas at once.
func (s *Service) EnsureSelfProvider(ctx context.Context) error {
	if _, _, _, err := s.iss.load(ctx); err != nil {
		return err
	}
	_, err := s.o.Store.GetOIDCProviderByIssuer(ctx, s.o.PublicURL)
	if err == nil {
		return nil
	}
	if !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("websso: self provider: %w", err)
	}
	p := &store.OIDCProvider{
		IssuerURL:     s.o.PublicURL,
		Audiences:     []string{s.o.Audience},
		JWKSURL:       s.o.PublicURL + JWKSPath,
		GroupsClaim:   ClaimGroups,
		RolesClaim:    ClaimRoles,
		UsernameClaim: ClaimUsername,
	}
	if err := (oidc.Provider{Issuer: p.IssuerURL, Audiences: p.Audiences, JWKSURL: p.JWKSURL}).Validate(); err != nil {
		return fmt.Errorf("websso: self provider (api.public_url %q): %w", s.o.PublicURL, err)
	}
	if err := s.o.Store.CreateOIDCProvider(ctx, p); err != nil && !errors.Is(err, store.ErrAlreadyExists) {
		return fmt.Errorf("websso: register self provider: %w", err)
	}
	s.log.InfoContext(ctx, "registered gatehouse as an OIDC provider", "issuer", s.o.PublicURL, "arn", s.SelfProviderARN())
	return nil
}

func isSelfIssuer(s *Service, issuer string) bool {
	return strings.TrimRight(issuer, "/") == s.o.PublicURL
}
