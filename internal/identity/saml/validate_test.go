package saml

import (
	"bytes"
	"compress/flate"
	"crypto/x509"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestValidateXmlsec1 runs responses signed by xmlsec1, as a real IdP signs
// them, through Validate.
func TestValidateXmlsec1(t *testing.T) {
	requireXmlsec1(t)
	skew := DefaultMaxSkew
	notOnOrAfter := t0.Add(5 * time.Minute)
	notBefore := t0.Add(-time.Minute)

	tests := []struct {
		name     string
		edit     func(p *respParams)
		key      func(t testing.TB) *keyPair // signing key; default mainKey
		after    func(doc []byte) []byte     // edit after signing
		now      time.Time
		sp       func(sp *SP)
		code     string // "" = accepted
		reason   string
		nameID   string // when accepted; default alice@example.test
		roleSess string // when accepted; default alice@example.test
	}{
		{name: "assertion signed rsa-sha256"},
		{name: "response signed rsa-sha256", edit: func(p *respParams) { p.signResponse, p.signAssertion = true, false }},
		{name: "response and assertion signed", edit: func(p *respParams) { p.signResponse = true }},
		{name: "no Destination (optional when present-checked)", edit: func(p *respParams) { p.Destination = "" }},
		{name: "within skew before IssueInstant and NotBefore", now: t0.Add(-30*time.Second - skew + time.Second)},
		{name: "within skew after NotOnOrAfter", now: notOnOrAfter.Add(skew - time.Second)},

		// Algorithm policy (DESIGN.md invariant 6).
		{name: "rsa-sha1 and sha1 digest", edit: func(p *respParams) { p.sigAlg, p.digestAlg = algRSASHA1, algSHA1 },
			code: CodeInvalidIdentityToken, reason: "algorithm"},
		{name: "rsa-sha256 with sha1 digest", edit: func(p *respParams) { p.digestAlg = algSHA1 },
			code: CodeInvalidIdentityToken, reason: "algorithm"},
		{name: "rsa-sha1 with sha256 digest", edit: func(p *respParams) { p.sigAlg = algRSASHA1 },
			code: CodeInvalidIdentityToken, reason: "algorithm"},
		{name: "response signed rsa-sha1", edit: func(p *respParams) {
			p.signResponse, p.signAssertion, p.sigAlg, p.digestAlg = true, false, algRSASHA1, algSHA1
		}, code: CodeInvalidIdentityToken, reason: "algorithm"},
		{name: "signed with an unregistered key", key: otherKey, code: CodeInvalidIdentityToken, reason: "untrusted-certificate"},
		{name: "signed with a 1024-bit key", key: func(t testing.TB) *keyPair { return testKey(t, "weak", 1024, time.Time{}, time.Time{}) },
			sp: func(sp *SP) {
				sp.IdPs = StaticIdPs{testIdPID: {EntityID: testIdPID, SigningCerts: []*x509.Certificate{testKey(t, "weak", 1024, time.Time{}, time.Time{}).cert}}}
			}, code: CodeInvalidIdentityToken, reason: "weak-key"},
		{name: "IdP certificate expired", key: expiredKey,
			sp: func(sp *SP) {
				sp.IdPs = StaticIdPs{testIdPID: {EntityID: testIdPID, SigningCerts: []*x509.Certificate{expiredKey(t).cert}}}
			}, code: CodeInvalidIdentityToken, reason: "certificate-validity"},
		{name: "unsigned", edit: func(p *respParams) { p.signAssertion = false }, code: CodeInvalidIdentityToken, reason: "unsigned"},

		// Time window.
		{name: "expired", now: notOnOrAfter.Add(skew), code: CodeInvalidIdentityToken, reason: "expired"},
		{name: "expired long ago", now: notOnOrAfter.Add(time.Hour), code: CodeInvalidIdentityToken, reason: "expired"},
		{name: "not yet valid", now: notBefore.Add(-skew - time.Second), code: CodeInvalidIdentityToken, reason: "not-yet-valid"},

		// Addressing.
		{name: "wrong audience", edit: func(p *respParams) { p.Audiences = []string{"https://other-sp.example.test"} },
			code: CodeInvalidIdentityToken, reason: "audience"},
		{name: "one of two audience restrictions misses us", edit: func(p *respParams) {
			p.Audiences = []string{DefaultEntityID, "https://other-sp.example.test"}
		}, code: CodeInvalidIdentityToken, reason: "audience"},
		{name: "no audience restriction", edit: func(p *respParams) { p.Audiences = nil },
			code: CodeInvalidIdentityToken, reason: "audience"},
		{name: "custom entity ID as audience", edit: func(p *respParams) { p.Audiences = []string{"https://gatehouse.example.test/saml"} },
			sp: func(sp *SP) { sp.EntityID = "https://gatehouse.example.test/saml" }},
		{name: "wrong recipient", edit: func(p *respParams) { p.Recipient = "https://evil.example.test/acs" },
			code: CodeInvalidIdentityToken, reason: "recipient"},
		{name: "wrong destination", edit: func(p *respParams) { p.Destination = "https://evil.example.test/acs" },
			code: CodeInvalidIdentityToken, reason: "destination"},
		{name: "unknown issuer", edit: func(p *respParams) { p.Issuer = "https://unknown-idp.example.test" },
			code: CodeInvalidIdentityToken, reason: "unknown-issuer"},
		{name: "IdP reports failure", edit: func(p *respParams) {
			p.signResponse, p.Status = true, "urn:oasis:names:tc:SAML:2.0:status:Responder"
		}, code: CodeAccessDenied, reason: "status"},

		// InResponseTo.
		{name: "SP-initiated with matching request", edit: func(p *respParams) { p.InResponseTo = "_req-1" },
			sp: func(sp *SP) { sp.RequireInResponseTo = func(id string) bool { return id == "_req-1" } }},
		{name: "SP-initiated with unknown request", edit: func(p *respParams) { p.InResponseTo = "_req-2" },
			sp:   func(sp *SP) { sp.RequireInResponseTo = func(id string) bool { return id == "_req-1" } },
			code: CodeInvalidIdentityToken, reason: "in-response-to"},
		{name: "SP-initiated required but unsolicited",
			sp:   func(sp *SP) { sp.RequireInResponseTo = func(string) bool { return true } },
			code: CodeInvalidIdentityToken, reason: "unsolicited"},

		// XML comment injection (CVE-2017-11427 class): the comment is added
		// after signing; c14n drops it, so the signature still verifies and
		// the whole text must be read.
		{name: "comment inside NameID", after: func(d []byte) []byte {
			return bytes.Replace(d, []byte(">alice@example.test</saml:NameID>"), []byte(">ali<!---->ce@example.test</saml:NameID>"), 1)
		}},
		{name: "comment inside RoleSessionName", after: func(d []byte) []byte {
			return bytes.Replace(d, []byte("<saml:AttributeValue>alice@example.test<"), []byte("<saml:AttributeValue>ali<!-- x -->ce@example.test<"), 1)
		}},
		{name: "comment splitting NameID to a prefix", edit: func(p *respParams) { p.NameID = "alice@example.test.evil.example" },
			after: func(d []byte) []byte {
				return bytes.Replace(d, []byte(">alice@example.test.evil.example<"), []byte(">alice@example.test<!---->.evil.example<"), 1)
			}, nameID: "alice@example.test.evil.example"},
		{name: "text changed after signing", after: func(d []byte) []byte {
			return bytes.Replace(d, []byte(">alice@example.test</saml:NameID>"), []byte(">mallory@example.test</saml:NameID>"), 1)
		}, code: CodeInvalidIdentityToken, reason: "signature"},

		// AWS attributes inside the signed assertion.
		{name: "role value with 3 parts", edit: func(p *respParams) {
			p.Attributes[0].Values = []string{roleAnalyst + "," + providerARN + "," + roleAdmin}
		}, code: CodeMalformedRoleAttribute, reason: "role-parts"},
		{name: "two role ARNs and no provider", edit: func(p *respParams) {
			p.Attributes[0].Values = []string{roleAnalyst + "," + roleAdmin}
		}, code: CodeMalformedRoleAttribute, reason: "role-arn"},
		{name: "no role when required", edit: func(p *respParams) { p.Attributes = p.Attributes[1:] },
			sp: func(sp *SP) { sp.RequireAWSRole = true }, code: CodeAccessDenied, reason: "no-role"},
		{name: "bad RoleSessionName", edit: func(p *respParams) { p.Attributes[1].Values = []string{"alice smith"} },
			code: CodeValidationError, reason: "role-session-name"},
		{name: "SessionDuration too long", edit: func(p *respParams) { p.Attributes[2].Values = []string{"86400"} },
			code: CodeValidationError, reason: "session-duration"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := defaultParams()
			if tc.edit != nil {
				tc.edit(&p)
			}
			key := mainKey
			if tc.key != nil {
				key = tc.key
			}
			doc := xmlsecSign(t, render(t, p), key(t), p)
			if tc.after != nil {
				edited := tc.after(doc)
				if bytes.Equal(edited, doc) {
					t.Fatal("after-signing edit did not apply")
				}
				doc = edited
			}
			now := t0
			if !tc.now.IsZero() {
				now = tc.now
			}
			sp := newTestSP(t, now)
			if tc.sp != nil {
				tc.sp(sp)
			}
			a, err := sp.Validate(b64(doc))
			if tc.code != "" {
				e := wantError(t, err, tc.code, tc.reason)
				if strings.Contains(e.Cause, "<saml:") || len(e.Cause) > 400 {
					t.Errorf("cause quotes the document: %q", e.Cause)
				}
				return
			}
			if err != nil {
				t.Fatalf("Validate: %v (lib: %v)", err, errorsUnwrap(err))
			}
			wantName, wantSess := "alice@example.test", "alice@example.test"
			if tc.nameID != "" {
				wantName = tc.nameID
			}
			if tc.roleSess != "" {
				wantSess = tc.roleSess
			}
			if a.NameID != wantName || a.AWS.RoleSessionName != wantSess {
				t.Fatalf("NameID %q RoleSessionName %q, want %q %q", a.NameID, a.AWS.RoleSessionName, wantName, wantSess)
			}
		})
	}
}

func errorsUnwrap(err error) error {
	if e, ok := err.(*Error); ok {
		return e.Err
	}
	return nil
}

func expiredKey(t testing.TB) *keyPair {
	return testKey(t, "expired", 2048, t0.AddDate(-2, 0, 0), t0.AddDate(0, 0, -1))
}

// TestValidateResult checks every field of a good assertion.
func TestValidateResult(t *testing.T) {
	p := defaultParams()
	p.signResponse = true
	p.InResponseTo = "_req-42"
	doc := signedResponse(t, p)
	sp := newTestSP(t, t0)
	sp.RequireAWSRole = true
	var asked string
	sp.RequireInResponseTo = func(id string) bool { asked = id; return true }
	a, err := sp.Validate(b64(doc))
	if err != nil {
		t.Fatal(err)
	}
	if asked != "_req-42" {
		t.Errorf("RequireInResponseTo got %q", asked)
	}
	want := &Assertion{
		Issuer:       testIdPID,
		AssertionID:  "_assert-9b2e7f",
		ResponseID:   "_resp-5c1d0e",
		InResponseTo: "_req-42",
		NameID:       "alice@example.test",
		NameIDFormat: "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress",
		SessionIndex: "_session-7f3a",
		AuthnInstant: t0.Add(-30 * time.Second),
		IssueInstant: t0.Add(-30 * time.Second),
		NotBefore:    t0.Add(-time.Minute),
		NotOnOrAfter: t0.Add(5 * time.Minute),
		Audiences:    []string{DefaultEntityID},
		Attributes: map[string][]string{
			AttrRole:                              {roleAnalyst + "," + providerARN, providerARN + "," + roleAdmin},
			AttrRoleSessionName:                   {"alice@example.test"},
			AttrSessionDuration:                   {"3600"},
			AttrSourceIdentity:                    {"alice"},
			AttrPrincipalTagPrefix + "Department": {"Finance"},
			"groups":                              {"analysts", "finance"},
		},
		Groups: []string{"analysts", "finance"},
		AWS: AWSAttributes{
			Roles: []RolePair{
				{RoleARN: roleAnalyst, ProviderARN: providerARN},
				{RoleARN: roleAdmin, ProviderARN: providerARN},
			},
			RoleSessionName: "alice@example.test",
			SessionDuration: time.Hour,
			SourceIdentity:  "alice",
			PrincipalTags:   map[string]string{"Department": "Finance"},
		},
	}
	if diff := cmp.Diff(want, a); diff != "" {
		t.Fatalf("assertion (-want +got):\n%s", diff)
	}
	if _, err := a.RoleFor(roleAdmin, providerARN); err != nil {
		t.Errorf("RoleFor(admin): %v", err)
	}
	_, err = a.RoleFor("arn:aws:iam::123456789012:role/Other", providerARN)
	wantError(t, err, CodeAccessDenied, "role-not-granted")
}

// TestValidateReplay: the second use of an assertion fails, also through a
// different SP value sharing the cache, and a rejected response does not
// consume the ID.
func TestValidateReplay(t *testing.T) {
	doc := b64(signedResponse(t, defaultParams()))
	sp := newTestSP(t, t0)

	wrongAudience := newTestSP(t, t0)
	wrongAudience.Replay = sp.Replay
	wrongAudience.EntityID = "https://someone-else.example.test"
	_, err := wrongAudience.Validate(doc)
	wantError(t, err, CodeInvalidIdentityToken, "audience")

	if _, err := sp.Validate(doc); err != nil {
		t.Fatalf("first use: %v", err)
	}
	_, err = sp.Validate(doc)
	wantError(t, err, CodeInvalidIdentityToken, "replay")

	other := newTestSP(t, t0.Add(time.Minute))
	other.Replay = sp.Replay
	_, err = other.Validate(doc)
	wantError(t, err, CodeInvalidIdentityToken, "replay")
}

// TestValidateRejectsBadInput covers inputs rejected before any signature
// work. None needs xmlsec1.
func TestValidateRejectsBadInput(t *testing.T) {
	var deflated bytes.Buffer
	w, _ := flate.NewWriter(&deflated, flate.BestCompression)
	w.Write(render(t, defaultParams()))
	w.Close()

	const lol = `<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol">&lol3;</samlp:Response>`
	const xxe = `<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion"><saml:Issuer>&xxe;</saml:Issuer></samlp:Response>`
	good := string(render(t, defaultParams()))
	unsigned := defaultParams()
	unsigned.signAssertion = false
	tests := []struct {
		name, input, code, reason string
	}{
		{"empty", "", CodeValidationError, "empty"},
		{"oversized", strings.Repeat("A", DefaultMaxResponseSize+4), CodeValidationError, "too-large"},
		{"not base64", "<samlp:Response/>", CodeValidationError, "base64"},
		{"base64url alphabet", strings.ReplaceAll(strings.ReplaceAll(b64([]byte(good+"\xff\xfe")), "+", "-"), "/", "_"), CodeValidationError, "base64"},
		{"not XML", b64([]byte("hello")), CodeInvalidIdentityToken, "xml"},
		{"billion laughs", b64([]byte(lol)), CodeInvalidIdentityToken, "xml"},
		{"XXE", b64([]byte(xxe)), CodeInvalidIdentityToken, "xml"},
		{"DOCTYPE without entities", b64([]byte(strings.Replace(good, "<samlp:Response", "<!DOCTYPE samlp:Response>\n<samlp:Response", 1))), CodeInvalidIdentityToken, "xml"},
		{"processing instruction", b64([]byte(strings.Replace(good, "<samlp:Response", "<?xml-stylesheet href=\"x\"?><samlp:Response", 1))), CodeInvalidIdentityToken, "xml"},
		{"two roots", b64([]byte(good + good[strings.Index(good, "<samlp:Response"):])), CodeInvalidIdentityToken, "xml"},
		{"deeply nested", b64([]byte(strings.Repeat("<a>", 100) + strings.Repeat("</a>", 100))), CodeInvalidIdentityToken, "xml"},
		{"deflated (HTTP-Redirect encoding)", b64(deflated.Bytes()), CodeInvalidIdentityToken, "xml"},
		{"AuthnRequest instead of Response", b64([]byte(`<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="x"/>`)), CodeInvalidIdentityToken, "not-response"},
		{"unsigned", b64(render(t, unsigned)), CodeInvalidIdentityToken, "unsigned"},
		{"encrypted assertion", b64([]byte(strings.Replace(good, "<saml:Assertion ", "<saml:EncryptedAssertion/><saml:Assertion ", 1))), CodeInvalidIdentityToken, "encrypted"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sp := newTestSP(t, t0)
			_, err := sp.Validate(tc.input)
			wantError(t, err, tc.code, tc.reason)
		})
	}
}

func TestSPCheck(t *testing.T) {
	ok := newTestSP(t, t0)
	if err := ok.Check(); err != nil {
		t.Fatal(err)
	}
	for name, edit := range map[string]func(*SP){
		"no ACS":        func(sp *SP) { sp.ACSURL = "" },
		"relative ACS":  func(sp *SP) { sp.ACSURL = "/saml/acs" },
		"no IdPs":       func(sp *SP) { sp.IdPs = nil },
		"no replay":     func(sp *SP) { sp.Replay = nil },
		"skew too big":  func(sp *SP) { sp.MaxSkew = 10 * time.Minute },
		"negative size": func(sp *SP) { sp.MaxResponseSize = -1 },
	} {
		sp := newTestSP(t, t0)
		edit(sp)
		if err := sp.Check(); err == nil {
			t.Errorf("%s: Check accepted", name)
		}
		if _, err := sp.Validate("AAAA"); err == nil {
			t.Errorf("%s: Validate accepted", name)
		}
	}
}
