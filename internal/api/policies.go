package api

// Customer-managed IAM policies: standalone policy documents that STS
// callers name by ARN in the PolicyArns session-policy parameter
// (docs/design/0011-managed-policies-and-revocation.md).

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// errNoManagedPolicies answers the policy operations of a server whose
// store has no managed-policy support.
var errNoManagedPolicies = &apiError{status: http.StatusServiceUnavailable, code: "unavailable",
	msg: "managed policies are not available on this server"}

// managedPolicyView is a managed policy as the API shows it: the document
// as a JSON object, with its derived ARN.
type managedPolicyView struct {
	ID          string          `json:"id"`
	ARN         string          `json:"arn"`
	Name        string          `json:"name"`
	Path        string          `json:"path"`
	Description string          `json:"description,omitempty"`
	Document    json.RawMessage `json:"document"`
	Revision    int64           `json:"revision"`
	CreatedAt   time.Time       `json:"createdAt"`
	UpdatedAt   time.Time       `json:"updatedAt"`
}

func (a *API) viewManagedPolicy(p *store.ManagedPolicy) managedPolicyView {
	return managedPolicyView{ID: p.ID, ARN: p.ARN(a.account), Name: p.Name, Path: p.Path, Description: p.Description,
		Document: docJSON(p.Document), Revision: p.Revision, CreatedAt: p.CreatedAt, UpdatedAt: p.UpdatedAt}
}

func managedPolicyResource(p *store.ManagedPolicy) audit.Resource {
	return audit.Resource{Type: "policy", ID: p.ID, Name: p.Name}
}

// managedPolicyDetails records what a mutation sets: the ARN and a digest
// of the document, so an auditor can tell which version was in force.
func (a *API) managedPolicyDetails(p *store.ManagedPolicy, fields ...string) map[string]any {
	d := map[string]any{"arn": p.ARN(a.account), "document": digest(p.Document)}
	if len(fields) > 0 {
		d["fields"] = fields
	}
	return d
}

// policies returns the managed-policy store or the 503 that says there is none.
func (c *call) policies() (store.ManagedPolicyStore, error) {
	if c.a.pol == nil {
		return nil, errNoManagedPolicies
	}
	return c.a.pol, nil
}

// resolveManagedPolicy finds a managed policy by id, then by name.
func (c *call) resolveManagedPolicy(ref string) (*store.ManagedPolicy, error) {
	ps, err := c.policies()
	if err != nil {
		return nil, err
	}
	p, err := ps.GetManagedPolicy(c.ctx, ref)
	if errors.Is(err, store.ErrNotFound) {
		p, err = ps.GetManagedPolicyByName(c.ctx, ref)
	}
	if errors.Is(err, store.ErrNotFound) {
		return nil, errNotFound("no managed policy " + quote(ref))
	}
	return p, err
}

func (a *API) listManagedPolicies(c *call) error {
	ps, err := c.policies()
	if err != nil {
		return err
	}
	all, err := ps.ListManagedPolicies(c.ctx)
	if err != nil {
		return err
	}
	q := c.r.URL.Query()
	prefix, pathPrefix := strings.ToLower(q.Get("filter")), q.Get("pathPrefix")
	out := make([]managedPolicyView, 0, len(all))
	for _, p := range all {
		if prefix != "" && !strings.HasPrefix(strings.ToLower(p.Name), prefix) {
			continue
		}
		if pathPrefix != "" && !strings.HasPrefix(p.Path, pathPrefix) {
			continue
		}
		out = append(out, a.viewManagedPolicy(p))
	}
	return c.json(http.StatusOK, map[string]any{"policies": out})
}

func (a *API) getManagedPolicy(c *call) error {
	p, err := c.resolveManagedPolicy(c.params["id"])
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, a.viewManagedPolicy(p))
}

type managedPolicyCreate struct {
	Name        string          `json:"name"`
	Path        *string         `json:"path"`
	Description string          `json:"description"`
	Document    json.RawMessage `json:"document"`
}

// policy validates a create request (pure) and returns the record to store.
func (in *managedPolicyCreate) policy() (*store.ManagedPolicy, error) {
	p := &store.ManagedPolicy{ID: uuid.NewString(), Name: in.Name, Path: store.DefaultPolicyPath, Description: in.Description}
	if !policyNameRE.MatchString(in.Name) {
		return nil, fieldErr("name", "must be 1 to 128 characters from letters, digits and +=,.@_-")
	}
	if in.Path != nil {
		if err := checkRolePath("path", *in.Path); err != nil {
			return nil, err
		}
		p.Path = *in.Path
	}
	if err := checkDescription("description", in.Description); err != nil {
		return nil, err
	}
	var err error
	if p.Document, err = checkPolicy("document", in.Document, identityPolicy); err != nil {
		return nil, err
	}
	return p, nil
}

func (a *API) createManagedPolicy(c *call) error {
	var in managedPolicyCreate
	if err := c.decode(&in); err != nil {
		return err
	}
	p, err := in.policy()
	if err != nil {
		return err
	}
	ps, err := c.policies()
	if err != nil {
		return err
	}
	if _, err := ps.GetManagedPolicyByName(c.ctx, p.Name); err == nil {
		return &apiError{status: http.StatusConflict, code: "already_exists", msg: "managed policy " + quote(p.Name) + " already exists"}
	}
	res := managedPolicyResource(p)
	if err := c.allow(audit.CodePolicyCreated, res, a.managedPolicyDetails(p)); err != nil {
		return err
	}
	if err := ps.CreateManagedPolicy(c.ctx, p); err != nil {
		c.mutationFailed(audit.CodePolicyCreated, res, err)
		return err
	}
	c.w.Header().Set("Location", Prefix+"/policies/"+p.ID)
	return c.json(http.StatusCreated, a.viewManagedPolicy(p))
}

// updateManagedPolicy replaces the document (and optionally the
// description) of a managed policy; the revision is required, so an update
// is one compare-and-set. Name and path, and so the ARN, never change.
func (a *API) updateManagedPolicy(c *call) error {
	var in struct {
		Document    json.RawMessage `json:"document"`
		Revision    int64           `json:"revision"`
		Description *string         `json:"description"`
	}
	if err := c.decode(&in); err != nil {
		return err
	}
	doc, err := checkPolicy("document", in.Document, identityPolicy)
	if err != nil {
		return err
	}
	if in.Description != nil {
		if err := checkDescription("description", *in.Description); err != nil {
			return err
		}
	}
	p, err := c.resolveManagedPolicy(c.params["id"])
	if err != nil {
		return err
	}
	if p.Revision != in.Revision {
		return errConflict(staleRevisionMsg)
	}
	var changed []string
	if doc != p.Document {
		p.Document = doc
		changed = append(changed, "document")
	}
	if in.Description != nil && *in.Description != p.Description {
		p.Description = *in.Description
		changed = append(changed, "description")
	}
	if len(changed) == 0 {
		return c.json(http.StatusOK, a.viewManagedPolicy(p))
	}
	res := managedPolicyResource(p)
	if err := c.allow(audit.CodePolicyUpdated, res, a.managedPolicyDetails(p, changed...)); err != nil {
		return err
	}
	if err := c.a.pol.UpdateManagedPolicy(c.ctx, p); err != nil {
		c.mutationFailed(audit.CodePolicyUpdated, res, err)
		return err
	}
	return c.json(http.StatusOK, a.viewManagedPolicy(p))
}

// deleteManagedPolicy removes a managed policy. Live sessions that name it
// in PolicyArns are then denied everything (the session policy can no
// longer be resolved, and gatehouse fails closed).
func (a *API) deleteManagedPolicy(c *call) error {
	p, err := c.resolveManagedPolicy(c.params["id"])
	if err != nil {
		return err
	}
	res := managedPolicyResource(p)
	if err := c.allow(audit.CodePolicyDeleted, res, map[string]any{"arn": p.ARN(a.account)}); err != nil {
		return err
	}
	if err := c.a.pol.DeleteManagedPolicy(c.ctx, p.ID); err != nil {
		c.mutationFailed(audit.CodePolicyDeleted, res, err)
		return err
	}
	return c.noContent()
}
