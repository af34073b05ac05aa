package sts

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/iam"
	"github.com/gatehouse-dev/gatehouse/internal/identity"
	"github.com/gatehouse-dev/gatehouse/internal/requestid"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/sts/credentials"
)

// Session policy limits (AWS STS API reference, AssumeRole "Policy" and
// "PolicyArns"): the plain-text policy is at most 2048 characters, at most
// 10 managed policy ARNs, and the packed policies and session tags must fit
// the packed limit (reported as PackedPolicySize, a percentage).
const (
	maxPolicyChars = 2048
	maxPolicyARNs  = 10
	// packedLimit is the packed budget. AWS compresses into an undisclosed
	// binary form; gatehouse packs as minified JSON, ARNs and tag text, and
	// reports the percentage of this budget used.
	packedLimit = 2048
)

var policyARNRE = regexp.MustCompile(`^arn:aws:iam::([0-9]{12}|aws):policy/[\x21-\x7e]{1,512}$`)

// sessionPolicy is a validated Policy/PolicyArns pair.
type sessionPolicy struct {
	Doc           string // minified inline policy, "" if none
	ARNs          []string
	PackedPercent int
}

// sessionPolicies validates the Policy and PolicyArns parameters and the
// packed size of policies plus session tags. It is pure except for
// resolving managed ARNs.
func (s *Service) sessionPolicies(ctx context.Context, req *request, tags map[string]string) (sessionPolicy, *Error) {
	var sp sessionPolicy
	if raw, ok := req.Params["Policy"]; ok {
		if n := len([]rune(raw)); n > maxPolicyChars {
			return sp, newErr(CodeValidationError, "policy-length",
				fmt.Sprintf("1 validation error detected: Value at 'policy' failed to satisfy constraint: Member must have length less than or equal to %d (it has %d).", maxPolicyChars, n),
				"shorten the session policy or use PolicyArns.")
		}
		if e := checkSessionPolicy(raw, "Policy"); e != nil {
			return sp, e
		}
		var b bytes.Buffer
		if err := json.Compact(&b, []byte(raw)); err != nil {
			return sp, newErr(CodeMalformedPolicyDocument, "policy-json", "The session policy is not valid JSON: "+err.Error()+".",
				"pass a JSON IAM policy document as Policy.")
		}
		sp.Doc = b.String()
	}
	arns, e := req.members("PolicyArns", "arn", maxPolicyARNs)
	if e != nil {
		return sp, e
	}
	for _, a := range arns {
		if !policyARNRE.MatchString(a) {
			return sp, newErr(CodeValidationError, "policy-arn", fmt.Sprintf("PolicyArns value %q is not a managed policy ARN.", clip(a)),
				"pass arn:aws:iam::<account>:policy/<name>.")
		}
		doc, e := s.managedPolicy(ctx, a)
		if e != nil {
			return sp, e
		}
		if e := checkSessionPolicy(doc, "managed policy "+a); e != nil {
			return sp, e
		}
	}
	sp.ARNs = arns
	return sp, sp.pack(tags, "pass a smaller session policy, fewer PolicyArns or fewer session tags.")
}

// pack sets PackedPercent for the policies with the session tags, and
// refuses with PackedPolicyTooLarge (and fix) above the packed limit.
func (sp *sessionPolicy) pack(tags map[string]string, fix string) *Error {
	size := len(sp.Doc)
	for _, a := range sp.ARNs {
		size += len(a)
	}
	for k, v := range tags {
		size += len(k) + len(v)
	}
	sp.PackedPercent = (size*100 + packedLimit - 1) / packedLimit
	if sp.PackedPercent > 100 {
		return newErr(CodePackedPolicyTooLarge, "packed-size",
			fmt.Sprintf("Packed size of the session policies and session tags is %d%% of the allowed size.", sp.PackedPercent), fix)
	}
	return nil
}

// checkSessionPolicy parses a session policy; it must be an identity-style
// policy (no Principal).
func checkSessionPolicy(doc, what string) *Error {
	p, err := iam.Parse([]byte(doc))
	if err != nil {
		var ve *iam.ValidationError
		msg := err.Error()
		if errors.As(err, &ve) {
			parts := make([]string, 0, len(ve.Issues))
			for _, is := range ve.Issues {
				parts = append(parts, is.String())
			}
			msg = strings.Join(parts, "; ")
		}
		return newErr(CodeMalformedPolicyDocument, "policy-syntax", fmt.Sprintf("The %s is not a valid IAM policy: %s.", what, clip(msg)),
			"fix the policy JSON (Version 2012-10-17, Statement with Effect, Action and Resource).")
	}
	for i, st := range p.Statements {
		if st.Principal != nil || st.NotPrincipal != nil {
			return newErr(CodeMalformedPolicyDocument, "policy-principal",
				fmt.Sprintf("The %s names a principal in Statement[%d]; session policies must not.", what, i),
				"remove Principal from the session policy.")
		}
		if st.Resource == nil && st.NotResource == nil {
			return newErr(CodeMalformedPolicyDocument, "policy-resource",
				fmt.Sprintf("The %s has no Resource in Statement[%d].", what, i), "add a Resource element.")
		}
	}
	return nil
}

func (s *Service) managedPolicy(ctx context.Context, arn string) (string, *Error) {
	if s.o.ManagedPolicies == nil {
		return "", newErr(CodeValidationError, "policy-arn",
			fmt.Sprintf("Managed session policy %s is not known to this gatehouse (managed policies are not configured).", arn),
			"pass the policy inline with the Policy parameter.")
	}
	doc, err := s.o.ManagedPolicies.ManagedPolicy(ctx, arn)
	if errors.Is(err, store.ErrNotFound) {
		return "", newErr(CodeValidationError, "policy-arn", fmt.Sprintf("Managed session policy %s does not exist.", arn),
			"correct the PolicyArns value.")
	}
	if err != nil {
		return "", internalErr(err)
	}
	return doc, nil
}

// chooseDuration applies DurationSeconds, the default and the caps: an
// explicit request above a cap is an error, the default is clamped.
func (s *Service) chooseDuration(requested time.Duration, re *roleEntry, idpMax time.Duration, chained bool) (time.Duration, *Error) {
	roleMax := time.Duration(re.Stored.MaxSessionDuration) * time.Second
	if roleMax == 0 {
		roleMax = store.DefaultMaxSessionDuration * time.Second
	}
	if requested != 0 {
		switch {
		case chained && requested > credentials.MaxChainedDuration:
			return 0, newErr(CodeValidationError, "duration-chained",
				"The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.",
				"pass DurationSeconds of at most 3600 when calling AssumeRole with temporary credentials.")
		case requested > roleMax:
			return 0, newErr(CodeValidationError, "duration-role",
				fmt.Sprintf("The requested DurationSeconds exceeds the MaxSessionDuration set for this role (%d seconds).", int(roleMax.Seconds())),
				fmt.Sprintf("pass DurationSeconds of at most %d, or ask an administrator to raise the role's max session duration.", int(roleMax.Seconds())))
		case idpMax != 0 && requested > idpMax:
			return 0, newErr(CodeValidationError, "duration-idp",
				fmt.Sprintf("The requested DurationSeconds exceeds the SessionDuration the IdP allows (%d seconds).", int(idpMax.Seconds())),
				"pass a smaller DurationSeconds, or raise the SessionDuration attribute at the IdP.")
		}
		return requested, nil
	}
	d := s.o.DefaultSessionDuration
	if idpMax != 0 {
		d = idpMax
	}
	d = min(d, roleMax)
	if chained {
		d = min(d, credentials.MaxChainedDuration)
	}
	return max(d, credentials.MinSessionDuration), nil
}

// bind resolves the principal of a verified federated identity through
// the one identity.Binder: by (provider, subject), never by name alone. A
// refusal is AccessDenied; a store or audit failure is an internal error.
// The audit record names the bound principal from here on.
func (s *Service) bind(ctx context.Context, r *http.Request, id identity.FederatedIdentity, info *auditInfo) (*identity.Binding, *Error) {
	info.Subject = clip(id.Subject)
	meta := identity.LoginMeta{SourceIP: remoteIP(r), UserAgent: clip(r.UserAgent()), RequestID: requestid.From(ctx)}
	b, err := s.o.Binder.Resolve(ctx, id, meta)
	var be *identity.BindError
	switch {
	case errors.As(err, &be):
		return nil, newErr(CodeAccessDenied, "binding-"+be.Reason, be.Cause, be.Fix)
	case err != nil:
		return nil, internalErr(fmt.Errorf("sts: bind %s identity: %w", id.Method, err))
	}
	info.UserID, info.User, info.Binding = b.PrincipalID, b.UserName, b.Via
	return b, nil
}

// assumedRoleARN is arn:aws:sts::<account>:assumed-role/<role name>/<session>.
func assumedRoleARN(account, roleARN, session string) string {
	name := roleARN[strings.LastIndexByte(roleARN, '/')+1:]
	return "arn:aws:sts::" + account + ":assumed-role/" + name + "/" + session
}

// issueInput is everything a successful AssumeRole* hands to the issuer.
type issueInput struct {
	Role           *roleEntry
	SessionName    string
	PrincipalID    string
	UserName       string
	SourceIdentity string
	Groups         []string
	Tags           map[string]string
	TransitiveKeys []string
	Policy         sessionPolicy
	Duration       time.Duration
	Parent         *credentials.Claims
	// RoleLimit is the role restriction of the federated sign-in (the
	// assertion's Role list, the token's roles claim); nil: none.
	RoleLimit *credentials.RoleLimit
}

type issued struct {
	Creds         credentials.Credentials
	AssumedRoleID string
	ARN           string
	SourceID      string
}

func (s *Service) issue(ctx context.Context, in issueInput, info *auditInfo) (issued, *Error) {
	arid := in.Role.ID + ":" + in.SessionName
	creds, err := s.o.Issuer.Issue(ctx, credentials.SessionRequest{
		PrincipalID:       in.PrincipalID,
		UserName:          in.UserName,
		SourceIdentity:    in.SourceIdentity,
		RoleARN:           in.Role.ARN,
		RoleSessionName:   in.SessionName,
		AssumedRoleID:     arid,
		SessionPolicy:     in.Policy.Doc,
		PolicyARNs:        in.Policy.ARNs,
		SessionTags:       in.Tags,
		TransitiveTagKeys: in.TransitiveKeys,
		Groups:            in.Groups,
		Parent:            in.Parent,
		RoleLimit:         in.RoleLimit,
	}, in.Duration)
	if err != nil {
		return issued{}, fromCredentials(err)
	}
	si := in.SourceIdentity
	if in.Parent != nil && in.Parent.SourceIdentity != "" {
		si = in.Parent.SourceIdentity
	}
	info.Issued = true
	info.SessionID, info.AccessKeyID, info.Expiration = creds.SessionID, creds.AccessKeyID, creds.Expiration
	info.SourceID = si
	info.DurationSeconds = int(in.Duration.Seconds())
	info.PackedPc = in.Policy.PackedPercent
	if in.Parent != nil {
		info.ChainDepth = in.Parent.ChainDepth + 1
		info.ParentSession = in.Parent.SessionID
	}
	return issued{Creds: creds, AssumedRoleID: arid, ARN: assumedRoleARN(s.o.AccountID, in.Role.ARN, in.SessionName), SourceID: si}, nil
}

// Response shapes (STS API reference, "Response Elements").

type credentialsXML struct {
	AccessKeyID     string `xml:"AccessKeyId" json:"AccessKeyId"`
	SecretAccessKey string `xml:"SecretAccessKey" json:"SecretAccessKey"`
	SessionToken    string `xml:"SessionToken" json:"SessionToken"`
	Expiration      awsTime
}

// awsTime renders as ISO 8601 in XML and as epoch seconds in JSON, as AWS does.
type awsTime time.Time

func (t awsTime) MarshalText() ([]byte, error) {
	return []byte(time.Time(t).UTC().Format(time.RFC3339)), nil
}

func (t awsTime) MarshalJSON() ([]byte, error) {
	return []byte(fmt.Sprint(time.Time(t).Unix())), nil
}

type assumedRoleUser struct {
	AssumedRoleID string `xml:"AssumedRoleId" json:"AssumedRoleId"`
	Arn           string
}

func credsXML(c credentials.Credentials) credentialsXML {
	return credentialsXML{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken,
		Expiration: awsTime(c.Expiration)}
}

// tagContext adds aws:RequestTag/<k> and aws:TagKeys for session tags.
func tagContext(ctx map[string][]string, tags map[string]string) {
	if len(tags) == 0 {
		return
	}
	keys := make([]string, 0, len(tags))
	for k, v := range tags {
		ctx["aws:requesttag/"+strings.ToLower(k)] = []string{v}
		keys = append(keys, k)
	}
	slices.Sort(keys)
	ctx["aws:tagkeys"] = keys
}
