package iam

import (
	"fmt"
	"strings"
	"testing"
)

// benchPolicy returns an identity policy with n Allow statements, one per
// bucket, each limited to the caller's home prefix by a policy variable and
// to TLS by a condition, plus one Deny.
func benchPolicy(n int) string {
	var b strings.Builder
	b.WriteString(`{"Version":"2012-10-17","Statement":[`)
	for i := range n {
		fmt.Fprintf(&b, `{"Sid":"S%d","Effect":"Allow","Action":["s3:GetObject","s3:PutObject"],"Resource":"arn:aws:s3:::bucket-%d/home/${aws:username}/*","Condition":{"Bool":{"aws:SecureTransport":"true"}}},`, i, i)
	}
	b.WriteString(`{"Sid":"DenySecrets","Effect":"Deny","Action":"s3:*","Resource":"arn:aws:s3:::*/secrets/*"}]}`)
	return b.String()
}

func benchCompiled(tb testing.TB, n int) *Compiled {
	tb.Helper()
	p, err := Parse([]byte(benchPolicy(n)))
	if err != nil {
		tb.Fatal(err)
	}
	c, err := Compile(NamedPolicy{Name: "bench", Policy: p})
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

func benchRequest(i int) *Request {
	return &Request{
		Action:   "s3:GetObject",
		Resource: fmt.Sprintf("arn:aws:s3:::bucket-%d/home/alice/report.csv", i),
		Context: map[string][]string{
			"aws:username":        {"alice"},
			"aws:securetransport": {"true"},
		},
	}
}

// BenchmarkEvaluate measures one allowed request that matches the last of N
// statements (the worst case for a linear scan).
func BenchmarkEvaluate(b *testing.B) {
	for _, n := range []int{1, 20, 200, 2000} {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			c := benchCompiled(b, n)
			r := benchRequest(n - 1)
			if d := c.Evaluate(r).Decision; d != Allowed {
				b.Fatalf("decision %s", d)
			}
			b.ReportAllocs()
			for b.Loop() {
				c.Evaluate(r)
			}
		})
	}
}

// BenchmarkEvaluateLinear is the same without the index, for comparison.
func BenchmarkEvaluateLinear(b *testing.B) {
	for _, n := range []int{1, 20, 200, 2000} {
		b.Run(fmt.Sprintf("N=%d", n), func(b *testing.B) {
			c := benchCompiled(b, n)
			r := benchRequest(n - 1)
			b.ReportAllocs()
			for b.Loop() {
				c.evaluateLinear(r)
			}
		})
	}
}

func BenchmarkParse(b *testing.B) {
	doc := []byte(benchPolicy(20))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse(doc); err != nil {
			b.Fatal(err)
		}
	}
}
