package bench

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/cedar-policy/cedar-go"

	"github.com/gatehouse-dev/gatehouse/internal/iam"
)

// Scenario: N allow rules, one per bucket; each lets a user read and write
// their own home prefix of that bucket over TLS. One deny rule forbids
// secrets/. The request is an allowed GetObject that matches rule N-1, the
// last one (the worst case for a linear scan).
var sizes = []int{1, 20, 200, 2000}

func iamPolicy(n int) *iam.Compiled {
	var b strings.Builder
	b.WriteString(`{"Version":"2012-10-17","Statement":[`)
	for i := range n {
		fmt.Fprintf(&b, `{"Sid":"S%d","Effect":"Allow","Action":["s3:GetObject","s3:PutObject"],"Resource":"arn:aws:s3:::bucket-%d/home/${aws:username}/*","Condition":{"Bool":{"aws:SecureTransport":"true"}}},`, i, i)
	}
	b.WriteString(`{"Sid":"DenySecrets","Effect":"Deny","Action":"s3:*","Resource":"arn:aws:s3:::*/secrets/*"}]}`)
	p, err := iam.Parse([]byte(b.String()))
	if err != nil {
		panic(err)
	}
	c, err := iam.Compile(iam.NamedPolicy{Name: "bench", Policy: p})
	if err != nil {
		panic(err)
	}
	return c
}

func iamRequest(n int) *iam.Request {
	return &iam.Request{
		Action:   "s3:GetObject",
		Resource: fmt.Sprintf("arn:aws:s3:::bucket-%d/home/alice/report.csv", n-1),
		Context:  map[string][]string{"aws:username": {"alice"}, "aws:securetransport": {"true"}},
	}
}

func cedarPolicy(n int) *cedar.PolicySet {
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, `permit(principal, action in [Action::"s3:GetObject", Action::"s3:PutObject"], resource)
when { resource.bucket == "bucket-%d" && resource.home == context.username && context.secure };
`, i)
	}
	b.WriteString(`forbid(principal, action, resource) when { resource.key like "secrets/*" };`)
	ps, err := cedar.NewPolicySetFromBytes("bench.cedar", []byte(b.String()))
	if err != nil {
		panic(err)
	}
	return ps
}

func cedarRequest(n int) (cedar.EntityMap, cedar.Request) {
	obj := cedar.NewEntityUID("Object", cedar.String(fmt.Sprintf("bucket-%d/home/alice/report.csv", n-1)))
	entities := cedar.EntityMap{
		obj: cedar.Entity{UID: obj, Attributes: cedar.NewRecord(cedar.RecordMap{
			"bucket": cedar.String(fmt.Sprintf("bucket-%d", n-1)),
			"home":   cedar.String("alice"),
			"key":    cedar.String("home/alice/report.csv"),
		})},
	}
	req := cedar.Request{
		Principal: cedar.NewEntityUID("User", "alice"),
		Action:    cedar.NewEntityUID("Action", "s3:GetObject"),
		Resource:  obj,
		Context:   cedar.NewRecord(cedar.RecordMap{"username": cedar.String("alice"), "secure": cedar.True}),
	}
	return entities, req
}

func benchIAM(n int) func(b *testing.B) {
	return func(b *testing.B) {
		c, r := iamPolicy(n), iamRequest(n)
		if d := c.Evaluate(r).Decision; d != iam.Allowed {
			b.Fatalf("gatehouse: %s", d)
		}
		b.ReportAllocs()
		for b.Loop() {
			c.Evaluate(r)
		}
	}
}

func benchCedar(n int) func(b *testing.B) {
	return func(b *testing.B) {
		ps := cedarPolicy(n)
		entities, req := cedarRequest(n)
		if d, diag := cedar.Authorize(ps, entities, req); d != cedar.Allow {
			b.Fatalf("cedar: %v %+v", d, diag)
		}
		b.ReportAllocs()
		for b.Loop() {
			cedar.Authorize(ps, entities, req)
		}
	}
}

func BenchmarkGatehouseIAM(b *testing.B) {
	for _, n := range sizes {
		b.Run(fmt.Sprintf("N=%d", n), benchIAM(n))
	}
}

func BenchmarkCedarGo(b *testing.B) {
	for _, n := range sizes {
		b.Run(fmt.Sprintf("N=%d", n), benchCedar(n))
	}
}

// TestScenarioAgrees checks that both engines allow the request, so the
// benchmark compares like with like.
func TestScenarioAgrees(t *testing.T) {
	for _, n := range sizes {
		if d := iamPolicy(n).Evaluate(iamRequest(n)).Decision; d != iam.Allowed {
			t.Errorf("N=%d gatehouse: %s", n, d)
		}
		entities, req := cedarRequest(n)
		if d, _ := cedar.Authorize(cedarPolicy(n), entities, req); d != cedar.Allow {
			t.Errorf("N=%d cedar: %v", n, d)
		}
	}
}

// TestReport prints the ns/op ratio table for docs/benchmarks.md when
// BENCH_REPORT=1. It measures; it asserts nothing.
func TestReport(t *testing.T) {
	if os.Getenv("BENCH_REPORT") != "1" {
		t.Skip("set BENCH_REPORT=1 to print the comparison table")
	}
	var first float64
	fmt.Println("| N | gatehouse ns/op | cedar-go ns/op | gatehouse / cedar-go | gatehouse N / N=20 |")
	fmt.Println("|---:|---:|---:|---:|---:|")
	for _, n := range sizes {
		g := testing.Benchmark(benchIAM(n))
		c := testing.Benchmark(benchCedar(n))
		gn, cn := float64(g.NsPerOp()), float64(c.NsPerOp())
		if n == 20 {
			first = gn
		}
		scale := "-"
		if first > 0 {
			scale = fmt.Sprintf("%.2f×", gn/first)
		}
		fmt.Printf("| %d | %.0f (%d allocs) | %.0f (%d allocs) | %.4f× | %s |\n", n, gn, g.AllocsPerOp(), cn, c.AllocsPerOp(), gn/cn, scale)
	}
}
