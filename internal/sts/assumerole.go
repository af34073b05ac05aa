package sts

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/identity"
	"github.com/gatehouse-dev/gatehouse/internal/sigv4"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/sts/credentials"
)

// LookupCredentials implements sigv4.CredentialLookup for gatehouse
// temporary credentials, for this endpoint and the S3 gateway alike: it
// verifies the session token (keyring, expiry, revocation) and checks that
// the end user is still active in the directory (at most CacheTTL old), and
// returns the session's secret with its *credentials.Claims as Principal.
// There are no long-term access keys: a request without a session token is
// an unknown access key.
func (s *Service) LookupCredentials(ctx context.Context, accessKeyID, sessionToken string) (sigv4.Credentials, error) {
	if sessionToken == "" {
		return sigv4.Credentials{}, fmt.Errorf("%w: gatehouse issues temporary credentials only; the session token is missing", sigv4.ErrUnknownAccessKey)
	}
	c, secret, err := s.o.Verifier.Verify(ctx, accessKeyID, sessionToken, s.now())
	if why, ok := credentials.RevokedReason(err); ok && c != nil {
		cause := fmt.Errorf("%w: %w", errRevoked, err)
		if errors.Is(s.checkActive(ctx, c), errUserDisabled) { // most often why: say so
			why, cause = "user disabled", fmt.Errorf("%w: %w", errUserDisabled, err)
		}
		return sigv4.Credentials{}, &sigv4.RevokedError{Reason: why, Err: cause,
			Credentials: sigv4.Credentials{SecretAccessKey: secret, Principal: c, Expires: c.Expiry}}
	}
	if err != nil {
		var ce *credentials.Error
		if !errors.As(err, &ce) {
			return sigv4.Credentials{}, err
		}
		switch ce.Code {
		case credentials.CodeInvalidClientTokenID:
			return sigv4.Credentials{}, fmt.Errorf("%w: %w", sigv4.ErrInvalidSessionToken, err)
		case credentials.CodeExpiredToken:
			return sigv4.Credentials{}, fmt.Errorf("%w: %w", sigv4.ErrCredentialsExpired, err)
		case credentials.CodeAccessDenied:
			return sigv4.Credentials{}, fmt.Errorf("%w: %w: %w", sigv4.ErrInvalidSessionToken, errRevoked, err)
		}
		return sigv4.Credentials{}, err
	}
	if err := s.checkActive(ctx, c); err != nil {
		if errors.Is(err, errUserDisabled) {
			return sigv4.Credentials{}, &sigv4.RevokedError{Reason: "user disabled", Err: err,
				Credentials: sigv4.Credentials{SecretAccessKey: secret, Principal: c, Expires: c.Expiry}}
		}
		return sigv4.Credentials{}, err
	}
	return sigv4.Credentials{SecretAccessKey: secret, Principal: c, Expires: c.Expiry}, nil
}

type activeEntry struct {
	err     error // nil or errUserDisabled
	fetched time.Time
}

// checkActive fails with errUserDisabled when the session's end user is
// disabled or deleted in the directory. An unlinked federated session
// (principal id fed-…) has no directory user and passes; it is never
// looked up by name (docs/design/0014-identity-binding.md). Results are reused for CacheTTL (≤ 2 s),
// so disabling a user cuts their credentials off within that time on every
// replica, whether or not the disabling code path also calls
// credentials.Revoker.RevokeUser. Store errors are returned (fail closed).
func (s *Service) checkActive(ctx context.Context, c *credentials.Claims) error {
	key := c.PrincipalID + "\x00" + c.UserName
	now := s.now()
	s.activeMu.Lock()
	e, ok := s.active[key]
	s.activeMu.Unlock()
	if ok && now.Sub(e.fetched) < s.o.CacheTTL && !now.Before(e.fetched) {
		return e.err
	}
	var u *store.User
	var err error
	if !strings.HasPrefix(c.PrincipalID, identity.FederatedPrefix) {
		u, err = s.o.Store.GetUser(ctx, c.PrincipalID)
		if errors.Is(err, store.ErrNotFound) {
			err = nil
			u = &store.User{Active: false} // deleted: no longer entitled
		}
	}
	if err != nil {
		return fmt.Errorf("sts: check user %q: %w", c.UserName, err)
	}
	e = activeEntry{fetched: now}
	if u != nil && !u.Active {
		e.err = errUserDisabled
	}
	s.activeMu.Lock()
	if len(s.active) > 50000 {
		for k, v := range s.active {
			if now.Sub(v.fetched) >= s.o.CacheTTL {
				delete(s.active, k)
			}
		}
	}
	s.active[key] = e
	s.activeMu.Unlock()
	return e.err
}

// authenticate verifies the SigV4 signature of a signed call and returns
// the caller's session claims.
func (s *Service) authenticate(r *http.Request, info *auditInfo) (*credentials.Claims, *Error) {
	info.AuthMethod = "sigv4"
	res, err := s.sig.Verify(r)
	if err != nil {
		// A refusal is attributed as far as it can be: the access key the
		// request named and, for genuine credentials refused as revoked,
		// their user.
		var ve *sigv4.Error
		if errors.As(err, &ve) {
			info.CallerAccessKey = audit.Clip(ve.AccessKeyID, 128)
			if c, ok := ve.Principal.(*credentials.Claims); ok {
				info.UserID, info.User = c.PrincipalID, c.UserName
			}
		}
		return nil, fromSigV4(err)
	}
	c, ok := res.Principal.(*credentials.Claims)
	if !ok {
		return nil, internalErr(errors.New("sts: lookup returned no claims"))
	}
	info.CallerAccessKey = res.AccessKeyID
	info.UserID, info.User = c.PrincipalID, c.UserName
	info.SourceID = c.SourceIdentity
	info.CallerARN = assumedRoleARN(s.o.AccountID, c.RoleARN, c.RoleSessionName)
	info.ParentSession = c.SessionID
	return c, nil
}

type callerIdentityResult struct {
	UserID  string `xml:"UserId" json:"UserId"`
	Account string
	Arn     string
}

// getCallerIdentity implements GetCallerIdentity
// (https://docs.aws.amazon.com/STS/latest/APIReference/API_GetCallerIdentity.html).
func (s *Service) getCallerIdentity(_ context.Context, r *http.Request, _ *request, info *auditInfo) (result, *Error) {
	c, e := s.authenticate(r, info)
	if e != nil {
		return result{}, e
	}
	info.RoleARN = c.RoleARN
	return result{Action: ActionGetCallerIdentity, Body: callerIdentityResult{
		UserID:  c.AssumedRoleID,
		Account: s.o.AccountID,
		Arn:     assumedRoleARN(s.o.AccountID, c.RoleARN, c.RoleSessionName),
	}}, nil
}

type assumeRoleResult struct {
	Credentials      credentialsXML
	AssumedRoleUser  assumedRoleUser
	PackedPolicySize int
	SourceIdentity   string `xml:",omitempty" json:",omitempty"`
}

// assumeRoleFlow is AssumeRole for role switching with gatehouse temporary
// credentials (role chaining;
// https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRole.html):
// the proof is the caller's SigV4 signature, and the caller sets session
// tags and source identity as parameters.
type assumeRoleFlow struct {
	s      *Service
	caller *credentials.Claims
	// externalID is the optional ExternalId parameter.
	externalID    string
	hasExternalID bool
}

var assumeRoleSpec = &flowSpec{
	Action:            ActionAssumeRole,
	TrustAction:       "sts:AssumeRole",
	Takes:             []string{"RoleSessionName", "Tags", "TransitiveTagKeys", "SourceIdentity", "ExternalId"},
	TagSessionFix:     "allow sts:TagSession for the calling role in the target role's trust policy, or pass no Tags.",
	SourceIdentityFix: "allow sts:SetSourceIdentity in the target role's trust policy, or omit SourceIdentity (it is kept anyway).",
}

func (fl *assumeRoleFlow) spec() *flowSpec { return assumeRoleSpec }

// begin verifies the caller's signature and credentials.
func (fl *assumeRoleFlow) begin(r *http.Request, info *auditInfo) *Error {
	c, e := fl.s.authenticate(r, info)
	fl.caller = c
	return e
}

// check reads ExternalId and refuses MFA parameters: the IdP sign-in
// already enforced MFA.
func (fl *assumeRoleFlow) check(req *request, _ *auditInfo) *Error {
	if _, ok := req.Params["SerialNumber"]; ok {
		return newErr(CodeValidationError, "mfa", "MFA (SerialNumber, TokenCode) is not supported by gatehouse AssumeRole.",
			"omit SerialNumber and TokenCode; the IdP sign-in already enforced MFA.")
	}
	fl.externalID, fl.hasExternalID = req.Params["ExternalId"]
	return nil
}

// prove checks that a requested source identity keeps the caller's: it
// survives chaining and cannot be changed.
func (fl *assumeRoleFlow) prove(_ context.Context, in *commonInput, _ *auditInfo) (*federation, *Error) {
	s, caller := fl.s, fl.caller
	if in.SetSourceIdentity && caller.SourceIdentity != "" && in.SourceIdentity != caller.SourceIdentity {
		return nil, newErr(CodeAccessDenied, "source-identity-change",
			fmt.Sprintf("SourceIdentity cannot be changed: this session's source identity is %s.", caller.SourceIdentity),
			"omit SourceIdentity; it is carried over from the calling session.")
	}
	callerARN := assumedRoleARN(s.o.AccountID, caller.RoleARN, caller.RoleSessionName)
	c := map[string][]string{}
	s.principalContext(c, caller)
	if fl.hasExternalID {
		c["sts:externalid"] = []string{fl.externalID}
	}
	if len(in.TransitiveKeys) > 0 {
		c["sts:transitivetagkeys"] = in.TransitiveKeys
	}
	return &federation{
		Parent: caller, PrincipalType: "AWS", CallerARN: callerARN,
		Principals:  []string{caller.RoleARN, callerARN, "arn:aws:iam::" + s.o.AccountID + ":root"},
		SessionName: in.SessionName, SourceIdentity: in.SourceIdentity,
		Tags: in.Tags, TransitiveKeys: in.TransitiveKeys,
		Context: c,
	}, nil
}

func (fl *assumeRoleFlow) result(out issued, pol sessionPolicy) result {
	return result{Action: ActionAssumeRole, Body: assumeRoleResult{
		Credentials:      credsXML(out.Creds),
		AssumedRoleUser:  assumedRoleUser{AssumedRoleID: out.AssumedRoleID, Arn: out.ARN},
		PackedPolicySize: pol.PackedPercent,
		SourceIdentity:   out.SourceID,
	}}
}

// sessionTagParams reads Tags.member.N.Key/Value and TransitiveTagKeys.member.N.
func sessionTagParams(req *request) (map[string]string, []string, *Error) {
	keys, e := req.members("Tags", "Key", 50)
	if e != nil {
		return nil, nil, e
	}
	vals, e := req.members("Tags", "Value", 50)
	if e != nil {
		return nil, nil, e
	}
	if len(keys) != len(vals) {
		return nil, nil, newErr(CodeValidationError, "tags", "Every Tags member needs a Key and a Value.", "")
	}
	var tags map[string]string
	seen := map[string]bool{}
	for i, k := range keys {
		lk := strings.ToLower(k)
		if k == "" || len(k) > 128 || len(vals[i]) > 256 || strings.HasPrefix(lk, "aws:") || seen[lk] {
			return nil, nil, newErr(CodeValidationError, "tags",
				fmt.Sprintf("Session tag %q is invalid (keys 1-128 characters, unique ignoring case, not aws:; values up to 256).", clip(k)), "")
		}
		seen[lk] = true
		if tags == nil {
			tags = map[string]string{}
		}
		tags[k] = vals[i]
	}
	transitive, e := req.members("TransitiveTagKeys", "", 50)
	if e != nil {
		return nil, nil, e
	}
	for _, k := range transitive {
		if _, ok := tags[k]; !ok {
			return nil, nil, newErr(CodeValidationError, "tags", fmt.Sprintf("TransitiveTagKeys names %q, which is not a session tag.", clip(k)), "")
		}
	}
	return tags, transitive, nil
}
