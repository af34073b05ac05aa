package sts

import (
	"context"
	"crypto/sha1"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

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

// samlFlow is AssumeRoleWithSAML
// (https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRoleWithSAML.html):
// the proof is a SAML assertion from a registered IdP, which also asserts
// the session name, session tags and source identity.
type samlFlow struct {
	s                       *Service
	principalArn, assertion string
	// Set by prove, for result.
	a  *saml.Assertion
	nq string
}

var samlSpec = &flowSpec{
	Action:            ActionAssumeRoleWithSAML,
	TrustAction:       "sts:AssumeRoleWithSAML",
	AuthMethod:        "saml",
	Takes:             []string{"PrincipalArn", "SAMLAssertion"},
	NoRoleFix:         "create the role, or correct the Role attribute at the IdP.",
	TagSessionFix:     "allow sts:TagSession for the IdP in the role's trust policy, or stop sending PrincipalTag attributes.",
	SourceIdentityFix: "allow sts:SetSourceIdentity for the IdP in the role's trust policy, or stop sending the SourceIdentity attribute.",
}

func (fl *samlFlow) spec() *flowSpec                        { return samlSpec }
func (fl *samlFlow) begin(*http.Request, *auditInfo) *Error { return nil }

// check reads PrincipalArn and SAMLAssertion, and refuses swapped ARNs
// and a PrincipalArn that names no SAML provider.
func (fl *samlFlow) check(req *request, info *auditInfo) *Error {
	var e *Error
	if fl.principalArn, e = req.required("PrincipalArn"); e != nil {
		return e
	}
	if fl.assertion, e = req.required("SAMLAssertion"); e != nil {
		return e
	}
	info.Provider = fl.principalArn
	roleArn := req.Params["RoleArn"]
	if samlARNRE.MatchString(roleArn) && roleARNRE.MatchString(fl.principalArn) {
		return newErr(CodeValidationError, "arns-swapped",
			"RoleArn and PrincipalArn are swapped: RoleArn names a SAML provider and PrincipalArn a role.",
			"pass the role ARN as RoleArn (--role-arn) and the saml-provider ARN as PrincipalArn (--principal-arn).")
	}
	if !samlARNRE.MatchString(fl.principalArn) {
		return newErr(CodeValidationError, "principal-arn",
			fmt.Sprintf("PrincipalArn %q is not a SAML provider ARN.", clip(fl.principalArn)),
			fmt.Sprintf("pass arn:aws:iam::%s:saml-provider/<name>.", fl.s.o.AccountID))
	}
	return nil
}

// prove validates the assertion (signature, audience, validity, one-time
// use), checks that it comes from the provider PrincipalArn names and
// grants the role through it.
func (fl *samlFlow) prove(ctx context.Context, in *commonInput, info *auditInfo) (*federation, *Error) {
	s := fl.s
	a, err := s.sp.Validate(fl.assertion)
	if err != nil {
		return nil, fromSAML(err)
	}
	info.User = clip(a.NameID)
	ent, err := s.idps.entry(ctx, a.Issuer)
	if err != nil || ent.prov == nil {
		return nil, internalErr(fmt.Errorf("sts: provider of a validated assertion vanished: %v", err))
	}
	provARN := ent.prov.ARN(s.o.AccountID)
	if provARN != fl.principalArn {
		return nil, newErr(CodeAccessDenied, "provider-mismatch",
			fmt.Sprintf("The assertion was issued by IdP %q, registered as %s, but PrincipalArn is %s.", clip(a.Issuer), provARN, clip(fl.principalArn)),
			fmt.Sprintf("pass --principal-arn %s, or sign in through the IdP registered as %s.", provARN, clip(fl.principalArn)))
	}
	if _, err := a.RoleFor(in.RoleARN, fl.principalArn); err != nil {
		se := fromSAML(err)
		if se.Reason == "saml-role-not-granted" && len(a.AWS.Roles) > 0 {
			var have []string
			for _, p := range a.AWS.Roles {
				have = append(have, p.RoleARN)
			}
			se.Cause += " The assertion grants: " + clip(strings.Join(have, ", ")) + "."
		}
		return nil, se
	}
	fl.a = a
	fl.nq = nameQualifier(a.Issuer, s.o.AccountID, ent.prov.Name)
	info.SessionName = a.AWS.RoleSessionName
	fid := s.o.Binder.SAMLIdentity(ent.prov, a.NameID)
	return &federation{
		Identity: &fid, PrincipalType: "Federated", Principals: []string{provARN},
		SessionName: a.AWS.RoleSessionName, SourceIdentity: a.AWS.SourceIdentity,
		Tags: a.AWS.PrincipalTags, TransitiveKeys: a.AWS.TransitiveTagKeys, Groups: a.Groups,
		RoleLimit:      samlLimit(a.AWS.Roles, provARN),
		IdPMaxDuration: a.AWS.SessionDuration, IdPSessionEnd: a.SessionNotOnOrAfter,
		Context: map[string][]string{
			"saml:aud":              {s.o.ACSURL},
			"saml:iss":              {a.Issuer},
			"saml:sub":              {a.NameID},
			"saml:sub_type":         {subjectType(a.NameIDFormat)},
			"saml:namequalifier":    {fl.nq},
			"aws:federatedprovider": {provARN},
		},
	}, nil
}

func (fl *samlFlow) result(out issued, pol sessionPolicy) result {
	return result{Action: ActionAssumeRoleWithSAML, Body: samlResult{
		Credentials:      credsXML(out.Creds),
		AssumedRoleUser:  assumedRoleUser{AssumedRoleID: out.AssumedRoleID, Arn: out.ARN},
		PackedPolicySize: pol.PackedPercent,
		Subject:          fl.a.NameID,
		SubjectType:      subjectType(fl.a.NameIDFormat),
		Issuer:           fl.a.Issuer,
		Audience:         fl.s.o.ACSURL,
		NameQualifier:    fl.nq,
		SourceIdentity:   out.SourceID,
	}}
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
