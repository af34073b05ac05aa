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
// Assertion (saml-profiles-2.0-os §4.1.4.2–4.1.4.3).
func (sp *SP) check(r *xResponse, responseSigned bool, idp *IdP, now time.Time, skew time.Duration) (*Assertion, *Error) {
	aud, acs := sp.entityID(), sp.ACSURL
	ts := func(t time.Time) string { return t.UTC().Format(time.RFC3339) }
	parseTime := func(what, v string) (time.Time, *Error) {
		t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(v))
		if err != nil {
			return time.Time{}, invalidToken("bad-value", "configure the IdP to send xs:dateTime values in UTC",
				"%s %s is not an xs:dateTime", what, q(v))
		}
		return t, nil
	}
	notYet := func(what string, t time.Time) *Error {
		return invalidToken("not-yet-valid", "check that the IdP's and gatehouse's clocks are synchronized (NTP)",
			"%s is not valid before %s, server time %s", what, ts(t), ts(now))
	}
	expired := func(what string, t time.Time) *Error {
		return invalidToken("expired", "sign in again at the IdP to get a fresh assertion; if it keeps happening, check the clocks (NTP)",
			"%s expired at %s, server time %s", what, ts(t), ts(now))
	}

	if r.Version != "2.0" {
		return nil, invalidToken("version", "configure the IdP to use SAML 2.0", "the response version is %s, want 2.0", q(r.Version))
	}
	if len(r.Status) != 1 || r.Status[0].Code.Value != statusSuccess {
		code := ""
		if len(r.Status) > 0 {
			code = r.Status[0].Code.Value
			if s := r.Status[0].Code.Sub; s != nil {
				code += " / " + s.Value
			}
		}
		return nil, newError(CodeAccessDenied, "status", "check the user's assignment to this application at the IdP",
			"the IdP reported status %s instead of Success", q(code))
	}
	for _, iss := range r.Issuers {
		if strings.TrimSpace(iss) != idp.EntityID {
			return nil, invalidToken("issuer", "make the IdP use its registered entity ID as Issuer",
				"the response Issuer %s does not match IdP %s", q(iss), q(idp.EntityID))
		}
	}
	if r.Destination != "" && r.Destination != acs {
		return nil, invalidToken("destination", fmt.Sprintf("set the ACS URL of this application in the IdP to %q", acs),
			"the response Destination %s is not this service provider's ACS URL", q(r.Destination))
	}
	x := &r.Assertions[0]
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
	a := &Assertion{Issuer: idp.EntityID, AssertionID: x.ID, ResponseID: r.ID}
	// IssueInstant is informational: the validity window is the
	// Conditions and SubjectConfirmationData limits (saml-core §2.5.1.2).
	issued, e := parseTime("IssueInstant", x.IssueInstant)
	if e != nil {
		return nil, e
	}
	a.IssueInstant = issued

	// Subject and bearer confirmation (§4.1.4.2).
	if len(x.Subjects) != 1 || len(x.Subjects[0].NameIDs) != 1 || strings.TrimSpace(x.Subjects[0].NameIDs[0].Value) == "" {
		return nil, invalidToken("subject", "configure the IdP to send exactly one non-empty NameID",
			"the assertion needs exactly one Subject with one non-empty NameID")
	}
	nid := x.Subjects[0].NameIDs[0]
	a.NameID, a.NameIDFormat = strings.TrimSpace(nid.Value), nid.Format
	a.NameQualifier, a.SPNameQualifier = nid.NameQualifier, nid.SPNameQualifier

	var notOnOrAfter time.Time
	bearers := 0
	for _, c := range x.Subjects[0].Confirmations {
		if c.Method != methodBearer {
			continue
		}
		bearers++
		if len(c.Data) != 1 {
			return nil, invalidToken("confirmation", "configure the IdP to send one SubjectConfirmationData with Recipient and NotOnOrAfter",
				"a bearer SubjectConfirmation has %d SubjectConfirmationData elements, want 1", len(c.Data))
		}
		d := c.Data[0]
		if d.Recipient != acs {
			return nil, invalidToken("recipient", fmt.Sprintf("set the recipient / ACS URL of this application in the IdP to %q", acs),
				"the assertion Recipient %s is not this service provider's ACS URL", q(d.Recipient))
		}
		if d.NotOnOrAfter == "" {
			return nil, invalidToken("missing-element", "configure the IdP to send a NotOnOrAfter in SubjectConfirmationData",
				"the SubjectConfirmationData has no NotOnOrAfter")
		}
		t, e := parseTime("SubjectConfirmationData NotOnOrAfter", d.NotOnOrAfter)
		if e != nil {
			return nil, e
		}
		if !now.Before(t.Add(skew)) {
			return nil, expired("assertion", t)
		}
		if notOnOrAfter.IsZero() || t.Before(notOnOrAfter) {
			notOnOrAfter = t
		}
		if d.NotBefore != "" {
			nb, e := parseTime("SubjectConfirmationData NotBefore", d.NotBefore)
			if e != nil {
				return nil, e
			}
			if now.Before(nb.Add(-skew)) {
				return nil, notYet("assertion", nb)
			}
		}
		if d.InResponseTo != "" {
			if a.InResponseTo != "" && a.InResponseTo != d.InResponseTo {
				return nil, invalidToken("in-response-to", "configure the IdP to answer one request per response",
					"the SubjectConfirmationData elements answer different requests")
			}
			a.InResponseTo = d.InResponseTo
		}
	}
	if bearers == 0 {
		return nil, invalidToken("confirmation-method", "configure the IdP to issue bearer assertions (urn:oasis:names:tc:SAML:2.0:cm:bearer)",
			"the assertion has no bearer SubjectConfirmation")
	}
	if r.InResponseTo != "" {
		switch {
		case a.InResponseTo == "" && responseSigned:
			a.InResponseTo = r.InResponseTo
		case a.InResponseTo != "" && a.InResponseTo != r.InResponseTo:
			return nil, invalidToken("in-response-to", "send the response to the login that requested it",
				"the Response and its assertion answer different requests")
		}
	}

	// Conditions: validity window and audience (saml-core §2.5.1).
	if len(x.Conditions) != 1 {
		return nil, invalidToken("missing-element", "configure the IdP to send a Conditions element with an AudienceRestriction",
			"the assertion has %d Conditions elements, want 1", len(x.Conditions))
	}
	cond := x.Conditions[0]
	if cond.NotBefore != "" {
		nb, e := parseTime("Conditions NotBefore", cond.NotBefore)
		if e != nil {
			return nil, e
		}
		if now.Before(nb.Add(-skew)) {
			return nil, notYet("assertion", nb)
		}
		a.NotBefore = nb
	}
	if cond.NotOnOrAfter == "" {
		return nil, invalidToken("missing-element", "configure the IdP to send Conditions NotOnOrAfter", "the assertion Conditions have no NotOnOrAfter")
	}
	noa, e := parseTime("Conditions NotOnOrAfter", cond.NotOnOrAfter)
	if e != nil {
		return nil, e
	}
	if !now.Before(noa.Add(skew)) {
		return nil, expired("assertion", noa)
	}
	if noa.Before(notOnOrAfter) {
		notOnOrAfter = noa
	}
	a.NotOnOrAfter = notOnOrAfter
	audFix := fmt.Sprintf("set the audience (SP entity ID) of this application in the IdP to %q", aud)
	if len(cond.Restrictions) == 0 {
		return nil, invalidToken("audience", audFix, "the assertion has no AudienceRestriction; it must name %q", aud)
	}
	for _, rs := range cond.Restrictions {
		ok := false
		for _, v := range rs.Audiences {
			v = strings.TrimSpace(v)
			a.Audiences = append(a.Audiences, v)
			ok = ok || v == aud
		}
		if !ok {
			return nil, invalidToken("audience", audFix, "the assertion audience %s does not include %q",
				q(strings.Join(rs.Audiences, ", ")), aud)
		}
	}

	// Authentication statement (optional).
	if len(x.Authn) > 0 {
		st := x.Authn[0]
		a.SessionIndex = st.SessionIndex
		if st.AuthnInstant != "" {
			t, e := parseTime("AuthnInstant", st.AuthnInstant)
			if e != nil {
				return nil, e
			}
			a.AuthnInstant = t
		}
		if st.SessionNotOnOrAfter != "" {
			t, e := parseTime("SessionNotOnOrAfter", st.SessionNotOnOrAfter)
			if e != nil {
				return nil, e
			}
			if !now.Before(t.Add(skew)) {
				return nil, expired("the IdP session", t)
			}
			a.SessionNotOnOrAfter = t
		}
	}

	// Attributes.
	a.Attributes = map[string][]string{}
	for _, st := range x.AttrStmts {
		for _, at := range st.Attributes {
			if _, ok := a.Attributes[at.Name]; !ok {
				a.Attributes[at.Name] = []string{}
			}
			for _, v := range at.Values {
				if v.Nil == "true" || v.Nil == "1" {
					continue
				}
				a.Attributes[at.Name] = append(a.Attributes[at.Name], strings.TrimSpace(v.Value))
			}
		}
	}
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
		return nil, e
	}
	a.AWS = aws
	if sp.RequireAWSRole {
		if len(aws.Roles) == 0 {
			return nil, newError(CodeAccessDenied, "no-role",
				"map the IdP attribute "+AttrRole+" to values 'roleArn,providerArn' for this user",
				"the assertion grants no role: it has no %s value", AttrRole)
		}
		if aws.RoleSessionName == "" {
			return nil, invalidToken("no-role-session-name",
				"map the IdP attribute "+AttrRoleSessionName+" (for example to the user's email or username)",
				"the assertion has no %s", AttrRoleSessionName)
		}
	}
	return a, nil
}
