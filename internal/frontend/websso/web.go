package websso

import (
	"bytes"
	"compress/flate"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/identity"
	"github.com/gatehouse-dev/gatehouse/internal/identity/oidc"
	"github.com/gatehouse-dev/gatehouse/internal/identity/saml"
	"github.com/gatehouse-dev/gatehouse/internal/requestid"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

var (
	stateRE     = regexp.MustCompile(`^[A-Za-z0-9_-]{16,128}$`)
	challengeRE = regexp.MustCompile(`^[A-Za-z0-9_-]{43}$`)
	// relayRE admits a sealed CLI relay (see onetime.go).
	relayRE = regexp.MustCompile(`^[A-Za-z0-9_-]{16,1000}$`)
)

func loginMeta(r *http.Request) identity.LoginMeta {
	return identity.LoginMeta{SourceIP: remoteIP(r), UserAgent: clip(r.UserAgent(), 256), RequestID: requestid.From(r.Context())}
}

type idpLink struct {
	Name, URL string
	Demo      bool
}

// GET /login[?cli_port=P&state=S&code_challenge=C][&idp=saml|oidc|password]
func (s *Service) loginPage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := r.URL.Query()
	relay := q.Get("relay")
	if port := q.Get("cli_port"); port != "" {
		p, err := strconv.Atoi(port)
		state, ch := q.Get("state"), q.Get("code_challenge")
		if err != nil || p < 1024 || p > 65535 || !stateRE.MatchString(state) || !challengeRE.MatchString(ch) {
			s.renderError(w, r, &flowError{Passthrough: PassValidationError, Code: "ValidationError",
				Cause: "The CLI sign-in parameters (cli_port, state, code_challenge) are malformed.",
				Fix:   "start the sign-in again with 'gatehouse login'."})
			return
		}
		// Sealed, not stored: an anonymous GET writes nothing.
		if relay, err = s.newRelay(pendingCLI{Port: p, State: state, Challenge: ch, ExpiresAt: s.now().Add(pendingTTL)}); err != nil {
			s.log.ErrorContext(ctx, "register CLI login", "err", err)
			s.renderError(w, r, &flowError{Status: http.StatusServiceUnavailable, Code: "Unavailable",
				Cause: "The sign-in could not be started.", Fix: "retry in a moment."})
			return
		}
	} else if relay != "" && !relayRE.MatchString(relay) {
		relay = ""
	}
	samlPs, err := s.o.Store.ListSAMLProviders(ctx)
	if err != nil {
		s.log.ErrorContext(ctx, "list SAML providers", "err", err)
	}
	oidcPs, err := s.o.Store.ListOIDCProviders(ctx)
	if err != nil {
		s.log.ErrorContext(ctx, "list OIDC providers", "err", err)
	}
	var sl, ol []idpLink
	for _, p := range samlPs {
		v := url.Values{"provider": {p.Name}}
		if relay != "" {
			v.Set("relay", relay)
		}
		sl = append(sl, idpLink{Name: p.Name, URL: s.o.PublicURL + "/saml/login?" + v.Encode(), Demo: isDemo(p.EntityID, s)})
	}
	for _, p := range oidcPs {
		if isSelfIssuer(s, p.IssuerURL) {
			continue
		}
		v := url.Values{"provider": {p.ID}}
		if relay != "" {
			v.Set("relay", relay)
		}
		ol = append(ol, idpLink{Name: p.IssuerURL, URL: s.o.PublicURL + "/oidc/login?" + v.Encode(), Demo: isDemo(p.IssuerURL, s)})
	}
	// A CLI that asked for one kind of IdP skips the page when there is
	// exactly one of that kind.
	switch q.Get("idp") {
	case "saml":
		if len(sl) == 1 {
			http.Redirect(w, r, sl[0].URL, http.StatusFound)
			return
		}
	case "oidc":
		if len(ol) == 1 {
			http.Redirect(w, r, ol[0].URL, http.StatusFound)
			return
		}
	}
	render(w, http.StatusOK, "login", map[string]any{"CLI": relay != "", "Relay": relay, "SAML": sl, "OIDC": ol,
		"Action": s.o.PublicURL + "/login", "Error": q.Get("error")})
}

func isDemo(id string, s *Service) bool {
	return s.o.DemoIdPPath != "" && strings.HasPrefix(id, s.o.PublicURL+s.o.DemoIdPPath)
}

// POST /login (the password form)
func (s *Service) loginPassword(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		s.renderError(w, r, &flowError{Passthrough: PassValidationError, Code: "ValidationError",
			Cause: "The sign-in form could not be read.", Fix: "submit the form on the sign-in page."})
		return
	}
	if !s.sameOrigin(r) && r.Header.Get("Origin") != "" {
		s.renderError(w, r, &flowError{Status: http.StatusForbidden, Passthrough: PassAccessDenied, Code: "AccessDenied",
			Cause: "The sign-in form was posted from another site.", Fix: "sign in on the gatehouse sign-in page."})
		return
	}
	raw, tok, err := s.o.Identity.Login(r.Context(), r.PostForm.Get("username"), r.PostForm.Get("password"), loginMeta(r))
	if err != nil {
		var te *identity.ThrottledError
		if errors.As(err, &te) {
			w.Header().Set("Retry-After", strconv.Itoa(te.RetryAfterSeconds()))
			s.renderError(w, r, &flowError{Status: http.StatusTooManyRequests, Passthrough: PassAccessDenied, Code: "TooManyRequests",
				Cause: "Too many sign-in attempts for this user name or from this address.",
				Fix:   fmt.Sprintf("wait %d seconds, then sign in again.", te.RetryAfterSeconds())})
			return
		}
		if errors.Is(err, identity.ErrBusy) {
			w.Header().Set("Retry-After", "1")
		}
		if errors.Is(err, identity.ErrUnavailable) {
			s.renderError(w, r, &flowError{Status: http.StatusServiceUnavailable, Code: "Unavailable",
				Cause: "Sign-in is temporarily unavailable.", Fix: "retry in a moment."})
			return
		}
		w.Header().Set(PassthroughHeader, PassAccessDenied)
		v := url.Values{"error": {"Invalid user name or password."}}
		if relay := r.PostForm.Get("relay"); relayRE.MatchString(relay) {
			v.Set("relay", relay)
		}
		render(w, http.StatusUnauthorized, "login", map[string]any{"CLI": v.Get("relay") != "", "Relay": v.Get("relay"),
			"Action": s.o.PublicURL + "/login", "Error": "Invalid user name or password."})
		return
	}
	u, err := s.o.Store.GetUser(r.Context(), tok.PrincipalID)
	if err != nil {
		s.renderError(w, r, &flowError{Status: http.StatusServiceUnavailable, Code: "Unavailable",
			Cause: "Sign-in is temporarily unavailable.", Fix: "retry in a moment."})
		return
	}
	s.finish(w, r, r.PostForm.Get("relay"), raw, tok, u)
}

// finish hands a fresh session to the CLI that started the login (relay),
// or sets the session cookie and shows the role picker.
func (s *Service) finish(w http.ResponseWriter, r *http.Request, relay, raw string, tok *store.Token, u *store.User) {
	ctx := r.Context()
	if relay != "" && relayRE.MatchString(relay) {
		p, ok, err := s.takeRelay(ctx, relay)
		if err != nil {
			s.log.ErrorContext(ctx, "CLI hand-off", "err", err)
		}
		if ok {
			s.handoff(w, r, p, raw, tok, u)
			return
		}
		s.log.InfoContext(ctx, "CLI hand-off: unknown, expired or used relay state")
	}
	http.SetCookie(w, &http.Cookie{Name: identity.SessionCookie, Value: raw, Path: "/", Expires: tok.ExpiresAt,
		HttpOnly: true, Secure: strings.HasPrefix(s.o.PublicURL, "https://"), SameSite: http.SameSiteLaxMode})
	p, err := s.o.Identity.PrincipalOf(ctx, u)
	var roles []Entitlement
	idp := ""
	if err == nil {
		p.TokenID, p.AuthMethod = tok.ID, "session"
		var si *sessionInfo
		if si, err = s.sessionOf(ctx, p); err == nil {
			idp = si.idp
			roles, err = s.roles(ctx, si, r)
		}
	}
	if err != nil {
		s.log.ErrorContext(ctx, "role picker page", "err", err)
	}
	render(w, http.StatusOK, "roles", map[string]any{"User": u.UserName, "IdP": idp, "Roles": roles,
		"Expires": tok.ExpiresAt.Format(time.RFC3339)})
}

// handoff hands a fresh session to the CLI login p, which has been
// claimed: a one-time code the CLI redeems with its PKCE verifier, through
// a loopback redirect (RFC 8252 §7.3).
func (s *Service) handoff(w http.ResponseWriter, r *http.Request, p *pendingCLI, raw string, tok *store.Token, u *store.User) {
	code, err := s.newHandoff(r.Context(), p, raw, tok, u.UserName)
	if err != nil {
		s.log.ErrorContext(r.Context(), "CLI hand-off", "err", err)
		s.renderError(w, r, &flowError{Status: http.StatusServiceUnavailable, Code: "Unavailable",
			Cause: "The session could not be handed to the CLI.", Fix: "run 'gatehouse login' again."})
		return
	}
	cb := fmt.Sprintf("http://127.0.0.1:%d/callback?%s", p.Port, url.Values{"code": {code}, "state": {p.State}}.Encode())
	http.Redirect(w, r, cb, http.StatusFound)
}

// POST /sso/cli/token {"code", "code_verifier"}
func (s *Service) cliToken(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Code     string `json:"code"`
		Verifier string `json:"code_verifier"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 8<<10)).Decode(&in); err != nil || in.Code == "" || in.Verifier == "" {
		writeAPIError(w, r, http.StatusBadRequest, "invalid_request", "send {\"code\", \"code_verifier\"}")
		return
	}
	h, raw, err := s.redeemHandoff(r.Context(), in.Code, in.Verifier)
	if err != nil {
		if errors.Is(err, errBadCode) {
			writeAPIError(w, r, http.StatusBadRequest, "invalid_grant", "the code is unknown, used or expired, or the code_verifier does not match")
			return
		}
		s.log.ErrorContext(r.Context(), "CLI hand-off", "err", err)
		writeAPIError(w, r, http.StatusServiceUnavailable, "unavailable", "the service is temporarily unavailable")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"token": raw, "expiresAt": h.SessionAt, "userName": h.UserName})
}

// ---- SAML ----

// GET /saml/metadata: the SP metadata to register at the IdP.
func (s *Service) samlMetadata(w http.ResponseWriter, r *http.Request) {
	md, err := s.sp.Metadata()
	if err != nil {
		writeAPIError(w, r, http.StatusInternalServerError, "internal", "SP metadata unavailable")
		return
	}
	w.Header().Set("Content-Type", "application/samlmetadata+xml")
	_, _ = w.Write(md)
}

// GET /saml/login?provider=NAME[&relay=R]: SP-initiated login
// (saml-profiles-2.0-os §4.1.4.1) with an AuthnRequest over the
// HTTP-Redirect binding (saml-bindings-2.0-os §3.4.4), or HTTP-POST when
// the IdP offers only that.
func (s *Service) samlLogin(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := r.URL.Query()
	p, err := s.o.Store.GetSAMLProviderByName(ctx, q.Get("provider"))
	if err != nil {
		s.renderError(w, r, &flowError{Status: http.StatusNotFound, Passthrough: PassValidationError, Code: "ValidationError",
			Cause: fmt.Sprintf("No SAML provider named %q is registered.", clip(q.Get("provider"), 80)),
			Fix:   "pick an identity provider on the sign-in page."})
		return
	}
	idp, err := saml.ParseIdPMetadata([]byte(p.MetadataXML))
	if err != nil {
		s.renderError(w, r, &flowError{Status: http.StatusInternalServerError, Passthrough: PassValidationError, Code: "ValidationError",
			Cause: "The IdP's registered metadata is not usable: " + err.Error(), Fix: "an administrator must upload the IdP's metadata again."})
		return
	}
	// The request's state is sealed into its ID, not stored: an anonymous
	// GET writes nothing. A CLI login is split between the ID and an
	// 80-byte RelayState (see newCLIAuthnRequest).
	var id, relay string
	if cli, ok := s.openRelay(q.Get("relay")); ok && relayRE.MatchString(q.Get("relay")) {
		id, relay, err = s.newCLIAuthnRequest(cli)
		if errors.Is(err, errStateTooLong) {
			s.renderError(w, r, &flowError{Passthrough: PassValidationError, Code: "ValidationError",
				Cause: fmt.Sprintf("The CLI's state parameter is longer than the %d bytes a SAML RelayState may carry.", maxRelayState),
				Fix:   "sign in with 'gatehouse login', which sends a shorter state, or pick another identity provider."})
			return
		}
	} else {
		id, err = s.newAuthnRequestID()
	}
	if err != nil {
		s.log.ErrorContext(ctx, "seal AuthnRequest", "err", err)
		s.renderError(w, r, &flowError{Status: http.StatusServiceUnavailable, Code: "Unavailable", Cause: "The sign-in could not be started.", Fix: "retry."})
		return
	}
	dest := idp.SSOURL(saml.BindingHTTPRedirect)
	binding := saml.BindingHTTPRedirect
	if dest == "" {
		dest, binding = idp.SSOURL(saml.BindingHTTPPost), saml.BindingHTTPPost
	}
	if dest == "" {
		s.renderError(w, r, &flowError{Status: http.StatusBadRequest, Passthrough: PassValidationError, Code: "ValidationError",
			Cause: "The IdP's metadata lists no SingleSignOnService endpoint.", Fix: "start the sign-in at the IdP (IdP-initiated), or upload metadata with an SSO endpoint."})
		return
	}
	req := fmt.Sprintf(`<samlp:AuthnRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="%s" Version="2.0" IssueInstant="%s" Destination="%s" AssertionConsumerServiceURL="%s" ProtocolBinding="%s"><saml:Issuer>%s</saml:Issuer></samlp:AuthnRequest>`,
		id, s.now().Format("2006-01-02T15:04:05Z"), html.EscapeString(dest), html.EscapeString(s.o.ACSURL), saml.BindingHTTPPost, html.EscapeString(s.sp.EntityID))
	if binding == saml.BindingHTTPPost {
		f := map[string]string{"SAMLRequest": base64.StdEncoding.EncodeToString([]byte(req))}
		if relay != "" {
			f["RelayState"] = relay
		}
		AutoPost(w, dest, f, false)
		return
	}
	var buf bytes.Buffer
	fw := deflaters.Get().(*flate.Writer)
	fw.Reset(&buf)
	_, _ = fw.Write([]byte(req))
	_ = fw.Close()
	deflaters.Put(fw)
	v := url.Values{"SAMLRequest": {base64.StdEncoding.EncodeToString(buf.Bytes())}}
	if relay != "" {
		v.Set("RelayState", relay)
	}
	sep := "?"
	if strings.Contains(dest, "?") {
		sep = "&"
	}
	http.Redirect(w, r, dest+sep+v.Encode(), http.StatusFound)
}

// deflaters reuses DEFLATE writers (about 1 MB each) across anonymous
// SP-initiated sign-in starts, which must stay cheap.
var deflaters = sync.Pool{New: func() any {
	fw, _ := flate.NewWriter(nil, flate.DefaultCompression)
	return fw
}}

// POST /saml/acs: the assertion consumer service (HTTP-POST binding).
func (s *Service) samlACS(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := r.ParseForm(); err != nil {
		s.renderError(w, r, &flowError{Passthrough: PassValidationError, Code: "ValidationError",
			Cause: "The SAML response form could not be read (too large or malformed).", Fix: "post the IdP's SAMLResponse form as sent."})
		return
	}
	meta := loginMeta(r)
	a, err := s.sp.Validate(r.PostForm.Get("SAMLResponse"))
	if err != nil {
		var se *saml.Error
		if !errors.As(err, &se) {
			s.log.ErrorContext(ctx, "SAML validation failed internally", "err", err)
			s.auditFailure(ctx, meta, "saml", "", "internal error")
			s.renderError(w, r, &flowError{Status: http.StatusServiceUnavailable, Passthrough: PassAccessDenied, Code: "InternalFailure",
				Cause: "The SAML response could not be checked right now.", Fix: "retry; if it persists, give the request id to your administrator."})
			return
		}
		s.log.InfoContext(ctx, "SAML response rejected", "code", se.Code, "reason", se.Reason, "cause", se.Cause, "err", se.Err)
		s.auditAnonymousFailure(ctx, meta, "saml", se.Code, se.Code+": "+se.Reason)
		s.renderError(w, r, samlFlowError(se))
		return
	}
	// SP-initiated: the response must answer a request we sent, once, on
	// any replica. A CLI login's request is bound to its RelayState.
	var cli *pendingCLI
	var ok bool
	if strings.HasPrefix(a.InResponseTo, cliAuthnPrefix) {
		cli, ok, err = s.answerCLIAuthnRequest(ctx, a.InResponseTo, r.PostForm.Get("RelayState"))
	} else {
		ok, err = s.answerAuthnRequest(ctx, a.InResponseTo)
	}
	if err != nil {
		s.log.ErrorContext(ctx, "claim AuthnRequest", "err", err)
		s.auditFailure(ctx, meta, "saml", a.NameID, "InternalFailure: pending-requests")
		s.renderError(w, r, &flowError{Status: http.StatusServiceUnavailable, Code: "InternalFailure",
			Cause: "The sign-in request could not be checked right now.", Fix: "retry the sign-in."})
		return
	}
	if a.InResponseTo != "" && !ok {
		s.auditFailure(ctx, meta, "saml", a.NameID, "InvalidIdentityToken: unsolicited-in-response-to")
		s.renderError(w, r, &flowError{Status: http.StatusBadRequest, Passthrough: PassInvalidIdentityToken, Code: "InvalidIdentityToken",
			Cause: "The SAML response answers a sign-in request this server did not send, or one that was already used or expired (InResponseTo).",
			Fix:   "start the sign-in again from the gatehouse sign-in page, and finish it within 10 minutes."})
		return
	}
	prov, err := s.o.Store.GetSAMLProviderByEntityID(ctx, a.Issuer)
	if err != nil {
		s.log.ErrorContext(ctx, "SAML provider vanished", "err", err)
		s.renderError(w, r, &flowError{Status: http.StatusServiceUnavailable, Code: "InternalFailure", Cause: "The IdP registration could not be read.", Fix: "retry."})
		return
	}
	provARN := prov.ARN(s.o.AccountID)
	grants := samlGrants(a.AWS.Roles, provARN)
	if len(a.AWS.Roles) > 0 && len(grants) == 0 {
		s.auditFailure(ctx, meta, "saml", a.NameID, "role-provider-mismatch")
		s.renderError(w, r, &flowError{Status: http.StatusForbidden, Passthrough: PassAccessDenied, Code: "AccessDenied",
			Cause: fmt.Sprintf("None of the assertion's Role values names this IdP's provider ARN %s (first value names %s).", provARN, a.AWS.Roles[0].ProviderARN),
			Fix:   fmt.Sprintf("make each %s value 'roleArn,%s' at the IdP (the account id and provider name must match gatehouse's).", saml.AttrRole, provARN)})
		return
	}
	u, via, fe := s.bindFederated(ctx, s.o.Binder.SAMLIdentity(prov, a.NameID), meta)
	if fe != nil {
		s.renderError(w, r, fe)
		return
	}
	raw, tok, err := s.federatedLogin(ctx, u, "saml", sessionRecord{IdP: provARN}, grants, meta, map[string]any{"provider": provARN, "nameId": clip(a.NameID, 256), "binding": via})
	if err != nil {
		s.log.ErrorContext(ctx, "SAML login failed", "err", err)
		s.renderError(w, r, &flowError{Status: http.StatusServiceUnavailable, Code: "InternalFailure", Cause: "The session could not be created.", Fix: "retry."})
		return
	}
	if cli != nil {
		s.handoff(w, r, cli, raw, tok, u)
		return
	}
	s.finish(w, r, r.PostForm.Get("RelayState"), raw, tok, u)
}

// oidcGrants returns the roles an ID token's roles claim grants (see
// oidc.Identity.Roles): nil when the claim is absent, else exactly the
// listed role ARNs, so an empty claim grants no role.
func oidcGrants(roles []string, provARN string) []store.RoleGrant {
	if roles == nil {
		return nil
	}
	out := make([]store.RoleGrant, len(roles))
	for i, r := range roles {
		out[i] = store.RoleGrant{RoleARN: r, ProviderARN: provARN}
	}
	return out
}

// samlGrants returns the roles an assertion's Role attribute grants
// through provider provARN (the pairs naming another provider are
// dropped). It is nil when the attribute is absent, so the session is not
// restricted, and non-nil but empty when the attribute is present without
// a value for provARN: an IdP that sends the attribute empty grants no
// role, it does not lift the restriction.
func samlGrants(pairs []saml.RolePair, provARN string) []store.RoleGrant {
	if pairs == nil {
		return nil
	}
	out := []store.RoleGrant{}
	for _, p := range pairs {
		if p.ProviderARN == provARN {
			out = append(out, store.RoleGrant{RoleARN: p.RoleARN, ProviderARN: p.ProviderARN})
		}
	}
	return out
}

func samlFlowError(se *saml.Error) *flowError {
	fe := &flowError{Code: se.Code, Cause: se.Cause, Fix: se.Fix}
	switch se.Code {
	case saml.CodeValidationError:
		fe.Passthrough = PassValidationError
	case saml.CodeMalformedRoleAttribute:
		fe.Passthrough = PassMalformedRoleAttribute
	case saml.CodeAccessDenied:
		fe.Passthrough, fe.Status = PassAccessDenied, http.StatusForbidden
	default:
		fe.Passthrough = PassInvalidIdentityToken
	}
	return fe
}

// bindFederated finds the directory user a federated identity is bound to
// (identity.Binder: by provider and subject, never by name alone). A web
// session is a directory user's session, so an identity that binds to no
// user is refused here even where the provider lets it use STS as a
// federated session of its own. Every refusal is audited with its reason.
func (s *Service) bindFederated(ctx context.Context, id identity.FederatedIdentity, meta identity.LoginMeta) (*store.User, string, *flowError) {
	b, err := s.o.Binder.Resolve(ctx, id, meta)
	var be *identity.BindError
	switch {
	case errors.As(err, &be):
		s.auditFailure(ctx, meta, id.Method, id.UserName, "AccessDenied: binding-"+be.Reason)
		return nil, "", &flowError{Status: http.StatusForbidden, Passthrough: PassAccessDenied, Code: "AccessDenied",
			Cause: be.Cause, Fix: be.Fix}
	case err != nil:
		s.log.ErrorContext(ctx, "federated binding", "err", err)
		s.auditFailure(ctx, meta, id.Method, id.UserName, "InternalFailure: binding")
		return nil, "", &flowError{Status: http.StatusServiceUnavailable, Code: "InternalFailure", Cause: "The directory could not be read.", Fix: "retry."}
	case b.User == nil:
		s.auditFailure(ctx, meta, id.Method, id.UserName, "AccessDenied: binding-unlinked-web")
		return nil, "", &flowError{Status: http.StatusForbidden, Passthrough: PassAccessDenied, Code: "AccessDenied",
			Cause: "Your identity at this identity provider is not linked to a gatehouse user. The web sign-in needs a link: a web session is a directory user's session. " +
				"This provider's rule 'unlinked: federated' admits unlinked identities to the STS API only (AssumeRoleWithSAML, AssumeRoleWithWebIdentity), as federated sessions of their own.",
			Fix: "ask a gatehouse administrator to link it ('gatehouse admin links create'), or to provision you through SCIM; until then, use the STS API with your IdP's assertion or token."}
	}
	return b.User, b.Via, nil
}

// auditFailure records a failed sign-in on its own.
func (s *Service) auditFailure(ctx context.Context, meta identity.LoginMeta, method, user, reason string) {
	_ = s.emit(ctx, s.failureEvent(ctx, meta, method, user, reason))
}

// auditAnonymousFailure records a sign-in refused before any identity was
// established through the denial aggregator, keyed by the source and code
// (a stable code, never a value the caller chose), so that a flood of
// forged responses and callbacks costs the audit log a bounded amount.
func (s *Service) auditAnonymousFailure(ctx context.Context, meta identity.LoginMeta, method, code, reason string) {
	ev := s.failureEvent(ctx, meta, method, "", reason).Event()
	if err := s.o.Denials.Deny(ctx, ev, audit.SourceKey(meta.SourceIP), method+"/"+code); err != nil {
		s.log.ErrorContext(ctx, "audit emit failed", "code", string(ev.Code), "err", err)
	}
}

// failureEvent builds the record of a failed sign-in.
func (s *Service) failureEvent(ctx context.Context, meta identity.LoginMeta, method, user, reason string) *audit.Builder {
	return meta.AuditEvent(ctx, s.now, audit.CodeLoginFailed, "identity.login."+method).Deny(reason).
		Actor(audit.Actor{User: clip(user, 256), AuthMethod: method}).
		Resource(audit.Resource{Type: "user", Name: clip(user, 256)})
}

// ---- OIDC (authorization code flow with PKCE, RFC 6749 §4.1, RFC 7636) ----

type oidcState struct {
	ProviderID string    `json:"providerId"`
	Verifier   string    `json:"verifier"`
	Nonce      string    `json:"nonce"`
	Relay      string    `json:"relay,omitempty"`
	ExpiresAt  time.Time `json:"expiresAt"`
}

// relyingParty is what the sign-in needs of one OIDC provider
// registration: the OAuth endpoints from its discovery document and the ID
// token verifier (which holds the provider's key set).
type relyingParty struct {
	cfg *oauth2.Config
	v   *oidc.Verifier
}

// relyingParty returns p's relying party, built once per provider revision
// (oidc.ProviderCache, as STS caches its verifiers), so that sign-in starts
// do not fetch the discovery document each time.
func (s *Service) relyingParty(ctx context.Context, p *store.OIDCProvider) (*relyingParty, error) {
	return s.rps.Get(p.ID, p.Revision, func() (*relyingParty, error) {
		dctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		prov, err := gooidc.NewProvider(gooidc.ClientContext(dctx, s.o.HTTPClient), p.IssuerURL)
		if err != nil {
			return nil, err
		}
		v, err := oidc.NewVerifier(dctx, oidc.Provider{Issuer: p.IssuerURL, Audiences: p.Audiences, JWKSURL: p.JWKSURL,
			ClaimMappings: oidc.ClaimMappings{Groups: p.GroupsClaim, Roles: p.RolesClaim, Username: p.UsernameClaim}},
			oidc.Options{HTTPClient: s.o.HTTPClient, Clock: s.o.Clock, Logger: s.log})
		if err != nil {
			return nil, err
		}
		return &relyingParty{v: v, cfg: &oauth2.Config{ClientID: p.Audiences[0], Endpoint: prov.Endpoint(),
			RedirectURL: s.o.PublicURL + "/oidc/callback", Scopes: []string{gooidc.ScopeOpenID, "profile", "email"}}}, nil
	})
}

func (s *Service) oidcProvider(ctx context.Context, ref string) (*store.OIDCProvider, error) {
	p, err := s.o.Store.GetOIDCProvider(ctx, ref)
	if errors.Is(err, store.ErrNotFound) {
		p, err = s.o.Store.GetOIDCProviderByIssuer(ctx, ref)
	}
	if err == nil && (isSelfIssuer(s, p.IssuerURL) || len(p.Audiences) == 0) {
		err = store.ErrNotFound
	}
	return p, err
}

// openOIDCState opens the OAuth state of a callback. It reports false for
// a state that does not open or has expired. It writes nothing: the state
// is claimed by claimOIDCState once the IdP has authenticated someone.
func (s *Service) openOIDCState(state string) (*oidcState, bool) {
	var st oidcState
	if s.openState(purposeOIDC, state, &st) != nil || !s.now().Before(st.ExpiresAt) {
		return nil, false
	}
	return &st, true
}

// claimOIDCState claims state for its one use, on any replica. A state
// already used, or a store failure (fail closed), yields a flowError.
func (s *Service) claimOIDCState(ctx context.Context, state string, st *oidcState) *flowError {
	ok, err := s.claimOnce(ctx, purposeOIDC, state, st.ExpiresAt)
	if err != nil {
		s.log.ErrorContext(ctx, "claim OIDC state", "err", err)
		return &flowError{Status: http.StatusServiceUnavailable, Code: "InternalFailure",
			Cause: "The sign-in state could not be checked right now.", Fix: "start the sign-in again."}
	}
	if !ok {
		return &flowError{Passthrough: PassValidationError, Code: "ValidationError",
			Cause: "The sign-in state was already used.", Fix: "start the sign-in again."}
	}
	return nil
}

// GET /oidc/login?provider=ID-or-issuer[&relay=R]
func (s *Service) oidcLogin(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := r.URL.Query()
	p, err := s.oidcProvider(ctx, q.Get("provider"))
	if err != nil {
		s.renderError(w, r, &flowError{Status: http.StatusNotFound, Passthrough: PassValidationError, Code: "ValidationError",
			Cause: fmt.Sprintf("No OpenID Connect provider %q is registered.", clip(q.Get("provider"), 80)), Fix: "pick an identity provider on the sign-in page."})
		return
	}
	rp, err := s.relyingParty(ctx, p)
	if err != nil {
		s.log.WarnContext(ctx, "OIDC discovery failed", "issuer", p.IssuerURL, "err", err)
		s.renderError(w, r, &flowError{Status: http.StatusBadGateway, Passthrough: PassInvalidIdentityToken, Code: "IDPCommunicationError",
			Cause: "The identity provider's discovery document could not be fetched.", Fix: "check that the issuer URL is right and reachable from gatehouse."})
		return
	}
	nonce, err := randomID(s.o.Rand, 24)
	if err != nil {
		s.renderError(w, r, &flowError{Status: http.StatusServiceUnavailable, Code: "Unavailable", Cause: "The sign-in could not be started.", Fix: "retry."})
		return
	}
	st := oidcState{ProviderID: p.ID, Verifier: oauth2.GenerateVerifier(), Nonce: nonce, ExpiresAt: s.now().Add(oidcTTL)}
	if relay := q.Get("relay"); relayRE.MatchString(relay) {
		st.Relay = relay
	}
	// The OAuth state is the sealed oidcState, not a stored row: an
	// anonymous GET writes nothing. The callback claims it once.
	state, err := s.sealState(purposeOIDC, st)
	if err != nil {
		s.log.ErrorContext(ctx, "seal OIDC state", "err", err)
		s.renderError(w, r, &flowError{Status: http.StatusServiceUnavailable, Code: "Unavailable", Cause: "The sign-in could not be started.", Fix: "retry."})
		return
	}
	http.Redirect(w, r, rp.cfg.AuthCodeURL(state, oauth2.S256ChallengeOption(st.Verifier), oauth2.SetAuthURLParam("nonce", nonce)), http.StatusFound)
}

// GET /oidc/callback?code=..&state=..
func (s *Service) oidcCallback(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := r.URL.Query()
	meta := loginMeta(r)
	if e := q.Get("error"); e != "" {
		s.auditAnonymousFailure(ctx, meta, "oidc", "idp-error", "idp-error: "+clip(e, 64))
		s.renderError(w, r, &flowError{Status: http.StatusForbidden, Passthrough: PassAccessDenied, Code: "AccessDenied",
			Cause: fmt.Sprintf("The identity provider refused the sign-in: %s %s", clip(e, 64), clip(q.Get("error_description"), 200)),
			Fix:   "check the user's assignment to the gatehouse application at the IdP."})
		return
	}
	st, ok := s.openOIDCState(q.Get("state"))
	if !ok {
		s.auditAnonymousFailure(ctx, meta, "oidc", "state", "state")
		s.renderError(w, r, &flowError{Passthrough: PassValidationError, Code: "ValidationError",
			Cause: "The sign-in state is unknown, used or expired.", Fix: "start the sign-in again; finish it within 10 minutes."})
		return
	}
	p, err := s.o.Store.GetOIDCProvider(ctx, st.ProviderID)
	if err != nil {
		s.renderError(w, r, &flowError{Status: http.StatusServiceUnavailable, Code: "InternalFailure", Cause: "The IdP registration could not be read.", Fix: "retry."})
		return
	}
	rp, err := s.relyingParty(ctx, p)
	if err != nil {
		s.renderError(w, r, &flowError{Status: http.StatusBadGateway, Passthrough: PassInvalidIdentityToken, Code: "IDPCommunicationError",
			Cause: "The identity provider's discovery document could not be fetched.", Fix: "check that the issuer is reachable from gatehouse."})
		return
	}
	tok, err := rp.cfg.Exchange(context.WithValue(ctx, oauth2.HTTPClient, s.o.HTTPClient), q.Get("code"), oauth2.VerifierOption(st.Verifier))
	if err != nil {
		s.log.InfoContext(ctx, "OIDC code exchange failed", "issuer", p.IssuerURL, "err", err)
		s.auditAnonymousFailure(ctx, meta, "oidc", "code-exchange", "code-exchange")
		s.renderError(w, r, &flowError{Passthrough: PassInvalidIdentityToken, Code: "InvalidIdentityToken",
			Cause: "The identity provider did not accept the authorization code.", Fix: "start the sign-in again; check the client id (the provider's first audience) and that the IdP allows PKCE for public clients."})
		return
	}
	rawID, _ := tok.Extra("id_token").(string)
	id, err := rp.v.Verify(ctx, rawID)
	if err != nil {
		var oe *oidc.Error
		fe := &flowError{Passthrough: PassInvalidIdentityToken, Code: "InvalidIdentityToken", Cause: "The ID token was rejected.", Fix: "sign in again."}
		if errors.As(err, &oe) {
			fe.Code, fe.Cause, fe.Fix = oe.Code, "The ID token was rejected: "+oe.Cause.Error()+".", oe.Fix
		}
		s.auditAnonymousFailure(ctx, meta, "oidc", fe.Code, fe.Code)
		s.renderError(w, r, fe)
		return
	}
	if n, _ := id.Claims["nonce"].(string); n != st.Nonce {
		s.auditFailure(ctx, meta, "oidc", id.Username, "nonce")
		s.renderError(w, r, &flowError{Passthrough: PassInvalidIdentityToken, Code: "InvalidIdentityToken",
			Cause: "The ID token's nonce does not match this sign-in.", Fix: "start the sign-in again."})
		return
	}
	// One use per state, claimed only now that the IdP has authenticated
	// someone for it: anonymous callbacks write nothing.
	if fe := s.claimOIDCState(ctx, q.Get("state"), st); fe != nil {
		s.auditFailure(ctx, meta, "oidc", id.Username, "state")
		s.renderError(w, r, fe)
		return
	}
	u, via, fe := s.bindFederated(ctx, s.o.Binder.OIDCIdentity(p, id), meta)
	if fe != nil {
		s.renderError(w, r, fe)
		return
	}
	provARN := p.ARN(s.o.AccountID)
	raw, stok, err := s.federatedLogin(ctx, u, "oidc", sessionRecord{IdP: provARN}, oidcGrants(id.Roles, provARN), meta,
		map[string]any{"provider": provARN, "subject": clip(id.Subject, 256), "binding": via})
	if err != nil {
		s.log.ErrorContext(ctx, "OIDC login failed", "err", err)
		s.renderError(w, r, &flowError{Status: http.StatusServiceUnavailable, Code: "InternalFailure", Cause: "The session could not be created.", Fix: "retry."})
		return
	}
	s.finish(w, r, st.Relay, raw, stok, u)
}
