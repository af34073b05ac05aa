package server

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/secrets"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/sts/credentials"
)

// liveServer is a gatehouse server wired as in production (server.New),
// serving on loopback listeners until the test ends.
type liveServer struct {
	t      *testing.T
	srv    *Server
	cfg    config.Config
	issuer *credentials.Issuer
	stop   func() // shuts the server down (flushing what it aggregated); idempotent
}

// startLive builds and serves a server with the local backend and bucket
// "lake"; overrides come after the defaults, so they win.
func startLive(t *testing.T, overrides ...config.Override) *liveServer {
	t.Helper()
	dir := t.TempDir()
	base := []config.Override{
		{Path: "data_dir", Value: dir},
		{Path: "api.listen", Value: "127.0.0.1:0"},
		{Path: "admin.listen", Value: "127.0.0.1:0"},
		{Path: "s3.listen", Value: "127.0.0.1:0"},
		{Path: "s3.buckets", Value: "lake"},
	}
	cfg, err := config.Load("", func(string) (string, bool) { return "", false }, append(base, overrides...))
	require.NoError(t, err)
	srv, err := New(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			require.NoError(t, <-done)
		})
	}
	t.Cleanup(stop)
	mk, err := secrets.LoadOrCreateMasterKey(filepath.Join(dir, "master.key"))
	require.NoError(t, err)
	kr, err := credentials.LoadOrCreateKeyring(context.Background(), srv.Store, mk, nil)
	require.NoError(t, err)
	return &liveServer{t: t, srv: srv, cfg: srv.cfg, issuer: credentials.NewIssuer(kr, credentials.IssuerOptions{}), stop: stop}
}

// role stores a role with one permission policy and returns its ARN.
func (l *liveServer) role(name, policy string) string {
	l.t.Helper()
	r := &store.Role{Name: name, TrustPolicy: `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"*"},"Action":"sts:AssumeRoleWithWebIdentity"}]}`,
		PermissionPolicies: []store.NamedPolicy{{Name: "p", Document: policy}}, MaxSessionDuration: 3600}
	require.NoError(l.t, l.srv.Store.CreateRole(context.Background(), r))
	return r.ARN(l.cfg.STS.AccountID)
}

// user stores an active directory user.
func (l *liveServer) user(name string) *store.User {
	l.t.Helper()
	u := &store.User{UserName: name, Active: true}
	require.NoError(l.t, l.srv.Store.CreateUser(context.Background(), u))
	return u
}

// creds issues temporary credentials for u on roleARN, as STS would.
func (l *liveServer) creds(u *store.User, roleARN string) credentials.Credentials {
	l.t.Helper()
	c, err := l.issuer.Issue(context.Background(), credentials.SessionRequest{
		PrincipalID: u.ID, UserName: u.UserName, SourceIdentity: u.UserName,
		RoleARN: roleARN, RoleSessionName: u.UserName, AssumedRoleID: "AROATEST:" + u.UserName,
	}, time.Hour)
	require.NoError(l.t, err)
	return c
}

// s3 is an aws-sdk-go-v2 client for the server's S3 listener (path style)
// over hc (nil: the default client).
func (l *liveServer) s3(c credentials.Credentials, hc *http.Client, opts ...func(*awss3.Options)) *awss3.Client {
	ac := aws.Credentials{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken}
	if hc == nil {
		hc = &http.Client{}
	}
	return awss3.New(awss3.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(l.srv.S3URL()), UsePathStyle: true, HTTPClient: hc,
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) { return ac, nil }),
	}, opts...)
}

// withHeader adds a header to every request the SDK sends (after signing,
// as a proxy would).
func withHeader(k, v string) func(*awss3.Options) {
	return func(o *awss3.Options) {
		o.HTTPClient = headerDoer{next: o.HTTPClient, k: k, v: v}
	}
}

type headerDoer struct {
	next awss3.HTTPClient
	k, v string
}

func (h headerDoer) Do(r *http.Request) (*http.Response, error) {
	r.Header.Add(h.k, h.v)
	return h.next.Do(r)
}

func putObj(c *awss3.Client, bucket, key, body string) error {
	_, err := c.PutObject(context.Background(), &awss3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key),
		Body: bytes.NewReader([]byte(body))})
	return err
}

func getObj(c *awss3.Client, bucket, key string) (string, error) {
	out, err := c.GetObject(context.Background(), &awss3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return "", err
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	return string(b), err
}

// errCode is the S3 error code of err ("" for nil).
func errCode(err error) string {
	if err == nil {
		return ""
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return err.Error()
}

// auditEvents returns the events of the server's audit log for action
// (a dotted prefix, as audit.Query.Action).
func (l *liveServer) auditEvents(action string) []audit.Event {
	l.t.Helper()
	var out []audit.Event
	for rec, err := range audit.Search(l.cfg.AuditDir(), audit.Query{Action: action}) {
		require.NoError(l.t, err)
		out = append(out, *rec.Event)
	}
	return out
}

// selfSignedCert writes a fresh self-signed ECDSA P-256 certificate for
// 127.0.0.1 and its key to dir, and returns the file paths and the PEM
// certificate (a CA bundle for clients).
func selfSignedCert(t *testing.T, dir, cn string) (certFile, keyFile string, certPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	serial, err := rand.Int(rand.Reader, big.NewInt(1<<62))
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, BasicConstraintsValid: true, IsCA: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	require.NoError(t, err)
	certPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	certFile, keyFile = filepath.Join(dir, cn+".crt"), filepath.Join(dir, cn+".key")
	require.NoError(t, os.WriteFile(certFile, certPEM, 0o600))
	require.NoError(t, os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}), 0o600))
	return certFile, keyFile, certPEM
}

// tlsClient is an HTTP client trusting only the PEM certificates given.
func tlsClient(t *testing.T, certPEM ...[]byte) *http.Client {
	t.Helper()
	pool := x509.NewCertPool()
	for _, c := range certPEM {
		require.True(t, pool.AppendCertsFromPEM(c))
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return &http.Client{Transport: tr}
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
