package iam

import (
	"errors"
	"fmt"
	"strings"
)

// PolicyDocument is a named JSON policy document given to Simulate.
type PolicyDocument struct {
	Name string
	JSON []byte
}

// SimulateInput is what `gatehouse policy simulate` evaluates.
type SimulateInput struct {
	Policies        []PolicyDocument // identity policies
	SessionPolicies []PolicyDocument
	Boundaries      []PolicyDocument
	Action          string
	Resource        string
	// Principals are the caller's typed identities (see Request.Principals).
	Principals []Identity
	// Principal is an untyped caller, used when Principals is empty.
	//
	// Deprecated: set Principals.
	Principal string
	Context   map[string][]string
}

// SimulateOutput is the decision of Simulate in a form fit for printing.
type SimulateOutput struct {
	Decision          Decision       `json:"decision"`
	Allowed           bool           `json:"allowed"`
	Reason            string         `json:"reason"`
	Statements        []StatementRef `json:"statements,omitempty"`
	SessionStatement  *StatementRef  `json:"session_statement,omitempty"`
	BoundaryStatement *StatementRef  `json:"boundary_statement,omitempty"`
	Action            string         `json:"action"`
	Resource          string         `json:"resource"`
}

// ErrInvalidInput is matched (errors.Is) by every Simulate error: a policy
// that does not parse, or a request that is incomplete.
var ErrInvalidInput = errors.New("iam: invalid simulation input")

// Simulate parses the policies, evaluates one request and explains the
// decision. It is pure: the caller reads files and supplies any time keys
// (aws:CurrentTime, aws:EpochTime) in Context.
func Simulate(in SimulateInput) (SimulateOutput, error) {
	var errs []error
	if strings.TrimSpace(in.Action) == "" {
		errs = append(errs, errors.New("action is required"))
	}
	if strings.TrimSpace(in.Resource) == "" {
		errs = append(errs, errors.New("resource is required"))
	}
	var nps []NamedPolicy
	add := func(docs []PolicyDocument, layer Layer) {
		for i, d := range docs {
			name := d.Name
			if name == "" {
				name = fmt.Sprintf("%s%d", layer, i+1)
			}
			p, err := Parse(d.JSON)
			if err != nil {
				errs = append(errs, fmt.Errorf("%s policy %q: %w", layer, name, err))
				continue
			}
			nps = append(nps, NamedPolicy{Name: name, Layer: layer, Policy: p})
		}
	}
	add(in.Policies, LayerIdentity)
	add(in.SessionPolicies, LayerSession)
	add(in.Boundaries, LayerBoundary)
	if len(errs) > 0 {
		return SimulateOutput{}, errors.Join(append([]error{ErrInvalidInput}, errs...)...)
	}
	c, err := Compile(nps...)
	if err != nil {
		return SimulateOutput{}, errors.Join(ErrInvalidInput, err)
	}
	r := c.Evaluate(&Request{Action: in.Action, Resource: in.Resource, Context: in.Context, Principals: in.Principals, Principal: in.Principal})
	return SimulateOutput{
		Decision:          r.Decision,
		Allowed:           r.Decision == Allowed,
		Reason:            r.Reason(),
		Statements:        r.Statements,
		SessionStatement:  r.SessionStatement,
		BoundaryStatement: r.BoundaryStatement,
		Action:            r.Action,
		Resource:          r.Resource,
	}, nil
}
