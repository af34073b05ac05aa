package websso_test

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-dev/gatehouse/internal/frontend/websso"
	"github.com/gatehouse-dev/gatehouse/internal/frontend/websso/ssotest"
	"github.com/gatehouse-dev/gatehouse/internal/identity"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// samlSession signs userName in at the ACS with a demo IdP assertion whose
// Role attribute grants exactly roleNames (nil: the user's aws_roles; empty:
// the attribute with no value) and returns a client holding the session.
func samlSession(t *testing.T, w *ssotest.World, userName string, roleNames []string) *client {
	t.Helper()
	ctx := context.Background()
	u, err := w.Store.GetUserByName(ctx, userName)
	require.NoError(t, err)
	resp, err := w.Demo.SAMLResponseWithRoles(ctx, u, "", roleNames)
	require.NoError(t, err)
	res, body := postForm(t, noRedirect(nil), w.URL+"/saml/acs", url.Values{"SAMLResponse": {base64.StdEncoding.EncodeToString(resp)}})
	require.Equal(t, http.StatusOK, res.StatusCode, body)
	for _, c := range res.Cookies() {
		if c.Name == identity.SessionCookie {
			return &client{t: t, base: w.URL, token: c.Value}
		}
	}
	t.Fatalf("no session cookie after the SAML sign-in: %s", body)
	return nil
}

// demoWorld is a world with the demo IdP seeded and alice in the analysts
// and hr groups, so the gatehouse issuer's trust statements of both the
// analyst and the hr-reader role admit her; her aws_roles grant analyst.
func demoWorld(t *testing.T) *ssotest.World {
	t.Helper()
	w := ssotest.New(t, ssotest.Options{Demo: true})
	w.AddUser("alice", "alice-pw-123456", "analysts", "hr")
	require.NoError(t, w.Demo.Seed(context.Background()))
	return w
}

func roleNames(t *testing.T, c *client) []string {
	t.Helper()
	var rl roleList
	res, raw := c.do("GET", "/api/v1/me/roles", nil, &rl)
	require.Equal(t, http.StatusOK, res.StatusCode, string(raw))
	names := []string{}
	for _, r := range rl.Roles {
		names = append(names, r.Name)
	}
	return names
}

// assumeDirect mints a web-identity token with c and calls STS
// AssumeRoleWithWebIdentity over HTTP for role, as any client could.
func assumeDirect(t *testing.T, w *ssotest.World, c *client, role string) error {
	t.Helper()
	var tok websso.WebIdentityToken
	res, raw := c.do("POST", "/api/v1/me/web-identity-token", map[string]any{}, &tok)
	require.Equal(t, http.StatusOK, res.StatusCode, string(raw))
	_, err := websso.AssumeRoleWithWebIdentity(context.Background(), http.DefaultClient, w.URL+"/sts",
		websso.AssumeInput{RoleARN: ssotest.RoleARN(role), SessionName: "alice", Token: tok.Token})
	return err
}

// TestPATFromRestrictedSAMLSessionCannotWidenRoles proves issue 11
// finding 9: a personal access token minted with a SAML session whose
// assertion granted only the analyst role reaches only that role, through
// the role picker, /api/v1/me/credentials and STS web identity, although
// the trust policies of other roles would admit the user's groups.
func TestPATFromRestrictedSAMLSessionCannotWidenRoles(t *testing.T) {
	w := demoWorld(t)
	sess := samlSession(t, w, "alice", nil)
	require.Equal(t, []string{"analyst"}, roleNames(t, sess), "the session is restricted to the assertion's roles")

	var pat struct {
		Token     string
		ExpiresAt time.Time
		Roles     []map[string]string
	}
	res, raw := sess.do("POST", "/api/v1/tokens", map[string]any{"name": "laptop"}, &pat)
	require.Equal(t, http.StatusCreated, res.StatusCode, string(raw))
	require.NotNil(t, pat.Roles, "the token shows its restriction: %s", raw)
	patClient := &client{t: t, base: w.URL, token: pat.Token}

	require.Equal(t, []string{"analyst"}, roleNames(t, patClient), "role picker")

	res, raw = patClient.do("POST", "/api/v1/me/credentials", map[string]any{"role": "hr-reader"}, nil)
	require.Equal(t, http.StatusForbidden, res.StatusCode, "credentials for a role outside the assertion: %s", raw)
	require.Equal(t, websso.PassAccessDenied, res.Header.Get(websso.PassthroughHeader))
	var creds map[string]any
	res, raw = patClient.do("POST", "/api/v1/me/credentials", map[string]any{"role": "analyst"}, &creds)
	require.Equal(t, http.StatusOK, res.StatusCode, string(raw))
	require.Contains(t, creds["assumedRoleArn"], ":assumed-role/analyst/alice")

	var se *websso.STSError
	require.ErrorAs(t, assumeDirect(t, w, patClient, "hr-reader"), &se, "STS web identity with the PAT's token")
	require.Equal(t, "AccessDenied", se.Code, se.Message)
	require.NoError(t, assumeDirect(t, w, patClient, "analyst"))

	// A token minted with the restricted PAT inherits the restriction.
	var child struct{ Token string }
	res, raw = patClient.do("POST", "/api/v1/tokens", map[string]any{"name": "child"}, &child)
	require.Equal(t, http.StatusCreated, res.StatusCode, string(raw))
	require.Equal(t, []string{"analyst"}, roleNames(t, &client{t: t, base: w.URL, token: child.Token}))

	// A password session of the same user is not restricted: the
	// restriction belongs to the SAML session and what it minted.
	require.Equal(t, []string{"analyst", "hr-reader"}, roleNames(t, login(t, w, "alice", "alice-pw-123456")))
}

// TestEmptyRoleAttributeMeansNoRoles proves issue 11 finding 9: a SAML
// assertion whose Role attribute is present with no value grants no role,
// in the session, in a token minted from it, and at STS with a web-identity
// token whose roles claim is an empty list; it is never read as "no
// restriction".
func TestEmptyRoleAttributeMeansNoRoles(t *testing.T) {
	w := demoWorld(t)
	sess := samlSession(t, w, "alice", []string{})
	require.Empty(t, roleNames(t, sess), "role picker of the session")

	res, raw := sess.do("POST", "/api/v1/me/credentials", map[string]any{"role": "analyst"}, nil)
	require.Equal(t, http.StatusForbidden, res.StatusCode, string(raw))
	res, raw = sess.do("POST", "/api/v1/me/credentials", nil, nil)
	require.Equal(t, http.StatusForbidden, res.StatusCode, "no default role either: %s", raw)

	var se *websso.STSError
	require.ErrorAs(t, assumeDirect(t, w, sess, "analyst"), &se, "an empty roles claim at STS")
	require.Equal(t, "AccessDenied", se.Code, se.Message)

	var pat struct{ Token string }
	res, raw = sess.do("POST", "/api/v1/tokens", map[string]any{"name": "laptop"}, &pat)
	require.Equal(t, http.StatusCreated, res.StatusCode, string(raw))
	require.Empty(t, roleNames(t, &client{t: t, base: w.URL, token: pat.Token}), "role picker of the PAT")
}

// TestPATLifetimeCapped proves issue 11 finding 9: a personal access token
// cannot be requested for longer than the configured maximum (90 days by
// default), and a token minted with a session or another token cannot
// outlive it. Longer requests are refused with 400, never shortened.
func TestPATLifetimeCapped(t *testing.T) {
	w := demoWorld(t)
	day := int64(24 * 3600)
	for _, c := range []struct {
		name string
		sess *client
	}{
		{"password session", login(t, w, "alice", "alice-pw-123456")},
		{"SAML session", samlSession(t, w, "alice", nil)},
	} {
		t.Run(c.name, func(t *testing.T) {
			var who struct{ TokenID string }
			res, raw := c.sess.do("GET", "/api/v1/whoami", nil, &who)
			require.Equal(t, http.StatusOK, res.StatusCode, string(raw))
			sessTok, err := w.Store.GetToken(context.Background(), who.TokenID)
			require.NoError(t, err)

			for _, ttl := range []int64{365 * day, 91 * day, day} {
				res, raw = c.sess.do("POST", "/api/v1/tokens", map[string]any{"name": "long", "ttlSeconds": ttl}, nil)
				require.Equal(t, http.StatusBadRequest, res.StatusCode, "ttl %ds from a 12 h session: %s", ttl, raw)
				require.Contains(t, string(raw), "invalid_request", string(raw))
			}
			var pat struct {
				Token     string
				ExpiresAt time.Time
			}
			res, raw = c.sess.do("POST", "/api/v1/tokens", map[string]any{"name": "default"}, &pat)
			require.Equal(t, http.StatusCreated, res.StatusCode, string(raw))
			require.False(t, pat.ExpiresAt.After(sessTok.ExpiresAt), "the default lifetime ends with the session: %s", raw)

			// A token minted with that PAT cannot outlive it either.
			patc := &client{t: t, base: w.URL, token: pat.Token}
			res, raw = patc.do("POST", "/api/v1/tokens", map[string]any{"name": "child", "ttlSeconds": 13 * 3600}, nil)
			require.Equal(t, http.StatusBadRequest, res.StatusCode, string(raw))
		})
	}

	// An administrator minting for a service principal is held to the
	// configured maximum only: the token is the service principal's, not
	// a copy of the administrator's session.
	ctx := context.Background()
	w.AddAdmin("root", "root-pw-123456")
	ci := &store.User{UserName: "ci-bot", Kind: store.KindService, Active: true}
	require.NoError(t, w.Store.CreateUser(ctx, ci))
	admin := login(t, w, "root", "root-pw-123456")
	res, raw := admin.do("POST", "/api/v1/tokens", map[string]any{"principalId": ci.ID, "ttlSeconds": 91 * day}, nil)
	require.Equal(t, http.StatusBadRequest, res.StatusCode, "over the 90-day maximum: %s", raw)
	var pat struct {
		ExpiresAt time.Time
		Roles     []map[string]string
	}
	res, raw = admin.do("POST", "/api/v1/tokens", map[string]any{"principalId": ci.ID, "ttlSeconds": 90 * day}, &pat)
	require.Equal(t, http.StatusCreated, res.StatusCode, string(raw))
	require.Nil(t, pat.Roles, string(raw))
}

// oidcSession signs userName in through the demo IdP's OIDC code flow and
// returns a client holding the session.
func oidcSession(t *testing.T, w *ssotest.World, userName, password string) *client {
	t.Helper()
	p, err := w.Store.GetOIDCProviderByIssuer(context.Background(), w.Demo.OIDCIssuer())
	require.NoError(t, err)
	hc := noRedirect(nil)
	res, body := get(t, hc, w.URL+"/oidc/login?provider="+url.QueryEscape(p.ID))
	require.Equal(t, http.StatusFound, res.StatusCode, body)
	oidcState := res.Cookies()
	res, body = get(t, hc, res.Header.Get("Location"))
	require.Equal(t, http.StatusOK, res.StatusCode, body)
	action, form := formOf(t, body)
	form.Set("username", userName)
	form.Set("password", password)
	res, body = postForm(t, hc, action, form)
	require.Equal(t, http.StatusFound, res.StatusCode, body)
	req, err := http.NewRequest("GET", res.Header.Get("Location"), nil)
	require.NoError(t, err)
	for _, c := range oidcState {
		req.AddCookie(c)
	}
	res, err = hc.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	for _, c := range res.Cookies() {
		if c.Name == identity.SessionCookie {
			return &client{t: t, base: w.URL, token: c.Value}
		}
	}
	t.Fatal("no session cookie after the OIDC sign-in")
	return nil
}

// TestOIDCSessionKeepsRolesClaim proves issue 11 finding 9 for OIDC: a
// sign-in whose ID token grants only the analyst role gives a session, and
// PATs minted with it, only that role, although the trust policies would
// admit the user's groups to hr-reader too.
func TestOIDCSessionKeepsRolesClaim(t *testing.T) {
	w := demoWorld(t)
	sess := oidcSession(t, w, "alice", "alice-pw-123456")
	require.Equal(t, []string{"analyst"}, roleNames(t, sess), "the session is restricted to the roles claim")
	res, raw := sess.do("POST", "/api/v1/me/credentials", map[string]any{"role": "hr-reader"}, nil)
	require.Equal(t, http.StatusForbidden, res.StatusCode, string(raw))

	var pat struct{ Token string }
	res, raw = sess.do("POST", "/api/v1/tokens", map[string]any{"name": "laptop"}, &pat)
	require.Equal(t, http.StatusCreated, res.StatusCode, string(raw))
	require.Equal(t, []string{"analyst"}, roleNames(t, &client{t: t, base: w.URL, token: pat.Token}))
}

// TestPATDiesWithTheCredentialThatMintedIt proves issue 11 finding 9: a
// token minted with a session or token cannot outlive it, so revoking the
// session (for example after it was stolen and used to mint a token)
// revokes every token minted with it, transitively.
func TestPATDiesWithTheCredentialThatMintedIt(t *testing.T) {
	w := demoWorld(t)
	whoami := func(c *client) (int, string) {
		var who struct{ TokenID string }
		res, raw := c.do("GET", "/api/v1/whoami", nil, &who)
		require.Contains(t, []int{http.StatusOK, http.StatusUnauthorized}, res.StatusCode, string(raw))
		return res.StatusCode, who.TokenID
	}
	mint := func(c *client) *client {
		var pat struct{ Token string }
		res, raw := c.do("POST", "/api/v1/tokens", map[string]any{"name": "derived"}, &pat)
		require.Equal(t, http.StatusCreated, res.StatusCode, string(raw))
		return &client{t: t, base: w.URL, token: pat.Token}
	}
	revoke := func(by *client, id string) {
		res, raw := by.do("DELETE", "/api/v1/tokens/"+id, nil, nil)
		require.Equal(t, http.StatusOK, res.StatusCode, string(raw))
	}

	sess := samlSession(t, w, "alice", nil)
	child := mint(sess)
	grandchild := mint(child)
	other := login(t, w, "alice", "alice-pw-123456")
	unrelated := mint(other)
	_, sid := whoami(sess)
	_, childID := whoami(child)

	// Revoking the child kills the grandchild, not the session.
	revoke(other, childID)
	code, _ := whoami(grandchild)
	require.Equal(t, http.StatusUnauthorized, code, "a token minted with a revoked token")
	code, _ = whoami(sess)
	require.Equal(t, http.StatusOK, code, "revocation does not climb up")

	// Revoking the session kills what it minted.
	sibling := mint(sess)
	revoke(other, sid)
	code, _ = whoami(sibling)
	require.Equal(t, http.StatusUnauthorized, code, "a token minted with a revoked session")
	code, _ = whoami(unrelated)
	require.Equal(t, http.StatusOK, code, "tokens of other sessions are untouched")
}
