package api

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// ---- SAML providers ----

type samlView struct {
	ID          string        `json:"id"`
	ARN         string        `json:"arn"`
	Name        string        `json:"name"`
	EntityID    string        `json:"entityId"`
	MetadataXML string        `json:"metadataXml"`
	Binding     store.Binding `json:"binding"`
	Revision    int64         `json:"revision"`
	CreatedAt   time.Time     `json:"createdAt"`
	UpdatedAt   time.Time     `json:"updatedAt"`
}

func (a *API) viewSAML(p *store.SAMLProvider) samlView {
	return samlView{ID: p.ID, ARN: p.ARN(a.account), Name: p.Name, EntityID: p.EntityID, MetadataXML: p.MetadataXML,
		Binding: p.Binding, Revision: p.Revision, CreatedAt: p.CreatedAt, UpdatedAt: p.UpdatedAt}
}

func samlResource(p *store.SAMLProvider) audit.Resource {
	return audit.Resource{Type: "saml-provider", ID: p.ID, Name: p.Name}
}

func (a *API) samlDetails(p *store.SAMLProvider) map[string]any {
	sum := sha256.Sum256([]byte(p.MetadataXML))
	return map[string]any{"arn": p.ARN(a.account), "entityId": p.EntityID, "metadata": "sha256:" + hex.EncodeToString(sum[:])}
}

// resolveSAML finds a SAML provider by id, then by name.
func (c *call) resolveSAML(ref string) (*store.SAMLProvider, error) {
	p, err := c.a.st.GetSAMLProvider(c.ctx, ref)
	if errors.Is(err, store.ErrNotFound) {
		p, err = c.a.st.GetSAMLProviderByName(c.ctx, ref)
	}
	if errors.Is(err, store.ErrNotFound) {
		return nil, errNotFound("no SAML provider " + quote(ref))
	}
	return p, err
}

func (a *API) listSAMLProviders(c *call) error {
	ps, err := a.st.ListSAMLProviders(c.ctx)
	if err != nil {
		return err
	}
	out := make([]samlView, 0, len(ps))
	for _, p := range ps {
		out = append(out, a.viewSAML(p))
	}
	return c.json(http.StatusOK, map[string]any{"samlProviders": out})
}

func (a *API) getSAMLProvider(c *call) error {
	p, err := c.resolveSAML(c.params["id"])
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, a.viewSAML(p))
}

// samlEntityTaken answers 409 if another provider already trusts entityID.
func (c *call) samlEntityTaken(entityID, selfID string) error {
	other, err := c.a.st.GetSAMLProviderByEntityID(c.ctx, entityID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil
	case err != nil:
		return err
	case other.ID != selfID:
		return &apiError{status: http.StatusConflict, code: "already_exists",
			msg: fmt.Sprintf("SAML provider %s already trusts entity id %s", quote(other.Name), quote(entityID))}
	}
	return nil
}

func (a *API) createSAMLProvider(c *call) error {
	var in struct {
		Name        string `json:"name"`
		MetadataXML string `json:"metadataXml"`
	}
	if err := c.decode(&in); err != nil {
		return err
	}
	if !samlNameRE.MatchString(in.Name) {
		return fieldErr("name", "must be 1 to 128 characters from letters, digits and ._-")
	}
	entityID, err := parseSAMLMetadata("metadataXml", in.MetadataXML)
	if err != nil {
		return err
	}
	if _, err := a.st.GetSAMLProviderByName(c.ctx, in.Name); err == nil {
		return &apiError{status: http.StatusConflict, code: "already_exists", msg: "SAML provider " + quote(in.Name) + " already exists"}
	}
	if err := c.samlEntityTaken(entityID, ""); err != nil {
		return err
	}
	p := &store.SAMLProvider{ID: uuid.NewString(), Name: in.Name, MetadataXML: in.MetadataXML, EntityID: entityID}
	res := samlResource(p)
	if err := c.allow(audit.CodeProviderCreated, res, a.samlDetails(p)); err != nil {
		return err
	}
	if err := a.st.CreateSAMLProvider(c.ctx, p); err != nil {
		c.mutationFailed(audit.CodeProviderCreated, res, err)
		return err
	}
	c.w.Header().Set("Location", Prefix+"/saml-providers/"+p.ID)
	return c.json(http.StatusCreated, a.viewSAML(p))
}

// updateSAMLProvider replaces the metadata (certificate rotation); the
// entity id may change with it.
func (a *API) updateSAMLProvider(c *call) error {
	var in struct {
		MetadataXML string `json:"metadataXml"`
		Revision    *int64 `json:"revision"`
	}
	if err := c.decode(&in); err != nil {
		return err
	}
	entityID, err := parseSAMLMetadata("metadataXml", in.MetadataXML)
	if err != nil {
		return err
	}
	p, err := c.resolveSAML(c.params["id"])
	if err != nil {
		return err
	}
	if in.Revision != nil && *in.Revision != p.Revision {
		return errConflict(staleRevisionMsg)
	}
	if p.MetadataXML == in.MetadataXML {
		return c.json(http.StatusOK, a.viewSAML(p))
	}
	if err := c.samlEntityTaken(entityID, p.ID); err != nil {
		return err
	}
	p.MetadataXML, p.EntityID = in.MetadataXML, entityID
	res := samlResource(p)
	if err := c.allow(audit.CodeProviderUpdated, res, a.samlDetails(p)); err != nil {
		return err
	}
	// Without a revision the caller replaces whatever is there: one retry
	// on a concurrent change, re-reading the stored revision.
	err = a.st.UpdateSAMLProvider(c.ctx, p)
	for attempt := 0; in.Revision == nil && errors.Is(err, store.ErrConflict) && attempt < 4; attempt++ {
		fresh, gerr := a.st.GetSAMLProvider(c.ctx, p.ID)
		if gerr != nil {
			err = gerr
			break
		}
		p.Revision, p.Name = fresh.Revision, fresh.Name
		err = a.st.UpdateSAMLProvider(c.ctx, p)
	}
	if err != nil {
		c.mutationFailed(audit.CodeProviderUpdated, res, err)
		return err
	}
	return c.json(http.StatusOK, a.viewSAML(p))
}

func (a *API) deleteSAMLProvider(c *call) error {
	p, err := c.resolveSAML(c.params["id"])
	if err != nil {
		return err
	}
	res := samlResource(p)
	if err := c.allow(audit.CodeProviderDeleted, res, map[string]any{"arn": p.ARN(a.account)}); err != nil {
		return err
	}
	if err := a.st.DeleteSAMLProvider(c.ctx, p.ID); err != nil {
		c.mutationFailed(audit.CodeProviderDeleted, res, err)
		return err
	}
	return c.noContent()
}

// ---- OIDC providers ----

type oidcView struct {
	ID            string        `json:"id"`
	ARN           string        `json:"arn"`
	IssuerURL     string        `json:"issuerUrl"`
	Audiences     []string      `json:"audiences"`
	Thumbprints   []string      `json:"thumbprints"`
	JWKSURL       string        `json:"jwksUrl,omitempty"`
	GroupsClaim   string        `json:"groupsClaim,omitempty"`
	RolesClaim    string        `json:"rolesClaim,omitempty"`
	UsernameClaim string        `json:"usernameClaim,omitempty"`
	Binding       store.Binding `json:"binding"`
	Revision      int64         `json:"revision"`
	CreatedAt     time.Time     `json:"createdAt"`
	UpdatedAt     time.Time     `json:"updatedAt"`
}

func (a *API) viewOIDC(p *store.OIDCProvider) oidcView {
	v := oidcView{ID: p.ID, ARN: p.ARN(a.account), IssuerURL: p.IssuerURL, Audiences: p.Audiences,
		Thumbprints: p.Thumbprints, JWKSURL: p.JWKSURL, GroupsClaim: p.GroupsClaim, RolesClaim: p.RolesClaim,
		UsernameClaim: p.UsernameClaim, Binding: p.Binding, Revision: p.Revision, CreatedAt: p.CreatedAt, UpdatedAt: p.UpdatedAt}
	if v.Audiences == nil {
		v.Audiences = []string{}
	}
	if v.Thumbprints == nil {
		v.Thumbprints = []string{}
	}
	return v
}

func oidcResource(p *store.OIDCProvider) audit.Resource {
	return audit.Resource{Type: "oidc-provider", ID: p.ID, Name: p.IssuerURL}
}

func (a *API) oidcDetails(p *store.OIDCProvider, fields ...string) map[string]any {
	d := map[string]any{"arn": p.ARN(a.account), "audiences": p.Audiences, "thumbprints": p.Thumbprints,
		"jwksUrl": p.JWKSURL}
	if len(fields) > 0 {
		d["fields"] = fields
	}
	return d
}

// resolveOIDC finds an OIDC provider by id, then by exact issuer URL.
func (c *call) resolveOIDC(ref string) (*store.OIDCProvider, error) {
	p, err := c.a.st.GetOIDCProvider(c.ctx, ref)
	if errors.Is(err, store.ErrNotFound) {
		p, err = c.a.st.GetOIDCProviderByIssuer(c.ctx, ref)
	}
	if errors.Is(err, store.ErrNotFound) {
		return nil, errNotFound("no OIDC provider " + quote(ref))
	}
	return p, err
}

func (a *API) listOIDCProviders(c *call) error {
	ps, err := a.st.ListOIDCProviders(c.ctx)
	if err != nil {
		return err
	}
	out := make([]oidcView, 0, len(ps))
	for _, p := range ps {
		out = append(out, a.viewOIDC(p))
	}
	return c.json(http.StatusOK, map[string]any{"oidcProviders": out})
}

func (a *API) getOIDCProvider(c *call) error {
	p, err := c.resolveOIDC(c.params["id"])
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, a.viewOIDC(p))
}

// checkOIDCOptional validates the optional fields shared by create and update.
func checkOIDCOptional(thumbprints []string, jwksURL, groups, roles, username *string) error {
	if err := checkThumbprints("thumbprints", thumbprints); err != nil {
		return err
	}
	if jwksURL != nil && *jwksURL != "" {
		if err := checkProviderURL("jwksUrl", *jwksURL, false); err != nil {
			return err
		}
	}
	for field, v := range map[string]*string{"groupsClaim": groups, "rolesClaim": roles, "usernameClaim": username} {
		if v != nil {
			if err := checkClaim(field, *v); err != nil {
				return err
			}
		}
	}
	return nil
}

func (a *API) createOIDCProvider(c *call) error {
	var in struct {
		IssuerURL     string   `json:"issuerUrl"`
		Audiences     []string `json:"audiences"`
		Thumbprints   []string `json:"thumbprints"`
		JWKSURL       string   `json:"jwksUrl"`
		GroupsClaim   string   `json:"groupsClaim"`
		RolesClaim    string   `json:"rolesClaim"`
		UsernameClaim string   `json:"usernameClaim"`
	}
	if err := c.decode(&in); err != nil {
		return err
	}
	if err := checkProviderURL("issuerUrl", in.IssuerURL, true); err != nil {
		return err
	}
	if err := checkAudiences("audiences", in.Audiences); err != nil {
		return err
	}
	if err := checkOIDCOptional(in.Thumbprints, &in.JWKSURL, &in.GroupsClaim, &in.RolesClaim, &in.UsernameClaim); err != nil {
		return err
	}
	p := &store.OIDCProvider{ID: uuid.NewString(), IssuerURL: in.IssuerURL, Audiences: in.Audiences,
		Thumbprints: in.Thumbprints, JWKSURL: in.JWKSURL, GroupsClaim: in.GroupsClaim, RolesClaim: in.RolesClaim,
		UsernameClaim: in.UsernameClaim}
	if err := c.oidcIssuerTaken(p.IssuerURL); err != nil {
		return err
	}
	res := oidcResource(p)
	if err := c.allow(audit.CodeProviderCreated, res, a.oidcDetails(p)); err != nil {
		return err
	}
	if err := a.st.CreateOIDCProvider(c.ctx, p); err != nil {
		c.mutationFailed(audit.CodeProviderCreated, res, err)
		return err
	}
	c.w.Header().Set("Location", Prefix+"/oidc-providers/"+p.ID)
	return c.json(http.StatusCreated, a.viewOIDC(p))
}

// oidcIssuerTaken answers 409 if a provider already has issuer's ARN.
func (c *call) oidcIssuerTaken(issuer string) error {
	ps, err := c.a.st.ListOIDCProviders(c.ctx)
	if err != nil {
		return err
	}
	key := store.OIDCIssuerKey(issuer)
	for _, p := range ps {
		if store.OIDCIssuerKey(p.IssuerURL) == key {
			return &apiError{status: http.StatusConflict, code: "already_exists",
				msg: "an OIDC provider for " + quote(p.IssuerURL) + " already exists"}
		}
	}
	return nil
}

func (a *API) updateOIDCProvider(c *call) error {
	var in struct {
		Revision      int64     `json:"revision"`
		Audiences     *[]string `json:"audiences"`
		Thumbprints   *[]string `json:"thumbprints"`
		JWKSURL       *string   `json:"jwksUrl"`
		GroupsClaim   *string   `json:"groupsClaim"`
		RolesClaim    *string   `json:"rolesClaim"`
		UsernameClaim *string   `json:"usernameClaim"`
	}
	if err := c.decode(&in); err != nil {
		return err
	}
	if in.Audiences != nil {
		if err := checkAudiences("audiences", *in.Audiences); err != nil {
			return err
		}
	}
	var thumbs []string
	if in.Thumbprints != nil {
		thumbs = *in.Thumbprints
	}
	if err := checkOIDCOptional(thumbs, in.JWKSURL, in.GroupsClaim, in.RolesClaim, in.UsernameClaim); err != nil {
		return err
	}
	p, err := c.resolveOIDC(c.params["id"])
	if err != nil {
		return err
	}
	if p.Revision != in.Revision {
		return errConflict(staleRevisionMsg)
	}
	var changed []string
	if in.Audiences != nil && !slices.Equal(*in.Audiences, p.Audiences) {
		p.Audiences = *in.Audiences
		changed = append(changed, "audiences")
	}
	if in.Thumbprints != nil && !slices.Equal(*in.Thumbprints, p.Thumbprints) {
		p.Thumbprints = *in.Thumbprints
		changed = append(changed, "thumbprints")
	}
	set := func(name string, dst *string, v *string) {
		if v != nil && *v != *dst {
			*dst = *v
			changed = append(changed, name)
		}
	}
	set("jwksUrl", &p.JWKSURL, in.JWKSURL)
	set("groupsClaim", &p.GroupsClaim, in.GroupsClaim)
	set("rolesClaim", &p.RolesClaim, in.RolesClaim)
	set("usernameClaim", &p.UsernameClaim, in.UsernameClaim)
	res := oidcResource(p)
	if err := c.allow(audit.CodeProviderUpdated, res, a.oidcDetails(p, changed...)); err != nil {
		return err
	}
	if err := a.st.UpdateOIDCProvider(c.ctx, p); err != nil {
		c.mutationFailed(audit.CodeProviderUpdated, res, err)
		return err
	}
	return c.json(http.StatusOK, a.viewOIDC(p))
}

func (a *API) deleteOIDCProvider(c *call) error {
	p, err := c.resolveOIDC(c.params["id"])
	if err != nil {
		return err
	}
	res := oidcResource(p)
	if err := c.allow(audit.CodeProviderDeleted, res, map[string]any{"arn": p.ARN(a.account)}); err != nil {
		return err
	}
	if err := a.st.DeleteOIDCProvider(c.ctx, p.ID); err != nil {
		c.mutationFailed(audit.CodeProviderDeleted, res, err)
		return err
	}
	return c.noContent()
}
