package saml

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/beevik/etree"
	saml2 "github.com/russellhaering/gosaml2"
	dsig "github.com/russellhaering/goxmldsig"
)

// Defaults for SP fields left zero.
const (
	// DefaultEntityID is the SP entity ID (and required audience) when
	// SP.EntityID is empty. It is AWS's, so IdP applications templated for
	// "AWS account federation" work unchanged.
	DefaultEntityID = "urn:amazon:webservices"
	// DefaultMaxSkew is the clock skew tolerated on every time check.
	DefaultMaxSkew = 3 * time.Minute
	// MaxSkewLimit is the largest MaxSkew that Check accepts.
	MaxSkewLimit = 5 * time.Minute
	// DefaultMaxResponseSize bounds the base64 SAMLResponse value, in bytes.
	DefaultMaxResponseSize = 256 << 10
)

// DefaultGroupAttributes are the attribute names read as group memberships
// when SP.GroupAttributes is nil.
var DefaultGroupAttributes = []string{"groups", "http://schemas.xmlsoap.org/claims/Group", "memberOf"}

// ReplayCache remembers assertion IDs so that each is accepted once.
// Seen records id until the given time and reports whether it was already
// recorded and not yet expired; the check and the insert must be atomic,
// also across replicas for shared implementations. An error makes the
// validation fail (closed).
type ReplayCache interface {
	Seen(id string, until time.Time) (alreadySeen bool, err error)
}

// SP is a SAML 2.0 service provider that validates Web Browser SSO responses
// (saml-profiles-2.0-os §4.1) delivered with the HTTP-POST binding.
//
// Configure the fields, call Check once, then share the SP: Validate is safe
// for concurrent use as long as the fields are not modified.
type SP struct {
	// EntityID is the SP's entity ID. Every assertion must name it in each of
	// its AudienceRestrictions. Default DefaultEntityID.
	EntityID string
	// ACSURL is the assertion consumer service URL. The assertion's
	// SubjectConfirmationData Recipient must equal it, and so must the
	// Response Destination when present. Required.
	ACSURL string
	// IdPs resolves the response Issuer to a registered IdP. Required.
	IdPs IdPResolver
	// Clock returns the current time. Default time.Now.
	Clock func() time.Time
	// MaxSkew is the clock skew tolerated on NotBefore and NotOnOrAfter.
	// Zero means DefaultMaxSkew; at most MaxSkewLimit.
	MaxSkew time.Duration
	// Replay records assertion IDs for one-time use. Required; see
	// StoreReplayCache, shared by every replica.
	Replay ReplayCache
	// RequireInResponseTo, when set, makes every response answer an
	// SP-initiated request: its InResponseTo must be present and the func
	// must return true for it (and should consume it). When nil,
	// IdP-initiated responses are accepted and InResponseTo is only checked
	// for consistency.
	RequireInResponseTo func(id string) bool
	// RequireAWSRole makes an assertion without any
	// https://aws.amazon.com/SAML/Attributes/Role value (AccessDenied) or
	// without a RoleSessionName (InvalidIdentityToken) fail, as
	// AssumeRoleWithSAML needs both.
	RequireAWSRole bool
	// GroupAttributes names the attributes whose values are groups.
	// Nil means DefaultGroupAttributes.
	GroupAttributes []string
	// MaxResponseSize bounds the length of the base64 value passed to
	// Validate. Zero means DefaultMaxResponseSize.
	MaxResponseSize int

	// legacyCrypto disables the algorithm and key-size policy. Tests set it
	// to show that a corpus vector is rejected by that policy and nothing
	// else. It cannot be set from outside the package.
	legacyCrypto bool
}

// Check validates the configuration. It is pure and cheap; Validate calls it too.
func (sp *SP) Check() error {
	var errs []error
	u, err := url.Parse(sp.ACSURL)
	switch {
	case sp.ACSURL == "":
		errs = append(errs, errors.New("ACSURL is required"))
	case err != nil || !u.IsAbs() || u.Host == "":
		errs = append(errs, fmt.Errorf("ACSURL %q is not an absolute URL", sp.ACSURL))
	}
	if sp.IdPs == nil {
		errs = append(errs, errors.New("IdPs is required"))
	}
	if sp.Replay == nil {
		errs = append(errs, errors.New("Replay is required (one-time use of assertions)"))
	}
	if sp.MaxSkew < 0 || sp.MaxSkew > MaxSkewLimit {
		errs = append(errs, fmt.Errorf("MaxSkew %v is outside [0, %v]", sp.MaxSkew, MaxSkewLimit))
	}
	if sp.MaxResponseSize < 0 {
		errs = append(errs, errors.New("MaxResponseSize is negative"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("saml: SP configuration: %w", err)
	}
	return nil
}

func (sp *SP) entityID() string {
	if sp.EntityID == "" {
		return DefaultEntityID
	}
	return sp.EntityID
}

func (sp *SP) now() time.Time {
	if sp.Clock == nil {
		return time.Now()
	}
	return sp.Clock()
}

func (sp *SP) skew() time.Duration {
	if sp.MaxSkew == 0 {
		return DefaultMaxSkew
	}
	return sp.MaxSkew
}

func (sp *SP) maxSize() int {
	if sp.MaxResponseSize == 0 {
		return DefaultMaxResponseSize
	}
	return sp.MaxResponseSize
}

func (sp *SP) groupAttributes() []string {
	if sp.GroupAttributes == nil {
		return DefaultGroupAttributes
	}
	return sp.GroupAttributes
}

// Validate verifies an HTTP-POST binding SAMLResponse value (base64 of the
// XML, saml-bindings-2.0-os §3.5.4) and returns the one assertion it carries.
//
// The Response or the Assertion (or both) must be signed by a certificate of
// the IdP named by the Issuer, with an allowlisted algorithm. Only the
// element that a signature covers is read. The assertion must be addressed to
// this SP (audience, Recipient, Destination), be inside its validity window
// within MaxSkew, carry a Success status, answer a pending request when
// RequireInResponseTo is set, and not have been seen before.
//
// A rejected response yields an *Error. Other errors (configuration, replay
// cache or IdP store failures) are internal and must also deny access.
func (sp *SP) Validate(samlResponse string) (*Assertion, error) {
	if err := sp.Check(); err != nil {
		return nil, err
	}
	now, skew := sp.now(), sp.skew()
	raw, doc, e := sp.parseResponse(samlResponse)
	if e != nil {
		return nil, e
	}
	idp, err := sp.trustedIdP(doc.Root())
	if err != nil {
		return nil, err
	}
	resp, responseSigned, e := sp.verifySignatures(raw, doc, idp, now, skew)
	if e != nil {
		return nil, e
	}
	a, e := sp.check(resp, responseSigned, idp, now, skew)
	if e != nil {
		return nil, e
	}
	if e := sp.checkSolicited(a); e != nil {
		return nil, e
	}
	if err := sp.claimOnce(a, skew); err != nil {
		return nil, err
	}
	return a, nil
}

// parseResponse decodes the binding value and parses it as XML, refusing
// before any signature work what the XML guard refuses (DTDs, entities),
// a root other than a SAML 2.0 samlp:Response, and, unless legacy crypto
// is allowed, any disallowed algorithm anywhere in the tree (scanTree).
// It returns the decoded bytes and the document.
func (sp *SP) parseResponse(samlResponse string) ([]byte, *etree.Document, *Error) {
	raw, e := sp.decode(samlResponse)
	if e != nil {
		return nil, nil, e
	}
	if err := checkXML(raw); err != nil {
		return nil, nil, &Error{Code: CodeInvalidIdentityToken, Reason: "xml",
			Cause: "the SAML response is not acceptable XML: " + err.Error(),
			Fix:   "post the SAMLResponse exactly as the IdP produced it; DTDs and entities are never accepted",
			Err:   err}
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(raw); err != nil || doc.Root() == nil {
		return nil, nil, &Error{Code: CodeInvalidIdentityToken, Reason: "xml", Cause: "the SAML response cannot be parsed",
			Fix: "post the SAMLResponse exactly as the IdP produced it", Err: err}
	}
	root := doc.Root()
	if root.Tag != "Response" || root.NamespaceURI() != nsProtocol {
		return nil, nil, invalidToken("not-response", "post a SAML 2.0 samlp:Response, not a request or logout message",
			"the document is a %s, not a SAML 2.0 Response", q(root.Tag))
	}
	if e := scanTree(root, sp.legacyCrypto); e != nil {
		return nil, nil, e
	}
	return raw, doc, nil
}

// trustedIdP returns the registered IdP that the (still unverified) Issuer
// of root names, whose keys are strong enough unless legacy crypto is
// allowed. An unknown issuer or a weak key is an *Error; a failure of the
// IdP store is an internal error.
func (sp *SP) trustedIdP(root *etree.Element) (*IdP, error) {
	issuer := unverifiedIssuer(root)
	idp, err := sp.IdPs.ResolveIdP(issuer)
	if err != nil {
		return nil, fmt.Errorf("saml: resolve IdP %q: %w", clip(issuer), err)
	}
	if idp == nil {
		return nil, invalidToken("unknown-issuer",
			"register the IdP's metadata as a SAML provider, or make the IdP send its registered entity ID as Issuer",
			"IdP %s is not registered as a SAML provider", q(issuer))
	}
	if err := idp.Check(); err != nil && !sp.legacyCrypto {
		return nil, &Error{Code: CodeInvalidIdentityToken, Reason: "weak-key", Err: err,
			Cause: fmt.Sprintf("IdP %s cannot be trusted: %v", q(idp.EntityID), strings.TrimPrefix(err.Error(), "saml: ")),
			Fix:   "register a signing certificate with an RSA key of at least 2048 bits or an ECDSA P-256+ key"}
	}
	return idp, nil
}

// verifySignatures verifies the response twice with idp's certificates and
// returns what the signatures cover (verifiedResponse), and whether the
// Response itself is signed: first through gosaml2, with its standard
// checks; then through our own read of the verified element, for the
// fields gosaml2's types drop. Both must find exactly one assertion, the
// same one, so that no signature-wrapping variant makes them disagree.
func (sp *SP) verifySignatures(raw []byte, doc *etree.Document, idp *IdP, now time.Time, skew time.Duration) (*xResponse, bool, *Error) {
	// goxmldsig checks certificate validity and gosaml2 the
	// SubjectConfirmationData expiry against this clock, without skew; giving
	// them the earliest instant our skew allows keeps their hard checks no
	// stricter than ours. Our own window checks (check) are authoritative.
	// libraryRoots makes the certificate check symmetric.
	libClock := dsig.NewFakeClockAt(now.Add(-skew))
	certs := &dsig.MemoryX509CertificateStore{Roots: libraryRoots(idp.SigningCerts, skew)}
	libAssertionID, e := sp.libraryVerify(raw, idp, certs, libClock, now)
	if e != nil {
		return nil, false, e
	}
	vctx := dsig.NewDefaultValidationContext(certs)
	vctx.Clock = libClock
	resp, responseSigned, err := verifiedResponse(doc, vctx)
	if err != nil {
		return nil, false, &Error{Code: CodeInvalidIdentityToken, Reason: "signature", Err: err,
			Cause: "the response signature does not cover a usable assertion",
			Fix:   "configure the IdP to sign the assertion or the response (RSA-SHA256)"}
	}
	if len(resp.Assertions) != 1 {
		return nil, false, invalidToken("assertion-count", "configure the IdP to send exactly one assertion per response",
			"the response carries %d assertions, want exactly 1", len(resp.Assertions))
	}
	if resp.Assertions[0].ID != libAssertionID {
		return nil, false, invalidToken("signature", "configure the IdP to sign the assertion or the response",
			"the signed assertion is ambiguous")
	}
	return resp, responseSigned, nil
}

// libraryVerify runs gosaml2's signature verification and standard checks
// on raw, and returns the ID of the one signed assertion it finds.
func (sp *SP) libraryVerify(raw []byte, idp *IdP, certs dsig.X509CertificateStore, clock *dsig.Clock, now time.Time) (string, *Error) {
	lib := &saml2.SAMLServiceProvider{
		IdentityProviderIssuer:      idp.EntityID,
		AssertionConsumerServiceURL: sp.ACSURL,
		ServiceProviderIssuer:       sp.entityID(),
		AudienceURI:                 sp.entityID(),
		IDPCertificateStore:         certs,
		Clock:                       clock,
		AllowMissingAttributes:      true,
		MaximumDecompressedBodySize: int64(len(raw)),
	}
	libResp, err := lib.ValidateEncodedResponse(base64.StdEncoding.EncodeToString(raw))
	if err != nil {
		return "", sp.libraryError(err, idp, now)
	}
	if len(libResp.Assertions) != 1 {
		return "", invalidToken("assertion-count", "configure the IdP to send exactly one assertion per response",
			"the response carries %d signed assertions, want exactly 1", len(libResp.Assertions))
	}
	return libResp.Assertions[0].ID, nil
}

// checkSolicited enforces RequireInResponseTo, when set: the response must
// answer a request, and one that RequireInResponseTo accepts.
func (sp *SP) checkSolicited(a *Assertion) *Error {
	if sp.RequireInResponseTo == nil {
		return nil
	}
	if a.InResponseTo == "" {
		return invalidToken("unsolicited", "start the login at gatehouse (SP-initiated) rather than at the IdP",
			"the response is unsolicited: it has no InResponseTo")
	}
	if !sp.RequireInResponseTo(a.InResponseTo) {
		return invalidToken("in-response-to", "start a new login; the request expired or was already answered",
			"InResponseTo %s does not match a pending authentication request", q(a.InResponseTo))
	}
	return nil
}

// claimOnce claims the assertion's ID in the replay cache until its
// NotOnOrAfter plus skew (one-time use, saml-profiles-2.0-os §4.1.4.5). It
// runs last, so that a rejected response never consumes an ID. A replay is
// an *Error; a failure of the cache is an internal error.
func (sp *SP) claimOnce(a *Assertion, skew time.Duration) error {
	seen, err := sp.Replay.Seen(ReplayKey(a.Issuer, a.AssertionID), a.NotOnOrAfter.Add(skew))
	if err != nil {
		return fmt.Errorf("saml: replay cache: %w", err)
	}
	if seen {
		return invalidToken("replay", "sign in again at the IdP; each assertion can be used only once",
			"assertion %s from %s was already used", q(a.AssertionID), q(a.Issuer))
	}
	return nil
}

// ReplayKey is the ReplayCache key of an assertion: assertion IDs are unique
// per issuer only. It is a fixed-size hash so that untrusted IDs of any
// length cost the same to store.
func ReplayKey(issuer, assertionID string) string {
	h := sha256.Sum256([]byte(issuer + "\x00" + assertionID))
	return "saml-assertion:" + hex.EncodeToString(h[:])
}

func (sp *SP) decode(v string) ([]byte, *Error) {
	if len(v) > sp.maxSize() {
		return nil, newError(CodeValidationError, "too-large",
			"send fewer attributes or groups in the assertion", "the SAMLResponse is %d bytes, the limit is %d", len(v), sp.maxSize())
	}
	v = stripSpace(v)
	if v == "" {
		return nil, newError(CodeValidationError, "empty", "post the IdP's SAMLResponse form value", "the SAMLResponse is empty")
	}
	raw, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		return nil, &Error{Code: CodeValidationError, Reason: "base64", Err: err,
			Cause: "the SAMLResponse is not base64",
			Fix:   "post the SAMLResponse form value as sent by the IdP (base64 of the XML, HTTP-POST binding); URL-decode it first"}
	}
	raw = []byte(strings.TrimPrefix(string(raw), "\xef\xbb\xbf"))
	return raw, nil
}

// unverifiedIssuer reads the Issuer used only to pick the trust store. The
// verified Issuer is compared with the IdP's entity ID afterwards.
func unverifiedIssuer(root *etree.Element) string {
	pick := func(parent *etree.Element) string {
		for _, c := range parent.ChildElements() {
			if c.Tag == "Issuer" && c.NamespaceURI() == nsAssertion {
				return strings.TrimSpace(textOf(c))
			}
		}
		return ""
	}
	if s := pick(root); s != "" {
		return s
	}
	for _, c := range root.ChildElements() {
		if c.Tag == "Assertion" && c.NamespaceURI() == nsAssertion {
			return pick(c)
		}
	}
	return ""
}

func textOf(el *etree.Element) string {
	var b strings.Builder
	for _, t := range el.Child {
		if cd, ok := t.(*etree.CharData); ok {
			b.WriteString(cd.Data)
		}
	}
	return b.String()
}

// libraryError turns a gosaml2/goxmldsig error into an *Error.
func (sp *SP) libraryError(err error, idp *IdP, now time.Time) *Error {
	wrap := func(e *Error) *Error { e.Err = err; return e }
	signFix := "configure the IdP to sign the assertion (or the response) with RSA-SHA256 using its registered certificate"
	var iv saml2.ErrInvalidValue
	var me saml2.ErrMissingElement
	var pe saml2.ErrParsing
	switch {
	case errors.Is(err, dsig.ErrMissingSignature):
		return wrap(invalidToken("unsigned", signFix,
			"the response is not signed: no signature covers the Response or its Assertion"))
	case errors.As(err, &iv):
		switch iv.Key {
		case saml2.DestinationAttr:
			return wrap(invalidToken("destination", fmt.Sprintf("set the ACS URL of this application in the IdP to %q", sp.ACSURL),
				"the response Destination %s is not this service provider's ACS URL", q(iv.Actual)))
		case saml2.RecipientAttr:
			return wrap(invalidToken("recipient", fmt.Sprintf("set the recipient / ACS URL of this application in the IdP to %q", sp.ACSURL),
				"the assertion Recipient %s is not this service provider's ACS URL", q(iv.Actual)))
		case saml2.IssuerTag:
			return wrap(invalidToken("issuer", "make the IdP use its registered entity ID as the Issuer of both Response and Assertion",
				"the Issuer %s does not match IdP %s", q(iv.Actual), q(idp.EntityID)))
		case saml2.StatusCodeTag:
			return wrap(newError(CodeAccessDenied, "status", "check the user's assignment to this application at the IdP",
				"the IdP reported status %s instead of Success", q(iv.Actual)))
		case saml2.NotOnOrAfterAttr:
			return wrap(invalidToken("expired", "sign in again at the IdP to get a fresh assertion; if it keeps happening, check the clocks (NTP)",
				"assertion expired at %s, server time %s", q(iv.Actual), now.UTC().Format(time.RFC3339)))
		case saml2.SubjectConfirmationTag:
			return wrap(invalidToken("confirmation-method", "configure the IdP to issue bearer assertions (urn:oasis:names:tc:SAML:2.0:cm:bearer)",
				"the subject confirmation method %s is not supported", q(iv.Actual)))
		default:
			return wrap(invalidToken("invalid-value", "send a SAML 2.0 response", "unexpected %s value %s", iv.Key, q(iv.Actual)))
		}
	case errors.As(err, &me):
		return wrap(invalidToken("missing-element", "configure the IdP to send a complete SAML 2.0 Web SSO response",
			"the response is %s", me.Error()))
	case errors.As(err, &pe):
		return wrap(invalidToken("bad-value", "configure the IdP to send xs:dateTime values in UTC",
			"the response has an unparsable %s value", pe.Tag))
	}
	switch err.Error() {
	case "Could not verify certificate against trusted certs":
		return wrap(invalidToken("untrusted-certificate", "upload the IdP's current metadata or signing certificate",
			"the response is signed with a certificate that is not registered for IdP %s", q(idp.EntityID)))
	case "Cert is not valid at this time":
		return wrap(certWindowError(idp.SigningCerts, now, sp.skew()))
	}
	return wrap(invalidToken("signature", signFix, "the response signature is invalid"))
}

// libraryRoots returns copies of the IdP's certificates for the signing
// library, which checks a certificate's validity at its clock, now-skew,
// with no skew of its own. Moving each copy's NotBefore back by twice the
// skew makes that check NotBefore-skew ≤ now ≤ NotAfter+skew: the same
// symmetric tolerance as the assertion's window, so a certificate minted a
// second ago is usable at once. The copies keep their DER (Raw), which is
// what the library compares with the certificate in the signature.
func libraryRoots(certs []*x509.Certificate, skew time.Duration) []*x509.Certificate {
	out := make([]*x509.Certificate, len(certs))
	for i, c := range certs {
		cp := *c
		cp.NotBefore = c.NotBefore.Add(-2 * skew)
		out[i] = &cp
	}
	return out
}

// certWindowError names the real cause when the signing certificate is
// outside its validity window (beyond the skew): not yet valid, or
// expired, with the certificate's own time. The library reports only that
// the certificate that signed is out of its window; it is one of the
// registered certificates that are, and the first of those is described.
func certWindowError(certs []*x509.Certificate, now time.Time, skew time.Duration) *Error {
	at := fmt.Sprintf("server time %s, allowed clock skew %s", now.UTC().Format(time.RFC3339), skew)
	for _, c := range certs {
		switch {
		case now.Before(c.NotBefore.Add(-skew)):
			return invalidToken("certificate-validity",
				"check that the IdP's and gatehouse's clocks are synchronized (NTP); the certificate becomes usable at its NotBefore",
				"the IdP signing certificate %s is not valid before %s (%s)", q(c.Subject.CommonName),
				c.NotBefore.UTC().Format(time.RFC3339), at)
		case now.After(c.NotAfter.Add(skew)):
			return invalidToken("certificate-validity", "rotate the IdP signing certificate and upload the new metadata",
				"the IdP signing certificate %s expired at %s (%s)", q(c.Subject.CommonName),
				c.NotAfter.UTC().Format(time.RFC3339), at)
		}
	}
	return invalidToken("certificate-validity", "upload the IdP's current metadata or signing certificate",
		"the IdP signing certificate is outside its validity window (%s)", at)
}
