package sts

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/awsname"
	"github.com/gatehouse-dev/gatehouse/internal/clientip"
	"github.com/gatehouse-dev/gatehouse/internal/iam"
	"github.com/gatehouse-dev/gatehouse/internal/identity"
	"github.com/gatehouse-dev/gatehouse/internal/sts/credentials"
)

// The one federation pipeline. AssumeRoleWithWebIdentity,
// AssumeRoleWithSAML and AssumeRole differ only in their proof of who asks
// (a web identity token, a SAML assertion, the caller's own temporary
// credentials). Each flow parses and verifies its proof into a federation
// value; federate does everything else, the same way for all three:
// validate the common parameters, look up the role, bind the identity,
// choose the duration, ask the decision point whether the role's trust
// policy admits the caller, mint the credentials and record the audit
// event (through ServeHTTP's one audit path).

// flowSpec is what the pipeline needs to know about a flow besides its
// proof: its action, the trust-policy action it asks for, the parameters
// it takes, and the remedies of the refusals that depend on the flow.
type flowSpec struct {
	// Action is the STS action, also the name of the result element.
	Action string
	// TrustAction is the action the role's trust policy must allow.
	TrustAction string
	// AuthMethod is the audit actor's authentication method; "" when
	// begin sets it (AssumeRole: sigv4).
	AuthMethod string
	// Takes lists the flow's own parameters. Every flow takes RoleArn,
	// DurationSeconds, Policy and PolicyArns; a parameter of another flow
	// (federationParams) that is not listed is refused, never dropped. A
	// list parameter is named by its prefix ("Tags").
	Takes []string
	// NoRoleFix, TagSessionFix and SourceIdentityFix are the Fix of the
	// refusals for a missing role, a trust policy without sts:TagSession,
	// and one without sts:SetSourceIdentity.
	NoRoleFix, TagSessionFix, SourceIdentityFix string
}

// takes reports whether the flow takes parameter name.
func (sp *flowSpec) takes(name string) bool { return slices.Contains(sp.Takes, name) }

// flow is one way of proving who asks. A flow value serves one request:
// check and prove may keep what they parsed for result.
type flow interface {
	spec() *flowSpec
	// begin runs before any parameter is read. AssumeRole verifies the
	// signature of its caller here, so that an unsigned call is refused as
	// such whatever its parameters.
	begin(r *http.Request, info *auditInfo) *Error
	// check reads and checks, without I/O, the parameters only this flow
	// takes. It runs before the common parameters are validated.
	check(req *request, info *auditInfo) *Error
	// prove verifies the proof against the validated common input and
	// returns who asks and what the proof asserts. It runs once every
	// parameter is known to be acceptable, so that a typo never burns a
	// one-time SAML assertion.
	prove(ctx context.Context, in *commonInput, info *auditInfo) (*federation, *Error)
	// result is the flow's answer for the issued credentials.
	result(out issued, pol sessionPolicy) result
}

// commonInput is the validated parameters every flow shares.
type commonInput struct {
	RoleARN string
	Ref     roleRef
	// SessionName is the RoleSessionName parameter; "" when the flow
	// takes the session name from its proof (SAML).
	SessionName string
	// Duration is DurationSeconds; zero when absent.
	Duration time.Duration
	Policy   sessionPolicy
	// Tags, TransitiveKeys and SourceIdentity are the AssumeRole
	// parameters; SetSourceIdentity tells whether SourceIdentity was sent.
	Tags              map[string]string
	TransitiveKeys    []string
	SourceIdentity    string
	SetSourceIdentity bool
}

// federation is what a verified proof contributes to the pipeline. Nothing
// in it comes from the request unverified: the flow filled it from its
// proof and from the validated common input.
type federation struct {
	// Identity is the verified federated identity, bound to a principal
	// through identity.Binder; nil when Parent is the caller.
	Identity *identity.FederatedIdentity
	// Parent is the calling session of a chained AssumeRole.
	Parent *credentials.Claims
	// PrincipalType ("Federated" or "AWS") and Principals are what the
	// trust policy must name; Principals[0] is named in refusals.
	PrincipalType string
	Principals    []string
	// CallerARN is the caller's session ARN (AssumeRole), for refusals.
	CallerARN   string
	SessionName string
	// SourceIdentity is the source identity the IdP asserts or the caller
	// requests ("" none). Asserting one needs sts:SetSourceIdentity.
	SourceIdentity string
	// Tags are the session tags the proof or the caller sets; setting
	// them needs sts:TagSession.
	Tags           map[string]string
	TransitiveKeys []string
	Groups         []string
	// RoleLimit is the IdP's role restriction (nil: none).
	RoleLimit *credentials.RoleLimit
	// IdPMaxDuration is the IdP's SessionDuration (0: none), and
	// IdPSessionEnd the end of the IdP session (zero: none).
	IdPMaxDuration time.Duration
	IdPSessionEnd  time.Time
	// Context holds the flow's own trust-policy condition keys (SAML:aud,
	// <issuer>:sub, the caller's principal keys, sts:ExternalId, ...).
	Context map[string][]string
}

// federationParams are the parameters of the three flows beyond the
// common ones. A flow that does not take one of them refuses it.
var federationParams = []string{
	"RoleSessionName", "WebIdentityToken", "ProviderId", "PrincipalArn", "SAMLAssertion",
	"Tags", "TransitiveTagKeys", "SourceIdentity", "ExternalId", "SerialNumber", "TokenCode", "ProvidedContexts",
}

// federate runs the one pipeline for fl. See the comment at the top of
// this file for its steps; every refusal is an *Error in STS's model.
func (s *Service) federate(ctx context.Context, r *http.Request, req *request, info *auditInfo, fl flow) (result, *Error) {
	sp := fl.spec()
	info.AuthMethod = sp.AuthMethod
	if e := fl.begin(r, info); e != nil {
		return result{}, e
	}
	in, e := s.commonParams(ctx, req, fl, info)
	if e != nil {
		return result{}, e
	}
	f, e := fl.prove(ctx, in, info)
	if e != nil {
		return result{}, e
	}
	re, err := s.role(ctx, in.Ref)
	if errors.Is(err, errNoRole) {
		return result{}, newErr(CodeAccessDenied, "no-role", fmt.Sprintf("Role %s does not exist in gatehouse.", in.RoleARN), sp.NoRoleFix)
	}
	if err != nil {
		return result{}, internalErr(err)
	}
	info.RoleID = re.Stored.ID
	principalID, userName, e := s.principalOf(ctx, r, f, info)
	if e != nil {
		return result{}, e
	}
	d, e := s.federatedDuration(in.Duration, re, f)
	if e != nil {
		return result{}, e
	}
	tctx := s.trustContext(r, f)
	if e := s.trustAll(re, sp, f, tctx); e != nil {
		return result{}, e
	}
	if e := in.Policy.pack(f.Tags, "pass a smaller session policy or fewer session tags."); e != nil {
		return result{}, e
	}
	if e := s.callerMayAssume(ctx, f, re, tctx); e != nil {
		return result{}, e
	}
	sourceID := f.SourceIdentity
	if sourceID == "" && f.Parent == nil {
		sourceID = awsname.SessionNameFrom(userName)
	}
	out, e := s.issue(ctx, issueInput{
		Role: re, SessionName: f.SessionName,
		PrincipalID: principalID, UserName: userName,
		SourceIdentity: sourceID, Groups: f.Groups,
		Tags: f.Tags, TransitiveKeys: f.TransitiveKeys,
		Policy: in.Policy, Duration: d, Parent: f.Parent, RoleLimit: f.RoleLimit,
	}, info)
	if e != nil {
		return result{}, e
	}
	return fl.result(out, in.Policy), nil
}

// commonParams reads and validates, without I/O except resolving managed
// policy ARNs, every parameter: RoleArn (and RoleSessionName when the flow
// takes it) first, then the flow's own, then the common ones. A parameter
// another flow takes is validated like there, then refused, so that the
// same bad input gets the same answer from every flow.
func (s *Service) commonParams(ctx context.Context, req *request, fl flow, info *auditInfo) (*commonInput, *Error) {
	sp := fl.spec()
	in := &commonInput{}
	var e *Error
	if in.RoleARN, e = req.required("RoleArn"); e != nil {
		return nil, e
	}
	info.RoleARN = in.RoleARN
	if sp.takes("RoleSessionName") {
		if in.SessionName, e = req.required("RoleSessionName"); e != nil {
			return nil, e
		}
		info.SessionName = in.SessionName
	}
	if e := fl.check(req, info); e != nil {
		return nil, e
	}
	if in.Ref, e = s.parseRoleARN("RoleArn", in.RoleARN); e != nil {
		return nil, e
	}
	if name, ok := req.Params["RoleSessionName"]; ok {
		if err := awsname.RoleSessionName(name); err != nil {
			return nil, newErr(CodeValidationError, "role-session-name",
				fmt.Sprintf("RoleSessionName %q: %v.", clip(name), err),
				"pass a session name such as the user's email address.")
		}
	}
	if in.Duration, e = req.durationParam(); e != nil {
		return nil, e
	}
	if in.Tags, in.TransitiveKeys, e = sessionTagParams(req); e != nil {
		return nil, e
	}
	if in.Policy, e = s.sessionPolicies(ctx, req, in.Tags); e != nil {
		return nil, e
	}
	if in.SourceIdentity, in.SetSourceIdentity = req.Params["SourceIdentity"]; in.SetSourceIdentity {
		if err := awsname.SourceIdentity(in.SourceIdentity); err != nil {
			return nil, newErr(CodeValidationError, "source-identity",
				fmt.Sprintf("SourceIdentity %q: %v.", clip(in.SourceIdentity), err), "")
		}
	}
	return in, refuseOthers(req, sp)
}

// refuseOthers refuses a parameter of another flow that this flow does
// not take: it would otherwise be accepted and silently ignored.
func refuseOthers(req *request, sp *flowSpec) *Error {
	for _, p := range federationParams {
		if sp.takes(p) {
			continue
		}
		for k := range req.Params {
			if k == p || strings.HasPrefix(k, p+".member.") {
				return newErr(CodeValidationError, "unsupported-parameter",
					fmt.Sprintf("%s does not take the parameter %s.", sp.Action, clip(k)),
					"omit it: with AssumeRoleWithSAML and AssumeRoleWithWebIdentity the IdP asserts the session name, session tags and source identity.")
			}
		}
	}
	return nil
}

// principalOf is the principal the credentials are issued to: the bound
// directory user or federated identity, or the calling session's.
func (s *Service) principalOf(ctx context.Context, r *http.Request, f *federation, info *auditInfo) (id, name string, _ *Error) {
	if f.Identity == nil {
		return f.Parent.PrincipalID, f.Parent.UserName, nil
	}
	b, e := s.bind(ctx, r, *f.Identity, info)
	if e != nil {
		return "", "", e
	}
	return b.PrincipalID, b.UserName, nil
}

// federatedDuration chooses the session duration: DurationSeconds within
// the role's, the IdP's and the chaining caps, and never beyond the end of
// the IdP session (AWS: whichever is shorter), but never below the STS
// minimum.
func (s *Service) federatedDuration(requested time.Duration, re *roleEntry, f *federation) (time.Duration, *Error) {
	d, e := s.chooseDuration(requested, re, f.IdPMaxDuration, f.Parent != nil)
	if e != nil {
		return 0, e
	}
	if !f.IdPSessionEnd.IsZero() {
		if left := f.IdPSessionEnd.Sub(s.now()).Truncate(time.Second); left < d {
			d = max(left, credentials.MinSessionDuration)
		}
	}
	return d, nil
}

// trustContext is the condition keys of the trust question: the request's
// global keys, the flow's own, and the session name, source identity and
// session tags being asked for.
func (s *Service) trustContext(r *http.Request, f *federation) map[string][]string {
	tctx := s.baseContext(r)
	for k, v := range f.Context {
		tctx[k] = v
	}
	tctx["sts:rolesessionname"] = []string{f.SessionName}
	if f.SourceIdentity != "" {
		tctx["sts:sourceidentity"] = []string{f.SourceIdentity}
	}
	tagContext(tctx, f.Tags)
	return tctx
}

// baseContext holds the global condition keys of the request itself.
func (s *Service) baseContext(r *http.Request) map[string][]string {
	now := s.now().UTC()
	ctx := map[string][]string{
		"aws:currenttime":     {now.Format(time.RFC3339)},
		"aws:epochtime":       {strconv.FormatInt(now.Unix(), 10)},
		"aws:securetransport": {strconv.FormatBool(clientip.SecureTransport(r))},
	}
	if ip := remoteIP(r); ip != "" {
		ctx["aws:sourceip"] = []string{ip}
	}
	if ua := r.UserAgent(); ua != "" {
		ctx["aws:useragent"] = []string{ua}
	}
	return ctx
}

// trustAll asks the decision point whether the role's trust policy admits
// the caller for the flow's action, and for sts:TagSession and
// sts:SetSourceIdentity when the session sets tags or a source identity.
func (s *Service) trustAll(re *roleEntry, sp *flowSpec, f *federation, tctx map[string][]string) *Error {
	trust := trustCheck{Action: sp.TrustAction, Type: f.PrincipalType, Principals: f.Principals, Context: tctx}
	if e := s.checkTrust(re, trust); e != nil {
		return e
	}
	if len(f.Tags) > 0 {
		trust.Action = "sts:TagSession"
		if e := s.checkTrust(re, trust); e != nil {
			e.Fix = sp.TagSessionFix
			return e
		}
	}
	if f.SourceIdentity != "" {
		trust.Action = "sts:SetSourceIdentity"
		if e := s.checkTrust(re, trust); e != nil {
			e.Fix = sp.SourceIdentityFix
			return e
		}
	}
	return nil
}

// callerMayAssume is the identity-based side of the AWS cross-principal
// check for a chained AssumeRole: the calling session's own permissions
// must allow sts:AssumeRole on the target role. Federated flows have no
// calling session and pass.
func (s *Service) callerMayAssume(ctx context.Context, f *federation, re *roleEntry, tctx map[string][]string) *Error {
	if f.Parent == nil {
		return nil
	}
	res, err := s.Authorize(ctx, f.Parent, "sts:AssumeRole", re.ARN, tctx)
	if err != nil {
		return internalErr(err)
	}
	if res.Decision != iam.Allowed {
		return newErr(CodeAccessDenied, "identity-policy",
			fmt.Sprintf("User: %s is not authorized to perform: sts:AssumeRole on resource: %s (%s).", f.CallerARN, re.ARN, res.Reason()),
			fmt.Sprintf("allow sts:AssumeRole on %s in the policies of role %s.", re.ARN, f.Parent.RoleARN))
	}
	return nil
}
