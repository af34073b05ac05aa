package websso

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/awsname"
	"github.com/gatehouse-dev/gatehouse/internal/identity"
)

// auditUnauthenticated records a /api/v1/me request refused without valid
// credentials, as the REST API records its own, through the API denial
// aggregator (one record per source per window, the rest counted). An
// error means the refusal could not be recorded.
func (s *Service) auditUnauthenticated(r *http.Request) error {
	ev := audit.NewEvent(s.now, audit.CodeAuthDenied, "api.me").Request(r.Context()).
		Source(remoteIP(r), r.UserAgent()).
		Resource(audit.Resource{Type: "api", Name: r.Method + " " + clip(r.URL.Path, 256)}).
		Deny("authentication required: missing, invalid or expired credential").Event()
	if err := s.o.APIDenials.Deny(r.Context(), ev, audit.SourceKey(ev.Actor.SourceIP), "me/unauthenticated"); err != nil {
		s.log.ErrorContext(r.Context(), "audit emit failed", "code", string(ev.Code), "err", err)
		return fmt.Errorf("websso: audit: %w", err)
	}
	return nil
}

// authenticate resolves the caller of a /api/v1/me request. A
// cookie-authenticated POST must come from the same origin (CSRF).
func (s *Service) authenticate(w http.ResponseWriter, r *http.Request) (*sessionInfo, bool) {
	p, err := s.o.Identity.AuthenticateRequest(r)
	if err != nil {
		if errors.Is(err, identity.ErrUnavailable) {
			writeAPIError(w, r, http.StatusServiceUnavailable, "unavailable", "the service is temporarily unavailable")
			return nil, false
		}
		if err := s.auditUnauthenticated(r); err != nil {
			writeAPIError(w, r, http.StatusServiceUnavailable, "unavailable", "the service is temporarily unavailable")
			return nil, false
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="gatehouse"`)
		writeAPIError(w, r, http.StatusUnauthorized, "unauthenticated", "authentication required: missing, invalid or expired credential")
		return nil, false
	}
	if r.Method != http.MethodGet && identity.CredentialFromCookie(r) && !s.sameOrigin(r) {
		writeAPIError(w, r, http.StatusForbidden, "forbidden", "cross-origin request refused")
		return nil, false
	}
	si, err := s.sessionOf(r.Context(), p)
	if err != nil {
		s.log.ErrorContext(r.Context(), "session record unavailable", "err", err)
		writeAPIError(w, r, http.StatusServiceUnavailable, "unavailable", "the service is temporarily unavailable")
		return nil, false
	}
	return si, true
}

func (s *Service) sameOrigin(r *http.Request) bool {
	if v := r.Header.Get("Sec-Fetch-Site"); v != "" {
		return v == "same-origin" || v == "none"
	}
	o := r.Header.Get("Origin")
	return o != "" && strings.EqualFold(o, originOf(s.o.PublicURL))
}

func originOf(u string) string {
	if i := strings.Index(u, "://"); i >= 0 {
		if j := strings.IndexByte(u[i+3:], '/'); j >= 0 {
			return u[:i+3+j]
		}
	}
	return u
}

// GET /api/v1/me/roles
func (s *Service) apiRoles(w http.ResponseWriter, r *http.Request) {
	si, ok := s.authenticate(w, r)
	if !ok {
		return
	}
	roles, err := s.roles(r.Context(), si, r)
	if err != nil {
		s.log.ErrorContext(r.Context(), "role picker failed", "err", err)
		writeAPIError(w, r, http.StatusServiceUnavailable, "unavailable", "the service is temporarily unavailable")
		return
	}
	body := map[string]any{"roles": roles, "idp": si.idp}
	if s.o.S3Endpoint != "" {
		body["s3"] = map[string]string{"endpoint": s.o.S3Endpoint, "region": s.o.S3Region}
	}
	writeJSON(w, http.StatusOK, body)
}

// POST /api/v1/me/web-identity-token
func (s *Service) apiWebIdentityToken(w http.ResponseWriter, r *http.Request) {
	si, ok := s.authenticate(w, r)
	if !ok {
		return
	}
	tok, _, ok := s.mintFor(w, r, si)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, tok)
}

// mintFor mints a web-identity token carrying the session's entitlements
// and audits it. On failure it has answered.
func (s *Service) mintFor(w http.ResponseWriter, r *http.Request, si *sessionInfo) (*WebIdentityToken, []Entitlement, bool) {
	ctx := r.Context()
	roles, err := s.roles(ctx, si, r)
	if err != nil {
		s.log.ErrorContext(ctx, "role picker failed", "err", err)
		writeAPIError(w, r, http.StatusServiceUnavailable, "unavailable", "the service is temporarily unavailable")
		return nil, nil, false
	}
	arns := make([]string, len(roles))
	for i, e := range roles {
		arns[i] = e.ARN
	}
	tok, err := s.iss.mint(ctx, si, arns)
	if err != nil {
		s.log.ErrorContext(ctx, "mint web-identity token failed", "err", err)
		writeAPIError(w, r, http.StatusServiceUnavailable, "unavailable", "the service is temporarily unavailable")
		return nil, nil, false
	}
	ev := audit.NewEvent(s.now, audit.CodeTokenCreated, "identity.web_identity_token.mint").Allow().Request(ctx).
		Actor(si.p.AuditActor()).Source(remoteIP(r), r.UserAgent()).
		Resource(audit.Resource{Type: "web-identity-token", Name: s.o.PublicURL}).
		Details(map[string]any{"sessionId": si.p.TokenID, "idp": si.idp, "roles": arns,
			"expiresAt": tok.ExpiresAt.Format(time.RFC3339)})
	if err := s.emit(ctx, ev); err != nil {
		writeAPIError(w, r, http.StatusServiceUnavailable, "unavailable", "the service is temporarily unavailable")
		return nil, nil, false
	}
	return tok, roles, true
}

// pickRole finds ref (an ARN, or a name case-insensitively) among roles;
// an empty ref picks the first (default) role.
func pickRole(roles []Entitlement, ref string) (Entitlement, bool) {
	if len(roles) == 0 {
		return Entitlement{}, false
	}
	if ref == "" {
		return roles[0], true
	}
	for _, e := range roles {
		if e.ARN == ref || strings.EqualFold(e.Name, ref) {
			return e, true
		}
	}
	return Entitlement{}, false
}

// POST /api/v1/me/credentials {"role", "durationSeconds"}
func (s *Service) apiCredentials(w http.ResponseWriter, r *http.Request) {
	si, ok := s.authenticate(w, r)
	if !ok {
		return
	}
	var in struct {
		Role            string `json:"role"`
		DurationSeconds int    `json:"durationSeconds"`
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
	if err == nil && len(strings.TrimSpace(string(body))) > 0 {
		dec := json.NewDecoder(strings.NewReader(string(body)))
		dec.DisallowUnknownFields()
		err = dec.Decode(&in)
	}
	if err != nil {
		writeAPIError(w, r, http.StatusBadRequest, "invalid_request", "the body must be a JSON object {\"role\", \"durationSeconds\"}")
		return
	}
	if in.DurationSeconds != 0 && (in.DurationSeconds < 900 || in.DurationSeconds > 43200) {
		writeAPIError(w, r, http.StatusBadRequest, "invalid_request", "durationSeconds must be between 900 and 43200")
		return
	}
	if s.o.Assumer == nil {
		writeAPIError(w, r, http.StatusNotImplemented, "not_implemented", "this server has no STS endpoint configured")
		return
	}
	tok, roles, ok := s.mintFor(w, r, si)
	if !ok {
		return
	}
	role, ok := pickRole(roles, in.Role)
	if !ok {
		w.Header().Set(PassthroughHeader, PassAccessDenied)
		msg := "you are not entitled to any role; ask an administrator to add the gatehouse issuer to a role's trust policy, or your IdP to grant you a role"
		if in.Role != "" {
			msg = "you are not entitled to role " + clip(in.Role, 200) + "; run 'gatehouse roles' to list the roles you may pick"
		}
		writeAPIError(w, r, http.StatusForbidden, "AccessDenied", msg)
		return
	}
	creds, err := s.o.Assumer.AssumeRoleWithWebIdentity(r.Context(), AssumeInput{RoleARN: role.ARN,
		SessionName: awsname.SessionNameFrom(si.p.UserName), Token: tok.Token, Duration: time.Duration(in.DurationSeconds) * time.Second,
		Origin: r})
	if err != nil {
		var se *STSError
		if errors.As(err, &se) {
			if se.Passthrough != "" {
				w.Header().Set(PassthroughHeader, se.Passthrough)
			}
			status := se.Status
			if status < 400 {
				status = http.StatusBadGateway
			}
			writeAPIError(w, r, status, se.Code, se.Message)
			return
		}
		s.log.ErrorContext(r.Context(), "in-process STS call failed", "err", err)
		writeAPIError(w, r, http.StatusServiceUnavailable, "unavailable", "the service is temporarily unavailable")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"role": role, "accessKeyId": creds.AccessKeyID, "secretAccessKey": creds.SecretAccessKey,
		"sessionToken": creds.SessionToken, "expiration": creds.Expiration, "assumedRoleArn": creds.AssumedRoleARN,
	})
}
