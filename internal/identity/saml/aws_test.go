package saml

import (
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestParseRolePair(t *testing.T) {
	want := RolePair{RoleARN: roleAnalyst, ProviderARN: providerARN}
	tests := []struct {
		in, code, reason string
	}{
		{in: roleAnalyst + "," + providerARN},
		{in: providerARN + "," + roleAnalyst},
		{in: " " + providerARN + " , " + roleAnalyst + " "},
		{in: roleAnalyst, code: CodeMalformedRoleAttribute, reason: "role-parts"},
		{in: roleAnalyst + "," + providerARN + "," + roleAdmin, code: CodeMalformedRoleAttribute, reason: "role-parts"},
		{in: roleAnalyst + "," + roleAdmin, code: CodeMalformedRoleAttribute, reason: "role-arn"},
		{in: providerARN + "," + providerARN, code: CodeMalformedRoleAttribute, reason: "role-arn"},
		{in: roleAnalyst + ",", code: CodeMalformedRoleAttribute, reason: "role-arn"},
		{in: "Analyst,ExampleIdP", code: CodeMalformedRoleAttribute, reason: "role-arn"},
		{in: "arn:aws:s3:::bucket," + providerARN, code: CodeMalformedRoleAttribute, reason: "role-arn"},
		{in: "arn:aws:iam::12345:role/Analyst," + providerARN, code: CodeMalformedRoleAttribute, reason: "role-arn"},
		{in: "arn:aws:iam:us-east-1:123456789012:role/Analyst," + providerARN, code: CodeMalformedRoleAttribute, reason: "role-arn"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseRolePair(tc.in)
			if tc.code != "" {
				e := wantError(t, err, tc.code, tc.reason)
				if !strings.Contains(e.Fix, "roleArn,providerArn") {
					t.Errorf("fix %q does not show the format", e.Fix)
				}
				return
			}
			if err != nil || got != want {
				t.Fatalf("got %+v, %v; want %+v", got, err, want)
			}
		})
	}
}

func TestParseAWSAttributes(t *testing.T) {
	tag := func(k string) string { return AttrPrincipalTagPrefix + k }
	tests := []struct {
		name         string
		attrs        map[string][]string
		want         AWSAttributes
		code, reason string
	}{
		{name: "none"},
		{name: "all", attrs: map[string][]string{
			AttrRole:              {roleAnalyst + "," + providerARN, providerARN + "," + roleAdmin, roleAnalyst + "," + providerARN},
			AttrRoleSessionName:   {"alice@example.test"},
			AttrSessionDuration:   {"43200"},
			AttrSourceIdentity:    {"alice"},
			tag("CostCenter"):     {"12 34"},
			tag("Project"):        {""},
			AttrTransitiveTagKeys: {"CostCenter"},
		}, want: AWSAttributes{
			Roles:             []RolePair{{roleAnalyst, providerARN}, {roleAdmin, providerARN}},
			RoleSessionName:   "alice@example.test",
			SessionDuration:   12 * time.Hour,
			SourceIdentity:    "alice",
			PrincipalTags:     map[string]string{"CostCenter": "12 34", "Project": ""},
			TransitiveTagKeys: []string{"CostCenter"},
		}},
		// Issue 11 finding 9: a Role attribute without values grants no
		// role (empty, not nil); only an absent attribute is nil.
		{name: "role attribute present but empty", attrs: map[string][]string{AttrRole: {}},
			want: AWSAttributes{Roles: []RolePair{}}},
		{name: "role attribute absent", attrs: map[string][]string{AttrRoleSessionName: {"alice"}},
			want: AWSAttributes{RoleSessionName: "alice"}},
		{name: "one bad role among good", attrs: map[string][]string{AttrRole: {roleAnalyst + "," + providerARN, "junk"}},
			code: CodeMalformedRoleAttribute, reason: "role-parts"},
		{name: "session name too short", attrs: map[string][]string{AttrRoleSessionName: {"a"}}, code: CodeValidationError, reason: "role-session-name"},
		{name: "session name too long", attrs: map[string][]string{AttrRoleSessionName: {strings.Repeat("a", 65)}}, code: CodeValidationError, reason: "role-session-name"},
		{name: "session name 64", attrs: map[string][]string{AttrRoleSessionName: {strings.Repeat("a", 64)}},
			want: AWSAttributes{RoleSessionName: strings.Repeat("a", 64)}},
		{name: "session name with slash", attrs: map[string][]string{AttrRoleSessionName: {"a/b"}}, code: CodeValidationError, reason: "role-session-name"},
		{name: "two session names", attrs: map[string][]string{AttrRoleSessionName: {"alice", "bob"}}, code: CodeValidationError, reason: "attribute-count"},
		{name: "duration 899", attrs: map[string][]string{AttrSessionDuration: {"899"}}, code: CodeValidationError, reason: "session-duration"},
		{name: "duration 900", attrs: map[string][]string{AttrSessionDuration: {"900"}}, want: AWSAttributes{SessionDuration: 15 * time.Minute}},
		{name: "duration text", attrs: map[string][]string{AttrSessionDuration: {"1h"}}, code: CodeValidationError, reason: "session-duration"},
		{name: "source identity aws:", attrs: map[string][]string{AttrSourceIdentity: {"aws:alice"}}, code: CodeValidationError, reason: "source-identity"},
		{name: "tag aws: prefix", attrs: map[string][]string{tag("aws:x"): {"v"}}, code: CodeValidationError, reason: "session-tag"},
		{name: "tag two values", attrs: map[string][]string{tag("k"): {"a", "b"}}, code: CodeValidationError, reason: "session-tag"},
		{name: "tag bad char", attrs: map[string][]string{tag("k"): {"a;b"}}, code: CodeValidationError, reason: "session-tag"},
		{name: "tags differing in case", attrs: map[string][]string{tag("k"): {"a"}, tag("K"): {"b"}}, code: CodeValidationError, reason: "session-tag"},
		{name: "transitive key not a tag", attrs: map[string][]string{AttrTransitiveTagKeys: {"nope"}}, code: CodeValidationError, reason: "session-tag"},
		{name: "too many tags", attrs: func() map[string][]string {
			m := map[string][]string{}
			for i := range 51 {
				m[tag("k"+itoa(i))] = []string{"v"}
			}
			return m
		}(), code: CodeValidationError, reason: "session-tag"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, e := parseAWSAttributes(tc.attrs)
			if tc.code != "" {
				if e == nil {
					t.Fatalf("accepted: %+v", got)
				}
				wantError(t, e, tc.code, tc.reason)
				return
			}
			if e != nil {
				t.Fatal(e)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Fatalf("(-want +got):\n%s", diff)
			}
		})
	}
}
