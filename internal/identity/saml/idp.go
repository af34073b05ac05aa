package saml

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"encoding/xml"
	"errors"
	"fmt"
	"strings"
)

// MinRSABits is the smallest RSA modulus accepted for an IdP signing key
// (DESIGN.md invariant 6).
const MinRSABits = 2048

// maxMetadataBytes bounds ParseIdPMetadata input.
const maxMetadataBytes = 1 << 20

// SAML 2.0 namespaces and binding URIs (saml-core-2.0-os, saml-bindings-2.0-os §3).
const (
	nsAssertion = "urn:oasis:names:tc:SAML:2.0:assertion"
	nsProtocol  = "urn:oasis:names:tc:SAML:2.0:protocol"
	nsMetadata  = "urn:oasis:names:tc:SAML:2.0:metadata"

	BindingHTTPPost     = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
	BindingHTTPRedirect = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
)

// Endpoint is a metadata endpoint: a binding URI and a location URL.
type Endpoint struct {
	Binding  string
	Location string
}

// IdP is an identity provider trusted to sign responses: AWS calls it a
// "SAML provider". An IdP is immutable once handed to an [SP]; build a new
// one to rotate certificates.
type IdP struct {
	// EntityID is the IdP's entity ID, the value of its Issuer elements.
	EntityID string
	// SSO lists the IdP's SingleSignOnService endpoints (for SP-initiated login).
	SSO []Endpoint
	// SigningCerts are the certificates whose keys may sign responses. Only
	// the keys matter: the certificates are pinned, not chain-validated, but
	// goxmldsig rejects a signature made while its certificate is outside
	// its NotBefore/NotAfter window.
	SigningCerts []*x509.Certificate
}

// Check reports whether the IdP is usable: it has an entity ID and at least
// one signing certificate, and every signing key passes the key policy
// (RSA ≥ 2048 bits, ECDSA P-256/P-384/P-521). It does no I/O.
func (p *IdP) Check() error {
	if p == nil {
		return errors.New("saml: nil IdP")
	}
	if strings.TrimSpace(p.EntityID) == "" {
		return errors.New("saml: IdP has no entity ID")
	}
	if len(p.SigningCerts) == 0 {
		return fmt.Errorf("saml: IdP %q has no signing certificate", p.EntityID)
	}
	for _, c := range p.SigningCerts {
		if err := checkSigningKey(c); err != nil {
			return fmt.Errorf("saml: IdP %q: %w", p.EntityID, err)
		}
	}
	return nil
}

// SSOURL returns the location of the first SingleSignOnService endpoint
// with the given binding, or "".
func (p *IdP) SSOURL(binding string) string {
	for _, e := range p.SSO {
		if e.Binding == binding {
			return e.Location
		}
	}
	return ""
}

func checkSigningKey(c *x509.Certificate) error {
	if c == nil {
		return errors.New("nil signing certificate")
	}
	name := c.Subject.String()
	switch k := c.PublicKey.(type) {
	case *rsa.PublicKey:
		if bits := k.N.BitLen(); bits < MinRSABits {
			return fmt.Errorf("signing certificate %q has a %d-bit RSA key; at least %d bits are required", name, bits, MinRSABits)
		}
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
		default:
			return fmt.Errorf("signing certificate %q uses an unsupported elliptic curve", name)
		}
	default:
		return fmt.Errorf("signing certificate %q has an unsupported key type %T (want RSA or ECDSA)", name, c.PublicKey)
	}
	return nil
}

// IdPResolver finds the IdP registered for an Issuer value. It returns
// (nil, nil) when none is registered. Implementations must be safe for
// concurrent use.
type IdPResolver interface {
	ResolveIdP(issuer string) (*IdP, error)
}

// StaticIdPs is an IdPResolver over a fixed set of IdPs, keyed by entity ID.
type StaticIdPs map[string]*IdP

var _ IdPResolver = StaticIdPs(nil)

// NewStaticIdPs checks each IdP and indexes them by entity ID.
func NewStaticIdPs(idps ...*IdP) (StaticIdPs, error) {
	m := make(StaticIdPs, len(idps))
	var errs []error
	for _, p := range idps {
		if err := p.Check(); err != nil {
			errs = append(errs, err)
			continue
		}
		if _, dup := m[p.EntityID]; dup {
			errs = append(errs, fmt.Errorf("saml: IdP %q registered twice", p.EntityID))
			continue
		}
		m[p.EntityID] = p
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return m, nil
}

// ResolveIdP implements IdPResolver.
func (s StaticIdPs) ResolveIdP(issuer string) (*IdP, error) { return s[issuer], nil }

// ParseCertificatesPEM parses one or more PEM "CERTIFICATE" blocks. Anything
// other than whitespace before, between or after the blocks is an error.
func ParseCertificatesPEM(data []byte) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	rest := bytes.TrimSpace(data)
	for len(rest) > 0 {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			return nil, errors.New("saml: certificate data is not PEM")
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("saml: unexpected PEM block %q, want CERTIFICATE", block.Type)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("saml: parse certificate: %w", err)
		}
		certs = append(certs, c)
		rest = bytes.TrimSpace(rest)
	}
	if len(certs) == 0 {
		return nil, errors.New("saml: no certificate found")
	}
	return certs, nil
}

// Metadata documents (saml-metadata-2.0-os §2.3–2.4).
type mdEntities struct {
	XMLName  xml.Name
	EntityID string       `xml:"entityID,attr"`
	Entities []mdEntities `xml:"urn:oasis:names:tc:SAML:2.0:metadata EntityDescriptor"`
	Nested   []mdEntities `xml:"urn:oasis:names:tc:SAML:2.0:metadata EntitiesDescriptor"`
	IDPs     []mdIDPSSO   `xml:"urn:oasis:names:tc:SAML:2.0:metadata IDPSSODescriptor"`
}

type mdIDPSSO struct {
	Protocols string            `xml:"protocolSupportEnumeration,attr"`
	Keys      []mdKeyDescriptor `xml:"urn:oasis:names:tc:SAML:2.0:metadata KeyDescriptor"`
	SSO       []mdEndpoint      `xml:"urn:oasis:names:tc:SAML:2.0:metadata SingleSignOnService"`
}

type mdKeyDescriptor struct {
	Use   string   `xml:"use,attr"`
	Certs []string `xml:"http://www.w3.org/2000/09/xmldsig# KeyInfo>X509Data>X509Certificate"`
}

type mdEndpoint struct {
	Binding  string `xml:"Binding,attr"`
	Location string `xml:"Location,attr"`
}

// ParseIdPMetadata reads SAML 2.0 IdP metadata: an EntityDescriptor, or an
// EntitiesDescriptor holding exactly one entity with an IDPSSODescriptor.
// It keeps the signing certificates (KeyDescriptor use="signing" or no use)
// and the SingleSignOnService endpoints.
//
// Certificates are not checked against the clock here: metadata often lists
// the next certificate before it becomes valid, and an expired one is caught
// when a response signed with it is validated. A signing key that fails the
// key policy (see [IdP.Check]) makes the whole metadata invalid: fix it at
// the IdP rather than silently trusting a subset.
//
// The metadata's own signature, if any, is not verified: metadata is
// configuration uploaded by an administrator over an authenticated channel.
func ParseIdPMetadata(data []byte) (*IdP, error) {
	if len(data) > maxMetadataBytes {
		return nil, fmt.Errorf("saml: metadata is %d bytes, limit %d", len(data), maxMetadataBytes)
	}
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf"))
	if err := checkXML(data); err != nil {
		return nil, fmt.Errorf("saml: metadata: %w", err)
	}
	var root mdEntities
	if err := xml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("saml: metadata: %w", err)
	}
	if root.XMLName.Space != nsMetadata || (root.XMLName.Local != "EntityDescriptor" && root.XMLName.Local != "EntitiesDescriptor") {
		return nil, fmt.Errorf("saml: metadata root is %s %s, want an EntityDescriptor or EntitiesDescriptor", root.XMLName.Space, root.XMLName.Local)
	}
	var found []mdEntities
	var walk func(e mdEntities)
	walk = func(e mdEntities) {
		if e.XMLName.Local == "EntityDescriptor" && len(e.IDPs) > 0 {
			found = append(found, e)
		}
		for _, c := range e.Entities {
			walk(c)
		}
		for _, c := range e.Nested {
			walk(c)
		}
	}
	walk(root)
	switch len(found) {
	case 0:
		return nil, errors.New("saml: metadata has no IDPSSODescriptor")
	case 1:
	default:
		ids := make([]string, len(found))
		for i, f := range found {
			ids[i] = f.EntityID
		}
		return nil, fmt.Errorf("saml: metadata describes %d IdPs (%s); register one entity at a time", len(found), strings.Join(ids, ", "))
	}
	ent := found[0]
	idp := &IdP{EntityID: strings.TrimSpace(ent.EntityID)}
	for _, d := range ent.IDPs {
		if !strings.Contains(d.Protocols, nsProtocol) {
			continue
		}
		for _, s := range d.SSO {
			idp.SSO = append(idp.SSO, Endpoint{Binding: s.Binding, Location: s.Location})
		}
		for _, k := range d.Keys {
			if k.Use != "" && k.Use != "signing" {
				continue
			}
			for _, text := range k.Certs {
				c, err := parseMetadataCert(text)
				if err != nil {
					return nil, fmt.Errorf("saml: metadata for %q: %w", idp.EntityID, err)
				}
				if !containsCert(idp.SigningCerts, c) {
					idp.SigningCerts = append(idp.SigningCerts, c)
				}
			}
		}
	}
	if err := idp.Check(); err != nil {
		return nil, err
	}
	return idp, nil
}

// parseMetadataCert decodes ds:X509Certificate text. Some IdPs put the
// base64 of a whole PEM file there; that is accepted too.
func parseMetadataCert(text string) (*x509.Certificate, error) {
	der, err := base64.StdEncoding.DecodeString(stripSpace(text))
	if err != nil {
		return nil, fmt.Errorf("X509Certificate is not base64: %w", err)
	}
	if bytes.HasPrefix(bytes.TrimSpace(der), []byte("-----BEGIN")) {
		certs, err := ParseCertificatesPEM(der)
		if err != nil {
			return nil, err
		}
		if len(certs) != 1 {
			return nil, errors.New("X509Certificate holds several PEM certificates")
		}
		return certs[0], nil
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("X509Certificate: %w", err)
	}
	return c, nil
}

func containsCert(list []*x509.Certificate, c *x509.Certificate) bool {
	for _, x := range list {
		if x.Equal(c) {
			return true
		}
	}
	return false
}

func stripSpace(s string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case ' ', '\t', '\r', '\n':
			return -1
		}
		return r
	}, s)
}
