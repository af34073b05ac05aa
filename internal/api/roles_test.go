package api_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-dev/gatehouse/internal/api"
	"github.com/gatehouse-dev/gatehouse/internal/audit"
)

const (
	trustJSON = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::000000000000:saml-provider/okta"},"Action":"sts:AssumeRoleWithSAML","Condition":{"StringEquals":{"SAML:aud":"https://signin.aws.amazon.com/saml"}}}]}`
	readJSON  = `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":["s3:GetObject","s3:ListBucket"],"Resource":["arn:aws:s3:::lake","arn:aws:s3:::lake/*"]}}`
	writeJSON = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:PutObject","Resource":"arn:aws:s3:::lake/${aws:username}/*"}]}`
)

func body(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

func raw(s string) json.RawMessage { return json.RawMessage(s) }

func TestRolesCRUD(t *testing.T) {
	e := newEnv(t)
	r := e.do(t, "POST", "/api/v1/roles", e.admin, body(t, map[string]any{
		"name": "data-reader", "path": "/eng/", "description": "Reads the lake",
		"trustPolicy":        raw(trustJSON),
		"policies":           []map[string]any{{"name": "read", "document": raw(readJSON)}},
		"maxSessionDuration": 14400,
		"tags":               map[string]string{"team": "data"},
	}))
	require.Equal(t, 201, r.status, r.raw)
	id := r.body["id"].(string)
	require.Equal(t, "arn:aws:iam::000000000000:role/eng/data-reader", r.body["arn"])
	require.Equal(t, "/api/v1/roles/"+id, r.header.Get("Location"))
	require.Equal(t, float64(14400), r.body["maxSessionDuration"])
	require.Equal(t, "sts:AssumeRoleWithSAML", r.body["trustPolicy"].(map[string]any)["Statement"].([]any)[0].(map[string]any)["Action"])
	require.Len(t, r.body["policies"], 1)
	ev := e.rec.take()
	require.Equal(t, []audit.Code{audit.CodeRoleCreated}, codesOf(ev))
	require.Equal(t, audit.Allow, ev[0].Decision)
	require.Equal(t, "root", ev[0].Actor.User)
	require.Equal(t, audit.Resource{Type: "role", ID: id, Name: "data-reader"}, ev[0].Resource)
	require.Equal(t, "arn:aws:iam::000000000000:role/eng/data-reader", ev[0].Details["arn"])
	require.Contains(t, ev[0].Details["trustPolicy"], "sha256:")

	r = e.do(t, "POST", "/api/v1/roles", e.admin, body(t, map[string]any{"name": "DATA-READER", "trustPolicy": raw(trustJSON)}))
	require.Equal(t, 409, r.status, r.raw)
	require.Equal(t, "already_exists", r.errCode())

	// Defaults.
	r = e.do(t, "POST", "/api/v1/roles", e.admin, body(t, map[string]any{"name": "minimal", "trustPolicy": raw(trustJSON)}))
	require.Equal(t, 201, r.status, r.raw)
	require.Equal(t, "/", r.body["path"])
	require.Equal(t, "arn:aws:iam::000000000000:role/minimal", r.body["arn"])
	require.Equal(t, float64(3600), r.body["maxSessionDuration"])
	require.Equal(t, []any{}, r.body["policies"])
	require.Equal(t, map[string]any{}, r.body["tags"])

	for _, ref := range []string{id, "Data-Reader"} {
		r = e.do(t, "GET", "/api/v1/roles/"+ref, e.admin, "")
		require.Equal(t, 200, r.status, r.raw)
		require.Equal(t, id, r.body["id"])
	}
	r = e.do(t, "GET", "/api/v1/roles", e.admin, "")
	require.Len(t, r.body["roles"], 2)
	r = e.do(t, "GET", "/api/v1/roles?filter=DATA", e.admin, "")
	require.Len(t, r.body["roles"], 1)
	r = e.do(t, "GET", "/api/v1/roles?pathPrefix=/eng/", e.admin, "")
	require.Len(t, r.body["roles"], 1)
	e.rec.take()

	// PATCH with the current revision; a stale one is refused and audited.
	r = e.do(t, "PATCH", "/api/v1/roles/data-reader", e.admin, `{"revision":1,"description":"Reads","maxSessionDuration":43200,"tags":{"team":"ml","cost center":"42"},"permissionsBoundary":`+readJSON+`}`)
	require.Equal(t, 200, r.status, r.raw)
	require.Equal(t, float64(2), r.body["revision"])
	require.Equal(t, "Reads", r.body["description"])
	require.Equal(t, map[string]any{"team": "ml", "cost center": "42"}, r.body["tags"])
	require.NotNil(t, r.body["permissionsBoundary"])
	require.Equal(t, []audit.Code{audit.CodeRoleUpdated}, codesOf(e.rec.take()))
	r = e.do(t, "PATCH", "/api/v1/roles/data-reader", e.admin, `{"revision":1,"description":"stale"}`)
	require.Equal(t, 409, r.status, r.raw)
	require.Equal(t, "conflict", r.errCode())
	require.Equal(t, []audit.Code{audit.CodeRequestRejected}, codesOf(e.rec.take()))
	r = e.do(t, "PATCH", "/api/v1/roles/data-reader", e.admin, `{"revision":2,"permissionsBoundary":null}`)
	require.Equal(t, 200, r.status, r.raw)
	require.Nil(t, r.body["permissionsBoundary"], "null removes the boundary")
	require.Equal(t, "Reads", r.body["description"], "absent fields are kept")

	// Trust policy: revision-checked when a revision is given.
	newTrust := `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::000000000000:role/ci"},"Action":"sts:AssumeRole"}}`
	r = e.do(t, "PUT", "/api/v1/roles/data-reader/trust-policy", e.admin, `{"revision":1,"document":`+newTrust+`}`)
	require.Equal(t, 409, r.status, r.raw)
	r = e.do(t, "PUT", "/api/v1/roles/data-reader/trust-policy", e.admin, `{"revision":3,"document":`+newTrust+`}`)
	require.Equal(t, 200, r.status, r.raw)
	require.Equal(t, float64(4), r.body["revision"])
	require.Equal(t, "sts:AssumeRole", r.body["trustPolicy"].(map[string]any)["Statement"].(map[string]any)["Action"])
	e.rec.take()

	// Inline policies: add, replace, no-op, delete.
	r = e.do(t, "PUT", "/api/v1/roles/data-reader/policies/write", e.admin, `{"document":`+writeJSON+`}`)
	require.Equal(t, 200, r.status, r.raw)
	require.Len(t, r.body["policies"], 2)
	ev = e.rec.take()
	require.Equal(t, []audit.Code{audit.CodeRoleUpdated}, codesOf(ev))
	require.Equal(t, []string{"policies.write"}, ev[0].Details["fields"])
	r = e.do(t, "PUT", "/api/v1/roles/data-reader/policies/write", e.admin, `{"document":`+writeJSON+`}`)
	require.Equal(t, 200, r.status, r.raw)
	require.Empty(t, e.rec.take(), "an unchanged policy is neither written nor audited")
	r = e.do(t, "PUT", "/api/v1/roles/data-reader/policies/READ", e.admin, `{"document":`+writeJSON+`}`)
	require.Equal(t, 200, r.status, r.raw)
	pols := r.body["policies"].([]any)
	require.Len(t, pols, 2, "names are case-insensitive: replaced, not added")
	require.Equal(t, "READ", pols[0].(map[string]any)["name"])
	r = e.do(t, "DELETE", "/api/v1/roles/data-reader/policies/write", e.admin, "")
	require.Equal(t, 200, r.status, r.raw)
	require.Len(t, r.body["policies"], 1)
	e.rec.take()
	r = e.do(t, "DELETE", "/api/v1/roles/data-reader/policies/write", e.admin, "")
	require.Equal(t, 200, r.status, "absent policy: no-op")
	require.Empty(t, e.rec.take())

	r = e.do(t, "DELETE", "/api/v1/roles/"+id, e.admin, "")
	require.Equal(t, 204, r.status, r.raw)
	ev = e.rec.take()
	require.Equal(t, []audit.Code{audit.CodeRoleDeleted}, codesOf(ev))
	require.Equal(t, id, ev[0].Resource.ID)
	r = e.do(t, "GET", "/api/v1/roles/"+id, e.admin, "")
	require.Equal(t, 404, r.status)
	r = e.do(t, "DELETE", "/api/v1/roles/"+id, e.admin, "")
	require.Equal(t, 404, r.status)
	r = e.do(t, "PUT", "/api/v1/roles/"+id+"/policies/x", e.admin, `{"document":`+writeJSON+`}`)
	require.Equal(t, 404, r.status)
}

func TestRoleValidation(t *testing.T) {
	e := newEnv(t)
	r := e.do(t, "POST", "/api/v1/roles", e.admin, body(t, map[string]any{"name": "existing", "trustPolicy": raw(trustJSON)}))
	require.Equal(t, 201, r.status, r.raw)
	e.rec.take()

	role := func(extra map[string]any) string {
		m := map[string]any{"name": "r1", "trustPolicy": raw(trustJSON)}
		for k, v := range extra {
			if v == nil {
				delete(m, k)
			} else {
				m[k] = v
			}
		}
		return body(t, m)
	}
	manyTags := map[string]string{}
	for i := range 51 {
		manyTags[fmt.Sprint("k", i)] = "v"
	}
	noPrincipal := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"*"}]}`
	withPrincipal := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":"*","Action":"s3:*","Resource":"*"}]}`
	for _, tc := range []struct {
		name, method, path, body string
		want                     []string // substrings of the message
	}{
		{"bad name", "POST", "/api/v1/roles", role(map[string]any{"name": "bad name!"}), []string{`"name"`}},
		{"long name", "POST", "/api/v1/roles", role(map[string]any{"name": strings.Repeat("a", 65)}), []string{`"name"`}},
		{"bad path", "POST", "/api/v1/roles", role(map[string]any{"path": "eng"}), []string{`"path"`}},
		{"bad path no trailing slash", "POST", "/api/v1/roles", role(map[string]any{"path": "/eng"}), []string{`"path"`}},
		{"session too short", "POST", "/api/v1/roles", role(map[string]any{"maxSessionDuration": 899}), []string{`"maxSessionDuration"`}},
		{"session too long", "POST", "/api/v1/roles", role(map[string]any{"maxSessionDuration": 43201}), []string{`"maxSessionDuration"`}},
		{"no trust policy", "POST", "/api/v1/roles", role(map[string]any{"trustPolicy": nil}), []string{`"trustPolicy"`}},
		{"trust policy not an object", "POST", "/api/v1/roles", role(map[string]any{"trustPolicy": "{}"}), []string{`"trustPolicy"`}},
		{"trust policy without Statement", "POST", "/api/v1/roles", role(map[string]any{"trustPolicy": raw(`{"Version":"2012-10-17"}`)}), []string{`"trustPolicy"`, "Statement"}},
		{"trust policy bad effect", "POST", "/api/v1/roles", role(map[string]any{"trustPolicy": raw(`{"Statement":[{"Effect":"Maybe","Principal":"*","Action":"sts:AssumeRole"}]}`)}), []string{`"trustPolicy"`, "Statement[0].Effect"}},
		{"trust policy without principal", "POST", "/api/v1/roles", role(map[string]any{"trustPolicy": raw(noPrincipal)}), []string{`"trustPolicy"`, "Statement[0]", "Principal"}},
		{"permission policy with principal", "POST", "/api/v1/roles", role(map[string]any{"policies": []any{map[string]any{"name": "p", "document": raw(withPrincipal)}}}), []string{`"policies.0.document"`, "Principal"}},
		{"permission policy bad version", "POST", "/api/v1/roles", role(map[string]any{"policies": []any{map[string]any{"name": "p", "document": raw(`{"Version":"2020-01-01","Statement":{"Effect":"Allow","Action":"*","Resource":"*"}}`)}}}), []string{`"policies.0.document"`, "Version"}},
		{"permission policy unknown element", "POST", "/api/v1/roles", role(map[string]any{"policies": []any{map[string]any{"name": "p", "document": raw(`{"Statement":{"Effect":"Allow","Action":"*","Resource":"*","Bogus":1}}`)}}}), []string{`"policies.0.document"`, "Statement.Bogus"}},
		{"duplicate policy names", "POST", "/api/v1/roles", role(map[string]any{"policies": []any{map[string]any{"name": "p", "document": raw(readJSON)}, map[string]any{"name": "P", "document": raw(readJSON)}}}), []string{`"policies.1.name"`}},
		{"bad policy name", "POST", "/api/v1/roles", role(map[string]any{"policies": []any{map[string]any{"name": "a b", "document": raw(readJSON)}}}), []string{`"policies.0.name"`}},
		{"boundary with principal", "POST", "/api/v1/roles", role(map[string]any{"permissionsBoundary": raw(withPrincipal)}), []string{`"permissionsBoundary"`}},
		{"too many tags", "POST", "/api/v1/roles", role(map[string]any{"tags": manyTags}), []string{`"tags"`}},
		{"reserved tag key", "POST", "/api/v1/roles", role(map[string]any{"tags": map[string]string{"aws:x": "v"}}), []string{`"tags.aws:x"`}},
		{"bad tag value", "POST", "/api/v1/roles", role(map[string]any{"tags": map[string]string{"k": "v<script>"}}), []string{`"tags.k"`}},
		{"duplicate tag keys", "POST", "/api/v1/roles", role(map[string]any{"tags": map[string]string{"Team": "a", "team": "b"}}), []string{"tags.", "case-insensitive"}},
		{"unknown field", "POST", "/api/v1/roles", role(map[string]any{"arn": "x"}), []string{`"arn"`}},
		{"patch missing revision", "PATCH", "/api/v1/roles/existing", `{"description":"x"}`, []string{`"revision"`}},
		{"patch rename refused", "PATCH", "/api/v1/roles/existing", `{"revision":1,"name":"other"}`, []string{`"name"`}},
		{"patch bad boundary", "PATCH", "/api/v1/roles/existing", `{"revision":1,"permissionsBoundary":` + noPrincipal[:20] + `}`, []string{"JSON"}},
		{"trust policy put without principal", "PUT", "/api/v1/roles/existing/trust-policy", `{"document":` + noPrincipal + `}`, []string{`"document"`, "Principal"}},
		{"trust policy put not object", "PUT", "/api/v1/roles/existing/trust-policy", `{"document":[]}`, []string{`"document"`}},
		{"policy put bad name", "PUT", "/api/v1/roles/existing/policies/a%20b", `{"document":` + readJSON + `}`, []string{`"policyName"`}},
		{"policy put missing document", "PUT", "/api/v1/roles/existing/policies/p", `{}`, []string{`"document"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(t, tc.method, tc.path, e.admin, tc.body)
			require.Equal(t, 400, r.status, r.raw)
			require.Equal(t, "invalid_request", r.errCode())
			for _, w := range tc.want {
				require.Contains(t, r.errMsg(), w)
			}
			ev := e.rec.take()
			require.Equal(t, []audit.Code{audit.CodeRequestRejected}, codesOf(ev))
			require.Equal(t, audit.Deny, ev[0].Decision)
		})
	}
	r = e.do(t, "GET", "/api/v1/roles", e.admin, "")
	require.Len(t, r.body["roles"], 1, "nothing was created")
	r = e.do(t, "GET", "/api/v1/roles/existing", e.admin, "")
	require.Equal(t, float64(1), r.body["revision"], "nothing was changed")
}

func TestRolesAndProvidersAdminOnly(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct{ method, path, body string }{
		{"GET", "/api/v1/roles", ""},
		{"POST", "/api/v1/roles", body(t, map[string]any{"name": "sneaky", "trustPolicy": raw(trustJSON)})},
		{"GET", "/api/v1/roles/anything", ""},
		{"PUT", "/api/v1/roles/anything/trust-policy", `{"document":` + trustJSON + `}`},
		{"PUT", "/api/v1/roles/anything/policies/p", `{"document":` + readJSON + `}`},
		{"DELETE", "/api/v1/roles/anything", ""},
		{"GET", "/api/v1/saml-providers", ""},
		{"POST", "/api/v1/saml-providers", `{"name":"x","metadataXml":"<x/>"}`},
		{"GET", "/api/v1/oidc-providers", ""},
		{"POST", "/api/v1/oidc-providers", `{"issuerUrl":"https://idp.example.com","audiences":["a"]}`},
		{"DELETE", "/api/v1/oidc-providers/x", ""},
	} {
		r := e.do(t, tc.method, tc.path, e.user, tc.body)
		require.Equal(t, 403, r.status, tc.method+" "+tc.path)
		require.Equal(t, "forbidden", r.errCode())
		ev := e.rec.take()
		require.Equal(t, []audit.Code{audit.CodeAdminDenied}, codesOf(ev))
		require.Equal(t, "plain", ev[0].Actor.User)
		e.nextWindow() // each anonymous refusal below is the first of its window
		r = e.do(t, tc.method, tc.path, "", tc.body)
		require.Equal(t, 401, r.status)
		require.Equal(t, []audit.Code{audit.CodeAuthDenied}, codesOf(e.rec.take()))
	}
	r := e.do(t, "GET", "/api/v1/roles/sneaky", e.admin, "")
	require.Equal(t, 404, r.status)
}

func TestRoleAuditFailClosed(t *testing.T) {
	e := newEnv(t)
	r := e.do(t, "POST", "/api/v1/roles", e.admin, body(t, map[string]any{"name": "kept", "trustPolicy": raw(trustJSON)}))
	require.Equal(t, 201, r.status, r.raw)
	e.rec.setFail(true)
	for _, tc := range []struct{ method, path, body string }{
		{"POST", "/api/v1/roles", body(t, map[string]any{"name": "ghost", "trustPolicy": raw(trustJSON)})},
		{"PUT", "/api/v1/roles/kept/policies/p", `{"document":` + readJSON + `}`},
		{"DELETE", "/api/v1/roles/kept", ""},
		{"POST", "/api/v1/oidc-providers", `{"issuerUrl":"https://idp.example.com","audiences":["a"]}`},
	} {
		r := e.do(t, tc.method, tc.path, e.admin, tc.body)
		require.Equal(t, 503, r.status, tc.method+" "+tc.path+": "+r.raw)
	}
	e.rec.setFail(false)
	r = e.do(t, "GET", "/api/v1/roles/ghost", e.admin, "")
	require.Equal(t, 404, r.status)
	r = e.do(t, "GET", "/api/v1/roles/kept", e.admin, "")
	require.Equal(t, 200, r.status)
	require.Equal(t, []any{}, r.body["policies"])
	r = e.do(t, "GET", "/api/v1/oidc-providers", e.admin, "")
	require.Empty(t, r.body["oidcProviders"])
}

// ---- providers ----

func selfSigned(t *testing.T, key any, pub any) string {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "idp"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, key)
	require.NoError(t, err)
	return base64.StdEncoding.EncodeToString(der)
}

func ecCert(t *testing.T) string {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	return selfSigned(t, k, &k.PublicKey)
}

func idpMetadata(entityID, use, cert string) string {
	if use != "" {
		use = ` use="` + use + `"`
	}
	return `<?xml version="1.0" encoding="UTF-8"?>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="` + entityID + `">
  <md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <md:KeyDescriptor` + use + `><ds:KeyInfo><ds:X509Data><ds:X509Certificate>
` + cert + `
    </ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>
    <md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" Location="https://idp.example.com/sso"/>
  </md:IDPSSODescriptor>
</md:EntityDescriptor>`
}

func TestSAMLProviders(t *testing.T) {
	e := newEnv(t)
	cert := ecCert(t)
	md := idpMetadata("http://www.okta.com/exk1", "signing", cert)
	r := e.do(t, "POST", "/api/v1/saml-providers", e.admin, body(t, map[string]string{"name": "okta", "metadataXml": md}))
	require.Equal(t, 201, r.status, r.raw)
	id := r.body["id"].(string)
	require.Equal(t, "http://www.okta.com/exk1", r.body["entityId"])
	require.Equal(t, "arn:aws:iam::000000000000:saml-provider/okta", r.body["arn"])
	require.Equal(t, md, r.body["metadataXml"])
	ev := e.rec.take()
	require.Equal(t, []audit.Code{audit.CodeProviderCreated}, codesOf(ev))
	require.Equal(t, audit.Resource{Type: "saml-provider", ID: id, Name: "okta"}, ev[0].Resource)
	require.Equal(t, "http://www.okta.com/exk1", ev[0].Details["entityId"])

	r = e.do(t, "POST", "/api/v1/saml-providers", e.admin, body(t, map[string]string{"name": "OKTA", "metadataXml": idpMetadata("other", "", cert)}))
	require.Equal(t, 409, r.status, r.raw)
	require.Equal(t, "already_exists", r.errCode())
	r = e.do(t, "POST", "/api/v1/saml-providers", e.admin, body(t, map[string]string{"name": "okta2", "metadataXml": md}))
	require.Equal(t, 409, r.status, "one provider per entity id: "+r.raw)
	require.Contains(t, r.errMsg(), "entity id")

	rsaKey, err := rsa.GenerateKey(rand.Reader, 1024)
	require.NoError(t, err)
	weak := selfSigned(t, rsaKey, &rsaKey.PublicKey)
	spMD := `<EntityDescriptor xmlns="urn:oasis:names:tc:SAML:2.0:metadata" entityID="sp"><SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"/></EntityDescriptor>`
	e.rec.take()
	for _, tc := range []struct{ name, body, want string }{
		{"bad name", body(t, map[string]string{"name": "a b", "metadataXml": md}), `"name"`},
		{"empty metadata", `{"name":"x","metadataXml":""}`, `"metadataXml"`},
		{"not xml", body(t, map[string]string{"name": "x", "metadataXml": "not xml"}), "root element"},
		{"malformed xml", body(t, map[string]string{"name": "x", "metadataXml": "<a><b></a>"}), "XML"},
		{"doctype", body(t, map[string]string{"name": "x", "metadataXml": `<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]>` + md[strings.Index(md, "<md:"):]}), "DOCTYPE"},
		{"wrong root", body(t, map[string]string{"name": "x", "metadataXml": `<EntitiesDescriptor xmlns="urn:oasis:names:tc:SAML:2.0:metadata"/>`}), "EntityDescriptor"},
		{"wrong namespace", body(t, map[string]string{"name": "x", "metadataXml": `<EntityDescriptor entityID="x"/>`}), "EntityDescriptor"},
		{"sp metadata", body(t, map[string]string{"name": "x", "metadataXml": spMD}), "IDPSSODescriptor"},
		{"no entity id", body(t, map[string]string{"name": "x", "metadataXml": idpMetadata("", "signing", cert)}), "entityID"},
		{"encryption key only", body(t, map[string]string{"name": "x", "metadataXml": idpMetadata("e1", "encryption", cert)}), "signing certificate"},
		{"bad certificate", body(t, map[string]string{"name": "x", "metadataXml": idpMetadata("e2", "signing", "bm90IGEgY2VydA==")}), "certificate"},
		{"weak rsa key", body(t, map[string]string{"name": "x", "metadataXml": idpMetadata("e3", "signing", weak)}), "2048"},
		{"two roots", body(t, map[string]string{"name": "x", "metadataXml": md + "<x/>"}), "metadataXml"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(t, "POST", "/api/v1/saml-providers", e.admin, tc.body)
			require.Equal(t, 400, r.status, r.raw)
			require.Contains(t, r.errMsg(), tc.want)
			require.Equal(t, []audit.Code{audit.CodeRequestRejected}, codesOf(e.rec.take()))
		})
	}

	// Rotation: new certificate and entity id; revision-checked when given.
	md2 := idpMetadata("http://www.okta.com/exk2", "", ecCert(t))
	r = e.do(t, "PUT", "/api/v1/saml-providers/okta", e.admin, body(t, map[string]any{"metadataXml": md2, "revision": 7}))
	require.Equal(t, 409, r.status, r.raw)
	r = e.do(t, "PUT", "/api/v1/saml-providers/okta", e.admin, body(t, map[string]any{"metadataXml": md2, "revision": 1}))
	require.Equal(t, 200, r.status, r.raw)
	require.Equal(t, "http://www.okta.com/exk2", r.body["entityId"])
	require.Equal(t, float64(2), r.body["revision"])
	r = e.do(t, "PUT", "/api/v1/saml-providers/"+id, e.admin, body(t, map[string]any{"metadataXml": idpMetadata("x", "", weak)}))
	require.Equal(t, 400, r.status, r.raw)

	r = e.do(t, "GET", "/api/v1/saml-providers/"+id, e.admin, "")
	require.Equal(t, 200, r.status)
	require.Equal(t, md2, r.body["metadataXml"])
	r = e.do(t, "GET", "/api/v1/saml-providers", e.admin, "")
	require.Len(t, r.body["samlProviders"], 1)
	e.rec.take()
	r = e.do(t, "DELETE", "/api/v1/saml-providers/okta", e.admin, "")
	require.Equal(t, 204, r.status, r.raw)
	require.Equal(t, []audit.Code{audit.CodeProviderDeleted}, codesOf(e.rec.take()))
	r = e.do(t, "GET", "/api/v1/saml-providers/okta", e.admin, "")
	require.Equal(t, 404, r.status)
}

func TestOIDCProviders(t *testing.T) {
	e := newEnv(t)
	r := e.do(t, "POST", "/api/v1/oidc-providers", e.admin, `{"issuerUrl":"https://token.actions.githubusercontent.com","audiences":["sts.amazonaws.com"],"thumbprints":["6938fd4d98bab03faadb97b34396831e3780aea1"],"groupsClaim":"groups"}`)
	require.Equal(t, 201, r.status, r.raw)
	id := r.body["id"].(string)
	require.Equal(t, "arn:aws:iam::000000000000:oidc-provider/token.actions.githubusercontent.com", r.body["arn"])
	ev := e.rec.take()
	require.Equal(t, []audit.Code{audit.CodeProviderCreated}, codesOf(ev))
	require.Equal(t, "oidc-provider", ev[0].Resource.Type)

	// http is fine for a loopback issuer only.
	r = e.do(t, "POST", "/api/v1/oidc-providers", e.admin, `{"issuerUrl":"http://127.0.0.1:8081/realms/dev","audiences":["gatehouse"]}`)
	require.Equal(t, 201, r.status, r.raw)
	require.Equal(t, "arn:aws:iam::000000000000:oidc-provider/127.0.0.1:8081/realms/dev", r.body["arn"])
	require.Equal(t, []any{}, r.body["thumbprints"])
	r = e.do(t, "POST", "/api/v1/oidc-providers", e.admin, `{"issuerUrl":"http://localhost/x","audiences":["a"]}`)
	require.Equal(t, 201, r.status, r.raw)

	r = e.do(t, "POST", "/api/v1/oidc-providers", e.admin, `{"issuerUrl":"https://token.actions.githubusercontent.com/","audiences":["x"]}`)
	require.Equal(t, 409, r.status, "same ARN: "+r.raw)
	require.Equal(t, "already_exists", r.errCode())
	e.rec.take()

	for _, tc := range []struct{ name, body, want string }{
		{"http remote", `{"issuerUrl":"http://idp.example.com","audiences":["a"]}`, `"issuerUrl"`},
		{"http look-alike", `{"issuerUrl":"http://127.0.0.1.evil.example","audiences":["a"]}`, `"issuerUrl"`},
		{"not a url", `{"issuerUrl":"idp.example.com","audiences":["a"]}`, `"issuerUrl"`},
		{"other scheme", `{"issuerUrl":"ftp://idp.example.com","audiences":["a"]}`, `"issuerUrl"`},
		{"query", `{"issuerUrl":"https://idp.example.com/?x=1","audiences":["a"]}`, `"issuerUrl"`},
		{"fragment", `{"issuerUrl":"https://idp.example.com/#x","audiences":["a"]}`, `"issuerUrl"`},
		{"userinfo", `{"issuerUrl":"https://u:p@idp.example.com","audiences":["a"]}`, `"issuerUrl"`},
		{"no audience", `{"issuerUrl":"https://idp.example.com","audiences":[]}`, `"audiences"`},
		{"missing audiences", `{"issuerUrl":"https://idp.example.com"}`, `"audiences"`},
		{"duplicate audience", `{"issuerUrl":"https://idp.example.com","audiences":["a","a"]}`, `"audiences"`},
		{"bad thumbprint", `{"issuerUrl":"https://idp.example.com","audiences":["a"],"thumbprints":["xyz"]}`, `"thumbprints.0"`},
		{"http jwks", `{"issuerUrl":"https://idp.example.com","audiences":["a"],"jwksUrl":"http://idp.example.com/keys"}`, `"jwksUrl"`},
		{"bad claim", `{"issuerUrl":"https://idp.example.com","audiences":["a"],"groupsClaim":"a b"}`, `"groupsClaim"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(t, "POST", "/api/v1/oidc-providers", e.admin, tc.body)
			require.Equal(t, 400, r.status, r.raw)
			require.Contains(t, r.errMsg(), tc.want)
			require.Equal(t, []audit.Code{audit.CodeRequestRejected}, codesOf(e.rec.take()))
		})
	}

	r = e.do(t, "PATCH", "/api/v1/oidc-providers/"+id, e.admin, `{"revision":1,"audiences":["sts.amazonaws.com","gatehouse"],"thumbprints":[],"rolesClaim":"roles"}`)
	require.Equal(t, 200, r.status, r.raw)
	require.Equal(t, float64(2), r.body["revision"])
	require.Equal(t, []any{"sts.amazonaws.com", "gatehouse"}, r.body["audiences"])
	require.Equal(t, []any{}, r.body["thumbprints"])
	require.Equal(t, "groups", r.body["groupsClaim"], "absent fields are kept")
	require.Equal(t, []audit.Code{audit.CodeProviderUpdated}, codesOf(e.rec.take()))
	r = e.do(t, "PATCH", "/api/v1/oidc-providers/"+id, e.admin, `{"revision":1,"audiences":["stale"]}`)
	require.Equal(t, 409, r.status, r.raw)
	require.Equal(t, "conflict", r.errCode())
	r = e.do(t, "PATCH", "/api/v1/oidc-providers/"+id, e.admin, `{"revision":2,"issuerUrl":"https://other.example"}`)
	require.Equal(t, 400, r.status, "the issuer never changes: "+r.raw)

	r = e.do(t, "GET", "/api/v1/oidc-providers/"+id, e.admin, "")
	require.Equal(t, 200, r.status)
	require.Equal(t, "roles", r.body["rolesClaim"])
	r = e.do(t, "GET", "/api/v1/oidc-providers", e.admin, "")
	require.Len(t, r.body["oidcProviders"], 3)
	e.rec.take()
	r = e.do(t, "DELETE", "/api/v1/oidc-providers/"+id, e.admin, "")
	require.Equal(t, 204, r.status, r.raw)
	require.Equal(t, []audit.Code{audit.CodeProviderDeleted}, codesOf(e.rec.take()))
	r = e.do(t, "GET", "/api/v1/oidc-providers/"+id, e.admin, "")
	require.Equal(t, 404, r.status)
}

func TestAccountIDOption(t *testing.T) {
	e := newEnv(t)
	_, err := api.New(api.Options{Store: e.st, Identity: e.svc, Audit: e.rec, AccountID: "12345"})
	require.Error(t, err)
	h, err := api.New(api.Options{Store: e.st, Identity: e.svc, Audit: e.rec, Denials: e.denials, AccountID: "123456789012"})
	require.NoError(t, err)
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	e2 := *e
	e2.srv = srv
	r := e2.do(t, "POST", "/api/v1/roles", e.admin, body(t, map[string]any{"name": "acct", "path": "/a/b/", "trustPolicy": raw(trustJSON)}))
	require.Equal(t, 201, r.status, r.raw)
	require.Equal(t, "arn:aws:iam::123456789012:role/a/b/acct", r.body["arn"])
	r = e2.do(t, "POST", "/api/v1/saml-providers", e.admin, body(t, map[string]string{"name": "idp", "metadataXml": idpMetadata("urn:idp", "signing", ecCert(t))}))
	require.Equal(t, 201, r.status, r.raw)
	require.Equal(t, "arn:aws:iam::123456789012:saml-provider/idp", r.body["arn"])
}
