package api

import (
	"errors"
	"net/http"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/clientip"
	"github.com/gatehouse-dev/gatehouse/internal/identity"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

func (a *API) login(c *call) error {
	var in struct {
		Username string `json:"username"`
		Password string `json:"password"`
	}
	if err := c.decode(&in); err != nil {
		return err
	}
	// Login audits every attempt itself.
	c.audited = true
	raw, tok, err := a.id.Login(c.ctx, in.Username, in.Password, identity.LoginMeta{
		SourceIP: c.sourceIP(), UserAgent: c.r.UserAgent(), RequestID: c.rid})
	if err != nil {
		var te *identity.ThrottledError
		if errors.As(err, &te) {
			return &apiError{status: http.StatusTooManyRequests, code: "too_many_requests", retryAfter: te.RetryAfterSeconds(),
				msg: "too many sign-in attempts; retry after the time in Retry-After"}
		}
		if errors.Is(err, identity.ErrBusy) {
			return &apiError{status: errUnavailable.status, code: errUnavailable.code, retryAfter: 1,
				msg: "too many sign-ins at once; retry in a moment", cause: err}
		}
		if errors.Is(err, identity.ErrUnavailable) {
			return &apiError{status: errUnavailable.status, code: errUnavailable.code, msg: errUnavailable.msg, cause: err}
		}
		if errors.Is(err, identity.ErrUnauthenticated) {
			return &apiError{status: http.StatusUnauthorized, code: "unauthenticated", msg: "invalid username or password"}
		}
		return err
	}
	http.SetCookie(c.w, &http.Cookie{Name: identity.SessionCookie, Value: raw, Path: "/",
		Expires: tok.ExpiresAt, HttpOnly: true, Secure: clientip.SecureTransport(c.r), SameSite: http.SameSiteStrictMode})
	return c.json(http.StatusOK, map[string]any{"token": raw, "expiresAt": tok.ExpiresAt})
}

func (a *API) whoami(c *call) error {
	u, err := a.st.GetUser(c.ctx, c.p.UserID)
	if err != nil {
		return err
	}
	groups := c.p.Groups
	if groups == nil {
		groups = []string{}
	}
	return c.json(http.StatusOK, map[string]any{
		"id": u.ID, "userName": u.UserName, "kind": u.Kind, "groups": groups, "admin": c.p.Admin,
		"authMethod": c.p.AuthMethod, "tokenId": c.p.TokenID,
	})
}

func tokenResource(t *store.Token) audit.Resource {
	return audit.Resource{Type: "token", ID: t.ID, Name: t.Name}
}

// targetPrincipal resolves ref (id or userName) for a token operation: the
// caller itself when ref is empty; another principal only for admins.
func (c *call) targetPrincipal(ref string) (*store.User, error) {
	if ref == "" || ref == c.p.UserID {
		return c.a.st.GetUser(c.ctx, c.p.UserID)
	}
	if !c.p.Admin {
		return nil, errForbidden("administrator privileges required for another principal's tokens")
	}
	return c.resolveUser(ref)
}

func (a *API) listTokens(c *call) error {
	u, err := c.targetPrincipal(c.r.URL.Query().Get("principal_id"))
	if err != nil {
		return err
	}
	ts, err := a.id.ListTokens(c.ctx, u.ID)
	if err != nil {
		return err
	}
	if ts == nil {
		ts = []*store.Token{}
	}
	return c.json(http.StatusOK, map[string]any{"tokens": ts})
}

type tokenCreated struct {
	*store.Token
	Secret string `json:"token"`
}

func (a *API) createToken(c *call) error {
	var in struct {
		Name        string `json:"name"`
		PrincipalID string `json:"principalId"`
		TTLSeconds  int64  `json:"ttlSeconds"`
	}
	if err := c.decode(&in); err != nil {
		return err
	}
	u, err := c.targetPrincipal(in.PrincipalID)
	if err != nil {
		return err
	}
	ttl := time.Duration(in.TTLSeconds) * time.Second
	raw, tok, err := a.id.CreateToken(c.ctx, c.p, u.ID, in.Name, ttl)
	if err != nil {
		return err
	}
	// The token id is only known once it exists, so this mutation is
	// audited after the write; if that fails the token is revoked before
	// its secret is ever shown (fail closed).
	details := map[string]any{"principalId": u.ID, "principal": u.UserName, "expiresAt": tok.ExpiresAt,
		"mintedWith": c.p.TokenID}
	if tok.Roles != nil {
		details["roles"] = store.RoleARNs(tok.Roles)
	}
	if err := c.allow(audit.CodeTokenCreated, tokenResource(tok), details); err != nil {
		if rerr := a.id.RevokeToken(c.ctx, tok.ID); rerr != nil {
			a.log.ErrorContext(c.ctx, "revoke unaudited token", "request_id", c.rid, "token_id", tok.ID, "error", rerr)
		}
		return err
	}
	c.w.Header().Set("Location", Prefix+"/tokens/"+tok.ID)
	return c.json(http.StatusCreated, tokenCreated{Token: tok, Secret: raw})
}

func (a *API) revokeToken(c *call) error {
	tok, err := a.st.GetToken(c.ctx, c.params["id"])
	if errors.Is(err, store.ErrNotFound) {
		return errNotFound("no such token")
	}
	if err != nil {
		return err
	}
	if tok.PrincipalID != c.p.UserID && !c.p.Admin {
		// Audited as a denial, answered like an unknown token so that token
		// ids of other principals cannot be probed.
		if err := c.emit(c.event(audit.CodeAdminDenied).Resource(tokenResource(tok)).Deny("not the token's owner")); err != nil {
			return err
		}
		c.audited = true
		return errNotFound("no such token")
	}
	res := tokenResource(tok)
	if err := c.allow(audit.CodeTokenRevoked, res, map[string]any{"principalId": tok.PrincipalID}); err != nil {
		return err
	}
	if err := a.id.RevokeToken(c.ctx, tok.ID); err != nil {
		c.mutationFailed(audit.CodeTokenRevoked, res, err)
		return err
	}
	if fresh, err := a.st.GetToken(c.ctx, tok.ID); err == nil {
		tok = fresh
	}
	return c.json(http.StatusOK, tok)
}
