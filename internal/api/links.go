package api

import (
	"errors"
	"net/http"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/identity"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// Federated links bind (provider, subject) to a directory user
// (docs/design/0014-identity-binding.md). An admin makes and removes them
// here; every change is audited before it is applied.

var errNoLinks = &apiError{status: http.StatusServiceUnavailable, code: "unavailable",
	msg: "this server's store keeps no federated links"}

type linkView struct {
	ProviderID  string    `json:"providerId"`
	ProviderARN string    `json:"providerArn"`
	Subject     string    `json:"subject"`
	UserID      string    `json:"userId"`
	UserName    string    `json:"userName,omitempty"`
	Source      string    `json:"source"`
	CreatedAt   time.Time `json:"createdAt"`
}

// provider is a SAML or OIDC provider resolved from a reference.
type provider struct {
	id, arn string
	binding store.Binding
}

// links returns the link store or the 503 that says there is none.
func (c *call) links() (store.LinkStore, error) {
	if c.a.links == nil {
		return nil, errNoLinks
	}
	return c.a.links, nil
}

// resolveProvider finds a SAML or OIDC provider by id, SAML name, or OIDC
// issuer URL.
func (c *call) resolveProvider(ref string) (*provider, error) {
	if p, err := c.resolveSAML(ref); err == nil {
		return &provider{id: p.ID, arn: p.ARN(c.a.account), binding: p.Binding}, nil
	} else if !isNotFound(err) {
		return nil, err
	}
	p, err := c.resolveOIDC(ref)
	if isNotFound(err) {
		return nil, errNotFound("no SAML or OIDC provider " + quote(ref))
	}
	if err != nil {
		return nil, err
	}
	return &provider{id: p.ID, arn: p.ARN(c.a.account), binding: p.Binding}, nil
}

func isNotFound(err error) bool {
	var ae *apiError
	return errors.As(err, &ae) && ae.status == http.StatusNotFound
}

// providerARNs maps every provider id to its ARN, for views of links.
func (c *call) providerARNs() (map[string]string, error) {
	out := map[string]string{}
	sps, err := c.a.st.ListSAMLProviders(c.ctx)
	if err != nil {
		return nil, err
	}
	for _, p := range sps {
		out[p.ID] = p.ARN(c.a.account)
	}
	ops, err := c.a.st.ListOIDCProviders(c.ctx)
	if err != nil {
		return nil, err
	}
	for _, p := range ops {
		out[p.ID] = p.ARN(c.a.account)
	}
	return out, nil
}

// listFederatedLinks answers GET /federated-links[?provider=&user=]: the
// links of a provider, of a user, or of both (at most one), or every link.
func (a *API) listFederatedLinks(c *call) error {
	ls, err := c.links()
	if err != nil {
		return err
	}
	q := c.r.URL.Query()
	pid := ""
	if ref := q.Get("provider"); ref != "" {
		p, err := c.resolveProvider(ref)
		if err != nil {
			return err
		}
		pid = p.id
	}
	var links []*store.FederatedLink
	if ref := q.Get("user"); ref != "" {
		u, err := c.resolveUser(ref)
		if err != nil {
			return err
		}
		links, err = ls.LinksOfUser(c.ctx, u.ID)
		if err != nil {
			return err
		}
	} else if links, err = ls.ListFederatedLinks(c.ctx, pid); err != nil {
		return err
	}
	arns, err := c.providerARNs()
	if err != nil {
		return err
	}
	out := make([]linkView, 0, len(links))
	for _, l := range links {
		if pid != "" && l.ProviderID != pid {
			continue
		}
		name := ""
		if u, err := a.st.GetUser(c.ctx, l.UserID); err == nil {
			name = u.UserName
		}
		out = append(out, linkView{ProviderID: l.ProviderID, ProviderARN: arns[l.ProviderID], Subject: l.Subject,
			UserID: l.UserID, UserName: name, Source: l.Source, CreatedAt: l.CreatedAt})
	}
	return c.json(http.StatusOK, map[string]any{"federatedLinks": out})
}

// createFederatedLink answers POST /federated-links: it links a provider's
// subject to a person. A subject already linked, or a person already
// linked to another subject of that provider, is a 409: links are never
// rebound silently. Service principals and disabled users are refused.
func (a *API) createFederatedLink(c *call) error {
	var in struct {
		Provider string `json:"provider"`
		Subject  string `json:"subject"`
		User     string `json:"user"`
	}
	if err := c.decode(&in); err != nil {
		return err
	}
	ls, err := c.links()
	if err != nil {
		return err
	}
	p, err := c.resolveProvider(in.Provider)
	if err != nil {
		return err
	}
	u, err := c.resolveUser(in.User)
	if err != nil {
		return err
	}
	if u.Kind == store.KindService {
		return fieldErr("user", "%s is a service principal; federated identities never bind to one", quote(u.UserName))
	}
	l := &store.FederatedLink{ProviderID: p.id, Subject: in.Subject, UserID: u.ID, Source: store.LinkSourceAdmin}
	res := identity.LinkResource(l, u.UserName)
	if err := c.allow(audit.CodeLinkCreated, res, identity.LinkDetails(l, p.arn)); err != nil {
		return err
	}
	if err := ls.CreateFederatedLink(c.ctx, l); err != nil {
		c.mutationFailed(audit.CodeLinkCreated, res, err)
		if errors.Is(err, store.ErrAlreadyExists) {
			return &apiError{status: http.StatusConflict, code: "already_exists",
				msg: "the subject is already linked, or the user is already linked to another subject of this provider; delete that link first"}
		}
		return err
	}
	return c.json(http.StatusCreated, linkView{ProviderID: l.ProviderID, ProviderARN: p.arn, Subject: l.Subject,
		UserID: u.ID, UserName: u.UserName, Source: l.Source, CreatedAt: l.CreatedAt})
}

// deleteFederatedLink answers DELETE /federated-links?provider=&subject=.
// The link store revokes the linked user's live credentials with the link
// (see Options.Links), and the audit record says so.
func (a *API) deleteFederatedLink(c *call) error {
	ls, err := c.links()
	if err != nil {
		return err
	}
	q := c.r.URL.Query()
	p, err := c.resolveProvider(q.Get("provider"))
	if err != nil {
		return err
	}
	l, err := ls.GetFederatedLink(c.ctx, p.id, q.Get("subject"))
	if errors.Is(err, store.ErrNotFound) {
		return errNotFound("no link of subject " + quote(q.Get("subject")) + " of that provider")
	}
	if err != nil {
		return err
	}
	name := ""
	if u, err := a.st.GetUser(c.ctx, l.UserID); err == nil {
		name = u.UserName
	}
	res := identity.LinkResource(l, name)
	details := identity.LinkDetails(l, p.arn)
	details["credentialsRevoked"] = true
	if err := c.allow(audit.CodeLinkDeleted, res, details); err != nil {
		return err
	}
	if err := ls.DeleteFederatedLink(c.ctx, l.ProviderID, l.Subject); err != nil {
		c.mutationFailed(audit.CodeLinkDeleted, res, err)
		return err
	}
	return c.noContent()
}

// putProviderBinding answers PUT /{saml,oidc}-providers/{id}/binding: it
// replaces the provider's binding rule.
func (a *API) putSAMLProviderBinding(c *call) error {
	b, rev, err := c.decodeBinding()
	if err != nil {
		return err
	}
	p, err := c.resolveSAML(c.params["id"])
	if err != nil {
		return err
	}
	if rev != nil && *rev != p.Revision {
		return errConflict(staleRevisionMsg)
	}
	p.Binding = b
	res := samlResource(p)
	if err := c.allow(audit.CodeProviderUpdated, res, bindingDetails(p.ARN(a.account), b)); err != nil {
		return err
	}
	if err := a.st.UpdateSAMLProvider(c.ctx, p); err != nil {
		c.mutationFailed(audit.CodeProviderUpdated, res, err)
		return err
	}
	return c.json(http.StatusOK, a.viewSAML(p))
}

func (a *API) putOIDCProviderBinding(c *call) error {
	b, rev, err := c.decodeBinding()
	if err != nil {
		return err
	}
	p, err := c.resolveOIDC(c.params["id"])
	if err != nil {
		return err
	}
	if rev != nil && *rev != p.Revision {
		return errConflict(staleRevisionMsg)
	}
	p.Binding = b
	res := oidcResource(p)
	if err := c.allow(audit.CodeProviderUpdated, res, bindingDetails(p.ARN(a.account), b)); err != nil {
		return err
	}
	if err := a.st.UpdateOIDCProvider(c.ctx, p); err != nil {
		c.mutationFailed(audit.CodeProviderUpdated, res, err)
		return err
	}
	return c.json(http.StatusOK, a.viewOIDC(p))
}

// decodeBinding reads a ProviderBinding body.
func (c *call) decodeBinding() (store.Binding, *int64, error) {
	var in struct {
		store.Binding
		Revision *int64 `json:"revision"`
	}
	if err := c.decode(&in); err != nil {
		return store.Binding{}, nil, err
	}
	if err := in.Binding.Check(); err != nil {
		return store.Binding{}, nil, errInvalid("request body: %v", err)
	}
	return in.Binding, in.Revision, nil
}

func bindingDetails(arn string, b store.Binding) map[string]any {
	return map[string]any{"arn": arn, "fields": []string{"binding"}, "binding": b}
}
