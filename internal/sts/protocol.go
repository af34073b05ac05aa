package sts

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"html/template"
	"io"
	"mime"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
)

// The AWS Query protocol, as STS speaks it: parameters form-encoded in a
// POST body (or in the query string of a GET), Action and Version naming
// the operation, XML responses in the 2011-06-15 namespace
// (https://docs.aws.amazon.com/STS/latest/APIReference/CommonParameters.html,
// "Query API request" in the AWS General Reference).

// APIVersion is the only Version STS has.
const APIVersion = "2011-06-15"

// xmlns is the namespace of every STS response document.
const xmlns = "https://sts.amazonaws.com/doc/" + APIVersion + "/"

// DefaultMaxBodyBytes bounds a request body. AWS caps SAMLAssertion at
// 100,000 characters and a web identity token at 20,000, so this leaves
// room for both plus session policies.
const DefaultMaxBodyBytes = 256 << 10

// Actions served.
const (
	ActionAssumeRoleWithSAML         = "AssumeRoleWithSAML"
	ActionAssumeRoleWithWebIdentity  = "AssumeRoleWithWebIdentity"
	ActionAssumeRole                 = "AssumeRole"
	ActionGetCallerIdentity          = "GetCallerIdentity"
	ActionDecodeAuthorizationMessage = "DecodeAuthorizationMessage"
)

var knownActions = map[string]bool{
	ActionAssumeRoleWithSAML: true, ActionAssumeRoleWithWebIdentity: true,
	ActionAssumeRole: true, ActionGetCallerIdentity: true, ActionDecodeAuthorizationMessage: true,
}

// request is a parsed Query protocol call. Params hold one value per name.
type request struct {
	Action string
	Params map[string]string
}

// parseRequest reads the Action, Version and parameters of a Query call
// from an already size-capped body (POST) or the raw query (GET). It never
// panics on any input (FuzzParseRequest).
func parseRequest(method, contentType string, body []byte, rawQuery string) (*request, *Error) {
	var src string
	switch method {
	case http.MethodPost:
		if len(bytes.TrimSpace(body)) == 0 {
			src = rawQuery
			break
		}
		if contentType != "" {
			mt, _, err := mime.ParseMediaType(contentType)
			if err != nil || mt != "application/x-www-form-urlencoded" {
				return nil, newErr(CodeValidationError, "content-type",
					fmt.Sprintf("Content-Type %q is not supported.", clip(contentType)),
					"send the parameters form-encoded with Content-Type application/x-www-form-urlencoded.")
			}
		}
		src = string(body)
	case http.MethodGet:
		src = rawQuery
	default:
		return nil, &Error{Code: CodeValidationError, Status: http.StatusMethodNotAllowed, Reason: "method",
			Cause: fmt.Sprintf("Method %s is not allowed.", clip(method)), Fix: "use POST with a form-encoded body."}
	}
	vals, err := url.ParseQuery(src)
	if err != nil {
		return nil, newErr(CodeValidationError, "form", "The request parameters are not valid form encoding.",
			"percent-encode the parameters (application/x-www-form-urlencoded).")
	}
	req := &request{Params: make(map[string]string, len(vals))}
	for k, v := range vals {
		if len(v) != 1 {
			return nil, newErr(CodeValidationError, "form", fmt.Sprintf("Parameter %s is given %d times.", clip(k), len(v)),
				"send each parameter once.")
		}
		req.Params[k] = v[0]
	}
	req.Action = req.Params["Action"]
	switch {
	case req.Action == "":
		return nil, newErr(CodeInvalidAction, "action", "The request has no Action parameter.",
			"add Action=AssumeRoleWithSAML, AssumeRoleWithWebIdentity, AssumeRole, GetCallerIdentity or DecodeAuthorizationMessage.")
	case !knownActions[req.Action]:
		return nil, newErr(CodeInvalidAction, "action",
			fmt.Sprintf("Could not find operation %s for version %s.", clip(req.Action), APIVersion),
			"gatehouse serves AssumeRoleWithSAML, AssumeRoleWithWebIdentity, AssumeRole, GetCallerIdentity and DecodeAuthorizationMessage.")
	}
	switch v, ok := req.Params["Version"]; {
	case !ok:
		return nil, newErr(CodeMissingParameter, "version", "The request must contain the parameter Version.",
			"add Version="+APIVersion+".")
	case v != APIVersion:
		return nil, newErr(CodeInvalidParameterValue, "version", fmt.Sprintf("Version %s is not supported.", clip(v)),
			"use Version="+APIVersion+".")
	}
	return req, nil
}

// required returns a parameter that must be present and non-empty.
func (r *request) required(name string) (string, *Error) {
	v, ok := r.Params[name]
	if !ok || v == "" {
		return "", newErr(CodeMissingParameter, "missing-"+strings.ToLower(name),
			fmt.Sprintf("The request must contain the parameter %s.", name), "")
	}
	return v, nil
}

// members returns the values of a Query list: prefix.member.N[.field] for
// N = 1, 2, ... in order. At most limit entries, numbered 1..limit.
func (r *request) members(prefix, field string, limit int) ([]string, *Error) {
	type kv struct {
		n int
		v string
	}
	var got []kv
	start := prefix + ".member."
	for k, v := range r.Params {
		rest, ok := strings.CutPrefix(k, start)
		if !ok {
			continue
		}
		num := rest
		if field != "" {
			var f string
			num, f, ok = strings.Cut(rest, ".")
			if !ok || f != field {
				continue
			}
		}
		n, err := strconv.Atoi(num)
		if err != nil || n < 1 || n > limit {
			return nil, newErr(CodeValidationError, "list", fmt.Sprintf("Parameter %s: member number must be 1 to %d.", clip(k), limit),
				fmt.Sprintf("pass at most %d %s, numbered from 1.", limit, prefix))
		}
		got = append(got, kv{n, v})
	}
	sort.Slice(got, func(i, j int) bool { return got[i].n < got[j].n })
	out := make([]string, len(got))
	for i, g := range got {
		out[i] = g.v
	}
	return out, nil
}

// durationParam parses DurationSeconds (900–43200), zero when absent.
func (r *request) durationParam() (time.Duration, *Error) {
	v, ok := r.Params["DurationSeconds"]
	if !ok {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 900 || n > 43200 {
		return 0, newErr(CodeValidationError, "duration",
			fmt.Sprintf("1 validation error detected: Value '%s' at 'durationSeconds' failed to satisfy constraint: Member must have value between 900 and 43200.", clip(v)),
			"pass DurationSeconds as a number of seconds from 900 to 43200.")
	}
	return time.Duration(n) * time.Second, nil
}

// clip is audit.Clip: the one clipping helper for attacker-chosen values.
func clip(s string) string { return audit.Clip(s, 80) }

// format is how a response is rendered.
type format int

const (
	formatXML format = iota
	formatJSON
	formatHTML
)

// negotiate picks the response format from Accept: XML unless the client
// prefers JSON or HTML over XML (RFC 9110 §12.5.1 quality values).
func negotiate(accept string) format {
	if accept == "" {
		return formatXML
	}
	best, bestQ := formatXML, -1.0
	xmlQ := -1.0
	for _, part := range strings.Split(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		q := 1.0
		if s, ok := params["q"]; ok {
			if f, err := strconv.ParseFloat(s, 64); err == nil && f >= 0 && f <= 1 {
				q = f
			}
		}
		var f format
		switch mt {
		case "text/html", "application/xhtml+xml":
			f = formatHTML
		case "application/json":
			f = formatJSON
		case "text/xml", "application/xml", "*/*", "text/*", "application/*":
			if q > xmlQ {
				xmlQ = q
			}
			continue
		default:
			continue
		}
		if q > bestQ {
			best, bestQ = f, q
		}
	}
	if bestQ <= 0 || xmlQ >= bestQ {
		return formatXML
	}
	return best
}

// result is an action's result: an element name (e.g. AssumeRoleResult)
// and its content, rendered as XML or as AWS's JSON form of the same tree.
type result struct {
	Action string
	Body   any // struct with xml and json tags
}

type responseMetadata struct {
	RequestID string `xml:"RequestId" json:"RequestId"`
}

type xmlEnvelope struct {
	XMLName xml.Name
	Xmlns   string `xml:"xmlns,attr"`
	Result  xmlResult
	Meta    responseMetadata `xml:"ResponseMetadata"`
}

type xmlResult struct {
	XMLName xml.Name
	Body    any
}

// MarshalXML writes Body's fields directly inside the <ActionResult> element.
func (r xmlResult) MarshalXML(e *xml.Encoder, _ xml.StartElement) error {
	return e.EncodeElement(r.Body, xml.StartElement{Name: r.XMLName})
}

func writeResult(w http.ResponseWriter, f format, requestID string, res result) {
	h := w.Header()
	h.Set("x-amzn-RequestId", requestID)
	h.Set("Cache-Control", "no-store")
	var buf bytes.Buffer
	if f == formatJSON {
		doc := map[string]any{res.Action + "Response": map[string]any{
			res.Action + "Result": res.Body,
			"ResponseMetadata":    responseMetadata{RequestID: requestID},
		}}
		_ = json.NewEncoder(&buf).Encode(doc)
		h.Set("Content-Type", "application/json")
	} else {
		env := xmlEnvelope{
			XMLName: xml.Name{Local: res.Action + "Response"},
			Xmlns:   xmlns,
			Result:  xmlResult{XMLName: xml.Name{Local: res.Action + "Result"}, Body: res.Body},
			Meta:    responseMetadata{RequestID: requestID},
		}
		buf.WriteString(xml.Header)
		enc := xml.NewEncoder(&buf)
		enc.Indent("", "  ")
		if err := enc.Encode(env); err != nil {
			// The result types are fixed structs; this cannot happen.
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		buf.WriteByte('\n')
		h.Set("Content-Type", "text/xml")
	}
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(buf.Bytes())
}

// xmlErrorResponse is AWS's Query error document:
// <ErrorResponse><Error><Type/><Code/><Message/></Error><RequestId/></ErrorResponse>.
type xmlErrorResponse struct {
	XMLName   xml.Name `xml:"ErrorResponse"`
	Xmlns     string   `xml:"xmlns,attr"`
	Error     xmlError `xml:"Error"`
	RequestID string   `xml:"RequestId"`
}

type xmlError struct {
	Type    string `xml:"Type" json:"Type"`
	Code    string `xml:"Code" json:"Code"`
	Message string `xml:"Message" json:"Message"`
}

var errorPage = template.Must(template.New("error").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>gatehouse STS: {{.Code}}</title>
<style>body{font-family:sans-serif;max-width:46em;margin:2em auto;line-height:1.5}code{background:#eee;padding:0 .2em}</style></head>
<body><h1>Sign-in to AWS-compatible credentials failed</h1>
<p><strong>Error:</strong> <code>{{.Code}}</code> ({{.Kind}})</p>
<p><strong>Cause:</strong> {{.Cause}}</p>
{{if .Fix}}<p><strong>Fix:</strong> {{.Fix}}</p>{{end}}
<p><small>Request id <code>{{.RequestID}}</code>: give it to your gatehouse administrator, who can find the full event in the audit log.</small></p>
</body></html>
`))

// writeError renders e in format f. federation adds the
// X-Gatehouse-Passthrough-Error header.
func writeError(w http.ResponseWriter, f format, requestID string, e *Error, federation bool) {
	h := w.Header()
	h.Set("x-amzn-RequestId", requestID)
	h.Set("Cache-Control", "no-store")
	if federation {
		h.Set(HeaderPassthroughError, e.PassthroughCode())
	}
	status := e.HTTPStatus()
	typ := "Sender"
	if status >= 500 {
		typ = "Receiver"
	}
	var buf bytes.Buffer
	switch f {
	case formatHTML:
		_ = errorPage.Execute(&buf, map[string]string{
			"Code": e.Code, "Kind": e.PassthroughCode(), "Cause": e.Cause, "Fix": e.Fix, "RequestID": requestID,
		})
		h.Set("Content-Type", "text/html; charset=utf-8")
	case formatJSON:
		_ = json.NewEncoder(&buf).Encode(map[string]any{
			"Error": map[string]string{
				"Type": typ, "Code": e.Code, "Message": e.Message(),
				"Cause": e.Cause, "Fix": e.Fix, "PassthroughError": e.PassthroughCode(),
			},
			"RequestId": requestID,
		})
		h.Set("Content-Type", "application/json")
	default:
		buf.WriteString(xml.Header)
		enc := xml.NewEncoder(&buf)
		enc.Indent("", "  ")
		_ = enc.Encode(xmlErrorResponse{
			Xmlns:     xmlns,
			Error:     xmlError{Type: typ, Code: e.Code, Message: e.Message()},
			RequestID: requestID,
		})
		buf.WriteByte('\n')
		h.Set("Content-Type", "text/xml")
	}
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// readBody reads at most max bytes of the body; more is a 413 ValidationError.
func readBody(r *http.Request, max int64) ([]byte, *Error) {
	if r.Body == nil {
		return nil, nil
	}
	if r.ContentLength > max {
		return nil, tooLarge(max)
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, max+1))
	if err != nil {
		return nil, newErr(CodeValidationError, "body", "The request body could not be read.", "retry the request.")
	}
	if int64(len(b)) > max {
		return nil, tooLarge(max)
	}
	return b, nil
}

func tooLarge(max int64) *Error {
	return &Error{Code: CodeValidationError, Status: http.StatusRequestEntityTooLarge, Reason: "too-large",
		Cause: fmt.Sprintf("The request body is larger than %d bytes.", max),
		Fix:   "send a smaller SAML assertion or session policy (AWS allows 100,000 characters of SAMLAssertion)."}
}
