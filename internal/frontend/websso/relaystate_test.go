package websso_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-dev/gatehouse/internal/frontend/websso"
	"github.com/gatehouse-dev/gatehouse/internal/frontend/websso/ssotest"
)

// TestSAMLCLIRelayStateFitsEightyBytes proves the RelayState gap left by
// issue 11 (finding 5): a `gatehouse login` through a SAML IdP sends the
// IdP a RelayState of at most 80 bytes (SAML bindings §3.4.3 for
// HTTP-Redirect, §3.5.3 for HTTP-POST), so IdPs that enforce the limit do
// not drop or refuse it, and the hand-off to the CLI still works. A
// RelayState altered on the way (another CLI's state) does not match the
// request it came with: the response is refused and nothing is handed
// over.
func TestSAMLCLIRelayStateFitsEightyBytes(t *testing.T) {
	w := ssotest.New(t, ssotest.Options{Demo: true})
	w.AddUser("alice", "alice-pw-123456", "analysts")
	require.NoError(t, w.Demo.Seed(context.Background()))
	verifier := "verifier-0123456789-0123456789-0123456789-abcdef"
	sum := sha256.Sum256([]byte(verifier))
	challenge := base64.RawURLEncoding.EncodeToString(sum[:])
	state := base64.RawURLEncoding.EncodeToString([]byte("24 random bytes from CLI")) // as `gatehouse login` makes it

	// start runs the sign-in up to the demo IdP's Response form and returns
	// the RelayState sent to the IdP, the ACS and the form posted to it.
	start := func(t *testing.T, hc *http.Client) (string, string, url.Values) {
		t.Helper()
		q := url.Values{"cli_port": {"45678"}, "state": {state}, "code_challenge": {challenge}, "idp": {"saml"}}
		res, body := get(t, hc, w.URL+"/login?"+q.Encode())
		require.Equal(t, http.StatusFound, res.StatusCode, body)
		res, body = get(t, hc, res.Header.Get("Location"))
		require.Equal(t, http.StatusFound, res.StatusCode, body)
		loc, err := url.Parse(res.Header.Get("Location"))
		require.NoError(t, err)
		relay := loc.Query().Get("RelayState")
		require.NotEmpty(t, relay)
		_, body = get(t, hc, loc.String())
		action, form := formOf(t, body)
		form.Set("username", "alice")
		form.Set("password", "alice-pw-123456")
		_, body = postForm(t, hc, action, form)
		acs, post := formOf(t, body)
		require.Equal(t, relay, post.Get("RelayState"), "the IdP returns the RelayState as sent")
		return relay, acs, post
	}

	hc := noRedirect(nil)
	relay, acs, post := start(t, hc)
	require.LessOrEqual(t, len(relay), 80, "RelayState %q", relay)
	res, body := postForm(t, hc, acs, post)
	require.Equal(t, http.StatusFound, res.StatusCode, body)
	cb, err := url.Parse(res.Header.Get("Location"))
	require.NoError(t, err)
	require.Equal(t, "127.0.0.1:45678", cb.Host)
	require.Equal(t, state, cb.Query().Get("state"))
	c := &client{t: t, base: w.URL}
	var out struct{ Token, UserName string }
	res, raw := c.do("POST", "/sso/cli/token", map[string]string{"code": cb.Query().Get("code"), "code_verifier": verifier}, &out)
	require.Equal(t, http.StatusOK, res.StatusCode, string(raw))
	require.Equal(t, "alice", out.UserName)

	_, acs, post = start(t, hc)
	altered := url.Values{"SAMLResponse": post["SAMLResponse"], "RelayState": {strings.Repeat("x", 32)}}
	res, body = postForm(t, hc, acs, altered)
	require.Equal(t, http.StatusBadRequest, res.StatusCode, "an altered RelayState hands nothing to a CLI: %s", res.Header.Get("Location"))
	require.Equal(t, websso.PassInvalidIdentityToken, res.Header.Get(websso.PassthroughHeader), body)
}
