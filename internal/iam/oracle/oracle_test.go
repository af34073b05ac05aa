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

	"github.com/gatehouse-dev/gatehouse/internal/iam"
	"github.com/gatehouse-dev/gatehouse/internal/iam/iamtest"
)

// exception is a documented, accepted disagreement with the oracle: the
// seeds it covers, each with both answers, and evidence (small cases with
// the answers both evaluators are known to give) that shows why the oracle
// is wrong. The evidence is re-checked on every run, so an oracle upgrade
// that changes its behaviour is noticed.
type exception struct {
	ID     string          `json:"id"`
	Reason string          `json:"reason"`
	AWSDoc string          `json:"aws_doc"`
	Cases  []exceptionCase `json:"cases"`
	// DataCases are data-driven cases (internal/iam/testdata/cases), by
	// "file/name", on which the oracle disagrees for this reason.
	DataCases []dataCaseException `json:"data_cases,omitempty"`
	Evidence  []evidence          `json:"evidence"`
}

type dataCaseException struct {
	Case   string `json:"case"`
	Ours   string `json:"ours"`
	Oracle string `json:"oracle"`
}

type exceptionCase struct {
	Seed   uint64 `json:"seed"`
	Ours   string `json:"ours"`
	Oracle string `json:"oracle"`
}

type evidence struct {
	Note   string       `json:"note"`
	Case   iamtest.Case `json:"case"`
	Ours   string       `json:"ours"`
	Oracle string       `json:"oracle"`
}

type verdict struct {
	Decision string `json:"decision"`
	Error    string `json:"error"`
}

// excepted is one seed's accepted disagreement.
type excepted struct {
	exceptionCase
	id string
}

func loadExceptions(t *testing.T) ([]exception, map[uint64]excepted) {
	b, err := os.ReadFile("exceptions.json")
	if err != nil {
		t.Fatal(err)
	}
	var list []exception
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&list); err != nil {
		t.Fatalf("exceptions.json: %v", err)
	}
	m := map[uint64]excepted{}
	for _, e := range list {
		if e.Reason == "" || !strings.HasPrefix(e.AWSDoc, "https://docs.aws.amazon.com/") {
			t.Fatalf("exception %q must give a reason and cite the AWS documentation", e.ID)
		}
		if len(e.Evidence) == 0 {
			t.Fatalf("exception %q must give evidence", e.ID)
		}
		for _, c := range e.Cases {
			if prev, dup := m[c.Seed]; dup {
				t.Fatalf("seed %d is in exceptions %q and %q", c.Seed, prev.id, e.ID)
			}
			m[c.Seed] = excepted{c, e.ID}
		}
	}
	return list, m
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
	t.Helper()
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
	return comp.Evaluate(&iam.Request{Action: c.Action, Resource: c.Resource, Context: c.Context, Principals: iam.IdentitiesOf(c.Principal)}).Decision
}

// setUp skips the test unless GATEHOUSE_IAM_ORACLE=1, and installs the
// oracle into this folder when it is missing. The context ends with the test.
func setUp(t *testing.T) context.Context {
	t.Helper()
	if os.Getenv("GATEHOUSE_IAM_ORACLE") != "1" {
		t.Skip("oracle comparison is off: set GATEHOUSE_IAM_ORACLE=1 (needs node and npm; installs @cloud-copilot/iam-simulate, pinned in package.json, into this folder)")
	}
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("GATEHOUSE_IAM_ORACLE=1 but %s is not installed: %v", tool, err)
		}
	}
	// The commands run as long as they need; t.Context ends them with the
	// test, and go test -timeout bounds a hang.
	ctx := t.Context()
	if _, err := os.Stat("node_modules/@cloud-copilot/iam-simulate/package.json"); err != nil {
		run(t, ctx, "npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts")
	}
	return ctx
}

// TestOracleAgreement runs N generated cases (GATEHOUSE_IAM_ORACLE_N, default 5000)
// through both evaluators. Every disagreement fails the test unless
// exceptions.json lists its seed with the AWS documentation that justifies
// our answer.
func TestOracleAgreement(t *testing.T) {
	ctx := setUp(t)
	n := 5000
	if s := os.Getenv("GATEHOUSE_IAM_ORACLE_N"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v <= 0 {
			t.Fatalf("GATEHOUSE_IAM_ORACLE_N=%q: want a positive number", s)
		}
		n = v
	}
	list, exceptions := loadExceptions(t)
	cases := make([]iamtest.Case, n)
	for i := range cases {
		cases[i] = iamtest.Generate(uint64(i))
	}
	// The evidence of every exception goes through the oracle in the same
	// run, after the generated cases.
	var ev []evidence
	var evID []string
	for _, e := range list {
		for _, x := range e.Evidence {
			ev = append(ev, x)
			evID = append(evID, e.ID)
		}
	}
	all := append([]iamtest.Case(nil), cases...)
	for _, x := range ev {
		all = append(all, x.Case)
	}
	verdicts := runOracle(t, ctx, all)
	for i, x := range ev {
		v := verdicts[n+i]
		ours := evaluate(t, x.Case).String()
		if v.Error != "" || v.Decision != x.Oracle || ours != x.Ours {
			t.Errorf("exception %q, evidence %q: gatehouse %s (want %s), oracle %s%s (want %s): the behaviour the exception rests on changed; review it",
				evID[i], x.Note, ours, x.Ours, v.Decision, v.Error, x.Oracle)
		}
	}
	verdicts = verdicts[:n]
	var agree, excepted, oracleErrors int
	for i, c := range cases {
		if e, ok := exceptions[c.Seed]; ok && verdicts[i].Error == "" && evaluate(t, c).String() == verdicts[i].Decision {
			t.Errorf("seed %d: both evaluators now give %s; remove it from exception %q", c.Seed, verdicts[i].Decision, e.id)
		}
	}
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
			usedExceptions[e.id]++
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

// runOracle sends the cases to node oracle.js and returns one verdict each.
func runOracle(t *testing.T, ctx context.Context, cases []iamtest.Case) []verdict {
	t.Helper()
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
	if err := json.Unmarshal(out, &verdicts); err != nil || len(verdicts) != len(cases) {
		t.Fatalf("oracle output: %v (%d verdicts for %d cases)", err, len(verdicts), len(cases))
	}
	return verdicts
}

// TestOracleDataCases runs the data-driven cases (internal/iam/testdata/cases)
// that the oracle can take through it: every case without typed principals
// or a wanted parse error. A disagreement fails the test unless an exception
// in exceptions.json lists the case under data_cases with both answers; a
// listed case on which both now agree is reported too.
func TestOracleDataCases(t *testing.T) {
	ctx := setUp(t)
	list, _ := loadExceptions(t)
	listed := map[string]dataCaseException{}
	listedBy := map[string]string{}
	for _, e := range list {
		for _, d := range e.DataCases {
			if prev, dup := listedBy[d.Case]; dup {
				t.Fatalf("data case %q is in exceptions %q and %q", d.Case, prev, e.ID)
			}
			listed[d.Case], listedBy[d.Case] = d, e.ID
		}
	}
	all, err := iamtest.LoadCases("../testdata/cases/*.json")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	var cases []iamtest.Case
	for _, c := range all {
		if oc, ok := c.OracleCase(); ok {
			ids, cases = append(ids, c.ID), append(cases, oc)
		}
	}
	verdicts := runOracle(t, ctx, cases)
	seen := map[string]bool{}
	var agree, excepted, rejected int
	for i, c := range cases {
		v, id := verdicts[i], ids[i]
		seen[id] = true
		ours := evaluate(t, c).String()
		l, isListed := listed[id]
		switch {
		case v.Error != "":
			rejected++
			t.Logf("data case %q: the oracle rejected it: %.120s", id, v.Error)
			if isListed {
				t.Errorf("data case %q: the oracle rejected it (%s); remove it from exception %q", id, v.Error, listedBy[id])
			}
		case ours == v.Decision:
			agree++
			if isListed {
				t.Errorf("data case %q: both evaluators now give %s; remove it from exception %q", id, ours, listedBy[id])
			}
		case isListed && l.Ours == ours && l.Oracle == v.Decision:
			excepted++
		default:
			t.Errorf("data case %q: gatehouse %s, oracle %s", id, ours, v.Decision)
		}
	}
	for id, by := range listedBy {
		if !seen[id] {
			t.Errorf("exception %q lists data case %q, which is not an oracle-checkable case", by, id)
		}
	}
	t.Logf("oracle on data-driven cases: %d checked, %d agree, %d documented exceptions, %d rejected by the oracle", len(cases), agree, excepted, rejected)
	if rejected > len(cases)/10 {
		t.Errorf("the oracle rejected %d of %d data-driven cases", rejected, len(cases))
	}
}
