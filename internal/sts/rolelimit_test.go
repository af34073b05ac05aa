package sts

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awssts "github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-dev/gatehouse/internal/decision"
)

// TestSessionCarriesSignInRoleLimit proves the STS half of the first gap
// left by issue 11 (finding 9): credentials minted from a SAML assertion
// carry its Role list as their restriction, a session chained from them
// keeps it, and a web identity token without a roles claim leaves the
// session unrestricted. The S3 gateway reads the restriction before it lets
// a session act as a mount's role (see the server's
// TestRestrictedSessionCannotWidenThroughMount).
func TestSessionCarriesSignInRoleLimit(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	anon := w.sdkClient(nil)
	out, err := anon.AssumeRoleWithSAML(ctx, &awssts.AssumeRoleWithSAMLInput{
		RoleArn: aws.String(analystARN), PrincipalArn: aws.String(samlProvARN),
		SAMLAssertion: aws.String(w.idp.sign(t, assertionParams())),
	})
	require.NoError(t, err)
	cr, err := w.svc.LookupCredentials(ctx, *out.Credentials.AccessKeyId, *out.Credentials.SessionToken)
	require.NoError(t, err)
	saml := claimsOf(t, cr)
	require.NotNil(t, saml.RoleLimit)
	require.ElementsMatch(t, []string{analystARN, orphanARN}, saml.RoleLimit.RoleARNs)
	require.ElementsMatch(t, []string{analystARN, orphanARN}, sessionOf(saml).RoleLimit, "the decision point reads the restriction")
	_, err = w.svc.AuthorizeAs(ctx, saml, auditorARN, "s3:GetObject", "arn:aws:s3:::audit/q3.csv", nil)
	var ne *decision.NotEntitledError
	require.ErrorAs(t, err, &ne, "the assertion does not grant Auditor: the decision point refuses to act as it")

	chained, err := w.sdkClient(out.Credentials).AssumeRole(ctx, &awssts.AssumeRoleInput{
		RoleArn: aws.String(auditorARN), RoleSessionName: aws.String("audit"),
	})
	require.NoError(t, err)
	cr, err = w.svc.LookupCredentials(ctx, *chained.Credentials.AccessKeyId, *chained.Credentials.SessionToken)
	require.NoError(t, err)
	require.Equal(t, saml.RoleLimit, claimsOf(t, cr).RoleLimit, "a chained session keeps its parent's restriction")

	web, err := anon.AssumeRoleWithWebIdentity(ctx, &awssts.AssumeRoleWithWebIdentityInput{
		RoleArn: aws.String(analystARN), RoleSessionName: aws.String("web"), WebIdentityToken: aws.String(w.oidc.token(t, nil)),
	})
	require.NoError(t, err)
	cr, err = w.svc.LookupCredentials(ctx, *web.Credentials.AccessKeyId, *web.Credentials.SessionToken)
	require.NoError(t, err)
	require.Nil(t, claimsOf(t, cr).RoleLimit, "a provider without a roles claim restricts nothing")
}
