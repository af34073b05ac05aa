package sts

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awssts "github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-dev/gatehouse/internal/iam"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// TestWebIdentitySessionTags: the https://aws.amazon.com/tags claim becomes
// session tags, gated by sts:TagSession in the trust policy; the tags reach
// aws:PrincipalTag in later authorization; malformed claims are refused.
func TestWebIdentitySessionTags(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	tagged := map[string]any{tagsClaim: map[string]any{
		"principal_tags":      map[string]any{"department": []any{"finance"}, "region": []any{"EU"}},
		"transitive_tag_keys": []any{"department"},
	}}

	// The Analyst trust policy does not allow sts:TagSession for the OIDC provider.
	resp, body := w.post(webForm(w.oidc.token(t, tagged)), "")
	require.Equal(t, http.StatusForbidden, resp.StatusCode, body)
	code, msg := errorCode(t, body)
	require.Equal(t, CodeAccessDenied, code)
	require.Contains(t, msg, "sts:TagSession")

	r, err := w.st.GetRoleByName(ctx, "Analyst")
	require.NoError(t, err)
	r.TrustPolicy = fmt.Sprintf(`{"Version":"2012-10-17","Statement":[
	  {"Effect":"Allow","Principal":{"Federated":%q},"Action":["sts:AssumeRoleWithWebIdentity","sts:TagSession"]}]}`, w.oidcARN)
	r.PermissionPolicies = append(r.PermissionPolicies, store.NamedPolicy{Name: "by-department", Document: `{"Version":"2012-10-17","Statement":[
	  {"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::dept/${aws:PrincipalTag/department}/*"}]}`})
	require.NoError(t, w.st.UpdateRole(ctx, r))

	w.advance(DefaultCacheTTL) // the role cache lapses
	out, err := w.sdkClient(nil).AssumeRoleWithWebIdentity(ctx, &awssts.AssumeRoleWithWebIdentityInput{
		RoleArn: aws.String(analystARN), RoleSessionName: aws.String("tagged"),
		WebIdentityToken: aws.String(w.oidc.token(t, tagged)),
	})
	require.NoError(t, err)
	cr, err := w.svc.LookupCredentials(ctx, *out.Credentials.AccessKeyId, *out.Credentials.SessionToken)
	require.NoError(t, err)
	claims := claimsOf(t, cr)
	require.Equal(t, map[string]string{"department": "finance", "region": "EU"}, claims.SessionTags)
	require.Equal(t, []string{"department"}, claims.TransitiveTagKeys)
	res, err := w.svc.Authorize(ctx, claims, "s3:GetObject", "arn:aws:s3:::dept/finance/q3.csv", nil)
	require.NoError(t, err)
	require.Equal(t, iam.Allowed, res.Decision, res.Reason())
	res, err = w.svc.Authorize(ctx, claims, "s3:GetObject", "arn:aws:s3:::dept/hr/salaries.csv", nil)
	require.NoError(t, err)
	require.NotEqual(t, iam.Allowed, res.Decision)

	for name, bad := range map[string]any{
		"not an object":     "department=finance",
		"two values":        map[string]any{"principal_tags": map[string]any{"k": []any{"a", "b"}}},
		"aws prefix":        map[string]any{"principal_tags": map[string]any{"aws:k": []any{"a"}}},
		"dangling key":      map[string]any{"principal_tags": map[string]any{"k": []any{"a"}}, "transitive_tag_keys": []any{"other"}},
		"non-string values": map[string]any{"principal_tags": map[string]any{"k": []any{1}}},
	} {
		resp, body := w.post(webForm(w.oidc.token(t, map[string]any{tagsClaim: bad})), "")
		require.Equal(t, http.StatusBadRequest, resp.StatusCode, "%s: %s", name, body)
		code, _ := errorCode(t, body)
		require.Equal(t, CodeInvalidIdentityToken, code, name)
	}
}
