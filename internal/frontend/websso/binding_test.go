package websso_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"html"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/frontend/websso"
	"github.com/gatehouse-dev/gatehouse/internal/frontend/websso/ssotest"
	"github.com/gatehouse-dev/gatehouse/internal/identity"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// rogueSAMLLogin signs in at gatehouse's web ACS through the rogue IdP,
// SP-initiated, as the rogue directory's user.
func rogueSAMLLogin(t *testing.T, w *ssotest.World, user, pw string) (*http.Response, string) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	hc := noRedirect(jar)
	res, body := get(t, hc, w.URL+"/saml/login?provider="+ssotest.RogueProvider)
	require.Equal(t, http.StatusFound, res.StatusCode, body)
	res, body = get(t, hc, res.Header.Get("Location"))
	require.Equal(t, 200, res.StatusCode, body)
	action, form := formOf(t, body)
	form.Set("username", user)
	form.Set("password", pw)
	res, body = postForm(t, hc, action, form)
	require.Equal(t, 200, res.StatusCode, body)
	acs, post := formOf(t, body)
	return postForm(t, hc, acs, post)
}

// rogueOIDCLogin signs in at gatehouse's web OIDC callback through the
// rogue IdP (authorization code flow), as the rogue directory's user.
func rogueOIDCLogin(t *testing.T, w *ssotest.World, user, pw string) (*http.Response, string) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	hc := noRedirect(jar)
	res, body := get(t, hc, w.URL+"/oidc/login?provider="+url.QueryEscape(w.RogueOIDC.ID))
	require.Equal(t, http.StatusFound, res.StatusCode, body)
	res, body = get(t, hc, res.Header.Get("Location"))
	require.Equal(t, 200, res.StatusCode, body)
	action, form := formOf(t, body)
	form.Set("username", user)
	form.Set("password", pw)
	res, body = postForm(t, hc, action, form)
	require.Equal(t, http.StatusFound, res.StatusCode, body)
	return get(t, hc, res.Header.Get("Location"))
}

// rogueIDToken runs the rogue IdP's code flow directly and returns its ID
// token, as an attacker holding an account there can.
func rogueIDToken(t *testing.T, w *ssotest.World, user, pw string) string {
	t.Helper()
	hc := noRedirect(nil)
	verifier := strings.Repeat("v", 43)
	sum := sha256.Sum256([]byte(verifier))
	res, body := postForm(t, hc, w.Rogue.OIDCIssuer()+"/authorize", url.Values{"response_type": {"code"},
		"client_id": {"rogue-client"}, "redirect_uri": {w.URL + "/oidc/callback"}, "state": {"s"}, "nonce": {"n"},
		"code_challenge": {base64.RawURLEncoding.EncodeToString(sum[:])}, "code_challenge_method": {"S256"},
		"username": {user}, "password": {pw}})
	require.Equal(t, http.StatusFound, res.StatusCode, body)
	loc, err := url.Parse(res.Header.Get("Location"))
	require.NoError(t, err)
	res, body = postForm(t, hc, w.Rogue.OIDCIssuer()+"/token", url.Values{"grant_type": {"authorization_code"},
		"client_id": {"rogue-client"}, "code": {loc.Query().Get("code")}, "redirect_uri": {w.URL + "/oidc/callback"},
		"code_verifier": {verifier}})
	require.Equal(t, 200, res.StatusCode, body)
	var tok struct {
		IDToken string `json:"id_token"`
	}
	require.NoError(t, json.Unmarshal([]byte(body), &tok))
	return tok.IDToken
}

// stsCall posts an STS Query API call to the world's /sts endpoint.
func stsCall(t *testing.T, w *ssotest.World, form url.Values) (*http.Response, string) {
	t.Helper()
	form.Set("Version", "2011-06-15")
	return postForm(t, http.DefaultClient, w.URL+"/sts", form)
}

// issuedTo returns the user ids that STS issued credentials to, from the
// audit log.
func issuedTo(t *testing.T, w *ssotest.World) []string {
	t.Helper()
	var ids []string
	for rec, err := range audit.Search(w.AuditDir, audit.Query{}) {
		require.NoError(t, err)
		if rec.Event != nil && rec.Event.Code == audit.CodeSTSIssued {
			ids = append(ids, rec.Event.Actor.UserID)
		}
	}
	return ids
}

// rogueTrust is a role trust policy admitting the rogue IdP's SAML
// assertions and ID tokens.
func rogueTrust(w *ssotest.World) string {
	return fmt.Sprintf(`{"Version":"2012-10-17","Statement":[
	  {"Effect":"Allow","Principal":{"Federated":%q},"Action":"sts:AssumeRoleWithSAML","Condition":{"StringEquals":{"SAML:aud":%q}}},
	  {"Effect":"Allow","Principal":{"Federated":%q},"Action":"sts:AssumeRoleWithWebIdentity"}]}`,
		w.RogueSAML.ARN(ssotest.Account), w.URL+"/saml/acs", w.RogueOIDC.ARN(ssotest.Account))
}

// TestBindingTwoIdPsClaimingTheSameUserName proves issue 11 finding 1: a
// user who registers "alice" at a second trusted IdP does not become the
// directory's alice, neither at the web sign-in (SAML ACS, OIDC callback)
// nor at STS, where an unlinked identity is a federated session of its
// own. The IdP that is linked to alice (the demo IdP, whose provider opts
// into user-name links) still signs her in.
func TestBindingTwoIdPsClaimingTheSameUserName(t *testing.T) {
	w := ssotest.New(t, ssotest.Options{Demo: true, Rogue: true})
	alice := w.AddUser("alice", "alice-pw-123456", "analysts")
	require.NoError(t, w.Demo.Seed(context.Background()))
	w.AddRole("rogue-role", rogueTrust(w))
	w.AddRogueUser("alice", "attacker-pw-123456", "", "rogue-role")

	for name, signIn := range map[string]func(*testing.T, *ssotest.World, string, string) (*http.Response, string){
		"saml": rogueSAMLLogin, "oidc": rogueOIDCLogin,
	} {
		t.Run("web-"+name, func(t *testing.T) {
			res, body := signIn(t, w, "alice", "attacker-pw-123456")
			require.Equal(t, http.StatusForbidden, res.StatusCode, body)
			require.Equal(t, websso.PassAccessDenied, res.Header.Get(websso.PassthroughHeader))
			require.NotContains(t, body, "Signed in as alice")
			require.Empty(t, res.Header.Values("Set-Cookie"), "no session for the attacker")
			require.Contains(t, body, "not linked to a gatehouse user")
		})
	}

	// At STS the rogue provider lets unlinked identities through as
	// federated sessions of their own: never alice's principal or name.
	w.SetRogueBinding(store.Binding{Unlinked: store.UnlinkedFederated})
	ra, err := w.RogueStore.GetUserByName(context.Background(), "alice")
	require.NoError(t, err)
	assertion, err := w.Rogue.SAMLResponse(context.Background(), ra, "")
	require.NoError(t, err)
	res, body := stsCall(t, w, url.Values{"Action": {"AssumeRoleWithSAML"}, "RoleArn": {ssotest.RoleARN("rogue-role")},
		"PrincipalArn": {w.RogueSAML.ARN(ssotest.Account)}, "SAMLAssertion": {base64.StdEncoding.EncodeToString(assertion)}})
	require.Equal(t, 200, res.StatusCode, body)
	fedID := identity.FederatedPrincipalID(w.RogueSAML.ARN(ssotest.Account), "alice")
	require.Contains(t, body, "<SourceIdentity>"+fedID+"</SourceIdentity>")

	res, body = stsCall(t, w, url.Values{"Action": {"AssumeRoleWithWebIdentity"}, "RoleArn": {ssotest.RoleARN("rogue-role")},
		"RoleSessionName": {"alice"}, "WebIdentityToken": {rogueIDToken(t, w, "alice", "attacker-pw-123456")}})
	require.Equal(t, 200, res.StatusCode, body)
	require.Contains(t, body, "<SourceIdentity>"+identity.FederatedPrefix)
	require.NotContains(t, issuedTo(t, w), alice.ID, "STS never issues alice's credentials to another IdP's user")

	// The legitimate IdP still signs alice in.
	da, err := w.Store.GetUser(context.Background(), alice.ID)
	require.NoError(t, err)
	resp, err := w.Demo.SAMLResponse(context.Background(), da, "")
	require.NoError(t, err)
	res, body = postForm(t, noRedirect(nil), w.URL+"/saml/acs", url.Values{"SAMLResponse": {base64.StdEncoding.EncodeToString(resp)}})
	require.Equal(t, 200, res.StatusCode, body)
	require.Contains(t, body, "Signed in as alice")
}

// TestBindingUnverifiedEmail proves issue 11 finding 1: an OIDC identity
// whose e-mail address is alice's but unverified does not sign in as
// alice, even at a provider trusted for e-mail.
func TestBindingUnverifiedEmail(t *testing.T) {
	w := ssotest.New(t, ssotest.Options{Rogue: true})
	alice := w.AddUser("alice@corp.example", "alice-pw-123456", "analysts")
	alice.Emails = []store.Email{{Value: "alice@corp.example", Primary: true}}
	require.NoError(t, w.Store.UpdateUser(context.Background(), alice))
	w.SetRogueBinding(store.Binding{TrustEmail: true})
	w.AddRogueUser("mallory", "attacker-pw-123456", "alice@corp.example")

	res, body := rogueOIDCLogin(t, w, "mallory", "attacker-pw-123456")
	require.Equal(t, http.StatusForbidden, res.StatusCode, body)
	require.NotContains(t, body, "Signed in as alice")
	require.Empty(t, res.Header.Values("Set-Cookie"))
	links, err := w.Store.(store.LinkStore).ListFederatedLinks(context.Background(), "")
	require.NoError(t, err)
	require.Empty(t, links, "an unverified address links nobody")
}

// TestBindingNameIDEqualToAdminsName proves issue 11 finding 1: a SAML
// NameID that equals an administrator's user name does not sign in as the
// administrator, and yields no session that the admin API accepts.
func TestBindingNameIDEqualToAdminsName(t *testing.T) {
	w := ssotest.New(t, ssotest.Options{Rogue: true})
	w.AddAdmin("root", "root-pw-1234567")
	w.AddRogueUser("root", "attacker-pw-123456", "")

	jar, _ := cookiejar.New(nil)
	hc := noRedirect(jar)
	res, body := get(t, hc, w.URL+"/saml/login?provider="+ssotest.RogueProvider)
	require.Equal(t, http.StatusFound, res.StatusCode, body)
	res, body = get(t, hc, res.Header.Get("Location"))
	require.Equal(t, 200, res.StatusCode, body)
	action, form := formOf(t, body)
	form.Set("username", "root")
	form.Set("password", "attacker-pw-123456")
	res, body = postForm(t, hc, action, form)
	require.Equal(t, 200, res.StatusCode, body)
	acs, post := formOf(t, body)
	res, body = postForm(t, hc, acs, post)
	require.Equal(t, http.StatusForbidden, res.StatusCode, body)
	require.NotContains(t, body, "Signed in as root")
	res, body = get(t, hc, w.URL+"/api/v1/users")
	require.Equal(t, http.StatusUnauthorized, res.StatusCode, "the attacker holds no admin session: %s", body)

	// The refusal is attributed: audited with its reason, naming what the
	// IdP claimed, never as a sign-in of the administrator.
	var reasons []string
	for rec, err := range audit.Search(w.AuditDir, audit.Query{Action: "identity.login"}) {
		require.NoError(t, err)
		require.NotEqual(t, audit.CodeLoginSucceeded, rec.Event.Code)
		reasons = append(reasons, rec.Event.Reason)
	}
	require.Contains(t, reasons, "AccessDenied: binding-unlinked")
}

// TestBindingNeverToServicePrincipal proves issue 11 finding 1: a
// federated name equal to a service principal's never binds to it, even
// at a provider that opted into user-name links, at STS or the web.
func TestBindingNeverToServicePrincipal(t *testing.T) {
	w := ssotest.New(t, ssotest.Options{Rogue: true})
	bot := &store.User{UserName: "ci-bot", Kind: store.KindService, Active: true}
	require.NoError(t, w.Store.CreateUser(context.Background(), bot))
	w.AddRole("rogue-role", rogueTrust(w))
	rb := w.AddRogueUser("ci-bot", "attacker-pw-123456", "", "rogue-role")
	w.SetRogueBinding(store.Binding{LinkByUserName: true, Unlinked: store.UnlinkedFederated})

	assertion, err := w.Rogue.SAMLResponse(context.Background(), rb, "")
	require.NoError(t, err)
	res, body := stsCall(t, w, url.Values{"Action": {"AssumeRoleWithSAML"}, "RoleArn": {ssotest.RoleARN("rogue-role")},
		"PrincipalArn": {w.RogueSAML.ARN(ssotest.Account)}, "SAMLAssertion": {base64.StdEncoding.EncodeToString(assertion)}})
	require.Equal(t, 200, res.StatusCode, body)
	require.NotContains(t, issuedTo(t, w), bot.ID, "STS never issues a service principal's credentials to a federated identity")
	var out struct {
		Result struct {
			SourceIdentity string
		} `xml:"AssumeRoleWithSAMLResult"`
	}
	require.NoError(t, xml.Unmarshal([]byte(body), &out))
	require.Equal(t, identity.FederatedPrincipalID(w.RogueSAML.ARN(ssotest.Account), "ci-bot"), out.Result.SourceIdentity)

	res, body = rogueSAMLLogin(t, w, "ci-bot", "attacker-pw-123456")
	require.Equal(t, http.StatusForbidden, res.StatusCode, body)
	links, err := w.Store.(store.LinkStore).LinksOfUser(context.Background(), bot.ID)
	require.NoError(t, err)
	require.Empty(t, links)
}

// TestWebSignInOfUnlinkedFederatedIdentityNeedsALink covers the sixth gap
// left by issue 11 (finding 1): a provider whose rule is `unlinked:
// federated` lets an unlinked identity through STS as a federated session,
// but the web sign-in has no session for it (a web session is a directory
// user's; design 0014). The refusal must say that the web sign-in needs a
// link, that the provider's rule covers the STS API only, and how to get a
// link; it is audited with its own reason, and no session is made.
func TestWebSignInOfUnlinkedFederatedIdentityNeedsALink(t *testing.T) {
	w := ssotest.New(t, ssotest.Options{Rogue: true})
	w.AddRole("rogue-role", rogueTrust(w))
	w.AddRogueUser("eve", "eve-pw-123456789", "", "rogue-role")
	w.SetRogueBinding(store.Binding{Unlinked: store.UnlinkedFederated})
	for name, signIn := range map[string]func(*testing.T, *ssotest.World, string, string) (*http.Response, string){
		"saml": rogueSAMLLogin, "oidc": rogueOIDCLogin,
	} {
		t.Run(name, func(t *testing.T) {
			res, body := signIn(t, w, "eve", "eve-pw-123456789")
			require.Equal(t, http.StatusForbidden, res.StatusCode, body)
			require.Equal(t, websso.PassAccessDenied, res.Header.Get(websso.PassthroughHeader))
			require.Empty(t, res.Header.Values("Set-Cookie"), "no session for an unlinked identity")
			text := html.UnescapeString(body)
			require.Contains(t, text, "The web sign-in needs a link")
			require.Contains(t, text, "unlinked: federated")
			require.Contains(t, text, "gatehouse admin links create")
		})
	}
	var reasons []string
	for rec, err := range audit.Search(w.AuditDir, audit.Query{Action: "identity.login"}) {
		require.NoError(t, err)
		require.NotEqual(t, audit.CodeLoginSucceeded, rec.Event.Code)
		reasons = append(reasons, rec.Event.Reason)
	}
	require.Equal(t, []string{"AccessDenied: binding-unlinked-web", "AccessDenied: binding-unlinked-web"}, reasons)
}
