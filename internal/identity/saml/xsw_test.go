package saml

import (
	"testing"

	"github.com/beevik/etree"
)

// XML Signature Wrapping (Somorovsky et al., "On Breaking SAML: Be Whoever
// You Want to Be", USENIX Security 2012; the XSW1–8 numbering of SAML
// Raider). Each variant starts from a good xmlsec1-signed response and moves
// the signed element somewhere the verifier still finds it while an evil,
// unsigned copy for mallory sits where a naive reader looks. Every variant
// must be rejected; none may ever yield mallory.

const evilName = "mallory@evil.example"

type xswDoc struct {
	doc       *etree.Document
	root      *etree.Element
	assertion *etree.Element
}

func parseXSW(t *testing.T, signed []byte) xswDoc {
	t.Helper()
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(signed); err != nil {
		t.Fatal(err)
	}
	root := doc.Root()
	a := root.SelectElement("Assertion")
	if a == nil {
		t.Fatal("no assertion")
	}
	return xswDoc{doc: doc, root: root, assertion: a}
}

// evil returns a copy of el for mallory with a new ID and, unless keepSig,
// no signature.
func evil(el *etree.Element, id string, keepSig bool) *etree.Element {
	e := el.Copy()
	if id != "" {
		e.CreateAttr("ID", id)
	}
	if !keepSig {
		for _, s := range e.SelectElements("Signature") {
			e.RemoveChild(s)
		}
	}
	for _, n := range e.FindElements(".//NameID") {
		n.SetText(evilName)
	}
	for _, n := range e.FindElements(".//AttributeValue") {
		if n.Text() == "alice@example.test" {
			n.SetText("mallory")
		}
	}
	return e
}

func insertAfterIssuer(parent, child *etree.Element) {
	parent.InsertChildAt(parent.SelectElement("Issuer").Index()+1, child)
}

func TestSignatureWrapping(t *testing.T) {
	requireXmlsec1(t)
	assertionSigned := defaultParams()
	responseSigned := defaultParams()
	responseSigned.signResponse, responseSigned.signAssertion = true, false
	aDoc := signedResponse(t, assertionSigned)
	rDoc := signedResponse(t, responseSigned)

	variants := []struct {
		name   string
		signed []byte
		wrap   func(d xswDoc) *etree.Document
	}{
		{"XSW1 signed Response inside the evil Response's Signature", rDoc, func(d xswDoc) *etree.Document {
			orig := d.root.Copy()
			e := evil(d.root, "_evil-resp", true)
			e.SelectElement("Signature").AddChild(orig)
			out := etree.NewDocument()
			out.SetRoot(e)
			return out
		}},
		{"XSW2 signed Response before the evil Response's Signature", rDoc, func(d xswDoc) *etree.Document {
			orig := d.root.Copy()
			e := evil(d.root, "_evil-resp", true)
			sig := e.SelectElement("Signature")
			e.InsertChildAt(sig.Index(), orig)
			out := etree.NewDocument()
			out.SetRoot(e)
			return out
		}},
		{"XSW3 evil Assertion before the signed one", aDoc, func(d xswDoc) *etree.Document {
			d.root.InsertChildAt(d.assertion.Index(), evil(d.assertion, "_evil-assert", false))
			return d.doc
		}},
		{"XSW4 signed Assertion inside the evil Assertion", aDoc, func(d xswDoc) *etree.Document {
			e := evil(d.assertion, "_evil-assert", false)
			e.AddChild(d.assertion.Copy())
			d.root.InsertChildAt(d.assertion.Index(), e)
			d.root.RemoveChild(d.assertion)
			return d.doc
		}},
		{"XSW5 evil copy keeps the Signature, original unsigned at the end", aDoc, func(d xswDoc) *etree.Document {
			e := evil(d.assertion, "", true)
			orig := d.assertion.Copy()
			orig.RemoveChild(orig.SelectElement("Signature"))
			d.root.InsertChildAt(d.assertion.Index(), e)
			d.root.RemoveChild(d.assertion)
			d.root.AddChild(orig)
			return d.doc
		}},
		{"XSW6 signed Assertion inside the evil copy's Signature", aDoc, func(d xswDoc) *etree.Document {
			e := evil(d.assertion, "", true)
			e.SelectElement("Signature").AddChild(d.assertion.Copy())
			d.root.InsertChildAt(d.assertion.Index(), e)
			d.root.RemoveChild(d.assertion)
			return d.doc
		}},
		{"XSW7 signed Assertion in Extensions, evil Assertion in place", aDoc, func(d xswDoc) *etree.Document {
			ext := etree.NewElement("samlp:Extensions")
			ext.AddChild(d.assertion.Copy())
			insertAfterIssuer(d.root, ext)
			d.root.InsertChildAt(d.assertion.Index(), evil(d.assertion, "", false))
			d.root.RemoveChild(d.assertion)
			return d.doc
		}},
		{"XSW8 unsigned original in ds:Object of the evil copy's Signature", aDoc, func(d xswDoc) *etree.Document {
			e := evil(d.assertion, "", true)
			orig := d.assertion.Copy()
			orig.RemoveChild(orig.SelectElement("Signature"))
			obj := etree.NewElement("ds:Object")
			obj.AddChild(orig)
			e.SelectElement("Signature").AddChild(obj)
			d.root.InsertChildAt(d.assertion.Index(), e)
			d.root.RemoveChild(d.assertion)
			return d.doc
		}},
		{"XSW9 signed Response in Status/StatusDetail of a forged Response with the same ID", rDoc, func(d xswDoc) *etree.Document {
			orig := d.root.Copy()
			e := evil(d.root, "", false)
			detail := etree.NewElement("samlp:StatusDetail")
			detail.AddChild(orig)
			e.SelectElement("Status").AddChild(detail)
			out := etree.NewDocument()
			out.SetRoot(e)
			return out
		}},
		{"evil Assertion with the same ID after the signed one", aDoc, func(d xswDoc) *etree.Document {
			d.root.AddChild(evil(d.assertion, "", false))
			return d.doc
		}},
		{"signed Response, extra evil Assertion appended", rDoc, func(d xswDoc) *etree.Document {
			d.root.AddChild(evil(d.assertion, "_evil-assert", false))
			return d.doc
		}},
	}
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			out, err := v.wrap(parseXSW(t, v.signed)).WriteToBytes()
			if err != nil {
				t.Fatal(err)
			}
			sp := newTestSP(t, t0)
			a, err := sp.Validate(b64(out))
			if err == nil {
				t.Fatalf("wrapped response accepted (NameID %q)", a.NameID)
			}
			e := wantError(t, err, CodeInvalidIdentityToken, "")
			t.Logf("rejected: %s: %s", e.Reason, e.Cause)
		})
	}
}
