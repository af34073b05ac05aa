package simulate

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/iam/iamtest"
)

func files(m map[string]string) ReadFileFunc {
	return func(name string) ([]byte, error) {
		if s, ok := m[name]; ok {
			return []byte(s), nil
		}
		return nil, fs.ErrNotExist
	}
}

func TestRun(t *testing.T) {
	read := files(map[string]string{
		"role.json":     `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:*","Resource":"arn:aws:s3:::data/home/${aws:username}/*","Condition":{"DateLessThan":{"aws:CurrentTime":"2030-01-01T00:00:00Z"}}}}`,
		"regional.json": `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::data/*"},{"Sid":"OwnRegionOnly","Effect":"Deny","Action":"s3:*","NotResource":"arn:aws:s3:::data/${aws:PrincipalTag/region}/*"}]}`,
		"boundary.json": `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"},{"Sid":"DenyHR","Effect":"Deny","Action":"s3:*","Resource":"arn:aws:s3:::data/home/hr/*"}]}`,
	})
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name     string
		o        Options
		code     int
		contains string
	}{
		{"allow", Options{Policies: []string{"role.json"}, Action: "s3:GetObject", Resource: "arn:aws:s3:::data/home/alice/x", Context: []string{"aws:username=alice"}, Now: now}, ExitAllow, "decision: Allow"},
		{"boundary deny", Options{Policies: []string{"role.json"}, Boundaries: []string{"boundary.json"}, Action: "s3:GetObject", Resource: "arn:aws:s3:::data/home/hr/x", Context: []string{"aws:username=hr"}, Now: now}, ExitDeny, "denied by statement 'DenyHR' of policy 'boundary'"},
		{"session inline", Options{Policies: []string{"role.json"}, SessionPolicies: []string{`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:PutObject","Resource":"*"}}`}, Action: "s3:GetObject", Resource: "arn:aws:s3:::data/home/alice/x", Context: []string{"aws:username=alice"}, Now: now}, ExitDeny, "session policy does not allow"},
		{"expired by clock", Options{Policies: []string{"role.json"}, Action: "s3:GetObject", Resource: "arn:aws:s3:::data/home/alice/x", Context: []string{"aws:username=alice"}, Now: time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)}, ExitDeny, "no statement allows"},
		// Issue 11 finding 4: the guard's variable has no value, so its NotResource matches everything.
		{"guard on a variable with no value", Options{Policies: []string{"regional.json"}, Action: "s3:GetObject", Resource: "arn:aws:s3:::data/eu/x"}, ExitDeny, "denied by statement 'OwnRegionOnly' of policy 'regional'"},
		{"guard on a variable with a value", Options{Policies: []string{"regional.json"}, Action: "s3:GetObject", Resource: "arn:aws:s3:::data/eu/x", Context: []string{"aws:PrincipalTag/region=eu"}}, ExitAllow, "decision: Allow"},
		{"missing file", Options{Policies: []string{"nope.json"}, Action: "s3:GetObject", Resource: "arn:aws:s3:::b/k"}, ExitInvalid, "file does not exist"},
		{"bad policy", Options{Policies: []string{`{"Statement":{"Effect":"Allow"}}`}, Action: "s3:GetObject", Resource: "arn:aws:s3:::b/k"}, ExitInvalid, "missing Action or NotAction"},
		{"bad context", Options{Policies: []string{"role.json"}, Action: "s3:GetObject", Resource: "arn:aws:s3:::b/k", Context: []string{"novalue"}}, ExitInvalid, "want key=value"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := Run(tc.o, read, &out, &errOut)
			if code != tc.code || !strings.Contains(out.String()+errOut.String(), tc.contains) {
				t.Fatalf("code %d, output %q %q; want %d and %q", code, out.String(), errOut.String(), tc.code, tc.contains)
			}
		})
	}
}

func TestRunJSONAndMultiValues(t *testing.T) {
	o := Options{
		Policies: []string{`{"Version":"2012-10-17","Statement":{"Sid":"Tags","Effect":"Allow","Action":"s3:GetObject","Resource":"*","Condition":{"ForAllValues:StringEquals":{"aws:TagKeys":["a","b"]}}}}`},
		Action:   "s3:GetObject", Resource: "arn:aws:s3:::b/k", Context: []string{"aws:TagKeys=a", "aws:TagKeys=b"}, JSON: true,
	}
	var out bytes.Buffer
	if code := Run(o, files(nil), &out, &bytes.Buffer{}); code != ExitAllow {
		t.Fatalf("code %d: %s", code, out.String())
	}
	var got struct {
		Decision   string `json:"decision"`
		Statements []struct{ Sid string }
	}
	if err := json.Unmarshal(out.Bytes(), &got); err != nil || got.Decision != "Allow" || got.Statements[0].Sid != "Tags" {
		t.Fatalf("json %s: %v", out.String(), err)
	}
	in, _ := Input(Options{Policies: []string{"{}"}, Context: []string{"A:B=1", "a:b=2"}}, files(nil))
	if len(in.Context["a:b"]) != 2 {
		t.Fatalf("context %v", in.Context)
	}
}

func TestPrincipalTypes(t *testing.T) {
	trust := `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::000000000000:saml-provider/x"},"Action":"sts:AssumeRoleWithSAML"}}`
	for _, tc := range []struct {
		principal string
		code      int
	}{
		{"arn:aws:iam::000000000000:saml-provider/x", ExitAllow}, // inferred Federated
		{"Federated:arn:aws:iam::000000000000:saml-provider/x", ExitAllow},
		{"AWS:arn:aws:iam::000000000000:saml-provider/x", ExitDeny}, // same text, other type
		{"Service:arn:aws:iam::000000000000:saml-provider/x", ExitDeny},
		{"", ExitDeny}, // anonymous
	} {
		o := Options{Policies: []string{trust}, Action: "sts:AssumeRoleWithSAML", Resource: "arn:aws:iam::000000000000:role/r", Principal: tc.principal}
		var out bytes.Buffer
		if code := Run(o, files(nil), &out, &bytes.Buffer{}); code != tc.code {
			t.Errorf("--principal %q: code %d, want %d: %s", tc.principal, code, tc.code, out.String())
		}
	}
	if got := ParsePrincipal("CanonicalUser:abc"); got.Type != "CanonicalUser" || got.ID != "abc" {
		t.Errorf("ParsePrincipal = %+v", got)
	}
}

// TestRunAgreesWithCases: `gatehouse policy simulate` gives the decision of
// every data-driven case (internal/iam/testdata/cases) that its options can
// express, among them the policy variables with no value of issue 11
// finding 4 (variables_no_value.json).
func TestRunAgreesWithCases(t *testing.T) {
	cases, err := iamtest.LoadCases("../testdata/cases/*.json")
	if err != nil {
		t.Fatal(err)
	}
	ran := 0
	for _, tc := range cases {
		o, docs, ok := optionsOf(tc.PolicyCase)
		if !ok {
			continue
		}
		ran++
		t.Run(tc.ID, func(t *testing.T) {
			var out, errOut bytes.Buffer
			code := Run(o, files(docs), &out, &errOut)
			want := ExitDeny
			if tc.Want == "Allow" {
				want = ExitAllow
			}
			if code != want || !strings.Contains(out.String(), "decision: "+tc.Want) || !strings.Contains(out.String(), tc.WantReason) {
				t.Fatalf("code %d, output %q %q; want %d, %s, reason containing %q", code, out.String(), errOut.String(), want, tc.Want, tc.WantReason)
			}
		})
	}
	if ran < 300 {
		t.Errorf("only %d cases ran through simulate", ran)
	}
}

// optionsOf turns a data-driven case into command-line options and the
// policy files they name (layer/name.json, so that the policy names in the
// explanation are the case's). It reports false for what the options cannot
// express: parse-error cases, principals of an unknown type or several
// principals, and context keys without values.
func optionsOf(c iamtest.PolicyCase) (Options, map[string]string, bool) {
	if c.WantError != "" || len(c.Request.Principals) > 1 {
		return Options{}, nil, false
	}
	o := Options{Action: c.Request.Action, Resource: c.Request.Resource, Principal: c.Request.Principal}
	if len(c.Request.Principals) == 1 {
		p := c.Request.Principals[0]
		o.Principal = p.Type + ":" + p.ID
		if got := ParsePrincipal(o.Principal); got.Type != p.Type || got.ID != p.ID {
			return Options{}, nil, false
		}
	}
	docs := map[string]string{}
	for _, p := range c.Policies {
		layer := p.Layer
		if layer == "" {
			layer = "identity"
		}
		file := layer + "/" + p.Name + ".json"
		docs[file] = string(p.Policy)
		switch layer {
		case "identity":
			o.Policies = append(o.Policies, file)
		case "session":
			o.SessionPolicies = append(o.SessionPolicies, file)
		case "boundary":
			o.Boundaries = append(o.Boundaries, file)
		default:
			return Options{}, nil, false
		}
	}
	for k, vs := range c.Request.Context {
		if len(vs) == 0 {
			return Options{}, nil, false
		}
		for _, v := range vs {
			o.Context = append(o.Context, k+"="+v)
		}
	}
	return o, docs, len(o.Policies) > 0
}
