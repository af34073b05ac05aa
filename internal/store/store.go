// Package store defines gatehouse's metadata persistence contract.
//
// Implementations live in store/sqlite (the embedded default) and
// store/postgres (shared by several replicas); both are thin backends over
// the one SQL implementation in store/sqlstore. Both must pass the one
// conformance suite in store/storetest. Only cmd/ and internal/server pick a
// concrete implementation; every other package takes a Store.
//
// Concurrency contract: every mutable record carries a Revision. Update*
// methods succeed only when the caller's Revision equals the stored one, and
// then store Revision+1 into the record they were given. A stale revision
// yields ErrConflict and changes nothing, so two concurrent writers can never
// silently overwrite each other. Every method is safe for concurrent use.
package store

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"time"
)

// Stable domain errors. Implementations wrap them; callers test with errors.Is.
var (
	ErrNotFound      = errors.New("store: not found")
	ErrConflict      = errors.New("store: revision conflict")
	ErrAlreadyExists = errors.New("store: already exists")
	// ErrInvalid reports a request the store refuses on semantic grounds,
	// e.g. a group membership that would create a cycle or a member that does
	// not exist.
	ErrInvalid = errors.New("store: invalid")
)

// FoldName returns the canonical form under which user and group names are
// compared and kept unique (Unicode lower case). Every implementation uses
// it, so all backends agree on which names collide, whatever the database's
// collation.
func FoldName(name string) string { return strings.ToLower(name) }

// PrincipalKind distinguishes people from machine identities.
type PrincipalKind string

const (
	KindUser    PrincipalKind = "user"
	KindService PrincipalKind = "service" // service principal: no password, token auth only
)

// Email is one SCIM-style e-mail address of a user.
type Email struct {
	Value   string `json:"value"`
	Type    string `json:"type,omitempty"`
	Primary bool   `json:"primary,omitempty"`
}

// User is a principal: a person (KindUser) or a service principal
// (KindService). UserName is unique case-insensitively (RFC 7643 §4.1.1).
type User struct {
	ID          string        `json:"id"`
	Kind        PrincipalKind `json:"kind"`
	UserName    string        `json:"userName"`
	ExternalID  string        `json:"externalId,omitempty"`
	DisplayName string        `json:"displayName,omitempty"`
	GivenName   string        `json:"givenName,omitempty"`
	FamilyName  string        `json:"familyName,omitempty"`
	Title       string        `json:"title,omitempty"`
	Emails      []Email       `json:"emails,omitempty"`
	Active      bool          `json:"active"`
	// Attributes are multi-valued, e.g. {"region": ["EU"], "purpose": ["a","b"]}.
	// Keys are case-sensitive; value order is preserved.
	Attributes map[string][]string `json:"attributes,omitempty"`
	// PasswordHash is a PHC-format argon2id hash for local users, or empty.
	// It never leaves the identity package (API output strips it).
	PasswordHash string    `json:"-"`
	Revision     int64     `json:"revision"`
	CreatedAt    time.Time `json:"createdAt"`
	UpdatedAt    time.Time `json:"updatedAt"`
}

// MemberType says what a group member is.
type MemberType string

const (
	MemberUser  MemberType = "User"
	MemberGroup MemberType = "Group"
)

// Member is a direct member of a group.
type Member struct {
	ID   string     `json:"value"`
	Type MemberType `json:"type"`
}

// Group holds direct members, which can be users or other groups (nesting).
// DisplayName is unique case-insensitively.
type Group struct {
	ID          string    `json:"id"`
	DisplayName string    `json:"displayName"`
	ExternalID  string    `json:"externalId,omitempty"`
	Members     []Member  `json:"members"`
	Revision    int64     `json:"revision"`
	CreatedAt   time.Time `json:"createdAt"`
	UpdatedAt   time.Time `json:"updatedAt"`
}

// TokenKind distinguishes personal access tokens from login sessions.
type TokenKind string

const (
	TokenPAT     TokenKind = "pat"
	TokenSession TokenKind = "session"
)

// Token is a bearer credential. Only a hash of the secret is stored; the
// secret is shown once, when the token is created.
type Token struct {
	ID          string     `json:"id"`
	PrincipalID string     `json:"principalId"`
	Kind        TokenKind  `json:"kind"`
	Name        string     `json:"name"`
	Hash        []byte     `json:"-"` // SHA-256 of the secret part
	CreatedAt   time.Time  `json:"createdAt"`
	ExpiresAt   time.Time  `json:"expiresAt"`
	RevokedAt   *time.Time `json:"revokedAt,omitempty"`
	LastUsedAt  *time.Time `json:"lastUsedAt,omitempty"`
	// Roles restricts the roles the token may reach (design 0003). nil
	// means no restriction beyond the roles' trust policies; a non-nil
	// list, even an empty one, means exactly these roles and no others,
	// so an empty list reaches no role. A federated session holds the
	// roles its IdP granted; a token minted with a restricted token
	// inherits that token's list.
	Roles []RoleGrant `json:"roles"`
	// ParentID is the token or session this token was minted with (empty:
	// none). Authentication refuses a token whose ancestor is revoked,
	// expired or gone, so a token never outlives its minting credential.
	ParentID string `json:"parentId,omitempty"`
}

// RoleGrant is one role a token is restricted to: the role ARN and, when an
// identity provider granted it, that provider's ARN.
type RoleGrant struct {
	RoleARN     string `json:"roleArn"`
	ProviderARN string `json:"providerArn,omitempty"`
}

// RoleARNs returns the role ARNs of gs in order (nil for nil), for audit
// details and token claims.
func RoleARNs(gs []RoleGrant) []string {
	if gs == nil {
		return nil
	}
	out := make([]string, len(gs))
	for i, g := range gs {
		out[i] = g.RoleARN
	}
	return out
}

// Store is the metadata store. Times are stored with at least millisecond
// precision and returned in UTC. Create* fill ID (if empty), Revision (1),
// CreatedAt and UpdatedAt on the record passed in.
//
// Clarifications shared by every implementation (storetest checks them):
//   - Get*, Update*, Delete*, RevokeToken and TouchToken of an unknown id
//     yield ErrNotFound; GetMeta of an absent key yields ErrNotFound.
//   - A taken ID or name (case-insensitively) yields ErrAlreadyExists; an
//     empty UserName/DisplayName, an unknown Kind, or a token whose
//     PrincipalID does not exist yields ErrInvalid. An empty User.Kind
//     means KindUser.
//   - Stored times are truncated to microseconds; the record passed to a
//     Create*/Update* method is updated to hold exactly what was stored.
//   - A Member with an empty Type is resolved (user first, then group) and
//     the record is updated; duplicate members are stored once. Members
//     keep their order; Group.Members is never nil on records returned.
//   - Deleting a user or group bumps the Revision of every group that named
//     it as a direct member, since that group's member list changed.
//   - Token.ExpiresAt may be zero (no expiry); it is stored as given.
//   - Token.Roles keeps nil and empty apart (they mean "unrestricted" and
//     "no role"); it is the one list that is not returned as nil when empty.
//   - Roles and providers follow the same rules. A role with an empty Name
//     or TrustPolicy, or with an inline policy whose Name is empty or
//     repeated (case-insensitively), yields ErrInvalid; an empty Path means
//     DefaultRolePath and a zero MaxSessionDuration DefaultMaxSessionDuration.
//     A SAML provider without Name, MetadataXML or EntityID, or an OIDC
//     provider without IssuerURL or Audiences, yields ErrInvalid. A taken
//     EntityID or issuer key yields ErrAlreadyExists. Empty lists and maps
//     are returned as nil. The store checks no policy or metadata syntax:
//     front ends validate (pure) before they write.
type Store interface {
	// Users and service principals.
	CreateUser(ctx context.Context, u *User) error
	GetUser(ctx context.Context, id string) (*User, error)
	// GetUserByName matches UserName case-insensitively.
	GetUserByName(ctx context.Context, userName string) (*User, error)
	// ListUsers returns every principal ordered by CreatedAt then ID.
	ListUsers(ctx context.Context) ([]*User, error)
	UpdateUser(ctx context.Context, u *User) error
	// DeleteUser removes the user, its group memberships and its tokens atomically.
	DeleteUser(ctx context.Context, id string) error

	// Groups. Members must exist; a nesting cycle yields ErrInvalid.
	CreateGroup(ctx context.Context, g *Group) error
	GetGroup(ctx context.Context, id string) (*Group, error)
	GetGroupByName(ctx context.Context, displayName string) (*Group, error)
	// ListGroups returns every group ordered by CreatedAt then ID.
	ListGroups(ctx context.Context) ([]*Group, error)
	// UpdateGroup replaces name, external id and the whole member list atomically.
	UpdateGroup(ctx context.Context, g *Group) error
	// DeleteGroup removes the group and every membership that names it.
	DeleteGroup(ctx context.Context, id string) error
	// GroupsOfUser returns the groups the user belongs to, directly and
	// through nesting (transitively), each once, ordered by DisplayName
	// (bytewise) then ID. An unknown user yields ErrNotFound. It never
	// loads members, so it costs the same for a 100,000-member group: a
	// returned group's Members holds the user alone when the membership is
	// direct and is empty when it comes through nesting.
	GroupsOfUser(ctx context.Context, userID string) ([]*Group, error)

	// Tokens.
	CreateToken(ctx context.Context, t *Token) error
	GetToken(ctx context.Context, id string) (*Token, error)
	// ListTokens returns the principal's tokens, revoked and expired ones
	// included, ordered by CreatedAt then ID; none (not an error) for an
	// unknown principal.
	ListTokens(ctx context.Context, principalID string) ([]*Token, error)
	// RevokeToken sets RevokedAt once; revoking again is a no-op that keeps
	// the first time.
	RevokeToken(ctx context.Context, id string, at time.Time) error
	// TouchToken records LastUsedAt; best effort, callers may ignore errors.
	// LastUsedAt never moves backwards.
	TouchToken(ctx context.Context, id string, at time.Time) error

	// Meta is a small key/value space for server state (bootstrap markers,
	// sealed keys). PutMeta with a non-nil expect succeeds only if the current
	// value equals *expect (empty slice: key absent); otherwise ErrConflict.
	// A row written by PutMeta never expires.
	GetMeta(ctx context.Context, key string) ([]byte, error)
	PutMeta(ctx context.Context, key string, value []byte, expect *[]byte) error
	// PutMetaUntil is PutMeta for a row that expires at expiresAt (zero:
	// never). After that time SweepMeta deletes it; until it is swept the row
	// is read and compared like any other, so expiry says when a record may
	// go, not whether it is valid: callers check their own times. With an
	// empty *expect it is a conditional insert, the one-time-use primitive:
	// of all writers of a key, on every replica sharing the store, exactly
	// one succeeds and the others get ErrConflict.
	PutMetaUntil(ctx context.Context, key string, value []byte, expect *[]byte, expiresAt time.Time) error
	// SweepMeta deletes every meta row whose expiry is at or before now and
	// reports how many it deleted. Rows without an expiry are never deleted.
	// Safe to run concurrently on several replicas.
	SweepMeta(ctx context.Context, now time.Time) (int64, error)

	// Roles (AWS-style IAM roles; see Role). Name is unique
	// case-insensitively. UpdateRole replaces every field but ID and
	// CreatedAt, inline policies included, atomically.
	CreateRole(ctx context.Context, r *Role) error
	GetRole(ctx context.Context, id string) (*Role, error)
	// GetRoleByName matches Name case-insensitively.
	GetRoleByName(ctx context.Context, name string) (*Role, error)
	// ListRoles returns every role ordered by CreatedAt then ID.
	ListRoles(ctx context.Context) ([]*Role, error)
	UpdateRole(ctx context.Context, r *Role) error
	DeleteRole(ctx context.Context, id string) error

	// SAML identity providers. Name is unique case-insensitively, EntityID
	// exactly (one provider per issuer).
	CreateSAMLProvider(ctx context.Context, p *SAMLProvider) error
	GetSAMLProvider(ctx context.Context, id string) (*SAMLProvider, error)
	// GetSAMLProviderByName matches Name case-insensitively.
	GetSAMLProviderByName(ctx context.Context, name string) (*SAMLProvider, error)
	// GetSAMLProviderByEntityID matches EntityID exactly.
	GetSAMLProviderByEntityID(ctx context.Context, entityID string) (*SAMLProvider, error)
	// ListSAMLProviders returns every SAML provider ordered by CreatedAt then ID.
	ListSAMLProviders(ctx context.Context) ([]*SAMLProvider, error)
	UpdateSAMLProvider(ctx context.Context, p *SAMLProvider) error
	DeleteSAMLProvider(ctx context.Context, id string) error

	// OIDC identity providers. IssuerURL is unique under OIDCIssuerKey, so
	// two providers never share an ARN.
	CreateOIDCProvider(ctx context.Context, p *OIDCProvider) error
	GetOIDCProvider(ctx context.Context, id string) (*OIDCProvider, error)
	// GetOIDCProviderByIssuer matches IssuerURL exactly (OIDC Core §3.1.3.7
	// compares issuers as exact strings).
	GetOIDCProviderByIssuer(ctx context.Context, issuerURL string) (*OIDCProvider, error)
	// ListOIDCProviders returns every OIDC provider ordered by CreatedAt then ID.
	ListOIDCProviders(ctx context.Context) ([]*OIDCProvider, error)
	UpdateOIDCProvider(ctx context.Context, p *OIDCProvider) error
	DeleteOIDCProvider(ctx context.Context, id string) error

	// Ping checks the backend is reachable (readiness).
	Ping(ctx context.Context) error
	Close() error
}

// Role defaults and limits (AWS IAM CreateRole).
const (
	DefaultRolePath           = "/"
	DefaultMaxSessionDuration = 3600  // seconds
	MinMaxSessionDuration     = 900   // seconds
	MaxMaxSessionDuration     = 43200 // seconds
)

// NamedPolicy is an inline IAM policy: a name unique within its role
// (case-insensitively) and the JSON policy document.
type NamedPolicy struct {
	Name     string `json:"name"`
	Document string `json:"document"`
}

// Role is an AWS-style IAM role that principals assume through the STS API.
// Name is unique case-insensitively. TrustPolicy, the Document of each
// PermissionPolicies entry and PermissionsBoundary (optional) are IAM JSON
// policy documents, kept as the text given. PermissionPolicies keep their
// order. MaxSessionDuration is in seconds.
type Role struct {
	ID                  string            `json:"id"`
	Name                string            `json:"name"`
	Path                string            `json:"path"`
	Description         string            `json:"description,omitempty"`
	TrustPolicy         string            `json:"trustPolicy"`
	PermissionPolicies  []NamedPolicy     `json:"permissionPolicies,omitempty"`
	PermissionsBoundary string            `json:"permissionsBoundary,omitempty"`
	MaxSessionDuration  int               `json:"maxSessionDuration"`
	Tags                map[string]string `json:"tags,omitempty"`
	Revision            int64             `json:"revision"`
	CreatedAt           time.Time         `json:"createdAt"`
	UpdatedAt           time.Time         `json:"updatedAt"`
}

// ARN returns the role's ARN in account: arn:aws:iam::<account>:role<path><name>.
func (r *Role) ARN(accountID string) string {
	path := r.Path
	if path == "" {
		path = DefaultRolePath
	}
	return "arn:aws:iam::" + accountID + ":role" + path + r.Name
}

// Policy returns the inline policy named name (case-insensitively).
func (r *Role) Policy(name string) (NamedPolicy, bool) {
	for _, p := range r.PermissionPolicies {
		if FoldName(p.Name) == FoldName(name) {
			return p, true
		}
	}
	return NamedPolicy{}, false
}

// SAMLProvider is a SAML 2.0 identity provider trusted for
// AssumeRoleWithSAML. MetadataXML is the IdP metadata as uploaded; EntityID
// is the entityID parsed from it, the Issuer of the IdP's responses.
// Binding says how its NameIDs bind to directory users.
type SAMLProvider struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	MetadataXML string    `json:"metadataXml"`
	EntityID    string    `json:"entityId"`
	Binding     Binding   `json:"binding"`
	Revision    int64     `json:"revision"`
	CreatedAt   time.Time `json:"createdAt"`
	UpdatedAt   time.Time `json:"updatedAt"`
}

// ARN returns arn:aws:iam::<account>:saml-provider/<name>.
func (p *SAMLProvider) ARN(accountID string) string {
	return "arn:aws:iam::" + accountID + ":saml-provider/" + p.Name
}

// OIDCProvider is an OpenID Connect issuer trusted for
// AssumeRoleWithWebIdentity. Audiences are the accepted client ids (aud).
// Thumbprints (hex certificate fingerprints) and JWKSURL are optional; an
// empty JWKSURL means discovery. The *Claim fields name the ID token claims
// that carry groups, roles and the user name; empty means the default.
// Binding says how its subjects (sub) bind to directory users.
type OIDCProvider struct {
	ID            string    `json:"id"`
	IssuerURL     string    `json:"issuerUrl"`
	Audiences     []string  `json:"audiences"`
	Thumbprints   []string  `json:"thumbprints,omitempty"`
	JWKSURL       string    `json:"jwksUrl,omitempty"`
	GroupsClaim   string    `json:"groupsClaim,omitempty"`
	RolesClaim    string    `json:"rolesClaim,omitempty"`
	UsernameClaim string    `json:"usernameClaim,omitempty"`
	Binding       Binding   `json:"binding"`
	Revision      int64     `json:"revision"`
	CreatedAt     time.Time `json:"createdAt"`
	UpdatedAt     time.Time `json:"updatedAt"`
}

// ARN returns arn:aws:iam::<account>:oidc-provider/<host/path of issuer>.
func (p *OIDCProvider) ARN(accountID string) string {
	return "arn:aws:iam::" + accountID + ":oidc-provider/" + OIDCIssuerKey(p.IssuerURL)
}

// OIDCIssuerKey returns the form of an issuer URL that names an OIDC
// provider in its ARN, and under which issuers are kept unique: the URL
// without scheme, query, fragment or trailing slash, host in lower case
// (https://Accounts.Example.com/t/ -> accounts.example.com/t). A string
// that is not an absolute URL is returned without trailing slashes.
func OIDCIssuerKey(issuer string) string {
	u, err := url.Parse(issuer)
	if err != nil || u.Host == "" {
		return strings.TrimRight(issuer, "/")
	}
	return strings.ToLower(u.Host) + strings.TrimRight(u.EscapedPath(), "/")
}

// Claim records the one-time use of key until expiresAt with a conditional
// insert (PutMetaUntil with an empty expect) and reports whether this call
// was the first: of all callers on every replica sharing st, exactly one
// gets true for a key until the sweeper deletes it after expiresAt. Keys
// should be fixed-size (hashes) so that untrusted input costs the same.
func Claim(ctx context.Context, st Store, key string, expiresAt time.Time) (bool, error) {
	empty := []byte{}
	err := st.PutMetaUntil(ctx, key, []byte{1}, &empty, expiresAt)
	if errors.Is(err, ErrConflict) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, nil
}

// GroupMemberStore changes a group's direct members one by one, without
// reading or rewriting its member list, so the cost of adding or removing
// a member does not grow with the group's size (issue 12 §1: a SCIM PATCH
// adding one member to a 100,000-member group). Both concrete stores
// implement it beside Store; a wrapper that must observe membership changes
// (the server's revoking store) implements it too, and a caller that finds
// it missing falls back to UpdateGroup.
type GroupMemberStore interface {
	// PatchGroupMembers adds the members in add, then removes those in
	// remove, from the direct members of group id, atomically, if revision
	// is current (zero: whatever is current, since such changes commute).
	// Added members are appended after the existing ones; a member already
	// present, or a removed member that is absent, changes nothing. Add
	// follows UpdateGroup's rules: a member must exist, an empty Type is
	// resolved, a nesting cycle yields ErrInvalid. The revision is bumped
	// once if anything changed. It returns the group as stored afterwards,
	// without its members (Members is empty), and the members it actually
	// added and removed.
	PatchGroupMembers(ctx context.Context, id string, revision int64, add, remove []Member) (*GroupPatch, error)
}

// GroupPatch is the outcome of PatchGroupMembers: the group record without
// members, and the direct members that the call added and removed.
type GroupPatch struct {
	Group          *Group
	Added, Removed []Member
}

// ExternalIDStore finds users and groups by ExternalID through an index,
// so the lookup that provisioning clients send before each create (SCIM
// "externalId eq") does not read the directory. Both concrete stores
// implement it beside Store; callers that find it missing list instead.
type ExternalIDStore interface {
	// UsersByExternalID returns the principals whose ExternalID equals id
	// exactly, ordered by CreatedAt then ID; none for an empty id.
	UsersByExternalID(ctx context.Context, id string) ([]*User, error)
	// GroupsByExternalID returns the groups, with their members, whose
	// ExternalID equals id exactly, ordered by CreatedAt then ID; none for
	// an empty id.
	GroupsByExternalID(ctx context.Context, id string) ([]*Group, error)
}
