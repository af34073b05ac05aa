package api

import (
	"errors"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/awsname"
	"github.com/gatehouse-dev/gatehouse/internal/identity"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// userView is a principal as the API shows it: never the password hash.
type userView struct {
	ID          string              `json:"id"`
	Kind        store.PrincipalKind `json:"kind"`
	UserName    string              `json:"userName"`
	ExternalID  string              `json:"externalId,omitempty"`
	DisplayName string              `json:"displayName,omitempty"`
	GivenName   string              `json:"givenName,omitempty"`
	FamilyName  string              `json:"familyName,omitempty"`
	Title       string              `json:"title,omitempty"`
	Emails      []store.Email       `json:"emails,omitempty"`
	Active      bool                `json:"active"`
	HasPassword bool                `json:"hasPassword"`
	Attributes  map[string][]string `json:"attributes,omitempty"`
	Revision    int64               `json:"revision"`
	CreatedAt   time.Time           `json:"createdAt"`
	UpdatedAt   time.Time           `json:"updatedAt"`
}

func viewUser(u *store.User) userView {
	return userView{ID: u.ID, Kind: u.Kind, UserName: u.UserName, ExternalID: u.ExternalID,
		DisplayName: u.DisplayName, GivenName: u.GivenName, FamilyName: u.FamilyName, Title: u.Title,
		Emails: u.Emails, Active: u.Active, HasPassword: u.PasswordHash != "", Attributes: u.Attributes,
		Revision: u.Revision, CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt}
}

func userResource(u *store.User) audit.Resource {
	return audit.Resource{Type: "user", ID: u.ID, Name: u.UserName}
}

var attrKeyRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$`)

func checkAttributes(field string, attrs map[string][]string) error {
	for _, k := range slices.Sorted(maps.Keys(attrs)) {
		if !attrKeyRE.MatchString(k) {
			return errInvalid("request body: field %q: attribute key must match %s", field+"."+k, attrKeyRE.String())
		}
		if attrs[k] == nil {
			return errInvalid("request body: field %q: values must be an array", field+"."+k)
		}
	}
	return nil
}

// resolveUser finds a principal by id, then by userName.
func (c *call) resolveUser(ref string) (*store.User, error) {
	u, err := c.a.st.GetUser(c.ctx, ref)
	if errors.Is(err, store.ErrNotFound) {
		u, err = c.a.st.GetUserByName(c.ctx, ref)
	}
	if errors.Is(err, store.ErrNotFound) {
		return nil, errNotFound("no user or service principal " + quote(ref))
	}
	return u, err
}

func quote(s string) string { return `"` + truncate(s, 256) + `"` }

func (a *API) listUsers(c *call) error {
	us, err := a.st.ListUsers(c.ctx)
	if err != nil {
		return err
	}
	q := c.r.URL.Query()
	prefix, kind := strings.ToLower(q.Get("filter")), q.Get("kind")
	out := make([]userView, 0, len(us))
	for _, u := range us {
		if prefix != "" && !strings.HasPrefix(strings.ToLower(u.UserName), prefix) {
			continue
		}
		if kind != "" && string(u.Kind) != kind {
			continue
		}
		out = append(out, viewUser(u))
	}
	return c.json(http.StatusOK, map[string]any{"users": out})
}

type userCreate struct {
	UserName    string              `json:"userName"`
	Kind        store.PrincipalKind `json:"kind"`
	ExternalID  string              `json:"externalId"`
	DisplayName string              `json:"displayName"`
	GivenName   string              `json:"givenName"`
	FamilyName  string              `json:"familyName"`
	Title       string              `json:"title"`
	Emails      []store.Email       `json:"emails"`
	Active      *bool               `json:"active"`
	Password    *string             `json:"password"`
	Attributes  map[string][]string `json:"attributes"`
}

func (a *API) createUser(c *call) error {
	var in userCreate
	if err := c.decode(&in); err != nil {
		return err
	}
	if err := checkAttributes("attributes", in.Attributes); err != nil {
		return err
	}
	if in.Kind == "" {
		in.Kind = store.KindUser
	}
	if err := checkUserName(in.UserName); err != nil {
		return err
	}
	u := &store.User{ID: uuid.NewString(), Kind: in.Kind, UserName: in.UserName, ExternalID: in.ExternalID,
		DisplayName: in.DisplayName, GivenName: in.GivenName, FamilyName: in.FamilyName, Title: in.Title,
		Emails: in.Emails, Active: in.Active == nil || *in.Active, Attributes: in.Attributes}
	if in.Password != nil {
		if u.Kind == store.KindService {
			return errInvalid("request body: field %q: service principals cannot have a password", "password")
		}
		h, err := a.id.HashPassword(*in.Password)
		if err != nil {
			return err
		}
		u.PasswordHash = h
	}
	if _, err := a.st.GetUserByName(c.ctx, u.UserName); err == nil {
		return &apiError{status: http.StatusConflict, code: "already_exists", msg: "userName " + quote(u.UserName) + " is taken"}
	}
	res := userResource(u)
	if err := c.allow(audit.CodeUserCreated, res, map[string]any{"kind": string(u.Kind), "active": u.Active, "password": u.PasswordHash != ""}); err != nil {
		return err
	}
	if err := a.st.CreateUser(c.ctx, u); err != nil {
		c.mutationFailed(audit.CodeUserCreated, res, err)
		return err
	}
	c.w.Header().Set("Location", Prefix+"/users/"+u.ID)
	return c.json(http.StatusCreated, viewUser(u))
}

func (a *API) getUser(c *call) error {
	u, err := c.resolveUser(c.params["id"])
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, viewUser(u))
}

type userPatch struct {
	Revision    int64                `json:"revision"`
	UserName    *string              `json:"userName"`
	ExternalID  *string              `json:"externalId"`
	DisplayName *string              `json:"displayName"`
	GivenName   *string              `json:"givenName"`
	FamilyName  *string              `json:"familyName"`
	Title       *string              `json:"title"`
	Emails      *[]store.Email       `json:"emails"`
	Active      *bool                `json:"active"`
	Attributes  *map[string][]string `json:"attributes"`
}

func (a *API) updateUser(c *call) error {
	var in userPatch
	if err := c.decode(&in); err != nil {
		return err
	}
	if in.Attributes != nil {
		if err := checkAttributes("attributes", *in.Attributes); err != nil {
			return err
		}
	}
	u, err := c.resolveUser(c.params["id"])
	if err != nil {
		return err
	}
	if u.Revision != in.Revision {
		return errConflict(staleRevisionMsg)
	}
	var changed []string
	set := func(name string, dst *string, v *string) {
		if v != nil && *v != *dst {
			*dst = *v
			changed = append(changed, name)
		}
	}
	if in.UserName != nil && *in.UserName != u.UserName {
		if err := checkUserName(*in.UserName); err != nil {
			return err
		}
	}
	set("userName", &u.UserName, in.UserName)
	set("externalId", &u.ExternalID, in.ExternalID)
	set("displayName", &u.DisplayName, in.DisplayName)
	set("givenName", &u.GivenName, in.GivenName)
	set("familyName", &u.FamilyName, in.FamilyName)
	set("title", &u.Title, in.Title)
	if in.Emails != nil {
		u.Emails = *in.Emails
		changed = append(changed, "emails")
	}
	if in.Attributes != nil {
		u.Attributes = *in.Attributes
		changed = append(changed, "attributes")
	}
	code := audit.CodeUserUpdated
	if in.Active != nil && *in.Active != u.Active {
		if !*in.Active {
			if u.ID == c.p.UserID {
				return errInvalid("you cannot disable your own principal")
			}
			code = audit.CodeUserDisabled
		}
		u.Active = *in.Active
		changed = append(changed, "active")
	}
	res := userResource(u)
	if err := c.allow(code, res, map[string]any{"fields": changed, "active": u.Active}); err != nil {
		return err
	}
	if err := a.st.UpdateUser(c.ctx, u); err != nil {
		c.mutationFailed(code, res, err)
		return err
	}
	return c.json(http.StatusOK, viewUser(u))
}

func (a *API) deleteUser(c *call) error {
	u, err := c.resolveUser(c.params["id"])
	if err != nil {
		return err
	}
	if u.ID == c.p.UserID {
		return errInvalid("you cannot delete your own principal")
	}
	res := userResource(u)
	if err := c.allow(audit.CodeUserDeleted, res, nil); err != nil {
		return err
	}
	if err := a.st.DeleteUser(c.ctx, u.ID); err != nil {
		c.mutationFailed(audit.CodeUserDeleted, res, err)
		return err
	}
	return c.noContent()
}

func (a *API) disableUser(c *call) error { return a.setActive(c, false) }
func (a *API) enableUser(c *call) error  { return a.setActive(c, true) }

// setActive flips Active with a read-modify-write loop; it is audited once,
// before the first write.
func (a *API) setActive(c *call, active bool) error {
	u, err := c.resolveUser(c.params["id"])
	if err != nil {
		return err
	}
	if !active && u.ID == c.p.UserID {
		return errInvalid("you cannot disable your own principal")
	}
	code := audit.CodeUserDisabled
	if active {
		code = audit.CodeUserUpdated
	}
	res := userResource(u)
	if err := c.allow(code, res, map[string]any{"active": active}); err != nil {
		return err
	}
	err = a.retryUser(c, u, func(u *store.User) bool {
		if u.Active == active {
			return false
		}
		u.Active = active
		return true
	})
	if err != nil {
		c.mutationFailed(code, res, err)
		return err
	}
	return c.json(http.StatusOK, viewUser(u))
}

// retryUser applies mutate to u and writes it, re-reading and retrying on
// a revision conflict a few times. mutate returns false when there is
// nothing to write. On success *u holds the stored record.
func (a *API) retryUser(c *call, u *store.User, mutate func(*store.User) bool) error {
	for attempt := 0; ; attempt++ {
		if !mutate(u) {
			return nil
		}
		err := a.st.UpdateUser(c.ctx, u)
		if err == nil || !errors.Is(err, store.ErrConflict) || attempt >= 4 {
			return err
		}
		fresh, gerr := a.st.GetUser(c.ctx, u.ID)
		if gerr != nil {
			return gerr
		}
		*u = *fresh
	}
}

func (a *API) setUserPassword(c *call) error {
	var in struct {
		Password string `json:"password"`
	}
	if err := c.decode(&in); err != nil {
		return err
	}
	u, err := c.resolveUser(c.params["id"])
	if err != nil {
		return err
	}
	if u.Kind == store.KindService {
		return errInvalid("password: service principals cannot have a password")
	}
	if err := identity.CheckPasswordPolicy(in.Password); err != nil {
		return err
	}
	res := userResource(u)
	if err := c.allow(audit.CodeUserUpdated, res, map[string]any{"fields": []string{"password"}}); err != nil {
		return err
	}
	if err := a.id.SetPassword(c.ctx, u.ID, in.Password); err != nil {
		c.mutationFailed(audit.CodeUserUpdated, res, err)
		return err
	}
	return c.noContent()
}

type attributesDoc struct {
	Attributes map[string][]string `json:"attributes"`
	Revision   int64               `json:"revision"`
}

func attrsOf(u *store.User) attributesDoc {
	m := u.Attributes
	if m == nil {
		m = map[string][]string{}
	}
	return attributesDoc{Attributes: m, Revision: u.Revision}
}

func (a *API) getUserAttributes(c *call) error {
	u, err := c.resolveUser(c.params["id"])
	if err != nil {
		return err
	}
	return c.json(http.StatusOK, attrsOf(u))
}

func (a *API) replaceUserAttributes(c *call) error {
	var in attributesDoc
	if err := c.decode(&in); err != nil {
		return err
	}
	if err := checkAttributes("attributes", in.Attributes); err != nil {
		return err
	}
	u, err := c.resolveUser(c.params["id"])
	if err != nil {
		return err
	}
	if u.Revision != in.Revision {
		return errConflict(staleRevisionMsg)
	}
	res := userResource(u)
	if err := c.allow(audit.CodeUserUpdated, res, map[string]any{"fields": []string{"attributes"}, "keys": slices.Sorted(maps.Keys(in.Attributes))}); err != nil {
		return err
	}
	u.Attributes = in.Attributes
	if err := a.st.UpdateUser(c.ctx, u); err != nil {
		c.mutationFailed(audit.CodeUserUpdated, res, err)
		return err
	}
	return c.json(http.StatusOK, attrsOf(u))
}

func (a *API) setUserAttribute(c *call) error {
	var in struct {
		Values   []string `json:"values"`
		Revision *int64   `json:"revision"`
	}
	if err := c.decode(&in); err != nil {
		return err
	}
	key := c.params["key"]
	if !attrKeyRE.MatchString(key) {
		return errInvalid("path parameter %q: attribute key must match %s", "key", attrKeyRE.String())
	}
	return a.editAttribute(c, key, in.Revision, func(m map[string][]string) bool {
		if slices.Equal(m[key], in.Values) && m[key] != nil {
			return false
		}
		m[key] = in.Values
		return true
	})
}

func (a *API) deleteUserAttribute(c *call) error {
	key := c.params["key"]
	return a.editAttribute(c, key, nil, func(m map[string][]string) bool {
		if _, ok := m[key]; !ok {
			return false
		}
		delete(m, key)
		return true
	})
}

// editAttribute applies edit to a user's attribute map. With a revision
// it is one compare-and-set; without, a retried read-modify-write. An edit
// that changes nothing is answered without a write or an audit event.
func (a *API) editAttribute(c *call, key string, rev *int64, edit func(map[string][]string) bool) error {
	u, err := c.resolveUser(c.params["id"])
	if err != nil {
		return err
	}
	if rev != nil && *rev != u.Revision {
		return errConflict(staleRevisionMsg)
	}
	probe := maps.Clone(u.Attributes)
	if probe == nil {
		probe = map[string][]string{}
	}
	if !edit(probe) {
		return c.json(http.StatusOK, attrsOf(u))
	}
	res := userResource(u)
	if err := c.allow(audit.CodeUserUpdated, res, map[string]any{"fields": []string{"attributes"}, "keys": []string{key}}); err != nil {
		return err
	}
	mutate := func(u *store.User) bool {
		m := maps.Clone(u.Attributes)
		if m == nil {
			m = map[string][]string{}
		}
		if !edit(m) {
			return false
		}
		u.Attributes = m
		return true
	}
	if rev != nil {
		if mutate(u) {
			err = a.st.UpdateUser(c.ctx, u)
		}
	} else {
		err = a.retryUser(c, u, mutate)
	}
	if err != nil {
		c.mutationFailed(audit.CodeUserUpdated, res, err)
		return err
	}
	return c.json(http.StatusOK, attrsOf(u))
}

// checkUserName refuses a new user name outside AWS's set: it becomes
// aws:username, and "alice/x" or "*" would widen "home/${aws:username}/*"
// (issue 11 finding 3). Unchanged legacy names are not re-checked.
func checkUserName(name string) error {
	if err := awsname.UserName(name); err != nil {
		return errInvalid("request body: field %q: %v", "userName", err)
	}
	return nil
}
