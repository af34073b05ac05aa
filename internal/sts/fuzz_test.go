package sts

import (
	"net/http"
	"testing"
)

// FuzzParseRequest: the Query protocol parser (form, Action, Version, lists,
// DurationSeconds, session tags) never panics on any input, and a request it
// accepts always names a known action.
func FuzzParseRequest(f *testing.F) {
	for _, seed := range []struct{ method, ct, body, query, accept string }{
		{"POST", "application/x-www-form-urlencoded; charset=utf-8", "Action=AssumeRole&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2FA&RoleSessionName=s", "", ""},
		{"POST", "application/x-www-form-urlencoded", "Action=AssumeRoleWithSAML&Version=2011-06-15&PolicyArns.member.1.arn=arn:aws:iam::aws:policy/x&PolicyArns.member.10.arn=y", "", "text/html"},
		{"POST", "", "Action=AssumeRole&Version=2011-06-15&Tags.member.1.Key=a&Tags.member.1.Value=b&TransitiveTagKeys.member.1=a&DurationSeconds=900", "", "application/json;q=0.5, text/xml"},
		{"GET", "", "", "Action=GetCallerIdentity&Version=2011-06-15&X-Amz-Signature=00", "*/*"},
		{"POST", "text/plain", "Action=%zz", "", ""},
		{"PUT", "", "", "", ""},
		{"POST", "application/x-www-form-urlencoded", "Action=AssumeRole&Action=GetCallerIdentity", "", ""},
		{"POST", "application/x-www-form-urlencoded", "Action=AssumeRole&Version=2011-06-15&PolicyArns.member.0.arn=x&DurationSeconds=-1", "", ""},
	} {
		f.Add(seed.method, seed.ct, []byte(seed.body), seed.query, seed.accept)
	}
	f.Fuzz(func(t *testing.T, method, ct string, body []byte, query, accept string) {
		_ = negotiate(accept)
		req, e := parseRequest(method, ct, body, query)
		if e != nil {
			if e.Code == "" || e.Cause == "" {
				t.Fatalf("error without code or cause: %+v", e)
			}
			_ = e.HTTPStatus()
			_ = e.PassthroughCode()
			return
		}
		if !knownActions[req.Action] {
			t.Fatalf("accepted unknown action %q", req.Action)
		}
		if method != http.MethodPost && method != http.MethodGet {
			t.Fatalf("accepted method %q", method)
		}
		_, _ = req.members("PolicyArns", "arn", maxPolicyARNs)
		_, _ = req.durationParam()
		_, _, _ = sessionTagParams(req)
		_, _ = req.required("RoleArn")
	})
}

func TestNegotiate(t *testing.T) {
	for accept, want := range map[string]format{
		"":          formatXML,
		"*/*":       formatXML,
		"text/html": formatHTML,
		"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8": formatHTML,
		"application/json":                 formatJSON,
		"application/json;q=0.5, text/xml": formatXML,
		"application/xml, text/html":       formatXML, // a tie keeps XML
		"text/html;q=0":                    formatXML,
		"garbage;;;":                       formatXML,
	} {
		if got := negotiate(accept); got != want {
			t.Errorf("negotiate(%q) = %d, want %d", accept, got, want)
		}
	}
}
