package demoidp

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// authCode is an issued authorization code (RFC 6749 §4.1.2), kept in
// memory: the demo runs as one process.
type authCode struct {
	userID, redirectURI, challenge, nonce string
	expires                               time.Time
}

func randomHex(rnd io.Reader, n int) (string, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(rnd, b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

func (d *IdP) redirectURI() string { return d.o.PublicURL + "/oidc/callback" }

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (d *IdP) oidcDiscovery(w http.ResponseWriter, r *http.Request) {
	iss := d.oidcIssuer()
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                iss,
		"authorization_endpoint":                iss + "/authorize",
		"token_endpoint":                        iss + "/token",
		"jwks_uri":                              iss + "/jwks",
		"response_types_supported":              []string{"code"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"code_challenge_methods_supported":      []string{"S256"},
		"token_endpoint_auth_methods_supported": []string{"none"},
		"scopes_supported":                      []string{"openid", "profile", "email"},
		"x-gatehouse-demo":                      Label,
	})
}

func (d *IdP) oidcJWKS(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
		{Key: &d.key.PublicKey, KeyID: d.kid, Algorithm: string(jose.RS256), Use: "sig"}}})
}

// checkAuthorizeParams validates an authorization request (RFC 6749
// §4.1.1, RFC 7636 §4.3): our client, our redirect URI, PKCE S256.
func (d *IdP) checkAuthorizeParams(v url.Values) string {
	switch {
	case v.Get("response_type") != "code":
		return "response_type must be code"
	case v.Get("client_id") != d.o.ClientID:
		return "unknown client_id"
	case v.Get("redirect_uri") != d.redirectURI():
		return "redirect_uri is not registered"
	case v.Get("code_challenge_method") != "S256" || len(v.Get("code_challenge")) != 43:
		return "PKCE with S256 is required"
	}
	return ""
}

var authorizeParams = []string{"response_type", "client_id", "redirect_uri", "state", "nonce", "code_challenge", "code_challenge_method", "scope"}

func (d *IdP) oidcAuthorizeForm(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if msg := d.checkAuthorizeParams(q); msg != "" {
		http.Error(w, "DEMO IdP — not for production: "+msg, http.StatusBadRequest)
		return
	}
	hidden := map[string]string{}
	for _, k := range authorizeParams {
		hidden[k] = q.Get(k)
	}
	render(w, http.StatusOK, "form", map[string]any{"Kind": "OpenID Connect", "Action": d.oidcIssuer() + "/authorize", "Hidden": hidden})
}

func (d *IdP) oidcAuthorize(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "DEMO IdP: bad form", http.StatusBadRequest)
		return
	}
	f := r.PostForm
	if msg := d.checkAuthorizeParams(f); msg != "" {
		http.Error(w, "DEMO IdP — not for production: "+msg, http.StatusBadRequest)
		return
	}
	u := d.checkPassword(r.Context(), f.Get("username"), f.Get("password"))
	if u == nil {
		hidden := map[string]string{}
		for _, k := range authorizeParams {
			hidden[k] = f.Get(k)
		}
		render(w, http.StatusUnauthorized, "form", map[string]any{"Kind": "OpenID Connect", "Action": d.oidcIssuer() + "/authorize",
			"Hidden": hidden, "Error": "Invalid user name or password."})
		return
	}
	code, err := randomHex(d.o.Rand, 24)
	if err != nil {
		http.Error(w, "DEMO IdP: internal error", http.StatusInternalServerError)
		return
	}
	d.mu.Lock()
	now := d.now()
	for k, c := range d.codes {
		if now.After(c.expires) {
			delete(d.codes, k)
		}
	}
	d.codes[code] = &authCode{userID: u.ID, redirectURI: f.Get("redirect_uri"), challenge: f.Get("code_challenge"),
		nonce: f.Get("nonce"), expires: now.Add(time.Minute)}
	d.mu.Unlock()
	d.log.Info("DEMO IdP — not for production: OIDC sign-in", "user", u.UserName)
	http.Redirect(w, r, f.Get("redirect_uri")+"?"+url.Values{"code": {code}, "state": {f.Get("state")}}.Encode(), http.StatusFound)
}

func tokenError(w http.ResponseWriter, code, desc string) {
	writeJSON(w, http.StatusBadRequest, map[string]string{"error": code, "error_description": desc})
}

// POST /oidc/token (RFC 6749 §4.1.3, RFC 7636 §4.5).
func (d *IdP) oidcToken(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil {
		tokenError(w, "invalid_request", "bad form")
		return
	}
	f := r.PostForm
	clientID := f.Get("client_id")
	if id, _, ok := r.BasicAuth(); ok {
		clientID = id
	}
	if f.Get("grant_type") != "authorization_code" || clientID != d.o.ClientID {
		tokenError(w, "invalid_client", "unknown client or grant type")
		return
	}
	d.mu.Lock()
	c := d.codes[f.Get("code")]
	delete(d.codes, f.Get("code"))
	d.mu.Unlock()
	if c == nil || d.now().After(c.expires) || c.redirectURI != f.Get("redirect_uri") {
		tokenError(w, "invalid_grant", "unknown or expired code")
		return
	}
	sum := sha256.Sum256([]byte(f.Get("code_verifier")))
	if subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(sum[:])), []byte(c.challenge)) != 1 {
		tokenError(w, "invalid_grant", "code_verifier does not match")
		return
	}
	u, err := d.o.Store.GetUser(r.Context(), c.userID)
	if err != nil || !u.Active {
		tokenError(w, "invalid_grant", "user unavailable")
		return
	}
	groups, err := d.groupsOf(r.Context(), u)
	if err != nil {
		tokenError(w, "server_error", "directory unavailable")
		return
	}
	now := d.now()
	claims := map[string]any{
		"iss": d.oidcIssuer(), "aud": d.o.ClientID, "sub": u.ID, "iat": now.Unix(), "nbf": now.Unix(),
		"exp": now.Add(10 * time.Minute).Unix(), "nonce": c.nonce, "preferred_username": u.UserName,
		"groups": groups,
	}
	// Like the SAML Role attribute, the roles claim is sent only when the
	// user has roles: a present but empty claim would grant no role.
	if names := u.Attributes[RolesAttribute]; len(names) > 0 {
		roles := make([]string, len(names))
		for i, n := range names {
			roles[i] = d.roleARN(n)
		}
		claims["roles"] = roles
	}
	if len(u.Emails) > 0 {
		claims["email"] = u.Emails[0].Value
	}
	payload, _ := json.Marshal(claims)
	jws, err := d.signer.Sign(payload)
	if err != nil {
		tokenError(w, "server_error", "signing failed")
		return
	}
	raw, _ := jws.CompactSerialize()
	access, _ := randomHex(d.o.Rand, 24)
	writeJSON(w, http.StatusOK, map[string]any{"access_token": access, "token_type": "Bearer", "expires_in": 600, "id_token": raw})
}
