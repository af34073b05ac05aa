package sts

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"encoding/xml"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"text/template"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/identity/saml"
	"github.com/gatehouse-dev/gatehouse/internal/sigv4"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/store/sqlite"
	"github.com/gatehouse-dev/gatehouse/internal/sts/credentials"
)

// The test world: one account, one SAML IdP, one OIDC IdP (on loopback),
// three roles.
const (
	testAccount = "123456789012"
	testACS     = "https://gatehouse.example.test/saml/acs"
	testIdPID   = "https://idp.example.test/saml/metadata"
	testClient  = "gatehouse-cli"
	alice       = "alice@example.test" // in the directory
	bob         = "bob@example.test"   // federated only
)

var (
	analystARN  = "arn:aws:iam::" + testAccount + ":role/Analyst"
	auditorARN  = "arn:aws:iam::" + testAccount + ":role/Auditor"
	orphanARN   = "arn:aws:iam::" + testAccount + ":role/Orphan"
	samlProvARN = "arn:aws:iam::" + testAccount + ":saml-provider/CorpIdP"
)

var testMasterKey = bytes.Repeat([]byte{0x5a}, 32)

// requireTool returns the path of an external program. Without it the test
// is skipped, or fails when CI=true (the lead's .ci/run installs them).
func requireTool(t testing.TB, path, pkg string) string {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s not found; it is required in CI (Debian package %s)", path, pkg)
		}
		t.Skipf("%s not installed (apt-get install %s); set CI=true to make this a failure", path, pkg)
	}
	return path
}

type world struct {
	t        testing.TB
	st       store.Store
	audit    *audit.Log
	auditDir string
	svc      *Service
	denials  *audit.Aggregator
	srv      *httptest.Server
	url      string // <server>/sts
	idp      *testIdP
	oidc     *testOIDC
	oidcARN  string
	aliceID  string
	opts     Options
	clock    *testClock
}

// testClock is the world's clock: the real time plus an offset that a test
// moves forward (advance) to make caches lapse without waiting for the
// wall clock. Safe for concurrent use.
type testClock struct{ offset atomic.Int64 }

// Now returns the real time plus the offset.
func (c *testClock) Now() time.Time { return time.Now().Add(time.Duration(c.offset.Load())) }

// advance moves the clock forward by d, past any cache entry at most d old.
func (w *world) advance(d time.Duration) { w.clock.offset.Add(int64(d)) }

// newWorld starts a real server on loopback with the real SQLite store,
// audit log and keyring in t.TempDir().
func newWorld(t testing.TB) *world {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "gatehouse.db"))
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	w := &world{t: t, st: st, auditDir: filepath.Join(dir, "audit"), clock: &testClock{}}
	w.audit, err = audit.Open(audit.Options{Dir: w.auditDir, Mode: audit.ModeSync, MasterKey: testMasterKey})
	require.NoError(t, err)
	t.Cleanup(func() { w.audit.Close() })
	kr, err := credentials.LoadOrCreateKeyring(ctx, st, testMasterKey, nil)
	require.NoError(t, err)
	rev, err := credentials.NewRevoker(st, credentials.RevokerOptions{Clock: w.clock.Now})
	require.NoError(t, err)
	ver, err := credentials.NewVerifier(kr, rev)
	require.NoError(t, err)

	w.idp = newTestIdP(t)
	// Both providers let unlinked identities through as federated sessions
	// of their own; alice's SAML NameID is linked to the directory's alice.
	corp := &store.SAMLProvider{Name: "CorpIdP", MetadataXML: w.idp.metadata(), EntityID: testIdPID,
		Binding: store.Binding{Unlinked: store.UnlinkedFederated}}
	require.NoError(t, st.CreateSAMLProvider(ctx, corp))
	w.oidc = newTestOIDC(t)
	op := &store.OIDCProvider{IssuerURL: w.oidc.issuer, Audiences: []string{testClient},
		Binding: store.Binding{Unlinked: store.UnlinkedFederated}}
	require.NoError(t, st.CreateOIDCProvider(ctx, op))
	w.oidcARN = op.ARN(testAccount)
	oidcKey := store.OIDCIssuerKey(w.oidc.issuer)

	u := &store.User{UserName: alice, Active: true}
	require.NoError(t, st.CreateUser(ctx, u))
	w.aliceID = u.ID
	require.NoError(t, st.CreateFederatedLink(ctx, &store.FederatedLink{ProviderID: corp.ID, Subject: alice,
		UserID: u.ID, Source: store.LinkSourceAdmin}))

	analystTrust := fmt.Sprintf(`{"Version":"2012-10-17","Statement":[
	  {"Effect":"Allow","Principal":{"Federated":%q},"Action":["sts:AssumeRoleWithSAML","sts:TagSession"],
	   "Condition":{"StringEquals":{"SAML:aud":%q}}},
	  {"Effect":"Allow","Principal":{"Federated":%q},"Action":"sts:AssumeRoleWithWebIdentity",
	   "Condition":{"StringEquals":{%q:%q}}}]}`, samlProvARN, testACS, w.oidcARN, oidcKey+":aud", testClient)
	require.NoError(t, st.CreateRole(ctx, &store.Role{
		Name: "Analyst", TrustPolicy: analystTrust, MaxSessionDuration: 7200,
		PermissionPolicies: []store.NamedPolicy{{Name: "data", Document: `{"Version":"2012-10-17","Statement":[
		  {"Effect":"Allow","Action":["s3:GetObject","s3:PutObject"],"Resource":"arn:aws:s3:::data/*"},
		  {"Effect":"Allow","Action":"sts:AssumeRole","Resource":"` + auditorARN + `"}]}`}},
	}))
	require.NoError(t, st.CreateRole(ctx, &store.Role{
		Name: "Auditor", MaxSessionDuration: 43200,
		TrustPolicy: `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"` + analystARN + `"},"Action":"sts:AssumeRole"}]}`,
		PermissionPolicies: []store.NamedPolicy{{Name: "audit", Document: `{"Version":"2012-10-17","Statement":[
		  {"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::audit/*"},
		  {"Effect":"Allow","Action":"sts:DecodeAuthorizationMessage","Resource":"*"}]}`}},
	}))
	require.NoError(t, st.CreateRole(ctx, &store.Role{
		Name: "Orphan",
		TrustPolicy: `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::` +
			testAccount + `:saml-provider/OtherIdP"},"Action":"sts:AssumeRoleWithSAML"}]}`,
	}))

	w.denials, err = audit.NewAggregator(audit.AggregatorOptions{Emitter: w.audit, SummaryCode: audit.CodeSTSDeniedAggregated})
	require.NoError(t, err)
	w.opts = Options{
		Store: st, Audit: w.audit, Denials: w.denials,
		Issuer: credentials.NewIssuer(kr, credentials.IssuerOptions{}), Verifier: ver,
		AccountID: testAccount, ACSURL: testACS, AuthzMessages: testAuthzCodec(t), Clock: w.clock.Now,
	}
	w.svc, err = New(w.opts)
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.Handle("/sts", http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) { w.svc.ServeHTTP(rw, r) }))
	w.srv = httptest.NewServer(mux)
	t.Cleanup(w.srv.Close)
	w.url = w.srv.URL + "/sts"
	return w
}

// post sends a Query call and returns the response and its body.
func (w *world) post(form url.Values, accept string) (*http.Response, string) {
	w.t.Helper()
	if form.Get("Version") == "" {
		form.Set("Version", APIVersion)
	}
	req, err := http.NewRequest(http.MethodPost, w.url, strings.NewReader(form.Encode()))
	require.NoError(w.t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(w.t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(w.t, err)
	return resp, string(b)
}

// errorCode parses an AWS ErrorResponse document.
func errorCode(t testing.TB, body string) (code, message string) {
	t.Helper()
	var e xmlErrorResponse
	require.NoError(t, xml.Unmarshal([]byte(body), &e), body)
	require.Equal(t, "Sender", e.Error.Type, body)
	require.NotEmpty(t, e.RequestID)
	return e.Error.Code, e.Error.Message
}

// samlForm is the AssumeRoleWithSAML form for an assertion.
func samlForm(role, provider, assertion string) url.Values {
	return url.Values{"Action": {ActionAssumeRoleWithSAML}, "RoleArn": {role}, "PrincipalArn": {provider}, "SAMLAssertion": {assertion}}
}

// ---- SAML IdP: assertions signed by xmlsec1, as a real IdP signs them ----

type testIdP struct {
	key  *rsa.PrivateKey
	cert *x509.Certificate
	dir  string
}

var (
	idpOnce sync.Once
	idpKey  *rsa.PrivateKey
)

func newTestIdP(t testing.TB) *testIdP {
	t.Helper()
	return newTestIdPFrom(t, time.Now().Add(-24*time.Hour))
}

// newTestIdPFrom is newTestIdP with a certificate valid from notBefore.
func newTestIdPFrom(t testing.TB, notBefore time.Time) *testIdP {
	t.Helper()
	idpOnce.Do(func() {
		var err error
		idpKey, err = rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
	})
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(now.UnixNano()),
		Subject:      pkix.Name{CommonName: "gatehouse sts test IdP"},
		NotBefore:    notBefore, NotAfter: now.Add(365 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &idpKey.PublicKey, idpKey)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return &testIdP{key: idpKey, cert: cert, dir: t.TempDir()}
}

func (p *testIdP) metadata() string {
	return `<?xml version="1.0"?>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="` + testIdPID + `">
  <md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <md:KeyDescriptor use="signing"><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:X509Data><ds:X509Certificate>` +
		base64.StdEncoding.EncodeToString(p.cert.Raw) + `</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>
    <md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp.example.test/sso"/>
  </md:IDPSSODescriptor>
</md:EntityDescriptor>`
}

type sigParams struct{ ID, SigAlg, DigestAlg string }

type attrParam struct {
	Name   string
	Values []string
}

type respParams struct {
	ResponseID, AssertionID                string
	IssueInstant, NotBefore, NotOnOrAfter  string
	Issuer, Destination, Recipient, Status string
	InResponseTo, NameID                   string
	Audiences                              []string
	Attributes                             []attrParam
	ResponseSig, AssertionSig              *sigParams
	unsigned                               bool
}

func randomID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return "_" + hex.EncodeToString(b)
}

// assertionParams is a valid response for alice granting Analyst and Orphan.
func assertionParams() respParams {
	now := time.Now().UTC()
	return respParams{
		ResponseID: randomID(), AssertionID: randomID(),
		IssueInstant: now.Add(-30 * time.Second).Format(time.RFC3339),
		NotBefore:    now.Add(-time.Minute).Format(time.RFC3339),
		NotOnOrAfter: now.Add(5 * time.Minute).Format(time.RFC3339),
		Issuer:       testIdPID, Destination: testACS, Recipient: testACS,
		Status:    "urn:oasis:names:tc:SAML:2.0:status:Success",
		NameID:    alice,
		Audiences: []string{saml.DefaultEntityID},
		Attributes: []attrParam{
			{saml.AttrRole, []string{analystARN + "," + samlProvARN, samlProvARN + "," + orphanARN}},
			{saml.AttrRoleSessionName, []string{alice}},
			{saml.AttrSessionDuration, []string{"28800"}},
			{saml.AttrPrincipalTagPrefix + "Department", []string{"Finance"}},
			{"groups", []string{"analysts"}},
		},
	}
}

var respTemplate = template.Must(template.ParseFiles(filepath.Join("testdata", "response.xml.tmpl")))

// sign renders p and signs the assertion with xmlsec1; it returns the
// base64 SAMLResponse value.
func (p *testIdP) sign(t testing.TB, rp respParams) string {
	t.Helper()
	if !rp.unsigned {
		rp.AssertionSig = &sigParams{rp.AssertionID, "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256", "http://www.w3.org/2001/04/xmlenc#sha256"}
	}
	var b bytes.Buffer
	require.NoError(t, respTemplate.ExecuteTemplate(&b, "response.xml.tmpl", rp))
	if rp.unsigned {
		return base64.StdEncoding.EncodeToString(b.Bytes())
	}
	bin := requireTool(t, "/usr/bin/xmlsec1", "xmlsec1")
	dir, err := os.MkdirTemp(p.dir, "sign")
	require.NoError(t, err)
	keyPath, certPath := filepath.Join(dir, "key.pem"), filepath.Join(dir, "cert.pem")
	require.NoError(t, os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(p.key)}), 0o600))
	require.NoError(t, os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.cert.Raw}), 0o600))
	in, out := filepath.Join(dir, "in.xml"), filepath.Join(dir, "out.xml")
	require.NoError(t, os.WriteFile(in, b.Bytes(), 0o600))
	cmd := exec.Command(bin, "--sign",
		"--privkey-pem", keyPath+","+certPath,
		"--id-attr:ID", "urn:oasis:names:tc:SAML:2.0:assertion:Assertion",
		"--node-xpath", "/*[local-name()='Response']/*[local-name()='Assertion']/*[local-name()='Signature']",
		"--output", out, in)
	msg, err := cmd.CombinedOutput()
	require.NoError(t, err, "xmlsec1 --sign: %s", msg)
	signed, err := os.ReadFile(out)
	require.NoError(t, err)
	return base64.StdEncoding.EncodeToString(signed)
}

// ---- OIDC IdP: discovery + JWKS on loopback, RS256 tokens via go-jose ----

type testOIDC struct {
	srv    *httptest.Server
	issuer string
	key    *rsa.PrivateKey
}

func newTestOIDC(t testing.TB) *testOIDC {
	t.Helper()
	o := &testOIDC{key: idpKeyOrNew(t)}
	mux := http.NewServeMux()
	o.srv = httptest.NewServer(mux)
	t.Cleanup(o.srv.Close)
	o.issuer = o.srv.URL + "/realms/corp"
	mux.HandleFunc("/realms/corp/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer": o.issuer, "jwks_uri": o.issuer + "/keys",
			"authorization_endpoint": o.issuer + "/auth", "token_endpoint": o.issuer + "/token",
			"id_token_signing_alg_values_supported": []string{"RS256"},
		})
	})
	mux.HandleFunc("/realms/corp/keys", func(w http.ResponseWriter, r *http.Request) {
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
			{Key: &o.key.PublicKey, KeyID: "k1", Algorithm: "RS256", Use: "sig"},
		}})
	})
	return o
}

func idpKeyOrNew(t testing.TB) *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	return k
}

// token signs claims (defaults filled in) with RS256.
func (o *testOIDC) token(t testing.TB, over map[string]any) string {
	t.Helper()
	now := time.Now()
	c := map[string]any{
		"iss": o.issuer, "sub": "u-bob-123", "aud": testClient,
		"iat": now.Add(-10 * time.Second).Unix(), "exp": now.Add(10 * time.Minute).Unix(),
		"preferred_username": bob, "groups": []string{"analysts"},
	}
	for k, v := range over {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	payload, err := json.Marshal(c)
	require.NoError(t, err)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: o.key, KeyID: "k1"}},
		(&jose.SignerOptions{}).WithType("JWT"))
	require.NoError(t, err)
	jws, err := signer.Sign(payload)
	require.NoError(t, err)
	s, err := jws.CompactSerialize()
	require.NoError(t, err)
	return s
}

// refusalsRecorded flushes the denial aggregator and returns how many STS
// refusals the audit log holds: each recorded on its own (GH4001W) or
// counted in a summary (GH4002W).
func (w *world) refusalsRecorded(t testing.TB) int {
	t.Helper()
	require.NoError(t, w.denials.Flush(context.Background(), true))
	n := 0
	for _, ev := range w.auditEvents(t) {
		switch ev.Code {
		case audit.CodeSTSDenied:
			n++
		case audit.CodeSTSDeniedAggregated:
			var agg struct{ Count int }
			raw, err := json.Marshal(ev.Details["aggregate"])
			require.NoError(t, err)
			require.NoError(t, json.Unmarshal(raw, &agg))
			n += agg.Count
		}
	}
	return n
}

// auditEvents returns the STS events recorded so far.
func (w *world) auditEvents(t testing.TB) []audit.Event {
	t.Helper()
	var out []audit.Event
	for rec, err := range audit.Search(w.auditDir, audit.Query{Action: "sts.*"}) {
		require.NoError(t, err)
		out = append(out, *rec.Event)
	}
	return out
}

func claimsOf(t testing.TB, c sigv4.Credentials) *credentials.Claims {
	t.Helper()
	cl, ok := c.Principal.(*credentials.Claims)
	require.True(t, ok)
	return cl
}
