// Package demoidp is the DEMO identity provider of `gatehouse demo` —
// not for production. It lets `gatehouse login` → `gatehouse roles` →
// `aws sts get-caller-identity` work on a fresh machine without a real IdP.
//
// It serves, under its base path (default /demo-idp):
//
//   - a SAML 2.0 IdP: metadata at /saml/metadata and an SSO endpoint
//     /saml/sso (HTTP-Redirect or HTTP-POST AuthnRequest, or IdP-initiated)
//     that asks for a user name and password, checks them against the
//     gatehouse directory's local passwords, and auto-POSTs a SAML Response
//     whose Assertion is signed (RSA-SHA256, exclusive c14n, goxmldsig) to
//     gatehouse's ACS. The assertion carries the AWS Role attribute
//     ("roleArn,providerArn") for each role named in the user's directory
//     attribute aws_roles, RoleSessionName = user name, and groups;
//   - an OpenID Connect IdP: discovery, /oidc/authorize (the same form),
//     /oidc/token (authorization code with PKCE S256, public client) and
//     /oidc/jwks, issuing RS256 ID tokens with the same claims.
//
// The signing key (RSA-2048) is generated on first start and kept sealed
// with the master key in the store's meta space. Every page and log line
// says "DEMO IdP — not for production". The server mounts it only in demo
// mode.
package demoidp

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"strings"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/gatehouse-dev/gatehouse/internal/frontend/websso"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// Label is shown on every page and in every log line.
const Label = "DEMO IdP — not for production"

// Defaults.
const (
	DefaultBasePath   = "/demo-idp"
	DefaultProvider   = "demo-idp"
	DefaultClientID   = "gatehouse-demo"
	RolesAttribute    = "aws_roles"
	signingKeyMetaKey = "demoidp/signing-key/v1"
)

// Options configure the demo IdP.
type Options struct {
	Store     store.Store
	MasterKey []byte
	// PublicURL is gatehouse's api.public_url; the IdP lives at
	// PublicURL + BasePath.
	PublicURL string
	BasePath  string
	// ACSURL is gatehouse's SAML ACS (default PublicURL + "/saml/acs") and
	// SPEntityID the audience (default urn:amazon:webservices).
	ACSURL     string
	SPEntityID string
	AccountID  string
	// ProviderName is the SAML provider name registered by Seed.
	ProviderName string
	// ClientID is the OIDC client id gatehouse uses (and the ID token aud).
	ClientID string
	Clock    func() time.Time
	Rand     io.Reader
	Logger   *slog.Logger
}

// IdP is the demo identity provider; it is an http.Handler for every path
// under BasePath. Safe for concurrent use.
type IdP struct {
	o      Options
	log    *slog.Logger
	key    *rsa.PrivateKey
	cert   *x509.Certificate
	kid    string
	signer jose.Signer
	mux    *http.ServeMux

	mu    sync.Mutex
	codes map[string]*authCode
}

// New loads (or creates) the sealed signing key and returns the IdP.
func New(opts Options) (*IdP, error) {
	if opts.Store == nil || len(opts.MasterKey) != 32 {
		return nil, errors.New("demoidp: Store and a 32-byte MasterKey are required")
	}
	opts.PublicURL = strings.TrimRight(opts.PublicURL, "/")
	if opts.PublicURL == "" {
		return nil, errors.New("demoidp: PublicURL is required")
	}
	if opts.BasePath == "" {
		opts.BasePath = DefaultBasePath
	}
	opts.BasePath = "/" + strings.Trim(opts.BasePath, "/")
	if opts.ACSURL == "" {
		opts.ACSURL = opts.PublicURL + "/saml/acs"
	}
	if opts.SPEntityID == "" {
		opts.SPEntityID = "urn:amazon:webservices"
	}
	if opts.AccountID == "" {
		opts.AccountID = websso.DefaultAccountID
	}
	if opts.ProviderName == "" {
		opts.ProviderName = DefaultProvider
	}
	if opts.ClientID == "" {
		opts.ClientID = DefaultClientID
	}
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.Rand == nil {
		opts.Rand = rand.Reader
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	d := &IdP{o: opts, log: opts.Logger.With("component", "demo-idp", "label", Label), codes: map[string]*authCode{}}
	k, err := websso.SealedRSAKey(context.Background(), opts.Store, opts.MasterKey, signingKeyMetaKey, opts.Rand)
	if err != nil {
		return nil, fmt.Errorf("demoidp: %w", err)
	}
	d.key = k
	if d.cert, err = stableCert(k); err != nil {
		return nil, err
	}
	tp, err := (&jose.JSONWebKey{Key: &k.PublicKey}).Thumbprint(cryptoSHA256())
	if err != nil {
		return nil, err
	}
	d.kid = base64.RawURLEncoding.EncodeToString(tp)
	d.signer, err = jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: k, KeyID: d.kid}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return nil, err
	}
	d.routes()
	d.log.Warn("DEMO IdP — not for production: serving SAML and OIDC sign-in for the demo directory", "base", d.base())
	return d, nil
}

// stableCert is a self-signed certificate for k that is the same on every
// start (fixed validity and serial; RSA PKCS#1 v1.5 signatures are
// deterministic), so the metadata registered in the store stays valid.
func stableCert(k *rsa.PrivateKey) (*x509.Certificate, error) {
	sum := sha256.Sum256(k.PublicKey.N.Bytes())
	tmpl := &x509.Certificate{
		SerialNumber: new(big.Int).SetBytes(sum[:16]),
		Subject:      pkix.Name{CommonName: "gatehouse DEMO IdP - not for production"},
		NotBefore:    time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC),
		NotAfter:     time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		return nil, fmt.Errorf("demoidp: certificate: %w", err)
	}
	return x509.ParseCertificate(der)
}

func (d *IdP) base() string         { return d.o.PublicURL + d.o.BasePath }
func (d *IdP) samlEntityID() string { return d.base() + "/saml" }
func (d *IdP) oidcIssuer() string   { return d.base() + "/oidc" }
func (d *IdP) now() time.Time       { return d.o.Clock().UTC() }
func (d *IdP) providerARN() string {
	return (&store.SAMLProvider{Name: d.o.ProviderName}).ARN(d.o.AccountID)
}
func (d *IdP) ssoURL() string { return d.base() + "/saml/sso" }
func (d *IdP) roleARN(n string) string {
	return (&store.Role{Name: n}).ARN(d.o.AccountID)
}

// SAMLEntityID returns the IdP's SAML entity id (its Issuer).
func (d *IdP) SAMLEntityID() string { return d.samlEntityID() }

// OIDCIssuer returns the IdP's OIDC issuer URL.
func (d *IdP) OIDCIssuer() string { return d.oidcIssuer() }

// ServeHTTP implements http.Handler.
func (d *IdP) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Gatehouse-Demo", Label)
	d.mux.ServeHTTP(w, r)
}

func (d *IdP) routes() {
	m := http.NewServeMux()
	b := d.o.BasePath
	m.HandleFunc("GET "+b+"/{$}", d.home)
	m.HandleFunc("GET "+b+"/saml/metadata", d.samlMetadata)
	m.HandleFunc("GET "+b+"/saml/sso", d.samlForm)
	m.HandleFunc("POST "+b+"/saml/sso", d.samlSSO)
	m.HandleFunc("GET "+b+"/oidc/.well-known/openid-configuration", d.oidcDiscovery)
	m.HandleFunc("GET "+b+"/oidc/jwks", d.oidcJWKS)
	m.HandleFunc("GET "+b+"/oidc/authorize", d.oidcAuthorizeForm)
	m.HandleFunc("POST "+b+"/oidc/authorize", d.oidcAuthorize)
	m.HandleFunc("POST "+b+"/oidc/token", d.oidcToken)
	d.mux = m
}

// checkPassword checks a local password of the gatehouse directory. It
// returns the active user, or nil.
func (d *IdP) checkPassword(ctx context.Context, username, password string) *store.User {
	if username == "" || password == "" {
		return nil
	}
	u, err := d.o.Store.GetUserByName(ctx, username)
	if err != nil || !u.Active || u.PasswordHash == "" {
		return nil
	}
	ok, err := verifyPassword(u.PasswordHash, password)
	if err != nil || !ok {
		return nil
	}
	return u
}
