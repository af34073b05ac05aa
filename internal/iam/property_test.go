package iam

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/iam/iamtest"
)

// compileCase parses and compiles a generated case.
func compileCase(tb testing.TB, c iamtest.Case) *Compiled {
	tb.Helper()
	var nps []NamedPolicy
	add := func(name string, layer Layer, doc map[string]any) {
		b, _ := json.Marshal(doc)
		p, err := Parse(b)
		if err != nil {
			tb.Fatalf("seed %d: generated policy does not parse: %v\n%s", c.Seed, err, b)
		}
		nps = append(nps, NamedPolicy{Name: name, Layer: layer, Policy: p})
	}
	for _, d := range c.Identity {
		add(d.Name, LayerIdentity, d.Policy)
	}
	if c.Session != nil {
		add("session", LayerSession, c.Session)
	}
	for _, d := range c.Boundary {
		add(d.Name, LayerBoundary, d.Policy)
	}
	comp, err := Compile(nps...)
	if err != nil {
		tb.Fatalf("seed %d: %v", c.Seed, err)
	}
	return comp
}

// TestIndexMatchesLinearScan checks on generated cases that the index never
// changes a decision compared with scanning every statement.
func TestIndexMatchesLinearScan(t *testing.T) {
	counts := map[Decision]int{}
	for seed := range uint64(3000) {
		c := iamtest.Generate(seed)
		comp := compileCase(t, c)
		req := &Request{Action: c.Action, Resource: c.Resource, Context: c.Context, Principal: c.Principal}
		got := comp.Evaluate(req)
		if lin := comp.evaluateLinear(req); lin != got.Decision {
			t.Fatalf("seed %d: indexed %s (%s), linear %s", seed, got.Decision, got.Reason(), lin)
		}
		counts[got.Decision]++
	}
	for _, d := range []Decision{Allowed, ImplicitDeny, ExplicitDeny} {
		if counts[d] < 100 {
			t.Errorf("generator produced only %d %s decisions: %v", counts[d], d, counts)
		}
	}
}

// FuzzParse checks that Parse never panics and that a policy that parses
// re-serializes and re-parses to the same policy.
func FuzzParse(f *testing.F) {
	f.Add([]byte(benchPolicy(2)))
	f.Add([]byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":["123456789012","arn:aws:iam::123456789012:root"],"Federated":"*","Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"},{"Effect":"Deny","NotPrincipal":{"CanonicalUser":"x","AWS":"arn:aws:sts::123456789012:assumed-role/r/s"},"Action":"s3:*","Resource":"*"}]}`))
	f.Add([]byte(`{"Version":"2012-10-17","Statement":{"Effect":"Deny","NotPrincipal":{"AWS":"*"},"NotAction":"s3:*","NotResource":"arn:aws:s3:::b/${aws:username, 'x'}${*}","Condition":{"ForAllValues:StringLikeIfExists":{"aws:TagKeys":["a*",1,true]},"Null":{"a:b":"true"}}}}`))
	for seed := range uint64(20) {
		f.Add(iamtest.Generate(seed).Identity[0].JSON())
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse(data)
		if err != nil {
			return
		}
		b, err := json.Marshal(p)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		q, err := Parse(b)
		if err != nil {
			t.Fatalf("re-parse of %s: %v", b, err)
		}
		if !reflect.DeepEqual(p, q) {
			t.Fatalf("round trip changed the policy:\n%#v\n%#v", p, q)
		}
		c, err := Compile(NamedPolicy{Policy: p})
		if err != nil {
			t.Fatalf("a parsed policy must compile: %v", err)
		}
		// Principal and NotPrincipal elements of any shape must evaluate
		// without panicking, for typed, untyped and anonymous callers.
		for _, r := range []*Request{
			{Action: "sts:AssumeRole", Resource: "arn:aws:iam::123456789012:role/r", Principals: []Identity{
				{PrincipalAWS, "arn:aws:sts::123456789012:assumed-role/r/s"}, {PrincipalAWS, "123456789012"},
				{PrincipalFederated, "arn:aws:iam::123456789012:saml-provider/x"}, {"", ""}}},
			{Action: "s3:GetObject", Resource: "arn:aws:s3:::b/k", Principal: "arn:aws:iam::123456789012:root"},
			{Action: "s3:GetObject", Resource: "arn:aws:s3:::b/k"},
		} {
			if got, lin := c.Evaluate(r).Decision, c.evaluateLinear(r); got != lin {
				t.Fatalf("indexed %s, linear %s", got, lin)
			}
		}
	})
}

// FuzzEvaluate evaluates generated policies against requests the fuzzer
// mutates: Evaluate must not panic and must agree with the linear scan.
func FuzzEvaluate(f *testing.F) {
	f.Add(uint64(1), "s3:GetObject", "arn:aws:s3:::bucket-a/home/alice/x.txt", "alice", "10.1.2.3")
	f.Add(uint64(7), "S3:LISTBUCKET", "arn:aws:s3:::bucket-b", "b?b", "::1")
	f.Add(uint64(9), "", "arn:", "${aws:username}", "")
	f.Fuzz(func(t *testing.T, seed uint64, action, resource, user, ip string) {
		c := iamtest.Generate(seed % 5000)
		comp := compileCase(t, c)
		ctx := map[string][]string{}
		for k, v := range c.Context {
			ctx[k] = v
		}
		ctx["aws:username"] = []string{user}
		ctx["aws:SourceIp"] = []string{ip}
		req := &Request{Action: action, Resource: resource, Context: ctx, Principal: c.Principal}
		got := comp.Evaluate(req)
		if lin := comp.evaluateLinear(req); lin != got.Decision {
			t.Fatalf("seed %d: indexed %s, linear %s", c.Seed, got.Decision, lin)
		}
		_ = got.Reason()
	})
}
