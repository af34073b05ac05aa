package api

// Admin revocation of STS temporary credentials
// (docs/design/0011-managed-policies-and-revocation.md).

import (
	"context"
	"net/http"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
)

// CredentialRevoker revokes STS temporary credentials; the server passes
// its credentials.Revoker. RevokeUser makes every credential of the user
// issued before at fail; RevokeSession makes one session (and the sessions
// chained from it) fail until until.
type CredentialRevoker interface {
	RevokeUser(ctx context.Context, userID string, at time.Time) error
	RevokeSession(ctx context.Context, sessionID string, until time.Time) error
}

// SessionDenyFor is how long a revoked session stays on the deny list: the
// longest STS session (12 h) plus clock-skew allowance, so the entry
// outlives any credentials of the session.
const SessionDenyFor = 12*time.Hour + 5*time.Minute

var errNoRevoker = &apiError{status: http.StatusServiceUnavailable, code: "unavailable",
	msg: "STS credential revocation is not available on this server"}

type revocationRequest struct {
	SessionID string `json:"sessionId"`
	UserID    string `json:"userId"`
	UserName  string `json:"userName"`
}

// revokeCredentials revokes one STS session (by the sessionId recorded in
// its GH4000I issuance event) or every live session of one user.
func (a *API) revokeCredentials(c *call) error {
	var in revocationRequest
	if err := c.decode(&in); err != nil {
		return err
	}
	n := 0
	for _, v := range []string{in.SessionID, in.UserID, in.UserName} {
		if v != "" {
			n++
		}
	}
	if n != 1 {
		return errInvalid("request body: give exactly one of sessionId, userId or userName")
	}
	if a.rev == nil {
		return errNoRevoker
	}
	now := a.id.Now().UTC()
	if in.SessionID != "" {
		until := now.Add(SessionDenyFor)
		res := audit.Resource{Type: "sts-session", ID: in.SessionID}
		if err := c.allow(audit.CodeSTSRevoked, res, map[string]any{"sessionId": in.SessionID,
			"deniedUntil": rfc3339(until)}); err != nil {
			return err
		}
		if err := a.rev.RevokeSession(c.ctx, in.SessionID, until); err != nil {
			c.mutationFailed(audit.CodeSTSRevoked, res, err)
			return err
		}
		return c.json(http.StatusOK, map[string]any{"sessionId": in.SessionID, "deniedUntil": rfc3339(until)})
	}
	ref := in.UserID
	if ref == "" {
		ref = in.UserName
	}
	u, err := c.resolveUser(ref)
	if err != nil {
		return err
	}
	res := audit.Resource{Type: "user", ID: u.ID, Name: u.UserName}
	if err := c.allow(audit.CodeSTSRevoked, res, map[string]any{"userId": u.ID, "notBefore": rfc3339(now)}); err != nil {
		return err
	}
	if err := a.rev.RevokeUser(c.ctx, u.ID, now); err != nil {
		c.mutationFailed(audit.CodeSTSRevoked, res, err)
		return err
	}
	return c.json(http.StatusOK, map[string]any{"userId": u.ID, "userName": u.UserName, "notBefore": rfc3339(now)})
}
