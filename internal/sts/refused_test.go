package sts

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awssts "github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/sts/credentials"
)

// TestRefusedSessionsSayWhyAndNameTheUser is issue 11 finding 11 on the STS
// endpoint: credentials whose session token opens, but whose user is
// disabled or whose session was revoked, are refused with AccessDenied
// "credentials revoked: <why>" (not "token invalid"), and the audit record
// of the refusal names the user and the access key. Each case revokes
// before the credentials' first use, so no cache decides the outcome.
func TestRefusedSessionsSayWhyAndNameTheUser(t *testing.T) {
	for _, tc := range []struct {
		name   string
		revoke func(t *testing.T, w *world, c *credentials.Claims)
		want   string
	}{
		{"user disabled", func(t *testing.T, w *world, _ *credentials.Claims) {
			u, err := w.st.GetUserByName(context.Background(), alice)
			require.NoError(t, err)
			u.Active = false
			require.NoError(t, w.st.UpdateUser(context.Background(), u))
		}, "credentials revoked: user disabled"},
		{"session revoked", func(t *testing.T, w *world, c *credentials.Claims) {
			rev, err := credentials.NewRevoker(w.st, credentials.RevokerOptions{})
			require.NoError(t, err)
			require.NoError(t, rev.RevokeSession(context.Background(), c.SessionID, c.Expiry))
		}, "credentials revoked: session revoked"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t)
			ctx := context.Background()
			out, err := w.sdkClient(nil).AssumeRoleWithSAML(ctx, &awssts.AssumeRoleWithSAMLInput{
				RoleArn: aws.String(analystARN), PrincipalArn: aws.String(samlProvARN),
				SAMLAssertion: aws.String(w.idp.sign(t, assertionParams())),
			})
			require.NoError(t, err)
			// Open the token with a verifier of its own, so nothing the
			// server caches decides the outcome.
			kr, err := credentials.LoadOrCreateKeyring(ctx, w.st, testMasterKey, nil)
			require.NoError(t, err)
			rev, err := credentials.NewRevoker(w.st, credentials.RevokerOptions{})
			require.NoError(t, err)
			ver, err := credentials.NewVerifier(kr, rev)
			require.NoError(t, err)
			claims, _, err := ver.Verify(ctx, *out.Credentials.AccessKeyId, *out.Credentials.SessionToken, time.Now())
			require.NoError(t, err)
			tc.revoke(t, w, claims)

			_, err = w.sdkClient(out.Credentials).GetCallerIdentity(ctx, &awssts.GetCallerIdentityInput{})
			requireAPIError(t, err, CodeAccessDenied, tc.want)

			var refused []audit.Event
			for _, ev := range w.auditEvents(t) {
				if ev.Action == "sts.getcalleridentity" && ev.Decision == audit.Deny {
					refused = append(refused, ev)
				}
			}
			require.Len(t, refused, 1)
			require.Equal(t, alice, refused[0].Actor.User)
			require.Equal(t, claims.PrincipalID, refused[0].Actor.UserID)
			require.Equal(t, *out.Credentials.AccessKeyId, refused[0].Details["callerAccessKeyId"])
			require.Contains(t, refused[0].Reason, tc.want)
		})
	}
}
