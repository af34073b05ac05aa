package saml

import (
	"encoding/xml"
)

type spMetadata struct {
	XMLName  xml.Name `xml:"urn:oasis:names:tc:SAML:2.0:metadata EntityDescriptor"`
	EntityID string   `xml:"entityID,attr"`
	SPSSO    struct {
		AuthnRequestsSigned  bool     `xml:"AuthnRequestsSigned,attr"`
		WantAssertionsSigned bool     `xml:"WantAssertionsSigned,attr"`
		Protocols            string   `xml:"protocolSupportEnumeration,attr"`
		NameIDFormats        []string `xml:"NameIDFormat"`
		ACS                  []spACS  `xml:"AssertionConsumerService"`
	} `xml:"SPSSODescriptor"`
}

type spACS struct {
	Binding   string `xml:"Binding,attr"`
	Location  string `xml:"Location,attr"`
	Index     int    `xml:"index,attr"`
	IsDefault bool   `xml:"isDefault,attr"`
}

// Metadata returns the SP's SAML 2.0 metadata (saml-metadata-2.0-os §2.4.4):
// an EntityDescriptor with one SPSSODescriptor that wants signed assertions
// and has one HTTP-POST AssertionConsumerService at ACSURL. The SP does not
// sign requests or decrypt assertions, so it lists no keys.
func (sp *SP) Metadata() ([]byte, error) {
	if err := sp.Check(); err != nil {
		return nil, err
	}
	var md spMetadata
	md.EntityID = sp.entityID()
	md.SPSSO.WantAssertionsSigned = true
	md.SPSSO.Protocols = nsProtocol
	md.SPSSO.NameIDFormats = []string{
		"urn:oasis:names:tc:SAML:2.0:nameid-format:persistent",
		"urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress",
		"urn:oasis:names:tc:SAML:2.0:nameid-format:transient",
	}
	md.SPSSO.ACS = []spACS{{Binding: BindingHTTPPost, Location: sp.ACSURL, Index: 0, IsDefault: true}}
	out, err := xml.MarshalIndent(md, "", "  ")
	if err != nil {
		return nil, err
	}
	return append([]byte(xml.Header), append(out, '\n')...), nil
}
