package decision

import "github.com/gatehouse-dev/gatehouse/internal/iam"

// TrustRequest is one issuance question: may a caller holding any of
// Principals (all of type Type, "Federated" or "AWS") perform Action
// (sts:AssumeRole*, sts:TagSession, sts:SetSourceIdentity) on the role,
// with these condition keys?
type TrustRequest struct {
	Action     string
	Type       string
	Principals []string
	Context    map[string][]string
}

// TrustOutcome classifies a trust answer, so that each front end can say
// why in its own error model.
type TrustOutcome int

// Trust outcomes.
const (
	// TrustAllowed: an Allow statement admits one of the principals and no
	// Deny statement applies.
	TrustAllowed TrustOutcome = iota
	// TrustInvalid: the stored trust policy does not compile (Role.TrustErr).
	TrustInvalid
	// TrustDenied: a Deny statement applies to one of the principals.
	TrustDenied
	// TrustNotNamed: no Allow statement names any of the principals.
	TrustNotNamed
	// TrustCondition: a statement names a principal, but none allowing the
	// action matches (action or condition).
	TrustCondition
)

// TrustAnswer is the answer to a TrustRequest. Reason is the evaluator's
// explanation (the deciding statement, or why none matched).
type TrustAnswer struct {
	Outcome TrustOutcome
	Reason  string
}

// Trust evaluates the role's trust policy: an explicit deny for any
// principal denies; otherwise one of them must be allowed. It does no I/O.
func (p *Point) Trust(role *Role, q TrustRequest) TrustAnswer {
	if role.TrustErr != nil {
		return TrustAnswer{Outcome: TrustInvalid, Reason: role.TrustErr.Error()}
	}
	c := role.trust[q.Type]
	if c == nil {
		return TrustAnswer{Outcome: TrustNotNamed}
	}
	var allowed bool
	var last string
	for _, pr := range q.Principals {
		res := c.Evaluate(&iam.Request{Action: q.Action, Resource: role.ARN,
			Principals: []iam.Identity{{Type: q.Type, ID: pr}}, Context: q.Context})
		switch res.Decision {
		case iam.ExplicitDeny:
			return TrustAnswer{Outcome: TrustDenied, Reason: res.Reason()}
		case iam.Allowed:
			allowed = true
		default:
			last = res.Reason()
		}
	}
	if allowed {
		return TrustAnswer{Outcome: TrustAllowed}
	}
	for _, pr := range q.Principals {
		if namesPrincipal(role.trustDoc, q.Type, pr) {
			return TrustAnswer{Outcome: TrustCondition, Reason: last}
		}
	}
	return TrustAnswer{Outcome: TrustNotNamed, Reason: last}
}
