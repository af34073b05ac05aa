package s3gw

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/decision"
	"github.com/gatehouse-dev/gatehouse/internal/iam"
	"github.com/gatehouse-dev/gatehouse/internal/s3gw/backend"
	"github.com/gatehouse-dev/gatehouse/internal/s3gw/backend/local"
	"github.com/gatehouse-dev/gatehouse/internal/sigv4"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/store/sqlite"
	"github.com/gatehouse-dev/gatehouse/internal/sts/credentials"
)

const testAccount = "123456789012"

// memAudit records events in memory and can be made to fail.
type memAudit struct {
	mu     sync.Mutex
	events []audit.Event
	fail   bool
	hook   func(audit.Event) // called first by Emit, outside the lock
}

// Emit records e. Like audit.Log.Emit, it refuses an event whose context is
// already done: a record emitted with a cancelled context is lost.
func (m *memAudit) Emit(ctx context.Context, e audit.Event) error {
	m.mu.Lock()
	hook := m.hook
	m.mu.Unlock()
	// Details go through JSON, as they do in the real log.
	b, err := json.Marshal(e.Details)
	if err != nil {
		return err
	}
	e.Details = nil
	if err := json.Unmarshal(b, &e.Details); err != nil {
		return err
	}
	if hook != nil {
		hook(e)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("audit: emit: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail {
		return errors.New("audit log unavailable")
	}
	m.events = append(m.events, e)
	return nil
}

func (m *memAudit) setFail(v bool) {
	m.mu.Lock()
	m.fail = v
	m.mu.Unlock()
}

func (m *memAudit) setHook(f func(audit.Event)) {
	m.mu.Lock()
	m.hook = f
	m.mu.Unlock()
}

func (m *memAudit) all() []audit.Event {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]audit.Event(nil), m.events...)
}

// find returns the events for an S3 operation.
func (m *memAudit) find(op string) []audit.Event {
	var out []audit.Event
	for _, e := range m.all() {
		if e.Action == "s3."+op {
			out = append(out, e)
		}
	}
	return out
}

// teeEmitter emits to each emitter in turn, stopping at the first error.
type teeEmitter []audit.Emitter

func (t teeEmitter) Emit(ctx context.Context, e audit.Event) error {
	for _, em := range t {
		if err := em.Emit(ctx, e); err != nil {
			return err
		}
	}
	return nil
}

// roleAuthorizer is a faithful stand-in for (*sts.Service).Authorize: the
// role's permission policies (∩ its permissions boundary) ∩ the session
// policy, with the principal keys set from the claims.
type roleAuthorizer struct {
	roles      map[string]*store.Role // by ARN
	entitled   map[string][]string    // role ARN -> user names entitled to act as it
	namesAsked atomic.Int64           // NamesKeyPrefix calls
}

// AuthorizeAs stands in for (*sts.Service).AuthorizeAs: acting as another
// role needs an entitlement, and is then evaluated as that role.
func (a *roleAuthorizer) AuthorizeAs(ctx context.Context, c *credentials.Claims, roleARN, action, resource string, reqCtx map[string][]string) (iam.Result, error) {
	if roleARN != "" && roleARN != c.RoleARN {
		if !slices.Contains(a.entitled[roleARN], c.UserName) {
			return iam.Result{Decision: iam.ImplicitDeny, Action: action, Resource: resource}, &decision.NotEntitledError{RoleARN: roleARN}
		}
		mc := *c
		_, name := splitRoleARN(roleARN)
		mc.RoleARN, mc.AssumedRoleID = roleARN, name+":"+c.RoleSessionName
		c = &mc
	}
	return a.Authorize(ctx, c, action, resource, reqCtx)
}

// NamesKeyPrefix stands in for (*sts.Service).NamesKeyPrefix (KeyNamer):
// the acted-as role's policies and the session policy, and counts the
// questions.
func (a *roleAuthorizer) NamesKeyPrefix(ctx context.Context, c *credentials.Claims, roleARN, prefix string) (bool, error) {
	a.namesAsked.Add(1)
	if roleARN == "" {
		roleARN = c.RoleARN
	}
	role, ok := a.roles[roleARN]
	if !ok {
		return true, fmt.Errorf("role %s no longer exists", roleARN)
	}
	docs := []string{c.SessionPolicy, role.PermissionsBoundary}
	for _, p := range role.PermissionPolicies {
		docs = append(docs, p.Document)
	}
	for _, d := range docs {
		if d == "" {
			continue
		}
		pp, err := iam.Parse([]byte(d))
		if err != nil {
			return true, err
		}
		cp, err := iam.Compile(iam.NamedPolicy{Policy: pp})
		if err != nil {
			return true, err
		}
		if cp.NamesKeyPrefix(prefix) {
			return true, nil
		}
	}
	return false, nil
}

func (a *roleAuthorizer) Authorize(ctx context.Context, c *credentials.Claims, action, resource string, reqCtx map[string][]string) (iam.Result, error) {
	deny := iam.Result{Decision: iam.ImplicitDeny, Action: action, Resource: resource}
	role, ok := a.roles[c.RoleARN]
	if !ok {
		return deny, fmt.Errorf("role %s no longer exists", c.RoleARN)
	}
	var pols []iam.NamedPolicy
	for _, p := range role.PermissionPolicies {
		pp, err := iam.Parse([]byte(p.Document))
		if err != nil {
			return deny, err
		}
		pols = append(pols, iam.NamedPolicy{Name: p.Name, Layer: iam.LayerIdentity, Policy: pp})
	}
	if role.PermissionsBoundary != "" {
		pp, err := iam.Parse([]byte(role.PermissionsBoundary))
		if err != nil {
			return deny, err
		}
		pols = append(pols, iam.NamedPolicy{Name: "boundary", Layer: iam.LayerBoundary, Policy: pp})
	}
	perms, err := iam.Compile(pols...)
	if err != nil {
		return deny, err
	}
	m := make(map[string][]string, len(reqCtx)+8)
	for k, v := range reqCtx {
		m[strings.ToLower(k)] = v
	}
	m["aws:userid"] = []string{c.AssumedRoleID}
	m["aws:principalarn"] = []string{c.RoleARN}
	m["gatehouse:username"] = []string{c.UserName}
	for k, v := range c.SessionTags {
		m["aws:principaltag/"+strings.ToLower(k)] = []string{v}
	}
	r := &iam.Request{Action: action, Resource: resource, Context: m}
	res := perms.Evaluate(r)
	if c.SessionPolicy == "" || res.Decision == iam.ExplicitDeny {
		return res, nil
	}
	sp, err := iam.Parse([]byte(c.SessionPolicy))
	if err != nil {
		return deny, err
	}
	sess, err := iam.Compile(iam.NamedPolicy{Name: "session policy", Layer: iam.LayerIdentity, Policy: sp})
	if err != nil {
		return deny, err
	}
	sr := sess.Evaluate(r)
	switch {
	case sr.Decision == iam.ExplicitDeny:
		sr.Layer = iam.LayerSession
		return sr, nil
	case sr.Decision == iam.Allowed:
		return res, nil
	case res.Decision != iam.Allowed:
		return res, nil
	}
	return iam.Result{Decision: iam.ImplicitDeny, Layer: iam.LayerSession, Action: action, Resource: resource}, nil
}

const homePolicy = `{"Version":"2012-10-17","Statement":[
 {"Sid":"ListHome","Effect":"Allow","Action":"s3:ListBucket","Resource":"arn:aws:s3:::data",
  "Condition":{"StringLike":{"s3:prefix":["","home/","home/${aws:username}/*"]}}},
 {"Sid":"HomeRW","Effect":"Allow","Action":["s3:GetObject","s3:PutObject","s3:DeleteObject","s3:AbortMultipartUpload","s3:ListMultipartUploadParts"],
  "Resource":"arn:aws:s3:::data/home/${aws:username}/*"},
 {"Sid":"ReadShared","Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::data/shared/*"},
 {"Sid":"Buckets","Effect":"Allow","Action":["s3:ListAllMyBuckets","s3:GetBucketLocation"],"Resource":"*"}]}`

const adminPolicy = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}`

const hrPolicy = `{"Version":"2012-10-17","Statement":[
 {"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::data/hr/*"},
 {"Effect":"Allow","Action":"s3:ListBucket","Resource":"arn:aws:s3:::data","Condition":{"StringLike":{"s3:prefix":"hr/*"}}}]}`

// abacPolicy governs objects by their tags (issue 13, tagging): objects are
// readable (and their tags readable) only while tagged
// classification=public, and a write must tag classification as public or
// internal, with no tag keys but classification and team.
const abacPolicy = `{"Version":"2012-10-17","Statement":[
 {"Sid":"ReadPublic","Effect":"Allow","Action":["s3:GetObject","s3:GetObjectTagging"],"Resource":"arn:aws:s3:::data/abac/*",
  "Condition":{"StringEquals":{"s3:ExistingObjectTag/classification":"public"}}},
 {"Sid":"WriteClassified","Effect":"Allow","Action":["s3:PutObject","s3:PutObjectTagging"],"Resource":"arn:aws:s3:::data/abac/*",
  "Condition":{"StringEquals":{"s3:RequestObjectTag/classification":["public","internal"]},
   "ForAllValues:StringEquals":{"s3:RequestObjectTagKeys":["classification","team"]}}}]}`

var roleARNs = struct{ analyst, admin, hr, abac string }{
	analyst: "arn:aws:iam::" + testAccount + ":role/analyst",
	admin:   "arn:aws:iam::" + testAccount + ":role/data-admin",
	hr:      "arn:aws:iam::" + testAccount + ":role/hr-reader",
	abac:    "arn:aws:iam::" + testAccount + ":role/abac",
}

type env struct {
	t       *testing.T
	srv     *httptest.Server
	gw      *Gateway
	audit   *memAudit
	backend *local.Backend
	issuer  *credentials.Issuer
	revoker *credentials.Revoker
	clock   func() time.Time
}

type envOptions struct {
	backend    backend.Backend // default: local with buckets "data" and "other"
	baseDomain string
	clock      func() time.Time
	tls        bool // serve HTTPS: the SDK then sends checksum trailers (aws-chunked)
	mounts     []Mount
	entitled   map[string][]string // role ARN -> user names entitled to it
	// emitter (optional) also receives every event, after memAudit: a
	// real audit.Log, to measure what requests cost the log.
	emitter audit.Emitter
	// maxHeaderBytes (optional) is the listener's and the gateway's header
	// limit, as in production (api.max_header_bytes); default 32/16 KiB.
	maxHeaderBytes int
}

func newEnv(t *testing.T, opts ...envOptions) *env {
	t.Helper()
	var o envOptions
	if len(opts) > 0 {
		o = opts[0]
	}
	if o.clock == nil {
		o.clock = time.Now
	}
	ctx := context.Background()
	dir := t.TempDir()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "gatehouse.db"))
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	master := make([]byte, 32)
	rand.Read(master)
	kr, err := credentials.LoadOrCreateKeyring(ctx, st, master, o.clock)
	require.NoError(t, err)
	rev, err := credentials.NewRevoker(st, credentials.RevokerOptions{TTL: 10 * time.Millisecond, Clock: o.clock})
	require.NoError(t, err)
	ver, err := credentials.NewVerifier(kr, rev)
	require.NoError(t, err)

	e := &env{t: t, audit: &memAudit{}, issuer: credentials.NewIssuer(kr, credentials.IssuerOptions{Clock: o.clock}), revoker: rev, clock: o.clock}
	be := o.backend
	if be == nil {
		lb, err := local.Open(filepath.Join(dir, "objects"))
		require.NoError(t, err)
		t.Cleanup(func() { lb.Close() })
		require.NoError(t, lb.CreateBucket(ctx, "data"))
		require.NoError(t, lb.CreateBucket(ctx, "other"))
		e.backend, be = lb, lb
	}
	sv, err := sigv4.New(sigv4.Config{Lookup: CredentialLookup{Verifier: ver, Clock: o.clock}, Service: "s3",
		Regions: []string{"us-east-1"}, Mode: sigv4.ModeS3, Clock: o.clock})
	require.NoError(t, err)
	authz := &roleAuthorizer{roles: map[string]*store.Role{
		roleARNs.analyst: {ID: "AROAANALYST", Name: "analyst", PermissionPolicies: []store.NamedPolicy{{Name: "home", Document: homePolicy}}},
		roleARNs.admin:   {ID: "AROAADMIN", Name: "data-admin", PermissionPolicies: []store.NamedPolicy{{Name: "all", Document: adminPolicy}}},
		roleARNs.hr:      {ID: "AROAHR", Name: "hr-reader", PermissionPolicies: []store.NamedPolicy{{Name: "hr", Document: hrPolicy}}},
		roleARNs.abac:    {ID: "AROAABAC", Name: "abac", PermissionPolicies: []store.NamedPolicy{{Name: "abac", Document: abacPolicy}}},
	}, entitled: o.entitled}
	var mounts MountResolver
	if o.mounts != nil {
		sm := &StaticMounts{}
		require.NoError(t, sm.Set(o.mounts))
		mounts = sm
	}
	var em audit.Emitter = e.audit
	if o.emitter != nil {
		em = teeEmitter{o.emitter, e.audit}
	}
	gwMax, srvMax := 16<<10, 32<<10
	if o.maxHeaderBytes != 0 {
		gwMax, srvMax = o.maxHeaderBytes, o.maxHeaderBytes
	}
	gw, err := New(Options{Backend: be, Verifier: sv, Authorizer: authz, Audit: em, BaseDomain: o.baseDomain,
		Clock: o.clock, MaxHeaderBytes: gwMax, Mounts: mounts})
	require.NoError(t, err)
	e.gw = gw
	e.srv = httptest.NewUnstartedServer(gw)
	e.srv.Config.MaxHeaderBytes = srvMax
	if o.tls {
		e.srv.StartTLS()
	} else {
		e.srv.Start()
	}
	t.Cleanup(e.srv.Close)
	return e
}

// creds issues temporary credentials for user on role.
func (e *env) creds(user, roleARN, sessionPolicy string) credentials.Credentials {
	e.t.Helper()
	_, roleName := splitRoleARN(roleARN)
	c, err := e.issuer.Issue(context.Background(), credentials.SessionRequest{
		PrincipalID: "u-" + user, UserName: user, SourceIdentity: user, RoleARN: roleARN,
		RoleSessionName: user, AssumedRoleID: "AROA" + strings.ToUpper(roleName) + ":" + user,
		SessionPolicy: sessionPolicy,
	}, time.Hour)
	require.NoError(e.t, err)
	return c
}

// client is an aws-sdk-go-v2 S3 client with its default settings
// (including checksum trailers on uploads), path style.
func (e *env) client(c credentials.Credentials, opts ...func(*awss3.Options)) *awss3.Client {
	creds := aws.Credentials{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken}
	return awss3.New(awss3.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(e.srv.URL),
		UsePathStyle: true,
		Credentials:  aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) { return creds, nil }),
		HTTPClient:   e.srv.Client(),
		// The defaults config.LoadDefaultConfig gives: checksums on every
		// upload that supports them, validated on download.
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenSupported,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenSupported,
	}, opts...)
}
