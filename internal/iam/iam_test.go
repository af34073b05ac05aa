package iam

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"
)

func TestParseErrorPaths(t *testing.T) {
	_, err := Parse([]byte(`{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Action":"s3:*","Resource":"*"},
		{"Effect":"Allow","Action":"s3:*","Resource":"*"},
		{"Effect":"Allow","Action":"s3:*","Resource":"*","Condition":{"StringLike":{"s3:prefix":[]}}}]}`))
	if !errors.Is(err, ErrInvalidPolicy) {
		t.Fatalf("err = %v, want ErrInvalidPolicy", err)
	}
	var ve *ValidationError
	if !errors.As(err, &ve) || len(ve.Issues) != 1 || ve.Issues[0].Path != "Statement[2].Condition.StringLike.s3:prefix" {
		t.Fatalf("issues = %+v", ve)
	}
}

func TestParseLimits(t *testing.T) {
	deep := strings.Repeat("[", MaxDepth+1) + strings.Repeat("]", MaxDepth+1)
	for name, doc := range map[string]string{
		"too deep":  `{"Version":"2012-10-17","Statement":` + deep + `}`,
		"too big":   `{"Id":"` + strings.Repeat("x", MaxPolicyBytes) + `"}`,
		"trailing":  `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*"}} {}`,
		"not json":  `{`,
		"not obj":   `[]`,
		"principal": `{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"*","Resource":"*","Principal":{"Nope":"x"}}}`,
	} {
		if _, err := Parse([]byte(doc)); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestRoundTrip(t *testing.T) {
	src := `{"Version":"2012-10-17","Id":"x","Statement":[{"Sid":"A","Effect":"Deny","NotPrincipal":{"AWS":["arn:aws:iam::123456789012:user/a","123456789012"]},
		"NotAction":"s3:Get*","NotResource":["arn:aws:s3:::b/*"],"Condition":{"NumericLessThan":{"s3:max-keys":10},"Bool":{"aws:SecureTransport":false}}}]}`
	p := MustParse(src)
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	q, err := Parse(b)
	if err != nil {
		t.Fatalf("reparse %s: %v", b, err)
	}
	if !reflect.DeepEqual(p, q) {
		t.Fatalf("round trip changed the policy:\n%+v\n%+v", p, q)
	}
}

func TestMultipleDeniesAreAllReported(t *testing.T) {
	c, err := Compile(
		NamedPolicy{Name: "a", Policy: MustParse(`{"Version":"2012-10-17","Statement":[{"Sid":"D1","Effect":"Deny","Action":"s3:*","Resource":"*"},{"Sid":"D2","Effect":"Deny","Action":"*","Resource":"arn:aws:s3:::b/*"}]}`)},
	)
	if err != nil {
		t.Fatal(err)
	}
	r := c.Evaluate(&Request{Action: "s3:GetObject", Resource: "arn:aws:s3:::b/k"})
	if r.Decision != ExplicitDeny || len(r.Statements) != 2 || r.Statements[0].Sid != "D1" || r.Statements[1].Sid != "D2" {
		t.Fatalf("got %+v", r)
	}
}

func TestAllowExplainsEveryLayer(t *testing.T) {
	c, err := Compile(
		NamedPolicy{Name: "role", Policy: MustParse(`{"Version":"2012-10-17","Statement":{"Sid":"R","Effect":"Allow","Action":"s3:*","Resource":"*"}}`)},
		NamedPolicy{Name: "sess", Layer: LayerSession, Policy: MustParse(`{"Version":"2012-10-17","Statement":{"Sid":"S","Effect":"Allow","Action":"s3:Get*","Resource":"*"}}`)},
		NamedPolicy{Name: "pb", Layer: LayerBoundary, Policy: MustParse(`{"Version":"2012-10-17","Statement":{"Sid":"B","Effect":"Allow","Action":"*","Resource":"*"}}`)},
	)
	if err != nil {
		t.Fatal(err)
	}
	r := c.Evaluate(&Request{Action: "s3:GetObject", Resource: "arn:aws:s3:::b/k"})
	if r.Decision != Allowed || r.Statements[0].Sid != "R" || r.SessionStatement.Sid != "S" || r.BoundaryStatement.Sid != "B" {
		t.Fatalf("got %+v", r)
	}
	if got := r.Reason(); got != "allowed by statement 'R' of policy 'role'" {
		t.Fatalf("reason %q", got)
	}
}

func TestEvaluateConcurrent(t *testing.T) {
	c := benchCompiled(t, 200)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				r := benchRequest((g*500 + i) % 200)
				if got := c.Evaluate(r); got.Decision != Allowed {
					t.Errorf("request %d: %s", i, got.Reason())
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestEvaluateAllocations(t *testing.T) {
	c := benchCompiled(t, 200)
	allow := benchRequest(150)
	deny := &Request{Action: "s3:GetObject", Resource: "arn:aws:s3:::nope/x", Context: allow.Context}
	for name, r := range map[string]*Request{"allow": allow, "implicit deny": deny} {
		if n := testing.AllocsPerRun(100, func() { c.Evaluate(r) }); n != 0 {
			t.Errorf("%s: %v allocations per Evaluate, want 0", name, n)
		}
	}
}

func TestSimulate(t *testing.T) {
	out, err := Simulate(SimulateInput{
		Policies:   []PolicyDocument{{Name: "role", JSON: []byte(`{"Version":"2012-10-17","Statement":{"Effect":"Allow","Action":"s3:*","Resource":"*"}}`)}},
		Boundaries: []PolicyDocument{{Name: "boundary", JSON: []byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"},{"Sid":"DenyHR","Effect":"Deny","Action":"s3:*","Resource":"arn:aws:s3:::hr/*"}]}`)}},
		Action:     "s3:GetObject", Resource: "arn:aws:s3:::hr/salaries.csv",
	})
	if err != nil {
		t.Fatal(err)
	}
	if out.Decision != ExplicitDeny || out.Reason != "denied by statement 'DenyHR' of policy 'boundary'" {
		t.Fatalf("got %+v", out)
	}
	_, err = Simulate(SimulateInput{Policies: []PolicyDocument{{JSON: []byte(`{}`)}}, Action: "s3:GetObject", Resource: "arn:aws:s3:::b/k"})
	if !errors.Is(err, ErrInvalidInput) || !errors.Is(err, ErrInvalidPolicy) {
		t.Fatalf("err = %v", err)
	}
}
