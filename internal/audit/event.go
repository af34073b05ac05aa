// Package audit is gatehouse's one audit emitter: typed events with stable
// codes, appended to a hash-chained log with Ed25519-signed checkpoints.
//
// Every plane writes through an Emitter. Emit returns only once the event is
// durable under the configured mode (sync: fsynced on its own; group: fsynced
// with its batch). If Emit returns an error the caller must fail the request:
// an access that cannot be recorded does not happen (fail closed).
package audit

import (
	"context"
	"time"
)

// Code is a stable event code. Codes never change meaning once released;
// add new ones instead.
type Code string

// Stable event codes. The prefix names the plane.
const (
	CodeLoginSucceeded  Code = "GH1000I"
	CodeLoginFailed     Code = "GH1001W"
	CodeTokenCreated    Code = "GH1010I"
	CodeTokenRevoked    Code = "GH1011I"
	CodeAuthDenied      Code = "GH1020W" // bad/expired/revoked bearer token, disabled principal
	CodeBootstrap       Code = "GH1030I"
	CodeLinkCreated     Code = "GH1050I" // a federated identity (provider, subject) was linked to a directory user
	CodeLinkDeleted     Code = "GH1051I"
	CodeUserCreated     Code = "GH2000I"
	CodeUserUpdated     Code = "GH2001I"
	CodeUserDeleted     Code = "GH2002I"
	CodeUserDisabled    Code = "GH2003I"
	CodeGroupCreated    Code = "GH2010I"
	CodeGroupUpdated    Code = "GH2011I"
	CodeGroupDeleted    Code = "GH2012I"
	CodeAdminDenied     Code = "GH2090W" // authenticated but not allowed
	CodeRequestRejected Code = "GH2091W" // malformed input refused, nothing changed
	// Credentials plane: IAM roles and the identity providers they trust.
	CodeRoleCreated     Code = "GH3000I"
	CodeRoleUpdated     Code = "GH3001I" // fields, trust policy or inline policies changed
	CodeRoleDeleted     Code = "GH3002I"
	CodeProviderCreated Code = "GH3010I" // SAML or OIDC provider; Resource.Type says which
	CodeProviderUpdated Code = "GH3011I"
	CodeProviderDeleted Code = "GH3012I"
	CodePolicyCreated   Code = "GH3020I" // customer-managed IAM policy (STS PolicyArns)
	CodePolicyUpdated   Code = "GH3021I"
	CodePolicyDeleted   Code = "GH3022I"
	CodeSTSIssued       Code = "GH4000I" // STS issued temporary credentials
	CodeSTSDenied       Code = "GH4001W" // STS refused a federation, AssumeRole or signed call
	CodeSTSRevoked      Code = "GH4010I" // an admin revoked an STS session or every session of a user
	// CodeAuthzMessageDecoded: an admin decoded an encoded authorization failure message.
	CodeAuthzMessageDecoded Code = "GH5020I"
	// S3 gateway data events; Details["cloudTrail"] holds the CloudTrail-shaped record.
	CodeS3Access      Code = "GH5000I" // an authorized S3 request, recorded before it takes effect
	CodeS3Denied      Code = "GH5001W" // an S3 request refused: bad signature, unknown credentials, policy denial
	CodeS3Failed      Code = "GH5002W" // an authorized S3 request that then failed (backend, body check, client gone)
	CodeMountCreated  Code = "GH5010I" // an admin bound an S3 bucket prefix to a role (mount)
	CodeMountUpdated  Code = "GH5011I"
	CodeMountDeleted  Code = "GH5012I"
	CodeServerStarted Code = "GH9000I"
	CodeServerStopped Code = "GH9001I"
)

// Privilege assignments (admin, scim), held outside the directory
// (docs/design/0015-admin-privilege.md).
const (
	CodePrivilegeGranted Code = "GH1040I"
	CodePrivilegeRevoked Code = "GH1041I"
)

// CodeS3DeniedAggregated counts the unauthenticated S3 denials of one source
// and error code in one window after the first, which is recorded as
// GH5001W; Details["aggregate"] holds the count (see Aggregator).
const CodeS3DeniedAggregated Code = "GH5003W"

// CodeLoginThrottledAggregated counts the sign-in attempts refused by the
// throttle (or for want of a hashing slot) from one source for one reason
// in one window after the first, which is recorded as GH1001W.
const CodeLoginThrottledAggregated Code = "GH1002W"

// Summaries of the other planes' denials of requests that carried no valid
// credentials, one Aggregator per plane (see Aggregator): each counts, per
// source and error code and window, the denials after the first, which is
// recorded under its own code.
const (
	// CodeLoginFailedAggregated counts web sign-in failures (SAML ACS, OIDC
	// callback) refused before any identity was established (first: GH1001W).
	CodeLoginFailedAggregated Code = "GH1003W"
	// CodeAuthDeniedAggregated counts REST API (/api/v1, including
	// /api/v1/me) and SCIM requests refused without valid credentials
	// (first: GH1020W, or GH2091W for malformed anonymous input).
	CodeAuthDeniedAggregated Code = "GH1021W"
	// CodeSTSDeniedAggregated counts STS calls refused before any caller
	// was identified: unsigned or badly signed calls, unverifiable
	// assertions and tokens, malformed requests (first: GH4001W).
	CodeSTSDeniedAggregated Code = "GH4002W"
)

// Decision is the outcome recorded with an event.
type Decision string

const (
	Allow Decision = "allow"
	Deny  Decision = "deny"
	Error Decision = "error"
)

// Actor is who did it. User is the end user (or service principal);
// Impersonator is set when someone acted on the user's behalf.
type Actor struct {
	UserID       string `json:"userId,omitempty"`
	User         string `json:"user,omitempty"`
	Impersonator string `json:"impersonator,omitempty"`
	SourceIP     string `json:"sourceIp,omitempty"`
	UserAgent    string `json:"userAgent,omitempty"`
	// AuthMethod: "token", "session", "password", "scim", "system", ...
	AuthMethod string `json:"authMethod,omitempty"`
	// SessionID is the id of the session or token the actor used, when
	// there is one (a web session, a personal access token, an STS session).
	SessionID string `json:"sessionId,omitempty"`
	// AccessKeyID is the access key id of a SigV4-signed request.
	AccessKeyID string `json:"accessKeyId,omitempty"`
}

// Resource is what was acted upon.
type Resource struct {
	Type string `json:"type"`           // "user", "group", "token", "server", ...
	ID   string `json:"id,omitempty"`   // stable id
	Name string `json:"name,omitempty"` // human name at the time of the event
}

// Event is one audit record's payload. Events are built only through
// NewEvent (builder.go); a CI check refuses Event literals elsewhere. Action is a dotted verb such as
// "scim.user.create" or "api.token.revoke". Details holds extra typed fields;
// secrets never go in it (record keyed hashes instead).
type Event struct {
	Code      Code      `json:"code"`
	Action    string    `json:"action"`
	Time      time.Time `json:"time"`
	RequestID string    `json:"requestId,omitempty"`
	// ClientRequestID is the request id the client sent (X-Request-Id),
	// recorded as its own field and never adopted as RequestID.
	ClientRequestID string         `json:"clientRequestId,omitempty"`
	Actor           Actor          `json:"actor"`
	Resource        Resource       `json:"resource"`
	Decision        Decision       `json:"decision"`
	Reason          string         `json:"reason,omitempty"`
	Details         map[string]any `json:"details,omitempty"`
}

// Emitter is the one audit write path. Implementations fill Time when zero.
type Emitter interface {
	Emit(ctx context.Context, e Event) error
}
