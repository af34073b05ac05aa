package api

import (
	"net/http"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
)

var errNoAuthzMessages = &apiError{status: http.StatusServiceUnavailable, code: "unavailable",
	msg: "authorization message decoding is not available on this server"}

// decodeAuthorizationMessage opens an encoded authorization failure message
// (the S3 gateway appends one to each policy denial) for an administrator.
// The decode is audited: it reveals policy detail about another principal.
func (a *API) decodeAuthorizationMessage(c *call) error {
	var in struct {
		Message string `json:"message"`
	}
	if err := c.decode(&in); err != nil {
		return err
	}
	if a.authz == nil {
		return errNoAuthzMessages
	}
	e, err := a.authz.Decode(in.Message)
	if err != nil {
		return errInvalid("message: not an authorization message of this deployment (tampered, truncated, or sealed with another master key)")
	}
	res := audit.Resource{Type: "authorization-message", Name: e.Action + " " + truncate(e.Resource, 256)}
	if err := c.allow(audit.CodeAuthzMessageDecoded, res, map[string]any{
		"deniedPrincipal": e.Principal, "deniedRequestId": e.RequestID}); err != nil {
		return err
	}
	return c.json(http.StatusOK, e)
}
