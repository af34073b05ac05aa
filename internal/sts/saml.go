package sts

import (
	"context"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/awsname"
	"github.com/gatehouse-dev/gatehouse/internal/clientip"
	"github.com/gatehouse-dev/gatehouse/internal/identity/saml"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/sts/credentials"
)

// storeIdPs resolves SAML issuers to the SAML providers registered in the
// store, parsing their metadata once per revision. Lookups are reused for
// at most ttl, so a metadata update (certificate rotation) or a deleted
// provider takes effect within ttl. Safe for concurrent use.
type storeIdPs struct {
	st  store.Store
	now func() time.Time
	ttl time.Duration
	log *slog.Logger

	mu sync.Mutex
	m  map[string]idpEntry // entity id -> entry
}

type idpEntry struct {
	prov    *store.SAMLProvider // nil: no provider for this issuer
	idp     *saml.IdP
	err     error // unusable metadata
	fetched time.Time
}

var _ saml.IdPResolver = (*storeIdPs)(nil)

func (r *storeIdPs) entry(ctx context.Context, issuer string) (idpEntry, error) {
	now := r.now()
	r.mu.Lock()
	e, ok := r.m[issuer]
	r.mu.Unlock()
	if ok && now.Sub(e.fetched) < r.ttl && !now.Before(e.fetched) {
		return e, nil
	}
	p, err := r.st.GetSAMLProviderByEntityID(ctx, issuer)
	switch {
	case errors.Is(err, store.ErrNotFound):
		e = idpEntry{}
	case err != nil:
		return idpEntry{}, fmt.Errorf("sts: get SAML provider for issuer %q: %w", issuer, err)
	default:
		if ok && e.prov != nil && e.prov.ID == p.ID && e.prov.Revision == p.Revision {
			e.prov = p // same revision: keep the parsed metadata
		} else {
			e = idpEntry{prov: p}
			e.idp, e.err = saml.ParseIdPMetadata([]byte(p.MetadataXML))
			if e.err == nil {
				e.err = e.idp.Check()
			}
			if e.err == nil && e.idp.EntityID != p.EntityID {
				e.err = fmt.Errorf("metadata entity id %q differs from the provider's %q", e.idp.EntityID, p.EntityID)
			}
			if e.err != nil {
				r.log.Warn("sts: SAML provider metadata unusable", "provider", p.Name, "err", e.err)
			}
		}
	}
	e.fetched = now
	r.mu.Lock()
	if len(r.m) > 1000 {
		clear(r.m)
	}
	r.m[issuer] = e
	r.mu.Unlock()
	return e, nil
}

// ResolveIdP implements saml.IdPResolver.
func (r *storeIdPs) ResolveIdP(issuer string) (*saml.IdP, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	e, err := r.entry(ctx, issuer)
	if err != nil {
		return nil, err
	}
	if e.prov == nil {
		return nil, nil
	}
	if e.err != nil {
		return nil, fmt.Errorf("sts: SAML provider %q has unusable metadata: %w", e.prov.Name, e.err)
	}
	return e.idp, nil
}

type samlResult struct {
	Credentials      credentialsXML
	AssumedRoleUser  assumedRoleUser
	PackedPolicySize int
	Subject          string
	SubjectType      string
	Issuer           string
	Audience         string
	NameQualifier    string
	SourceIdentity   string `xml:",omitempty" json:",omitempty"`
}

// assumeRoleWithSAML implements AssumeRoleWithSAML
// (https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRoleWithSAML.html).
func (s *Service) assumeRoleWithSAML(ctx context.Context, r *http.Request, req *request, info *auditInfo) (result, *Error) {
	info.AuthMethod = "saml"
	// Pure parameter checks first, so that a typo does not burn the
	// one-time assertion.
	roleArn, e := req.required("RoleArn")
	if e != nil {
		return result{}, e
	}
	principalArn, e := req.required("PrincipalArn")
	if e != nil {
		return result{}, e
	}
	assertion, e := req.required("SAMLAssertion")
	if e != nil {
		return result{}, e
	}
	info.RoleARN, info.Provider = roleArn, principalArn
	if samlARNRE.MatchString(roleArn) && roleARNRE.MatchString(principalArn) {
		return result{}, newErr(CodeValidationError, "arns-swapped",
			"RoleArn and PrincipalArn are swapped: RoleArn names a SAML provider and PrincipalArn a role.",
			"pass the role ARN as RoleArn (--role-arn) and the saml-provider ARN as PrincipalArn (--principal-arn).")
	}
	ref, e := s.parseRoleARN("RoleArn", roleArn)
	if e != nil {
		return result{}, e
	}
	if !samlARNRE.MatchString(principalArn) {
		return result{}, newErr(CodeValidationError, "principal-arn",
			fmt.Sprintf("PrincipalArn %q is not a SAML provider ARN.", clip(principalArn)),
			fmt.Sprintf("pass arn:aws:iam::%s:saml-provider/<name>.", s.o.AccountID))
	}
	duration, e := req.durationParam()
	if e != nil {
		return result{}, e
	}
	pol, e := s.sessionPolicies(ctx, req, nil)
	if e != nil {
		return result{}, e
	}

	a, err := s.sp.Validate(assertion)
	if err != nil {
		return result{}, fromSAML(err)
	}
	info.User = clip(a.NameID)
	ent, err := s.idps.entry(ctx, a.Issuer)
	if err != nil || ent.prov == nil {
		return result{}, internalErr(fmt.Errorf("sts: provider of a validated assertion vanished: %v", err))
	}
	provARN := ent.prov.ARN(s.o.AccountID)
	if provARN != principalArn {
		return result{}, newErr(CodeAccessDenied, "provider-mismatch",
			fmt.Sprintf("The assertion was issued by IdP %q, registered as %s, but PrincipalArn is %s.", clip(a.Issuer), provARN, clip(principalArn)),
			fmt.Sprintf("pass --principal-arn %s, or sign in through the IdP registered as %s.", provARN, clip(principalArn)))
	}
	if _, err := a.RoleFor(roleArn, principalArn); err != nil {
		se := fromSAML(err)
		if se.Reason == "saml-role-not-granted" && len(a.AWS.Roles) > 0 {
			var have []string
			for _, p := range a.AWS.Roles {
				have = append(have, p.RoleARN)
			}
			se.Cause += " The assertion grants: " + clip(strings.Join(have, ", ")) + "."
		}
		return result{}, se
	}
	re, err := s.role(ctx, ref)
	if errors.Is(err, errNoRole) {
		return result{}, newErr(CodeAccessDenied, "no-role", fmt.Sprintf("Role %s does not exist in gatehouse.", roleArn),
			"create the role, or correct the Role attribute at the IdP.")
	}
	if err != nil {
		return result{}, internalErr(err)
	}
	info.RoleID = re.Stored.ID
	b, e := s.bind(ctx, r, s.o.Binder.SAMLIdentity(ent.prov, a.NameID), info)
	if e != nil {
		return result{}, e
	}
	d, e := s.chooseDuration(duration, re, a.AWS.SessionDuration, false)
	if e != nil {
		return result{}, e
	}
	// The IdP session ends the role session too (AWS: whichever is
	// shorter), but never below the STS minimum.
	if !a.SessionNotOnOrAfter.IsZero() {
		if left := a.SessionNotOnOrAfter.Sub(s.now()).Truncate(time.Second); left < d {
			d = max(left, 15*time.Minute)
		}
	}

	sessionName := a.AWS.RoleSessionName
	info.SessionName = sessionName
	sourceID := a.AWS.SourceIdentity
	if sourceID == "" {
		sourceID = awsname.SessionNameFrom(b.UserName)
	}
	subType := subjectType(a.NameIDFormat)
	nq := nameQualifier(a.Issuer, s.o.AccountID, ent.prov.Name)
	tctx := s.baseContext(r)
	tctx["saml:aud"] = []string{s.o.ACSURL}
	tctx["saml:iss"] = []string{a.Issuer}
	tctx["saml:sub"] = []string{a.NameID}
	tctx["saml:sub_type"] = []string{subType}
	tctx["saml:namequalifier"] = []string{nq}
	tctx["aws:federatedprovider"] = []string{provARN}
	tctx["sts:rolesessionname"] = []string{sessionName}
	if a.AWS.SourceIdentity != "" {
		tctx["sts:sourceidentity"] = []string{a.AWS.SourceIdentity}
	}
	tagContext(tctx, a.AWS.PrincipalTags)
	trust := trustCheck{Action: "sts:AssumeRoleWithSAML", Type: "Federated", Principals: []string{provARN}, Context: tctx}
	if e := s.checkTrust(re, trust); e != nil {
		return result{}, e
	}
	if len(a.AWS.PrincipalTags) > 0 {
		trust.Action = "sts:TagSession"
		if e := s.checkTrust(re, trust); e != nil {
			e.Fix = "allow sts:TagSession for the IdP in the role's trust policy, or stop sending PrincipalTag attributes."
			return result{}, e
		}
	}
	if a.AWS.SourceIdentity != "" {
		trust.Action = "sts:SetSourceIdentity"
		if e := s.checkTrust(re, trust); e != nil {
			e.Fix = "allow sts:SetSourceIdentity for the IdP in the role's trust policy, or stop sending the SourceIdentity attribute."
			return result{}, e
		}
	}
	if e := s.packedWithTags(&pol, a.AWS.PrincipalTags); e != nil {
		return result{}, e
	}
	out, e := s.issue(ctx, issueInput{
		Role: re, SessionName: sessionName,
		PrincipalID: b.PrincipalID, UserName: b.UserName,
		SourceIdentity: sourceID, Groups: a.Groups,
		Tags: a.AWS.PrincipalTags, TransitiveKeys: a.AWS.TransitiveTagKeys,
		Policy: pol, Duration: d, RoleLimit: samlLimit(a.AWS.Roles, provARN),
	}, info)
	if e != nil {
		return result{}, e
	}
	return result{Action: ActionAssumeRoleWithSAML, Body: samlResult{
		Credentials:      credsXML(out.Creds),
		AssumedRoleUser:  assumedRoleUser{AssumedRoleID: out.AssumedRoleID, Arn: out.ARN},
		PackedPolicySize: pol.PackedPercent,
		Subject:          a.NameID,
		SubjectType:      subType,
		Issuer:           a.Issuer,
		Audience:         s.o.ACSURL,
		NameQualifier:    nq,
		SourceIdentity:   out.SourceID,
	}}, nil
}

// packedWithTags recomputes the packed size with the session tags known
// only after validation.
func (s *Service) packedWithTags(pol *sessionPolicy, tags map[string]string) *Error {
	if len(tags) == 0 {
		return nil
	}
	size := len(pol.Doc)
	for _, a := range pol.ARNs {
		size += len(a)
	}
	for k, v := range tags {
		size += len(k) + len(v)
	}
	pol.PackedPercent = (size*100 + packedLimit - 1) / packedLimit
	if pol.PackedPercent > 100 {
		return newErr(CodePackedPolicyTooLarge, "packed-size",
			fmt.Sprintf("Packed size of the session policies and session tags is %d%% of the allowed size.", pol.PackedPercent),
			"pass a smaller session policy or send fewer PrincipalTag attributes.")
	}
	return nil
}

// subjectType maps the NameID format as AWS does: persistent and transient
// are abbreviated, other formats are returned whole.
func subjectType(format string) string {
	switch format {
	case "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent":
		return "persistent"
	case "urn:oasis:names:tc:SAML:2.0:nameid-format:transient":
		return "transient"
	case "":
		return "unspecified"
	}
	return format
}

// nameQualifier is AWS's SAML:namequalifier:
// BASE64(SHA1(issuer + account id + "/" + provider name)) (IAM User Guide,
// "Uniquely identifying users in SAML-based federation"). SHA-1 here is an
// identifier AWS defines, not a signature check.
func nameQualifier(issuer, account, provider string) string {
	sum := sha1.Sum([]byte(issuer + account + "/" + provider))
	return base64.StdEncoding.EncodeToString(sum[:])
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

// samlLimit is the role restriction of a session from an assertion: the
// roles its Role attribute grants through provider provARN, and no other,
// even through an S3 mount.
func samlLimit(pairs []saml.RolePair, provARN string) *credentials.RoleLimit {
	arns := []string{}
	for _, p := range pairs {
		if p.ProviderARN == provARN {
			arns = append(arns, p.RoleARN)
		}
	}
	return credentials.NewRoleLimit(arns)
}
