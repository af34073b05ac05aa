// Package oracle compares gatehouse's IAM evaluator with an independent
// implementation, @cloud-copilot/iam-simulate, on random policies and
// requests from a seeded generator.
//
// Licence: iam-simulate is AGPL-3.0. It is installed by npm into this
// test-only folder (node_modules is git-ignored) and runs only as a separate
// node process fed JSON on stdin. No gatehouse code imports, links or copies
// it; this folder builds into no binary.
package oracle

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/iam"
	"github.com/gatehouse-dev/gatehouse/internal/iam/iamtest"
)

// exception is a documented, accepted disagreement with the oracle.
type exception struct {
	ID     string   `json:"id"`
	Seeds  []uint64 `json:"seeds"`
	Ours   string   `json:"ours"`
	Oracle string   `json:"oracle"`
	Reason string   `json:"reason"`
	AWSDoc string   `json:"aws_doc"`
}

type verdict struct {
	Decision string `json:"decision"`
	Error    string `json:"error"`
}

func loadExceptions(t *testing.T) map[uint64]exception {
	b, err := os.ReadFile("exceptions.json")
	if err != nil {
		t.Fatal(err)
	}
	var list []exception
	if err := json.Unmarshal(b, &list); err != nil {
		t.Fatalf("exceptions.json: %v", err)
	}
	m := map[uint64]exception{}
	for _, e := range list {
		if e.Reason == "" || !strings.HasPrefix(e.AWSDoc, "https://docs.aws.amazon.com/") {
			t.Fatalf("exception %q must give a reason and cite the AWS documentation", e.ID)
		}
		for _, s := range e.Seeds {
			m[s] = e
		}
	}
	return m
}

func run(t *testing.T, ctx context.Context, name string, args ...string) {
	t.Helper()
	cmd := exec.CommandContext(ctx, name, args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

func evaluate(t *testing.T, c iamtest.Case) iam.Decision {
	var nps []iam.NamedPolicy
	add := func(name string, layer iam.Layer, doc []byte) {
		p, err := iam.Parse(doc)
		if err != nil {
			t.Fatalf("seed %d: %v", c.Seed, err)
		}
		nps = append(nps, iam.NamedPolicy{Name: name, Layer: layer, Policy: p})
	}
	for _, d := range c.Identity {
		add(d.Name, iam.LayerIdentity, d.JSON())
	}
	if c.Session != nil {
		add("session", iam.LayerSession, iamtest.Doc{Policy: c.Session}.JSON())
	}
	for _, d := range c.Boundary {
		add(d.Name, iam.LayerBoundary, d.JSON())
	}
	comp, err := iam.Compile(nps...)
	if err != nil {
		t.Fatal(err)
	}
	return comp.Evaluate(&iam.Request{Action: c.Action, Resource: c.Resource, Context: c.Context, Principal: c.Principal}).Decision
}

// TestOracleAgreement runs N generated cases (GATEHOUSE_IAM_ORACLE_N, default 2000)
// through both evaluators. Every disagreement fails the test unless
// exceptions.json lists its seed with the AWS documentation that justifies
// our answer.
func TestOracleAgreement(t *testing.T) {
	if os.Getenv("GATEHOUSE_IAM_ORACLE") != "1" {
		t.Skip("oracle comparison is off: set GATEHOUSE_IAM_ORACLE=1 (needs node and npm; installs @cloud-copilot/iam-simulate, pinned in package.json, into this folder)")
	}
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("GATEHOUSE_IAM_ORACLE=1 but %s is not installed: %v", tool, err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if _, err := os.Stat("node_modules/@cloud-copilot/iam-simulate/package.json"); err != nil {
		run(t, ctx, "npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts")
	}
	n := 2000
	if s := os.Getenv("GATEHOUSE_IAM_ORACLE_N"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v <= 0 {
			t.Fatalf("GATEHOUSE_IAM_ORACLE_N=%q: want a positive number", s)
		}
		n = v
	}
	exceptions := loadExceptions(t)
	cases := make([]iamtest.Case, n)
	for i := range cases {
		cases[i] = iamtest.Generate(uint64(i))
	}
	input, err := json.Marshal(cases)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, "node", "oracle.js")
	cmd.Stdin = bytes.NewReader(input)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node oracle.js: %v\n%s", err, stderr.String())
	}
	var verdicts []verdict
	if err := json.Unmarshal(out, &verdicts); err != nil || len(verdicts) != n {
		t.Fatalf("oracle output: %v (%d verdicts for %d cases)", err, len(verdicts), n)
	}
	var agree, excepted, oracleErrors int
	byDecision := map[string]int{}
	var failures []string
	usedExceptions := map[string]int{}
	for i, c := range cases {
		v := verdicts[i]
		if v.Error != "" {
			oracleErrors++
			if oracleErrors <= 3 {
				t.Logf("seed %d: oracle rejected the case: %s", c.Seed, v.Error)
			}
			continue
		}
		ours := evaluate(t, c).String()
		byDecision[ours]++
		if ours == v.Decision {
			agree++
			continue
		}
		if e, ok := exceptions[c.Seed]; ok && e.Ours == ours && e.Oracle == v.Decision {
			excepted++
			usedExceptions[e.ID]++
			continue
		}
		b, _ := json.Marshal(c)
		failures = append(failures, fmt.Sprintf("seed %d: gatehouse %s, oracle %s\n  case: %s", c.Seed, ours, v.Decision, b))
	}
	ids := make([]string, 0, len(usedExceptions))
	for id, k := range usedExceptions {
		ids = append(ids, fmt.Sprintf("%s×%d", id, k))
	}
	sort.Strings(ids)
	t.Logf("oracle @cloud-copilot/iam-simulate: %d cases, %d agree, %d documented exceptions %v, %d disagreements, %d rejected by the oracle; our decisions %v",
		n, agree, excepted, ids, len(failures), oracleErrors, byDecision)
	if oracleErrors > n/20 {
		t.Errorf("the oracle rejected %d of %d cases: the generator makes input it cannot check", oracleErrors, n)
	}
	for i, f := range failures {
		if i == 20 {
			t.Errorf("… and %d more", len(failures)-20)
			break
		}
		t.Error(f)
	}
}
