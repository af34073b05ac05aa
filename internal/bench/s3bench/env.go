// Package s3bench is the `gatehouse bench s3` scenario: aws-sdk-go-v2 with
// real SigV4 signing over loopback against
//
//   - versitygw: the S3 server itself (v1.8.0, posix backend, its own process);
//   - proxy: a plain httputil.ReverseProxy in front of it (the floor: one
//     extra HTTP hop and nothing else);
//   - gateway: the gatehouse S3 gateway in front of it, built like
//     internal/server/s3.go builds it: s3 backend → versitygw, SigV4 verified
//     against real temporary credentials (keyring + credentials.Verifier,
//     looked up by sts.Service), authorized by (*sts.Service).Authorize
//     from a role in a real SQLite store, audited to a real hash-chained
//     audit log at the default durability (write);
//   - gateway-auditfsync: the same gateway with its audit log at durability
//     fsync (group mode);
//   - gateway-noaudit: the same gateway with an audit emitter that discards
//     (diagnostic: the cost of audit on vs off).
//
// Every target runs in the same process (versitygw aside), interleaved in
// rounds, so machine drift hits all of them. See docs/benchmarks.md
// ("S3 gateway").
package s3bench

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/bench/stsstack"
	"github.com/gatehouse-dev/gatehouse/internal/s3gw"
	"github.com/gatehouse-dev/gatehouse/internal/s3gw/backend"
	s3backend "github.com/gatehouse-dev/gatehouse/internal/s3gw/backend/s3"
	"github.com/gatehouse-dev/gatehouse/internal/sigv4"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/store/sqlite"
	"github.com/gatehouse-dev/gatehouse/internal/sts"
	"github.com/gatehouse-dev/gatehouse/internal/sts/credentials"
)

// Target names one of the servers measured.
type Target string

const (
	Versitygw Target = "versitygw"
	Proxy     Target = "proxy"
	Gateway   Target = "gateway"
	// GatewayAuditFsync is the gateway with the audit log at durability
	// "fsync" (each request waits for its record's fsync); Gateway runs at
	// the default, "write".
	GatewayAuditFsync Target = "gateway-auditfsync"
	GatewayNoAudit    Target = "gateway-noaudit"
)

// Targets in report order.
var Targets = []Target{Versitygw, Proxy, Gateway, GatewayAuditFsync, GatewayNoAudit}

// smallOnly reports whether t runs only the 1 KiB scenario (it differs
// from the gateway only in its audit log).
func smallOnly(t Target) bool { return t == GatewayNoAudit || t == GatewayAuditFsync }

const (
	accountID = "000000000000"
	roleName  = "bench-s3"
	region    = "us-east-1"
)

// EnvOptions configure Setup.
type EnvOptions struct {
	// Endpoint of versitygw (default http://127.0.0.1:7070) and its root
	// credentials (default gatehouse-test / gatehouse-test-secret).
	Endpoint, AccessKeyID, SecretAccessKey string
	// Bucket created on versitygw for the run (default gatehouse-bench).
	Bucket string
	// Dir is where the scratch directory (SQLite store, audit log) is
	// created (default os.TempDir()); Close removes it.
	Dir string
	// StageUploads is passed to the s3 backend (see s3backend.Options).
	StageUploads bool
	// ClientConns sizes each SDK client's idle connection pool.
	ClientConns int
}

// Env is the running bench world. Close it.
type Env struct {
	URL      map[Target]string
	Bucket   string
	AuditDir string

	o       EnvOptions
	creds   map[Target]aws.Credentials
	stack   *stsstack.Stack
	st      *sqlite.Store
	log     *audit.Log
	logF    *audit.Log // durability "fsync"
	be      *s3backend.Backend
	servers []*httptest.Server
	proxyTr *http.Transport
}

// discard is the audit-off emitter.
type discard struct{}

func (discard) Emit(context.Context, audit.Event) error { return nil }

// Reachable reports whether an S3 endpoint answers on endpoint.
func Reachable(endpoint string) error {
	u, err := url.Parse(endpoint)
	if err != nil {
		return err
	}
	c, err := net.DialTimeout("tcp", u.Host, 2*time.Second)
	if err != nil {
		return err
	}
	return c.Close()
}

// Setup builds the world: bucket on versitygw, store, keyring, STS
// service, role, credentials, audit log, the proxy and both gateways.
func Setup(ctx context.Context, o EnvOptions) (_ *Env, err error) {
	if o.Endpoint == "" {
		o.Endpoint = "http://127.0.0.1:7070"
	}
	if o.AccessKeyID == "" {
		o.AccessKeyID, o.SecretAccessKey = "gatehouse-test", "gatehouse-test-secret"
	}
	if o.Bucket == "" {
		o.Bucket = "gatehouse-bench"
	}
	if o.ClientConns <= 0 {
		o.ClientConns = 64
	}
	e := &Env{o: o, URL: map[Target]string{}, creds: map[Target]aws.Credentials{}, Bucket: o.Bucket}
	defer func() {
		if err != nil {
			e.Close()
		}
	}()
	if err = Reachable(o.Endpoint); err != nil {
		return nil, fmt.Errorf("s3bench: versitygw at %s: %w (start it with bash .ci/versitygw.sh)", o.Endpoint, err)
	}
	root := aws.Credentials{AccessKeyID: o.AccessKeyID, SecretAccessKey: o.SecretAccessKey}
	e.URL[Versitygw], e.creds[Versitygw] = o.Endpoint, root

	// The backend: the gateway's s3 backend on versitygw.
	if e.be, err = s3backend.New(s3backend.Options{Endpoint: o.Endpoint, Region: region,
		AccessKeyID: o.AccessKeyID, SecretAccessKey: o.SecretAccessKey, StageUploads: o.StageUploads}); err != nil {
		return nil, err
	}
	if err = backend.EnsureBucket(ctx, e.be, o.Bucket); err != nil {
		return nil, fmt.Errorf("s3bench: create bucket: %w", err)
	}

	// The floor: a plain reverse proxy (the Host header is passed through,
	// so the client's signature verifies at versitygw).
	u, _ := url.Parse(o.Endpoint)
	rp := httputil.NewSingleHostReverseProxy(u)
	e.proxyTr = &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256, IdleConnTimeout: 90 * time.Second}
	rp.Transport = e.proxyTr
	rp.ErrorLog = nil
	e.URL[Proxy], e.creds[Proxy] = e.serve(rp), root

	// gatehouse: store, audit log, keyring, STS, role, credentials.
	if e.stack, err = stsstack.New(ctx, o.Dir, "gatehouse-bench-s3-"); err != nil {
		return nil, err
	}
	e.AuditDir, e.st, e.log = e.stack.AuditDir, e.stack.Store, e.stack.Audit
	if e.logF, err = audit.Open(audit.Options{Dir: e.AuditDir + "-fsync", Durability: audit.DurabilityFsync, MasterKey: e.stack.MasterKey}); err != nil {
		return nil, fmt.Errorf("s3bench: audit (fsync): %w", err)
	}
	issuer, ver := e.stack.Issuer, e.stack.Verifier
	role := &store.Role{
		Name: roleName, MaxSessionDuration: 3600,
		TrustPolicy: `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":` +
			`"arn:aws:iam::` + accountID + `:oidc-provider/bench.invalid"},"Action":"sts:AssumeRoleWithWebIdentity"}]}`,
		PermissionPolicies: []store.NamedPolicy{{Name: "bench", Document: fmt.Sprintf(`{"Version":"2012-10-17","Statement":[`+
			`{"Effect":"Allow","Action":["s3:ListBucket","s3:GetBucketLocation"],"Resource":"arn:aws:s3:::%[1]s"},`+
			`{"Effect":"Allow","Action":["s3:GetObject","s3:PutObject","s3:DeleteObject"],"Resource":"arn:aws:s3:::%[1]s/*"}]}`, o.Bucket)}},
	}
	if err = e.st.CreateRole(ctx, role); err != nil {
		return nil, fmt.Errorf("s3bench: role: %w", err)
	}
	svc, err := sts.New(sts.Options{Store: e.st, Audit: e.log, Issuer: issuer, Verifier: ver,
		AccountID: accountID, ACSURL: "https://gatehouse.bench.invalid/saml/acs", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return nil, err
	}
	// A federated end user (principal id fed-…), as web identity issues.
	c, err := issuer.Issue(ctx, credentials.SessionRequest{
		PrincipalID: "fed-bench", UserName: "bench@bench.example", SourceIdentity: "bench@bench.example",
		RoleARN: role.ARN(accountID), RoleSessionName: "bench", AssumedRoleID: "AROABENCH:bench",
	}, time.Hour)
	if err != nil {
		return nil, fmt.Errorf("s3bench: issue credentials: %w", err)
	}
	sess := aws.Credentials{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken}

	// The gateway, as internal/server/s3.go builds it.
	v, err := sigv4.New(sigv4.Config{Lookup: svc, Service: "s3", Regions: []string{region}, Mode: sigv4.ModeS3})
	if err != nil {
		return nil, err
	}
	for _, t := range []Target{Gateway, GatewayAuditFsync, GatewayNoAudit} {
		var em audit.Emitter = e.log
		switch t {
		case GatewayAuditFsync:
			em = e.logF
		case GatewayNoAudit:
			em = discard{}
		}
		gw, err := s3gw.New(s3gw.Options{Backend: e.be, Verifier: v, Authorizer: svc, Audit: em,
			Logger: slog.New(slog.DiscardHandler), Region: region, MaxHeaderBytes: 64 << 10})
		if err != nil {
			return nil, err
		}
		e.URL[t], e.creds[t] = e.serve(gw), sess
	}
	return e, nil
}

func (e *Env) serve(h http.Handler) string {
	s := httptest.NewUnstartedServer(h)
	s.Config.MaxHeaderBytes = 64 << 10
	s.Config.ReadHeaderTimeout = 10 * time.Second
	s.Config.ErrorLog = nil
	s.Start()
	e.servers = append(e.servers, s)
	return s.URL
}

// Close stops the servers, deletes the bench objects and removes the
// scratch directory.
func (e *Env) Close() error {
	for _, s := range e.servers {
		s.Close()
	}
	if e.proxyTr != nil {
		e.proxyTr.CloseIdleConnections()
	}
	var errs []error
	if e.be != nil {
		errs = append(errs, e.emptyBucket(context.Background()))
	}
	if e.logF != nil {
		errs = append(errs, e.logF.Close())
	}
	if e.stack != nil {
		errs = append(errs, e.stack.Close())
	}
	return errors.Join(errs...)
}

func (e *Env) emptyBucket(ctx context.Context) error {
	c, done := e.Client(Versitygw, 4)
	defer done()
	p := awss3.NewListObjectsV2Paginator(c, &awss3.ListObjectsV2Input{Bucket: aws.String(e.Bucket)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return err
		}
		for _, o := range page.Contents {
			if _, err := c.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: aws.String(e.Bucket), Key: o.Key}); err != nil {
				return err
			}
		}
	}
	return nil
}

// Client returns an aws-sdk-go-v2 S3 client for target with its own
// keep-alive pool sized for conns concurrent calls, real credentials (the
// root key for versitygw and the proxy, gatehouse temporary credentials for
// the gateways), path style, no retries, and checksums only when required
// (so the 1 KiB PUT is signed over its SHA-256 payload hash, as over plain
// HTTP the SDK does, and no side computes a CRC the others do not).
func (e *Env) Client(t Target, conns int) (*awss3.Client, func()) {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        conns + 4,
		MaxIdleConnsPerHost: conns + 4,
		IdleConnTimeout:     90 * time.Second,
	}
	creds := e.creds[t]
	c := awss3.New(awss3.Options{
		Region:                     region,
		BaseEndpoint:               aws.String(e.URL[t]),
		UsePathStyle:               true,
		HTTPClient:                 &http.Client{Transport: tr},
		Credentials:                aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) { return creds, nil }),
		Retryer:                    aws.NopRetryer{},
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
	})
	return c, tr.CloseIdleConnections
}

// gen is a seekable generator of size deterministic bytes: bodies are
// produced on the fly, never held in memory.
type gen struct {
	size, off int64
}

var pattern = func() []byte {
	b := make([]byte, 64<<10+13) // odd length: no 4 KiB-periodic content
	_, _ = rand.Read(b)
	return b
}()

func newGen(size int64) *gen { return &gen{size: size} }

func (g *gen) Read(p []byte) (int, error) {
	if g.off >= g.size {
		return 0, io.EOF
	}
	n := 0
	for n < len(p) && g.off < g.size {
		start := int(g.off % int64(len(pattern)))
		c := copy(p[n:], pattern[start:])
		if rem := g.size - g.off; int64(c) > rem {
			c = int(rem)
		}
		n += c
		g.off += int64(c)
	}
	return n, nil
}

func (g *gen) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += g.off
	case io.SeekEnd:
		offset += g.size
	}
	if offset < 0 {
		return 0, errors.New("s3bench: negative seek")
	}
	g.off = offset
	return offset, nil
}
