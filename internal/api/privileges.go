package api

// Privilege assignments: who is an administrator and who may call SCIM
// (docs/design/0015-admin-privilege.md). Only this API (and so the admin
// CLI) and the first-run bootstrap write them.

import (
	"net/http"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/identity"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

type grantView struct {
	PrincipalID string             `json:"principalId"`
	UserName    string             `json:"userName"`
	Privilege   identity.Privilege `json:"privilege"`
	GrantedAt   string             `json:"grantedAt"`
	GrantedBy   string             `json:"grantedBy"`
}

func viewGrant(g identity.Grant, userName string) grantView {
	return grantView{PrincipalID: g.PrincipalID, UserName: userName, Privilege: g.Privilege,
		GrantedAt: rfc3339(g.GrantedAt), GrantedBy: g.GrantedBy}
}

func (a *API) listPrivileges(c *call) error {
	gs, err := a.id.ListGrants(c.ctx)
	if err != nil {
		return err
	}
	out := make([]grantView, 0, len(gs))
	for _, g := range gs {
		name := ""
		if u, err := a.st.GetUser(c.ctx, g.PrincipalID); err == nil {
			name = u.UserName
		}
		out = append(out, viewGrant(g, name))
	}
	return c.json(http.StatusOK, map[string]any{"grants": out})
}

// privilegeTarget parses the path: the privilege and the principal.
func (c *call) privilegeTarget() (identity.Privilege, *store.User, error) {
	priv, err := identity.ParsePrivilege(c.params["privilege"])
	if err != nil {
		return "", nil, err
	}
	u, err := c.resolveUser(c.params["id"])
	return priv, u, err
}

// grantPrivilege grants a privilege. Granting admin to another principal
// with the bootstrap token retires that token, once the grant is made; the
// grant's audit event says so before anything changes.
func (a *API) grantPrivilege(c *call) error {
	priv, u, err := c.privilegeTarget()
	if err != nil {
		return err
	}
	retire := false
	if priv == identity.PrivilegeAdmin && u.ID != c.p.UserID {
		if retire, err = a.id.IsBootstrapToken(c.ctx, c.p.TokenID); err != nil {
			return err
		}
	}
	res := userResource(u)
	details := map[string]any{"privilege": string(priv)}
	if retire {
		details["retiresBootstrapToken"] = c.p.TokenID
	}
	if err := c.allow(audit.CodePrivilegeGranted, res, details); err != nil {
		return err
	}
	if _, err := a.id.GrantPrivilege(c.ctx, u.ID, priv, c.p.UserID); err != nil {
		c.mutationFailed(audit.CodePrivilegeGranted, res, err)
		return err
	}
	if retire {
		if err := a.id.RetireBootstrapToken(c.ctx, c.p.TokenID); err != nil {
			return err
		}
	}
	gs, err := a.id.ListGrants(c.ctx)
	if err != nil {
		return err
	}
	for _, g := range gs {
		if g.PrincipalID == u.ID && g.Privilege == priv {
			return c.json(http.StatusOK, viewGrant(g, u.UserName))
		}
	}
	return errNotFound("the grant was revoked concurrently")
}

func (a *API) revokePrivilege(c *call) error {
	priv, u, err := c.privilegeTarget()
	if err != nil {
		return err
	}
	res := userResource(u)
	if err := c.allow(audit.CodePrivilegeRevoked, res, map[string]any{"privilege": string(priv)}); err != nil {
		return err
	}
	if _, err := a.id.RevokePrivilege(c.ctx, u.ID, priv); err != nil {
		c.mutationFailed(audit.CodePrivilegeRevoked, res, err)
		return err
	}
	return c.noContent()
}
