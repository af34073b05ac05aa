package demoidp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// DemoRole is a role Seed creates, with the demo group whose members the
// gatehouse issuer's trust statement admits and the demo users whose
// aws_roles attribute names it.
type DemoRole struct {
	Name, Description, Group string
	Users                    []string
	Policy                   string
}

// Demo role policies over the demo bucket: analysts read shared/, HR reads
// hr/ (also served to HR members through the hr/ mount), and both own a
// private home prefix through ${aws:username}; privacy officers read
// everything.
const (
	analystPolicy = `{"Version":"2012-10-17","Statement":[
 {"Sid":"ListSharedAndOwnHome","Effect":"Allow","Action":"s3:ListBucket","Resource":"arn:aws:s3:::demo",
  "Condition":{"StringLike":{"s3:prefix":["","shared/*","home/","home/${aws:username}/*"]}}},
 {"Sid":"ReadShared","Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::demo/shared/*"},
 {"Sid":"OwnHome","Effect":"Allow","Action":["s3:GetObject","s3:PutObject","s3:DeleteObject","s3:AbortMultipartUpload","s3:ListMultipartUploadParts"],
  "Resource":"arn:aws:s3:::demo/home/${aws:username}/*"}]}`
	hrPolicy = `{"Version":"2012-10-17","Statement":[
 {"Effect":"Allow","Action":"s3:ListBucket","Resource":"arn:aws:s3:::demo","Condition":{"StringLike":{"s3:prefix":["","hr/*","home/","home/${aws:username}/*"]}}},
 {"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::demo/hr/*"},
 {"Sid":"OwnHome","Effect":"Allow","Action":["s3:GetObject","s3:PutObject","s3:DeleteObject","s3:AbortMultipartUpload","s3:ListMultipartUploadParts"],
  "Resource":"arn:aws:s3:::demo/home/${aws:username}/*"}]}`
	auditorPolicy = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:GetObject","s3:ListBucket"],"Resource":["arn:aws:s3:::demo","arn:aws:s3:::demo/*"]}]}`
)

// DemoRoles are the roles of the demo organization.
var DemoRoles = []DemoRole{
	{Name: "analyst", Description: "Demo: shared/ and a private home prefix in the demo bucket", Group: "analysts", Users: []string{"alice", "carol"}, Policy: analystPolicy},
	{Name: "hr-reader", Description: "Demo: read hr/ and a private home prefix in the demo bucket (HR)", Group: "hr", Users: []string{"bob"}, Policy: hrPolicy},
	{Name: "privacy-auditor", Description: "Demo: read the whole demo bucket (privacy officers)", Group: "privacy-officers", Users: []string{"carol"}, Policy: auditorPolicy},
}

// DemoBinding is the binding rule of the demo IdP's providers: the demo
// IdP signs in the gatehouse directory's own users, so a first sign-in
// links the subject to the user of the same name
// (docs/design/0014-identity-binding.md). No real IdP should get this rule
// unless the organization, not the user, assigns its user names.
var DemoBinding = store.Binding{LinkByUserName: true, Unlinked: store.UnlinkedRefuse}

// Seed registers the demo IdP in the store and seeds what the demo needs.
// It is idempotent: existing records are kept (the SAML provider's
// metadata is refreshed if it changed).
//
//   - SAML provider ProviderName ("demo-idp") with this IdP's metadata;
//   - OIDC provider for this IdP's issuer, audience ClientID;
//   - DemoBinding on both providers;
//   - the DemoRoles, each trusting the demo SAML provider
//     (AssumeRoleWithSAML, SAML:aud = the ACS URL), the demo OIDC
//     provider, and gatehouse's own issuer (selfIssuer, i.e.
//     api.public_url) for members of the role's group or sessions whose
//     IdP granted the role (gatehouse:groups / gatehouse:roles);
//   - the aws_roles attribute of the demo users that exist and have none.
func (d *IdP) Seed(ctx context.Context) error {
	st := d.o.Store
	md := d.Metadata()
	p, err := st.GetSAMLProviderByName(ctx, d.o.ProviderName)
	switch {
	case errors.Is(err, store.ErrNotFound):
		if err := st.CreateSAMLProvider(ctx, &store.SAMLProvider{Name: d.o.ProviderName, MetadataXML: md, EntityID: d.samlEntityID(),
			Binding: DemoBinding}); err != nil {
			return fmt.Errorf("demoidp: seed SAML provider: %w", err)
		}
	case err != nil:
		return fmt.Errorf("demoidp: seed SAML provider: %w", err)
	case p.MetadataXML != md || p.EntityID != d.samlEntityID() || p.Binding != DemoBinding:
		p.MetadataXML, p.EntityID, p.Binding = md, d.samlEntityID(), DemoBinding
		if err := st.UpdateSAMLProvider(ctx, p); err != nil {
			return fmt.Errorf("demoidp: refresh SAML provider: %w", err)
		}
	}
	if op, err := st.GetOIDCProviderByIssuer(ctx, d.oidcIssuer()); errors.Is(err, store.ErrNotFound) {
		if err := st.CreateOIDCProvider(ctx, &store.OIDCProvider{IssuerURL: d.oidcIssuer(), Audiences: []string{d.o.ClientID},
			JWKSURL: d.oidcIssuer() + "/jwks", Binding: DemoBinding}); err != nil && !errors.Is(err, store.ErrAlreadyExists) {
			return fmt.Errorf("demoidp: seed OIDC provider: %w", err)
		}
	} else if err != nil {
		return fmt.Errorf("demoidp: seed OIDC provider: %w", err)
	} else if op.Binding != DemoBinding {
		op.Binding = DemoBinding
		if err := st.UpdateOIDCProvider(ctx, op); err != nil {
			return fmt.Errorf("demoidp: refresh OIDC provider: %w", err)
		}
	}
	selfARN := (&store.OIDCProvider{IssuerURL: d.o.PublicURL}).ARN(d.o.AccountID)
	demoOIDC := &store.OIDCProvider{IssuerURL: d.oidcIssuer()}
	for _, dr := range DemoRoles {
		if _, err := st.GetRoleByName(ctx, dr.Name); err == nil {
			continue
		} else if !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("demoidp: seed role %s: %w", dr.Name, err)
		}
		trust, err := trustPolicy(d.providerARN(), d.o.ACSURL, selfARN, store.OIDCIssuerKey(d.o.PublicURL),
			demoOIDC.ARN(d.o.AccountID), store.OIDCIssuerKey(d.oidcIssuer()), d.o.ClientID, dr.Group, d.roleARN(dr.Name))
		if err != nil {
			return err
		}
		r := &store.Role{Name: dr.Name, Description: dr.Description, TrustPolicy: trust, MaxSessionDuration: 4 * 3600,
			PermissionPolicies: []store.NamedPolicy{{Name: "demo-read", Document: dr.Policy}}, Tags: map[string]string{"demo": "true"}}
		if err := st.CreateRole(ctx, r); err != nil && !errors.Is(err, store.ErrAlreadyExists) {
			return fmt.Errorf("demoidp: seed role %s: %w", dr.Name, err)
		}
	}
	users := map[string][]string{}
	for _, dr := range DemoRoles {
		for _, u := range dr.Users {
			users[u] = append(users[u], dr.Name)
		}
	}
	for name, roles := range users {
		u, err := st.GetUserByName(ctx, name)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("demoidp: seed %s: %w", name, err)
		}
		if len(u.Attributes[RolesAttribute]) > 0 {
			continue
		}
		if u.Attributes == nil {
			u.Attributes = map[string][]string{}
		}
		u.Attributes[RolesAttribute] = slices.Clone(roles)
		if err := st.UpdateUser(ctx, u); err != nil && !errors.Is(err, store.ErrConflict) {
			return fmt.Errorf("demoidp: seed %s: %w", name, err)
		}
	}
	d.log.Warn("DEMO IdP — not for production: seeded", "saml_provider", d.providerARN(), "oidc_issuer", d.oidcIssuer())
	return nil
}

func trustPolicy(samlARN, acs, selfARN, selfKey, demoOIDCARN, demoKey, clientID, group, roleARN string) (string, error) {
	type m = map[string]any
	doc := m{"Version": "2012-10-17", "Statement": []m{
		{"Sid": "DemoIdPSAML", "Effect": "Allow", "Principal": m{"Federated": samlARN},
			"Action":    []string{"sts:AssumeRoleWithSAML", "sts:TagSession"},
			"Condition": m{"StringEquals": m{"SAML:aud": acs}}},
		{"Sid": "GatehouseGroupMembers", "Effect": "Allow", "Principal": m{"Federated": selfARN},
			"Action":    "sts:AssumeRoleWithWebIdentity",
			"Condition": m{"StringEquals": m{selfKey + ":aud": "gatehouse"}, "ForAnyValue:StringEquals": m{"gatehouse:groups": group}}},
		{"Sid": "GatehouseIdPGranted", "Effect": "Allow", "Principal": m{"Federated": selfARN},
			"Action":    "sts:AssumeRoleWithWebIdentity",
			"Condition": m{"StringEquals": m{selfKey + ":aud": "gatehouse"}, "ForAnyValue:StringEquals": m{"gatehouse:roles": roleARN}}},
		{"Sid": "DemoIdPOIDC", "Effect": "Allow", "Principal": m{"Federated": demoOIDCARN},
			"Action":    "sts:AssumeRoleWithWebIdentity",
			"Condition": m{"StringEquals": m{demoKey + ":aud": clientID}}},
	}}
	b, err := json.Marshal(doc)
	return string(b), err
}
