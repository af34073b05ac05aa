// Package scim is gatehouse's SCIM 2.0 service provider (RFC 7643, RFC 7644)
// for provisioning users and groups from an identity provider such as Okta
// or Microsoft Entra ID.
//
// New returns an http.Handler that serves paths relative to its mount
// point: the server mounts it with http.StripPrefix("/scim/v2", h), so the
// handler sees "/Users", "/Groups/{id}", "/ServiceProviderConfig", ... and
// Options.BaseURL ("https://host/scim/v2") is used only to build
// meta.location and $ref values.
//
// Every request is authenticated with Options.Auth (a gatehouse bearer
// token) and must come from a principal holding the admin or the scim
// privilege (Principal.SCIM). Privileges are assigned outside the directory
// (docs/design/0015-admin-privilege.md), so no SCIM write can confer them;
// and a principal that holds any privilege is managed by the admin API
// only: SCIM writes to it are refused with 403. Discovery endpoints are
// authenticated too.
//
// /Users and /Groups are served by one resource path (crud.go) with a
// kind's hooks for each (kind.go): the plumbing described below is written
// once.
//
// Filtering, sorting and pagination are evaluated in memory over the
// candidates: the records that an indexed lookup finds for a single "eq"
// on id, externalId or the unique name (lookup.go), else store.ListUsers /
// store.ListGroups (ordered by creation time, then id), whose cost is
// linear in the size of the directory.
//
// Audit before effect, as in the REST API: every change (create, update,
// disable, delete of users and groups, membership changes) is recorded
// (decision allow) before the store write is attempted. If the event cannot
// be recorded the client gets 500 and the store is not touched. A write
// that the store then refuses (uniqueness, a lost revision race, an outage)
// is recorded a second time with decision error, "not applied", and a
// revision race is retried under a fresh event. Every denied,
// unauthenticated or rejected (4xx) mutating call emits one event before
// the answer. Reads are not audited.
//
// Concurrency: PUT and PATCH read the resource, compute the new state and
// write it with the revision they read; on store.ErrConflict they retry with
// fresh state, unless the client sent If-Match, in which case a stale
// version is 412 Precondition Failed.
package scim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"mime"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/identity"
	"github.com/gatehouse-dev/gatehouse/internal/requestid"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// DefaultMaxBodyBytes is the request body limit when Options.MaxBodyBytes is 0.
const DefaultMaxBodyBytes = 1 << 20

// MaxResults is the largest page a list request returns (advertised as
// filter.maxResults in /ServiceProviderConfig); larger counts are capped.
const MaxResults = 200

// maxAttempts bounds read-modify-write retries on revision conflicts.
const maxAttempts = 20

// Options configures the SCIM handler.
type Options struct {
	Store store.Store            // required
	Audit audit.Emitter          // required
	Auth  identity.Authenticator // required
	// Logger receives internal errors; component=scim is added. Nil discards.
	Logger *slog.Logger
	// BaseURL is the absolute URL the handler is mounted at, e.g.
	// "https://gatehouse.example.com/scim/v2". Required.
	BaseURL string
	// Privileged reports whether a principal (by id) holds a gatehouse
	// privilege; SCIM refuses to change such principals. Required.
	Privileged func(ctx context.Context, principalID string) (bool, error)
	// MaxBodyBytes limits request bodies; larger ones get 413. 0: 1 MiB.
	MaxBodyBytes int64
	// Clock stamps audit events. Nil: time.Now.
	Clock func() time.Time
	// Denials records the refusals of requests without a valid bearer
	// token: one record per source and error code per window, the rest
	// counted (audit.Aggregator); every authenticated request keeps its own
	// record. The owner flushes it (Run, and Flush at shutdown). Nil: one
	// over Audit with the code audit.CodeAuthDeniedAggregated.
	Denials *audit.Aggregator
}

// Validate checks opts without side effects.
func (o Options) Validate() error {
	var errs []error
	if o.Store == nil {
		errs = append(errs, errors.New("scim: Options.Store is required"))
	}
	if o.Audit == nil {
		errs = append(errs, errors.New("scim: Options.Audit is required"))
	}
	if o.Auth == nil {
		errs = append(errs, errors.New("scim: Options.Auth is required"))
	}
	if o.Privileged == nil {
		errs = append(errs, errors.New("scim: Options.Privileged is required"))
	}
	if u, err := url.Parse(o.BaseURL); o.BaseURL == "" || err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		errs = append(errs, fmt.Errorf("scim: Options.BaseURL %q must be an absolute http(s) URL without query", o.BaseURL))
	}
	if o.MaxBodyBytes < 0 {
		errs = append(errs, errors.New("scim: Options.MaxBodyBytes must not be negative"))
	}
	return errors.Join(errs...)
}

type handler struct {
	st      store.Store
	audit   audit.Emitter
	auth    identity.Authenticator
	log     *slog.Logger
	base    string
	priv    func(ctx context.Context, principalID string) (bool, error)
	maxBody int64
	clock   func() time.Time
	denials *audit.Aggregator
}

// New returns the SCIM handler. It serves paths relative to the mount point
// (see the package documentation) and is safe for concurrent use.
func New(opts Options) (http.Handler, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	h := &handler{
		st: opts.Store, audit: opts.Audit, auth: opts.Auth, log: opts.Logger,
		base: strings.TrimRight(opts.BaseURL, "/"), priv: opts.Privileged,
		maxBody: opts.MaxBodyBytes, clock: opts.Clock,
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	h.log = h.log.With("component", "scim")
	if h.maxBody == 0 {
		h.maxBody = DefaultMaxBodyBytes
	}
	if h.clock == nil {
		h.clock = time.Now
	}
	if h.denials = opts.Denials; h.denials == nil {
		var err error
		if h.denials, err = audit.NewAggregator(audit.AggregatorOptions{Emitter: opts.Audit,
			SummaryCode: audit.CodeAuthDeniedAggregated, Clock: h.clock}); err != nil {
			return nil, fmt.Errorf("scim: %w", err)
		}
	}
	return h, nil
}

// call is one request in flight.
type call struct {
	h   *handler
	w   http.ResponseWriter
	r   *http.Request
	ctx context.Context
	p   *identity.Principal
	res audit.Resource // what the request is about, for rejection events
	// audited is set once a write was recorded, so that its failure is
	// not recorded again as a rejection.
	audited bool
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c := &call{h: h, w: w, r: r, ctx: r.Context(), res: audit.Resource{Type: "scim"}}
	p, err := h.auth.AuthenticateRequest(r)
	if err != nil || p == nil {
		ev := c.event(audit.CodeAuthDenied, "scim.authenticate").Deny("missing or invalid bearer token")
		internal := err != nil && !errors.Is(err, identity.ErrUnauthenticated)
		if internal {
			h.log.ErrorContext(c.ctx, "authenticate", "err", err, "request_id", requestid.From(c.ctx))
			ev.Fail("authentication failed with an internal error")
		}
		record := c.emit
		if !internal {
			record = c.denyAnonymous
		}
		if err := record(ev); err != nil {
			c.internal(err)
			return
		}
		if internal {
			c.internal(err)
			return
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="gatehouse-scim"`)
		c.write(http.StatusUnauthorized, (&Error{Status: http.StatusUnauthorized, Detail: "authentication required"}).body())
		return
	}
	c.p = p
	if !p.SCIM {
		ev := c.event(audit.CodeAdminDenied, "scim.authorize").Deny("principal holds neither the scim nor the admin privilege")
		if err := c.emit(ev); err != nil {
			c.internal(err)
			return
		}
		c.write(http.StatusForbidden, (&Error{Status: http.StatusForbidden, Detail: "not allowed to use SCIM"}).body())
		return
	}
	c.route()
}

func (c *call) route() {
	segs := strings.Split(strings.Trim(c.r.URL.Path, "/"), "/")
	n := len(segs)
	first := segs[0]
	eq := strings.EqualFold
	switch {
	case eq(first, "ServiceProviderConfig") && n == 1:
		if c.allow(http.MethodGet) {
			c.serviceProviderConfig()
		}
	case eq(first, "ResourceTypes") && n <= 2:
		if c.allow(http.MethodGet) {
			c.resourceTypes(segs[1:])
		}
	case eq(first, "Schemas") && n <= 2:
		if c.allow(http.MethodGet) {
			c.schemas(segs[1:])
		}
	case eq(first, ".search") && n == 1:
		if c.allow(http.MethodPost) {
			c.fail(newError(http.StatusNotImplemented, "", "search across resource types is not supported; use /Users/.search or /Groups/.search"))
		}
	case eq(first, "Users") && n <= 2:
		serveResource(c, userKind{}, segs[1:])
	case eq(first, "Groups") && n <= 2:
		serveResource(c, groupKind{}, segs[1:])
	default:
		c.fail(newError(http.StatusNotFound, "", "no SCIM endpoint at %q", c.r.URL.Path))
	}
}

func (c *call) allow(methods ...string) bool {
	if slices.Contains(methods, c.r.Method) {
		return true
	}
	c.w.Header().Set("Allow", strings.Join(methods, ", "))
	c.fail(newError(http.StatusMethodNotAllowed, "", "method %s is not allowed here", c.r.Method))
	return false
}

// refusePrivileged answers 403 (RFC 7644 §3.12) for a write to a principal
// that holds a gatehouse privilege: renaming, disabling or deleting an
// administrator or the SCIM caller itself belongs to the admin API.
func (c *call) refusePrivileged(id string) error {
	priv, err := c.h.priv(c.ctx, id)
	if err != nil {
		return err
	}
	if priv {
		return newError(http.StatusForbidden, "", "this principal holds gatehouse privileges; change it with the admin API, not SCIM")
	}
	return nil
}

// ---- responses, errors and audit ----

func (c *call) write(status int, body any) {
	c.w.Header().Set("Content-Type", "application/scim+json")
	c.w.Header().Set("Cache-Control", "no-store")
	c.w.WriteHeader(status)
	if body != nil {
		enc := jsonEncoder(c.w)
		if err := enc.Encode(body); err != nil {
			c.h.log.DebugContext(c.ctx, "write response", "err", err)
		}
	}
}

func (c *call) writeResource(status int, doc map[string]any) {
	if meta, ok := doc["meta"].(map[string]any); ok {
		if v, ok := meta["version"].(string); ok {
			c.w.Header().Set("ETag", v)
		}
		if status == http.StatusCreated {
			if l, ok := meta["location"].(string); ok {
				c.w.Header().Set("Location", l)
			}
		}
	}
	c.write(status, doc)
}

// fail answers with err. A SCIM *Error is answered as is (after auditing a
// rejected mutating request); anything else is logged and answered 500.
func (c *call) fail(err error) {
	var se *Error
	if !errors.As(err, &se) {
		c.internal(err)
		return
	}
	if c.r.Method != http.MethodGet && !c.audited && se.Status >= 400 && se.Status < 500 {
		ev := c.event(audit.CodeRequestRejected, "scim."+c.res.Type+".reject").Deny(se.Detail).
			Detail("status", se.Status).Detail("method", c.r.Method)
		if se.Type != "" {
			ev.Detail("scimType", se.Type)
		}
		if err := c.emit(ev); err != nil {
			c.internal(err)
			return
		}
	}
	c.write(se.Status, se.body())
}

func (c *call) internal(err error) {
	rid := requestid.From(c.ctx)
	c.h.log.ErrorContext(c.ctx, "internal error", "err", err, "request_id", rid, "method", c.r.Method, "path", c.r.URL.Path)
	detail := "internal error"
	if rid != "" {
		detail += " (request id " + rid + ")"
	}
	c.write(http.StatusInternalServerError, (&Error{Status: http.StatusInternalServerError, Detail: detail}).body())
}

// event starts an audit event of this call: its request ids, caller,
// source and resource. The caller records the outcome.
func (c *call) event(code audit.Code, action string) *audit.Builder {
	ip := c.r.RemoteAddr
	if host, _, err := net.SplitHostPort(ip); err == nil {
		ip = host
	}
	return audit.NewEvent(c.h.clock, code, action).Request(c.ctx).
		Actor(c.p.AuditActor()).Source(ip, c.r.UserAgent()).Resource(c.res)
}

func (c *call) emit(b *audit.Builder) error {
	e := b.Event()
	if err := c.h.audit.Emit(c.ctx, e); err != nil {
		return fmt.Errorf("scim: audit %s: %w", e.Action, err)
	}
	return nil
}

// denyAnonymous records the refusal of a request without a valid bearer
// token through the denial aggregator, so that an anonymous flood costs
// the audit log a bounded amount.
func (c *call) denyAnonymous(b *audit.Builder) error {
	e := b.Event()
	if err := c.h.denials.Deny(c.ctx, e, audit.SourceKey(e.Actor.SourceIP), "unauthenticated"); err != nil {
		return fmt.Errorf("scim: audit %s: %w", e.Action, err)
	}
	return nil
}

// errAudit marks a write refused because its audit event could not be
// recorded; fail answers it 500.
var errAudit = errors.New("scim: change not recorded")

// auditedWrite records ev (decision allow) and only then runs write (audit
// before effect). If ev cannot be recorded, write never runs and the error
// wraps errAudit. If write fails, ev is recorded again with decision error
// ("not applied") and write's error is returned.
func (c *call) auditedWrite(ev *audit.Builder, write func() error) error {
	if err := c.emit(ev); err != nil {
		return fmt.Errorf("%w: %w", errAudit, err)
	}
	c.audited = true
	err := write()
	if err == nil {
		return nil
	}
	if e := c.emit(ev.Fail("not applied: " + notAppliedReason(err))); e != nil {
		c.h.log.ErrorContext(c.ctx, "audit of failed write lost", "err", e, "request_id", requestid.From(c.ctx))
	}
	return err
}

// notAppliedReason names the cause of a failed store write without
// internal detail.
func notAppliedReason(err error) string {
	switch {
	case errors.Is(err, store.ErrConflict):
		return "revision conflict"
	case errors.Is(err, store.ErrAlreadyExists):
		return "already exists"
	case errors.Is(err, store.ErrNotFound):
		return "not found"
	case errors.Is(err, store.ErrInvalid):
		return "invalid"
	}
	return "store error"
}

// storeErr translates a store error for a resource of kind ("User", "Group").
func storeErr(err error, kind, id, uniqueAttr string) error {
	switch {
	case errors.Is(err, store.ErrNotFound):
		return newError(http.StatusNotFound, "", "%s %q not found", kind, id)
	case errors.Is(err, store.ErrAlreadyExists):
		return newError(http.StatusConflict, errUniqueness, "a %s with this %s already exists", kind, uniqueAttr)
	case errors.Is(err, store.ErrInvalid):
		msg := err.Error()
		if i := strings.LastIndex(msg, store.ErrInvalid.Error()+": "); i >= 0 {
			msg = msg[i+len(store.ErrInvalid.Error())+2:]
		}
		return errValue("%s", msg)
	}
	return err
}

// ---- request bodies and preconditions ----

func (c *call) readBody() (map[string]any, error) {
	if ct := c.r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/scim+json" && mt != "application/json") {
			return nil, newError(http.StatusUnsupportedMediaType, "", "Content-Type must be application/scim+json or application/json")
		}
	}
	if c.r.ContentLength > c.h.maxBody {
		return nil, newError(http.StatusRequestEntityTooLarge, "", "request body larger than %d bytes", c.h.maxBody)
	}
	return decodeJSON(http.MaxBytesReader(c.w, c.r.Body, c.h.maxBody))
}

// ifMatch returns the If-Match header, or "" when absent.
func (c *call) ifMatch() string { return strings.TrimSpace(c.r.Header.Get("If-Match")) }

// checkVersion enforces If-Match (RFC 7644 §3.14) against revision rev.
func (c *call) checkVersion(rev int64) error {
	im := c.ifMatch()
	if im == "" || im == "*" {
		return nil
	}
	want := strconv.FormatInt(rev, 10)
	for _, t := range strings.Split(im, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if strings.Trim(t, `"`) == want {
			return nil
		}
	}
	return newError(http.StatusPreconditionFailed, "", "the resource has changed: current version is %s", etag(rev))
}

func backoff(attempt int) {
	time.Sleep(time.Duration(1+rand.IntN(1+attempt*2)) * time.Millisecond)
}

// readUpdate reads a PUT (full replacement: doc) or PATCH (ops) body for
// resources of type rt and names the audit action (<prefix>.replace|patch).
func (c *call) readUpdate(rt *resourceType, prefix string) (ops []patchOp, doc map[string]any, action string, err error) {
	raw, err := c.readBody()
	if err != nil {
		return nil, nil, "", err
	}
	if c.r.Method == http.MethodPatch {
		ops, err = parsePatch(rt, raw)
		return ops, nil, prefix + ".patch", err
	}
	if err = checkSchemas(rt, raw); err == nil {
		doc, err = normResource(rt, raw)
	}
	return nil, doc, prefix + ".replace", err
}

// excludes reports whether the comma-separated attribute list names name.
func excludes(list, name string) bool {
	for _, s := range strings.Split(list, ",") {
		if strings.EqualFold(strings.TrimSpace(s), name) {
			return true
		}
	}
	return false
}

// ---- list, search, projection ----

type listParams struct {
	filter, sortBy, sortOrder string
	attributes, excluded      string
	startIndex, count         int
}

func listParamsFromQuery(q url.Values) (*listParams, error) {
	lp := &listParams{
		filter: q.Get("filter"), sortBy: q.Get("sortBy"), sortOrder: q.Get("sortOrder"),
		attributes: q.Get("attributes"), excluded: q.Get("excludedAttributes"),
		startIndex: 1, count: MaxResults,
	}
	for name, dst := range map[string]*int{"startIndex": &lp.startIndex, "count": &lp.count} {
		if s := q.Get(name); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil {
				return nil, errValue("%s must be an integer", name)
			}
			*dst = n
		}
	}
	return lp, nil
}

// searchParams reads the list parameters of a SearchRequest body
// (RFC 7644 §3.4.3). Its attributes are read in sorted order, so that the
// first error is always the same.
func (c *call) searchParams() (*listParams, error) {
	raw, err := c.readBody()
	if err != nil {
		return nil, err
	}
	lp := &listParams{startIndex: 1, count: MaxResults}
	okSchema := false
	for _, k := range sortedKeys(raw) {
		v := raw[k]
		switch strings.ToLower(k) {
		case "schemas":
			l, _ := v.([]any)
			for _, s := range l {
				if s == URNSearchRequest {
					okSchema = true
				}
			}
		case "filter":
			lp.filter, err = searchString(k, v)
		case "sortby":
			lp.sortBy, err = searchString(k, v)
		case "sortorder":
			lp.sortOrder, err = searchString(k, v)
		case "attributes":
			lp.attributes, err = searchList(k, v)
		case "excludedattributes":
			lp.excluded, err = searchList(k, v)
		case "startindex":
			lp.startIndex, err = searchInt(k, v)
		case "count":
			lp.count, err = searchInt(k, v)
		default:
			err = errSyntax("unknown attribute %q in a SearchRequest", k)
		}
		if err != nil {
			return nil, err
		}
	}
	if !okSchema {
		return nil, errSyntax(`"schemas" must be [%q]`, URNSearchRequest)
	}
	return lp, nil
}

// searchString reads the SearchRequest attribute k, a string.
func searchString(k string, v any) (string, error) {
	s, ok := v.(string)
	if !ok {
		return "", errValue("%q must be a string", k)
	}
	return s, nil
}

// searchList reads the SearchRequest attribute k, a list of strings or
// one comma-separated string, as a comma-separated string.
func searchList(k string, v any) (string, error) {
	l, ok := v.([]any)
	if !ok {
		return searchString(k, v)
	}
	var parts []string
	for _, x := range l {
		s, ok := x.(string)
		if !ok {
			return "", errValue("%q must be a list of strings", k)
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ","), nil
}

// searchInt reads the SearchRequest attribute k, a 32-bit integer.
func searchInt(k string, v any) (int, error) {
	n, ok := v.(interface{ Int64() (int64, error) })
	if !ok {
		return 0, errValue("%q must be an integer", k)
	}
	i, err := n.Int64()
	if err != nil || i > 1<<31 || i < -(1<<31) {
		return 0, errValue("%q must be an integer", k)
	}
	return int(i), nil
}

// listQuery is a list request's parameters, checked and compiled for
// resources of one type.
type listQuery struct {
	*listParams
	filter     filterNode   // nil: every resource
	sortSegs   []*attribute // nil: store order
	descending bool
}

// parseList checks and compiles lp, or the query's parameters when lp is
// nil: startIndex below 1 counts as 1, and count is clipped to
// [0, MaxResults].
func (c *call) parseList(rt *resourceType, lp *listParams) (*listQuery, error) {
	var err error
	if lp == nil {
		if lp, err = listParamsFromQuery(c.r.URL.Query()); err != nil {
			return nil, err
		}
	}
	lp.startIndex = max(lp.startIndex, 1)
	lp.count = min(max(lp.count, 0), MaxResults)
	lq := &listQuery{listParams: lp}
	if strings.TrimSpace(lp.filter) != "" {
		if lq.filter, err = parseFilter(lp.filter); err == nil {
			err = compileFilter(rt, nil, lq.filter)
		}
		if err != nil {
			return nil, newError(http.StatusBadRequest, errInvalidFilter, "invalid filter: %v", err)
		}
	}
	if lp.sortBy != "" {
		if lq.sortSegs, err = resolvePath(rt, nil, lp.sortBy); err != nil {
			return nil, errValue("invalid sortBy: %v", err)
		}
	}
	lq.descending = strings.EqualFold(lp.sortOrder, "descending")
	if lp.sortOrder != "" && !lq.descending && !strings.EqualFold(lp.sortOrder, "ascending") {
		return nil, errValue(`sortOrder must be "ascending" or "descending"`)
	}
	return lq, nil
}

// page filters and sorts docs, the bare documents of the candidates, and
// returns the requested page and the number of matches. fill replaces
// documents by ones with their references ("groups", "members"): before
// filtering when the filter or the sort reads them, else on the page only,
// unless they are excluded.
func (lq *listQuery) page(rt *resourceType, docs []map[string]any, fill func([]map[string]any) error) ([]map[string]any, int, error) {
	needsFill := rt.attr("groups") != nil && !excludes(lq.excluded, "groups") ||
		rt.attr("members") != nil && !excludes(lq.excluded, "members")
	filled := false
	f, sortSegs := lq.filter, lq.sortSegs
	if f != nil && (refersTo(f, rt.attr("groups")) || refersTo(f, rt.attr("members"))) || sortSegs != nil && (sortSegs[0].Name == "groups" || sortSegs[0].Name == "members") {
		if err := fill(docs); err != nil {
			return nil, 0, err
		}
		filled = true
	}
	if f != nil {
		kept := docs[:0]
		for _, d := range docs {
			if eval(f, d) {
				kept = append(kept, d)
			}
		}
		docs = kept
	}
	if sortSegs != nil {
		sortDocs(docs, sortSegs, lq.descending)
	}
	total := len(docs)
	start := min(lq.startIndex-1, total)
	page := docs[start:min(start+lq.count, total)]
	if needsFill && !filled {
		if err := fill(page); err != nil {
			return nil, 0, err
		}
	}
	return page, total, nil
}

// writePage projects page and answers it as a ListResponse of total
// matches.
func (c *call) writePage(rt *resourceType, lq *listQuery, page []map[string]any, total int) {
	if err := c.project(rt, page, lq.attributes, lq.excluded); err != nil {
		c.fail(err)
		return
	}
	resources := make([]any, len(page))
	for i, d := range page {
		resources[i] = d
	}
	c.write(http.StatusOK, map[string]any{
		"schemas":      []string{URNListResponse},
		"totalResults": total,
		"itemsPerPage": len(page),
		"startIndex":   lq.startIndex,
		"Resources":    resources,
	})
}

// sortDocs sorts stably by the first value at segs (RFC 7644 §3.4.2.3);
// resources without a value sort last in either order.
func sortDocs(docs []map[string]any, segs []*attribute, desc bool) {
	last := segs[len(segs)-1]
	if last.Type == typeComplex {
		if v := last.sub("value"); v != nil {
			segs = append(append([]*attribute(nil), segs...), v)
			last = v
		}
	}
	key := func(d map[string]any) (string, bool) {
		for _, v := range collect(d, segs) {
			switch v := v.(type) {
			case string:
				if !last.CaseExact {
					return strings.ToLower(v), true
				}
				return v, true
			case bool:
				return strconv.FormatBool(v), true
			}
		}
		return "", false
	}
	sort.SliceStable(docs, func(i, j int) bool {
		a, aok := key(docs[i])
		b, bok := key(docs[j])
		if aok != bok {
			return aok
		}
		if desc {
			return a > b
		}
		return a < b
	})
}

// project applies the attributes / excludedAttributes parameters
// (RFC 7644 §3.4.2.5) to docs in place. id and schemas are always returned.
func (c *call) project(rt *resourceType, docs []map[string]any, attrs, excluded string) error {
	parse := func(list string) ([][]*attribute, error) {
		var out [][]*attribute
		for _, s := range strings.Split(list, ",") {
			if s = strings.TrimSpace(s); s == "" {
				continue
			}
			segs, err := resolvePath(rt, nil, s)
			if err != nil {
				return nil, errValue("invalid attribute in attributes/excludedAttributes: %v", err)
			}
			out = append(out, segs)
		}
		return out, nil
	}
	inc, err := parse(attrs)
	if err != nil {
		return err
	}
	exc, err := parse(excluded)
	if err != nil {
		return err
	}
	for i, d := range docs {
		if len(inc) > 0 {
			out := map[string]any{"id": d["id"], "schemas": d["schemas"]}
			for _, segs := range inc {
				copyPath(d, out, segs)
			}
			docs[i] = out
			d = out
		}
		for _, segs := range exc {
			if segs[0].Name == "id" || segs[0].Returned == "always" {
				continue
			}
			deletePath(d, segs)
		}
	}
	return nil
}

func copyPath(src, dst map[string]any, segs []*attribute) {
	name := segs[0].Name
	v, ok := src[name]
	if !ok {
		return
	}
	if len(segs) == 1 {
		dst[name] = v
		return
	}
	switch v := v.(type) {
	case map[string]any:
		sub, ok := dst[name].(map[string]any)
		if !ok {
			sub = map[string]any{}
			dst[name] = sub
		}
		copyPath(v, sub, segs[1:])
	case []any:
		var out []any
		for _, e := range v {
			if m, ok := e.(map[string]any); ok {
				o := map[string]any{}
				copyPath(m, o, segs[1:])
				if len(o) > 0 {
					out = append(out, o)
				}
			}
		}
		if len(out) > 0 {
			dst[name] = out
		}
	}
}

func deletePath(d map[string]any, segs []*attribute) {
	name := segs[0].Name
	if len(segs) == 1 {
		delete(d, name)
		return
	}
	switch v := d[name].(type) {
	case map[string]any:
		deletePath(v, segs[1:])
	case []any:
		for _, e := range v {
			if m, ok := e.(map[string]any); ok {
				deletePath(m, segs[1:])
			}
		}
	}
}
