// Package sts is gatehouse's AWS-compatible Security Token Service: the
// front end of credential passthrough. It speaks the AWS Query protocol
// (https://docs.aws.amazon.com/STS/latest/APIReference/) and serves
//
//   - AssumeRoleWithSAML: a SAML assertion from a registered IdP → temporary
//     credentials for a role the assertion grants and whose trust policy
//     allows the IdP;
//   - AssumeRoleWithWebIdentity: the same with an OIDC ID token;
//   - AssumeRole: role switching, SigV4-signed with gatehouse temporary
//     credentials (role chaining, capped at one hour);
//   - GetCallerIdentity: who the signing credentials belong to;
//   - DecodeAuthorizationMessage: why a request was denied, for the user it
//     was about or a caller allowed sts:DecodeAuthorizationMessage.
//
// The end user is always recorded as the session's source identity, which
// survives chaining. Every issuance and every refusal is written to the
// audit log first; if that write fails no credentials are returned.
//
// Credentials are minted and verified by package sts/credentials (stateless
// session tokens); trust and permission policies are evaluated by package
// iam. Service.Authorize is the decision point the S3 gateway uses for the
// permissions of a session (role policies ∩ session policy ∩ boundary), and
// Service.LookupCredentials its SigV4 credential lookup. See
// docs/design/0008-sts.md.
package sts

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/authzmsg"
	"github.com/gatehouse-dev/gatehouse/internal/decision"
	"github.com/gatehouse-dev/gatehouse/internal/identity"
	"github.com/gatehouse-dev/gatehouse/internal/identity/saml"
	"github.com/gatehouse-dev/gatehouse/internal/requestid"
	"github.com/gatehouse-dev/gatehouse/internal/sigv4"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/sts/credentials"
)

// Defaults for Options left zero.
const (
	DefaultAccountID       = "000000000000"
	DefaultRegion          = "us-east-1"
	DefaultSessionDuration = time.Hour
	// DefaultCacheTTL is how long role, provider and user-status lookups are
	// reused. It must stay ≤ credentials.MaxRevocationTTL so that disabling a
	// user takes effect within the 5 s promise (DESIGN invariant 3).
	DefaultCacheTTL = time.Second
)

// ManagedPolicyResolver returns the JSON document of a managed policy named
// by ARN, for the PolicyArns session-policy parameter. An unknown ARN is an
// error wrapping store.ErrNotFound.
type ManagedPolicyResolver interface {
	ManagedPolicy(ctx context.Context, arn string) (string, error)
}

// Options are the dependencies and settings of a Service. Store, Audit,
// Issuer, Verifier and ACSURL are required.
type Options struct {
	// Store holds roles, SAML and OIDC providers and users.
	Store store.Store
	// Audit records every issuance and refusal; a failed Emit fails the call.
	Audit audit.Emitter
	// Issuer mints credentials; Verifier checks them (SigV4-signed calls).
	// Both must share one credentials.Keyring; Verifier carries the
	// credentials.Revoker.
	Issuer   *credentials.Issuer
	Verifier *credentials.Verifier
	// Logger gets component=sts from the caller. Default: discard.
	Logger *slog.Logger

	// AccountID is the 12-digit account of every ARN (config sts.account_id).
	AccountID string
	// Region is accepted in SigV4 scopes besides us-east-1 (config sts.region).
	Region string
	// DefaultSessionDuration applies when DurationSeconds is omitted; it is
	// capped by the role's MaxSessionDuration (and by 1 h for chaining).
	DefaultSessionDuration time.Duration
	// SAMLEntityID is the SP entity id assertions must name as audience
	// (config sts.saml_audience; default urn:amazon:webservices).
	SAMLEntityID string
	// ACSURL is the Recipient assertions must name; it is also the SAML:aud
	// trust-policy key (config sts.acs_url).
	ACSURL string
	// SAMLReplay remembers assertion ids (one-time use). Default:
	// saml.StoreReplayCache on Store, shared by every replica; give the
	// same one to websso.
	SAMLReplay saml.ReplayCache
	// SAMLMaxSkew is the clock skew tolerated on assertion and IdP
	// certificate validity times (config sts.saml_clock_skew). Zero means
	// saml.DefaultMaxSkew.
	SAMLMaxSkew time.Duration
	// HTTPClient fetches OIDC discovery documents and JWKS. Default: 10 s timeout.
	HTTPClient *http.Client
	// SelfIssuer is gatehouse's own web-identity issuer (api.public_url)
	// and SelfJWKS returns its key set (RFC 7517 §5 JSON), read from the
	// shared store. When both are set, tokens of the provider registered
	// for SelfIssuer are verified with that key set and no HTTP request is
	// made, so a replica issues credentials while api.public_url is down.
	SelfIssuer string
	SelfJWKS   func(ctx context.Context) ([]byte, error)
	// ManagedPolicies resolves PolicyArns; nil refuses PolicyArns.
	ManagedPolicies ManagedPolicyResolver
	// Clock defaults to time.Now.
	Clock func() time.Time
	// MaxBodyBytes bounds request bodies (default DefaultMaxBodyBytes).
	MaxBodyBytes int64
	// WebIdentityContext, when set, adds trust-policy condition keys for a
	// verified web identity token (websso.Service.WebIdentityContext).
	WebIdentityContext func(issuer string, claims map[string]any) map[string][]string
	// CacheTTL bounds how long role, provider and user-status lookups are
	// reused (default DefaultCacheTTL, at most credentials.MaxRevocationTTL).
	CacheTTL time.Duration
	// AuthzMessages opens the encoded authorization failure messages of
	// the S3 gateway (DecodeAuthorizationMessage); nil refuses the action.
	AuthzMessages *authzmsg.Codec
	// Denials records the refusals of calls that identified no caller
	// (unsigned or badly signed calls, unverifiable assertions and tokens,
	// malformed requests): one record per source and error code per window,
	// the rest counted (audit.Aggregator). A refusal that names a verified
	// user keeps its own record. The owner flushes it (Run, and Flush at
	// shutdown). Nil: one over Audit with audit.CodeSTSDeniedAggregated.
	Denials *audit.Aggregator
	// Binder binds SAML and web identities to directory users by
	// (provider, subject); share websso's. Default: one over Store and
	// Audit that knows no self issuer (gatehouse's own tokens then bind
	// like any other provider's).
	Binder *identity.Binder
	// Decision is the decision point every trust and permission question
	// goes to; share the server's. Default: one over Store with CacheTTL,
	// Clock and ManagedPolicies, which knows no self issuer.
	Decision *decision.Point
}

var accountRE = regexp.MustCompile(`^[0-9]{12}$`)

// Validate checks o without I/O and fills defaults.
func (o *Options) Validate() error {
	var errs []error
	if o.Store == nil {
		errs = append(errs, errors.New("Store is required"))
	}
	if o.Audit == nil {
		errs = append(errs, errors.New("Audit is required"))
	}
	if o.Issuer == nil || o.Verifier == nil {
		errs = append(errs, errors.New("Issuer and Verifier are required"))
	}
	if o.AccountID == "" {
		o.AccountID = DefaultAccountID
	}
	if !accountRE.MatchString(o.AccountID) {
		errs = append(errs, fmt.Errorf("AccountID %q is not 12 digits", o.AccountID))
	}
	if o.Region == "" {
		o.Region = DefaultRegion
	}
	if o.DefaultSessionDuration == 0 {
		o.DefaultSessionDuration = DefaultSessionDuration
	}
	if o.DefaultSessionDuration < credentials.MinSessionDuration || o.DefaultSessionDuration > credentials.MaxSessionDuration {
		errs = append(errs, fmt.Errorf("DefaultSessionDuration %s is outside [15m, 12h]", o.DefaultSessionDuration))
	}
	if o.SAMLEntityID == "" {
		o.SAMLEntityID = saml.DefaultEntityID
	}
	if o.ACSURL == "" {
		errs = append(errs, errors.New("ACSURL is required"))
	}
	if o.Clock == nil {
		o.Clock = time.Now
	}
	if o.SAMLReplay == nil {
		o.SAMLReplay = saml.StoreReplayCache{Store: o.Store}
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.MaxBodyBytes == 0 {
		o.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if o.MaxBodyBytes < 4096 {
		errs = append(errs, errors.New("MaxBodyBytes below 4096"))
	}
	if o.CacheTTL == 0 {
		o.CacheTTL = DefaultCacheTTL
	}
	if o.CacheTTL < 0 || o.CacheTTL > credentials.MaxRevocationTTL {
		errs = append(errs, fmt.Errorf("CacheTTL must be in (0, %s]", credentials.MaxRevocationTTL))
	}
	if o.Binder == nil && o.Store != nil && o.Audit != nil {
		b, err := identity.NewBinder(identity.BinderOptions{Store: o.Store, Audit: o.Audit, AccountID: o.AccountID, Now: o.Clock})
		o.Binder = b
		errs = append(errs, err)
	}
	if o.Decision == nil && o.Store != nil {
		var mp decision.ManagedPolicies
		if o.ManagedPolicies != nil {
			mp = o.ManagedPolicies
		}
		dp, err := decision.New(decision.Options{Store: o.Store, AccountID: o.AccountID, Clock: o.Clock,
			TTL: o.CacheTTL, ManagedPolicies: mp, Logger: o.Logger})
		o.Decision = dp
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sts: options: %w", err)
	}
	return nil
}

// Service is the STS endpoint. It implements http.Handler and serves every
// path it is mounted on (the server mounts it at /sts without stripping the
// prefix: the SigV4 canonical URI is the real path). Safe for concurrent use.
type Service struct {
	o    Options
	log  *slog.Logger
	now  func() time.Time
	sp   *saml.SP
	idps *storeIdPs
	sig  *sigv4.Verifier

	dp   *decision.Point
	oidc oidcCache

	activeMu sync.Mutex
	active   map[string]activeEntry

	denials *audit.Aggregator // refusals of calls that identified no caller
}

var _ http.Handler = (*Service)(nil)
var _ sigv4.CredentialLookup = (*Service)(nil)

// New validates opts and returns a Service. It does no I/O.
func New(opts Options) (*Service, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	s := &Service{o: opts, log: opts.Logger, now: opts.Clock, active: map[string]activeEntry{}, denials: opts.Denials}
	if s.denials == nil {
		var err error
		if s.denials, err = audit.NewAggregator(audit.AggregatorOptions{Emitter: opts.Audit,
			SummaryCode: audit.CodeSTSDeniedAggregated, Clock: opts.Clock}); err != nil {
			return nil, fmt.Errorf("sts: %w", err)
		}
	}
	s.idps = &storeIdPs{st: opts.Store, now: opts.Clock, ttl: opts.CacheTTL, log: opts.Logger, m: map[string]idpEntry{}}
	s.sp = &saml.SP{
		EntityID:       opts.SAMLEntityID,
		ACSURL:         opts.ACSURL,
		IdPs:           s.idps,
		Clock:          opts.Clock,
		Replay:         opts.SAMLReplay,
		MaxSkew:        opts.SAMLMaxSkew,
		RequireAWSRole: true,
	}
	if err := s.sp.Check(); err != nil {
		return nil, fmt.Errorf("sts: %w", err)
	}
	regions := []string{opts.Region}
	if opts.Region != DefaultRegion {
		regions = append(regions, DefaultRegion) // the global endpoint's signing region
	}
	sig, err := sigv4.New(sigv4.Config{Lookup: s, Service: "sts", Regions: regions, Clock: opts.Clock,
		MaxEagerBody: opts.MaxBodyBytes})
	if err != nil {
		return nil, fmt.Errorf("sts: %w", err)
	}
	s.sig = sig
	s.dp = opts.Decision
	s.oidc.m = map[string]*oidcEntry{}
	return s, nil
}

// AccountID returns the account of every ARN this service issues.
func (s *Service) AccountID() string { return s.o.AccountID }

// auditInfo collects what the audit event of a call records.
type auditInfo struct {
	UserID, User, AuthMethod  string
	RoleARN, RoleID           string
	SessionName, SourceID     string
	Provider, Subject         string
	SessionID, AccessKeyID    string
	ParentSession, CallerARN  string
	CallerAccessKey           string // the access key a signed call named (clipped; verified only on success)
	Expiration                time.Time
	ChainDepth                int
	Issued                    bool
	Binding                   string                // how a federated identity bound (identity.Via*)
	Decoded                   *authzmsg.Explanation // the message a DecodeAuthorizationMessage opened
	DecodedBy                 string                // why that caller may read it
	DurationSeconds, PackedPc int
}

// ServeHTTP implements the Query protocol endpoint.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	r, reqID := requestid.Ensure(r)
	ctx := r.Context()
	f := negotiate(r.Header.Get("Accept"))
	info := &auditInfo{}
	action := ""
	body, e := readBody(r, s.o.MaxBodyBytes)
	var req *request
	if e == nil {
		req, e = parseRequest(r.Method, r.Header.Get("Content-Type"), body, r.URL.RawQuery)
	}
	var res result
	if e == nil {
		action = req.Action
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
		switch req.Action {
		case ActionAssumeRoleWithSAML:
			res, e = s.federate(ctx, r, req, info, &samlFlow{s: s})
		case ActionAssumeRoleWithWebIdentity:
			res, e = s.federate(ctx, r, req, info, &webIdentityFlow{s: s})
		case ActionAssumeRole:
			res, e = s.federate(ctx, r, req, info, &assumeRoleFlow{s: s})
		case ActionGetCallerIdentity:
			res, e = s.getCallerIdentity(ctx, r, req, info)
		case ActionDecodeAuthorizationMessage:
			res, e = s.decodeAuthorizationMessage(ctx, r, req, info)
		}
	}
	federation := action != ActionGetCallerIdentity && action != ActionDecodeAuthorizationMessage
	if e != nil {
		s.logError(ctx, action, e)
		if err := s.emit(ctx, r, action, info, e); err != nil {
			s.log.ErrorContext(ctx, "audit: STS denial not recorded", "action", action, "err", err)
		}
		writeError(w, f, reqID, e, federation)
		return
	}
	if info.Issued || info.Decoded != nil {
		if err := s.emit(ctx, r, action, info, nil); err != nil {
			// Fail closed: credentials or a decoded message that cannot be
			// attributed are not handed out.
			e := internalErr(fmt.Errorf("audit: %w", err))
			s.logError(ctx, action, e)
			writeError(w, f, reqID, e, federation)
			return
		}
	}
	writeResult(w, f, reqID, res)
}

func (s *Service) logError(ctx context.Context, action string, e *Error) {
	lvl := slog.LevelInfo
	if e.Code == CodeInternalFailure {
		lvl = slog.LevelError
	}
	s.log.Log(ctx, lvl, "sts: request refused", "request_id", requestid.From(ctx), "action", action,
		"code", e.Code, "reason", e.Reason, "cause", e.Cause, "err", e.Err)
}

// emit writes the audit event of a call: a denial when e is set, else a
// decoded authorization message or an issuance. A denial of a call that
// identified no caller (no verified signature, assertion or token) goes
// through the denial aggregator, so that an anonymous flood costs the
// audit log a bounded amount.
func (s *Service) emit(ctx context.Context, r *http.Request, action string, info *auditInfo, e *Error) error {
	ev := s.event(ctx, r, action, info, e)
	if e != nil && e.Code != CodeInternalFailure && info.User == "" && info.UserID == "" {
		return s.denials.Deny(ctx, ev, audit.SourceKey(ev.Actor.SourceIP), e.Code)
	}
	return s.o.Audit.Emit(ctx, ev)
}

// event builds the audit event of a call (see emit).
func (s *Service) event(ctx context.Context, r *http.Request, action string, info *auditInfo, e *Error) audit.Event {
	code := audit.CodeSTSIssued
	switch {
	case e != nil:
		code = audit.CodeSTSDenied
	case info.Decoded != nil:
		code = audit.CodeAuthzMessageDecoded
	}
	ev := audit.NewEvent(s.now, code, "sts."+strings.ToLower(orDefault(action, "request"))).Request(ctx).
		Actor(audit.Actor{UserID: info.UserID, User: info.User, AuthMethod: info.AuthMethod,
			SessionID: info.ParentSession, AccessKeyID: info.CallerAccessKey}).
		Source(remoteIP(r), r.UserAgent()).
		Resource(audit.Resource{Type: "role", ID: info.RoleID, Name: info.RoleARN})
	put := func(k, v string) {
		if v != "" {
			ev.Detail(k, v)
		}
	}
	put("roleSessionName", info.SessionName)
	put("sourceIdentity", info.SourceID)
	put("provider", info.Provider)
	put("subject", info.Subject)
	put("binding", info.Binding)
	put("callerArn", info.CallerARN)
	put("parentSessionId", info.ParentSession)
	put("callerAccessKeyId", info.CallerAccessKey)
	switch {
	case e != nil && e.Code == CodeInternalFailure:
		ev.Fail(e.Code + ": " + e.Cause)
	case e != nil:
		ev.Deny(e.Code + ": " + e.Cause)
	case info.Decoded != nil:
		ev.Outcome(audit.Allow, info.DecodedBy).
			Resource(audit.Resource{Type: "authorization-message",
				Name: audit.Clip(info.Decoded.Action+" "+info.Decoded.Resource, audit.MaxField)})
		put("deniedPrincipal", info.Decoded.Principal)
		put("deniedRequestId", info.Decoded.RequestID)
	default:
		ev.Outcome(audit.Allow, "temporary credentials issued")
	}
	if e != nil {
		put("errorCode", e.Code)
		put("errorReason", e.Reason)
	} else if info.Decoded == nil {
		put("sessionId", info.SessionID)
		put("accessKeyId", info.AccessKeyID)
		ev.Detail("expiration", info.Expiration.UTC().Format(time.RFC3339)).
			Detail("durationSeconds", info.DurationSeconds).
			Detail("chainDepth", info.ChainDepth).
			Detail("packedPolicySize", info.PackedPc)
	}
	return ev.Event()
}

func orDefault(s, d string) string {
	if s == "" {
		return d
	}
	return s
}

func remoteIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
