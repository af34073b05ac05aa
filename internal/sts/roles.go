package sts

import (
	"context"
	"errors"
	"fmt"
	"regexp"

	"github.com/gatehouse-dev/gatehouse/internal/decision"
)

// ARN shapes (AWS IAM identifiers, "IAM ARNs").
var (
	roleARNRE = regexp.MustCompile(`^arn:aws:iam::([0-9]{12}):role(/|/[\x21-\x7e]*/)([\w+=,.@-]{1,64})$`)
	samlARNRE = regexp.MustCompile(`^arn:aws:iam::([0-9]{12}):saml-provider/([\w.-]{1,128})$`)
	oidcARNRE = regexp.MustCompile(`^arn:aws:iam::([0-9]{12}):oidc-provider/(.+)$`)
)

// roleRef is a parsed role ARN.
type roleRef struct {
	ARN, Path, Name string
}

// parseRoleARN checks a RoleArn parameter: a role of this account.
func (s *Service) parseRoleARN(param, v string) (roleRef, *Error) {
	m := roleARNRE.FindStringSubmatch(v)
	if m == nil {
		e := newErr(CodeValidationError, "role-arn", fmt.Sprintf("%s %q is not an IAM role ARN.", param, clip(v)),
			fmt.Sprintf("pass arn:aws:iam::%s:role/<name>.", s.o.AccountID))
		if samlARNRE.MatchString(v) || oidcARNRE.MatchString(v) {
			e.Cause = fmt.Sprintf("%s %q names an identity provider, not a role.", param, clip(v))
		}
		return roleRef{}, e
	}
	if m[1] != s.o.AccountID {
		return roleRef{}, newErr(CodeValidationError, "account",
			fmt.Sprintf("%s %q is in account %s; this gatehouse is account %s.", param, clip(v), m[1], s.o.AccountID),
			fmt.Sprintf("use arn:aws:iam::%s:role/%s (the account id is the sts.account_id setting).", s.o.AccountID, m[3]))
	}
	return roleRef{ARN: v, Path: m[2], Name: m[3]}, nil
}

// roleEntry is a role compiled by the decision point.
type roleEntry = decision.Role

// errNoRole is returned by role when the role does not exist.
var errNoRole = decision.ErrNoRole

// role returns the role named by ref, compiled, from the decision point's
// cache. A missing role (or one whose path differs) is errNoRole.
func (s *Service) role(ctx context.Context, ref roleRef) (*roleEntry, error) {
	re, err := s.dp.RoleByARN(ctx, ref.Name, ref.ARN)
	if err != nil && !errors.Is(err, errNoRole) {
		return nil, fmt.Errorf("sts: %w", err)
	}
	return re, err
}

// trustCheck is one trust-policy question: may principal (of type typ)
// perform action on the role, with these condition keys?
type trustCheck struct {
	Action     string
	Type       string   // "Federated" or "AWS"
	Principals []string // any of them may be named (role ARN and session ARN)
	Context    map[string][]string
}

// checkTrust asks the decision point whether the role's trust policy
// admits the caller, and words a refusal in STS's error model. An explicit
// deny for any principal denies; otherwise one of them must be allowed.
func (s *Service) checkTrust(re *roleEntry, tc trustCheck) *Error {
	a := s.dp.Trust(re, decision.TrustRequest{Action: tc.Action, Type: tc.Type, Principals: tc.Principals, Context: tc.Context})
	switch a.Outcome {
	case decision.TrustAllowed:
		return nil
	case decision.TrustInvalid:
		return &Error{Code: CodeAccessDenied, Reason: "trust-policy-invalid",
			Cause: fmt.Sprintf("The trust policy of role %s is not a valid policy.", re.ARN),
			Fix:   "an administrator must fix the role's trust policy.", Err: re.TrustErr}
	case decision.TrustDenied:
		return &Error{Code: CodeAccessDenied, Reason: "trust-policy-deny",
			Cause: fmt.Sprintf("Not authorized to perform %s on %s: the role's trust policy denies it (%s).", tc.Action, re.ARN, a.Reason),
			Fix:   "ask an administrator to change the Deny statement of the role's trust policy."}
	case decision.TrustNotNamed:
		return &Error{Code: CodeAccessDenied, Reason: "trust-policy-principal",
			Cause: fmt.Sprintf("%s is not in the trust policy of role %s.", tc.Principals[0], re.ARN),
			Fix: fmt.Sprintf("add %q as Principal.%s in a trust policy statement allowing %s, or use a role that trusts it.",
				tc.Principals[0], tc.Type, tc.Action)}
	}
	return &Error{Code: CodeAccessDenied, Reason: "trust-policy-condition",
		Cause: fmt.Sprintf("Not authorized to perform %s on %s: the trust policy names %s but no statement allowing %s matches (%s).",
			tc.Action, re.ARN, tc.Principals[0], tc.Action, a.Reason),
		Fix: "check the Action and Condition of the trust policy statement (for example SAML:aud, the audience, or session tags)."}
}
