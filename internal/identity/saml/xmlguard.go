package saml

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"

	"github.com/beevik/etree"
)

// Structural limits for untrusted XML. Real responses are a few kilobytes
// and a dozen levels deep.
const (
	maxXMLDepth      = 48
	maxXMLElements   = 20000
	maxXMLAttributes = 64
)

// checkXML is a streaming pre-check of untrusted XML before any library sees
// it. It rejects DTDs (so no entity expansion, external entities or billion
// laughs can happen downstream, whatever the parser), processing
// instructions other than the XML declaration, more than one root element,
// and inputs that are too deep or too large.
func checkXML(raw []byte) error {
	d := xml.NewDecoder(bytes.NewReader(raw))
	d.Strict = true
	depth, elements, roots := 0, 0, 0
	first := true
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("malformed XML: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if depth == 0 {
				roots++
				if roots > 1 {
					return errors.New("more than one root element")
				}
			}
			depth++
			elements++
			if depth > maxXMLDepth {
				return fmt.Errorf("elements nested deeper than %d", maxXMLDepth)
			}
			if elements > maxXMLElements {
				return fmt.Errorf("more than %d elements", maxXMLElements)
			}
			if len(t.Attr) > maxXMLAttributes {
				return fmt.Errorf("an element has more than %d attributes", maxXMLAttributes)
			}
		case xml.EndElement:
			depth--
		case xml.Directive:
			return errors.New("DOCTYPE and other DTD declarations are not allowed")
		case xml.ProcInst:
			if !first || t.Target != "xml" {
				return fmt.Errorf("processing instruction %q is not allowed", t.Target)
			}
		case xml.CharData:
			if depth == 0 && len(bytes.TrimSpace(t)) > 0 {
				return errors.New("text outside the root element")
			}
		}
		first = false
	}
	if roots != 1 {
		return errors.New("no root element")
	}
	return nil
}

// Algorithm allowlists (DESIGN.md invariant 6; XML-DSig 1.1 §6 and RFC 6931
// identifiers). goxmldsig also accepts SHA-1, so this is enforced here.
var (
	allowedSignatureMethods = map[string]bool{
		"http://www.w3.org/2001/04/xmldsig-more#rsa-sha256":   true,
		"http://www.w3.org/2001/04/xmldsig-more#rsa-sha384":   true,
		"http://www.w3.org/2001/04/xmldsig-more#rsa-sha512":   true,
		"http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256": true,
		"http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384": true,
		"http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512": true,
	}
	allowedDigestMethods = map[string]bool{
		"http://www.w3.org/2001/04/xmlenc#sha256":       true,
		"http://www.w3.org/2001/04/xmldsig-more#sha384": true,
		"http://www.w3.org/2001/04/xmlenc#sha512":       true,
	}
)

// scanTree rejects, anywhere in the document, a SignatureMethod or
// DigestMethod whose Algorithm is not allowlisted, and encrypted SAML
// elements (which gatehouse does not accept). Elements are matched by local
// name in any namespace and every Algorithm attribute counts, whatever its
// prefix, so that no namespace trick can hide the algorithm goxmldsig will
// actually use: the signature that gets verified is always one of the
// elements checked here.
func scanTree(root *etree.Element, legacyCrypto bool) *Error {
	var walk func(el *etree.Element) *Error
	walk = func(el *etree.Element) *Error {
		switch el.Tag {
		case "SignatureMethod", "DigestMethod":
			if legacyCrypto {
				break
			}
			allowed := allowedSignatureMethods
			if el.Tag == "DigestMethod" {
				allowed = allowedDigestMethods
			}
			n := 0
			for _, a := range el.Attr {
				if a.Key != "Algorithm" {
					continue
				}
				n++
				if !allowed[a.Value] {
					return invalidToken("algorithm",
						"configure the IdP to sign with RSA-SHA256 (or stronger) and a SHA-256 digest",
						"the response is signed with a disallowed %s %s", el.Tag, q(a.Value))
				}
			}
			if n == 0 {
				return invalidToken("algorithm", "configure the IdP to sign with RSA-SHA256 and a SHA-256 digest",
					"a %s element has no Algorithm", el.Tag)
			}
		case "EncryptedAssertion", "EncryptedID", "EncryptedAttribute":
			return invalidToken("encrypted",
				"turn off assertion encryption for this service provider in the IdP; TLS protects the assertion in transit",
				"the response contains an %s; encrypted SAML elements are not supported", el.Tag)
		}
		for _, c := range el.ChildElements() {
			if err := walk(c); err != nil {
				return err
			}
		}
		return nil
	}
	return walk(root)
}
