package s3gw

import (
	"context"
	"strings"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/sts/credentials"
)

// record emits the request's data event. The CloudTrail-shaped record
// (CloudTrail "Data events" record contents for Amazon S3) is in
// Details["cloudTrail"]; the audit Event's own fields carry the end user so
// that search by user works the same as for every other plane.
func (g *Gateway) record(ctx context.Context, rq *request, code audit.Code, e *Error) error {
	ev := audit.Event{
		Code:      code,
		Action:    "s3." + rq.op,
		Time:      g.now().UTC(),
		RequestID: rq.id,
		Actor: audit.Actor{
			SourceIP:   sourceIP(rq.r),
			UserAgent:  rq.r.UserAgent(),
			AuthMethod: "sigv4",
		},
		Resource: audit.Resource{Type: "s3", Name: rq.resource()},
		Decision: audit.Allow,
		Details:  map[string]any{},
	}
	if c := rq.claims; c != nil {
		ev.Actor.UserID, ev.Actor.User = c.PrincipalID, c.UserName
	}
	switch {
	case code == audit.CodeS3Denied && e != nil && e.Status >= 500:
		ev.Decision = audit.Error
	case code == audit.CodeS3Denied:
		ev.Decision = audit.Deny
	case code == audit.CodeS3Failed:
		ev.Decision = audit.Error
	}
	if e != nil {
		ev.Reason = e.Code + ": " + e.Message
		if rq.denyReason != "" {
			ev.Reason = rq.denyReason
		}
	} else if len(rq.decisions) > 0 {
		ev.Reason = strings.Join(rq.decisions, "; ")
	}
	ct := map[string]any{
		"eventVersion":      "1.09",
		"eventSource":       "s3.amazonaws.com",
		"eventName":         rq.op,
		"eventTime":         ev.Time.Format("2006-01-02T15:04:05Z"),
		"eventType":         "AwsApiCall",
		"eventCategory":     "Data",
		"managementEvent":   false,
		"readOnly":          rq.readOnly,
		"awsRegion":         g.o.Region,
		"requestID":         rq.id,
		"sourceIPAddress":   ev.Actor.SourceIP,
		"userAgent":         ev.Actor.UserAgent,
		"requestParameters": rq.requestParameters(),
		"bytesTransferred":  rq.bytesIn + rq.bytesOut,
		"additionalEventData": map[string]any{
			"bytesTransferredIn":  rq.bytesIn,
			"bytesTransferredOut": rq.bytesOut,
			"SignatureVersion":    "SigV4",
			"AuthenticationMethod": func() string {
				if rq.res != nil && rq.res.Presigned {
					return "QueryString"
				}
				return "AuthHeader"
			}(),
		},
	}
	if rq.claims != nil {
		ct["userIdentity"] = userIdentity(rq.claims, rq.res.AccessKeyID)
	} else {
		ct["userIdentity"] = map[string]any{"type": "Unknown"}
	}
	if len(rq.mounts) > 0 {
		ms := make([]map[string]any, 0, len(rq.mounts))
		for _, m := range rq.mounts {
			ms = append(ms, map[string]any{"id": m.ID, "bucket": m.Bucket, "prefix": m.Prefix, "roleArn": m.RoleARN})
		}
		ct["additionalEventData"].(map[string]any)["mounts"] = ms
		ev.Details["mountRoles"] = ms
	}
	if e != nil {
		ct["errorCode"] = e.Code
		ct["errorMessage"] = e.Message
	}
	if arn := rq.resource(); arn != "" {
		typ := "AWS::S3::Bucket"
		if rq.key != "" {
			typ = "AWS::S3::Object"
		}
		ct["resources"] = []map[string]any{{"type": typ, "ARN": arn}}
	}
	ev.Details["cloudTrail"] = ct
	return g.o.Audit.Emit(ctx, ev)
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

func (rq *request) requestParameters() map[string]any {
	p := map[string]any{}
	if rq.bucket != "" {
		p["bucketName"] = rq.bucket
	}
	if rq.key != "" {
		p["key"] = rq.key
	}
	if h := rq.r.Host; h != "" {
		p["Host"] = h
	}
	if rg := rq.r.Header.Get("Range"); rg != "" {
		p["range"] = rg
	}
	for k, v := range rq.params {
		p[k] = v
	}
	return p
}

// userIdentity is the CloudTrail userIdentity of an assumed-role session;
// sourceIdentity names the end user.
func userIdentity(c *credentials.Claims, accessKeyID string) map[string]any {
	account, roleName := splitRoleARN(c.RoleARN)
	sourceIdentity := c.SourceIdentity
	if sourceIdentity == "" {
		sourceIdentity = c.UserName
	}
	return map[string]any{
		"type":           "AssumedRole",
		"principalId":    c.AssumedRoleID,
		"arn":            "arn:aws:sts::" + account + ":assumed-role/" + roleName + "/" + c.RoleSessionName,
		"accountId":      account,
		"accessKeyId":    accessKeyID,
		"sourceIdentity": sourceIdentity,
		"userName":       c.UserName,
		"sessionContext": map[string]any{
			"sessionIssuer": map[string]any{
				"type":        "Role",
				"principalId": strings.SplitN(c.AssumedRoleID, ":", 2)[0],
				"arn":         c.RoleARN,
				"accountId":   account,
				"userName":    roleName,
			},
			"attributes": map[string]any{
				"creationDate":     c.IssuedAt.UTC().Format("2006-01-02T15:04:05Z"),
				"mfaAuthenticated": "false",
			},
			"sourceIdentity": sourceIdentity,
			"sessionId":      c.SessionID,
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
