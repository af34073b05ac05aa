package server

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/identity"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/sts/credentials"
)

// secureOnlyPolicy allows object reads and writes in lake only over TLS.
const secureOnlyPolicy = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
 "Action":["s3:GetObject","s3:PutObject"],"Resource":"arn:aws:s3:::lake/*",
 "Condition":{"Bool":{"aws:SecureTransport":"true"}}}]}`

// TestS3ListenerTLSSecureTransport proves issue 11 finding 8 (TLS on the S3
// listener): with s3.tls.cert_file/key_file set, aws-sdk-go-v2 talks to the
// gateway over TLS 1.2+, aws:SecureTransport is true for those requests, and
// a policy that demands it allows them; over the plain listener the same
// policy denies. A TLS 1.1 client is refused at the handshake, and a
// renewed certificate serves new connections without a restart.
func TestS3ListenerTLSSecureTransport(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, certPEM := selfSignedCert(t, dir, "s3")
	secure := startLive(t, config.Override{Path: "s3.tls.cert_file", Value: certFile},
		config.Override{Path: "s3.tls.key_file", Value: keyFile})
	require.Regexp(t, `^https://127\.0\.0\.1:\d+$`, secure.srv.S3URL())
	u := secure.user("alice")
	c := secure.s3(secure.creds(u, secure.role("secure-only", secureOnlyPolicy)), tlsClient(t, certPEM))
	require.NoError(t, putObj(c, "lake", "a.txt", "over tls"))
	got, err := getObj(c, "lake", "a.txt")
	require.NoError(t, err)
	require.Equal(t, "over tls", got)

	// The aws cli, trusting only the listener's certificate (--ca-bundle).
	caFile := filepath.Join(dir, "ca.pem")
	require.NoError(t, os.WriteFile(caFile, certPEM, 0o600))
	out, err := awsCLI(t, secure.creds(u, secure.role("secure-only-cli", secureOnlyPolicy)),
		"--endpoint-url", secure.srv.S3URL(), "--ca-bundle", caFile, "s3", "cp", "s3://lake/a.txt", "-")
	require.NoError(t, err, out)
	require.Equal(t, "over tls", out)

	// The same policy over a plain listener: aws:SecureTransport is false.
	plain := startLive(t)
	require.Regexp(t, `^http://`, plain.srv.S3URL())
	pu := plain.user("alice")
	pc := plain.s3(plain.creds(pu, plain.role("secure-only", secureOnlyPolicy)), nil)
	require.Equal(t, "AccessDenied", errCode(putObj(pc, "lake", "a.txt", "in clear")))

	// TLS below 1.2 is refused.
	old := tlsClient(t, certPEM)
	old.Transport.(*http.Transport).TLSClientConfig.MinVersion = tls.VersionTLS10
	old.Transport.(*http.Transport).TLSClientConfig.MaxVersion = tls.VersionTLS11
	_, err = old.Get(secure.srv.S3URL() + "/")
	require.ErrorContains(t, err, "protocol version")

	// A renewed certificate (new key), moved into place as certificate
	// managers do, applies to new connections.
	newCert, newKey, newPEM := selfSignedCert(t, dir, "s3-renewed")
	require.NoError(t, os.Rename(newKey, keyFile))
	require.NoError(t, os.Rename(newCert, certFile))
	c2 := secure.s3(secure.creds(u, secure.role("secure-only-2", secureOnlyPolicy)), tlsClient(t, newPEM))
	got, err = getObj(c2, "lake", "a.txt")
	require.NoError(t, err, "the renewed certificate must be served")
	require.Equal(t, "over tls", got)
}

// TestS3TLSConfigValidatedAtStart: half a TLS setting, or a key that does
// not match its certificate, stops the server from starting (fail closed).
func TestS3TLSConfigValidatedAtStart(t *testing.T) {
	dir := t.TempDir()
	certFile, _, _ := selfSignedCert(t, dir, "a")
	_, otherKey, _ := selfSignedCert(t, dir, "b")
	_, err := config.Load("", func(string) (string, bool) { return "", false }, []config.Override{
		{Path: "data_dir", Value: dir}, {Path: "s3.tls.cert_file", Value: certFile},
	})
	require.ErrorContains(t, err, "s3.tls.key_file")

	cfg, err := config.Load("", func(string) (string, bool) { return "", false }, []config.Override{
		{Path: "data_dir", Value: dir}, {Path: "api.listen", Value: "127.0.0.1:0"},
		{Path: "admin.listen", Value: "127.0.0.1:0"}, {Path: "s3.listen", Value: "127.0.0.1:0"},
		{Path: "s3.tls.cert_file", Value: certFile}, {Path: "s3.tls.key_file", Value: otherKey},
	})
	require.NoError(t, err)
	_, err = New(t.Context(), cfg, discardLogger())
	require.ErrorContains(t, err, "s3.tls")
}

// sourceIPPolicy allows object access in lake only from 198.51.100.0/24.
const sourceIPPolicy = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
 "Action":["s3:GetObject","s3:PutObject"],"Resource":"arn:aws:s3:::lake/*",
 "Condition":{"IpAddress":{"aws:SourceIp":"198.51.100.0/24"}}}]}`

// TestTrustedProxiesSourceIP proves issue 11 finding 8 (trusted_proxies):
// X-Forwarded-For is believed for aws:SourceIp and the audit source address
// only when the TCP peer is a configured trusted proxy, and then only its
// right-most untrusted hop. The attack: a client that is not a trusted
// proxy sends "X-Forwarded-For: 198.51.100.7" to satisfy a policy
// conditioned on aws:SourceIp; so does a client behind the proxy that
// prepends that address to the chain.
func TestTrustedProxiesSourceIP(t *testing.T) {
	cases := []struct {
		name       string
		trusted    string
		xff        string
		wantCode   string
		wantSource string
	}{
		{name: "untrusted peer spoofs the header", trusted: "10.0.0.0/8", xff: "198.51.100.7",
			wantCode: "AccessDenied", wantSource: "127.0.0.1"},
		{name: "no proxies configured", xff: "198.51.100.7", wantCode: "AccessDenied", wantSource: "127.0.0.1"},
		{name: "trusted proxy names the client", trusted: "127.0.0.1", xff: "198.51.100.7", wantSource: "198.51.100.7"},
		{name: "client behind the proxy prepends an allowed hop", trusted: "127.0.0.0/8",
			xff: "198.51.100.7, 203.0.113.5", wantCode: "AccessDenied", wantSource: "203.0.113.5"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l := startLive(t, config.Override{Path: "trusted_proxies", Value: tc.trusted})
			u := l.user("alice")
			c := l.s3(l.creds(u, l.role("from-office", sourceIPPolicy)), nil, withHeader("X-Forwarded-For", tc.xff))
			require.Equal(t, tc.wantCode, errCode(putObj(c, "lake", "k", "v")))
			evs := l.auditEvents("s3.PutObject")
			require.NotEmpty(t, evs)
			require.Equal(t, tc.wantSource, evs[len(evs)-1].Actor.SourceIP)
		})
	}
}

// TestMeCredentialsCarriesClientAddress proves issue 11 finding 8 (the
// in-process STS call): /api/v1/me/credentials used to call STS as
// 127.0.0.1 whoever the user was. A role whose trust policy admits only
// callers from 127.0.0.3 is now assumable by a user connecting from that
// address (directly, or through a trusted proxy that says so), and STS
// records that address; a user from another address is refused, and so is
// one who merely claims 127.0.0.3 in X-Forwarded-For to an API listener
// that trusts no proxy. (The API listener is plain HTTP here: over TLS with
// a private CA, STS could not fetch gatehouse's own JWKS without that CA in
// the system pool.)
func TestMeCredentialsCarriesClientAddress(t *testing.T) {
	cases := []struct {
		name       string
		trusted    string // trusted_proxies
		src, xff   string // the client's own address; the header it sends
		wantStatus int
	}{
		{name: "direct from the allowed address", src: "127.0.0.3", wantStatus: http.StatusOK},
		{name: "direct from another address", src: "127.0.0.4", wantStatus: http.StatusForbidden},
		{name: "through a trusted proxy", trusted: "127.0.0.1", src: "127.0.0.1", xff: "127.0.0.3", wantStatus: http.StatusOK},
		{name: "spoofed header, no trusted proxy", src: "127.0.0.4", xff: "127.0.0.3", wantStatus: http.StatusForbidden},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l := startLive(t, config.Override{Path: "trusted_proxies", Value: tc.trusted})
			trust := fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":%q},
			 "Action":"sts:AssumeRoleWithWebIdentity","Condition":{"IpAddress":{"aws:SourceIp":"127.0.0.3/32"}}}]}`, l.srv.SSO.SelfProviderARN())
			require.NoError(t, l.srv.Store.CreateRole(context.Background(), &store.Role{Name: "office-only", TrustPolicy: trust,
				MaxSessionDuration: 3600, PermissionPolicies: []store.NamedPolicy{{Name: "p", Document: sourceIPPolicy}}}))
			u := l.user("alice")
			require.NoError(t, l.srv.Identity.SetPassword(context.Background(), u.ID, "alice-password-1"))
			token, _, err := l.srv.Identity.Login(context.Background(), "alice", "alice-password-1", identity.LoginMeta{})
			require.NoError(t, err)

			tr := http.DefaultTransport.(*http.Transport).Clone()
			tr.DialContext = (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(tc.src)}}).DialContext
			req, err := http.NewRequest(http.MethodPost, l.srv.APIURL()+"/api/v1/me/credentials", strings.NewReader(`{"role":"office-only"}`))
			require.NoError(t, err)
			req.Header.Set("Authorization", "Bearer "+token)
			req.Header.Set("Content-Type", "application/json")
			if tc.xff != "" {
				req.Header.Set("X-Forwarded-For", tc.xff)
			}
			res, err := (&http.Client{Transport: tr}).Do(req)
			require.NoError(t, err)
			defer res.Body.Close()
			body, err := io.ReadAll(res.Body)
			require.NoError(t, err)
			require.Equal(t, tc.wantStatus, res.StatusCode, "%s", body)
			if tc.wantStatus != http.StatusOK {
				return
			}
			require.Contains(t, string(body), "assumed-role/office-only/alice")
			evs := l.auditEvents("sts.assumerolewithwebidentity")
			require.NotEmpty(t, evs)
			require.Equal(t, "127.0.0.3", evs[len(evs)-1].Actor.SourceIP, "STS records the user's address, not the server's")
		})
	}
}

// awsCLI runs /usr/bin/aws with credentials c and a path-style config, and
// returns its combined output. The cli is required in CI.
func awsCLI(t *testing.T, c credentials.Credentials, args ...string) (string, error) {
	t.Helper()
	const bin = "/usr/bin/aws"
	if _, err := os.Stat(bin); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is required in CI: %v", bin, err)
		}
		t.Skipf("%s not installed", bin)
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config")
	require.NoError(t, os.WriteFile(cfg, []byte("[default]\nregion = us-east-1\ns3 =\n  addressing_style = path\n"), 0o600))
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = []string{"HOME=" + dir, "PATH=/usr/bin:/bin", "LANG=C.UTF-8",
		"AWS_ACCESS_KEY_ID=" + c.AccessKeyID, "AWS_SECRET_ACCESS_KEY=" + c.SecretAccessKey, "AWS_SESSION_TOKEN=" + c.SessionToken,
		"AWS_CONFIG_FILE=" + cfg, "AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(dir, "none"),
		"AWS_DEFAULT_REGION=us-east-1", "AWS_EC2_METADATA_DISABLED=true"}
	b, err := cmd.CombinedOutput()
	return string(b), err
}

// TestCertReloaderKeepsLastGoodCertificate: a half-written or mismatched
// pair never replaces the certificate in service; the next good pair does.
func TestCertReloaderKeepsLastGoodCertificate(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, _ := selfSignedCert(t, dir, "a")
	r, err := newCertReloader(certFile, keyFile, discardLogger())
	require.NoError(t, err)
	first, err := r.getCertificate(nil)
	require.NoError(t, err)

	garbage := filepath.Join(dir, "garbage")
	require.NoError(t, os.WriteFile(garbage, []byte("not a certificate"), 0o600))
	require.NoError(t, os.Rename(garbage, certFile))
	got, err := r.getCertificate(nil)
	require.NoError(t, err)
	require.Same(t, first, got, "a broken pair keeps the last good certificate")

	newCert, newKey, _ := selfSignedCert(t, dir, "b")
	require.NoError(t, os.Rename(newKey, keyFile))
	require.NoError(t, os.Rename(newCert, certFile))
	got, err = r.getCertificate(nil)
	require.NoError(t, err)
	require.NotSame(t, first, got)
}

// TestForwardedProtoSecureTransport is the X-Forwarded-Proto follow-up of
// issue 11 finding 8, against a server wired as in production: behind a
// TLS-terminating proxy that gatehouse trusts (trusted_proxies), the
// proxy's X-Forwarded-Proto (or Forwarded proto=) makes aws:SecureTransport
// true, on the S3 gateway and in STS trust policies (through
// /api/v1/me/credentials); the same header from a peer that is not a
// trusted proxy does not, nor does a client's "https" that its proxy
// followed with "http". The attack: a client on plain HTTP claims https to
// satisfy a policy that demands TLS.
func TestForwardedProtoSecureTransport(t *testing.T) {
	cases := []struct {
		name, trusted, header string // trusted_proxies, trusted_proxy_header
		set                   map[string]string
		wantAllowed           bool
	}{
		{name: "trusted proxy says https", trusted: "127.0.0.1",
			set: map[string]string{"X-Forwarded-For": "198.51.100.7", "X-Forwarded-Proto": "https"}, wantAllowed: true},
		{name: "trusted proxy, Forwarded proto=https", trusted: "127.0.0.1", header: "Forwarded",
			set: map[string]string{"Forwarded": "for=198.51.100.7;proto=https"}, wantAllowed: true},
		{name: "untrusted peer says https", trusted: "10.0.0.0/8",
			set: map[string]string{"X-Forwarded-For": "198.51.100.7", "X-Forwarded-Proto": "https"}},
		{name: "no proxies configured", set: map[string]string{"X-Forwarded-Proto": "https"}},
		{name: "client's https, then the proxy's http", trusted: "127.0.0.1",
			set: map[string]string{"X-Forwarded-For": "198.51.100.7", "X-Forwarded-Proto": "https, http"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ov := []config.Override{{Path: "trusted_proxies", Value: tc.trusted}}
			if tc.header != "" {
				ov = append(ov, config.Override{Path: "trusted_proxy_header", Value: tc.header})
			}
			l := startLive(t, ov...)
			u := l.user("alice")

			// S3: a permission policy that demands TLS.
			var opts []func(*awss3.Options)
			for k, v := range tc.set {
				opts = append(opts, withHeader(k, v))
			}
			c := l.s3(l.creds(u, l.role("secure-only", secureOnlyPolicy)), nil, opts...)
			err := putObj(c, "lake", "a.txt", "v")
			if tc.wantAllowed {
				require.NoError(t, err)
			} else {
				require.Equal(t, "AccessDenied", errCode(err))
			}

			// STS: a trust policy that demands TLS, assumed through the
			// in-process call behind /api/v1/me/credentials.
			trust := fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":%q},
			 "Action":"sts:AssumeRoleWithWebIdentity","Condition":{"Bool":{"aws:SecureTransport":"true"}}}]}`, l.srv.SSO.SelfProviderARN())
			require.NoError(t, l.srv.Store.CreateRole(context.Background(), &store.Role{Name: "tls-only", TrustPolicy: trust,
				MaxSessionDuration: 3600, PermissionPolicies: []store.NamedPolicy{{Name: "p", Document: secureOnlyPolicy}}}))
			require.NoError(t, l.srv.Identity.SetPassword(context.Background(), u.ID, "alice-password-1"))
			token, _, err := l.srv.Identity.Login(context.Background(), "alice", "alice-password-1", identity.LoginMeta{})
			require.NoError(t, err)
			req, err := http.NewRequest(http.MethodPost, l.srv.APIURL()+"/api/v1/me/credentials", strings.NewReader(`{"role":"tls-only"}`))
			require.NoError(t, err)
			req.Header.Set("Authorization", "Bearer "+token)
			req.Header.Set("Content-Type", "application/json")
			for k, v := range tc.set {
				req.Header.Set(k, v)
			}
			res, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			body, err := io.ReadAll(res.Body)
			res.Body.Close()
			require.NoError(t, err)
			if tc.wantAllowed {
				require.Equal(t, http.StatusOK, res.StatusCode, "%s", body)
				require.Contains(t, string(body), "assumed-role/tls-only/alice")
			} else {
				require.Equal(t, http.StatusForbidden, res.StatusCode, "%s", body)
			}
		})
	}
}

// TestForwardedProtoCookieAndOrigin proves issue 12 §3 (the REST API reads
// the transport from internal/clientip), against a server wired as in
// production: behind a TLS-terminating proxy that gatehouse trusts, the
// session cookie that /api/v1/login sets is Secure, and a cookie-
// authenticated state-changing request whose Origin is https://<host> is
// same-origin while http://<host> is not. The attack: a peer that is not a
// trusted proxy claims "X-Forwarded-Proto: https"; it must get neither a
// Secure cookie nor an https origin.
func TestForwardedProtoCookieAndOrigin(t *testing.T) {
	cases := []struct {
		name, trusted string // trusted_proxies
		wantSecure    bool   // the cookie's Secure flag, and the scheme of the same origin
	}{
		{name: "trusted proxy says https", trusted: "127.0.0.1", wantSecure: true},
		{name: "untrusted peer says https", trusted: "10.0.0.0/8"},
		{name: "no proxies configured"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			l := startLive(t, config.Override{Path: "trusted_proxies", Value: tc.trusted})
			u := l.user("alice")
			require.NoError(t, l.srv.Identity.SetPassword(context.Background(), u.ID, "alice-password-1"))
			forwarded := func(req *http.Request) *http.Response {
				t.Helper()
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("X-Forwarded-For", "198.51.100.7")
				req.Header.Set("X-Forwarded-Proto", "https")
				res, err := http.DefaultClient.Do(req)
				require.NoError(t, err)
				t.Cleanup(func() { res.Body.Close() })
				return res
			}

			req, err := http.NewRequest(http.MethodPost, l.srv.APIURL()+"/api/v1/login",
				strings.NewReader(`{"username":"alice","password":"alice-password-1"}`))
			require.NoError(t, err)
			res := forwarded(req)
			require.Equal(t, http.StatusOK, res.StatusCode)
			var cookie *http.Cookie
			for _, c := range res.Cookies() {
				if c.Name == identity.SessionCookie {
					cookie = c
				}
			}
			require.NotNil(t, cookie, "login sets the session cookie")
			require.Equal(t, tc.wantSecure, cookie.Secure, "Secure follows the client's transport")

			host := strings.TrimPrefix(l.srv.APIURL(), "http://")
			for _, scheme := range []string{"https", "http"} {
				req, err := http.NewRequest(http.MethodPost, l.srv.APIURL()+"/api/v1/tokens", strings.NewReader(`{"name":"t"}`))
				require.NoError(t, err)
				req.AddCookie(&http.Cookie{Name: identity.SessionCookie, Value: cookie.Value})
				req.Header.Set("Origin", scheme+"://"+host)
				res := forwarded(req)
				body, err := io.ReadAll(res.Body)
				require.NoError(t, err)
				if (scheme == "https") == tc.wantSecure {
					require.Equal(t, http.StatusCreated, res.StatusCode, "origin %s: %s", scheme, body)
				} else {
					require.Equal(t, http.StatusForbidden, res.StatusCode, "origin %s: %s", scheme, body)
					require.Contains(t, string(body), "cross-site request refused")
				}
			}
		})
	}
}

// TestNewClosesWhatItOpenedOnError pins New's cleanup on error (issue 12
// §3, the split of New): a server that fails at its last construction
// step (a TLS key that does not match its certificate) has closed its
// audit log, store and listeners again, so that a server on the same
// data directory and addresses starts (the audit log holds an exclusive
// lock while open).
func TestNewClosesWhatItOpenedOnError(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, _ := selfSignedCert(t, dir, "a")
	_, otherKey, _ := selfSignedCert(t, dir, "b")
	load := func(key string) config.Config {
		cfg, err := config.Load("", func(string) (string, bool) { return "", false }, []config.Override{
			{Path: "data_dir", Value: dir}, {Path: "api.listen", Value: "127.0.0.1:0"},
			{Path: "admin.listen", Value: "127.0.0.1:0"}, {Path: "s3.listen", Value: "127.0.0.1:0"},
			{Path: "s3.tls.cert_file", Value: certFile}, {Path: "s3.tls.key_file", Value: key},
		})
		require.NoError(t, err)
		return cfg
	}
	_, err := New(t.Context(), load(otherKey), discardLogger())
	require.ErrorContains(t, err, "s3.tls")
	srv, err := New(t.Context(), load(keyFile), discardLogger())
	require.NoError(t, err, "the failed New must have released the audit log and the store")
	require.NoError(t, srv.Close())
}
