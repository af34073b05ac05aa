package demoidp

import (
	"bytes"
	"compress/flate"
	"context"
	"crypto"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/beevik/etree"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/gatehouse-dev/gatehouse/internal/awsname"
	"github.com/gatehouse-dev/gatehouse/internal/frontend/websso"
	"github.com/gatehouse-dev/gatehouse/internal/identity"
	"github.com/gatehouse-dev/gatehouse/internal/identity/saml"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

func cryptoSHA256() crypto.Hash { return crypto.SHA256 }

var verifyPassword = identity.VerifyPassword

const (
	nsSAML  = "urn:oasis:names:tc:SAML:2.0:assertion"
	nsSAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
)

var page = template.Must(template.New("").Parse(`
{{define "form"}}<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>DEMO IdP — not for production</title>
<style>body{font-family:sans-serif;max-width:40em;margin:2em auto}.demo{background:#fff3cd;border:2px solid #e0b000;padding:.5em}</style></head><body>
<p class="demo"><strong>DEMO IdP — not for production.</strong> It checks the gatehouse demo directory's public passwords.</p>
<h1>Sign in ({{.Kind}})</h1>
{{if .Error}}<p style="color:#b00">{{.Error}}</p>{{end}}
<form method="post" action="{{.Action}}">
{{range $k, $v := .Hidden}}<input type="hidden" name="{{$k}}" value="{{$v}}">{{end}}
<p><label>User name <input name="username" required></label></p>
<p><label>Password <input name="password" type="password" required></label></p>
<p><button type="submit">Sign in</button></p></form></body></html>{{end}}
{{define "home"}}<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>DEMO IdP — not for production</title></head><body>
<p><strong>DEMO IdP — not for production.</strong></p>
<ul><li>SAML metadata: <a href="{{.Base}}/saml/metadata">{{.Base}}/saml/metadata</a></li>
<li>SAML sign-in (IdP-initiated): <a href="{{.Base}}/saml/sso">{{.Base}}/saml/sso</a></li>
<li>OIDC issuer: <code>{{.Base}}/oidc</code></li></ul></body></html>{{end}}
`))

func render(w http.ResponseWriter, status int, name string, data any) {
	var buf bytes.Buffer
	if err := page.ExecuteTemplate(&buf, name, data); err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("X-Frame-Options", "DENY")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

func (d *IdP) home(w http.ResponseWriter, r *http.Request) {
	render(w, http.StatusOK, "home", map[string]any{"Base": d.base()})
}

// Metadata returns the SAML IdP metadata (saml-metadata-2.0-os §2.4.3).
func (d *IdP) Metadata() string {
	cert := base64.StdEncoding.EncodeToString(d.cert.Raw)
	return `<?xml version="1.0" encoding="UTF-8"?>
<!-- DEMO IdP — not for production -->
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="` + xmlEsc(d.samlEntityID()) + `">
  <md:IDPSSODescriptor WantAuthnRequestsSigned="false" protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <md:KeyDescriptor use="signing"><ds:KeyInfo xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:X509Data><ds:X509Certificate>` + cert + `</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>
    <md:NameIDFormat>urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified</md:NameIDFormat>
    <md:SingleSignOnService Binding="` + saml.BindingHTTPRedirect + `" Location="` + xmlEsc(d.ssoURL()) + `"/>
    <md:SingleSignOnService Binding="` + saml.BindingHTTPPost + `" Location="` + xmlEsc(d.ssoURL()) + `"/>
  </md:IDPSSODescriptor>
</md:EntityDescriptor>
`
}

func xmlEsc(s string) string {
	var b strings.Builder
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

func (d *IdP) samlMetadata(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/samlmetadata+xml")
	_, _ = io.WriteString(w, d.Metadata())
}

// authnRequestID reads the ID of an AuthnRequest (HTTP-Redirect: deflated;
// HTTP-POST: plain), or "".
func authnRequestID(v string, deflated bool) string {
	raw, err := base64.StdEncoding.DecodeString(v)
	if err != nil || len(raw) > 64<<10 {
		return ""
	}
	if deflated {
		out, err := io.ReadAll(io.LimitReader(flate.NewReader(bytes.NewReader(raw)), 64<<10))
		if err != nil {
			return ""
		}
		raw = out
	}
	var req struct {
		XMLName xml.Name
		ID      string `xml:"ID,attr"`
	}
	if xml.Unmarshal(raw, &req) != nil || req.XMLName.Local != "AuthnRequest" || len(req.ID) > 128 {
		return ""
	}
	return req.ID
}

// GET /saml/sso[?SAMLRequest&RelayState]: the sign-in form.
func (d *IdP) samlForm(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	hidden := map[string]string{"RelayState": q.Get("RelayState"), "InResponseTo": authnRequestID(q.Get("SAMLRequest"), true)}
	render(w, http.StatusOK, "form", map[string]any{"Kind": "SAML", "Action": d.ssoURL(), "Hidden": hidden})
}

// POST /saml/sso: an HTTP-POST AuthnRequest (shows the form) or the form
// itself (signs the user in and auto-posts the Response to the ACS).
func (d *IdP) samlSSO(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 256<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "DEMO IdP: bad form", http.StatusBadRequest)
		return
	}
	f := r.PostForm
	if f.Get("SAMLRequest") != "" && f.Get("username") == "" {
		hidden := map[string]string{"RelayState": f.Get("RelayState"), "InResponseTo": authnRequestID(f.Get("SAMLRequest"), false)}
		render(w, http.StatusOK, "form", map[string]any{"Kind": "SAML", "Action": d.ssoURL(), "Hidden": hidden})
		return
	}
	hidden := map[string]string{"RelayState": f.Get("RelayState"), "InResponseTo": f.Get("InResponseTo")}
	u := d.checkPassword(r.Context(), f.Get("username"), f.Get("password"))
	if u == nil {
		d.log.Info("DEMO IdP — not for production: sign-in failed")
		render(w, http.StatusUnauthorized, "form", map[string]any{"Kind": "SAML", "Action": d.ssoURL(), "Hidden": hidden,
			"Error": "Invalid user name or password."})
		return
	}
	resp, err := d.SAMLResponse(r.Context(), u, f.Get("InResponseTo"))
	if err != nil {
		d.log.Error("DEMO IdP — not for production: build SAML response", "err", err)
		http.Error(w, "DEMO IdP: internal error", http.StatusInternalServerError)
		return
	}
	fields := map[string]string{"SAMLResponse": base64.StdEncoding.EncodeToString(resp)}
	if rs := f.Get("RelayState"); rs != "" {
		fields["RelayState"] = rs
	}
	d.log.Info("DEMO IdP — not for production: signed in", "user", u.UserName)
	websso.AutoPost(w, d.o.ACSURL, fields, true)
}

// SAMLResponse builds a signed SAML Response for u (the Assertion is
// signed, saml-core-2.0-os §5.4). Its Role attribute names the roles of
// u's aws_roles attribute, and is left out when u has none.
func (d *IdP) SAMLResponse(ctx context.Context, u *store.User, inResponseTo string) ([]byte, error) {
	return d.SAMLResponseWithRoles(ctx, u, inResponseTo, nil)
}

// SAMLResponseWithRoles is SAMLResponse with the Role attribute granting
// exactly the named roles instead of u's aws_roles. A non-nil empty list
// sends the attribute with no value, as an IdP does that grants no role.
func (d *IdP) SAMLResponseWithRoles(ctx context.Context, u *store.User, inResponseTo string, roleNames []string) ([]byte, error) {
	now := d.now()
	ts := func(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05Z") }
	rid, err := randomHex(d.o.Rand, 20)
	if err != nil {
		return nil, err
	}
	aid, err := randomHex(d.o.Rand, 20)
	if err != nil {
		return nil, err
	}
	groups, err := d.groupsOf(ctx, u)
	if err != nil {
		return nil, err
	}

	a := etree.NewElement("saml:Assertion")
	a.CreateAttr("xmlns:saml", nsSAML)
	a.CreateAttr("ID", "_"+aid)
	a.CreateAttr("Version", "2.0")
	a.CreateAttr("IssueInstant", ts(now))
	a.CreateElement("saml:Issuer").SetText(d.samlEntityID())
	subj := a.CreateElement("saml:Subject")
	nid := subj.CreateElement("saml:NameID")
	nid.CreateAttr("Format", "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified")
	nid.SetText(u.UserName)
	sc := subj.CreateElement("saml:SubjectConfirmation")
	sc.CreateAttr("Method", "urn:oasis:names:tc:SAML:2.0:cm:bearer")
	scd := sc.CreateElement("saml:SubjectConfirmationData")
	scd.CreateAttr("NotOnOrAfter", ts(now.Add(5*time.Minute)))
	scd.CreateAttr("Recipient", d.o.ACSURL)
	if inResponseTo != "" {
		scd.CreateAttr("InResponseTo", inResponseTo)
	}
	cond := a.CreateElement("saml:Conditions")
	cond.CreateAttr("NotBefore", ts(now.Add(-30*time.Second)))
	cond.CreateAttr("NotOnOrAfter", ts(now.Add(5*time.Minute)))
	cond.CreateElement("saml:AudienceRestriction").CreateElement("saml:Audience").SetText(d.o.SPEntityID)
	as := a.CreateElement("saml:AuthnStatement")
	as.CreateAttr("AuthnInstant", ts(now))
	as.CreateAttr("SessionIndex", "_"+aid)
	as.CreateAttr("SessionNotOnOrAfter", ts(now.Add(8*time.Hour)))
	as.CreateElement("saml:AuthnContext").CreateElement("saml:AuthnContextClassRef").
		SetText("urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport")
	attrs := a.CreateElement("saml:AttributeStatement")
	attrAlways := func(name string, vals ...string) {
		el := attrs.CreateElement("saml:Attribute")
		el.CreateAttr("Name", name)
		el.CreateAttr("NameFormat", "urn:oasis:names:tc:SAML:2.0:attrname-format:uri")
		for _, v := range vals {
			el.CreateElement("saml:AttributeValue").SetText(v)
		}
	}
	attr := func(name string, vals ...string) {
		if len(vals) > 0 {
			attrAlways(name, vals...)
		}
	}
	names := roleNames
	if names == nil {
		names = u.Attributes[RolesAttribute]
	}
	roles := []string{}
	for _, n := range names {
		roles = append(roles, d.roleARN(n)+","+d.providerARN())
	}
	if roleNames != nil {
		attrAlways(saml.AttrRole, roles...)
	} else {
		attr(saml.AttrRole, roles...)
	}
	attr(saml.AttrRoleSessionName, awsname.SessionNameFrom(u.UserName))
	attr("groups", groups...)
	if len(u.Emails) > 0 {
		attr("email", u.Emails[0].Value)
	}

	sctx, err := dsig.NewSigningContext(d.key, [][]byte{d.cert.Raw})
	if err != nil {
		return nil, err
	}
	sctx.Canonicalizer = dsig.MakeC14N10ExclusiveCanonicalizerWithPrefixList("")
	if err := sctx.SetSignatureMethod(dsig.RSASHA256SignatureMethod); err != nil {
		return nil, err
	}
	sig, err := sctx.ConstructSignature(a, true)
	if err != nil {
		return nil, fmt.Errorf("demoidp: sign assertion: %w", err)
	}
	// saml-schema-assertion-2.0: ds:Signature follows saml:Issuer.
	a.InsertChildAt(1, sig)

	resp := etree.NewElement("samlp:Response")
	resp.CreateAttr("xmlns:samlp", nsSAMLP)
	resp.CreateAttr("xmlns:saml", nsSAML)
	resp.CreateAttr("ID", "_"+rid)
	resp.CreateAttr("Version", "2.0")
	resp.CreateAttr("IssueInstant", ts(now))
	resp.CreateAttr("Destination", d.o.ACSURL)
	if inResponseTo != "" {
		resp.CreateAttr("InResponseTo", inResponseTo)
	}
	resp.CreateElement("saml:Issuer").SetText(d.samlEntityID())
	resp.CreateElement("samlp:Status").CreateElement("samlp:StatusCode").CreateAttr("Value", "urn:oasis:names:tc:SAML:2.0:status:Success")
	resp.AddChild(a)
	doc := etree.NewDocument()
	doc.SetRoot(resp)
	return doc.WriteToBytes()
}

func (d *IdP) groupsOf(ctx context.Context, u *store.User) ([]string, error) {
	gs, err := d.o.Store.GroupsOfUser(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(gs))
	for i, g := range gs {
		out[i] = g.DisplayName
	}
	return out, nil
}
