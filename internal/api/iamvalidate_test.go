package api

import (
	"testing"
)

// FuzzParseSAMLMetadata feeds untrusted metadata to the validator: it must
// never panic, and whatever it accepts has an entity id.
func FuzzParseSAMLMetadata(f *testing.F) {
	for _, s := range []string{
		`<EntityDescriptor xmlns="urn:oasis:names:tc:SAML:2.0:metadata" entityID="x"><IDPSSODescriptor/></EntityDescriptor>`,
		`<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>`,
		`<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="e"><md:IDPSSODescriptor><md:KeyDescriptor><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:X509Data><ds:X509Certificate>AAAA</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor></md:IDPSSODescriptor></md:EntityDescriptor>`,
		`<?pi x?><a/>`,
		"\xef\xbb\xbf<a/>",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, md string) {
		id, err := parseSAMLMetadata("metadataXml", md)
		if err == nil && id == "" {
			t.Fatalf("accepted metadata without an entity id: %q", md)
		}
	})
}

func TestCheckProviderURL(t *testing.T) {
	for u, ok := range map[string]bool{
		"https://idp.example.com":        true,
		"https://idp.example.com/t/":     true,
		"http://localhost:8080/realms/x": true,
		"http://127.0.0.2":               true,
		"http://[::1]:9000":              true,
		"http://idp.example.com":         false,
		"http://localhost.evil.example":  false,
		"https://":                       false,
		"//idp.example.com":              false,
		"https://idp.example.com?":       false,
		"https://idp.example.com#":       false,
		"mailto:a@b.c":                   false,
	} {
		err := checkProviderURL("issuerUrl", u, true)
		if (err == nil) != ok {
			t.Errorf("%q: err = %v, want ok=%v", u, err, ok)
		}
	}
}
