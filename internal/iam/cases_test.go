package iam

import (
	"strings"
	"testing"

	"github.com/gatehouse-dev/gatehouse/internal/iam/iamtest"
)

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

// TestCases runs the data-driven cases of testdata/cases/*.json (format:
// iamtest.CaseFile). The oracle package runs the same cases through the
// independent simulator.
func TestCases(t *testing.T) {
	cases, err := iamtest.LoadCases("testdata/cases/*.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range cases {
		t.Run(tc.ID, func(t *testing.T) {
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
			var principals []Identity
			for _, p := range tc.Request.Principals {
				principals = append(principals, Identity(p))
			}
			req := &Request{Action: tc.Request.Action, Resource: tc.Request.Resource, Context: tc.Request.Context, Principal: tc.Request.Principal, Principals: principals}
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
	if len(cases) < 60 {
		t.Errorf("only %d cases, want at least 60", len(cases))
	}
}
