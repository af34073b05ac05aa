package api

// Pure validation of roles and identity providers, run before anything is
// audited or written. Each check names the request body field it refuses.

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/gatehouse-dev/gatehouse/internal/iam"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// Limits (AWS IAM quotas where AWS has one).
const (
	maxRoleNameLen     = 64
	maxRolePathLen     = 512
	maxDescriptionLen  = 1000
	maxTags            = 50
	maxTagKeyLen       = 128
	maxTagValueLen     = 256
	maxPolicyDocBytes  = 64 << 10 // one compacted policy document
	maxSAMLMetadata    = 1 << 20
	maxOIDCAudiences   = 100
	maxOIDCThumbprints = 5
	minRSABits         = 2048 // DESIGN.md invariant 6
)

var (
	roleNameRE    = regexp.MustCompile(`^[\w+=,.@-]{1,64}$`)
	rolePathRE    = regexp.MustCompile(`^/(?:[\w+=,.@-]+/)*$`)
	policyNameRE  = regexp.MustCompile(`^[\w+=,.@-]{1,128}$`)
	samlNameRE    = regexp.MustCompile(`^[\w.-]{1,128}$`)
	tagTextRE     = regexp.MustCompile(`^[\p{L}\p{Z}\p{N}_.:/=+\-@]*$`)
	thumbprintRE  = regexp.MustCompile(`^(?:[0-9a-fA-F]{40}|[0-9a-fA-F]{64})$`)
	claimNameRE   = regexp.MustCompile(`^\S{0,256}$`)
	errNoSigning  = errors.New("has no signing certificate (KeyDescriptor use=\"signing\" or without use, with ds:X509Certificate)")
	errDTDRefused = errors.New("DOCTYPE and other DTD declarations are not allowed")
)

func fieldErr(field, format string, args ...any) *apiError {
	return errInvalid("request body: field %q: %s", field, fmt.Sprintf(format, args...))
}

func checkRoleName(field, name string) error {
	if !roleNameRE.MatchString(name) {
		return fieldErr(field, "must be 1 to %d characters from letters, digits and +=,.@_-", maxRoleNameLen)
	}
	return nil
}

func checkRolePath(field, path string) error {
	if len(path) > maxRolePathLen || !rolePathRE.MatchString(path) {
		return fieldErr(field, "must be \"/\" or /segment/.../ of letters, digits and +=,.@_- (at most %d characters)", maxRolePathLen)
	}
	return nil
}

func checkMaxSessionDuration(field string, v int) error {
	if v < store.MinMaxSessionDuration || v > store.MaxMaxSessionDuration {
		return fieldErr(field, "must be between %d and %d seconds", store.MinMaxSessionDuration, store.MaxMaxSessionDuration)
	}
	return nil
}

func checkDescription(field, v string) error {
	if utf8.RuneCountInString(v) > maxDescriptionLen || strings.ContainsFunc(v, isControl) {
		return fieldErr(field, "must be at most %d characters without control characters", maxDescriptionLen)
	}
	return nil
}

func isControl(r rune) bool { return r < 0x20 && r != '\t' && r != '\n' && r != '\r' || r == 0x7f }

// checkTags applies the AWS tag rules: at most 50 tags, keys 1-128 and
// values 0-256 characters of letters, digits, spaces and _.:/=+-@, keys
// unique case-insensitively and not starting with "aws:".
func checkTags(field string, tags map[string]string) error {
	if len(tags) > maxTags {
		return fieldErr(field, "at most %d tags", maxTags)
	}
	seen := map[string]string{}
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		f := field + "." + k
		n := utf8.RuneCountInString(k)
		switch {
		case n == 0 || n > maxTagKeyLen || !tagTextRE.MatchString(k):
			return fieldErr(f, "tag key must be 1 to %d letters, digits, spaces or _.:/=+-@", maxTagKeyLen)
		case strings.HasPrefix(strings.ToLower(k), "aws:"):
			return fieldErr(f, "tag keys starting with \"aws:\" are reserved")
		case seen[strings.ToLower(k)] != "":
			return fieldErr(f, "duplicates tag key %q (keys are case-insensitive)", seen[strings.ToLower(k)])
		}
		seen[strings.ToLower(k)] = k
		v := tags[k]
		if utf8.RuneCountInString(v) > maxTagValueLen || !tagTextRE.MatchString(v) {
			return fieldErr(f, "tag value must be at most %d letters, digits, spaces or _.:/=+-@", maxTagValueLen)
		}
	}
	return nil
}

// policyKind says where a policy document is used; it decides whether
// statements must or must not name a principal.
type policyKind int

const (
	trustPolicy    policyKind = iota // resource-based: who may assume the role
	identityPolicy                   // permission policy or permissions boundary
)

// checkPolicy validates one IAM policy document from the body field named
// field and returns it compacted, as it will be stored. Syntax and
// semantics are iam.Parse's (its messages carry the JSON path, e.g.
// Statement[1].Condition.StringLike); on top of that a trust policy must name a
// Principal in every statement and no Resource, and an identity policy must
// name none.
func checkPolicy(field string, raw json.RawMessage, kind policyKind) (string, error) {
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return "", fieldErr(field, "is not valid JSON")
	}
	if buf.Len() > maxPolicyDocBytes {
		return "", fieldErr(field, "policy document is %d bytes, more than the limit of %d", buf.Len(), maxPolicyDocBytes)
	}
	doc := buf.Bytes()
	pol, err := iam.Parse(doc)
	if err != nil {
		var ve *iam.ValidationError
		if errors.As(err, &ve) && len(ve.Issues) > 0 {
			msgs := make([]string, 0, min(len(ve.Issues), 5))
			for _, is := range ve.Issues[:min(len(ve.Issues), 5)] {
				msgs = append(msgs, is.String())
			}
			return "", fieldErr(field, "invalid policy: %s", strings.Join(msgs, "; "))
		}
		return "", fieldErr(field, "%s", strings.TrimPrefix(err.Error(), "iam: "))
	}
	single := statementIsObject(doc)
	for i, s := range pol.Statements {
		path := fmt.Sprintf("Statement[%d]", i)
		if single {
			path = "Statement"
		}
		switch kind {
		case trustPolicy:
			switch {
			case s.NotPrincipal != nil:
				return "", fieldErr(field, "invalid policy: %s: NotPrincipal is not allowed in a trust policy", path)
			case s.Principal == nil:
				return "", fieldErr(field, "invalid policy: %s: a trust policy statement must name a Principal", path)
			case s.Resource != nil || s.NotResource != nil:
				return "", fieldErr(field, "invalid policy: %s: a trust policy must not name a Resource", path)
			}
		case identityPolicy:
			if s.Principal != nil || s.NotPrincipal != nil {
				return "", fieldErr(field, "invalid policy: %s: a permission policy must not name a Principal", path)
			}
		}
	}
	return string(doc), nil
}

// statementIsObject reports whether a (valid) policy's Statement element is
// a single object rather than a list, to name its path as AWS does.
func statementIsObject(doc []byte) bool {
	var top map[string]json.RawMessage
	if json.Unmarshal(doc, &top) != nil {
		return false
	}
	st := bytes.TrimSpace(top["Statement"])
	return len(st) > 0 && st[0] == '{'
}

// ---- SAML metadata ----

type samlEntity struct {
	XMLName  xml.Name
	EntityID string       `xml:"entityID,attr"`
	IDPs     []samlIDPSSO `xml:"urn:oasis:names:tc:SAML:2.0:metadata IDPSSODescriptor"`
}

type samlIDPSSO struct {
	Keys []struct {
		Use   string   `xml:"use,attr"`
		Certs []string `xml:"http://www.w3.org/2000/09/xmldsig# KeyInfo>X509Data>X509Certificate"`
	} `xml:"urn:oasis:names:tc:SAML:2.0:metadata KeyDescriptor"`
}

const nsSAMLMetadata = "urn:oasis:names:tc:SAML:2.0:metadata"

// parseSAMLMetadata checks IdP metadata (saml-metadata-2.0-os §2.3.2,
// §2.4.3) and returns its entityID. The document must be at most 1 MiB,
// must not contain a DTD, must have an md:EntityDescriptor root with an
// entityID and an md:IDPSSODescriptor, and must list at least one signing
// certificate; every signing key must be RSA of at least 2048 bits or
// ECDSA on P-256/384/521 (DESIGN.md invariant 6). The metadata's own
// signature is not verified: an administrator uploads it over an
// authenticated channel.
//
// TODO(saml): the SAML SP package parses the same documents
// (saml.ParseIdPMetadata); once its API is settled, validate with it so
// that what is stored here is exactly what the SP will accept.
func parseSAMLMetadata(field, metadata string) (string, error) {
	if len(metadata) > maxSAMLMetadata {
		return "", fieldErr(field, "metadata is %d bytes, more than the limit of %d", len(metadata), maxSAMLMetadata)
	}
	raw := bytes.TrimPrefix([]byte(metadata), []byte("\xef\xbb\xbf"))
	if err := scanXML(raw); err != nil {
		return "", fieldErr(field, "%v", err)
	}
	var ent samlEntity
	if err := xml.Unmarshal(raw, &ent); err != nil {
		return "", fieldErr(field, "metadata is not well-formed XML")
	}
	if ent.XMLName.Space != nsSAMLMetadata || ent.XMLName.Local != "EntityDescriptor" {
		return "", fieldErr(field, "metadata root must be an EntityDescriptor in namespace %s", nsSAMLMetadata)
	}
	entityID := strings.TrimSpace(ent.EntityID)
	if entityID == "" || len(entityID) > 1024 {
		return "", fieldErr(field, "EntityDescriptor must have an entityID of at most 1024 characters")
	}
	if len(ent.IDPs) == 0 {
		return "", fieldErr(field, "metadata has no IDPSSODescriptor: it does not describe an identity provider")
	}
	n := 0
	for _, d := range ent.IDPs {
		for _, k := range d.Keys {
			if k.Use != "" && k.Use != "signing" {
				continue
			}
			for _, text := range k.Certs {
				if err := checkSAMLCert(text); err != nil {
					return "", fieldErr(field, "signing certificate %d: %v", n+1, err)
				}
				n++
			}
		}
	}
	if n == 0 {
		return "", fieldErr(field, "IDPSSODescriptor %v", errNoSigning)
	}
	return entityID, nil
}

// scanXML rejects DTDs (no entity expansion of any kind), processing
// instructions other than the XML declaration, and anything but one root
// element, before encoding/xml builds the document.
func scanXML(raw []byte) error {
	d := xml.NewDecoder(bytes.NewReader(raw))
	d.Strict = true
	depth, roots := 0, 0
	for first := true; ; first = false {
		tok, err := d.RawToken()
		if err == io.EOF {
			break
		}
		if err != nil {
			return errors.New("metadata is not well-formed XML")
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if depth == 0 {
				if roots++; roots > 1 {
					return errors.New("metadata has more than one root element")
				}
			}
			if depth++; depth > 64 {
				return errors.New("metadata nests elements too deeply")
			}
		case xml.EndElement:
			depth--
		case xml.Directive:
			return errDTDRefused
		case xml.ProcInst:
			if !first || t.Target != "xml" {
				return fmt.Errorf("processing instruction %q is not allowed", t.Target)
			}
		case xml.CharData:
			if depth == 0 && len(bytes.TrimSpace(t)) > 0 {
				return errors.New("metadata has text outside the root element")
			}
		}
	}
	if roots != 1 {
		return errors.New("metadata has no root element")
	}
	return nil
}

func checkSAMLCert(text string) error {
	der, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(text), ""))
	if err != nil {
		return errors.New("X509Certificate is not base64")
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return errors.New("X509Certificate is not a DER X.509 certificate")
	}
	switch k := c.PublicKey.(type) {
	case *rsa.PublicKey:
		if bits := k.N.BitLen(); bits < minRSABits {
			return fmt.Errorf("RSA key of %d bits; at least %d are required", bits, minRSABits)
		}
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
		default:
			return errors.New("unsupported elliptic curve")
		}
	default:
		return fmt.Errorf("unsupported key type %T (want RSA or ECDSA)", c.PublicKey)
	}
	return nil
}

// ---- OIDC ----

// checkProviderURL accepts an absolute https URL without user info or
// fragment (OIDC Discovery 1.0 §2: the issuer has no query or fragment
// either). Plain http is accepted only for loopback hosts (localhost,
// 127.0.0.0/8, ::1), so that a local test IdP works while a remote issuer
// can never be reached without TLS.
func checkProviderURL(field, raw string, isIssuer bool) error {
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "" {
		return fieldErr(field, "must be an absolute https URL")
	}
	if u.User != nil || u.Fragment != "" || strings.Contains(raw, "#") {
		return fieldErr(field, "must not contain user info or a fragment")
	}
	if isIssuer && (u.RawQuery != "" || strings.Contains(raw, "?")) {
		return fieldErr(field, "an issuer must not contain a query")
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !isLoopback(u.Hostname()) {
			return fieldErr(field, "must use https (http is allowed only for loopback hosts)")
		}
	default:
		return fieldErr(field, "must be an absolute https URL")
	}
	return nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func checkThumbprints(field string, tps []string) error {
	if len(tps) > maxOIDCThumbprints {
		return fieldErr(field, "at most %d thumbprints", maxOIDCThumbprints)
	}
	for i, tp := range tps {
		if !thumbprintRE.MatchString(tp) {
			return fieldErr(fmt.Sprintf("%s.%d", field, i), "must be 40 or 64 hex digits")
		}
	}
	return nil
}

func checkAudiences(field string, auds []string) error {
	if len(auds) == 0 || len(auds) > maxOIDCAudiences {
		return fieldErr(field, "must list 1 to %d audiences (client ids)", maxOIDCAudiences)
	}
	seen := map[string]bool{}
	for i, a := range auds {
		if a == "" || len(a) > 255 || strings.ContainsFunc(a, isControl) {
			return fieldErr(fmt.Sprintf("%s.%d", field, i), "must be 1 to 255 characters")
		}
		if seen[a] {
			return fieldErr(fmt.Sprintf("%s.%d", field, i), "duplicates audience %q", a)
		}
		seen[a] = true
	}
	return nil
}

func checkClaim(field, v string) error {
	if !claimNameRE.MatchString(v) {
		return fieldErr(field, "must be a claim name of at most 256 characters without spaces")
	}
	return nil
}
