package sts

import (
	"context"
	"encoding/json"
	"net/url"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awssts "github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/authzmsg"
)

// testAuthzCodec seals and opens authorization messages under the test
// master key, as the S3 gateway and the STS of one deployment share it.
func testAuthzCodec(t testing.TB) *authzmsg.Codec {
	t.Helper()
	c, err := authzmsg.New(testMasterKey)
	require.NoError(t, err)
	return c
}

// TestDecodeAuthorizationMessage (issue 12 §4, "a denied user gets an opaque
// blob only an admin can decode"): STS DecodeAuthorizationMessage opens a
// denial for the user it was about, without any permission; anyone else
// needs sts:DecodeAuthorizationMessage from their role ∩ session policy
// (sts.Authorize); a tampered message or an unsigned call is refused in
// AWS's error model; every decode is audited with the caller.
func TestDecodeAuthorizationMessage(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	codec := testAuthzCodec(t)
	seal := func(userID string) string {
		m, err := codec.Encode(authzmsg.Explanation{Time: time.Now().UTC(), RequestID: "req-1", UserID: userID,
			Principal: "arn:aws:sts::" + testAccount + ":assumed-role/Analyst/someone", SourceIdentity: "someone",
			Action: "s3:GetObject", Resource: "arn:aws:s3:::data/hr/x", Reason: "no statement allows s3:GetObject"})
		require.NoError(t, err)
		return m
	}
	out, err := w.sdkClient(nil).AssumeRoleWithSAML(ctx, &awssts.AssumeRoleWithSAMLInput{
		RoleArn: aws.String(analystARN), PrincipalArn: aws.String(samlProvARN),
		SAMLAssertion: aws.String(w.idp.sign(t, assertionParams())),
	})
	require.NoError(t, err)
	analyst := w.sdkClient(out.Credentials)
	chained, err := analyst.AssumeRole(ctx, &awssts.AssumeRoleInput{RoleArn: aws.String(auditorARN), RoleSessionName: aws.String("audit")})
	require.NoError(t, err)
	auditor := w.sdkClient(chained.Credentials)

	cases := []struct {
		name   string
		client *awssts.Client
		msg    string
		code   string // "" decodes
	}{
		{"the denied user decodes their own denial", analyst, seal(w.aliceID), ""},
		{"another user's denial needs the permission", analyst, seal("some-other-user"), CodeAccessDenied},
		{"a message without a user needs the permission", analyst, seal(""), CodeAccessDenied},
		{"sts:DecodeAuthorizationMessage decodes anyone's", auditor, seal("some-other-user"), ""},
		{"a tampered message", auditor, seal(w.aliceID) + "x", CodeInvalidAuthorizationMessage},
		{"not a message", analyst, "hello", CodeInvalidAuthorizationMessage},
		{"unsigned", w.sdkClient(nil), seal(w.aliceID), CodeMissingAuthenticationToken},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, err := tc.client.DecodeAuthorizationMessage(ctx, &awssts.DecodeAuthorizationMessageInput{EncodedMessage: aws.String(tc.msg)})
			if tc.code != "" {
				requireAPIError(t, err, tc.code, "")
				return
			}
			require.NoError(t, err)
			var e authzmsg.Explanation
			require.NoError(t, json.Unmarshal([]byte(aws.ToString(res.DecodedMessage)), &e))
			require.Equal(t, "s3:GetObject", e.Action)
			require.Equal(t, "no statement allows s3:GetObject", e.Reason)
		})
	}
	var decoded, refused int
	for _, ev := range w.auditEvents(t) {
		switch {
		case ev.Code == audit.CodeAuthzMessageDecoded:
			decoded++
			require.Equal(t, alice, ev.Actor.User)
		case ev.Code == audit.CodeSTSDenied && ev.Action == "sts.decodeauthorizationmessage":
			refused++
		}
	}
	require.Equal(t, 2, decoded, "every decode is recorded, with the caller")
	require.Equal(t, 5, refused, "every refusal is recorded")

	// The Query protocol answers the same for a GET.
	resp, body := w.post(url.Values{"Action": {"DecodeAuthorizationMessage"}, "Version": {APIVersion}, "EncodedMessage": {"x"}}, "")
	require.Equal(t, 403, resp.StatusCode, body)
}
