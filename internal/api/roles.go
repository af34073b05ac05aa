package api

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// DefaultAccountID is the AWS account id in ARNs unless Options.AccountID is set.
const DefaultAccountID = "000000000000"

var accountIDRE = regexp.MustCompile(`^[0-9]{12}$`)

type policyView struct {
	Name     string          `json:"name"`
	Document json.RawMessage `json:"document"`
}

// roleView is a role as the API shows it: documents as JSON objects, with
// its derived ARN.
type roleView struct {
	ID                  string            `json:"id"`
	ARN                 string            `json:"arn"`
	Name                string            `json:"name"`
	Path                string            `json:"path"`
	Description         string            `json:"description,omitempty"`
	TrustPolicy         json.RawMessage   `json:"trustPolicy"`
	Policies            []policyView      `json:"policies"`
	PermissionsBoundary json.RawMessage   `json:"permissionsBoundary,omitempty"`
	MaxSessionDuration  int               `json:"maxSessionDuration"`
	Tags                map[string]string `json:"tags"`
	Revision            int64             `json:"revision"`
	CreatedAt           time.Time         `json:"createdAt"`
	UpdatedAt           time.Time         `json:"updatedAt"`
}

// docJSON embeds a stored policy document in a response. Documents written
// through this API are compact JSON; anything else is shown as a string
// rather than breaking the response.
func docJSON(s string) json.RawMessage {
	if s == "" {
		return nil
	}
	if json.Valid([]byte(s)) {
		return json.RawMessage(s)
	}
	b, _ := json.Marshal(s)
	return b
}

func (a *API) viewRole(r *store.Role) roleView {
	v := roleView{ID: r.ID, ARN: r.ARN(a.account), Name: r.Name, Path: r.Path, Description: r.Description,
		TrustPolicy: docJSON(r.TrustPolicy), Policies: make([]policyView, 0, len(r.PermissionPolicies)),
		PermissionsBoundary: docJSON(r.PermissionsBoundary), MaxSessionDuration: r.MaxSessionDuration,
		Tags: r.Tags, Revision: r.Revision, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt}
	for _, p := range r.PermissionPolicies {
		v.Policies = append(v.Policies, policyView{Name: p.Name, Document: docJSON(p.Document)})
	}
	if v.Tags == nil {
		v.Tags = map[string]string{}
	}
	return v
}

func roleResource(r *store.Role) audit.Resource {
	return audit.Resource{Type: "role", ID: r.ID, Name: r.Name}
}

// digest identifies a policy document in audit details without copying it.
func digest(doc string) string {
	if doc == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(doc))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// roleDetails records what a role mutation sets: the ARN and a digest of
// every document, so an auditor can tell which version was in force.
func (a *API) roleDetails(r *store.Role, fields ...string) map[string]any {
	pols := make(map[string]string, len(r.PermissionPolicies))
	for _, p := range r.PermissionPolicies {
		pols[p.Name] = digest(p.Document)
	}
	d := map[string]any{"arn": r.ARN(a.account), "trustPolicy": digest(r.TrustPolicy), "policies": pols,
		"maxSessionDuration": r.MaxSessionDuration}
	if r.PermissionsBoundary != "" {
		d["permissionsBoundary"] = digest(r.PermissionsBoundary)
	}
	if len(fields) > 0 {
		d["fields"] = fields
	}
	return d
}

// resolveRole finds a role by id, then by name.
func (c *call) resolveRole(ref string) (*store.Role, error) {
	r, err := c.a.st.GetRole(c.ctx, ref)
	if errors.Is(err, store.ErrNotFound) {
		r, err = c.a.st.GetRoleByName(c.ctx, ref)
	}
	if errors.Is(err, store.ErrNotFound) {
		return nil, errNotFound("no role " + quote(ref))
	}
	return r, err
}

func (a *API) listRoles(c *call) error {
	rs, err := a.st.ListRoles(c.ctx)
	if err != nil {
		return err
	}
	q := c.r.URL.Query()
	prefix, pathPrefix := strings.ToLower(q.Get("filter")), q.Get("pathPrefix")
	out := make([]roleView, 0, len(rs))
	for _, r := range rs {
		if prefix != "" && !strings.HasPrefix(strings.ToLower(r.Name), prefix) {
			continue
		}
		if pathPrefix != "" && !strings.HasPrefix(r.Path, pathPrefix) {
			continue
		}
		out = append(out, a.viewRole(r))
	}
	return c.json(http.StatusOK, map[string]any{"roles": out})
}

func (a *API) getRole(c *call) error {
	r, err := c.resolveRole(c.params["id"])
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, a.viewRole(r))
}

type policyIn struct {
	Name     string          `json:"name"`
	Document json.RawMessage `json:"document"`
}

type roleCreate struct {
	Name                string            `json:"name"`
	Path                *string           `json:"path"`
	Description         string            `json:"description"`
	TrustPolicy         json.RawMessage   `json:"trustPolicy"`
	Policies            []policyIn        `json:"policies"`
	PermissionsBoundary json.RawMessage   `json:"permissionsBoundary"`
	MaxSessionDuration  *int              `json:"maxSessionDuration"`
	Tags                map[string]string `json:"tags"`
}

// checkBoundary validates an optional permissions boundary; JSON null or
// absent means none.
func checkBoundary(field string, raw json.RawMessage) (string, error) {
	if len(raw) == 0 || string(raw) == "null" {
		return "", nil
	}
	return checkPolicy(field, raw, identityPolicy)
}

// role validates a create request (pure) and returns the role to store.
func (in *roleCreate) role() (*store.Role, error) {
	r := &store.Role{ID: uuid.NewString(), Name: in.Name, Path: store.DefaultRolePath, Description: in.Description,
		MaxSessionDuration: store.DefaultMaxSessionDuration, Tags: in.Tags}
	if err := checkRoleName("name", in.Name); err != nil {
		return nil, err
	}
	if in.Path != nil {
		if err := checkRolePath("path", *in.Path); err != nil {
			return nil, err
		}
		r.Path = *in.Path
	}
	if err := checkDescription("description", in.Description); err != nil {
		return nil, err
	}
	if in.MaxSessionDuration != nil {
		if err := checkMaxSessionDuration("maxSessionDuration", *in.MaxSessionDuration); err != nil {
			return nil, err
		}
		r.MaxSessionDuration = *in.MaxSessionDuration
	}
	if err := checkTags("tags", in.Tags); err != nil {
		return nil, err
	}
	var err error
	if r.TrustPolicy, err = checkPolicy("trustPolicy", in.TrustPolicy, trustPolicy); err != nil {
		return nil, err
	}
	for i, p := range in.Policies {
		f := fmt.Sprintf("policies.%d", i)
		if !policyNameRE.MatchString(p.Name) {
			return nil, fieldErr(f+".name", "must be 1 to 128 characters from letters, digits and +=,.@_-")
		}
		if _, dup := r.Policy(p.Name); dup {
			return nil, fieldErr(f+".name", "duplicates policy name %q (names are case-insensitive)", p.Name)
		}
		doc, err := checkPolicy(f+".document", p.Document, identityPolicy)
		if err != nil {
			return nil, err
		}
		r.PermissionPolicies = append(r.PermissionPolicies, store.NamedPolicy{Name: p.Name, Document: doc})
	}
	if r.PermissionsBoundary, err = checkBoundary("permissionsBoundary", in.PermissionsBoundary); err != nil {
		return nil, err
	}
	return r, nil
}

func (a *API) createRole(c *call) error {
	var in roleCreate
	if err := c.decode(&in); err != nil {
		return err
	}
	r, err := in.role()
	if err != nil {
		return err
	}
	if _, err := a.st.GetRoleByName(c.ctx, r.Name); err == nil {
		return &apiError{status: http.StatusConflict, code: "already_exists", msg: "role " + quote(r.Name) + " already exists"}
	}
	res := roleResource(r)
	if err := c.allow(audit.CodeRoleCreated, res, a.roleDetails(r)); err != nil {
		return err
	}
	if err := a.st.CreateRole(c.ctx, r); err != nil {
		c.mutationFailed(audit.CodeRoleCreated, res, err)
		return err
	}
	c.w.Header().Set("Location", Prefix+"/roles/"+r.ID)
	return c.json(http.StatusCreated, a.viewRole(r))
}

func (a *API) updateRole(c *call) error {
	var in struct {
		Revision            int64              `json:"revision"`
		Description         *string            `json:"description"`
		MaxSessionDuration  *int               `json:"maxSessionDuration"`
		Tags                *map[string]string `json:"tags"`
		PermissionsBoundary json.RawMessage    `json:"permissionsBoundary"`
	}
	if err := c.decode(&in); err != nil {
		return err
	}
	if in.Description != nil {
		if err := checkDescription("description", *in.Description); err != nil {
			return err
		}
	}
	if in.MaxSessionDuration != nil {
		if err := checkMaxSessionDuration("maxSessionDuration", *in.MaxSessionDuration); err != nil {
			return err
		}
	}
	if in.Tags != nil {
		if err := checkTags("tags", *in.Tags); err != nil {
			return err
		}
	}
	boundary, err := checkBoundary("permissionsBoundary", in.PermissionsBoundary)
	if err != nil {
		return err
	}
	r, err := c.resolveRole(c.params["id"])
	if err != nil {
		return err
	}
	if r.Revision != in.Revision {
		return errConflict(staleRevisionMsg)
	}
	var changed []string
	if in.Description != nil && *in.Description != r.Description {
		r.Description = *in.Description
		changed = append(changed, "description")
	}
	if in.MaxSessionDuration != nil && *in.MaxSessionDuration != r.MaxSessionDuration {
		r.MaxSessionDuration = *in.MaxSessionDuration
		changed = append(changed, "maxSessionDuration")
	}
	if in.Tags != nil {
		r.Tags = *in.Tags
		changed = append(changed, "tags")
	}
	if in.PermissionsBoundary != nil && boundary != r.PermissionsBoundary {
		r.PermissionsBoundary = boundary
		changed = append(changed, "permissionsBoundary")
	}
	res := roleResource(r)
	if err := c.allow(audit.CodeRoleUpdated, res, a.roleDetails(r, changed...)); err != nil {
		return err
	}
	if err := a.st.UpdateRole(c.ctx, r); err != nil {
		c.mutationFailed(audit.CodeRoleUpdated, res, err)
		return err
	}
	return c.json(http.StatusOK, a.viewRole(r))
}

func (a *API) deleteRole(c *call) error {
	r, err := c.resolveRole(c.params["id"])
	if err != nil {
		return err
	}
	res := roleResource(r)
	if err := c.allow(audit.CodeRoleDeleted, res, map[string]any{"arn": r.ARN(a.account)}); err != nil {
		return err
	}
	if err := a.st.DeleteRole(c.ctx, r.ID); err != nil {
		c.mutationFailed(audit.CodeRoleDeleted, res, err)
		return err
	}
	return c.noContent()
}

type documentPut struct {
	Document json.RawMessage `json:"document"`
	Revision *int64          `json:"revision"`
}

func (a *API) putRoleTrustPolicy(c *call) error {
	var in documentPut
	if err := c.decode(&in); err != nil {
		return err
	}
	doc, err := checkPolicy("document", in.Document, trustPolicy)
	if err != nil {
		return err
	}
	return a.editRole(c, in.Revision, "trustPolicy", func(r *store.Role) bool {
		if r.TrustPolicy == doc {
			return false
		}
		r.TrustPolicy = doc
		return true
	})
}

func (c *call) policyNameParam() (string, error) {
	name := c.params["policyName"]
	if !policyNameRE.MatchString(name) {
		return "", errInvalid("path parameter %q: must be 1 to 128 characters from letters, digits and +=,.@_-", "policyName")
	}
	return name, nil
}

func (a *API) putRolePolicy(c *call) error {
	var in documentPut
	if err := c.decode(&in); err != nil {
		return err
	}
	name, err := c.policyNameParam()
	if err != nil {
		return err
	}
	doc, err := checkPolicy("document", in.Document, identityPolicy)
	if err != nil {
		return err
	}
	return a.editRole(c, in.Revision, "policies."+name, func(r *store.Role) bool {
		i := slices.IndexFunc(r.PermissionPolicies, func(p store.NamedPolicy) bool {
			return store.FoldName(p.Name) == store.FoldName(name)
		})
		if i < 0 {
			r.PermissionPolicies = append(slices.Clone(r.PermissionPolicies), store.NamedPolicy{Name: name, Document: doc})
			return true
		}
		if r.PermissionPolicies[i].Document == doc && r.PermissionPolicies[i].Name == name {
			return false
		}
		r.PermissionPolicies = slices.Clone(r.PermissionPolicies)
		r.PermissionPolicies[i] = store.NamedPolicy{Name: name, Document: doc}
		return true
	})
}

func (a *API) deleteRolePolicy(c *call) error {
	name, err := c.policyNameParam()
	if err != nil {
		return err
	}
	return a.editRole(c, nil, "policies."+name, func(r *store.Role) bool {
		n := len(r.PermissionPolicies)
		r.PermissionPolicies = slices.DeleteFunc(slices.Clone(r.PermissionPolicies), func(p store.NamedPolicy) bool {
			return store.FoldName(p.Name) == store.FoldName(name)
		})
		return len(r.PermissionPolicies) != n
	})
}

// editRole applies edit to a role. With a revision it is one
// compare-and-set; without, a retried read-modify-write. An edit that
// changes nothing is answered without a write or an audit event.
func (a *API) editRole(c *call, rev *int64, field string, edit func(*store.Role) bool) error {
	r, err := c.resolveRole(c.params["id"])
	if err != nil {
		return err
	}
	if rev != nil && *rev != r.Revision {
		return errConflict(staleRevisionMsg)
	}
	probe := *r
	if !edit(&probe) {
		return c.json(http.StatusOK, a.viewRole(r))
	}
	res := roleResource(r)
	if err := c.allow(audit.CodeRoleUpdated, res, a.roleDetails(&probe, field)); err != nil {
		return err
	}
	if rev != nil {
		*r = probe
		err = a.st.UpdateRole(c.ctx, r)
	} else {
		err = a.retryRole(c, r, edit)
	}
	if err != nil {
		c.mutationFailed(audit.CodeRoleUpdated, res, err)
		return err
	}
	return c.json(http.StatusOK, a.viewRole(r))
}

// retryRole applies mutate to r and writes it, re-reading and retrying on
// a revision conflict a few times. On success *r holds the stored record.
func (a *API) retryRole(c *call, r *store.Role, mutate func(*store.Role) bool) error {
	for attempt := 0; ; attempt++ {
		if !mutate(r) {
			return nil
		}
		err := a.st.UpdateRole(c.ctx, r)
		if err == nil || !errors.Is(err, store.ErrConflict) || attempt >= 4 {
			return err
		}
		fresh, gerr := a.st.GetRole(c.ctx, r.ID)
		if gerr != nil {
			return gerr
		}
		*r = *fresh
	}
}
