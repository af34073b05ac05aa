// Package store defines gatehouse's metadata persistence contract.
//
// Implementations live in store/sqlite (the embedded default) and
// store/postgres (shared by several replicas). Both must pass the one
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
	// (bytewise) then ID. An unknown user yields ErrNotFound.
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
	GetMeta(ctx context.Context, key string) ([]byte, error)
	PutMeta(ctx context.Context, key string, value []byte, expect *[]byte) error

	// Ping checks the backend is reachable (readiness).
	Ping(ctx context.Context) error
	Close() error
}
