package saml

import (
	"encoding/xml"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/beevik/etree"
	dsig "github.com/russellhaering/goxmldsig"
	"github.com/russellhaering/goxmldsig/etreeutils"
)

// Assertion is what a validated SAML response says about its subject. All of
// it comes from the signed element.
type Assertion struct {
	// Issuer is the IdP's entity ID.
	Issuer string
	// AssertionID is the Assertion's ID attribute (unique per Issuer).
	AssertionID string
	// ResponseID is the Response's ID attribute.
	ResponseID string
	// InResponseTo is the request ID the response answers, "" if unsolicited.
	InResponseTo string

	// NameID is the subject's name identifier, whole: XML comments inside it
	// do not split it.
	NameID string
	// NameIDFormat is the NameID Format URI, "" when unspecified.
	NameIDFormat    string
	NameQualifier   string
	SPNameQualifier string

	// SessionIndex identifies the IdP session (AuthnStatement), "" if none.
	SessionIndex string
	// AuthnInstant is when the user authenticated; zero if not given.
	AuthnInstant time.Time
	// SessionNotOnOrAfter is when the IdP session ends; zero if not given.
	SessionNotOnOrAfter time.Time

	// IssueInstant is when the assertion was issued.
	IssueInstant time.Time
	// NotBefore is the start of the validity window; zero if not given.
	NotBefore time.Time
	// NotOnOrAfter is the end of the validity window: the earliest of the
	// Conditions and bearer SubjectConfirmationData limits.
	NotOnOrAfter time.Time
	// Audiences lists every Audience value of the assertion.
	Audiences []string

	// Attributes maps each attribute Name to its values, in document order.
	// Repeated attributes are merged; xsi:nil values are dropped.
	Attributes map[string][]string
	// Groups is the union of the values of the SP's group attributes.
	Groups []string
	// AWS holds the parsed https://aws.amazon.com/SAML/Attributes/*.
	AWS AWSAttributes
}

// XML shapes, read with encoding/xml from the verified element only
// (saml-core-2.0-os §2 and §3.2–3.3).
type xResponse struct {
	XMLName      xml.Name     `xml:"urn:oasis:names:tc:SAML:2.0:protocol Response"`
	ID           string       `xml:"ID,attr"`
	Version      string       `xml:"Version,attr"`
	Destination  string       `xml:"Destination,attr"`
	InResponseTo string       `xml:"InResponseTo,attr"`
	Issuers      []string     `xml:"urn:oasis:names:tc:SAML:2.0:assertion Issuer"`
	Status       []xStatus    `xml:"urn:oasis:names:tc:SAML:2.0:protocol Status"`
	Assertions   []xAssertion `xml:"urn:oasis:names:tc:SAML:2.0:assertion Assertion"`
}

type xStatus struct {
	Code xStatusCode `xml:"urn:oasis:names:tc:SAML:2.0:protocol StatusCode"`
}

type xStatusCode struct {
	Value string       `xml:"Value,attr"`
	Sub   *xStatusCode `xml:"urn:oasis:names:tc:SAML:2.0:protocol StatusCode"`
}

type xAssertion struct {
	ID           string            `xml:"ID,attr"`
	Version      string            `xml:"Version,attr"`
	IssueInstant string            `xml:"IssueInstant,attr"`
	Issuers      []string          `xml:"urn:oasis:names:tc:SAML:2.0:assertion Issuer"`
	Subjects     []xSubject        `xml:"urn:oasis:names:tc:SAML:2.0:assertion Subject"`
	Conditions   []xConditions     `xml:"urn:oasis:names:tc:SAML:2.0:assertion Conditions"`
	Authn        []xAuthnStatement `xml:"urn:oasis:names:tc:SAML:2.0:assertion AuthnStatement"`
	AttrStmts    []xAttributeStmt  `xml:"urn:oasis:names:tc:SAML:2.0:assertion AttributeStatement"`
}

type xSubject struct {
	NameIDs       []xNameID       `xml:"urn:oasis:names:tc:SAML:2.0:assertion NameID"`
	Confirmations []xConfirmation `xml:"urn:oasis:names:tc:SAML:2.0:assertion SubjectConfirmation"`
}

type xNameID struct {
	Format          string `xml:"Format,attr"`
	NameQualifier   string `xml:"NameQualifier,attr"`
	SPNameQualifier string `xml:"SPNameQualifier,attr"`
	Value           string `xml:",chardata"`
}

type xConfirmation struct {
	Method string              `xml:"Method,attr"`
	Data   []xConfirmationData `xml:"urn:oasis:names:tc:SAML:2.0:assertion SubjectConfirmationData"`
}

type xConfirmationData struct {
	NotBefore    string `xml:"NotBefore,attr"`
	NotOnOrAfter string `xml:"NotOnOrAfter,attr"`
	Recipient    string `xml:"Recipient,attr"`
	InResponseTo string `xml:"InResponseTo,attr"`
}

type xConditions struct {
	NotBefore    string   `xml:"NotBefore,attr"`
	NotOnOrAfter string   `xml:"NotOnOrAfter,attr"`
	Restrictions []xAudRs `xml:"urn:oasis:names:tc:SAML:2.0:assertion AudienceRestriction"`
}

type xAudRs struct {
	Audiences []string `xml:"urn:oasis:names:tc:SAML:2.0:assertion Audience"`
}

type xAuthnStatement struct {
	AuthnInstant        string `xml:"AuthnInstant,attr"`
	SessionIndex        string `xml:"SessionIndex,attr"`
	SessionNotOnOrAfter string `xml:"SessionNotOnOrAfter,attr"`
}

type xAttributeStmt struct {
	Attributes []xAttribute `xml:"urn:oasis:names:tc:SAML:2.0:assertion Attribute"`
}

type xAttribute struct {
	Name   string       `xml:"Name,attr"`
	Values []xAttrValue `xml:"urn:oasis:names:tc:SAML:2.0:assertion AttributeValue"`
}

type xAttrValue struct {
	Nil   string `xml:"http://www.w3.org/2001/XMLSchema-instance nil,attr"`
	Value string `xml:",chardata"`
}

const (
	statusSuccess = "urn:oasis:names:tc:SAML:2.0:status:Success"
	methodBearer  = "urn:oasis:names:tc:SAML:2.0:cm:bearer"
)

// verifiedResponse returns the response as covered by signatures: when the
// Response is signed, the verified Response (and so its assertions); when
// not, the unverified Response attributes with only the assertions whose own
// signature verifies. An assertion anywhere but directly under the Response
// is an error, as in gosaml2.
func verifiedResponse(doc *etree.Document, vctx *dsig.ValidationContext) (*xResponse, bool, error) {
	root := doc.Root()
	signed, err := vctx.Validate(root)
	if err == nil {
		var r xResponse
		if err := unmarshalElement(signed, &r); err != nil {
			return nil, false, err
		}
		return &r, true, nil
	}
	if !errors.Is(err, dsig.ErrMissingSignature) {
		return nil, false, err
	}
	var r xResponse
	if err := unmarshalElement(root, &r); err != nil {
		return nil, false, err
	}
	r.Assertions = nil
	err = etreeutils.NSFindIterate(root, nsAssertion, "Assertion", func(ctx etreeutils.NSContext, el *etree.Element) error {
		if el.Parent() != root {
			return fmt.Errorf("assertion inside %s", el.Parent().Tag)
		}
		detached, err := etreeutils.NSDetatch(ctx, el)
		if err != nil {
			return err
		}
		verified, err := vctx.Validate(detached)
		if err != nil {
			return err
		}
		var a xAssertion
		if err := unmarshalElement(verified, &a); err != nil {
			return err
		}
		r.Assertions = append(r.Assertions, a)
		return nil
	})
	if err != nil {
		return nil, false, err
	}
	return &r, false, nil
}

func unmarshalElement(el *etree.Element, v any) error {
	doc := etree.NewDocument()
	doc.SetRoot(el.Copy())
	b, err := doc.WriteToBytes()
	if err != nil {
		return err
	}
	return xml.Unmarshal(b, v)
}

// check applies the SP's rules to the verified response and builds the
// Assertion (saml-profiles-2.0-os §4.1.4.2–4.1.4.3). The signature and
// wrapping checks (verifiedResponse) come before it, and the one-time claim
// of the assertion ID after it (SP.Validate). The steps run in a fixed
// order and the first that fails decides the error: the tests and the
// corpora in shared/corpora/saml pin both.
func (sp *SP) check(r *xResponse, responseSigned bool, idp *IdP, now time.Time, skew time.Duration) (*Assertion, *Error) {
	w := window{now: now, skew: skew}
	if e := sp.checkResponse(r, idp); e != nil {
		return nil, e
	}
	x := &r.Assertions[0]
	a, e := checkAssertionHeader(x, r.ID, idp, w)
	if e != nil {
		return nil, e
	}
	if e := checkSubject(x, a); e != nil {
		return nil, e
	}
	notOnOrAfter, e := sp.checkBearers(x.Subjects[0].Confirmations, a, w)
	if e != nil {
		return nil, e
	}
	if e := checkInResponseTo(r.InResponseTo, responseSigned, a); e != nil {
		return nil, e
	}
	if e := sp.checkConditions(x.Conditions, notOnOrAfter, a, w); e != nil {
		return nil, e
	}
	if e := readAuthnStatement(x.Authn, a, w); e != nil {
		return nil, e
	}
	if e := sp.readAttributes(x.AttrStmts, a); e != nil {
		return nil, e
	}
	return a, nil
}

// window is the server time and the allowed clock skew of one check. A
// limit t holds while now is before t+skew (NotOnOrAfter) or not before
// t-skew (NotBefore).
type window struct {
	now  time.Time
	skew time.Duration
}

// ts formats t for error messages.
func ts(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// parse reads the xs:dateTime value v of the attribute named what, or
// returns a bad-value error naming it.
func (w window) parse(what, v string) (time.Time, *Error) {
	t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(v))
	if err != nil {
		return time.Time{}, invalidToken("bad-value", "configure the IdP to send xs:dateTime values in UTC",
			"%s %s is not an xs:dateTime", what, q(v))
	}
	return t, nil
}

// notBefore returns a not-yet-valid error about what when now is before
// t-skew, and nil otherwise.
func (w window) notBefore(what string, t time.Time) *Error {
	if !w.now.Before(t.Add(-w.skew)) {
		return nil
	}
	return invalidToken("not-yet-valid", "check that the IdP's and gatehouse's clocks are synchronized (NTP)",
		"%s is not valid before %s, server time %s", what, ts(t), ts(w.now))
}

// notOnOrAfter returns an expired error about what when now is not before
// t+skew, and nil otherwise.
func (w window) notOnOrAfter(what string, t time.Time) *Error {
	if w.now.Before(t.Add(w.skew)) {
		return nil
	}
	return invalidToken("expired", "sign in again at the IdP to get a fresh assertion; if it keeps happening, check the clocks (NTP)",
		"%s expired at %s, server time %s", what, ts(t), ts(w.now))
}

// checkResponse checks the Response element: version 2.0, exactly one
// Success status (else access denied, naming the IdP's status), every
// Issuer equal to the IdP's entity ID, and a Destination, when given,
// equal to the SP's ACS URL.
func (sp *SP) checkResponse(r *xResponse, idp *IdP) *Error {
	if r.Version != "2.0" {
		return invalidToken("version", "configure the IdP to use SAML 2.0", "the response version is %s, want 2.0", q(r.Version))
	}
	if len(r.Status) != 1 || r.Status[0].Code.Value != statusSuccess {
		code := ""
		if len(r.Status) > 0 {
			code = r.Status[0].Code.Value
			if s := r.Status[0].Code.Sub; s != nil {
				code += " / " + s.Value
			}
		}
		return newError(CodeAccessDenied, "status", "check the user's assignment to this application at the IdP",
			"the IdP reported status %s instead of Success", q(code))
	}
	for _, iss := range r.Issuers {
		if strings.TrimSpace(iss) != idp.EntityID {
			return invalidToken("issuer", "make the IdP use its registered entity ID as Issuer",
				"the response Issuer %s does not match IdP %s", q(iss), q(idp.EntityID))
		}
	}
	if acs := sp.ACSURL; r.Destination != "" && r.Destination != acs {
		return invalidToken("destination", fmt.Sprintf("set the ACS URL of this application in the IdP to %q", acs),
			"the response Destination %s is not this service provider's ACS URL", q(r.Destination))
	}
	return nil
}

// checkAssertionHeader checks the assertion's version (2.0), ID (present)
// and single Issuer (the IdP's entity ID), and starts the Assertion with
// them, the response ID and the IssueInstant. IssueInstant must parse but
// is informational: the validity window is the Conditions and
// SubjectConfirmationData limits (saml-core §2.5.1.2).
func checkAssertionHeader(x *xAssertion, responseID string, idp *IdP, w window) (*Assertion, *Error) {
	if x.Version != "2.0" {
		return nil, invalidToken("version", "configure the IdP to use SAML 2.0", "the assertion version is %s, want 2.0", q(x.Version))
	}
	if x.ID == "" {
		return nil, invalidToken("missing-element", "configure the IdP to send a SAML 2.0 assertion", "the assertion has no ID")
	}
	if len(x.Issuers) != 1 || strings.TrimSpace(x.Issuers[0]) != idp.EntityID {
		return nil, invalidToken("issuer", "make the IdP use its registered entity ID as the assertion Issuer",
			"the assertion Issuer does not match IdP %s", q(idp.EntityID))
	}
	issued, e := w.parse("IssueInstant", x.IssueInstant)
	if e != nil {
		return nil, e
	}
	return &Assertion{Issuer: idp.EntityID, AssertionID: x.ID, ResponseID: responseID, IssueInstant: issued}, nil
}

// checkSubject requires exactly one Subject with exactly one non-empty
// NameID (§4.1.4.2), and copies the NameID and its qualifiers into a.
func checkSubject(x *xAssertion, a *Assertion) *Error {
	if len(x.Subjects) != 1 || len(x.Subjects[0].NameIDs) != 1 || strings.TrimSpace(x.Subjects[0].NameIDs[0].Value) == "" {
		return invalidToken("subject", "configure the IdP to send exactly one non-empty NameID",
			"the assertion needs exactly one Subject with one non-empty NameID")
	}
	nid := x.Subjects[0].NameIDs[0]
	a.NameID, a.NameIDFormat = strings.TrimSpace(nid.Value), nid.Format
	a.NameQualifier, a.SPNameQualifier = nid.NameQualifier, nid.SPNameQualifier
	return nil
}

// checkBearers checks every bearer SubjectConfirmation, in document order
// (§4.1.4.2), and requires at least one; other methods are skipped. It
// returns the earliest bearer NotOnOrAfter and records in a the request
// the confirmations answer, which must be one.
func (sp *SP) checkBearers(cs []xConfirmation, a *Assertion, w window) (time.Time, *Error) {
	var notOnOrAfter time.Time
	bearers := 0
	for _, c := range cs {
		if c.Method != methodBearer {
			continue
		}
		bearers++
		if len(c.Data) != 1 {
			return time.Time{}, invalidToken("confirmation", "configure the IdP to send one SubjectConfirmationData with Recipient and NotOnOrAfter",
				"a bearer SubjectConfirmation has %d SubjectConfirmationData elements, want 1", len(c.Data))
		}
		t, e := sp.checkBearerData(c.Data[0], a, w)
		if e != nil {
			return time.Time{}, e
		}
		if notOnOrAfter.IsZero() || t.Before(notOnOrAfter) {
			notOnOrAfter = t
		}
	}
	if bearers == 0 {
		return time.Time{}, invalidToken("confirmation-method", "configure the IdP to issue bearer assertions (urn:oasis:names:tc:SAML:2.0:cm:bearer)",
			"the assertion has no bearer SubjectConfirmation")
	}
	return notOnOrAfter, nil
}

// checkBearerData checks one bearer SubjectConfirmationData: Recipient is
// the SP's ACS URL, NotOnOrAfter is present and not passed, NotBefore (if
// given) is reached, and InResponseTo (if given) agrees with any earlier
// one, which it records in a. It returns the NotOnOrAfter.
func (sp *SP) checkBearerData(d xConfirmationData, a *Assertion, w window) (time.Time, *Error) {
	if acs := sp.ACSURL; d.Recipient != acs {
		return time.Time{}, invalidToken("recipient", fmt.Sprintf("set the recipient / ACS URL of this application in the IdP to %q", acs),
			"the assertion Recipient %s is not this service provider's ACS URL", q(d.Recipient))
	}
	if d.NotOnOrAfter == "" {
		return time.Time{}, invalidToken("missing-element", "configure the IdP to send a NotOnOrAfter in SubjectConfirmationData",
			"the SubjectConfirmationData has no NotOnOrAfter")
	}
	t, e := w.parse("SubjectConfirmationData NotOnOrAfter", d.NotOnOrAfter)
	if e != nil {
		return time.Time{}, e
	}
	if e := w.notOnOrAfter("assertion", t); e != nil {
		return time.Time{}, e
	}
	if d.NotBefore != "" {
		nb, e := w.parse("SubjectConfirmationData NotBefore", d.NotBefore)
		if e != nil {
			return time.Time{}, e
		}
		if e := w.notBefore("assertion", nb); e != nil {
			return time.Time{}, e
		}
	}
	if d.InResponseTo != "" {
		if a.InResponseTo != "" && a.InResponseTo != d.InResponseTo {
			return time.Time{}, invalidToken("in-response-to", "configure the IdP to answer one request per response",
				"the SubjectConfirmationData elements answer different requests")
		}
		a.InResponseTo = d.InResponseTo
	}
	return t, nil
}

// checkInResponseTo reconciles the Response's InResponseTo with the one the
// bearer confirmations gave: when they gave none, a signed Response's
// value is adopted (an unsigned one's is not trusted); when both are
// given, they must be equal.
func checkInResponseTo(responseIRT string, responseSigned bool, a *Assertion) *Error {
	if responseIRT == "" {
		return nil
	}
	switch {
	case a.InResponseTo == "" && responseSigned:
		a.InResponseTo = responseIRT
	case a.InResponseTo != "" && a.InResponseTo != responseIRT:
		return invalidToken("in-response-to", "send the response to the login that requested it",
			"the Response and its assertion answer different requests")
	}
	return nil
}

// checkConditions checks the single Conditions element (saml-core
// §2.5.1): NotBefore (if given) is reached, NotOnOrAfter is present and
// not passed, and the audience restrictions hold (checkAudiences). It sets
// a.NotBefore, and a.NotOnOrAfter to the earlier of NotOnOrAfter and the
// bearers' limit.
func (sp *SP) checkConditions(conds []xConditions, bearerLimit time.Time, a *Assertion, w window) *Error {
	if len(conds) != 1 {
		return invalidToken("missing-element", "configure the IdP to send a Conditions element with an AudienceRestriction",
			"the assertion has %d Conditions elements, want 1", len(conds))
	}
	cond := conds[0]
	if cond.NotBefore != "" {
		nb, e := w.parse("Conditions NotBefore", cond.NotBefore)
		if e != nil {
			return e
		}
		if e := w.notBefore("assertion", nb); e != nil {
			return e
		}
		a.NotBefore = nb
	}
	if cond.NotOnOrAfter == "" {
		return invalidToken("missing-element", "configure the IdP to send Conditions NotOnOrAfter", "the assertion Conditions have no NotOnOrAfter")
	}
	noa, e := w.parse("Conditions NotOnOrAfter", cond.NotOnOrAfter)
	if e != nil {
		return e
	}
	if e := w.notOnOrAfter("assertion", noa); e != nil {
		return e
	}
	a.NotOnOrAfter = bearerLimit
	if noa.Before(bearerLimit) {
		a.NotOnOrAfter = noa
	}
	return sp.checkAudiences(cond.Restrictions, a)
}

// checkAudiences requires at least one AudienceRestriction, and that each
// names the SP's entity ID among its Audience values (saml-core
// §2.5.1.4: every restriction must hold). It collects every Audience into
// a.Audiences.
func (sp *SP) checkAudiences(rss []xAudRs, a *Assertion) *Error {
	aud := sp.entityID()
	audFix := fmt.Sprintf("set the audience (SP entity ID) of this application in the IdP to %q", aud)
	if len(rss) == 0 {
		return invalidToken("audience", audFix, "the assertion has no AudienceRestriction; it must name %q", aud)
	}
	for _, rs := range rss {
		ok := false
		for _, v := range rs.Audiences {
			v = strings.TrimSpace(v)
			a.Audiences = append(a.Audiences, v)
			ok = ok || v == aud
		}
		if !ok {
			return invalidToken("audience", audFix, "the assertion audience %s does not include %q",
				q(strings.Join(rs.Audiences, ", ")), aud)
		}
	}
	return nil
}

// readAuthnStatement reads the first AuthnStatement, which is optional:
// its SessionIndex, its AuthnInstant, and its SessionNotOnOrAfter, which
// must not have passed (the IdP session has ended).
func readAuthnStatement(sts []xAuthnStatement, a *Assertion, w window) *Error {
	if len(sts) == 0 {
		return nil
	}
	st := sts[0]
	a.SessionIndex = st.SessionIndex
	if st.AuthnInstant != "" {
		t, e := w.parse("AuthnInstant", st.AuthnInstant)
		if e != nil {
			return e
		}
		a.AuthnInstant = t
	}
	if st.SessionNotOnOrAfter != "" {
		t, e := w.parse("SessionNotOnOrAfter", st.SessionNotOnOrAfter)
		if e != nil {
			return e
		}
		if e := w.notOnOrAfter("the IdP session", t); e != nil {
			return e
		}
		a.SessionNotOnOrAfter = t
	}
	return nil
}

// readAttributes collects the attribute statements into a.Attributes
// (repeated attributes merged, xsi:nil values dropped), the SP's group
// attributes into a.Groups (deduplicated, in order), and the AWS
// attributes into a.AWS. With RequireAWSRole, an assertion without a role
// is access denied, and one without a RoleSessionName invalid.
func (sp *SP) readAttributes(stmts []xAttributeStmt, a *Assertion) *Error {
	a.Attributes = attributesOf(stmts)
	seen := map[string]bool{}
	for _, name := range sp.groupAttributes() {
		for _, g := range a.Attributes[name] {
			if g != "" && !seen[g] {
				seen[g] = true
				a.Groups = append(a.Groups, g)
			}
		}
	}
	aws, e := parseAWSAttributes(a.Attributes)
	if e != nil {
		return e
	}
	a.AWS = aws
	if !sp.RequireAWSRole {
		return nil
	}
	if len(aws.Roles) == 0 {
		return newError(CodeAccessDenied, "no-role",
			"map the IdP attribute "+AttrRole+" to values 'roleArn,providerArn' for this user",
			"the assertion grants no role: it has no %s value", AttrRole)
	}
	if aws.RoleSessionName == "" {
		return invalidToken("no-role-session-name",
			"map the IdP attribute "+AttrRoleSessionName+" (for example to the user's email or username)",
			"the assertion has no %s", AttrRoleSessionName)
	}
	return nil
}

// attributesOf maps each attribute Name of stmts to its trimmed values, in
// document order; repeated attributes are merged, xsi:nil values dropped,
// and an attribute without values maps to an empty list.
func attributesOf(stmts []xAttributeStmt) map[string][]string {
	attrs := map[string][]string{}
	for _, st := range stmts {
		for _, at := range st.Attributes {
			if _, ok := attrs[at.Name]; !ok {
				attrs[at.Name] = []string{}
			}
			for _, v := range at.Values {
				if v.Nil == "true" || v.Nil == "1" {
					continue
				}
				attrs[at.Name] = append(attrs[at.Name], strings.TrimSpace(v.Value))
			}
		}
	}
	return attrs
}
