package s3gw

import (
	"context"
	"strings"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/requestid"
	"github.com/gatehouse-dev/gatehouse/internal/sts/credentials"
)

// record emits the request's data event. The CloudTrail-shaped record
// (CloudTrail "Data events" record contents for Amazon S3) is in
// Details["cloudTrail"]; the audit Event's own fields carry the end user so
// that search by user works the same as for every other plane.
func (g *Gateway) record(ctx context.Context, rq *request, code audit.Code, e *Error) error {
	return g.o.Audit.Emit(ctx, g.event(rq, code, e))
}

// recordRefusal emits the denial of a request refused before its access
// event. A request without verified credentials goes through the denial
// aggregator (one record per source and error code per window, the rest
// counted), so that a flood of cheap, anonymous requests costs the audit
// log a bounded amount; an authenticated request keeps its own record.
// Genuine credentials refused as revoked are aggregated per access key, so
// each refused user is still named.
func (g *Gateway) recordRefusal(ctx context.Context, rq *request, e *Error) error {
	ev := g.event(rq, audit.CodeS3Denied, e)
	if rq.claims != nil {
		return g.o.Audit.Emit(ctx, ev)
	}
	code := e.Code
	if rq.refusedAs != nil {
		code += "/" + rq.refusedAs.AccessKeyID
	}
	return g.denials.Deny(ctx, ev, audit.SourceKey(ev.Actor.SourceIP), code)
}

// event builds the request's audit event. Every value the caller chose
// (User-Agent, Host, Range, key, query parameters, access key id, and the
// messages that may quote them) is clipped (audit.Clip), so that no request
// decides how large its record is.
func (g *Gateway) event(rq *request, code audit.Code, e *Error) audit.Event {
	identified := rq.claims
	if identified == nil {
		identified = rq.refusedAs
	}
	akid := audit.Clip(rq.accessKeyID, maxAccessKeyID)
	actor := audit.Actor{AuthMethod: "sigv4", AccessKeyID: akid}
	if c := identified; c != nil {
		actor.UserID, actor.User, actor.SessionID = c.PrincipalID, c.UserName, c.SessionID
	}
	ip, ua, arn := sourceIP(rq.r), audit.Clip(rq.r.UserAgent(), audit.MaxUserAgent), audit.Clip(rq.resource(), audit.MaxField)
	b := audit.NewEvent(g.now, code, "s3."+rq.op).RequestIDs(rq.id, requestid.ClientFrom(rq.r.Context())).
		Actor(actor).Source(ip, ua).Resource(audit.Resource{Type: "s3", Name: arn})
	reason := ""
	if e != nil {
		reason = e.Code + ": " + e.Message
		if rq.denyReason != "" {
			reason = rq.denyReason
		}
	} else if len(rq.decisions) > 0 {
		reason = strings.Join(rq.decisions, "; ")
	}
	switch {
	case code == audit.CodeS3Denied && e != nil && e.Status >= 500, code == audit.CodeS3Failed:
		b.Fail(reason)
	case code == audit.CodeS3Denied:
		b.Deny(reason)
	default:
		b.Outcome(audit.Allow, reason)
	}
	ct := &cloudTrailRecord{
		EventVersion:      "1.09",
		EventSource:       "s3.amazonaws.com",
		EventName:         rq.op,
		AWSRegion:         g.o.Region,
		SourceIPAddress:   ip,
		UserAgent:         ua,
		RequestParameters: rq.requestParameters(),
		AdditionalEventData: ctAdditionalEventData{
			BytesTransferredIn:   rq.bytesIn,
			BytesTransferredOut:  rq.bytesOut,
			SignatureVersion:     "SigV4",
			AuthenticationMethod: authenticationMethod(rq.presigned),
		},
		RequestID:        rq.id,
		ReadOnly:         rq.readOnly,
		EventType:        "AwsApiCall",
		ManagementEvent:  false,
		EventCategory:    "Data",
		BytesTransferred: rq.bytesIn + rq.bytesOut,
	}
	switch {
	case identified != nil:
		ct.UserIdentity = userIdentity(identified, akid)
	case akid != "":
		ct.UserIdentity = &ctUserIdentity{Type: ctUnknownIdentity.Type, AccessKeyID: akid}
	default:
		ct.UserIdentity = ctUnknownIdentity
	}
	if len(rq.mounts) > 0 {
		ms := make([]ctMount, 0, len(rq.mounts))
		for _, m := range rq.mounts {
			ms = append(ms, ctMount{ID: m.ID, Bucket: m.Bucket, Prefix: m.Prefix, RoleARN: m.RoleARN})
		}
		ct.AdditionalEventData.Mounts = ms
		b.Detail("mountRoles", ms)
	}
	if e != nil {
		ct.ErrorCode, ct.ErrorMessage = e.Code, audit.Clip(e.Message, audit.MaxField)
	}
	if arn != "" {
		typ := "AWS::S3::Bucket"
		if rq.key != "" {
			typ = "AWS::S3::Object"
		}
		ct.Resources = []ctResource{{Type: typ, ARN: arn}}
	}
	ev := b.Detail("cloudTrail", ct).Event()
	// The record's time is the event's own, stamped by the builder; ct is
	// shared by pointer with ev.Details, so setting it here is setting it there.
	ct.EventTime = ev.Time.Format("2006-01-02T15:04:05Z")
	return ev
}

// maxAccessKeyID bounds a recorded access key id (AWS: 16 to 128 characters).
const maxAccessKeyID = 128

// authenticationMethod is CloudTrail's additionalEventData
// AuthenticationMethod: QueryString for a presigned URL, else AuthHeader.
func authenticationMethod(presigned bool) string {
	if presigned {
		return "QueryString"
	}
	return "AuthHeader"
}

func (rq *request) resource() string {
	switch {
	case rq.bucket == "":
		return ""
	case rq.key == "":
		return bucketARN(rq.bucket)
	}
	return objectARN(rq.bucket, rq.key)
}

// requestParameters is CloudTrail's requestParameters, every value clipped.
func (rq *request) requestParameters() map[string]any {
	p := map[string]any{}
	put := func(k, v string) {
		if v != "" {
			p[k] = audit.Clip(v, audit.MaxField)
		}
	}
	put("bucketName", rq.bucket)
	put("key", rq.key)
	put("Host", rq.r.Host)
	put("range", rq.r.Header.Get("Range"))
	if len(rq.existingTagKeys) > 0 {
		p["existingObjectTagKeys"] = rq.existingTagKeys
	}
	for k, v := range rq.params {
		if s, ok := v.(string); ok {
			put(k, s)
		} else {
			p[k] = v
		}
	}
	return p
}

// cloudTrailRecord is a CloudTrail "data event" record for Amazon S3, its
// fields in CloudTrail's order. Typed (not maps) because one is encoded for
// every request.
type cloudTrailRecord struct {
	EventVersion        string                `json:"eventVersion"`
	UserIdentity        *ctUserIdentity       `json:"userIdentity"`
	EventTime           string                `json:"eventTime"`
	EventSource         string                `json:"eventSource"`
	EventName           string                `json:"eventName"`
	AWSRegion           string                `json:"awsRegion"`
	SourceIPAddress     string                `json:"sourceIPAddress"`
	UserAgent           string                `json:"userAgent"`
	ErrorCode           string                `json:"errorCode,omitempty"`
	ErrorMessage        string                `json:"errorMessage,omitempty"`
	RequestParameters   map[string]any        `json:"requestParameters"`
	AdditionalEventData ctAdditionalEventData `json:"additionalEventData"`
	RequestID           string                `json:"requestID"`
	ReadOnly            bool                  `json:"readOnly"`
	Resources           []ctResource          `json:"resources,omitempty"`
	EventType           string                `json:"eventType"`
	ManagementEvent     bool                  `json:"managementEvent"`
	EventCategory       string                `json:"eventCategory"`
	BytesTransferred    int64                 `json:"bytesTransferred"`
}

type ctAdditionalEventData struct {
	SignatureVersion     string    `json:"SignatureVersion"`
	AuthenticationMethod string    `json:"AuthenticationMethod"`
	BytesTransferredIn   int64     `json:"bytesTransferredIn"`
	BytesTransferredOut  int64     `json:"bytesTransferredOut"`
	Mounts               []ctMount `json:"mounts,omitempty"`
}

type ctMount struct {
	ID      string `json:"id"`
	Bucket  string `json:"bucket"`
	Prefix  string `json:"prefix"`
	RoleARN string `json:"roleArn"`
}

type ctResource struct {
	Type string `json:"type"`
	ARN  string `json:"ARN"`
}

type ctUserIdentity struct {
	Type           string            `json:"type"`
	PrincipalID    string            `json:"principalId,omitempty"`
	ARN            string            `json:"arn,omitempty"`
	AccountID      string            `json:"accountId,omitempty"`
	AccessKeyID    string            `json:"accessKeyId,omitempty"`
	UserName       string            `json:"userName,omitempty"`
	SourceIdentity string            `json:"sourceIdentity,omitempty"`
	SessionContext *ctSessionContext `json:"sessionContext,omitempty"`
}

type ctSessionContext struct {
	SessionIssuer  ctSessionIssuer `json:"sessionIssuer"`
	Attributes     ctAttributes    `json:"attributes"`
	SourceIdentity string          `json:"sourceIdentity"`
	SessionID      string          `json:"sessionId"`
}

type ctSessionIssuer struct {
	Type        string `json:"type"`
	PrincipalID string `json:"principalId"`
	ARN         string `json:"arn"`
	AccountID   string `json:"accountId"`
	UserName    string `json:"userName"`
}

type ctAttributes struct {
	CreationDate     string `json:"creationDate"`
	MFAAuthenticated string `json:"mfaAuthenticated"`
}

// ctUnknownIdentity is the userIdentity of a request whose credentials did
// not verify.
var ctUnknownIdentity = &ctUserIdentity{Type: "Unknown"}

// userIdentity is the CloudTrail userIdentity of an assumed-role session;
// sourceIdentity names the end user.
func userIdentity(c *credentials.Claims, accessKeyID string) *ctUserIdentity {
	account, roleName := splitRoleARN(c.RoleARN)
	sourceIdentity := c.SourceIdentity
	if sourceIdentity == "" {
		sourceIdentity = c.UserName
	}
	return &ctUserIdentity{
		Type:           "AssumedRole",
		PrincipalID:    c.AssumedRoleID,
		ARN:            "arn:aws:sts::" + account + ":assumed-role/" + roleName + "/" + c.RoleSessionName,
		AccountID:      account,
		AccessKeyID:    accessKeyID,
		SourceIdentity: sourceIdentity,
		UserName:       c.UserName,
		SessionContext: &ctSessionContext{
			SessionIssuer: ctSessionIssuer{
				Type:        "Role",
				PrincipalID: strings.SplitN(c.AssumedRoleID, ":", 2)[0],
				ARN:         c.RoleARN,
				AccountID:   account,
				UserName:    roleName,
			},
			Attributes: ctAttributes{
				CreationDate:     c.IssuedAt.UTC().Format("2006-01-02T15:04:05Z"),
				MFAAuthenticated: "false",
			},
			SourceIdentity: sourceIdentity,
			SessionID:      c.SessionID,
		},
	}
}

// splitRoleARN returns the account and the role name (without path) of
// arn:aws:iam::<account>:role/<path/><name>.
func splitRoleARN(arn string) (account, name string) {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) < 6 {
		return "", arn
	}
	res := parts[5]
	if i := strings.LastIndexByte(res, '/'); i >= 0 {
		res = res[i+1:]
	}
	return parts[4], res
}
