package iam

import "testing"

func TestIdentityOf(t *testing.T) {
	for in, want := range map[string]Identity{
		"":                               {},
		"123456789012":                   {PrincipalAWS, "123456789012"},
		"arn:aws:iam::123456789012:root": {PrincipalAWS, "arn:aws:iam::123456789012:root"},
		"arn:aws:sts::123456789012:assumed-role/r/s":                       {PrincipalAWS, "arn:aws:sts::123456789012:assumed-role/r/s"},
		"arn:aws:iam::123456789012:saml-provider/x":                        {PrincipalFederated, "arn:aws:iam::123456789012:saml-provider/x"},
		"arn:aws:iam::123456789012:oidc-provider/a.example.com/t":          {PrincipalFederated, "arn:aws:iam::123456789012:oidc-provider/a.example.com/t"},
		"accounts.google.com":                                              {PrincipalFederated, "accounts.google.com"},
		"cognito-identity.amazonaws.com":                                   {PrincipalFederated, "cognito-identity.amazonaws.com"},
		"ec2.amazonaws.com":                                                {PrincipalService, "ec2.amazonaws.com"},
		"ec2.amazonaws.com.cn":                                             {PrincipalService, "ec2.amazonaws.com.cn"},
		"79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be": {PrincipalCanonicalUser, "79a59df900b949e55d96a1e698fbacedfd6e09d98eacf8f8d5218e7cd47ef2be"},
	} {
		if got := IdentityOf(in); got != want {
			t.Errorf("IdentityOf(%q) = %+v, want %+v", in, got, want)
		}
	}
}

func TestAccountIdentity(t *testing.T) {
	for in, want := range map[string]string{
		"123456789012":                            "123456789012",
		"arn:aws:iam::123456789012:root":          "123456789012",
		"arn:aws-cn:iam::123456789012:root":       "123456789012",
		"arn:aws:iam:us-east-1:123456789012:root": "",
		"arn:aws:sts::123456789012:root":          "",
		"arn:aws:iam::123456789012:user/root":     "",
		"arn:aws:iam::12345678901:root":           "",
		"1234567890123":                           "",
	} {
		got, ok := accountIdentity(in)
		if ok != (want != "") || got != want && ok {
			t.Errorf("accountIdentity(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
}

// TestTrustEvaluateAllocations: typed principals keep Evaluate free of
// allocations on the allow and implicit-deny paths.
func TestTrustEvaluateAllocations(t *testing.T) {
	c, err := Compile(NamedPolicy{Name: "trust", Policy: MustParse(`{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Principal":{"AWS":["123456789012","arn:aws:iam::123456789012:role/r"],"Federated":"arn:aws:iam::123456789012:saml-provider/x"},"Action":"sts:AssumeRole*"},
		{"Effect":"Deny","NotPrincipal":{"AWS":["arn:aws:iam::123456789012:role/r","arn:aws:sts::123456789012:assumed-role/r/s","123456789012"]},"Action":"sts:AssumeRole"}]}`)})
	if err != nil {
		t.Fatal(err)
	}
	allow := &Request{Action: "sts:AssumeRole", Resource: "arn:aws:iam::123456789012:role/t",
		Principals: []Identity{{PrincipalAWS, "arn:aws:sts::123456789012:assumed-role/r/s"}, {PrincipalAWS, "arn:aws:iam::123456789012:role/r"}}}
	deny := &Request{Action: "sts:AssumeRoleWithSAML", Resource: "arn:aws:iam::123456789012:role/t",
		Principals: []Identity{{PrincipalAWS, "arn:aws:iam::999999999999:saml-provider/x"}}}
	legacy := &Request{Action: "sts:AssumeRoleWithSAML", Resource: "arn:aws:iam::123456789012:role/t", Principal: "arn:aws:iam::123456789012:saml-provider/x"}
	for name, tc := range map[string]struct {
		r    *Request
		want Decision
	}{"allow": {allow, Allowed}, "implicit deny": {deny, ImplicitDeny}, "legacy": {legacy, Allowed}} {
		if got := c.Evaluate(tc.r); got.Decision != tc.want {
			t.Fatalf("%s: %s (%s), want %s", name, got.Decision, got.Reason(), tc.want)
		}
		if n := testing.AllocsPerRun(100, func() { c.Evaluate(tc.r) }); n != 0 {
			t.Errorf("%s: %v allocations per Evaluate, want 0", name, n)
		}
	}
}

// TestIdentitiesOfEvaluatesAsPrincipal: a Request with Principals set to
// IdentitiesOf(s) gets the decision that the deprecated Principal s gets,
// anonymous caller ("") included, under Principal and NotPrincipal.
func TestIdentitiesOfEvaluatesAsPrincipal(t *testing.T) {
	c, err := Compile(NamedPolicy{Name: "trust", Policy: MustParse(`{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Principal":"*","Action":"s3:GetObject"},
		{"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::123456789012:saml-provider/x"},"Action":"sts:AssumeRoleWithSAML"},
		{"Effect":"Deny","NotPrincipal":{"AWS":"arn:aws:iam::123456789012:role/r"},"Action":"s3:GetObject","Resource":"arn:aws:s3:::private/*"}]}`)})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"", "123456789012", "arn:aws:iam::123456789012:role/r", "arn:aws:iam::123456789012:saml-provider/x", "accounts.google.com"} {
		for _, action := range []string{"s3:GetObject", "sts:AssumeRoleWithSAML"} {
			for _, resource := range []string{"arn:aws:s3:::private/k", "arn:aws:s3:::public/k"} {
				legacy := &Request{Action: action, Resource: resource, Principal: s}
				typed := &Request{Action: action, Resource: resource, Principals: IdentitiesOf(s)}
				if got, want := c.Evaluate(typed).Decision, c.Evaluate(legacy).Decision; got != want {
					t.Errorf("principal %q, %s on %s: Principals gives %s, Principal gives %s", s, action, resource, got, want)
				}
			}
		}
	}
}
