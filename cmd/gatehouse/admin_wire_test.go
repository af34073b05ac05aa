package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/stretchr/testify/require"

	specpkg "github.com/gatehouse-dev/gatehouse/api"
)

var updateGolden = flag.Bool("update", false, "rewrite golden files in testdata/")

const (
	wT1 = `"createdAt":"2026-01-02T03:04:05Z","updatedAt":"2026-01-03T03:04:05.123456789Z"`
	wT2 = `"createdAt":"2025-12-31T23:59:59Z","updatedAt":"2025-12-31T23:59:59Z"`

	wUser = `{"id":"u1","kind":"user","userName":"alice","externalId":"ext-1","displayName":"Alice Liddell",` +
		`"givenName":"Alice","familyName":"Liddell","title":"Queen","emails":[{"value":"alice@example.com","type":"work"},` +
		`{"value":"a2@example.com","primary":true}],"active":true,"hasPassword":true,` +
		`"attributes":{"region":["EU"],"purpose":["a","b"]},"revision":4,` + wT1 + `}`
	wRobot = `{"id":"u2","kind":"service","userName":"robot","active":false,"revision":1,` + wT2 + `}`
	wAttrs = `{"attributes":{"team":["data","ml"],"a":["x\ty"]},"revision":5}`
	wGroup = `{"id":"g1","displayName":"analysts","externalId":"eg","members":[{"value":"u1","type":"User"},` +
		`{"value":"g2","type":"Group"}],"revision":2,` + wT1 + `}`
	wEmptyGroup = `{"id":"g2","displayName":"empty","members":[],"revision":1,` + wT2 + `}`
	wToken      = `{"id":"abc","principalId":"u1","kind":"pat","name":"ci","createdAt":"2026-01-01T00:00:00Z",` +
		`"expiresAt":"2099-01-01T00:00:00Z","lastUsedAt":"2026-02-01T00:00:00Z"}`
	wExpired = `{"id":"def","principalId":"u1","kind":"session","name":"","createdAt":"2019-01-01T00:00:00Z",` +
		`"expiresAt":"2020-01-01T00:00:00Z","lastUsedAt":null,"revokedAt":null}`
	wRevoked = `{"id":"ghi","principalId":"u1","kind":"pat","name":"old","createdAt":"2026-01-01T00:00:00Z",` +
		`"expiresAt":"2099-01-01T00:00:00Z","revokedAt":"2026-03-01T00:00:00Z"}`
	wTokenCreated = `{"id":"jkl","principalId":"u1","kind":"pat","name":"ci","createdAt":"2026-01-01T00:00:00Z",` +
		`"expiresAt":"2026-01-02T00:00:00Z","token":"ghp_secret"}`
	wRole = `{"id":"r1","arn":"arn:aws:iam::000000000000:role/eng/data-reader","name":"data-reader","path":"/eng/",` +
		`"description":"reads the lake","trustPolicy":{"Version":"2012-10-17","Statement":[{"Effect":"Allow"}]},` +
		`"policies":[{"name":"read","document":{"Version":"2012-10-17"}},{"name":"write","document":{}}],` +
		`"permissionsBoundary":{"Version":"2012-10-17"},"maxSessionDuration":7200,"tags":{"team":"data","b":"c"},"revision":3,` + wT1 + `}`
	wBareRole = `{"id":"r2","arn":"arn:aws:iam::000000000000:role/analyst","name":"analyst","path":"/",` +
		`"trustPolicy":{"Statement":[],"Version":"2012-10-17"},"policies":[],"maxSessionDuration":3600,"tags":{},"revision":1,` + wT2 + `}`
	wSAML = `{"id":"s1","arn":"arn:aws:iam::000000000000:saml-provider/okta","name":"okta","entityId":"http://www.okta.com/exk1",` +
		`"metadataXml":"<x/>","revision":1,` + wT1 + `}`
	wOIDC = `{"id":"o1","arn":"arn:aws:iam::000000000000:oidc-provider/idp.example.com/corp","issuerUrl":"https://idp.example.com/corp/",` +
		`"audiences":["a","b"],"thumbprints":[],"binding":{"linkByUserName":true,"unlinked":"federated","scimSubject":"externalId"},"revision":1,` + wT1 + `}`
	wOIDC2 = `{"id":"o2","arn":"arn:aws:iam::000000000000:oidc-provider/gh","issuerUrl":"https://gh","audiences":["sts"],` +
		`"thumbprints":["ab"],"revision":1,` + wT2 + `}`
	wPolicy = `{"id":"p1","arn":"arn:aws:iam::000000000000:policy/lake-read","name":"lake-read","path":"/","description":"lake",` +
		`"document":{"Version":"2012-10-17","Statement":[]},"revision":7,` + wT1 + `}`
	wBarePolicy = `{"id":"p2","arn":"arn:aws:iam::000000000000:policy/x/p2","name":"p2","path":"/x/","document":{},"revision":1,` + wT2 + `}`
	wMount      = `{"id":"m1","bucket":"demo","prefix":"sales/","roleArn":"arn:aws:iam::000000000000:role/analyst",` +
		`"description":"sales data","revision":1,` + wT1 + `}`
	wBareMount = `{"id":"m2","bucket":"demo","prefix":"hr/","roleArn":"arn:aws:iam::000000000000:role/hr","revision":2,` + wT2 + `}`
	wGrant     = `{"principalId":"u1","userName":"alice","privilege":"admin","grantedAt":"2026-01-01T00:00:00Z","grantedBy":"system"}`
	wLink      = `{"providerId":"o1","providerArn":"arn:aws:iam::000000000000:oidc-provider/idp.example.com/corp","subject":"00u1",` +
		`"userId":"u1","userName":"alice","source":"admin","createdAt":"2026-01-01T00:00:00Z"}`
	wBareLink = `{"providerId":"s1","providerArn":"arn:aws:iam::000000000000:saml-provider/okta","subject":"x@y",` +
		`"userId":"u2","source":"sign-in","createdAt":"2026-01-01T00:00:00.5Z"}`
)

// wireRoutes are the fake server's canned answers, by method and escaped
// path.
var wireRoutes = map[string]struct {
	status int
	body   string
}{
	"GET /api/v1/users":                              {200, `{"users":[` + wUser + `,` + wRobot + `]}`},
	"POST /api/v1/users":                             {201, wUser},
	"GET /api/v1/users/alice":                        {200, wUser},
	"GET /api/v1/users/a%2Fb":                        {200, wRobot},
	"PATCH /api/v1/users/alice":                      {200, wUser},
	"DELETE /api/v1/users/alice":                     {204, ``},
	"POST /api/v1/users/alice/disable":               {200, wRobot},
	"POST /api/v1/users/alice/enable":                {200, wUser},
	"PUT /api/v1/users/alice/attributes/team":        {200, wAttrs},
	"DELETE /api/v1/users/alice/attributes/team":     {200, `{"attributes":{},"revision":6}`},
	"PUT /api/v1/users/alice/password":               {204, ``},
	"GET /api/v1/users/missing":                      {404, `{"error":{"code":"not_found","message":"no such user","request_id":"rq-9"}}`},
	"GET /api/v1/groups":                             {200, `{"groups":[` + wGroup + `,` + wEmptyGroup + `]}`},
	"GET /api/v1/groups/analysts":                    {200, wGroup},
	"GET /api/v1/groups/broken":                      {500, `oops`},
	"POST /api/v1/groups":                            {201, wEmptyGroup},
	"DELETE /api/v1/groups/analysts":                 {204, ``},
	"POST /api/v1/groups/analysts/members":           {200, wGroup},
	"DELETE /api/v1/groups/analysts/members/bob":     {200, wEmptyGroup},
	"GET /api/v1/tokens":                             {200, `{"tokens":[` + wToken + `,` + wExpired + `,` + wRevoked + `]}`},
	"POST /api/v1/tokens":                            {201, wTokenCreated},
	"DELETE /api/v1/tokens/abc":                      {200, wRevoked},
	"GET /api/v1/roles":                              {200, `{"roles":[` + wRole + `,` + wBareRole + `]}`},
	"GET /api/v1/roles/data-reader":                  {200, wRole},
	"GET /api/v1/roles/analyst":                      {200, wBareRole},
	"POST /api/v1/roles":                             {201, wRole},
	"DELETE /api/v1/roles/data-reader":               {204, ``},
	"PUT /api/v1/roles/data-reader/policies/read":    {200, wRole},
	"DELETE /api/v1/roles/data-reader/policies/read": {200, wBareRole},
	"PUT /api/v1/roles/data-reader/trust-policy":     {200, wRole},
	"GET /api/v1/saml-providers":                     {200, `{"samlProviders":[` + wSAML + `]}`},
	"POST /api/v1/saml-providers":                    {201, wSAML},
	"GET /api/v1/saml-providers/okta":                {200, wSAML},
	"GET /api/v1/saml-providers/o1":                  {404, `{"error":{"code":"not_found","message":"no such provider"}}`},
	"GET /api/v1/saml-providers/down":                {503, `{"error":{"code":"unavailable","message":"store down"}}`},
	"DELETE /api/v1/saml-providers/okta":             {204, ``},
	"PUT /api/v1/saml-providers/okta/binding":        {200, wSAML},
	"GET /api/v1/oidc-providers":                     {200, `{"oidcProviders":[` + wOIDC + `,` + wOIDC2 + `]}`},
	"POST /api/v1/oidc-providers":                    {201, wOIDC2},
	"DELETE /api/v1/oidc-providers/o1":               {204, ``},
	"PUT /api/v1/oidc-providers/o1/binding":          {200, wOIDC},
	"GET /api/v1/policies":                           {200, `{"policies":[` + wPolicy + `,` + wBarePolicy + `]}`},
	"GET /api/v1/policies/lake-read":                 {200, wPolicy},
	"POST /api/v1/policies":                          {201, wPolicy},
	"PUT /api/v1/policies/lake-read":                 {200, wBarePolicy},
	"DELETE /api/v1/policies/lake-read":              {204, ``},
	"POST /api/v1/sts/revocations":                   {200, `{"sessionId":"abcdef12","deniedUntil":"2026-01-01T12:05:00Z"}`},
	"POST /api/v1/authorization-messages/decode": {200, `{"allowed":false,"time":"2026-01-01T00:00:00.25Z","requestId":"req1",` +
		`"principal":"arn:aws:sts::000000000000:assumed-role/analyst/alice","sourceIdentity":"alice","action":"s3:GetObject",` +
		`"resource":"arn:aws:s3:::demo/hr/x","mount":"s3://demo/hr/","reason":"no statement allows s3:GetObject"}`},
	"GET /api/v1/mounts":                            {200, `{"mounts":[` + wMount + `,` + wBareMount + `]}`},
	"GET /api/v1/mounts/m1":                         {200, wMount},
	"POST /api/v1/mounts":                           {201, wBareMount},
	"DELETE /api/v1/mounts/m1":                      {204, ``},
	"GET /api/v1/privileges":                        {200, `{"grants":[` + wGrant + `]}`},
	"PUT /api/v1/privileges/admin/principals/bob":   {200, strings.ReplaceAll(wGrant, "alice", "bob")},
	"DELETE /api/v1/privileges/scim/principals/bob": {204, ``},
	"GET /api/v1/federated-links":                   {200, `{"federatedLinks":[` + wLink + `,` + wBareLink + `]}`},
	"POST /api/v1/federated-links":                  {201, wLink},
	"DELETE /api/v1/federated-links":                {204, ``},
}

// wireRecorder is a fake admin API: it checks each request against
// api/openapi.yaml as the server does, logs it with the outcome, and answers
// from wireRoutes.
type wireRecorder struct {
	router routers.Router
	mu     sync.Mutex
	log    []string
}

// newWireRecorder loads the admin API's OpenAPI document for checking.
func newWireRecorder(t *testing.T) *wireRecorder {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromData(specpkg.Spec)
	require.NoError(t, err)
	router, err := gorillamux.NewRouter(doc)
	require.NoError(t, err)
	return &wireRecorder{router: router}
}

// check validates r (whose body is body) against the document: route,
// path, query and body, with the server's options.
func (w *wireRecorder) check(r *http.Request, body []byte) string {
	route, params, err := w.router.FindRoute(r)
	if err != nil {
		return "no operation of the document: " + err.Error()
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	in := &openapi3filter.RequestValidationInput{Request: r, PathParams: params, Route: route, Options: &openapi3filter.Options{
		AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, SkipSettingDefaults: true,
		RejectWhenRequestBodyNotSpecified: true}}
	if err := openapi3filter.ValidateRequest(r.Context(), in); err != nil {
		return route.Operation.OperationID + ", invalid: " + strings.ReplaceAll(err.Error(), "\n", " | ")
	}
	return route.Operation.OperationID + ", valid"
}

func (w *wireRecorder) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	line := fmt.Sprintf("> %s %s\n>   spec: %s", r.Method, r.URL.RequestURI(), w.check(r, body))
	for _, h := range []string{"Accept", "Authorization", "Content-Type", "User-Agent"} {
		line += fmt.Sprintf("\n>   %s: %s", h, r.Header.Get(h))
	}
	if len(body) > 0 {
		var v any // canonical form: keys sorted
		if err := json.Unmarshal(body, &v); err != nil {
			line += "\n>   body (not JSON): " + string(body)
		} else {
			canon, _ := json.Marshal(v)
			line += "\n>   body: " + string(canon)
		}
	}
	w.mu.Lock()
	w.log = append(w.log, line)
	w.mu.Unlock()
	route, ok := wireRoutes[r.Method+" "+r.URL.EscapedPath()]
	if !ok {
		route.status, route.body = 418, `{"error":{"code":"no_fixture","message":"no fixture for this request"}}`
	}
	rw.Header().Set("X-Request-Id", "hdr-req")
	if strings.HasPrefix(route.body, "{") {
		rw.Header().Set("Content-Type", "application/json")
	}
	rw.WriteHeader(route.status)
	_, _ = io.WriteString(rw, route.body)
}

// TestAdminCLIWireTranscript runs every admin command against a fake API
// with canned answers, and compares what each sends (method, path, query,
// headers, body, and whether api/openapi.yaml accepts it as the server
// would) and prints (stdout, stderr, error) with
// testdata/admin_wire.golden. It pins the CLI's requests, output and error
// messages while its wire types move to the client generated from
// api/openapi.yaml (issue 12 §3); -update rewrites the file.
func TestAdminCLIWireTranscript(t *testing.T) {
	old := time.Local
	time.Local = time.UTC // fmtTime prints local time
	t.Cleanup(func() { time.Local = old })
	rec := newWireRecorder(t)
	srv := httptest.NewServer(rec)
	t.Cleanup(srv.Close)
	t.Setenv("GATEHOUSE_TOKEN", "")
	t.Setenv("GATEHOUSE_SERVER", "")
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())

	dir := t.TempDir()
	trust := writeFile(t, dir, "trust.json", `{"Version":"2012-10-17", "Statement":[{"Effect":"Allow","Principal":{"AWS":"*"}}]}`)
	read := writeFile(t, dir, "read.json", `{"Statement":{"Effect":"Allow","Action":"s3:GetObject"},"Version":"2012-10-17"}`)
	notJSON := writeFile(t, dir, "x.json", `{`)
	md := writeFile(t, dir, "md.xml", `<EntityDescriptor entityID="x"/>`)

	steps := []struct {
		stdin string
		args  []string
	}{
		{"", []string{"users", "list"}},
		{"", []string{"users", "list", "--filter", "al ice", "--kind", "service", "--json"}},
		{"", []string{"users", "get", "alice"}},
		{"", []string{"users", "get", "a/b"}},
		{"", []string{"users", "get", "missing"}},
		{"pw-12345678\n", []string{"users", "create", "alice", "--display-name", "Alice Liddell", "--given-name", "Alice",
			"--family-name", "Liddell", "--title", "Queen", "--external-id", "ext-1", "--email", "alice@example.com",
			"--email", "a2@example.com", "--attr", "region=EU", "--attr", "purpose=a,b", "--attr", "purpose=c",
			"--service", "--inactive", "--password"}},
		{"", []string{"users", "create", "robot"}},
		{"", []string{"users", "create", "bad", "--attr", "novalue"}},
		{"", []string{"users", "update", "alice", "--title", "Queen"}},
		{"", []string{"users", "update", "alice", "--revision", "3", "--user-name", "alice2", "--display-name", "",
			"--given-name", "A", "--family-name", "L", "--external-id", "e", "--email", "x@y.z", "--attr", "k=v",
			"--active=false"}},
		{"", []string{"users", "update", "alice"}},
		{"", []string{"users", "delete", "alice"}},
		{"", []string{"users", "disable", "alice"}},
		{"", []string{"users", "enable", "alice"}},
		{"", []string{"users", "set-attr", "alice", "team", "data", "ml"}},
		{"", []string{"users", "unset-attr", "alice", "team"}},
		{"new-password-1\n", []string{"users", "set-password", "alice"}},
		{"", []string{"users", "set-password", "alice"}},
		{"", []string{"groups", "list"}},
		{"", []string{"groups", "list", "--filter", "an"}},
		{"", []string{"groups", "get", "analysts"}},
		{"", []string{"groups", "get", "broken"}},
		{"", []string{"groups", "create", "empty", "--member", "alice", "--member", "g2", "--external-id", "eg"}},
		{"", []string{"groups", "create", "empty"}},
		{"", []string{"groups", "delete", "analysts"}},
		{"", []string{"groups", "add-member", "analysts", "alice"}},
		{"", []string{"groups", "add-member", "analysts", "g2", "--type", "GROUP"}},
		{"", []string{"groups", "add-member", "analysts", "g2", "--type", "team"}},
		{"", []string{"groups", "remove-member", "analysts", "bob"}},
		{"", []string{"tokens", "list"}},
		{"", []string{"tokens", "list", "--principal", "alice"}},
		{"", []string{"tokens", "create", "--name", "ci", "--principal", "alice", "--ttl", "24h"}},
		{"", []string{"tokens", "create"}},
		{"", []string{"tokens", "create", "--ttl", "30s"}},
		{"", []string{"tokens", "revoke", "abc"}},
		{"", []string{"roles", "list", "--filter", "d", "--path-prefix", "/eng/"}},
		{"", []string{"roles", "get", "data-reader"}},
		{"", []string{"roles", "get", "analyst"}},
		{"", []string{"roles", "create", "--name", "data-reader", "--trust-policy", trust, "--policy", "read=" + read,
			"--permissions-boundary", read, "--max-session-duration", "2h", "--tag", "team=data", "--path", "/eng/",
			"--description", "reads the lake"}},
		{trust, []string{"roles", "create", "--name", "analyst", "--trust-policy", "-"}},
		{"", []string{"roles", "create", "--name", "x", "--trust-policy", notJSON}},
		{"", []string{"roles", "create", "--name", "x", "--trust-policy", trust, "--policy", "nofile"}},
		{"", []string{"roles", "create", "--name", "x", "--trust-policy", trust, "--max-session-duration", "1.5s"}},
		{"", []string{"roles", "create", "--name", "x", "--trust-policy", trust, "--tag", "novalue"}},
		{"", []string{"roles", "create", "--name", "x"}},
		{"", []string{"roles", "delete", "data-reader"}},
		{"", []string{"roles", "put-policy", "data-reader", "read", read}},
		{"", []string{"roles", "put-policy", "data-reader", "read", read, "--revision", "3"}},
		{"", []string{"roles", "delete-policy", "data-reader", "read"}},
		{"", []string{"roles", "set-trust-policy", "data-reader", trust}},
		{"", []string{"roles", "set-trust-policy", "data-reader", trust, "--revision", "2"}},
		{"", []string{"providers", "saml", "list"}},
		{"", []string{"providers", "saml", "create", "--name", "okta", "--metadata", md}},
		{"<md/>", []string{"providers", "saml", "create", "--name", "okta", "--metadata", "-"}},
		{"", []string{"providers", "saml", "create", "--name", "okta"}},
		{"", []string{"providers", "saml", "delete", "okta"}},
		{"", []string{"providers", "oidc", "list"}},
		{"", []string{"providers", "oidc", "create", "--issuer", "https://gh", "--audience", "sts", "--audience", "x",
			"--thumbprint", strings.Repeat("ab", 20), "--jwks-url", "https://gh/jwks", "--groups-claim", "groups", "--roles-claim", "roles",
			"--username-claim", "sub"}},
		{"", []string{"providers", "oidc", "create", "--issuer", "https://gh", "--audience", "sts"}},
		{"", []string{"providers", "oidc", "create", "--issuer", "https://gh"}},
		{"", []string{"providers", "oidc", "delete", "o1"}},
		{"", []string{"providers", "oidc", "delete", "https://idp.example.com/corp"}},
		{"", []string{"providers", "oidc", "delete", "https://nowhere.example.com"}},
		{"", []string{"policies", "list", "--filter", "lake", "--path-prefix", "/"}},
		{"", []string{"policies", "get", "lake-read"}},
		{"", []string{"policies", "create", "--name", "lake-read", "--document", read, "--path", "/", "--description", "lake"}},
		{"", []string{"policies", "create", "--name", "lake-read"}},
		{"", []string{"policies", "update", "lake-read", "--document", read}},
		{"", []string{"policies", "update", "lake-read", "--document", read, "--revision", "6", "--description", ""}},
		{"", []string{"policies", "update", "lake-read"}},
		{"", []string{"policies", "delete", "lake-read"}},
		{"", []string{"sessions", "revoke", "--session", "abcdef12"}},
		{"", []string{"sessions", "revoke", "--user", "alice"}},
		{"", []string{"sessions", "revoke"}},
		{"", []string{"decode-authorization-message", "AccessDenied. Encoded authorization failure message: ghm1.abc def"}},
		{"  ghm1.xyz \n", []string{"decode-authorization-message", "-"}},
		{"", []string{"mounts", "list", "--bucket", "demo"}},
		{"", []string{"mounts", "get", "m1"}},
		{"", []string{"mounts", "create", "--bucket", "demo", "--prefix", "hr/", "--role", "analyst", "--description", "hr"}},
		{"", []string{"mounts", "create", "--bucket", "demo", "--prefix", "hr/", "--role", "arn:aws:iam::000000000000:role/hr"}},
		{"", []string{"mounts", "delete", "m1"}},
		{"", []string{"privileges", "list"}},
		{"", []string{"privileges", "grant", "bob", "admin"}},
		{"", []string{"privileges", "revoke", "bob", "scim"}},
		{"", []string{"links", "list", "--provider", "o1", "--user", "alice"}},
		{"", []string{"links", "create", "--provider", "o1", "--subject", "00u1", "--user", "alice"}},
		{"", []string{"links", "delete", "--provider", "o1", "--subject", "00u1"}},
		{"", []string{"links", "rule", "okta", "--link-by-username", "--scim-subject", "userName"}},
		{"", []string{"links", "rule", "o1", "--trust-email", "--unlinked", "federated"}},
		{"", []string{"links", "rule", "down"}},
	}

	var got strings.Builder
	for _, st := range steps {
		rec.mu.Lock()
		rec.log = nil
		rec.mu.Unlock()
		out, errOut, err := runCmd(t, newAdminCmd(), st.stdin, append([]string{"--server", srv.URL + "/", "--token", "tok"}, st.args...)...)
		fmt.Fprintf(&got, "$ gatehouse admin %s\n", strings.Join(st.args, " "))
		rec.mu.Lock()
		for _, l := range rec.log {
			got.WriteString(l + "\n")
		}
		rec.mu.Unlock()
		fmt.Fprintf(&got, "stdout:\n%s", out)
		if errOut != "" {
			fmt.Fprintf(&got, "stderr:\n%s", errOut)
		}
		if err != nil {
			fmt.Fprintf(&got, "error: %v\n", err)
		}
		got.WriteString("\n")
	}
	transcript := strings.NewReplacer(srv.URL, "SERVER", dir, "DIR", "gatehouse-cli/"+version, "gatehouse-cli/VERSION").Replace(got.String())

	for _, l := range strings.Split(transcript, "\n") {
		if strings.HasPrefix(l, ">   spec: ") && !strings.HasSuffix(l, ", valid") {
			t.Errorf("the CLI sent a request api/openapi.yaml refuses: %s", l)
		}
	}
	golden := filepath.Join("testdata", "admin_wire.golden")
	if *updateGolden {
		require.NoError(t, os.MkdirAll("testdata", 0o755))
		require.NoError(t, os.WriteFile(golden, []byte(transcript), 0o644))
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err, "run with -update to create it")
	if transcript != string(want) {
		gl, wl := strings.Split(transcript, "\n"), strings.Split(string(want), "\n")
		for i := range min(len(gl), len(wl)) {
			if gl[i] != wl[i] {
				t.Fatalf("transcript differs from %s at line %d:\n got: %s\nwant: %s", golden, i+1, gl[i], wl[i])
			}
		}
		t.Fatalf("transcript differs from %s in length: %d lines, want %d", golden, len(gl), len(wl))
	}
}
