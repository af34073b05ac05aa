package iam

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// caseFile is one testdata/cases/*.json file: data-driven cases in the
// spirit of OPA's test/cases. Each case gives policies, a request and the
// wanted decision and reason substring, or a wanted parse error substring.
type caseFile struct {
	Cases []policyCase `json:"cases"`
}

type policyCase struct {
	Name     string `json:"name"`
	Policies []struct {
		Name   string          `json:"name"`
		Layer  string          `json:"layer"`
		Policy json.RawMessage `json:"policy"`
	} `json:"policies"`
	Request struct {
		Action     string              `json:"action"`
		Resource   string              `json:"resource"`
		Context    map[string][]string `json:"context"`
		Principal  string              `json:"principal"`
		Principals []Identity          `json:"principals"`
	} `json:"request"`
	Want       string `json:"want"`
	WantReason string `json:"want_reason"`
	WantError  string `json:"want_error"`
}

func parseLayer(t *testing.T, s string) Layer {
	switch s {
	case "", "identity":
		return LayerIdentity
	case "session":
		return LayerSession
	case "boundary":
		return LayerBoundary
	}
	t.Fatalf("unknown layer %q", s)
	return 0
}

func TestCases(t *testing.T) {
	files, err := filepath.Glob("testdata/cases/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no case files: %v", err)
	}
	total := 0
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var cf caseFile
		dec := json.NewDecoder(strings.NewReader(string(data)))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&cf); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		base := strings.TrimSuffix(filepath.Base(file), ".json")
		for _, tc := range cf.Cases {
			total++
			t.Run(base+"/"+tc.Name, func(t *testing.T) {
				var nps []NamedPolicy
				var parseErrs []string
				for _, p := range tc.Policies {
					pol, err := Parse(p.Policy)
					if err != nil {
						parseErrs = append(parseErrs, err.Error())
						continue
					}
					nps = append(nps, NamedPolicy{Name: p.Name, Layer: parseLayer(t, p.Layer), Policy: pol})
				}
				if tc.WantError != "" {
					joined := strings.Join(parseErrs, "\n")
					if !strings.Contains(joined, tc.WantError) {
						t.Fatalf("parse errors %q, want one containing %q", joined, tc.WantError)
					}
					return
				}
				if len(parseErrs) > 0 {
					t.Fatalf("parse: %v", parseErrs)
				}
				c, err := Compile(nps...)
				if err != nil {
					t.Fatal(err)
				}
				req := &Request{Action: tc.Request.Action, Resource: tc.Request.Resource, Context: tc.Request.Context, Principal: tc.Request.Principal, Principals: tc.Request.Principals}
				got := c.Evaluate(req)
				if got.Decision.String() != tc.Want {
					t.Fatalf("decision %s (%s), want %s", got.Decision, got.Reason(), tc.Want)
				}
				if !strings.Contains(got.Reason(), tc.WantReason) {
					t.Fatalf("reason %q, want it to contain %q", got.Reason(), tc.WantReason)
				}
				if lin := c.evaluateLinear(req); lin != got.Decision {
					t.Fatalf("indexed decision %s, linear scan %s", got.Decision, lin)
				}
			})
		}
	}
	if total < 60 {
		t.Errorf("only %d cases, want at least 60", total)
	}
}
