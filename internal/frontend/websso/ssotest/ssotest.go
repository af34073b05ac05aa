// Package ssotest builds a real gatehouse API surface on loopback for
// tests of sign-in, the role picker and credential passthrough: the SQLite
// store, the audit log, the identity service, the admin REST API, the STS
// endpoint, package websso and (optionally) the demo IdP, all on one
// httptest server, wired as internal/server wires them.
package ssotest

import (
	"context"
	"crypto/rand"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-dev/gatehouse/internal/api"
	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/frontend/demoidp"
	"github.com/gatehouse-dev/gatehouse/internal/frontend/websso"
	"github.com/gatehouse-dev/gatehouse/internal/identity"
	"github.com/gatehouse-dev/gatehouse/internal/identity/saml"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/store/sqlite"
	"github.com/gatehouse-dev/gatehouse/internal/sts"
	"github.com/gatehouse-dev/gatehouse/internal/sts/credentials"
)

// Account is the AWS-style account id of the test world.
const Account = "123456789012"

// MasterKey seals keys in tests.
var MasterKey = []byte("0123456789abcdef0123456789abcdef")

// World is a running test server.
type World struct {
	T   testing.TB
	URL string // the public URL (Options.PublicURL)
	// ServerURL is where this world's own server listens; it differs from
	// URL for a replica behind a shared PublicURL.
	ServerURL string
	// DBPath is the SQLite file of Store.
	DBPath   string
	Store    store.Store
	Audit    *audit.Log
	AuditDir string
	Identity *identity.Service
	SSO      *websso.Service
	STS      *sts.Service
	Demo     *demoidp.IdP
	// Rogue is a second IdP at /rogue-idp with a directory of its own
	// (RogueStore), where anyone may register any user name or e-mail
	// address: the attacker's IdP in identity-binding tests. Its SAML and
	// OIDC providers are registered in Store as RogueSAML and RogueOIDC,
	// with the zero (strictest) binding rule.
	Rogue      *demoidp.IdP
	RogueStore store.Store
	RogueSAML  *store.SAMLProvider
	RogueOIDC  *store.OIDCProvider
	Server     *httptest.Server
	// HookWired reports whether STS got websso's WebIdentityContext hook,
	// i.e. evaluates gatehouse:* keys for the gatehouse issuer's tokens.
	HookWired bool
}

// Options of New.
type Options struct {
	Demo  bool // mount the demo IdP at /demo-idp and seed it
	Rogue bool // mount and register the rogue IdP at /rogue-idp
	// LoginLimits (optional) throttle password sign-in; zero: the defaults.
	LoginLimits identity.LoginLimits
	// DBPath is the SQLite file of the store. Worlds given the same path
	// are replicas sharing one store (or one replica restarted). Default: a
	// fresh file in a temporary directory.
	DBPath string
	// PublicURL is the URL clients reach the world by (api.public_url),
	// which names the ACS and the issuer. Replicas behind one load balancer
	// share it. Default: the world's own server URL.
	PublicURL string
}

// RogueProvider is the SAML provider name of the rogue IdP.
const RogueProvider = "rogue-idp"

// New starts the world. Everything is closed at test cleanup.
func New(t testing.TB, o Options) *World {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	if o.DBPath == "" {
		o.DBPath = filepath.Join(dir, "gatehouse.db")
	}
	st, err := sqlite.Open(ctx, o.DBPath)
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	w := &World{T: t, Store: st, AuditDir: filepath.Join(dir, "audit"), DBPath: o.DBPath}
	w.Audit, err = audit.Open(audit.Options{Dir: w.AuditDir, Mode: audit.ModeSync, MasterKey: MasterKey})
	require.NoError(t, err)
	t.Cleanup(func() { w.Audit.Close() })
	log := slog.New(slog.DiscardHandler)
	w.Identity = identity.NewService(st, w.Audit, identity.Options{Argon2: identity.Argon2Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}, Logger: log,
		LoginLimits: o.LoginLimits})

	srv := httptest.NewUnstartedServer(nil)
	w.Server = srv
	w.URL = "http://" + srv.Listener.Addr().String()
	w.ServerURL = w.URL
	if o.PublicURL != "" {
		w.URL = o.PublicURL
	}

	kr, err := credentials.LoadOrCreateKeyring(ctx, st, MasterKey, nil)
	require.NoError(t, err)
	rev, err := credentials.NewRevoker(st, credentials.RevokerOptions{})
	require.NoError(t, err)
	ver, err := credentials.NewVerifier(kr, rev)
	require.NoError(t, err)

	replay := saml.StoreReplayCache{Store: st}
	binder, err := identity.NewBinder(identity.BinderOptions{Store: st, Audit: w.Audit, AccountID: Account, SelfIssuer: w.URL})
	require.NoError(t, err)
	stsOpts := sts.Options{Store: st, Audit: w.Audit, Issuer: credentials.NewIssuer(kr, credentials.IssuerOptions{}),
		Verifier: ver, AccountID: Account, ACSURL: w.URL + "/saml/acs", Logger: log, SAMLReplay: replay, Binder: binder}
	// Wire the gatehouse:* trust-policy keys when STS offers the hook.
	if f := reflect.ValueOf(&stsOpts).Elem().FieldByName("WebIdentityContext"); f.IsValid() {
		hook := reflect.ValueOf(websso.WebIdentityContextFor(w.URL))
		if hook.Type().AssignableTo(f.Type()) {
			f.Set(hook)
			w.HookWired = true
		} else if hook.Type().ConvertibleTo(f.Type()) {
			f.Set(hook.Convert(f.Type()))
			w.HookWired = true
		}
	}
	w.STS, err = sts.New(stsOpts)
	require.NoError(t, err)
	// The SSO service's credentials endpoint calls STS in process; the two
	// share the SAML replay cache, so an assertion used at the ACS cannot
	// be replayed to AssumeRoleWithSAML.
	w.SSO, err = websso.New(websso.Options{Store: st, Identity: w.Identity, Audit: w.Audit, MasterKey: MasterKey,
		PublicURL: w.URL, AccountID: Account, Logger: log, DemoIdPPath: "/demo-idp", SAMLReplay: replay,
		ACSURL: w.URL + "/saml/acs", Assumer: websso.HandlerAssumer{Handler: w.STS}, Binder: binder})
	require.NoError(t, err)

	apiH, err := api.New(api.Options{Store: st, Identity: w.Identity, Audit: w.Audit, Logger: log, AccountID: Account})
	require.NoError(t, err)

	mux := http.NewServeMux()
	mux.Handle("/api/", apiH)
	mux.Handle("/sts", w.STS)
	for _, p := range websso.Routes {
		mux.Handle(p, w.SSO.Handler())
	}
	if o.Demo {
		w.Demo, err = demoidp.New(demoidp.Options{Store: st, MasterKey: MasterKey, PublicURL: w.URL, AccountID: Account, Logger: log})
		require.NoError(t, err)
		mux.Handle("/demo-idp/", w.Demo)
	}
	if o.Rogue {
		w.startRogue(mux, filepath.Join(dir, "rogue.db"))
	}
	srv.Config.Handler = mux
	srv.Start()
	t.Cleanup(srv.Close)
	require.NoError(t, w.SSO.EnsureSelfProvider(ctx))
	return w
}

// startRogue opens the rogue IdP's own directory, mounts the IdP at
// /rogue-idp and registers it as a SAML and an OIDC provider.
func (w *World) startRogue(mux *http.ServeMux, dbPath string) {
	t, ctx := w.T, context.Background()
	rs, err := sqlite.Open(ctx, dbPath)
	require.NoError(t, err)
	t.Cleanup(func() { rs.Close() })
	w.RogueStore = rs
	w.Rogue, err = demoidp.New(demoidp.Options{Store: rs, MasterKey: MasterKey, PublicURL: w.URL, BasePath: "/rogue-idp",
		AccountID: Account, ProviderName: RogueProvider, ClientID: "rogue-client", Logger: slog.New(slog.DiscardHandler)})
	require.NoError(t, err)
	mux.Handle("/rogue-idp/", w.Rogue)
	w.RogueSAML = &store.SAMLProvider{Name: RogueProvider, MetadataXML: w.Rogue.Metadata(), EntityID: w.Rogue.SAMLEntityID()}
	require.NoError(t, w.Store.CreateSAMLProvider(ctx, w.RogueSAML))
	w.RogueOIDC = &store.OIDCProvider{IssuerURL: w.Rogue.OIDCIssuer(), Audiences: []string{"rogue-client"},
		JWKSURL: w.Rogue.OIDCIssuer() + "/jwks"}
	require.NoError(t, w.Store.CreateOIDCProvider(ctx, w.RogueOIDC))
}

// AddRogueUser registers a user at the rogue IdP, as an attacker can: any
// user name, any unverified e-mail address, and the roles (names) the IdP
// then asserts for them.
func (w *World) AddRogueUser(name, password, email string, roles ...string) *store.User {
	t := w.T
	t.Helper()
	hash, err := identity.HashPassword(password, identity.Argon2Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}, rand.Reader)
	require.NoError(t, err)
	u := &store.User{UserName: name, Active: true, PasswordHash: hash}
	if email != "" {
		u.Emails = []store.Email{{Value: email, Primary: true}}
	}
	if len(roles) > 0 {
		u.Attributes = map[string][]string{demoidp.RolesAttribute: roles}
	}
	require.NoError(t, w.RogueStore.CreateUser(context.Background(), u))
	return u
}

// SetRogueBinding sets the binding rule of both rogue providers.
func (w *World) SetRogueBinding(b store.Binding) {
	t, ctx := w.T, context.Background()
	t.Helper()
	w.RogueSAML.Binding, w.RogueOIDC.Binding = b, b
	require.NoError(t, w.Store.UpdateSAMLProvider(ctx, w.RogueSAML))
	require.NoError(t, w.Store.UpdateOIDCProvider(ctx, w.RogueOIDC))
}

// AddUser creates an active local user with a password and groups
// (created when missing), and returns it.
func (w *World) AddUser(name, password string, groups ...string) *store.User {
	t := w.T
	t.Helper()
	ctx := context.Background()
	u := &store.User{UserName: name, Active: true}
	require.NoError(t, w.Store.CreateUser(ctx, u))
	require.NoError(t, w.Identity.SetPassword(ctx, u.ID, password))
	for _, gn := range groups {
		g, err := w.Store.GetGroupByName(ctx, gn)
		if err != nil {
			g = &store.Group{DisplayName: gn}
			g.Members = []store.Member{{ID: u.ID, Type: store.MemberUser}}
			require.NoError(t, w.Store.CreateGroup(ctx, g))
			continue
		}
		g.Members = append(g.Members, store.Member{ID: u.ID, Type: store.MemberUser})
		require.NoError(t, w.Store.UpdateGroup(ctx, g))
	}
	u, err := w.Store.GetUser(ctx, u.ID)
	require.NoError(t, err)
	return u
}

// AddAdmin is AddUser for a user who also holds the admin privilege
// (granted outside the directory, design 0015).
func (w *World) AddAdmin(name, password string, groups ...string) *store.User {
	w.T.Helper()
	u := w.AddUser(name, password, groups...)
	_, err := w.Identity.GrantPrivilege(context.Background(), u.ID, identity.PrivilegeAdmin, "system")
	require.NoError(w.T, err)
	return u
}

// AddRole creates a role with the trust policy and a permission policy
// allowing sts:GetCallerIdentity-free S3 reads.
func (w *World) AddRole(name, trust string) *store.Role {
	w.T.Helper()
	r := &store.Role{Name: name, TrustPolicy: trust, MaxSessionDuration: 3600, Description: "test role " + name,
		PermissionPolicies: []store.NamedPolicy{{Name: "read", Document: `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::data/*"}]}`}}}
	require.NoError(w.T, w.Store.CreateRole(context.Background(), r))
	return r
}

// RoleARN is the ARN of role name.
func RoleARN(name string) string { return "arn:aws:iam::" + Account + ":role/" + name }
