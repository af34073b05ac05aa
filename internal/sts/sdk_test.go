package sts

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awssts "github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/aws-sdk-go-v2/service/sts/types"
	"github.com/aws/smithy-go"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/identity"
)

// sdkClient is an aws-sdk-go-v2 STS client for the world's endpoint,
// signing with creds (anonymous when nil).
func (w *world) sdkClient(creds *types.Credentials) *awssts.Client {
	o := awssts.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(w.url),
		HTTPClient:   http.DefaultClient,
	}
	if creds != nil {
		c := aws.Credentials{AccessKeyID: *creds.AccessKeyId, SecretAccessKey: *creds.SecretAccessKey, SessionToken: *creds.SessionToken}
		o.Credentials = aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) { return c, nil })
	} else {
		o.Credentials = aws.AnonymousCredentials{}
	}
	return awssts.New(o)
}

func TestSDKGoV2FederationAndChaining(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	anon := w.sdkClient(nil)

	// AssumeRoleWithSAML with an xmlsec1-signed assertion. Expirations are
	// checked against the world's clock read around each call (issue 12 §5:
	// no window a slow machine can miss); the wire carries whole seconds.
	asked := w.clock.Now()
	out, err := anon.AssumeRoleWithSAML(ctx, &awssts.AssumeRoleWithSAMLInput{
		RoleArn: aws.String(analystARN), PrincipalArn: aws.String(samlProvARN),
		SAMLAssertion: aws.String(w.idp.sign(t, assertionParams())),
	})
	require.NoError(t, err)
	require.Regexp(t, `^ASIA`, *out.Credentials.AccessKeyId)
	require.Equal(t, "arn:aws:sts::"+testAccount+":assumed-role/Analyst/"+alice, *out.AssumedRoleUser.Arn)
	require.Regexp(t, `^AROA[A-Z2-7]{17}:`+alice+`$`, *out.AssumedRoleUser.AssumedRoleId)
	require.Equal(t, alice, *out.Subject)
	require.Equal(t, "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress", *out.SubjectType)
	require.Equal(t, testIdPID, *out.Issuer)
	require.Equal(t, testACS, *out.Audience)
	require.NotEmpty(t, *out.NameQualifier)
	require.Equal(t, alice, *out.SourceIdentity, "the end user is the default source identity")
	// Role max 7200 s caps the IdP's 8 h SessionDuration.
	require.WithinRange(t, *out.Credentials.Expiration, asked.Add(2*time.Hour).Truncate(time.Second), w.clock.Now().Add(2*time.Hour))

	me, err := w.sdkClient(out.Credentials).GetCallerIdentity(ctx, &awssts.GetCallerIdentityInput{})
	require.NoError(t, err)
	require.Equal(t, testAccount, *me.Account)
	require.Equal(t, *out.AssumedRoleUser.Arn, *me.Arn)
	require.Equal(t, *out.AssumedRoleUser.AssumedRoleId, *me.UserId)

	// Role chaining: more than one hour is refused as AWS does.
	analyst := w.sdkClient(out.Credentials)
	_, err = analyst.AssumeRole(ctx, &awssts.AssumeRoleInput{
		RoleArn: aws.String(auditorARN), RoleSessionName: aws.String("audit"), DurationSeconds: aws.Int32(7200),
	})
	requireAPIError(t, err, CodeValidationError, "1 hour session limit")

	// A different source identity cannot be set on a chained session.
	_, err = analyst.AssumeRole(ctx, &awssts.AssumeRoleInput{
		RoleArn: aws.String(auditorARN), RoleSessionName: aws.String("audit"), SourceIdentity: aws.String("mallory"),
	})
	requireAPIError(t, err, CodeAccessDenied, "cannot be changed")

	asked = w.clock.Now()
	chained, err := analyst.AssumeRole(ctx, &awssts.AssumeRoleInput{
		RoleArn: aws.String(auditorARN), RoleSessionName: aws.String("audit"), DurationSeconds: aws.Int32(3600),
	})
	require.NoError(t, err)
	require.Equal(t, alice, *chained.SourceIdentity, "source identity survives chaining")
	require.WithinRange(t, *chained.Credentials.Expiration, asked.Add(time.Hour).Truncate(time.Second), w.clock.Now().Add(time.Hour))
	me2, err := w.sdkClient(chained.Credentials).GetCallerIdentity(ctx, &awssts.GetCallerIdentityInput{})
	require.NoError(t, err)
	require.Equal(t, "arn:aws:sts::"+testAccount+":assumed-role/Auditor/audit", *me2.Arn)

	// The chained session keeps the end user and its source identity.
	cr, err := w.svc.LookupCredentials(ctx, *chained.Credentials.AccessKeyId, *chained.Credentials.SessionToken)
	require.NoError(t, err)
	claims := claimsOf(t, cr)
	require.Equal(t, w.aliceID, claims.PrincipalID)
	require.Equal(t, alice, claims.SourceIdentity)
	require.Equal(t, 1, claims.ChainDepth)

	// Auditor does not trust itself: chaining again is refused.
	_, err = w.sdkClient(chained.Credentials).AssumeRole(ctx, &awssts.AssumeRoleInput{
		RoleArn: aws.String(auditorARN), RoleSessionName: aws.String("again"),
	})
	requireAPIError(t, err, CodeAccessDenied, "not in the trust policy")

	// AssumeRoleWithWebIdentity with an RS256 token from the loopback IdP.
	wi, err := anon.AssumeRoleWithWebIdentity(ctx, &awssts.AssumeRoleWithWebIdentityInput{
		RoleArn: aws.String(analystARN), RoleSessionName: aws.String("bob-session"),
		WebIdentityToken: aws.String(w.oidc.token(t, nil)),
	})
	require.NoError(t, err)
	require.Equal(t, "u-bob-123", *wi.SubjectFromWebIdentityToken)
	require.Equal(t, w.oidc.issuer, *wi.Provider)
	require.Equal(t, testClient, *wi.Audience)
	// bob is in no directory: his session is a federated one of its own,
	// named by provider and subject, never by his claimed user name.
	require.Equal(t, identity.FederatedPrincipalID(w.oidcARN, "u-bob-123"), *wi.SourceIdentity)
	me3, err := w.sdkClient(wi.Credentials).GetCallerIdentity(ctx, &awssts.GetCallerIdentityInput{})
	require.NoError(t, err)
	require.Equal(t, "arn:aws:sts::"+testAccount+":assumed-role/Analyst/bob-session", *me3.Arn)

	// Every issuance and denial is in the audit log.
	var issued, denied int
	for _, ev := range w.auditEvents(t) {
		switch ev.Code {
		case audit.CodeSTSIssued:
			issued++
			require.NotEmpty(t, ev.Actor.User)
			require.NotEmpty(t, ev.Details["sourceIdentity"])
			require.NotEmpty(t, ev.Details["roleSessionName"])
		case audit.CodeSTSDenied:
			denied++
			require.NotEmpty(t, ev.Reason)
		}
	}
	require.Equal(t, 3, issued)
	require.Equal(t, 3, denied)
}

func requireAPIError(t testing.TB, err error, code, msg string) {
	t.Helper()
	var ae smithy.APIError
	require.True(t, errors.As(err, &ae), "want API error %s, got %v", code, err)
	require.Equal(t, code, ae.ErrorCode(), ae.ErrorMessage())
	require.Contains(t, ae.ErrorMessage(), msg)
}
