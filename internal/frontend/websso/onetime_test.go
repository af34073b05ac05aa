package websso_test

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-dev/gatehouse/internal/frontend/websso"
	"github.com/gatehouse-dev/gatehouse/internal/frontend/websso/ssotest"
)

// replicas starts a world with the demo IdP (replica A) and a second world
// (replica B) on the same SQLite store and the same public URL, as two
// gatehouse replicas behind one load balancer.
func replicas(t *testing.T) (a, b *ssotest.World, dbPath string) {
	t.Helper()
	dbPath = filepath.Join(t.TempDir(), "shared.db")
	a = ssotest.New(t, ssotest.Options{Demo: true, DBPath: dbPath})
	a.AddUser("alice", "alice-pw-123456", "analysts")
	require.NoError(t, a.Demo.Seed(context.Background()))
	b = ssotest.New(t, ssotest.Options{DBPath: dbPath, PublicURL: a.URL})
	return a, b, dbPath
}

// stsSAML calls AssumeRoleWithSAML at base with assertion.
func stsSAML(t *testing.T, base string, assertion []byte) (*http.Response, string) {
	t.Helper()
	return postForm(t, noRedirect(nil), base+"/sts", url.Values{"Action": {"AssumeRoleWithSAML"}, "Version": {"2011-06-15"},
		"RoleArn": {ssotest.RoleARN("analyst")}, "PrincipalArn": {"arn:aws:iam::" + ssotest.Account + ":saml-provider/demo-idp"},
		"SAMLAssertion": {base64.StdEncoding.EncodeToString(assertion)}})
}

// TestSAMLReplayOnAnotherReplicaOrAfterRestartRefused proves issue 11
// finding 5 (shared one-time state): a SAML assertion used once, at the ACS
// or at STS, is refused when it is replayed to another replica sharing the
// store, or to a replica started again on the same store. Before the fix
// each process kept its own replay cache, so every replica (and every
// restart) accepted the assertion once more.
func TestSAMLReplayOnAnotherReplicaOrAfterRestartRefused(t *testing.T) {
	a, b, dbPath := replicas(t)
	ctx := context.Background()
	u, err := a.Store.GetUserByName(ctx, "alice")
	require.NoError(t, err)
	hc := noRedirect(nil)

	tests := []struct {
		name   string
		first  func(assertion []byte) (*http.Response, string) // accepted
		replay func(assertion []byte) (*http.Response, string) // refused
	}{
		{"ACS on A, ACS on B",
			func(x []byte) (*http.Response, string) { return postForm(t, hc, a.ServerURL+"/saml/acs", acsForm(x)) },
			func(x []byte) (*http.Response, string) { return postForm(t, hc, b.ServerURL+"/saml/acs", acsForm(x)) }},
		{"STS on A, STS on B",
			func(x []byte) (*http.Response, string) { return stsSAML(t, a.ServerURL, x) },
			func(x []byte) (*http.Response, string) { return stsSAML(t, b.ServerURL, x) }},
		{"ACS on B, STS on A",
			func(x []byte) (*http.Response, string) { return postForm(t, hc, b.ServerURL+"/saml/acs", acsForm(x)) },
			func(x []byte) (*http.Response, string) { return stsSAML(t, a.ServerURL, x) }},
		{"ACS on A, ACS on A restarted",
			func(x []byte) (*http.Response, string) { return postForm(t, hc, a.ServerURL+"/saml/acs", acsForm(x)) },
			func(x []byte) (*http.Response, string) {
				restarted := ssotest.New(t, ssotest.Options{DBPath: dbPath, PublicURL: a.URL})
				return postForm(t, hc, restarted.ServerURL+"/saml/acs", acsForm(x))
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			assertion, err := a.Demo.SAMLResponse(ctx, u, "")
			require.NoError(t, err)
			res, body := tc.first(assertion)
			require.Equal(t, http.StatusOK, res.StatusCode, body)
			res, body = tc.replay(assertion)
			require.Equal(t, http.StatusBadRequest, res.StatusCode, body)
			require.Contains(t, body, "already used")
		})
	}
}

func acsForm(assertion []byte) url.Values {
	return url.Values{"SAMLResponse": {base64.StdEncoding.EncodeToString(assertion)}}
}

// TestSPInitiatedLoginAnsweredOnceAcrossReplicas proves issue 11 finding 5
// for pending AuthnRequests: a login started on replica A is finished on
// replica B (no sticky sessions needed), and a second response to the same
// request is refused on either replica. Before the fix the pending request
// lived in A's memory, so B refused the honest login.
func TestSPInitiatedLoginAnsweredOnceAcrossReplicas(t *testing.T) {
	a, b, _ := replicas(t)
	hc := noRedirect(nil)
	answer := func() url.Values {
		res, _ := get(t, hc, a.ServerURL+"/saml/login?provider=demo-idp")
		require.Equal(t, http.StatusFound, res.StatusCode)
		res, body := get(t, hc, res.Header.Get("Location"))
		require.Equal(t, http.StatusOK, res.StatusCode, body)
		action, form := formOf(t, body)
		require.NotEmpty(t, form.Get("InResponseTo"))
		form.Set("username", "alice")
		form.Set("password", "alice-pw-123456")
		res, body = postForm(t, hc, action, form)
		require.Equal(t, http.StatusOK, res.StatusCode, body)
		_, post := formOf(t, body)
		return post
	}
	post := answer()
	res, body := postForm(t, hc, b.ServerURL+"/saml/acs", post)
	require.Equal(t, http.StatusOK, res.StatusCode, "finished on the other replica: %s", body)
	require.Contains(t, body, "Signed in as alice")

	// A second, freshly signed response to the same request.
	second := answer()
	ctx := context.Background()
	u, err := a.Store.GetUserByName(ctx, "alice")
	require.NoError(t, err)
	inResponseTo := requestIDOf(t, post)
	for _, replica := range []*ssotest.World{a, b} {
		again, err := a.Demo.SAMLResponse(ctx, u, inResponseTo)
		require.NoError(t, err)
		res, body = postForm(t, hc, replica.ServerURL+"/saml/acs", acsForm(again))
		require.Equal(t, http.StatusBadRequest, res.StatusCode, body)
		require.Equal(t, websso.PassInvalidIdentityToken, res.Header.Get(websso.PassthroughHeader))
		require.Contains(t, body, "did not send, or one that was already used")
	}
	res, body = postForm(t, hc, a.ServerURL+"/saml/acs", second)
	require.Equal(t, http.StatusOK, res.StatusCode, "a second login has its own request: %s", body)
}

var inResponseToRE = regexp.MustCompile(`InResponseTo="([^"]+)"`)

// requestIDOf returns the InResponseTo of the assertion in an ACS form.
func requestIDOf(t *testing.T, post url.Values) string {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(post.Get("SAMLResponse"))
	require.NoError(t, err)
	m := inResponseToRE.FindSubmatch(raw)
	require.NotNil(t, m, "no InResponseTo in the response")
	return string(m[1])
}

// TestAnonymousLoginStartsLeaveStoreBounded proves issue 11 finding 5 for
// unauthenticated GETs: 100,000 anonymous sign-in starts (CLI logins, SAML
// and OIDC SP-initiated logins, in equal parts) through the production
// handler do not add a single row to the store. Before the fix each CLI and
// OIDC start wrote a row that was never deleted.
func TestAnonymousLoginStartsLeaveStoreBounded(t *testing.T) {
	w := ssotest.New(t, ssotest.Options{Demo: true})
	require.NoError(t, w.Demo.Seed(context.Background()))
	p, err := w.Store.GetOIDCProviderByIssuer(context.Background(), w.Demo.OIDCIssuer())
	require.NoError(t, err)
	sum := sha256.Sum256([]byte("verifier"))
	cli := url.Values{"cli_port": {"45678"}, "state": {"state-0123456789abcdef"},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}}
	starts := []string{
		"/login?" + cli.Encode(),
		"/saml/login?provider=demo-idp",
		"/oidc/login?provider=" + url.QueryEscape(p.ID),
	}
	// Every kind of start works before the flood is measured.
	for _, path := range starts {
		res, body := get(t, noRedirect(nil), w.ServerURL+path)
		require.Contains(t, []int{http.StatusOK, http.StatusFound}, res.StatusCode, "%s: %s", path, body)
	}
	before := metaRows(t, w)

	// Issue 11 finding 5 asks for 100,000 starts; under -race a tenth of
	// them checks the same bound with the detector watching.
	total, workers := 100_000, 4
	if raceDetector {
		total = 10_000
	}
	h := w.SSO.Handler()
	var wg sync.WaitGroup
	errs := make(chan string, workers)
	for g := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; i < total; i += workers {
				path := starts[i%len(starts)]
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, w.URL+path, nil))
				if rec.Code != http.StatusOK && rec.Code != http.StatusFound {
					errs <- path + ": " + rec.Body.String()
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
	require.Equal(t, before, metaRows(t, w), "anonymous sign-in starts wrote rows")

	// Anonymous callbacks with a valid state but no real sign-in at the
	// IdP (a made-up code) write nothing either: the state is claimed only
	// after the IdP has answered.
	res, body := get(t, noRedirect(nil), w.ServerURL+starts[2])
	require.Equal(t, http.StatusFound, res.StatusCode, body)
	authz, err := url.Parse(res.Header.Get("Location"))
	require.NoError(t, err)
	state := authz.Query().Get("state")
	for i := range 100 {
		rec := httptest.NewRecorder()
		q := url.Values{"state": {state}, "code": {"made-up-" + strconv.Itoa(i)}}
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, w.URL+"/oidc/callback?"+q.Encode(), nil))
		require.Equal(t, http.StatusBadRequest, rec.Code, rec.Body.String())
	}
	require.Equal(t, before, metaRows(t, w), "anonymous callbacks wrote rows")
}

// metaRows counts the rows of the store's meta table, read straight from
// the SQLite file.
func metaRows(t *testing.T, w *ssotest.World) int {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+w.DBPath+"?mode=ro")
	require.NoError(t, err)
	defer db.Close()
	var n int
	require.NoError(t, db.QueryRow(`SELECT count(*) FROM meta`).Scan(&n))
	return n
}

// TestOIDCStateAnsweredOnceAcrossReplicas proves issue 11 finding 5 for
// OAuth states: the IdP is made to answer one sign-in twice (two codes for
// one state, as a replayed authorization would give); the first callback
// signs in on replica A and the second is refused on replica B, because
// the state is claimed in the shared store. (The stored states of the old
// code were shared too; this guards their move into the sealed state.)
func TestOIDCStateAnsweredOnceAcrossReplicas(t *testing.T) {
	a, b, _ := replicas(t)
	p, err := a.Store.GetOIDCProviderByIssuer(context.Background(), a.Demo.OIDCIssuer())
	require.NoError(t, err)
	hc := noRedirect(nil)
	res, body := get(t, hc, a.ServerURL+"/oidc/login?provider="+url.QueryEscape(p.ID))
	require.Equal(t, http.StatusFound, res.StatusCode, body)
	authz := res.Header.Get("Location")
	callback := func() string {
		res, body := get(t, hc, authz)
		require.Equal(t, http.StatusOK, res.StatusCode, body)
		action, form := formOf(t, body)
		form.Set("username", "alice")
		form.Set("password", "alice-pw-123456")
		res, body = postForm(t, hc, action, form)
		require.Equal(t, http.StatusFound, res.StatusCode, body)
		cb, err := url.Parse(res.Header.Get("Location"))
		require.NoError(t, err)
		return cb.RawQuery
	}
	first, second := callback(), callback()
	require.NotEqual(t, first, second, "two codes for one state")

	res, body = get(t, hc, a.ServerURL+"/oidc/callback?"+first)
	require.Equal(t, http.StatusOK, res.StatusCode, body)
	require.Contains(t, body, "Signed in as alice")
	res, body = get(t, hc, b.ServerURL+"/oidc/callback?"+second)
	require.Equal(t, http.StatusBadRequest, res.StatusCode, body)
	require.Equal(t, websso.PassValidationError, res.Header.Get(websso.PassthroughHeader))
	require.Contains(t, body, "already used")
}
