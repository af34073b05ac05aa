package sts

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awssts "github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/aws-sdk-go-v2/service/sts/types"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
)

// answer is what a client sees of a refused STS call.
type answer struct {
	Status      int
	Code        string
	Message     string
	Passthrough string
}

// postSigned sends a Query call SigV4-signed with creds, as an SDK does.
func (w *world) postSigned(t *testing.T, form url.Values, creds *types.Credentials) (*http.Response, string) {
	t.Helper()
	form.Set("Version", APIVersion)
	body := form.Encode()
	req, err := http.NewRequest(http.MethodPost, w.url, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	sum := sha256.Sum256([]byte(body))
	require.NoError(t, v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: *creds.AccessKeyId,
		SecretAccessKey: *creds.SecretAccessKey, SessionToken: *creds.SessionToken}, req, hex.EncodeToString(sum[:]),
		"sts", "us-east-1", time.Now()))
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(b)
}

// flows builds, for each of the three federation flows, a call that
// would succeed, then applies mut and returns what the client sees.
type flowCall func(t *testing.T, mut func(url.Values)) answer

func (w *world) threeFlows(t *testing.T) map[string]flowCall {
	t.Helper()
	out, err := w.sdkClient(nil).AssumeRoleWithWebIdentity(context.Background(), &awssts.AssumeRoleWithWebIdentityInput{
		RoleArn: aws.String(analystARN), RoleSessionName: aws.String("caller"), WebIdentityToken: aws.String(w.oidc.token(t, nil)),
	})
	require.NoError(t, err)
	caller := out.Credentials
	toAnswer := func(t *testing.T, resp *http.Response, body string) answer {
		t.Helper()
		if resp.StatusCode == http.StatusOK {
			return answer{Status: http.StatusOK}
		}
		code, msg := errorCode(t, body)
		return answer{Status: resp.StatusCode, Code: code, Message: msg, Passthrough: resp.Header.Get(HeaderPassthroughError)}
	}
	return map[string]flowCall{
		ActionAssumeRoleWithWebIdentity: func(t *testing.T, mut func(url.Values)) answer {
			f := webForm(w.oidc.token(t, nil))
			mut(f)
			resp, body := w.post(f, "")
			return toAnswer(t, resp, body)
		},
		ActionAssumeRoleWithSAML: func(t *testing.T, mut func(url.Values)) answer {
			f := samlForm(analystARN, samlProvARN, w.idp.sign(t, assertionParams()))
			mut(f)
			resp, body := w.post(f, "")
			return toAnswer(t, resp, body)
		},
		ActionAssumeRole: func(t *testing.T, mut func(url.Values)) answer {
			f := url.Values{"Action": {ActionAssumeRole}, "RoleArn": {auditorARN}, "RoleSessionName": {"audit"}}
			mut(f)
			resp, body := w.postSigned(t, f, caller)
			return toAnswer(t, resp, body)
		},
	}
}

// TestOnePipelineAnswersBadCommonInputIdentically proves issue 12 §3 (one
// federation pipeline): the same bad common input, sent to
// AssumeRoleWithWebIdentity, AssumeRoleWithSAML and AssumeRole with an
// otherwise valid proof, is refused by all three with the same status,
// code, message and passthrough kind, because one pipeline checks it.
func TestOnePipelineAnswersBadCommonInputIdentically(t *testing.T) {
	w := newWorld(t)
	flows := w.threeFlows(t)
	set := func(kv ...string) func(url.Values) {
		return func(f url.Values) {
			for i := 0; i < len(kv); i += 2 {
				f.Set(kv[i], kv[i+1])
			}
		}
	}
	cases := []struct {
		name string
		mut  func(url.Values)
		code string
		msg  string
	}{
		{"bad RoleSessionName", set("RoleSessionName", "carol/x"), CodeValidationError, "RoleSessionName"},
		{"RoleSessionName too long", set("RoleSessionName", strings.Repeat("a", 65)), CodeValidationError, "RoleSessionName"},
		{"DurationSeconds below range", set("DurationSeconds", "60"), CodeValidationError, "between 900 and 43200"},
		{"DurationSeconds above range", set("DurationSeconds", "50000"), CodeValidationError, "between 900 and 43200"},
		{"DurationSeconds not a number", set("DurationSeconds", "1h"), CodeValidationError, "between 900 and 43200"},
		{"oversize Policy", set("Policy", strings.Repeat(" ", maxPolicyChars+1)), CodeValidationError, "2048"},
		{"Policy not JSON", set("Policy", `{"Version":`), CodeMalformedPolicyDocument, "not a valid IAM policy"},
		{"malformed PolicyArns", set("PolicyArns.member.1.arn", "not-an-arn"), CodeValidationError, "not a managed policy ARN"},
		{"malformed RoleArn", set("RoleArn", "arn:aws:iam::"+testAccount+":role/"), CodeValidationError, "is not an IAM role ARN"},
		{"RoleArn in another account", set("RoleArn", "arn:aws:iam::999999999999:role/Analyst"), CodeValidationError, "this gatehouse is account"},
		{"tag with aws: prefix", set("Tags.member.1.Key", "aws:team", "Tags.member.1.Value", "x"), CodeValidationError, "Session tag"},
		{"tag without value", set("Tags.member.1.Key", "team"), CodeValidationError, "Key and a Value"},
		{"transitive key names no tag", set("Tags.member.1.Key", "team", "Tags.member.1.Value", "x", "TransitiveTagKeys.member.1", "other"),
			CodeValidationError, "not a session tag"},
		{"bad SourceIdentity", set("SourceIdentity", "aws:me"), CodeValidationError, "SourceIdentity"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := map[string]answer{}
			for action, call := range flows {
				got[action] = call(t, tc.mut)
				require.Equal(t, tc.code, got[action].Code, "%s: %+v", action, got[action])
				require.Contains(t, got[action].Message, tc.msg, action)
			}
			require.Equal(t, got[ActionAssumeRole], got[ActionAssumeRoleWithWebIdentity], "AssumeRole and AssumeRoleWithWebIdentity differ")
			require.Equal(t, got[ActionAssumeRole], got[ActionAssumeRoleWithSAML], "AssumeRole and AssumeRoleWithSAML differ")
		})
	}
}

// TestFederationRefusesParametersItDoesNotTake proves issue 12 §3 with the
// rule "never accept a request and silently ignore part of it": a valid
// parameter that only another flow takes (AssumeRole's Tags, SourceIdentity
// and ExternalId; RoleSessionName, which SAML takes from the assertion) is
// refused with ValidationError, and no credentials are issued. Before the
// one pipeline, AssumeRoleWithSAML and AssumeRoleWithWebIdentity issued
// credentials and dropped them.
func TestFederationRefusesParametersItDoesNotTake(t *testing.T) {
	w := newWorld(t)
	flows := w.threeFlows(t)
	cases := []struct {
		action string
		param  string
		value  string
	}{
		{ActionAssumeRoleWithWebIdentity, "Tags.member.1.Key", "team"},
		{ActionAssumeRoleWithWebIdentity, "TransitiveTagKeys.member.1", "team"},
		{ActionAssumeRoleWithWebIdentity, "SourceIdentity", "mallory"},
		{ActionAssumeRoleWithWebIdentity, "ExternalId", "x-123"},
		{ActionAssumeRoleWithSAML, "Tags.member.1.Key", "team"},
		{ActionAssumeRoleWithSAML, "SourceIdentity", "mallory"},
		{ActionAssumeRoleWithSAML, "RoleSessionName", "mallory"},
		{ActionAssumeRoleWithSAML, "ExternalId", "x-123"},
	}
	for _, tc := range cases {
		t.Run(tc.action+" "+tc.param, func(t *testing.T) {
			got := flows[tc.action](t, func(f url.Values) {
				f.Set(tc.param, tc.value)
				if strings.HasPrefix(tc.param, "Tags.member.1.") {
					f.Set("Tags.member.1.Value", "finance")
				}
				if strings.HasPrefix(tc.param, "TransitiveTagKeys") {
					f.Set("Tags.member.1.Key", "team")
					f.Set("Tags.member.1.Value", "finance")
				}
			})
			require.Equal(t, http.StatusBadRequest, got.Status, "%+v", got)
			require.Equal(t, CodeValidationError, got.Code)
			require.Contains(t, got.Message, tc.action+" does not take")
		})
	}
	issued := 0
	for _, ev := range w.auditEvents(t) {
		if ev.Code == audit.CodeSTSIssued {
			issued++
		}
	}
	require.Equal(t, 1, issued, "only the caller's own credentials were issued")

	// The refusal comes before any effect: the one-time assertion it
	// carried is still unused.
	assertion := w.idp.sign(t, assertionParams())
	resp, body := w.post(withParam(samlForm(analystARN, samlProvARN, assertion), "RoleSessionName", "mallory"), "")
	require.Equal(t, http.StatusBadRequest, resp.StatusCode, body)
	resp, body = w.post(samlForm(analystARN, samlProvARN, assertion), "")
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
}
