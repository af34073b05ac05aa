// Package api serves gatehouse's admin REST API under /api/v1.
//
// The OpenAPI document in package api (api/openapi.yaml) is the routing
// table and the request validator: every request is matched against it
// with kin-openapi's router and validated with openapi3filter before any
// handler runs, so an operation that is not in the document does not exist
// (404/405) and a body that violates its schema is refused (400) before
// anything changes. Authorization is declared per operation in the
// document's x-gatehouse-auth extension.
//
// Every admin mutation is audited before it is applied (decision allow);
// every denial is audited too (unauthenticated, forbidden, rejected input).
// If an audit event cannot be written the request fails with 503 and
// nothing changes (fail closed).
package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/gatehouse-dev/gatehouse/internal/authzmsg"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	specpkg "github.com/gatehouse-dev/gatehouse/api"
	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/clientip"
	"github.com/gatehouse-dev/gatehouse/internal/identity"
	"github.com/gatehouse-dev/gatehouse/internal/requestid"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// Prefix is the path prefix of every operation.
const Prefix = "/api/v1"

// DefaultMaxBodyBytes bounds request bodies unless Options.MaxBodyBytes is set.
const DefaultMaxBodyBytes = 1 << 20

// Options configure the API handler.
type Options struct {
	Store    store.Store
	Identity *identity.Service
	Audit    audit.Emitter
	// Logger receives operational logs; it should carry component=api.
	// Default slog.Default() with that attribute.
	Logger *slog.Logger
	// MaxBodyBytes bounds request bodies; larger ones get 413. Default 1 MiB.
	MaxBodyBytes int64
	// Spec overrides the embedded OpenAPI document (tests only).
	Spec []byte
	// AccountID is the 12-digit AWS account id in the ARNs of roles and
	// identity providers. Default DefaultAccountID.
	AccountID string
	// ManagedPolicies stores customer-managed IAM policies (/policies).
	// Default: Store, if it implements store.ManagedPolicyStore; with
	// neither, the policy operations answer 503.
	ManagedPolicies store.ManagedPolicyStore
	// Revoker revokes STS temporary credentials (/sts/revocations); nil
	// makes that operation answer 503.
	Revoker CredentialRevoker
	// Mounts stores S3 gateway mounts (/mounts). Default: Store, if it
	// implements store.MountStore; with neither, the mount operations
	// answer 503.
	Mounts store.MountStore
	// Links stores federated links (/federated-links). Default: Store, if
	// it implements store.LinkStore; with neither, the link operations
	// answer 503. Its DeleteFederatedLink must revoke the linked user's
	// live STS credentials before the link goes (the server's does); the
	// audit record of a deletion says they were revoked.
	Links store.LinkStore
	// OnMountsChanged, if set, runs after every mount mutation that was
	// applied, with the mount as stored (for a deletion, as it was), so the
	// server can apply that one change to its mount table at once.
	OnMountsChanged func(ctx context.Context, m *store.Mount, deleted bool)
	// AuthzMessages opens encoded authorization failure messages
	// (/authorization-messages/decode); nil makes that operation answer 503.
	AuthzMessages *authzmsg.Codec
	// Denials records the refusals of requests that carry no valid
	// credentials: one record per source and error code per window, the
	// rest counted (audit.Aggregator). Every authenticated request keeps
	// its own record. The owner flushes it (Run, and Flush at shutdown).
	// Default: one over Audit with the code audit.CodeAuthDeniedAggregated
	// and the aggregator's defaults.
	Denials *audit.Aggregator
}

type authLevel string

const (
	authNone      authLevel = "none"
	authPrincipal authLevel = "principal"
	authAdmin     authLevel = "admin"
)

type handlerFunc func(c *call) error

type operation struct {
	id      string
	auth    authLevel
	handler handlerFunc
}

// API is the http.Handler returned by New.
type API struct {
	st       store.Store
	id       *identity.Service
	em       audit.Emitter
	log      *slog.Logger
	maxBody  int64
	account  string // AWS account id in ARNs
	pol      store.ManagedPolicyStore
	rev      CredentialRevoker
	authz    *authzmsg.Codec
	denials  *audit.Aggregator
	mnt      store.MountStore
	links    store.LinkStore
	onMounts func(ctx context.Context, m *store.Mount, deleted bool)
	router   routers.Router
	ops      map[string]operation // by operationId
	vopts    *openapi3filter.Options
}

// New loads and validates the OpenAPI document, checks that every operation
// in it has a handler and an authorization level (and every handler an
// operation), and returns the handler. It serves paths under /api/v1 and
// answers 404 to everything else.
func New(opts Options) (http.Handler, error) {
	if opts.Store == nil || opts.Identity == nil || opts.Audit == nil {
		return nil, errors.New("api: Store, Identity and Audit are required")
	}
	var err error
	a := &API{st: opts.Store, id: opts.Identity, em: opts.Audit, log: opts.Logger, maxBody: opts.MaxBodyBytes}
	if a.log == nil {
		a.log = slog.Default().With("component", "api")
	}
	if a.maxBody <= 0 {
		a.maxBody = DefaultMaxBodyBytes
	}
	a.pol, a.rev, a.authz = opts.ManagedPolicies, opts.Revoker, opts.AuthzMessages
	if a.pol == nil {
		a.pol, _ = opts.Store.(store.ManagedPolicyStore)
	}
	a.mnt, a.onMounts = opts.Mounts, opts.OnMountsChanged
	if a.mnt == nil {
		a.mnt, _ = opts.Store.(store.MountStore)
	}
	a.links = opts.Links
	if a.links == nil {
		a.links, _ = opts.Store.(store.LinkStore)
	}
	if a.denials = opts.Denials; a.denials == nil {
		if a.denials, err = audit.NewAggregator(audit.AggregatorOptions{Emitter: opts.Audit,
			SummaryCode: audit.CodeAuthDeniedAggregated, Clock: opts.Identity.Now}); err != nil {
			return nil, fmt.Errorf("api: %w", err)
		}
	}
	a.account = opts.AccountID
	if a.account == "" {
		a.account = DefaultAccountID
	}
	if !accountIDRE.MatchString(a.account) {
		return nil, fmt.Errorf("api: AccountID %q must be 12 digits", a.account)
	}
	raw := opts.Spec
	if raw == nil {
		raw = specpkg.Spec
	}
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(raw)
	if err != nil {
		return nil, fmt.Errorf("api: load openapi document: %w", err)
	}
	if err := doc.Validate(context.Background()); err != nil {
		return nil, fmt.Errorf("api: invalid openapi document: %w", err)
	}
	if a.router, err = gorillamux.NewRouter(doc); err != nil {
		return nil, fmt.Errorf("api: build router: %w", err)
	}
	handlers := a.handlers()
	a.ops = make(map[string]operation, len(handlers))
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			if op.OperationID == "" {
				return nil, fmt.Errorf("api: %s %s has no operationId", method, path)
			}
			h, ok := handlers[op.OperationID]
			if !ok {
				return nil, fmt.Errorf("api: operation %s has no handler", op.OperationID)
			}
			lvl, _ := op.Extensions["x-gatehouse-auth"].(string)
			switch authLevel(lvl) {
			case authNone, authPrincipal, authAdmin:
			default:
				return nil, fmt.Errorf("api: operation %s: x-gatehouse-auth must be none, principal or admin", op.OperationID)
			}
			if authLevel(lvl) == authNone && (op.Security == nil || len(*op.Security) != 0) {
				return nil, fmt.Errorf("api: operation %s: x-gatehouse-auth none requires security: []", op.OperationID)
			}
			a.ops[op.OperationID] = operation{id: op.OperationID, auth: authLevel(lvl), handler: h}
		}
	}
	for id := range handlers {
		if _, ok := a.ops[id]; !ok {
			return nil, fmt.Errorf("api: handler %s has no operation in the document", id)
		}
	}
	a.vopts = &openapi3filter.Options{
		AuthenticationFunc:                openapi3filter.NoopAuthenticationFunc, // authentication is ours
		SkipSettingDefaults:               true,
		RejectWhenRequestBodyNotSpecified: true,
	}
	return a, nil
}

// call is one request in flight.
type call struct {
	a       *API
	w       http.ResponseWriter
	r       *http.Request
	ctx     context.Context
	op      operation
	rid     string
	p       *identity.Principal
	params  map[string]string
	body    []byte
	audited bool // an audit event for this request's outcome was written
}

// ServeHTTP implements http.Handler.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	r, rid := requestid.Ensure(r)
	ctx := r.Context()
	h := w.Header()
	h.Set(requestid.Header, rid)
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	c := &call{a: a, w: w, r: r, ctx: ctx, rid: rid}
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			a.log.ErrorContext(ctx, "panic in handler", "request_id", rid, "panic", fmt.Sprint(v))
			c.fail(fmt.Errorf("panic: %v", v))
		}
	}()
	if err := a.serve(c); err != nil {
		c.fail(err)
	}
}

func (a *API) serve(c *call) error {
	r := c.r
	if r.URL.Path != Prefix && !strings.HasPrefix(r.URL.Path, Prefix+"/") {
		return errNotFound("no such API endpoint")
	}
	route, params, err := a.router.FindRoute(r)
	switch {
	case errors.Is(err, routers.ErrMethodNotAllowed):
		return &apiError{status: http.StatusMethodNotAllowed, code: "method_not_allowed", msg: "method not allowed on this endpoint"}
	case err != nil:
		return errNotFound("no such API endpoint")
	}
	op, ok := a.ops[route.Operation.OperationID]
	if !ok { // cannot happen: New checked every operation
		return fmt.Errorf("api: operation %q not registered", route.Operation.OperationID)
	}
	c.op = op

	// Authenticate and authorize before looking at the body.
	if op.auth != authNone {
		p, err := a.id.AuthenticateRequest(r)
		if err != nil {
			if errors.Is(err, identity.ErrUnavailable) {
				a.log.ErrorContext(c.ctx, "authentication backend failed", "request_id", c.rid, "error", err)
				return errUnavailable
			}
			return errUnauthenticated
		}
		c.p = p
		c.ctx = identity.WithPrincipal(c.ctx, p)
		c.r = r.WithContext(c.ctx)
		r = c.r
		if !safeMethod(r.Method) && identity.CredentialFromCookie(r) && !sameOrigin(r) {
			return errForbidden("cross-site request refused")
		}
		if op.auth == authAdmin && !p.Admin {
			return errForbidden("administrator privileges required")
		}
	}

	if r.ContentLength > a.maxBody {
		return errTooLarge(a.maxBody)
	}
	if r.Body != nil && r.Body != http.NoBody {
		body, err := io.ReadAll(http.MaxBytesReader(c.w, r.Body, a.maxBody))
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				return errTooLarge(a.maxBody)
			}
			return errInvalid("could not read the request body")
		}
		c.body = body
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		r.ContentLength = int64(len(body))
		if len(body) == 0 {
			r.Body = http.NoBody
		}
	}

	in := &openapi3filter.RequestValidationInput{Request: r, PathParams: params, Route: route, Options: a.vopts}
	if err := openapi3filter.ValidateRequest(c.ctx, in); err != nil {
		return validationError(err)
	}
	c.params = make(map[string]string, len(params))
	for k, v := range params {
		c.params[k] = unescapePath(v)
	}
	return op.handler(c)
}

func safeMethod(m string) bool {
	return m == http.MethodGet || m == http.MethodHead || m == http.MethodOptions
}

// sameOrigin reports whether a cookie-authenticated, state-changing
// request comes from this origin (Fetch Metadata, then Origin). The
// origin's scheme is the client's transport as internal/clientip resolved
// it, so that behind a trusted TLS-terminating proxy it is https.
func sameOrigin(r *http.Request) bool {
	if s := r.Header.Get("Sec-Fetch-Site"); s != "" {
		return s == "same-origin" || s == "none"
	}
	o := r.Header.Get("Origin")
	if o == "" {
		return false
	}
	scheme := "http"
	if clientip.SecureTransport(r) {
		scheme = "https"
	}
	return strings.EqualFold(o, scheme+"://"+r.Host)
}

func (a *API) handlers() map[string]handlerFunc {
	return map[string]handlerFunc{
		"login":                      a.login,
		"whoami":                     a.whoami,
		"listUsers":                  a.listUsers,
		"createUser":                 a.createUser,
		"getUser":                    a.getUser,
		"updateUser":                 a.updateUser,
		"deleteUser":                 a.deleteUser,
		"disableUser":                a.disableUser,
		"enableUser":                 a.enableUser,
		"setUserPassword":            a.setUserPassword,
		"getUserAttributes":          a.getUserAttributes,
		"replaceUserAttributes":      a.replaceUserAttributes,
		"setUserAttribute":           a.setUserAttribute,
		"deleteUserAttribute":        a.deleteUserAttribute,
		"listGroups":                 a.listGroups,
		"createGroup":                a.createGroup,
		"getGroup":                   a.getGroup,
		"updateGroup":                a.updateGroup,
		"deleteGroup":                a.deleteGroup,
		"addGroupMember":             a.addGroupMember,
		"removeGroupMember":          a.removeGroupMember,
		"listTokens":                 a.listTokens,
		"createToken":                a.createToken,
		"revokeToken":                a.revokeToken,
		"listRoles":                  a.listRoles,
		"createRole":                 a.createRole,
		"getRole":                    a.getRole,
		"updateRole":                 a.updateRole,
		"deleteRole":                 a.deleteRole,
		"putRoleTrustPolicy":         a.putRoleTrustPolicy,
		"putRolePolicy":              a.putRolePolicy,
		"deleteRolePolicy":           a.deleteRolePolicy,
		"listSAMLProviders":          a.listSAMLProviders,
		"createSAMLProvider":         a.createSAMLProvider,
		"getSAMLProvider":            a.getSAMLProvider,
		"updateSAMLProvider":         a.updateSAMLProvider,
		"deleteSAMLProvider":         a.deleteSAMLProvider,
		"listOIDCProviders":          a.listOIDCProviders,
		"createOIDCProvider":         a.createOIDCProvider,
		"getOIDCProvider":            a.getOIDCProvider,
		"updateOIDCProvider":         a.updateOIDCProvider,
		"deleteOIDCProvider":         a.deleteOIDCProvider,
		"putSAMLProviderBinding":     a.putSAMLProviderBinding,
		"putOIDCProviderBinding":     a.putOIDCProviderBinding,
		"listFederatedLinks":         a.listFederatedLinks,
		"createFederatedLink":        a.createFederatedLink,
		"deleteFederatedLink":        a.deleteFederatedLink,
		"listManagedPolicies":        a.listManagedPolicies,
		"createManagedPolicy":        a.createManagedPolicy,
		"getManagedPolicy":           a.getManagedPolicy,
		"updateManagedPolicy":        a.updateManagedPolicy,
		"deleteManagedPolicy":        a.deleteManagedPolicy,
		"revokeCredentials":          a.revokeCredentials,
		"listPrivileges":             a.listPrivileges,
		"grantPrivilege":             a.grantPrivilege,
		"revokePrivilege":            a.revokePrivilege,
		"decodeAuthorizationMessage": a.decodeAuthorizationMessage,
		"listMounts":                 a.listMounts,
		"createMount":                a.createMount,
		"getMount":                   a.getMount,
		"updateMount":                a.updateMount,
		"deleteMount":                a.deleteMount,
	}
}

// ---- responses ----

func (c *call) json(status int, v any) error {
	c.w.Header().Set("Content-Type", "application/json")
	c.w.WriteHeader(status)
	enc := json.NewEncoder(c.w)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		c.a.log.DebugContext(c.ctx, "write response", "request_id", c.rid, "error", err)
	}
	return nil
}

func (c *call) noContent() error {
	c.w.WriteHeader(http.StatusNoContent)
	return nil
}

// decode unmarshals the (already schema-validated) body into v, refusing
// unknown fields as a second line of defence.
func (c *call) decode(v any) error {
	dec := json.NewDecoder(bytes.NewReader(c.body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errInvalid("request body does not match the expected shape")
	}
	return nil
}

// ---- audit ----

// event starts this request's audit event with code: its action, request
// ids, caller and source.
func (c *call) event(code audit.Code) *audit.Builder {
	return audit.NewEvent(c.a.id.Now, code, c.action()).Request(c.ctx).
		Actor(c.p.AuditActor()).Source(c.sourceIP(), c.r.UserAgent())
}

// sourceIP is the client address of the request, without its port.
func (c *call) sourceIP() string {
	if host, _, err := net.SplitHostPort(c.r.RemoteAddr); err == nil {
		return host
	}
	return c.r.RemoteAddr
}

func (c *call) action() string {
	if c.op.id == "" {
		return "api.request"
	}
	return "api." + c.op.id
}

func (c *call) emit(b *audit.Builder) error {
	return c.record(b.Event(), c.a.em.Emit)
}

// deny records the refusal built by b with error code code: through the
// denial aggregator when the request carries no valid credentials, so that
// an anonymous flood costs the audit log a bounded amount, else on its own.
func (c *call) deny(b *audit.Builder, code string) error {
	if c.p != nil {
		return c.emit(b)
	}
	return c.record(b.Event(), func(ctx context.Context, ev audit.Event) error {
		return c.a.denials.Deny(ctx, ev, audit.SourceKey(ev.Actor.SourceIP), code)
	})
}

// record writes ev through emit; a failure is logged and becomes 503.
func (c *call) record(ev audit.Event, emit func(context.Context, audit.Event) error) error {
	if err := emit(c.ctx, ev); err != nil {
		c.a.log.ErrorContext(c.ctx, "audit emit failed; refusing request", "request_id", c.rid, "code", string(ev.Code), "error", err)
		return errUnavailable
	}
	return nil
}

// allow records an admin mutation before it is applied. If it returns an
// error the mutation must not happen.
func (c *call) allow(code audit.Code, res audit.Resource, details map[string]any) error {
	if err := c.emit(c.event(code).Resource(res).Allow().Details(details)); err != nil {
		return err
	}
	c.audited = true
	return nil
}

// mutationFailed records that a mutation audited by allow did not apply.
func (c *call) mutationFailed(code audit.Code, res audit.Resource, err error) {
	ae := translate(err)
	if e := c.emit(c.event(code).Resource(res).Fail("not applied: " + ae.code)); e != nil {
		c.a.log.ErrorContext(c.ctx, "audit of failed mutation lost", "request_id", c.rid, "code", string(code))
	}
}

// fail writes err in the one error shape, after auditing denials.
func (c *call) fail(err error) {
	ae := translate(err)
	if ae.status >= 500 && ae.cause != nil {
		c.a.log.ErrorContext(c.ctx, "request failed", "request_id", c.rid, "operation", c.op.id, "error", ae.cause)
	}
	if !c.audited && c.op.id != "" { // unmatched routes are not audited
		if code, ok := denialCode(ae, c.r.Method); ok {
			res := audit.Resource{Type: "api", Name: c.r.Method + " " + truncate(c.r.URL.Path, 256)}
			if e := c.deny(c.event(code).Resource(res).Deny(ae.msg), ae.code); e != nil {
				ae = translate(e)
			}
		}
	}
	if ae.status == http.StatusUnauthorized {
		c.w.Header().Set("WWW-Authenticate", `Bearer realm="gatehouse"`)
	}
	if ae.retryAfter > 0 {
		c.w.Header().Set("Retry-After", strconv.Itoa(ae.retryAfter))
	}
	body := map[string]any{"error": map[string]string{"code": ae.code, "message": ae.msg, "request_id": c.rid}}
	_ = c.json(ae.status, body)
}

// denialCode says which audit code, if any, records a refused request.
func denialCode(ae *apiError, method string) (audit.Code, bool) {
	switch {
	case ae.status == http.StatusUnauthorized:
		return audit.CodeAuthDenied, true
	case ae.status == http.StatusForbidden:
		return audit.CodeAdminDenied, true
	case ae.status == http.StatusBadRequest, ae.status == http.StatusRequestEntityTooLarge,
		ae.status == http.StatusUnsupportedMediaType:
		return audit.CodeRequestRejected, true
	case ae.status >= 400 && ae.status < 500 && !safeMethod(method) && ae.status != http.StatusMethodNotAllowed:
		// A refused mutation (unknown target, stale revision, duplicate).
		return audit.CodeRequestRejected, true
	}
	return "", false
}

// truncate is audit.Clip: the one clipping helper for attacker-chosen values.
func truncate(s string, n int) string { return audit.Clip(s, n) }

func rfc3339(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }
