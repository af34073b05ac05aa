// Package websso is gatehouse's sign-in front end and its own OIDC issuer.
//
// It serves
//
//   - the browser sign-in flows: GET /login (pick an IdP or use a local
//     password), POST /saml/acs (SAML 2.0 HTTP-POST binding), GET
//     /oidc/login and /oidc/callback (OAuth 2.0 authorization code flow with
//     PKCE, RFC 7636, against an external OIDC provider), each ending in a
//     gatehouse session;
//   - the CLI hand-off: a login started by `gatehouse login` ends with a
//     redirect to the CLI's loopback listener carrying a one-time code,
//     which the CLI exchanges (with its PKCE verifier) at POST /sso/cli/token;
//   - the self OIDC issuer: GET /.well-known/openid-configuration and GET
//     /oauth/jwks, and POST /api/v1/me/web-identity-token, which turns a
//     session into a 5-minute RS256 JWT that STS AssumeRoleWithWebIdentity
//     accepts through the ordinary OIDC-provider path;
//   - the role picker: GET /api/v1/me/roles (the roles the session is
//     entitled to, first = default) and POST /api/v1/me/credentials.
//
// Entitlements: a SAML login records the assertion's Role pairs for its
// session; other sessions are entitled to the roles whose trust policy
// allows gatehouse's own OIDC provider for the user, evaluated with
// TrustContext, the same context STS uses. See
// docs/design/0009-login-and-role-picker.md.
package websso

import (
	"context"
	"crypto"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/decision"
	"github.com/gatehouse-dev/gatehouse/internal/identity"
	"github.com/gatehouse-dev/gatehouse/internal/identity/oidc"
	"github.com/gatehouse-dev/gatehouse/internal/identity/saml"
	"github.com/gatehouse-dev/gatehouse/internal/requestid"
	"github.com/gatehouse-dev/gatehouse/internal/secrets"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

const cryptoSHA256 = crypto.SHA256

// Defaults for Options left zero.
const (
	DefaultAudience  = "gatehouse"
	DefaultTokenTTL  = 5 * time.Minute
	DefaultAccountID = "000000000000"
	maxFormBytes     = 512 << 10
)

// Routes are the path patterns the server mounts Handler on (stdlib
// ServeMux, no method, no prefix stripping).
var Routes = []string{
	DiscoveryPath,
	JWKSPath,
	"/api/v1/me/",
	"/login",
	"/saml/",
	"/oidc/",
	"/sso/",
}

// Options configure a Service. Store, Identity, Audit, MasterKey and
// PublicURL are required.
type Options struct {
	Store    store.Store
	Identity *identity.Service
	Audit    audit.Emitter
	// MasterKey seals the issuer's signing key and CLI hand-off codes.
	MasterKey []byte
	// PublicURL is api.public_url: the issuer of web-identity tokens and
	// the base of every URL this package puts in pages and redirects.
	PublicURL string
	// AccountID is the 12-digit account of role and provider ARNs.
	AccountID string
	// Audience is the aud of web-identity tokens. Default "gatehouse".
	Audience string
	// Decision is the decision point that answers the role picker; share
	// the server's. Default: one over Store for PublicURL and Audience.
	Decision *decision.Point
	// TokenTTL is the lifetime of web-identity tokens. Default 5 minutes.
	TokenTTL time.Duration
	// SessionTTL is the lifetime of sessions created by SAML and OIDC
	// logins. Default identity.DefaultSessionTTL.
	SessionTTL time.Duration
	// SAMLEntityID is the SP entity id assertions must name as audience
	// (config sts.saml_audience). Default saml.DefaultEntityID.
	SAMLEntityID string
	// ACSURL is the SAML ACS URL (config sts.acs_url). Default PublicURL + "/saml/acs".
	ACSURL string
	// SAMLReplay is the assertion replay cache; share it with STS so an
	// assertion used at the ACS cannot be replayed to STS. Default:
	// saml.StoreReplayCache on Store, shared by every replica.
	SAMLReplay saml.ReplayCache
	// SAMLMaxSkew is the clock skew tolerated on assertion and IdP
	// certificate validity times (config sts.saml_clock_skew). Zero means
	// saml.DefaultMaxSkew.
	SAMLMaxSkew time.Duration
	// Assumer performs AssumeRoleWithWebIdentity for POST
	// /api/v1/me/credentials; nil answers 501. See HandlerAssumer.
	Assumer RoleAssumer
	// HTTPClient talks to external OIDC providers. Default: 10 s timeout.
	HTTPClient *http.Client
	// Clock, Rand and Logger default to time.Now, crypto/rand and slog.Default().
	Clock  func() time.Time
	Rand   io.Reader
	Logger *slog.Logger
	// S3Endpoint and S3Region are the S3 gateway's URL and SigV4 region,
	// told to signed-in users with their roles (GET /api/v1/me/roles) so
	// that `gatehouse env` can configure any S3 client. Empty: no gateway.
	S3Endpoint, S3Region string
	// DemoIdPPath, when set, is linked from the login page (demo mode only).
	DemoIdPPath string
	// Binder binds SAML and OIDC sign-ins to directory users by (provider,
	// subject). Share it with STS. Default: one over Store and Audit.
	Binder *identity.Binder
	// Denials records the sign-in failures refused before any identity was
	// established (unverifiable SAML responses, OIDC callbacks with a bad
	// state, code or ID token): one record per source and error code per
	// window, the rest counted (audit.Aggregator). A failure that names a
	// verified identity keeps its own record. The owner flushes it (Run,
	// and Flush at shutdown). Nil: one over Audit with
	// audit.CodeLoginFailedAggregated.
	Denials *audit.Aggregator
	// APIDenials records the /api/v1/me requests refused without valid
	// credentials (401) the same way; share the REST API's. Nil: one over
	// Audit with audit.CodeAuthDeniedAggregated.
	APIDenials *audit.Aggregator
}

// Service is the sign-in front end and self OIDC issuer. Safe for concurrent use.
type Service struct {
	o   Options
	log *slog.Logger
	iss *issuer
	sp  *saml.SP
	mux *http.ServeMux
	// rps caches each OIDC provider's relying party per revision.
	rps oidc.ProviderCache[*relyingParty]
}

// New validates opts and returns a Service. It does no I/O: the signing key
// is created on first use or by EnsureSelfProvider.
func New(opts Options) (*Service, error) {
	var errs []error
	if opts.Store == nil || opts.Identity == nil || opts.Audit == nil {
		errs = append(errs, errors.New("Store, Identity and Audit are required"))
	}
	if len(opts.MasterKey) != secrets.KeySize {
		errs = append(errs, errors.New("MasterKey must be 32 bytes"))
	}
	opts.PublicURL = strings.TrimRight(opts.PublicURL, "/")
	if u, err := url.Parse(opts.PublicURL); err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		errs = append(errs, fmt.Errorf("PublicURL %q is not an absolute http(s) URL", opts.PublicURL))
	}
	if opts.AccountID == "" {
		opts.AccountID = DefaultAccountID
	}
	if opts.Audience == "" {
		opts.Audience = DefaultAudience
	}
	if opts.TokenTTL == 0 {
		opts.TokenTTL = DefaultTokenTTL
	}
	if opts.TokenTTL < time.Minute || opts.TokenTTL > time.Hour {
		errs = append(errs, errors.New("TokenTTL must be between 1 minute and 1 hour"))
	}
	if opts.SessionTTL <= 0 {
		opts.SessionTTL = identity.DefaultSessionTTL
	}
	if opts.SAMLEntityID == "" {
		opts.SAMLEntityID = saml.DefaultEntityID
	}
	if opts.ACSURL == "" {
		opts.ACSURL = opts.PublicURL + "/saml/acs"
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.Rand == nil {
		opts.Rand = rand.Reader
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default().With("component", "websso")
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if opts.SAMLReplay == nil {
		opts.SAMLReplay = saml.StoreReplayCache{Store: opts.Store}
	}
	for _, d := range []struct {
		a    **audit.Aggregator
		code audit.Code
	}{{&opts.Denials, audit.CodeLoginFailedAggregated}, {&opts.APIDenials, audit.CodeAuthDeniedAggregated}} {
		if *d.a == nil && opts.Audit != nil {
			var err error
			*d.a, err = audit.NewAggregator(audit.AggregatorOptions{Emitter: opts.Audit, SummaryCode: d.code, Clock: opts.Clock})
			errs = append(errs, err)
		}
	}
	if opts.Binder == nil && len(errs) == 0 {
		b, err := identity.NewBinder(identity.BinderOptions{Store: opts.Store, Audit: opts.Audit, AccountID: opts.AccountID,
			SelfIssuer: opts.PublicURL, Now: opts.Clock})
		opts.Binder = b
		errs = append(errs, err)
	}
	if opts.Decision == nil && errors.Join(errs...) == nil {
		dp, err := decision.New(decision.Options{Store: opts.Store, AccountID: opts.AccountID, SelfIssuer: opts.PublicURL,
			Audience: opts.Audience, Clock: opts.Clock, Logger: opts.Logger})
		opts.Decision = dp
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("websso: options: %w", err)
	}
	s := &Service{o: opts, log: opts.Logger}
	s.iss = &issuer{s: s}
	s.sp = &saml.SP{
		EntityID: opts.SAMLEntityID,
		ACSURL:   opts.ACSURL,
		IdPs:     &storeIdPs{st: opts.Store},
		Clock:    opts.Clock,
		Replay:   opts.SAMLReplay,
		MaxSkew:  opts.SAMLMaxSkew,
	}
	if err := s.sp.Check(); err != nil {
		return nil, fmt.Errorf("websso: %w", err)
	}
	s.routes()
	return s, nil
}

// Handler returns the handler for every path in Routes.
func (s *Service) Handler() http.Handler { return s }

// ServeHTTP implements http.Handler.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if requestid.From(r.Context()) == "" {
		var rid string
		r, rid = requestid.Ensure(r)
		w.Header().Set(requestid.Header, rid)
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	s.mux.ServeHTTP(w, r)
}

func (s *Service) routes() {
	m := http.NewServeMux()
	m.HandleFunc("GET "+DiscoveryPath, s.iss.serveDiscovery)
	m.HandleFunc("GET "+JWKSPath, s.iss.serveJWKS)
	m.HandleFunc("GET /api/v1/me/roles", s.apiRoles)
	m.HandleFunc("POST /api/v1/me/web-identity-token", s.apiWebIdentityToken)
	m.HandleFunc("POST /api/v1/me/credentials", s.apiCredentials)
	m.HandleFunc("GET /login", s.loginPage)
	m.HandleFunc("POST /login", s.loginPassword)
	m.HandleFunc("GET /saml/login", s.samlLogin)
	m.HandleFunc("POST /saml/acs", s.samlACS)
	m.HandleFunc("GET /saml/metadata", s.samlMetadata)
	m.HandleFunc("GET /oidc/login", s.oidcLogin)
	m.HandleFunc("GET /oidc/callback", s.oidcCallback)
	m.HandleFunc("POST /sso/cli/token", s.cliToken)
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeAPIError(w, r, http.StatusNotFound, "not_found", "no such endpoint")
	})
	s.mux = m
}

func (s *Service) now() time.Time { return s.o.Clock().UTC() }

func randomID(rnd io.Reader, n int) (string, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(rnd, b); err != nil {
		return "", fmt.Errorf("websso: randomness: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// writeAPIError answers in the REST error shape {"error":{"code","message","request_id"}}.
func writeAPIError(w http.ResponseWriter, r *http.Request, status int, code, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]string{
		"code": code, "message": msg, "request_id": requestid.From(r.Context()),
	}})
}

func remoteIP(r *http.Request) string {
	host := r.RemoteAddr
	if i := strings.LastIndexByte(host, ':'); i > 0 {
		host = host[:i]
	}
	return strings.Trim(host, "[]")
}

// clip is audit.Clip: the one clipping helper for attacker-chosen values.
func clip(s string, n int) string { return audit.Clip(s, n) }

// emit records the event b builds.
func (s *Service) emit(ctx context.Context, b *audit.Builder) error {
	ev := b.Event()
	if err := s.o.Audit.Emit(ctx, ev); err != nil {
		s.log.ErrorContext(ctx, "audit emit failed", "code", string(ev.Code), "err", err)
		return fmt.Errorf("websso: audit: %w", err)
	}
	return nil
}

// storeIdPs resolves SAML issuers to the providers registered in the store.
type storeIdPs struct{ st store.Store }

func (r *storeIdPs) ResolveIdP(issuer string) (*saml.IdP, error) {
	p, err := r.st.GetSAMLProviderByEntityID(context.Background(), issuer)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return saml.ParseIdPMetadata([]byte(p.MetadataXML))
}
