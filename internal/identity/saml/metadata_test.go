package saml

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/beevik/etree"
)

func idpMetadata(certs ...*x509.Certificate) string {
	var keys strings.Builder
	for i, c := range certs {
		use := "signing"
		if i == 1 {
			use = "" // no use attribute: signing and encryption
		}
		if use != "" {
			use = ` use="` + use + `"`
		}
		fmt.Fprintf(&keys, `<md:KeyDescriptor%s><ds:KeyInfo><ds:X509Data><ds:X509Certificate>
%s
</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>`, use, base64.StdEncoding.EncodeToString(c.Raw))
	}
	return `<?xml version="1.0"?>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="` + testIdPID + `">
  <md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol" WantAuthnRequestsSigned="false">
    ` + keys.String() + `
    <md:KeyDescriptor use="encryption"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>bm90IGEgY2VydA==</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>
    <md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="https://idp.example.test/sso/redirect"/>
    <md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="https://idp.example.test/sso/post"/>
  </md:IDPSSODescriptor>
</md:EntityDescriptor>`
}

func TestParseIdPMetadata(t *testing.T) {
	main, other := mainKey(t).cert, otherKey(t).cert
	idp, err := ParseIdPMetadata([]byte(idpMetadata(main, other, main)))
	if err != nil {
		t.Fatal(err)
	}
	if idp.EntityID != testIdPID || len(idp.SigningCerts) != 2 || !idp.SigningCerts[0].Equal(main) || !idp.SigningCerts[1].Equal(other) {
		t.Fatalf("got %q with %d certs", idp.EntityID, len(idp.SigningCerts))
	}
	if got := idp.SSOURL(BindingHTTPPost); got != "https://idp.example.test/sso/post" {
		t.Errorf("SSO POST = %q", got)
	}
	if got := idp.SSOURL(BindingHTTPRedirect); got != "https://idp.example.test/sso/redirect" {
		t.Errorf("SSO Redirect = %q", got)
	}

	// The parsed IdP validates a real response.
	sp := newTestSP(t, t0, idp)
	if requireXmlsecOrSkipQuiet() {
		if _, err := sp.Validate(b64(signedResponse(t, defaultParams()))); err != nil {
			t.Fatalf("Validate with parsed metadata: %v", err)
		}
	}

	// Certificate text holding a whole PEM file (a real-world quirk).
	pemText := base64.StdEncoding.EncodeToString(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: main.Raw}))
	quirk := strings.Replace(idpMetadata(main), base64.StdEncoding.EncodeToString(main.Raw), pemText, 1)
	if idp, err := ParseIdPMetadata([]byte(quirk)); err != nil || !idp.SigningCerts[0].Equal(main) {
		t.Fatalf("PEM-in-base64: %v", err)
	}

	weak := testKey(t, "weak", 1024, t0, t0).cert
	bad := map[string]string{
		"weak key":   idpMetadata(main, weak),
		"no certs":   idpMetadata(),
		"DOCTYPE":    strings.Replace(idpMetadata(main), "<md:EntityDescriptor", "<!DOCTYPE x [<!ENTITY e SYSTEM \"file:///etc/passwd\">]><md:EntityDescriptor", 1),
		"not base64": strings.Replace(idpMetadata(main), base64.StdEncoding.EncodeToString(main.Raw), "!!!", 1),
		"wrong root": `<md:IDPSSODescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata"/>`,
	}
	for name, doc := range bad {
		if _, err := ParseIdPMetadata([]byte(doc)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestParseIdPMetadataCorpus reads python3-saml's metadata fixtures
// (python3-saml/INDEX.md). Several IdP keys there are 1024-bit RSA and must
// be refused for it.
func TestParseIdPMetadataCorpus(t *testing.T) {
	dir := filepath.Join(corpusRoot(t), "python3-saml", "metadata")
	tests := []struct {
		file, err, entity string
		certs             int
	}{
		{file: "idp_metadata.xml", entity: "https://app.onelogin.com/saml/metadata/383123", certs: 1},
		{file: "idp_metadata2.xml", entity: "urn:example:idp", certs: 1},
		{file: "idp_metadata_same_sign_and_encrypt_cert.xml", entity: "https://app.onelogin.com/saml/metadata/383123", certs: 1},
		{file: "idp_metadata_different_sign_and_encrypt_cert.xml", entity: "https://app.onelogin.com/saml/metadata/383123", certs: 1},
		{file: "idp_metadata_multi_certs.xml", err: "1024-bit"},
		{file: "idp_metadata_multi_signing_certs.xml", err: "1024-bit"},
		{file: "idp_multiple_descriptors.xml", err: "describes 2 IdPs"},
		{file: "metadata_settings1.xml", err: "no IDPSSODescriptor"},
		{file: "signed_metadata_settings1.xml", err: "no IDPSSODescriptor"},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(dir, tc.file))
			if err != nil {
				t.Fatal(err)
			}
			idp, err := ParseIdPMetadata(data)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want one containing %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if idp.EntityID != tc.entity || len(idp.SigningCerts) != tc.certs {
				t.Fatalf("got %q with %d certs, want %q with %d", idp.EntityID, len(idp.SigningCerts), tc.entity, tc.certs)
			}
		})
	}
}

func TestSPMetadata(t *testing.T) {
	sp := newTestSP(t, t0)
	out, err := sp.Metadata()
	if err != nil {
		t.Fatal(err)
	}
	if err := checkXML(out); err != nil {
		t.Fatal(err)
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(out); err != nil {
		t.Fatal(err)
	}
	root := doc.Root()
	if root.Tag != "EntityDescriptor" || root.NamespaceURI() != nsMetadata || root.SelectAttrValue("entityID", "") != DefaultEntityID {
		t.Fatalf("root: %s", out)
	}
	d := root.SelectElement("SPSSODescriptor")
	if d == nil || d.SelectAttrValue("WantAssertionsSigned", "") != "true" || d.SelectAttrValue("protocolSupportEnumeration", "") != nsProtocol {
		t.Fatalf("SPSSODescriptor: %s", out)
	}
	acs := d.SelectElement("AssertionConsumerService")
	if acs == nil || acs.SelectAttrValue("Binding", "") != BindingHTTPPost || acs.SelectAttrValue("Location", "") != testACS {
		t.Fatalf("ACS: %s", out)
	}
	sp.ACSURL = ""
	if _, err := sp.Metadata(); err == nil {
		t.Fatal("Metadata without ACS URL accepted")
	}
}

func requireXmlsecOrSkipQuiet() bool {
	_, err := lookXmlsec()
	return err == nil
}
