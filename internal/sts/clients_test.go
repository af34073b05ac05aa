package sts

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// cliEnv is a clean environment for the real AWS clients: no config or
// credential files, no instance metadata, plus extra.
func cliEnv(t testing.TB, extra ...string) []string {
	t.Helper()
	dir := t.TempDir()
	cfg, creds := filepath.Join(dir, "config"), filepath.Join(dir, "credentials")
	require.NoError(t, os.WriteFile(cfg, nil, 0o600))
	require.NoError(t, os.WriteFile(creds, nil, 0o600))
	return append([]string{
		"PATH=/usr/bin:/bin", "HOME=" + dir, "LANG=C.UTF-8",
		"AWS_CONFIG_FILE=" + cfg, "AWS_SHARED_CREDENTIALS_FILE=" + creds,
		"AWS_EC2_METADATA_DISABLED=true", "AWS_PAGER=", "AWS_DEFAULT_OUTPUT=json",
	}, extra...)
}

type cliCreds struct {
	AccessKeyID     string `json:"AccessKeyId"`
	SecretAccessKey string
	SessionToken    string
	Expiration      string
}

func (c cliCreds) env() []string {
	return []string{"AWS_ACCESS_KEY_ID=" + c.AccessKeyID, "AWS_SECRET_ACCESS_KEY=" + c.SecretAccessKey, "AWS_SESSION_TOKEN=" + c.SessionToken}
}

type callerIdentity struct {
	UserID  string `json:"UserId"`
	Account string
	Arn     string
}

// runAWS runs /usr/bin/aws and decodes its JSON output into out.
func runAWS(t testing.TB, env []string, out any, args ...string) {
	t.Helper()
	bin := requireTool(t, "/usr/bin/aws", "awscli")
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	var stderr strings.Builder
	cmd.Stderr = &stderr
	b, err := cmd.Output()
	require.NoError(t, err, "aws %s: %s", args[:2], stderr.String())
	require.NoError(t, json.Unmarshal(b, out), string(b))
}

func TestAWSCLI(t *testing.T) {
	w := newWorld(t)
	requireTool(t, "/usr/bin/aws", "awscli")
	base := []string{"--endpoint-url", w.url, "--region", "us-east-1", "--output", "json"}

	var saml struct {
		Credentials     cliCreds
		AssumedRoleUser struct{ AssumedRoleID, Arn string }
		Subject         string
		Issuer          string
		SourceIdentity  string
	}
	runAWS(t, cliEnv(t), &saml, append([]string{"sts", "assume-role-with-saml",
		"--role-arn", analystARN, "--principal-arn", samlProvARN,
		"--saml-assertion", w.idp.sign(t, assertionParams())}, base...)...)
	require.Regexp(t, `^ASIA`, saml.Credentials.AccessKeyID)
	require.Equal(t, alice, saml.Subject)
	require.Equal(t, alice, saml.SourceIdentity)

	var me callerIdentity
	runAWS(t, cliEnv(t, saml.Credentials.env()...), &me, append([]string{"sts", "get-caller-identity"}, base...)...)
	require.Equal(t, testAccount, me.Account)
	require.Equal(t, "arn:aws:sts::"+testAccount+":assumed-role/Analyst/"+alice, me.Arn)

	var wi struct {
		Credentials                 cliCreds
		SubjectFromWebIdentityToken string
		Provider                    string
	}
	runAWS(t, cliEnv(t), &wi, append([]string{"sts", "assume-role-with-web-identity",
		"--role-arn", analystARN, "--role-session-name", "bob-cli",
		"--web-identity-token", w.oidc.token(t, nil)}, base...)...)
	require.Equal(t, "u-bob-123", wi.SubjectFromWebIdentityToken)
	runAWS(t, cliEnv(t, wi.Credentials.env()...), &me, append([]string{"sts", "get-caller-identity"}, base...)...)
	require.Equal(t, "arn:aws:sts::"+testAccount+":assumed-role/Analyst/bob-cli", me.Arn)

	// Chaining with the cli: assume-role signed by the SAML session.
	var ar struct {
		Credentials    cliCreds
		SourceIdentity string
	}
	runAWS(t, cliEnv(t, saml.Credentials.env()...), &ar, append([]string{"sts", "assume-role",
		"--role-arn", auditorARN, "--role-session-name", "audit-cli"}, base...)...)
	require.Equal(t, alice, ar.SourceIdentity)
	runAWS(t, cliEnv(t, ar.Credentials.env()...), &me, append([]string{"sts", "get-caller-identity"}, base...)...)
	require.Equal(t, "arn:aws:sts::"+testAccount+":assumed-role/Auditor/audit-cli", me.Arn)

	// A refusal reaches the cli as the AWS error code and our message.
	cmd := exec.Command("/usr/bin/aws", append([]string{"sts", "assume-role-with-saml",
		"--role-arn", orphanARN, "--principal-arn", samlProvARN,
		"--saml-assertion", w.idp.sign(t, assertionParams())}, base...)...)
	cmd.Env = cliEnv(t)
	msg, err := cmd.CombinedOutput()
	require.Error(t, err)
	require.Contains(t, string(msg), "(AccessDenied)")
	require.Contains(t, string(msg), "is not in the trust policy of role "+orphanARN)
}

const boto3Script = `
import boto3, json, sys
p = json.loads(sys.argv[1])
kw = dict(endpoint_url=p["url"], region_name="us-east-1")
anon = boto3.client("sts", **kw)
def signed(c):
    return boto3.client("sts", aws_access_key_id=c["AccessKeyId"], aws_secret_access_key=c["SecretAccessKey"],
                        aws_session_token=c["SessionToken"], **kw)
out = {}
r = anon.assume_role_with_saml(RoleArn=p["role"], PrincipalArn=p["provider"], SAMLAssertion=p["assertion"])
out["saml"] = {"arn": r["AssumedRoleUser"]["Arn"], "sourceIdentity": r.get("SourceIdentity"), "subject": r["Subject"]}
i = signed(r["Credentials"]).get_caller_identity()
out["samlIdentity"] = {"Arn": i["Arn"], "Account": i["Account"], "UserId": i["UserId"]}
r = anon.assume_role_with_web_identity(RoleArn=p["role"], RoleSessionName="bob-boto3", WebIdentityToken=p["token"])
out["web"] = {"subject": r["SubjectFromWebIdentityToken"], "audience": r["Audience"]}
i = signed(r["Credentials"]).get_caller_identity()
out["webIdentity"] = {"Arn": i["Arn"], "Account": i["Account"], "UserId": i["UserId"]}
try:
    anon.assume_role_with_saml(RoleArn=p["role"], PrincipalArn=p["provider"], SAMLAssertion=p["assertion"])
except anon.exceptions.ClientError as e:
    out["replay"] = {"code": e.response["Error"]["Code"], "status": e.response["ResponseMetadata"]["HTTPStatusCode"],
                     "header": e.response["ResponseMetadata"]["HTTPHeaders"].get("x-gatehouse-passthrough-error")}
print(json.dumps(out))
`

func TestBoto3(t *testing.T) {
	w := newWorld(t)
	py := requireTool(t, "/usr/bin/python3", "python3")
	if err := exec.Command(py, "-c", "import boto3").Run(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("boto3 not importable by /usr/bin/python3; it is required in CI (Debian package python3-boto3)")
		}
		t.Skip("python3-boto3 not installed; set CI=true to make this a failure")
	}
	params, err := json.Marshal(map[string]string{
		"url": w.url, "role": analystARN, "provider": samlProvARN,
		"assertion": w.idp.sign(t, assertionParams()), "token": w.oidc.token(t, nil),
	})
	require.NoError(t, err)
	cmd := exec.Command(py, "-c", boto3Script, string(params))
	cmd.Env = cliEnv(t)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	b, err := cmd.Output()
	require.NoError(t, err, stderr.String())
	var out struct {
		SAML         map[string]string `json:"saml"`
		SAMLIdentity callerIdentity    `json:"samlIdentity"`
		Web          map[string]string `json:"web"`
		WebIdentity  callerIdentity    `json:"webIdentity"`
		Replay       struct {
			Code   string `json:"code"`
			Status int    `json:"status"`
			Header string `json:"header"`
		} `json:"replay"`
	}
	require.NoError(t, json.Unmarshal(b, &out), string(b))
	require.Equal(t, "arn:aws:sts::"+testAccount+":assumed-role/Analyst/"+alice, out.SAML["arn"])
	require.Equal(t, alice, out.SAML["sourceIdentity"])
	require.Equal(t, out.SAML["arn"], out.SAMLIdentity.Arn)
	require.Equal(t, testAccount, out.SAMLIdentity.Account)
	require.Equal(t, "u-bob-123", out.Web["subject"])
	require.Equal(t, testClient, out.Web["audience"])
	require.Equal(t, "arn:aws:sts::"+testAccount+":assumed-role/Analyst/bob-boto3", out.WebIdentity.Arn)
	require.Equal(t, CodeInvalidIdentityToken, out.Replay.Code, "a replayed assertion is refused")
	require.Equal(t, 400, out.Replay.Status)
	require.Equal(t, PassInvalidIdentityToken, out.Replay.Header)
}
