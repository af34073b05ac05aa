// Package server wires gatehouse together: it opens the store and the audit
// log, builds the front ends, binds the API and admin listeners, and runs
// until its context ends, then shuts down gracefully. It is the only package
// (besides cmd/) that knows the concrete implementations.
package server

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/gatehouse-dev/gatehouse/internal/api"
	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/authzmsg"
	"github.com/gatehouse-dev/gatehouse/internal/clientip"
	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/decision"
	"github.com/gatehouse-dev/gatehouse/internal/frontend/demoidp"
	"github.com/gatehouse-dev/gatehouse/internal/frontend/scim"
	"github.com/gatehouse-dev/gatehouse/internal/frontend/websso"
	"github.com/gatehouse-dev/gatehouse/internal/identity"
	"github.com/gatehouse-dev/gatehouse/internal/identity/saml"
	"github.com/gatehouse-dev/gatehouse/internal/s3gw"
	"github.com/gatehouse-dev/gatehouse/internal/s3gw/backend"
	"github.com/gatehouse-dev/gatehouse/internal/secrets"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/store/postgres"
	"github.com/gatehouse-dev/gatehouse/internal/store/sqlite"
	"github.com/gatehouse-dev/gatehouse/internal/sts"
	"github.com/gatehouse-dev/gatehouse/internal/sts/credentials"
)

// Version is the build version, set by cmd/gatehouse.
var Version = "dev"

// Server is a running gatehouse instance. Create it with New, then call
// Serve exactly once.
type Server struct {
	cfg      config.Config
	log      *slog.Logger
	Store    store.Store
	Audit    *audit.Log
	Identity *identity.Service
	STS      *sts.Service
	// Decision is the one decision point (internal/decision).
	Decision  *decision.Point
	SSO       *websso.Service
	keyring   *credentials.Keyring
	authzMsgs *authzmsg.Codec
	// Mounts binds bucket prefixes to roles for the S3 gateway (nil when
	// s3.listen is empty).
	Mounts *s3gw.StaticMounts
	// MountStore persists the mounts (nil if the store has none); the
	// demo seeds through it. Change mounts through it, then ReloadMounts.
	MountStore store.MountStore
	// Links persists federated links ((provider, subject) -> user).
	Links    store.LinkStore
	mountsMu sync.Mutex // serializes ReloadMounts
	// mountsVersion is the store's mount change counter when the table in
	// force was read; mountsLoaded says a reload succeeded. Guarded by
	// mountsMu.
	mountsVersion int64
	mountsLoaded  bool
	mountTable    map[string]s3gw.Mount // the table in force, by mount id
	// mountRefresh is how often mounts are reloaded (DefaultMountRefresh).
	mountRefresh time.Duration
	// Objects is the S3 gateway's backend (nil when the gateway is off).
	Objects   backend.Backend
	mux       *http.ServeMux
	masterKey []byte

	apiSrv, adminSrv, s3Srv *http.Server
	s3gw                    *s3gw.Gateway // nil when the S3 listener is off
	apiLn, adminLn, s3Ln    net.Listener
	ready                   atomic.Bool
	closers                 []func() error
	// denials aggregate each plane's records of requests refused without
	// valid credentials; Serve flushes them every window and at shutdown.
	denials []*audit.Aggregator
}

// New opens every component and binds both listeners, so that on return
// the addresses are known (useful with port 0). On error everything opened
// so far is closed again.
//
// It runs the construction steps in order; each later step relies on what
// the earlier ones put into s and into the wiring they share.
func New(ctx context.Context, cfg config.Config, log *slog.Logger) (_ *Server, err error) {
	s := &Server{cfg: cfg, log: log}
	defer func() {
		if err != nil {
			s.closeAll()
		}
	}()
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("server: data dir: %w", err)
	}
	if err = s.bindListeners(); err != nil {
		return nil, err
	}
	w := &wiring{}
	if w.masterKey, err = loadMasterKey(s.cfg); err != nil {
		return nil, err
	}
	steps := []func(context.Context, *wiring) error{
		s.openStore,
		s.openCredentials,
		s.openDecision,
		s.openAudit,
		s.openIdentity,
		s.buildAPIAndSCIM,
		s.buildFederation,
		s.buildAPIServer,
		s.buildS3Server,
		s.buildAdminServer,
	}
	for _, step := range steps {
		if err = step(ctx, w); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// wiring holds what New's construction steps hand on to later steps; none
// of it outlives New except through the Server.
type wiring struct {
	masterKey []byte
	// policies is the store's managed policies, taken from the concrete
	// store before revokingStore hides its methods (nil if it has none).
	policies store.ManagedPolicyStore
	revoker  *credentials.Revoker
	verifier *credentials.Verifier
	denials  planeDenials
	// api and scim are the REST API and SCIM front ends, mounted by
	// buildAPIServer.
	api, scim http.Handler
	reg       *prometheus.Registry
	metrics   *httpMetrics
	// clients resolves each listener's client address (trusted_proxies).
	clients *clientip.Resolver
}

// bindListeners binds the API, admin and (if configured) S3 listeners
// first: with port 0 the real address feeds api.public_url and the URLs
// derived from it (issuer, ACS) before any front end is built. It records
// the bound configuration in s.cfg.
func (s *Server) bindListeners() (err error) {
	cfg := s.cfg
	if s.apiLn, err = net.Listen("tcp", cfg.API.Listen); err != nil {
		return fmt.Errorf("server: api.listen: %w", err)
	}
	s.closers = append(s.closers, ignoreClosed(s.apiLn.Close))
	if s.adminLn, err = net.Listen("tcp", cfg.Admin.Listen); err != nil {
		return fmt.Errorf("server: admin.listen: %w", err)
	}
	s.closers = append(s.closers, ignoreClosed(s.adminLn.Close))
	if cfg.S3.Listen != "" {
		if s.s3Ln, err = net.Listen("tcp", cfg.S3.Listen); err != nil {
			return fmt.Errorf("server: s3.listen: %w", err)
		}
		s.closers = append(s.closers, ignoreClosed(s.s3Ln.Close))
	}
	cfg.BindAPI(s.apiLn.Addr().String())
	s.cfg = cfg
	return nil
}

// openStore opens the configured metadata store (PostgreSQL or SQLite) as
// s.Store, closed by Close.
func (s *Server) openStore(ctx context.Context, _ *wiring) error {
	switch s.cfg.Store.Driver {
	case "postgres":
		pg, err := postgres.Open(ctx, s.cfg.Store.DSN)
		if err != nil {
			return fmt.Errorf("server: open postgres store: %w", err)
		}
		s.Store = pg
	default:
		sq, err := sqlite.Open(ctx, s.cfg.Store.SQLitePath)
		if err != nil {
			return fmt.Errorf("server: open sqlite store: %w", err)
		}
		s.Store = sq
	}
	s.closers = append(s.closers, s.Store.Close)
	return nil
}

// openCredentials opens the temporary credentials' keys: a keyring shared
// by replicas through the store, and per-user / per-session revocation.
// It takes the store's optional capabilities (managed policies, mounts,
// federated links) from the concrete store, then wraps s.Store in
// revokingStore, so that every later consumer sees it that way and
// disabling a user anywhere revokes.
func (s *Server) openCredentials(ctx context.Context, w *wiring) error {
	keyring, err := credentials.LoadOrCreateKeyring(ctx, s.Store, w.masterKey, nil)
	if err != nil {
		return fmt.Errorf("server: sts keyring: %w (replicas sharing a store must share the master key: set the same GATEHOUSE_MASTER_KEY on each)", err)
	}
	if w.revoker, err = credentials.NewRevoker(s.Store, credentials.RevokerOptions{}); err != nil {
		return fmt.Errorf("server: sts revoker: %w", err)
	}
	if w.verifier, err = credentials.NewVerifier(keyring, w.revoker); err != nil {
		return fmt.Errorf("server: sts verifier: %w", err)
	}
	s.keyring = keyring
	w.policies, _ = s.Store.(store.ManagedPolicyStore)
	s.MountStore, _ = s.Store.(store.MountStore)
	// Federated links (store.LinkStore) are read by the binder and the API.
	if links, ok := s.Store.(store.LinkStore); ok {
		s.Links = &revokingLinks{LinkStore: links, rev: w.revoker, now: time.Now}
	}
	s.Store = &revokingStore{Store: s.Store, externalIDLookups: externalIDLookups{s.Store}, rev: w.revoker, now: time.Now}
	return nil
}

// openDecision builds the one decision point for STS, the role picker and
// the S3 gateway, and wraps s.Store in changeStore: every directory or
// role write through this replica tells it at once and moves the shared
// change mark, which the other replicas check once their cached inputs
// are older than its TTL.
func (s *Server) openDecision(_ context.Context, w *wiring) (err error) {
	cfg, log := s.cfg, s.log
	s.Decision, err = decision.New(decision.Options{Store: s.Store, AccountID: cfg.STS.AccountID,
		SelfIssuer: strings.TrimRight(cfg.API.PublicURL, "/"), Audience: websso.DefaultAudience,
		ManagedPolicies: sts.NewStoreManagedPolicies(w.policies, cfg.STS.AccountID),
		Mark:            decision.StoreChangeMark{Store: s.Store},
		Logger:          log.With("component", "decision")})
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	s.Store = &changeStore{Store: s.Store, externalIDLookups: externalIDLookups{s.Store}, dp: s.Decision, mark: decision.StoreChangeMark{Store: s.Store},
		log: log.With("component", "decision")}
	return nil
}

// openAudit opens the audit log as s.Audit. It closes before the store,
// so that its final flush sees a live process.
func (s *Server) openAudit(_ context.Context, w *wiring) (err error) {
	cfg := s.cfg
	s.Audit, err = audit.Open(audit.Options{
		Dir:                cfg.AuditDir(),
		Mode:               cfg.Audit.Mode,
		Durability:         cfg.Audit.Durability,
		SyncInterval:       cfg.Audit.SyncInterval,
		GroupWindow:        cfg.Audit.GroupWindow,
		CheckpointEvery:    cfg.Audit.CheckpointEvery,
		CheckpointInterval: cfg.Audit.CheckpointInterval,
		MasterKey:          w.masterKey,
		Logger:             s.log.With("component", "audit"),
	})
	if err != nil {
		return fmt.Errorf("server: open audit log: %w", err)
	}
	s.log.Info("audit log open", "durability", cfg.Audit.Durability, "sync_interval", cfg.Audit.SyncInterval)
	// The audit log closes before the store so its final flush sees a live process.
	s.closers = append([]func() error{s.Audit.Close}, s.closers...)
	return nil
}

// openIdentity builds the identity service as s.Identity and, on first
// run, writes the bootstrap admin token.
func (s *Server) openIdentity(ctx context.Context, _ *wiring) error {
	cfg := s.cfg
	s.Identity = identity.NewService(s.Store, s.Audit, identity.Options{
		SessionTTL:  cfg.Identity.SessionTTL,
		MaxTokenTTL: cfg.Identity.TokenMaxTTL,
		Logger:      s.log.With("component", "identity"),
		LoginLimits: identity.LoginLimits{
			PerUser:             identity.Rate{Burst: cfg.Login.UserBurst, Every: cfg.Login.UserRefill},
			PerSource:           identity.Rate{Burst: cfg.Login.SourceBurst, Every: cfg.Login.SourceRefill},
			MaxKeys:             cfg.Login.MaxTracked,
			MaxConcurrentHashes: cfg.Login.MaxConcurrentHashes,
			HashWait:            loginHashWait(cfg.Login.HashWait),
		},
		DenialWindow:     cfg.Audit.DenialWindow,
		DenialMaxSources: cfg.Audit.DenialMaxSources,
	})
	created, err := s.Identity.Bootstrap(ctx, cfg.Identity.BootstrapToken)
	if err != nil {
		return fmt.Errorf("server: bootstrap: %w", err)
	}
	if created {
		s.log.Warn("first run: bootstrap admin token written (mode 0600, never logged); it ends after 24 h or once it "+
			"grants admin to someone (gatehouse admin privileges grant USER admin): delete the file when you no longer need it",
			"path", cfg.Identity.BootstrapToken)
	}
	return nil
}

// buildAPIAndSCIM builds the denial explanations sealed under the master
// key (the S3 gateway seals, admins decode through the API on any
// replica), the planes' denial aggregators, and the REST API and SCIM
// front ends.
func (s *Server) buildAPIAndSCIM(_ context.Context, w *wiring) (err error) {
	cfg, log := s.cfg, s.log
	if s.authzMsgs, err = authzmsg.New(w.masterKey); err != nil {
		return fmt.Errorf("server: %w", err)
	}
	if w.denials, err = s.newPlaneDenials(); err != nil {
		return err
	}
	w.api, err = api.New(api.Options{
		Denials:      w.denials.api,
		Store:        s.Store,
		Identity:     s.Identity,
		Audit:        s.Audit,
		Logger:       log.With("component", "api"),
		MaxBodyBytes: cfg.API.MaxBodyBytes,
		AccountID:    cfg.STS.AccountID,
		// Managed policies and admin revocation of STS sessions.
		ManagedPolicies: w.policies,
		Revoker:         w.revoker,
		// Mounts; a change through this replica's API applies here at once.
		Mounts:          s.MountStore,
		Links:           s.Links,
		OnMountsChanged: s.applyMountChange,
		AuthzMessages:   s.authzMsgs,
	})
	if err != nil {
		return fmt.Errorf("server: api: %w", err)
	}
	w.scim, err = scim.New(scim.Options{
		Denials:      w.denials.scim,
		Store:        s.Store,
		Audit:        s.Audit,
		Auth:         s.Identity,
		Privileged:   s.Identity.HasPrivilege,
		Logger:       log.With("component", "scim"),
		BaseURL:      cfg.API.PublicURL + "/scim/v2",
		MaxBodyBytes: cfg.API.MaxBodyBytes,
	})
	if err != nil {
		return fmt.Errorf("server: scim: %w", err)
	}
	return nil
}

// buildFederation builds the STS (s.STS) and the web sign-in (s.SSO), which
// share one binder for every federated path, by (provider, subject) and
// never by name alone, and one SAML replay cache in the store, on every
// replica. It then registers gatehouse itself as an OIDC provider.
func (s *Server) buildFederation(ctx context.Context, w *wiring) error {
	cfg := s.cfg
	binder, err := identity.NewBinder(identity.BinderOptions{Store: s.Store, Links: s.Links, Audit: s.Audit,
		AccountID: cfg.STS.AccountID, SelfIssuer: cfg.API.PublicURL})
	if err != nil {
		return fmt.Errorf("server: %w", err)
	}
	samlReplay := saml.StoreReplayCache{Store: s.Store}
	if err := s.buildSTS(w, binder, samlReplay); err != nil {
		return err
	}
	s.SSO, err = websso.New(websso.Options{
		Store: s.Store, Identity: s.Identity, Audit: s.Audit, MasterKey: w.masterKey,
		PublicURL: cfg.API.PublicURL, AccountID: cfg.STS.AccountID, Decision: s.Decision,
		SAMLEntityID: cfg.STS.SAMLAudience, ACSURL: cfg.STS.ACSURL, SAMLReplay: samlReplay,
		SAMLMaxSkew: cfg.STS.SAMLClockSkew,
		SessionTTL:  cfg.Identity.SessionTTL,
		Assumer:     websso.HandlerAssumer{Handler: s.STS},
		S3Endpoint:  s.S3URL(), S3Region: cfg.S3.Region,
		Logger:     s.log.With("component", "websso"),
		Binder:     binder,
		Denials:    w.denials.sso,
		APIDenials: w.denials.api, // /api/v1/me: the REST API's, keyed apart
	})
	if err != nil {
		return fmt.Errorf("server: websso: %w", err)
	}
	if err := s.SSO.EnsureSelfProvider(ctx); err != nil {
		return fmt.Errorf("server: %w", err)
	}
	return nil
}

// buildSTS builds the STS as s.STS. It is built before the web sign-in
// that holds gatehouse's own signing key, so it asks for that key set only
// when it first verifies a token.
func (s *Server) buildSTS(w *wiring, binder *identity.Binder, samlReplay saml.StoreReplayCache) (err error) {
	cfg := s.cfg
	s.STS, err = sts.New(sts.Options{
		Denials:                w.denials.sts,
		Store:                  s.Store,
		Audit:                  s.Audit,
		Issuer:                 credentials.NewIssuer(s.keyring, credentials.IssuerOptions{}),
		Verifier:               w.verifier,
		Logger:                 s.log.With("component", "sts"),
		AccountID:              cfg.STS.AccountID,
		Region:                 cfg.STS.Region,
		DefaultSessionDuration: cfg.STS.DefaultSessionDuration,
		SAMLEntityID:           cfg.STS.SAMLAudience,
		ACSURL:                 cfg.STS.ACSURL,
		SAMLReplay:             samlReplay,
		SAMLMaxSkew:            cfg.STS.SAMLClockSkew,
		WebIdentityContext:     websso.WebIdentityContextFor(cfg.API.PublicURL),
		ManagedPolicies:        sts.NewStoreManagedPolicies(w.policies, cfg.STS.AccountID),
		Binder:                 binder,
		AuthzMessages:          s.authzMsgs,
		Decision:               s.Decision,
		SelfIssuer:             cfg.API.PublicURL,
		SelfJWKS: func(ctx context.Context) ([]byte, error) {
			if s.SSO == nil {
				return nil, errors.New("server: the web sign-in is not ready")
			}
			return s.SSO.SelfJWKS(ctx)
		},
	})
	if err != nil {
		return fmt.Errorf("server: sts: %w", err)
	}
	return nil
}

// buildAPIServer builds the metrics registry, the API listener's routes
// (REST API, SCIM, STS, web sign-in, and a JSON 404 for the rest) and its
// HTTP server, behind the client address resolver (trusted_proxies) so
// that aws:SourceIp, audit source addresses and logs agree.
func (s *Server) buildAPIServer(_ context.Context, w *wiring) (err error) {
	cfg, log := s.cfg, s.log
	w.reg = prometheus.NewRegistry()
	w.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	for _, c := range s.Audit.Collectors() {
		w.reg.MustRegister(c)
	}
	w.metrics = newHTTPMetrics(w.reg)
	s.mux, s.masterKey = s.apiRoutes(w), w.masterKey
	if w.clients, err = clientip.New(cfg.TrustedProxies, cfg.TrustedProxyHeader); err != nil {
		return fmt.Errorf("server: trusted_proxies: %w", err)
	}
	s.apiSrv = &http.Server{
		Handler:           w.clients.Handler(instrument(s.mux, log.With("component", "http"), w.metrics)),
		ReadHeaderTimeout: cfg.API.ReadHeaderTimeout,
		ReadTimeout:       cfg.API.ReadTimeout,
		WriteTimeout:      cfg.API.WriteTimeout,
		IdleTimeout:       cfg.API.IdleTimeout,
		MaxHeaderBytes:    cfg.API.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	if cfg.TLS() {
		if s.apiSrv.TLSConfig, err = tlsConfig("api", cfg.API.TLSCertFile, cfg.API.TLSKeyFile, log); err != nil {
			return err
		}
	}
	return nil
}

// apiRoutes returns the API listener's routes.
func (s *Server) apiRoutes(w *wiring) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("/api/", w.api)
	mux.Handle("/scim/v2/", http.StripPrefix("/scim/v2", w.scim))
	mux.Handle("/scim/v2", http.StripPrefix("/scim/v2", w.scim))
	mux.Handle("/sts", s.STS)
	mux.Handle("/sts/", s.STS)
	for _, p := range websso.Routes {
		mux.Handle(p, s.SSO.Handler())
	}
	mux.HandleFunc("/", func(rw http.ResponseWriter, _ *http.Request) {
		rw.Header().Set("Content-Type", "application/json")
		rw.WriteHeader(http.StatusNotFound)
		fmt.Fprintf(rw, `{"error":{"code":"not_found","message":"no such endpoint","request_id":%q}}`+"\n",
			rw.Header().Get("X-Request-Id"))
	})
	return mux
}

// buildS3Server builds the S3 gateway and its HTTP server when the S3
// listener is bound, behind the same client address resolver.
func (s *Server) buildS3Server(ctx context.Context, w *wiring) error {
	if s.s3Ln == nil {
		return nil
	}
	cfg, log := s.cfg, s.log
	gw, err := s.newS3Gateway(ctx, cfg, log)
	if err != nil {
		return err
	}
	s.s3Srv = &http.Server{
		Handler:           w.clients.Handler(instrumentAs("s3", gw, log.With("component", "http"), w.metrics)),
		ReadHeaderTimeout: cfg.S3.ReadHeaderTimeout,
		IdleTimeout:       cfg.S3.IdleTimeout,
		MaxHeaderBytes:    cfg.API.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	if cfg.S3.TLS.On() {
		if s.s3Srv.TLSConfig, err = tlsConfig("s3", cfg.S3.TLS.CertFile, cfg.S3.TLS.KeyFile, log); err != nil {
			return err
		}
	}
	return nil
}

// buildAdminServer builds the admin listener's server: liveness,
// readiness and the metrics of w.reg.
func (s *Server) buildAdminServer(_ context.Context, w *wiring) error {
	admin := http.NewServeMux()
	admin.HandleFunc("GET /livez", func(rw http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(rw, "ok")
	})
	admin.HandleFunc("GET /readyz", s.readyz)
	admin.Handle("GET /metrics", promhttp.HandlerFor(w.reg, promhttp.HandlerOpts{Registry: w.reg}))
	s.adminSrv = &http.Server{Handler: admin, ReadHeaderTimeout: 5 * time.Second}
	return nil
}

// denialAggregator returns a new aggregator of one plane's records of
// requests refused without valid credentials, summarized under code, with
// the configured window and key limit (audit.denial_window,
// audit.denial_max_sources). Serve flushes it every window and, once the
// listeners have drained, at shutdown.
func (s *Server) denialAggregator(code audit.Code) (*audit.Aggregator, error) {
	a, err := audit.NewAggregator(audit.AggregatorOptions{Emitter: s.Audit, SummaryCode: code,
		Window: s.cfg.Audit.DenialWindow, MaxKeys: s.cfg.Audit.DenialMaxSources})
	if err != nil {
		return nil, fmt.Errorf("server: %w", err)
	}
	s.denials = append(s.denials, a)
	return a, nil
}

// planeDenials are the denial aggregators of the planes served on the API
// listener (the S3 gateway and the password throttle keep their own).
type planeDenials struct{ api, scim, sts, sso *audit.Aggregator }

// newPlaneDenials makes one denial aggregator per plane (see denialAggregator).
func (s *Server) newPlaneDenials() (d planeDenials, err error) {
	for _, p := range []struct {
		a    **audit.Aggregator
		code audit.Code
	}{
		{&d.api, audit.CodeAuthDeniedAggregated}, {&d.scim, audit.CodeAuthDeniedAggregated},
		{&d.sts, audit.CodeSTSDeniedAggregated}, {&d.sso, audit.CodeLoginFailedAggregated},
	} {
		if *p.a, err = s.denialAggregator(p.code); err != nil {
			return planeDenials{}, err
		}
	}
	return d, nil
}

func ignoreClosed(f func() error) func() error {
	return func() error {
		if err := f(); err != nil && !errors.Is(err, net.ErrClosed) {
			return err
		}
		return nil
	}
}

// loadMasterKey returns the key that seals signing keys at rest:
// GATEHOUSE_MASTER_KEY (base64 of 32 bytes) if set, else the key file,
// created on first run with mode 0600.
func loadMasterKey(cfg config.Config) ([]byte, error) {
	if v := strings.TrimSpace(os.Getenv("GATEHOUSE_MASTER_KEY")); v != "" {
		k, err := base64.StdEncoding.DecodeString(v)
		if err != nil || len(k) != 32 {
			return nil, errors.New("server: GATEHOUSE_MASTER_KEY must be the base64 encoding of 32 bytes")
		}
		return k, nil
	}
	k, err := secrets.LoadOrCreateMasterKey(cfg.Secrets.MasterKeyFile)
	if err != nil {
		return nil, fmt.Errorf("server: secrets.master_key_file: %w", err)
	}
	return k, nil
}

// S3URL is the S3 endpoint clients are told to use (s3.public_url, else
// the bound S3 listener), or "" when the gateway is off.
func (s *Server) S3URL() string {
	if s.s3Ln == nil {
		return ""
	}
	if s.cfg.S3.PublicURL != "" {
		return strings.TrimRight(s.cfg.S3.PublicURL, "/")
	}
	if s.cfg.S3.TLS.On() {
		return "https://" + s.s3Ln.Addr().String()
	}
	return "http://" + s.s3Ln.Addr().String()
}

// APIAddr is the bound API address (host:port).
func (s *Server) APIAddr() string { return s.apiLn.Addr().String() }

// AdminAddr is the bound admin address (host:port).
func (s *Server) AdminAddr() string { return s.adminLn.Addr().String() }

// APIURL is the base URL clients use to reach the API listener.
func (s *Server) APIURL() string {
	scheme := "http"
	if s.cfg.TLS() {
		scheme = "https"
	}
	return scheme + "://" + s.APIAddr()
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	var problems []string
	if !s.ready.Load() {
		problems = append(problems, "not serving")
	}
	if err := s.Store.Ping(ctx); err != nil {
		problems = append(problems, "store unreachable")
		s.log.WarnContext(ctx, "readiness: store ping failed", "err", err)
	}
	if err := s.Audit.Healthy(); err != nil {
		problems = append(problems, "audit log unavailable")
		s.log.WarnContext(ctx, "readiness: audit unhealthy", "err", err)
	}
	if len(problems) > 0 {
		http.Error(w, strings.Join(problems, "; "), http.StatusServiceUnavailable)
		return
	}
	fmt.Fprintln(w, "ok")
}

// Serve runs both listeners until ctx is done, then drains in-flight
// requests (up to shutdown_timeout), flushes the audit log and closes the
// store. It returns the first listener error, if any.
func (s *Server) Serve(ctx context.Context) error {
	errc := make(chan error, 3)
	go func() {
		var err error
		if s.cfg.TLS() {
			err = s.apiSrv.ServeTLS(s.apiLn, "", "")
		} else {
			err = s.apiSrv.Serve(s.apiLn)
		}
		errc <- err
	}()
	go func() { errc <- s.adminSrv.Serve(s.adminLn) }()
	if s.s3Srv != nil {
		go func() {
			if s.s3Srv.TLSConfig != nil {
				errc <- s.s3Srv.ServeTLS(s.s3Ln, "", "")
				return
			}
			errc <- s.s3Srv.Serve(s.s3Ln)
		}()
	}
	maintCtx, stopMaint := context.WithCancel(ctx)
	defer stopMaint()
	go s.Identity.RunDenialFlush(maintCtx)
	for _, d := range s.denials {
		go d.Run(maintCtx, func(err error) { s.log.Error("audit of aggregated denials failed", "err", err) })
	}
	if s.s3gw != nil {
		go s.s3gw.RunDenialFlush(maintCtx)
	}
	go s.maintainKeys(maintCtx, ticksEvery(maintCtx, 30*time.Second))
	go s.maintainMeta(maintCtx, ticksEvery(maintCtx, DefaultMetaSweep))
	if s.Mounts != nil && s.MountStore != nil {
		every := s.mountRefresh
		if every <= 0 {
			every = DefaultMountRefresh
		}
		go s.maintainMounts(maintCtx, ticksEvery(maintCtx, every))
	}
	s.ready.Store(true)
	s.emitLifecycle(audit.CodeServerStarted, "server.start")
	s.log.Info("gatehouse serving", "version", Version, "api", s.APIURL(), "admin", "http://"+s.AdminAddr(),
		"s3", s.S3URL(), "store", s.cfg.Store.Driver, "audit_mode", s.cfg.Audit.Mode)

	var runErr error
	select {
	case <-ctx.Done():
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			runErr = err
		}
	}
	s.ready.Store(false)
	s.log.Info("shutting down: draining in-flight requests", "timeout", s.cfg.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	if err := s.apiSrv.Shutdown(sctx); err != nil {
		s.log.Warn("api shutdown incomplete", "err", err)
	}
	if s.s3Srv != nil {
		if err := s.s3Srv.Shutdown(sctx); err != nil {
			s.log.Warn("s3 shutdown incomplete", "err", err)
		}
		if err := s.s3gw.FlushDenials(sctx, true); err != nil {
			s.log.Error("s3: audit of aggregated denials failed", "err", err)
		}
	}
	if err := s.Identity.FlushDenials(sctx, true); err != nil {
		s.log.Error("identity: audit of aggregated sign-in refusals failed", "err", err)
	}
	for _, d := range s.denials {
		if err := d.Flush(sctx, true); err != nil {
			s.log.Error("audit of aggregated denials failed", "err", err)
		}
	}
	s.emitLifecycle(audit.CodeServerStopped, "server.stop")
	if err := s.adminSrv.Shutdown(sctx); err != nil {
		s.log.Warn("admin shutdown incomplete", "err", err)
	}
	if err := s.closeAll(); err != nil && runErr == nil {
		runErr = err
	}
	s.log.Info("gatehouse stopped")
	return runErr
}

// maintainKeys keeps the STS keyring current on this replica: it picks up
// keys rotated by other replicas and rotates the current key once it is
// older than sts.key_rotation (the store's compare-and-swap lets exactly one
// replica win). It does so at once, then on every tick until ctx ends.
// Failures are logged; verification keeps using known keys.
func (s *Server) maintainKeys(ctx context.Context, ticks <-chan time.Time) {
	keys := func() {
		if err := s.keyring.RotateIfOlder(ctx, time.Now(), s.cfg.STS.KeyRotation); err != nil && ctx.Err() == nil {
			s.log.Warn("sts: key rotation failed", "err", err)
		}
		if err := s.keyring.Refresh(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("sts: keyring refresh failed", "err", err)
		}
	}
	keys()
	runOnTicks(ctx, ticks, keys)
}

// DefaultMetaSweep is how often Serve deletes expired meta records.
const DefaultMetaSweep = time.Minute

// SweepExpired deletes the store's meta records whose expiry is at or
// before now: claimed one-time sign-in state, SAML assertion ids, CLI
// hand-off codes, login-session records and revocation entries that can no
// longer matter. It reports how many it deleted. Replicas may sweep the
// same store concurrently. Serve calls it every DefaultMetaSweep with the
// wall clock; tests call it with the time they want.
func (s *Server) SweepExpired(ctx context.Context, now time.Time) (int64, error) {
	n, err := s.Store.SweepMeta(ctx, now)
	if err != nil {
		return 0, fmt.Errorf("server: sweep expired records: %w", err)
	}
	return n, nil
}

// maintainMeta runs SweepExpired on every tick until ctx ends. Failures
// are logged; the next sweep catches up.
func (s *Server) maintainMeta(ctx context.Context, ticks <-chan time.Time) {
	runOnTicks(ctx, ticks, func() {
		if n, err := s.SweepExpired(ctx, time.Now()); err != nil && ctx.Err() == nil {
			s.log.Warn("store: sweep of expired records failed", "err", err)
		} else if n > 0 {
			s.log.Debug("store: swept expired records", "count", n)
		}
	})
}

// ticksEvery returns the channel of a ticker that fires every interval
// and stops once ctx ends: the tick source Serve gives the maintenance
// loops. Tests give them a channel of their own instead, and decide when
// each tick happens.
func ticksEvery(ctx context.Context, every time.Duration) <-chan time.Time {
	t := time.NewTicker(every)
	context.AfterFunc(ctx, t.Stop)
	return t.C
}

// runOnTicks calls fn for every tick received until ctx ends (the server's
// maintenance loops). fn runs on the caller's goroutine, one call at a
// time, and the next tick is received only once fn returned. A zero tick
// (which a time.Ticker never sends) runs nothing: it is a barrier with
// which a test, sending on an unbuffered channel, learns that the work of
// every tick it sent before is done.
func runOnTicks(ctx context.Context, ticks <-chan time.Time, fn func()) {
	for {
		select {
		case <-ctx.Done():
			return
		case at := <-ticks:
			if !at.IsZero() {
				fn()
			}
		}
	}
}

func (s *Server) emitLifecycle(code audit.Code, action string) {
	err := s.Audit.Emit(context.Background(), audit.NewEvent(time.Now, code, action).Allow().
		Actor(audit.Actor{User: "gatehouse", AuthMethod: "system"}).
		Resource(audit.Resource{Type: "server", Name: s.cfg.API.PublicURL}).
		Detail("version", Version).Event())
	if err != nil {
		s.log.Error("audit: lifecycle event not recorded", "action", action, "err", err)
	}
}

// Close releases everything without serving; for callers that got a Server
// from New but will not call Serve.
func (s *Server) Close() error { return s.closeAll() }

func (s *Server) closeAll() error {
	var errs []error
	for _, c := range s.closers {
		if err := c(); err != nil {
			errs = append(errs, err)
		}
	}
	s.closers = nil
	return errors.Join(errs...)
}

// EnableDemoIdP mounts the DEMO IdP (not for production) at /demo-idp/ and
// seeds it (SAML and OIDC providers, demo roles, users' aws_roles). Call it
// from the demo command only, after the demo users exist and before Serve.
func (s *Server) EnableDemoIdP(ctx context.Context) error {
	idp, err := demoidp.New(demoidp.Options{
		Store: s.Store, MasterKey: s.masterKey, PublicURL: s.cfg.API.PublicURL,
		ACSURL: s.cfg.STS.ACSURL, SPEntityID: s.cfg.STS.SAMLAudience, AccountID: s.cfg.STS.AccountID,
		Logger: s.log,
	})
	if err != nil {
		return err
	}
	s.mux.Handle(demoidp.DefaultBasePath+"/", idp)
	return idp.Seed(ctx)
}

// loginHashWait maps login.hash_wait to identity.LoginLimits.HashWait,
// where 0 means the default: a configured 0 means never wait.
func loginHashWait(d time.Duration) time.Duration {
	if d == 0 {
		return -1
	}
	return d
}
