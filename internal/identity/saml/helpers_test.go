package saml

import (
	"bytes"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"text/template"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/testcorpus"
)

// Fixed test world.
var (
	t0        = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	testIdPID = "https://idp.example.test/saml/metadata"
	testACS   = "https://gatehouse.example.test/saml/acs"
)

const (
	algRSASHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
	algRSASHA1   = "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
	algSHA256    = "http://www.w3.org/2001/04/xmlenc#sha256"
	algSHA1      = "http://www.w3.org/2000/09/xmldsig#sha1"

	roleAnalyst = "arn:aws:iam::123456789012:role/Analyst"
	roleAdmin   = "arn:aws:iam::123456789012:role/ops/Admin"
	providerARN = "arn:aws:iam::123456789012:saml-provider/ExampleIdP"
)

// corpusRoot is the saml corpus (see internal/testcorpus).
func corpusRoot(t testing.TB) string {
	t.Helper()
	return testcorpus.Dir(t, "saml", "gosaml2/INDEX.md")
}

// requireXmlsec1 returns the xmlsec1 path. Without it the test is skipped,
// or fails when CI=true: the xmlsec1-signed vectors are mandatory in CI.
func requireXmlsec1(t testing.TB) string {
	t.Helper()
	p, err := lookXmlsec()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("xmlsec1 not found; it is required in CI (Debian package xmlsec1)")
		}
		t.Skip("xmlsec1 not installed (apt-get install xmlsec1); set CI=true to make this a failure")
	}
	return p
}

// keyPair is a throwaway IdP signing key and self-signed certificate.
type keyPair struct {
	key  *rsa.PrivateKey
	cert *x509.Certificate
}

var (
	keyMu    sync.Mutex
	keyCache = map[string]*keyPair{}
)

// testKey returns a cached key pair by name. The certificate is valid from
// notBefore to notAfter (defaults: a year around t0).
func testKey(t testing.TB, name string, bits int, notBefore, notAfter time.Time) *keyPair {
	t.Helper()
	keyMu.Lock()
	defer keyMu.Unlock()
	if kp, ok := keyCache[name]; ok {
		return kp
	}
	if notBefore.IsZero() {
		notBefore, notAfter = t0.AddDate(-1, 0, 0), t0.AddDate(1, 0, 0)
	}
	var key *rsa.PrivateKey
	if base, ok := keyCache["key"+itoa(bits)]; ok {
		key = base.key
	} else {
		var err error
		key, err = rsa.GenerateKey(rand.Reader, bits)
		if err != nil {
			t.Fatal(err)
		}
		keyCache["key"+itoa(bits)] = &keyPair{key: key}
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "gatehouse test IdP " + name},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	kp := &keyPair{key: key, cert: cert}
	keyCache[name] = kp
	return kp
}

func itoa(n int) string { return big.NewInt(int64(n)).String() }

// mainKey is the registered IdP key; otherKey an unregistered one.
func mainKey(t testing.TB) *keyPair  { return testKey(t, "main", 2048, time.Time{}, time.Time{}) }
func otherKey(t testing.TB) *keyPair { return testKey(t, "other", 3072, time.Time{}, time.Time{}) }

// writePEM writes the key pair to dir and returns the key and cert paths.
func (kp *keyPair) writePEM(t testing.TB, dir string) (string, string) {
	t.Helper()
	keyPath, certPath := filepath.Join(dir, "key.pem"), filepath.Join(dir, "cert.pem")
	kb := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(kp.key)})
	cb := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: kp.cert.Raw})
	if err := os.WriteFile(keyPath, kb, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certPath, cb, 0o600); err != nil {
		t.Fatal(err)
	}
	return keyPath, certPath
}

type sigParams struct {
	ID, SigAlg, DigestAlg string
}

type attrParam struct {
	Name   string
	Values []string
}

// respParams fills testdata/response.xml.tmpl. Values are inserted raw.
type respParams struct {
	ResponseID, AssertionID                string
	IssueInstant, NotBefore, NotOnOrAfter  string
	Issuer, Destination, Recipient, Status string
	InResponseTo, NameID                   string
	Audiences                              []string
	Attributes                             []attrParam
	ResponseSig, AssertionSig              *sigParams
	signResponse, signAssertion            bool
	sigAlg, digestAlg                      string
}

func defaultParams() respParams {
	return respParams{
		ResponseID:   "_resp-5c1d0e",
		AssertionID:  "_assert-9b2e7f",
		IssueInstant: t0.Add(-30 * time.Second).Format(time.RFC3339),
		NotBefore:    t0.Add(-time.Minute).Format(time.RFC3339),
		NotOnOrAfter: t0.Add(5 * time.Minute).Format(time.RFC3339),
		Issuer:       testIdPID,
		Destination:  testACS,
		Recipient:    testACS,
		Status:       "urn:oasis:names:tc:SAML:2.0:status:Success",
		NameID:       "alice@example.test",
		Audiences:    []string{DefaultEntityID},
		Attributes: []attrParam{
			{AttrRole, []string{roleAnalyst + "," + providerARN, providerARN + "," + roleAdmin}},
			{AttrRoleSessionName, []string{"alice@example.test"}},
			{AttrSessionDuration, []string{"3600"}},
			{AttrSourceIdentity, []string{"alice"}},
			{AttrPrincipalTagPrefix + "Department", []string{"Finance"}},
			{"groups", []string{"analysts", "finance"}},
		},
		signAssertion: true,
		sigAlg:        algRSASHA256,
		digestAlg:     algSHA256,
	}
}

var respTemplate = template.Must(template.ParseFiles(filepath.Join("testdata", "response.xml.tmpl")))

// render produces the unsigned response (with signature templates).
func render(t testing.TB, p respParams) []byte {
	t.Helper()
	if p.signResponse {
		p.ResponseSig = &sigParams{p.ResponseID, p.sigAlg, p.digestAlg}
	}
	if p.signAssertion {
		p.AssertionSig = &sigParams{p.AssertionID, p.sigAlg, p.digestAlg}
	}
	var b bytes.Buffer
	if err := respTemplate.ExecuteTemplate(&b, "response.xml.tmpl", p); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// xmlsecSign signs every signature template in doc with xmlsec1, innermost
// (Assertion) first, the way an IdP does.
func xmlsecSign(t testing.TB, doc []byte, kp *keyPair, p respParams) []byte {
	t.Helper()
	bin := requireXmlsec1(t)
	dir := t.TempDir()
	if strings.ContainsRune(dir, ',') {
		t.Fatalf("xmlsec1 cannot take a key path with a comma: %s (rename the test)", dir)
	}
	keyPath, certPath := kp.writePEM(t, dir)
	in := filepath.Join(dir, "in.xml")
	if err := os.WriteFile(in, doc, 0o600); err != nil {
		t.Fatal(err)
	}
	var xpaths []string
	if p.signAssertion {
		xpaths = append(xpaths, "/*[local-name()='Response']/*[local-name()='Assertion']/*[local-name()='Signature']")
	}
	if p.signResponse {
		xpaths = append(xpaths, "/*[local-name()='Response']/*[local-name()='Signature']")
	}
	for _, xpath := range xpaths {
		out := filepath.Join(dir, "out.xml")
		cmd := exec.Command(bin, "--sign",
			"--privkey-pem", keyPath+","+certPath,
			"--id-attr:ID", "urn:oasis:names:tc:SAML:2.0:assertion:Assertion",
			"--id-attr:ID", "urn:oasis:names:tc:SAML:2.0:protocol:Response",
			"--node-xpath", xpath,
			"--output", out, in)
		msg, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("xmlsec1 --sign (%s): %v\n%s", xpath, err, msg)
		}
		if err := os.Rename(out, in); err != nil {
			t.Fatal(err)
		}
	}
	signed, err := os.ReadFile(in)
	if err != nil {
		t.Fatal(err)
	}
	return signed
}

// signedResponse renders and signs a response with the main key.
func signedResponse(t testing.TB, p respParams) []byte {
	t.Helper()
	return xmlsecSign(t, render(t, p), mainKey(t), p)
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// newTestSP returns an SP trusting the main key at the fixed clock.
func newTestSP(t testing.TB, now time.Time, idps ...*IdP) *SP {
	t.Helper()
	if len(idps) == 0 {
		idps = []*IdP{{EntityID: testIdPID, SigningCerts: []*x509.Certificate{mainKey(t).cert}}}
	}
	set := StaticIdPs{}
	for _, p := range idps {
		set[p.EntityID] = p
	}
	clock := func() time.Time { return now }
	return &SP{
		ACSURL: testACS,
		IdPs:   set,
		Clock:  clock,
		Replay: NewMemoryReplayCache(clock, 0),
	}
}

// wantError checks that err is an *Error with the given code and reason.
func wantError(t testing.TB, err error, code, reason string) *Error {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error = %v (%T), want *saml.Error %s/%s", err, err, code, reason)
	}
	if e.Code != code || (reason != "" && e.Reason != reason) {
		t.Fatalf("error = %s/%s (%s; fix: %s; lib: %v), want %s/%s", e.Code, e.Reason, e.Cause, e.Fix, e.Err, code, reason)
	}
	if e.Cause == "" || e.Fix == "" {
		t.Fatalf("error %s/%s lacks cause or fix: %+v", e.Code, e.Reason, e)
	}
	return e
}

func lookXmlsec() (string, error) { return exec.LookPath("xmlsec1") }
