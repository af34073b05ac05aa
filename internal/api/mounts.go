package api

// S3 gateway mounts: an admin binds a bucket prefix to an IAM role; the
// gateway authorizes requests under that prefix as the role, if the caller
// is entitled to it (docs/design/0012-mounts.md).

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/s3name"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// MaxMountPrefixLen bounds a mount prefix (the S3 key length limit).
const MaxMountPrefixLen = s3name.MaxKeyLen

// errNoMounts answers the mount operations of a server whose store has no
// mount support.
var errNoMounts = &apiError{status: http.StatusServiceUnavailable, code: "unavailable",
	msg: "mounts are not available on this server"}

type mountView struct {
	ID          string    `json:"id"`
	Bucket      string    `json:"bucket"`
	Prefix      string    `json:"prefix"`
	RoleARN     string    `json:"roleArn"`
	Description string    `json:"description,omitempty"`
	Revision    int64     `json:"revision"`
	CreatedAt   time.Time `json:"createdAt"`
	UpdatedAt   time.Time `json:"updatedAt"`
}

func viewMount(m *store.Mount) mountView {
	return mountView{ID: m.ID, Bucket: m.Bucket, Prefix: m.Prefix, RoleARN: m.RoleARN, Description: m.Description,
		Revision: m.Revision, CreatedAt: m.CreatedAt, UpdatedAt: m.UpdatedAt}
}

func mountResource(m *store.Mount) audit.Resource {
	return audit.Resource{Type: "mount", ID: m.ID, Name: "s3://" + m.Bucket + "/" + m.Prefix}
}

func mountDetails(m *store.Mount, fields ...string) map[string]any {
	d := map[string]any{"bucket": m.Bucket, "prefix": m.Prefix, "roleArn": m.RoleARN}
	if len(fields) > 0 {
		d["fields"] = fields
	}
	return d
}

// mounts returns the mount store or the 503 that says there is none.
func (c *call) mounts() (store.MountStore, error) {
	if c.a.mnt == nil {
		return nil, errNoMounts
	}
	return c.a.mnt, nil
}

// mountsChanged tells the server (OnMountsChanged) that mount m was
// written or deleted, so this replica serves the change at once. The
// request's cancellation does not cut the update short.
func (c *call) mountsChanged(m *store.Mount, deleted bool) {
	if c.a.onMounts != nil {
		c.a.onMounts(context.WithoutCancel(c.ctx), m, deleted)
	}
}

func (c *call) resolveMount(id string) (*store.Mount, error) {
	ms, err := c.mounts()
	if err != nil {
		return nil, err
	}
	m, err := ms.GetMount(c.ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, errNotFound("no mount " + quote(id))
	}
	return m, err
}

func checkMountBucket(field, b string) error {
	if err := s3name.Bucket(b); err != nil {
		return fieldErr(field, "must be a valid S3 bucket name (3 to 63 characters of a-z, 0-9, . and -, starting and ending with a letter or digit, not an IP address)")
	}
	return nil
}

// checkMountPrefix: a key prefix that ends with "/", at most 1024 bytes,
// that the gateway would accept as a key (no leading "/", no "." or ".."
// segments, no "//", no control characters or encoded separators).
func checkMountPrefix(field, p string) error {
	if p == "" || len(p) > MaxMountPrefixLen || !strings.HasSuffix(p, "/") || strings.Contains(p, "..") ||
		s3name.Key(p) != nil {
		return fieldErr(field, "must be a key prefix of at most %d bytes ending in \"/\", without a leading \"/\", \"..\", \"//\" or control characters", MaxMountPrefixLen)
	}
	return nil
}

// checkMountRole verifies that arn names an existing role of this account,
// exactly (path included).
func (c *call) checkMountRole(field, arn string) error {
	prefix := "arn:aws:iam::" + c.a.account + ":role/"
	if !strings.HasPrefix(arn, prefix) || strings.HasSuffix(arn, "/") {
		return fieldErr(field, "must be the ARN of a role of account %s (arn:aws:iam::%s:role/<path/>name)", c.a.account, c.a.account)
	}
	name := arn[strings.LastIndexByte(arn, '/')+1:]
	r, err := c.a.st.GetRoleByName(c.ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return fieldErr(field, "no role %s", quote(arn))
	}
	if err != nil {
		return err
	}
	if r.ARN(c.a.account) != arn {
		return fieldErr(field, "no role %s (did you mean %s?)", quote(arn), quote(r.ARN(c.a.account)))
	}
	return nil
}

// checkMountFree refuses a (bucket, prefix) that another mount already has.
func (c *call) checkMountFree(ms store.MountStore, m *store.Mount) error {
	all, err := ms.ListMounts(c.ctx)
	if err != nil {
		return err
	}
	for _, x := range all {
		if x.ID != m.ID && x.Bucket == m.Bucket && x.Prefix == m.Prefix {
			return &apiError{status: http.StatusConflict, code: "already_exists",
				msg: "s3://" + m.Bucket + "/" + m.Prefix + " is already mounted (mount " + x.ID + ")"}
		}
	}
	return nil
}

func (a *API) listMounts(c *call) error {
	ms, err := c.mounts()
	if err != nil {
		return err
	}
	all, err := ms.ListMounts(c.ctx)
	if err != nil {
		return err
	}
	bucket := c.r.URL.Query().Get("bucket")
	out := make([]mountView, 0, len(all))
	for _, m := range all {
		if bucket != "" && m.Bucket != bucket {
			continue
		}
		out = append(out, viewMount(m))
	}
	return c.json(http.StatusOK, map[string]any{"mounts": out})
}

func (a *API) getMount(c *call) error {
	m, err := c.resolveMount(c.params["id"])
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, viewMount(m))
}

func (a *API) createMount(c *call) error {
	var in struct {
		Bucket      string `json:"bucket"`
		Prefix      string `json:"prefix"`
		RoleARN     string `json:"roleArn"`
		Description string `json:"description"`
	}
	if err := c.decode(&in); err != nil {
		return err
	}
	if err := checkMountBucket("bucket", in.Bucket); err != nil {
		return err
	}
	if err := checkMountPrefix("prefix", in.Prefix); err != nil {
		return err
	}
	if err := checkDescription("description", in.Description); err != nil {
		return err
	}
	ms, err := c.mounts()
	if err != nil {
		return err
	}
	if err := c.checkMountRole("roleArn", in.RoleARN); err != nil {
		return err
	}
	m := &store.Mount{ID: uuid.NewString(), Bucket: in.Bucket, Prefix: in.Prefix, RoleARN: in.RoleARN, Description: in.Description}
	if err := c.checkMountFree(ms, m); err != nil {
		return err
	}
	res := mountResource(m)
	if err := c.allow(audit.CodeMountCreated, res, mountDetails(m)); err != nil {
		return err
	}
	if err := ms.CreateMount(c.ctx, m); err != nil {
		c.mutationFailed(audit.CodeMountCreated, res, err)
		return err
	}
	c.mountsChanged(m, false)
	c.w.Header().Set("Location", Prefix+"/mounts/"+m.ID)
	return c.json(http.StatusCreated, viewMount(m))
}

// updateMount changes some fields of a mount; the revision is required, so
// an update is one compare-and-set.
func (a *API) updateMount(c *call) error {
	var in struct {
		Revision    int64   `json:"revision"`
		Bucket      *string `json:"bucket"`
		Prefix      *string `json:"prefix"`
		RoleARN     *string `json:"roleArn"`
		Description *string `json:"description"`
	}
	if err := c.decode(&in); err != nil {
		return err
	}
	if in.Bucket != nil {
		if err := checkMountBucket("bucket", *in.Bucket); err != nil {
			return err
		}
	}
	if in.Prefix != nil {
		if err := checkMountPrefix("prefix", *in.Prefix); err != nil {
			return err
		}
	}
	if in.Description != nil {
		if err := checkDescription("description", *in.Description); err != nil {
			return err
		}
	}
	if in.RoleARN != nil {
		if err := c.checkMountRole("roleArn", *in.RoleARN); err != nil {
			return err
		}
	}
	m, err := c.resolveMount(c.params["id"])
	if err != nil {
		return err
	}
	if m.Revision != in.Revision {
		return errConflict(staleRevisionMsg)
	}
	var changed []string
	set := func(name string, dst *string, v *string) {
		if v != nil && *v != *dst {
			*dst = *v
			changed = append(changed, name)
		}
	}
	set("bucket", &m.Bucket, in.Bucket)
	set("prefix", &m.Prefix, in.Prefix)
	set("roleArn", &m.RoleARN, in.RoleARN)
	set("description", &m.Description, in.Description)
	if len(changed) == 0 {
		return c.json(http.StatusOK, viewMount(m))
	}
	if err := c.checkMountFree(c.a.mnt, m); err != nil {
		return err
	}
	res := mountResource(m)
	if err := c.allow(audit.CodeMountUpdated, res, mountDetails(m, changed...)); err != nil {
		return err
	}
	if err := c.a.mnt.UpdateMount(c.ctx, m); err != nil {
		c.mutationFailed(audit.CodeMountUpdated, res, err)
		return err
	}
	c.mountsChanged(m, false)
	return c.json(http.StatusOK, viewMount(m))
}

func (a *API) deleteMount(c *call) error {
	m, err := c.resolveMount(c.params["id"])
	if err != nil {
		return err
	}
	res := mountResource(m)
	if err := c.allow(audit.CodeMountDeleted, res, mountDetails(m)); err != nil {
		return err
	}
	if err := c.a.mnt.DeleteMount(c.ctx, m.ID); err != nil {
		c.mutationFailed(audit.CodeMountDeleted, res, err)
		return err
	}
	c.mountsChanged(m, true)
	return c.noContent()
}
