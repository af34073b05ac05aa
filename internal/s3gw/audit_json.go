package s3gw

import (
	"strconv"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
)

// The CloudTrail record of every S3 request is encoded by hand: through
// encoding/json it was the largest cost of the audit on the hot path (issue
// 13). The output is what encoding/json writes for the same value (fields in
// struct order, omitempty honoured); TestCloudTrailAppendJSON compares them.

var _ audit.JSONAppender = (*cloudTrailRecord)(nil)

// jw appends JSON members to a buffer; the first error sticks.
type jw struct {
	b     []byte
	first bool
	err   error
}

func (w *jw) key(k string) {
	if !w.first {
		w.b = append(w.b, ',')
	}
	w.first = false
	w.b = append(w.b, '"')
	w.b = append(w.b, k...)
	w.b = append(w.b, '"', ':')
}

func (w *jw) open()  { w.b, w.first = append(w.b, '{'), true }
func (w *jw) close() { w.b, w.first = append(w.b, '}'), false }

func (w *jw) str(k, v string) {
	w.key(k)
	w.b = audit.AppendJSONString(w.b, v)
}

func (w *jw) optStr(k, v string) {
	if v != "" {
		w.str(k, v)
	}
}

func (w *jw) num(k string, v int64) {
	w.key(k)
	w.b = strconv.AppendInt(w.b, v, 10)
}

func (w *jw) boolean(k string, v bool) {
	w.key(k)
	w.b = strconv.AppendBool(w.b, v)
}

func (w *jw) value(k string, v any) {
	w.key(k)
	if w.err == nil {
		w.b, w.err = audit.AppendJSONValue(w.b, v)
	}
}

// AppendJSON appends the record as encoding/json would encode it.
func (c *cloudTrailRecord) AppendJSON(dst []byte) ([]byte, error) {
	w := &jw{b: dst}
	w.open()
	w.str("eventVersion", c.EventVersion)
	w.key("userIdentity")
	c.UserIdentity.appendJSON(w)
	w.str("eventTime", c.EventTime)
	w.str("eventSource", c.EventSource)
	w.str("eventName", c.EventName)
	w.str("awsRegion", c.AWSRegion)
	w.str("sourceIPAddress", c.SourceIPAddress)
	w.str("userAgent", c.UserAgent)
	w.optStr("errorCode", c.ErrorCode)
	w.optStr("errorMessage", c.ErrorMessage)
	if c.RequestParameters == nil {
		w.value("requestParameters", nil)
	} else {
		w.key("requestParameters")
		if w.err == nil {
			w.b, w.err = audit.AppendJSONObject(w.b, c.RequestParameters)
		}
	}
	w.key("additionalEventData")
	a := &c.AdditionalEventData
	w.open()
	w.str("SignatureVersion", a.SignatureVersion)
	w.str("AuthenticationMethod", a.AuthenticationMethod)
	w.num("bytesTransferredIn", a.BytesTransferredIn)
	w.num("bytesTransferredOut", a.BytesTransferredOut)
	if len(a.Mounts) > 0 {
		w.value("mounts", a.Mounts)
	}
	w.close()
	w.str("requestID", c.RequestID)
	w.boolean("readOnly", c.ReadOnly)
	if len(c.Resources) > 0 {
		w.key("resources")
		w.b = append(w.b, '[')
		for i, r := range c.Resources {
			if i > 0 {
				w.b = append(w.b, ',')
			}
			w.open()
			w.str("type", r.Type)
			w.str("ARN", r.ARN)
			w.close()
		}
		w.b = append(w.b, ']')
	}
	w.str("eventType", c.EventType)
	w.boolean("managementEvent", c.ManagementEvent)
	w.str("eventCategory", c.EventCategory)
	w.num("bytesTransferred", c.BytesTransferred)
	w.close()
	return w.b, w.err
}

func (u *ctUserIdentity) appendJSON(w *jw) {
	if u == nil {
		w.b = append(w.b, "null"...)
		w.first = false
		return
	}
	w.open()
	w.str("type", u.Type)
	w.optStr("principalId", u.PrincipalID)
	w.optStr("arn", u.ARN)
	w.optStr("accountId", u.AccountID)
	w.optStr("accessKeyId", u.AccessKeyID)
	w.optStr("userName", u.UserName)
	w.optStr("sourceIdentity", u.SourceIdentity)
	if s := u.SessionContext; s != nil {
		w.key("sessionContext")
		w.open()
		w.key("sessionIssuer")
		w.open()
		w.str("type", s.SessionIssuer.Type)
		w.str("principalId", s.SessionIssuer.PrincipalID)
		w.str("arn", s.SessionIssuer.ARN)
		w.str("accountId", s.SessionIssuer.AccountID)
		w.str("userName", s.SessionIssuer.UserName)
		w.close()
		w.key("attributes")
		w.open()
		w.str("creationDate", s.Attributes.CreationDate)
		w.str("mfaAuthenticated", s.Attributes.MFAAuthenticated)
		w.close()
		w.str("sourceIdentity", s.SourceIdentity)
		w.str("sessionId", s.SessionID)
		w.close()
	}
	w.close()
}
