package iam

import "testing"

// TestNamesKeyPrefix checks that a compiled set reports the condition keys
// it names, as condition keys and as policy variables, case-insensitively,
// so that the gateway fetches an object's tags only when they can matter
// (issue 13, s3:ExistingObjectTag on the hot path).
func TestNamesKeyPrefix(t *testing.T) {
	cases := []struct {
		name, doc string
		want      bool
	}{
		{"no condition", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}`, false},
		{"other key", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*",
			"Condition":{"StringEquals":{"s3:RequestObjectTag/a":"b"}}}]}`, false},
		{"condition key", `{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"s3:GetObject","Resource":"*",
			"Condition":{"StringEquals":{"S3:ExistingObjectTag/Classification":"secret"}}}]}`, true},
		{"resource variable", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject",
			"Resource":"arn:aws:s3:::b/${s3:ExistingObjectTag/team}/*"}]}`, true},
		{"condition value variable", `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*",
			"Condition":{"StringEquals":{"aws:PrincipalTag/team":"${s3:ExistingObjectTag/team}"}}}]}`, true},
		{"variables not read in 2008", `{"Version":"2008-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject",
			"Resource":"arn:aws:s3:::b/${s3:ExistingObjectTag/team}/*"}]}`, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Parse([]byte(tc.doc))
			if err != nil {
				t.Fatal(err)
			}
			c, err := Compile(NamedPolicy{Name: "p", Policy: p})
			if err != nil {
				t.Fatal(err)
			}
			if got := c.NamesKeyPrefix("s3:existingobjecttag/"); got != tc.want {
				t.Fatalf("NamesKeyPrefix = %v, want %v", got, tc.want)
			}
		})
	}
	var nilSet *Compiled
	if nilSet.NamesKeyPrefix("s3:") {
		t.Fatal("a nil set names no key")
	}
}
