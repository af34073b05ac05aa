package sts

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awssts "github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/iam"
	"github.com/gatehouse-dev/gatehouse/internal/identity/saml"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

func TestFederationRefusals(t *testing.T) {
	w := newWorld(t)
	sign := func(mut func(*respParams)) string {
		p := assertionParams()
		if mut != nil {
			mut(&p)
		}
		return w.idp.sign(t, p)
	}
	past := time.Now().UTC().Add(-20 * time.Minute)
	cases := []struct {
		name       string
		form       url.Values
		status     int
		code, pass string
		msg        string // in Message
	}{
		{"unsigned", samlForm(analystARN, samlProvARN, sign(func(p *respParams) { p.unsigned = true })),
			400, CodeInvalidIdentityToken, PassInvalidIdentityToken, "Fix:"},
		{"expired", samlForm(analystARN, samlProvARN, sign(func(p *respParams) {
			p.IssueInstant = past.Format(time.RFC3339)
			p.NotBefore = past.Add(-time.Minute).Format(time.RFC3339)
			p.NotOnOrAfter = past.Add(5 * time.Minute).Format(time.RFC3339)
		})), 400, CodeExpiredTokenException, PassInvalidIdentityToken, "expired at"},
		{"wrong audience", samlForm(analystARN, samlProvARN, sign(func(p *respParams) {
			p.Audiences = []string{"https://someone-else.example/"}
		})), 400, CodeInvalidIdentityToken, PassInvalidIdentityToken, "audience"},
		{"role not in assertion", samlForm(auditorARN, samlProvARN, sign(nil)),
			403, CodeAccessDenied, PassAccessDenied, "does not grant role"},
		{"IdP not in trust policy", samlForm(orphanARN, samlProvARN, sign(nil)),
			403, CodeAccessDenied, PassAccessDenied, samlProvARN + " is not in the trust policy of role " + orphanARN},
		{"malformed role attribute", samlForm(analystARN, samlProvARN, sign(func(p *respParams) {
			p.Attributes[0].Values = []string{"arn:aws:iam::" + testAccount + ":role/Analyst"}
		})), 400, CodeInvalidIdentityToken, PassMalformedRoleAttribute, "roleArn,providerArn"},
		{"ARNs swapped", samlForm(samlProvARN, analystARN, sign(nil)),
			400, CodeValidationError, PassValidationError, "swapped"},
		{"duration above role max", withParam(samlForm(analystARN, samlProvARN, sign(nil)), "DurationSeconds", "10800"),
			400, CodeValidationError, PassValidationError, "MaxSessionDuration"},
		{"duration above IdP SessionDuration", withParam(samlForm(analystARN, samlProvARN, sign(func(p *respParams) {
			p.Attributes[2].Values = []string{"3600"}
		})), "DurationSeconds", "7200"), 400, CodeValidationError, PassValidationError, "SessionDuration the IdP allows"},
		{"session policy not JSON", withParam(samlForm(analystARN, samlProvARN, sign(nil)), "Policy", `{"Version":`),
			400, CodeMalformedPolicyDocument, PassValidationError, "not a valid IAM policy"},
		{"session policy too long", withParam(samlForm(analystARN, samlProvARN, sign(nil)), "Policy", strings.Repeat(" ", 2049)),
			400, CodeValidationError, PassValidationError, "2048"},
		{"provider mismatch", samlForm(analystARN, "arn:aws:iam::"+testAccount+":saml-provider/OtherIdP", sign(nil)),
			403, CodeAccessDenied, PassAccessDenied, "registered as " + samlProvARN},
		{"missing assertion", url.Values{"Action": {ActionAssumeRoleWithSAML}, "RoleArn": {analystARN}, "PrincipalArn": {samlProvARN}},
			400, CodeMissingParameter, PassValidationError, "SAMLAssertion"},
		{"web identity wrong audience", webForm(w.oidc.token(t, map[string]any{"aud": "someone-else"})),
			400, CodeInvalidIdentityToken, PassInvalidIdentityToken, "audience"},
		{"web identity expired", webForm(w.oidc.token(t, map[string]any{
			"iat": time.Now().Add(-time.Hour).Unix(), "exp": time.Now().Add(-30 * time.Minute).Unix()})),
			400, CodeExpiredTokenException, PassInvalidIdentityToken, "expired"},
		{"web identity unknown issuer", webForm(w.oidc.token(t, map[string]any{"iss": "https://evil.example.test"})),
			400, CodeInvalidIdentityToken, PassInvalidIdentityToken, "No OpenID Connect provider"},
		{"web identity not a JWT", webForm("not-a-jwt"), 400, CodeInvalidIdentityToken, PassInvalidIdentityToken, "not a JWT"},
		{"web identity trust", func() url.Values {
			f := webForm(w.oidc.token(t, nil))
			f.Set("RoleArn", auditorARN)
			return f
		}(), 403, CodeAccessDenied, PassAccessDenied, "is not in the trust policy"},
		{"unknown action", url.Values{"Action": {"GetSessionToken"}}, 400, CodeInvalidAction, PassValidationError, "GetSessionToken"},
		{"wrong version", url.Values{"Action": {ActionAssumeRole}, "Version": {"2010-01-01"}}, 400, CodeInvalidParameterValue, PassValidationError, "Version"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := w.post(tc.form, "")
			require.Equal(t, tc.status, resp.StatusCode, body)
			code, msg := errorCode(t, body)
			require.Equal(t, tc.code, code, msg)
			require.Equal(t, tc.pass, resp.Header.Get(HeaderPassthroughError))
			require.Contains(t, msg, tc.msg)
			require.Equal(t, "text/xml", resp.Header.Get("Content-Type"))
		})
	}
	// Every refusal is audited, on its own with its reason or (when it
	// identified no caller) counted in a summary, and nothing was issued.
	require.Equal(t, len(cases), w.refusalsRecorded(t))
	for _, ev := range w.auditEvents(t) {
		require.Contains(t, []audit.Code{audit.CodeSTSDenied, audit.CodeSTSDeniedAggregated}, ev.Code, ev.Reason)
	}
}

func withParam(f url.Values, k, v string) url.Values {
	f.Set(k, v)
	return f
}

func webForm(token string) url.Values {
	return url.Values{"Action": {ActionAssumeRoleWithWebIdentity}, "RoleArn": {analystARN},
		"RoleSessionName": {"bob"}, "WebIdentityToken": {token}}
}

func TestTroubleshootingFormats(t *testing.T) {
	w := newWorld(t)
	form := samlForm(orphanARN, samlProvARN, w.idp.sign(t, assertionParams()))
	resp, body := w.post(form, "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8")
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	require.Equal(t, "text/html; charset=utf-8", resp.Header.Get("Content-Type"))
	require.Equal(t, PassAccessDenied, resp.Header.Get(HeaderPassthroughError))
	require.Contains(t, body, "<strong>Cause:</strong> "+samlProvARN+" is not in the trust policy")
	require.Contains(t, body, "<strong>Fix:</strong> add &#34;"+samlProvARN+"&#34; as Principal.Federated")

	form = samlForm(analystARN, samlProvARN, w.idp.sign(t, func() respParams {
		p := assertionParams()
		p.Attributes[0].Values = []string{"garbage"}
		return p
	}()))
	resp, body = w.post(form, "application/json")
	require.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	var doc struct {
		Error struct{ Code, Message, Cause, Fix, PassthroughError string }
	}
	require.NoError(t, json.Unmarshal([]byte(body), &doc), body)
	require.Equal(t, PassMalformedRoleAttribute, doc.Error.PassthroughError)
	require.Equal(t, PassMalformedRoleAttribute, resp.Header.Get(HeaderPassthroughError))
	require.NotEmpty(t, doc.Error.Cause)
	require.NotEmpty(t, doc.Error.Fix)

	// Successful calls may be answered in JSON too (AWS Query JSON form).
	resp, body = w.post(samlForm(analystARN, samlProvARN, w.idp.sign(t, assertionParams())), "application/json")
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	var ok struct {
		AssumeRoleWithSAMLResponse struct {
			AssumeRoleWithSAMLResult struct {
				Credentials struct {
					AccessKeyID string `json:"AccessKeyId"`
					Expiration  int64
				}
			}
			ResponseMetadata struct {
				RequestID string `json:"RequestId"`
			}
		}
	}
	require.NoError(t, json.Unmarshal([]byte(body), &ok), body)
	require.Regexp(t, "^ASIA", ok.AssumeRoleWithSAMLResponse.AssumeRoleWithSAMLResult.Credentials.AccessKeyID)
	require.Greater(t, ok.AssumeRoleWithSAMLResponse.AssumeRoleWithSAMLResult.Credentials.Expiration, time.Now().Unix())

	// Oversized bodies and non-form bodies are ValidationErrors.
	big := url.Values{"Action": {ActionAssumeRoleWithSAML}, "SAMLAssertion": {strings.Repeat("A", DefaultMaxBodyBytes)}}
	resp, body = w.post(big, "")
	require.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
	code, _ := errorCode(t, body)
	require.Equal(t, CodeValidationError, code)
	req, _ := http.NewRequest(http.MethodPost, w.url, strings.NewReader("Action=%zz"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r2, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	r2.Body.Close()
	require.Equal(t, http.StatusBadRequest, r2.StatusCode)
	require.Equal(t, PassValidationError, r2.Header.Get(HeaderPassthroughError))

	// GetCallerIdentity needs a signature.
	resp, body = w.post(url.Values{"Action": {ActionGetCallerIdentity}}, "")
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	code, _ = errorCode(t, body)
	require.Equal(t, CodeMissingAuthenticationToken, code)
}

func TestEffectivePermissionsRoleIntersectSession(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	anon := w.sdkClient(nil)
	policy := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:GetObject","s3:DeleteObject"],"Resource":"arn:aws:s3:::data/public/*"}]}`
	out, err := anon.AssumeRoleWithWebIdentity(ctx, &awssts.AssumeRoleWithWebIdentityInput{
		RoleArn: aws.String(analystARN), RoleSessionName: aws.String("scoped"),
		WebIdentityToken: aws.String(w.oidc.token(t, nil)), Policy: aws.String(policy),
	})
	require.NoError(t, err)
	//lint:ignore SA1019 the wire field is what older SDKs and the AWS CLI read; the test pins that we still send it
	require.Positive(t, *out.PackedPolicySize)
	cr, err := w.svc.LookupCredentials(ctx, *out.Credentials.AccessKeyId, *out.Credentials.SessionToken)
	require.NoError(t, err)
	claims := claimsOf(t, cr)

	check := func(action, resource string, want iam.Decision, layer iam.Layer) {
		t.Helper()
		res, err := w.svc.Authorize(ctx, claims, action, resource, map[string][]string{"aws:SourceIp": {"127.0.0.1"}})
		require.NoError(t, err)
		require.Equal(t, want, res.Decision, "%s %s: %s", action, resource, res.Reason())
		if want != iam.Allowed {
			require.Equal(t, layer, res.Layer, res.Reason())
		}
	}
	check("s3:GetObject", "arn:aws:s3:::data/public/a.csv", iam.Allowed, 0)
	check("s3:GetObject", "arn:aws:s3:::data/private/a.csv", iam.ImplicitDeny, iam.LayerSession)    // role yes, session no
	check("s3:PutObject", "arn:aws:s3:::data/public/a.csv", iam.ImplicitDeny, iam.LayerSession)     // role yes, session no
	check("s3:DeleteObject", "arn:aws:s3:::data/public/a.csv", iam.ImplicitDeny, iam.LayerIdentity) // session yes, role no

	// Without a session policy the role alone decides.
	out, err = anon.AssumeRoleWithWebIdentity(ctx, &awssts.AssumeRoleWithWebIdentityInput{
		RoleArn: aws.String(analystARN), RoleSessionName: aws.String("full"), WebIdentityToken: aws.String(w.oidc.token(t, nil)),
	})
	require.NoError(t, err)
	cr, err = w.svc.LookupCredentials(ctx, *out.Credentials.AccessKeyId, *out.Credentials.SessionToken)
	require.NoError(t, err)
	claims = claimsOf(t, cr)
	check("s3:PutObject", "arn:aws:s3:::data/private/a.csv", iam.Allowed, 0)
	check("s3:GetObject", "arn:aws:s3:::other/a.csv", iam.ImplicitDeny, iam.LayerIdentity)

	// A role policy change applies to live sessions once the cache lapses.
	r, err := w.st.GetRoleByName(ctx, "Analyst")
	require.NoError(t, err)
	r.PermissionPolicies = append(r.PermissionPolicies, store.NamedPolicy{Name: "deny-private",
		Document: `{"Version":"2012-10-17","Statement":[{"Effect":"Deny","Action":"s3:*","Resource":"arn:aws:s3:::data/private/*"}]}`})
	require.NoError(t, w.st.UpdateRole(ctx, r))
	w.advance(DefaultCacheTTL)
	res, err := w.svc.Authorize(ctx, claims, "s3:PutObject", "arn:aws:s3:::data/private/a.csv", nil)
	require.NoError(t, err)
	require.Equal(t, iam.ExplicitDeny, res.Decision, "the change applies once the role cache lapses")
}

func TestRevocationWhenUserDisabled(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	out, err := w.sdkClient(nil).AssumeRoleWithSAML(ctx, &awssts.AssumeRoleWithSAMLInput{
		RoleArn: aws.String(analystARN), PrincipalArn: aws.String(samlProvARN),
		SAMLAssertion: aws.String(w.idp.sign(t, assertionParams())),
	})
	require.NoError(t, err)
	client := w.sdkClient(out.Credentials)
	_, err = client.GetCallerIdentity(ctx, &awssts.GetCallerIdentityInput{})
	require.NoError(t, err)

	u, err := w.st.GetUserByName(ctx, alice)
	require.NoError(t, err)
	u.Active = false
	require.NoError(t, w.st.UpdateUser(ctx, u))
	// Once the user-status cache (CacheTTL ≤ credentials.MaxRevocationTTL,
	// within the 5 s promise) has lapsed, the credentials are refused.
	w.advance(DefaultCacheTTL)
	_, err = client.GetCallerIdentity(ctx, &awssts.GetCallerIdentityInput{})
	requireAPIError(t, err, CodeAccessDenied, "disabled")

	// A disabled user cannot federate again either.
	resp, body := w.post(samlForm(analystARN, samlProvARN, w.idp.sign(t, assertionParams())), "")
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	code, msg := errorCode(t, body)
	require.Equal(t, CodeAccessDenied, code)
	require.Contains(t, msg, "disabled")
}

func TestSAMLReplayAndSourceIdentityAttribute(t *testing.T) {
	w := newWorld(t)
	p := assertionParams()
	p.Attributes = append(p.Attributes, attrParam{saml.AttrSourceIdentity, []string{"alice-si"}})
	assertion := w.idp.sign(t, p)
	// The Analyst trust policy does not allow sts:SetSourceIdentity.
	resp, body := w.post(samlForm(analystARN, samlProvARN, assertion), "")
	require.Equal(t, http.StatusForbidden, resp.StatusCode, body)
	_, msg := errorCode(t, body)
	require.Contains(t, msg, "sts:SetSourceIdentity")
	// The assertion was consumed: replaying it is refused.
	resp, body = w.post(samlForm(analystARN, samlProvARN, assertion), "")
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	_, msg = errorCode(t, body)
	require.Contains(t, strings.ToLower(msg), "already")
}

type failingEmitter struct{}

func (failingEmitter) Emit(context.Context, audit.Event) error { return audit.ErrFailed }

func TestNoCredentialsWithoutAudit(t *testing.T) {
	w := newWorld(t)
	o := w.opts
	o.Audit = failingEmitter{}
	svc, err := New(o)
	require.NoError(t, err)
	w.svc = svc
	resp, body := w.post(samlForm(analystARN, samlProvARN, w.idp.sign(t, assertionParams())), "")
	require.Equal(t, http.StatusInternalServerError, resp.StatusCode, body)
	require.NotContains(t, body, "ASIA")
	require.NotContains(t, body, "SecretAccessKey")
	var e xmlErrorResponse
	require.NoError(t, xml.Unmarshal([]byte(body), &e))
	require.Equal(t, "Receiver", e.Error.Type)
	require.Equal(t, CodeInternalFailure, e.Error.Code)
}

func TestPresignedGetCallerIdentity(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	out, err := w.sdkClient(nil).AssumeRoleWithWebIdentity(ctx, &awssts.AssumeRoleWithWebIdentityInput{
		RoleArn: aws.String(analystARN), RoleSessionName: aws.String("presign"), WebIdentityToken: aws.String(w.oidc.token(t, nil)),
	})
	require.NoError(t, err)
	// A presigned GET (the form EKS-style tokens use). aws-sdk-go-v2's
	// PresignGetCallerIdentity leaves X-Amz-Expires out, which the sigv4
	// verifier requires, so the URL is presigned with the SDK's signer.
	c := out.Credentials
	u := w.url + "?Action=GetCallerIdentity&Version=2011-06-15&X-Amz-Expires=60"
	req, err := http.NewRequest(http.MethodGet, u, nil)
	require.NoError(t, err)
	signed, _, err := v4.NewSigner().PresignHTTP(ctx, aws.Credentials{AccessKeyID: *c.AccessKeyId, SecretAccessKey: *c.SecretAccessKey,
		SessionToken: *c.SessionToken}, req, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "sts", "us-east-1", time.Now())
	require.NoError(t, err)
	req, err = http.NewRequest(http.MethodGet, signed, nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var doc struct {
		Result callerIdentityResult `xml:"GetCallerIdentityResult"`
	}
	b, _ := io.ReadAll(resp.Body)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", b)
	require.NoError(t, xml.Unmarshal(b, &doc))
	require.Equal(t, "arn:aws:sts::"+testAccount+":assumed-role/Analyst/presign", doc.Result.Arn)
}

// TestSAMLCertificateMintedOneSecondAgo proves issue 11 finding 12 against
// a running STS: an IdP that has just rotated to a certificate minted one
// second ago is trusted at once. Before the fix the signing library checked
// the certificate at now minus the clock skew, so the new certificate was
// refused for its first 3 minutes with an error that blamed it.
func TestSAMLCertificateMintedOneSecondAgo(t *testing.T) {
	w := newWorld(t)
	ctx := context.Background()
	fresh := newTestIdPFrom(t, time.Now().Add(-time.Second))
	p, err := w.st.GetSAMLProviderByEntityID(ctx, testIdPID)
	require.NoError(t, err)
	p.MetadataXML = fresh.metadata()
	require.NoError(t, w.st.UpdateSAMLProvider(ctx, p))

	resp, body := w.post(samlForm(analystARN, samlProvARN, fresh.sign(t, assertionParams())), "")
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	require.Contains(t, body, "<AssumeRoleWithSAMLResult>")
}
