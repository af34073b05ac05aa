// Package credentials mints and verifies gatehouse's temporary AWS-style
// credentials: an access key id, a secret access key and a session token.
//
// The credentials are stateless (DESIGN invariant 3): the session token is
// an authenticated-encrypted claim set that any replica can open with the
// shared Keyring, and the secret access key is derived from the keyring key
// and the access key id, so no session table is needed to verify a SigV4
// request. Revocation is the exception, kept deliberately small: a per-user
// not-before time and a per-session deny list in the store, cached for at
// most a couple of seconds on each replica (see Revoker).
//
// Session token layout (all replicas must agree; see
// docs/design/0006-session-credentials.md):
//
//	token  = base64url-nopad( 0x01 || key id (4 bytes) || nonce (24 bytes) || XChaCha20-Poly1305(claims JSON) )
//	aad    = "gatehouse/sts/session-token/v1" || 0x01 || key id
//	secret = base64std( HMAC-SHA256(K_secret, "gatehouse/sts/secret/v1" || 0 || akid || 0 || session id)[:30] )
//
// where K_aead and K_secret are HKDF-SHA256 subkeys of the keyring key named
// by key id.
package credentials

import (
	"errors"
	"time"
)

// Limits, after AWS STS.
const (
	// MinSessionDuration is the shortest session (AWS: 900 s).
	MinSessionDuration = 15 * time.Minute
	// MaxSessionDuration is the longest session any role can allow (AWS: 12 h).
	MaxSessionDuration = 12 * time.Hour
	// MaxChainedDuration caps sessions obtained by role chaining (AWS: 1 h).
	MaxChainedDuration = time.Hour
	// MaxChainDepth bounds how many times a session can be chained.
	MaxChainDepth = 8
	// ClockSkew is the tolerance on expiry and issue times between replicas.
	ClockSkew = 5 * time.Second
	// maxTokenLen bounds the decoding work for untrusted input.
	maxTokenLen = 16 << 10
)

// Claims is everything a session token asserts. Any replica recovers it
// from the token alone.
type Claims struct {
	Version     int    `json:"v"`
	KeyID       string `json:"-"` // keyring key that sealed the token; from the token header
	AccessKeyID string `json:"ak"`
	// SessionID is unique per issued session; the deny list is keyed by it.
	SessionID string `json:"sid"`
	// PrincipalID is the gatehouse user id of the end user (the per-user
	// not-before time is keyed by it); UserName their user name.
	PrincipalID string `json:"pid"`
	UserName    string `json:"un"`
	// SourceIdentity is AWS's sts:SourceIdentity: set once, kept through chaining.
	SourceIdentity  string `json:"si,omitempty"`
	RoleARN         string `json:"ra"`
	RoleSessionName string `json:"rsn"`
	// AssumedRoleID is "<role id>:<role session name>", as in AWS.
	AssumedRoleID string `json:"arid,omitempty"`
	// SessionPolicy is an inline IAM policy (JSON) intersected with the
	// role's policies; PolicyARNs are managed session policies.
	SessionPolicy     string            `json:"sp,omitempty"`
	PolicyARNs        []string          `json:"pa,omitempty"`
	SessionTags       map[string]string `json:"st,omitempty"`
	TransitiveTagKeys []string          `json:"ttk,omitempty"`
	Groups            []string          `json:"g,omitempty"`
	IssuedAt          time.Time         `json:"iat"`
	Expiry            time.Time         `json:"exp"`
	// ChainDepth is 0 for a session from AssumeRoleWith{SAML,WebIdentity} or
	// a gatehouse login, n for a session chained n times. ChainedFrom lists
	// the session ids of its ancestors, root first: revoking any of them
	// revokes this session too.
	ChainDepth  int      `json:"cd,omitempty"`
	ChainedFrom []string `json:"cf,omitempty"`
	// RoleLimit is the role restriction of the sign-in that minted the
	// session (the SAML assertion's Role list, the web identity token's
	// roles claim, a restricted gatehouse token): nil means none, and a
	// token sealed before this field existed has none. A chained session
	// keeps its parent's. The decision point (decision.Session.RoleLimit)
	// decides what it admits.
	RoleLimit *RoleLimit `json:"rl,omitempty"`
}

// RoleLimit lists the only roles a restricted session may act as. An
// empty list admits no role but the session's own. It is data: the
// decision point alone decides what it admits.
type RoleLimit struct {
	RoleARNs []string `json:"r"`
}

// NewRoleLimit returns the restriction to roleARNs (copied); an empty list
// still restricts.
func NewRoleLimit(roleARNs []string) *RoleLimit {
	return &RoleLimit{RoleARNs: append([]string{}, roleARNs...)}
}

// Credentials are what STS returns to the caller.
type Credentials struct {
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string
	Expiration      time.Time
	// SessionID identifies the session for audit and RevokeSession.
	SessionID string
}

// Error codes, as in AWS STS and S3 error responses.
const (
	CodeExpiredToken         = "ExpiredToken"
	CodeInvalidClientTokenID = "InvalidClientTokenId"
	CodeAccessDenied         = "AccessDenied"
	CodeValidationError      = "ValidationError"
	CodeInternalFailure      = "InternalFailure"
)

// Error is returned by Issue and Verify. Code is stable; Message is safe to
// show to the caller and never contains a token, a secret or key material.
// Err is the internal cause, for logs.
type Error struct {
	Code    string
	Message string
	Err     error
}

func (e *Error) Error() string {
	s := "credentials: " + e.Code + ": " + e.Message
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// Sentinel causes, testable with errors.Is.
var (
	ErrMalformed   = errors.New("session token malformed")
	ErrUnknownKey  = errors.New("session token sealed with an unknown or retired key")
	ErrForged      = errors.New("session token does not authenticate")
	ErrKeyMismatch = errors.New("access key id does not match the session token")
	ErrExpired     = errors.New("session expired")
	ErrRevoked     = errors.New("session revoked")
)

func errInvalid(cause error) *Error {
	return &Error{Code: CodeInvalidClientTokenID, Message: "The security token included in the request is invalid.", Err: cause}
}

func errValidation(msg string) *Error {
	return &Error{Code: CodeValidationError, Message: msg}
}
