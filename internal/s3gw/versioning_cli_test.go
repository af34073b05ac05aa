package s3gw

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
)

// TestAWSCLIVersioningAndLock proves issue 13, versioning and object lock,
// with the AWS CLI (Debian's awscli) through the gateway in front of
// versitygw: versioning enabled, two versions written, the old one read by
// its id, a version deleted; a legal hold set on upload blocks deleting the
// version; a session without s3:PutObjectRetention cannot set a retention;
// every step is audited.
func TestAWSCLIVersioningAndLock(t *testing.T) {
	needBinary(t, "/usr/bin/aws")
	be := versitygwBackend(t)
	vers := scratchBucket(t, be, "clivers", false)
	locked := scratchBucket(t, be, "clilock", true)
	e := newEnv(t, envOptions{backend: be})
	c := e.cli(t, e.creds("alice", roleARNs.admin, ""))
	api := func(args ...string) string {
		return c.run("/usr/bin/aws", append([]string{"--endpoint-url", e.srv.URL, "s3api"}, args...)...)
	}
	file := func(name, content string) string {
		p := filepath.Join(c.dir, name)
		require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
		return p
	}
	var put struct{ VersionId string }
	putVersion := func(bucket, key, body string, extra ...string) string {
		out := api(append([]string{"put-object", "--bucket", bucket, "--key", key, "--body", file("body", body)}, extra...)...)
		require.NoError(t, json.Unmarshal([]byte(out), &put), out)
		require.NotEmpty(t, put.VersionId, out)
		return put.VersionId
	}

	api("put-bucket-versioning", "--bucket", vers, "--versioning-configuration", "Status=Enabled")
	require.Contains(t, api("get-bucket-versioning", "--bucket", vers), `"Enabled"`)
	v1 := putVersion(vers, "report.csv", "v1")
	putVersion(vers, "report.csv", "v2")
	api("get-object", "--bucket", vers, "--key", "report.csv", "--version-id", v1, filepath.Join(c.dir, "old"))
	got, err := os.ReadFile(filepath.Join(c.dir, "old"))
	require.NoError(t, err)
	require.Equal(t, "v1", string(got))
	var listed struct{ Versions []struct{ VersionId string } }
	require.NoError(t, json.Unmarshal([]byte(api("list-object-versions", "--bucket", vers)), &listed))
	require.Len(t, listed.Versions, 2)
	api("delete-object", "--bucket", vers, "--key", "report.csv", "--version-id", v1)
	_, err = c.try("/usr/bin/aws", "--endpoint-url", e.srv.URL, "s3api", "head-object", "--bucket", vers, "--key", "report.csv", "--version-id", v1)
	require.Error(t, err, "the deleted version is gone")

	held := putVersion(locked, "evidence.txt", "keep", "--object-lock-legal-hold-status", "ON")
	require.Contains(t, api("get-object-legal-hold", "--bucket", locked, "--key", "evidence.txt", "--version-id", held), `"ON"`)
	out, err := c.try("/usr/bin/aws", "--endpoint-url", e.srv.URL, "s3api", "delete-object", "--bucket", locked, "--key", "evidence.txt", "--version-id", held)
	require.Error(t, err)
	require.Contains(t, out, "AccessDenied")
	api("head-object", "--bucket", locked, "--key", "evidence.txt", "--version-id", held)
	require.Equal(t, audit.CodeS3Access, e.lastCode(t, "PutObject"))

	noRetention := e.cli(t, e.creds("bob", roleARNs.admin, sessionDeny("s3:PutObjectRetention")))
	until := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	out, err = noRetention.try("/usr/bin/aws", "--endpoint-url", e.srv.URL, "s3api", "put-object-retention", "--bucket", locked,
		"--key", "evidence.txt", "--version-id", held, "--retention", "Mode=GOVERNANCE,RetainUntilDate="+until)
	require.Error(t, err)
	require.Contains(t, out, "AccessDenied")
	require.Equal(t, audit.CodeS3Denied, e.lastCode(t, "PutObjectRetention"))
	_, err = noRetention.try("/usr/bin/aws", "--endpoint-url", e.srv.URL, "s3api", "get-object-retention", "--bucket", locked,
		"--key", "evidence.txt", "--version-id", held)
	require.Error(t, err, "no retention was set")
	api("put-object-legal-hold", "--bucket", locked, "--key", "evidence.txt", "--version-id", held, "--legal-hold", "Status=OFF")
	api("delete-object", "--bucket", locked, "--key", "evidence.txt", "--version-id", held)
}

const boto3VersioningScript = `
import sys, datetime, boto3
from botocore.config import Config
from botocore.exceptions import ClientError
ep, vers, locked = sys.argv[1], sys.argv[2], sys.argv[3]
s3 = boto3.client("s3", endpoint_url=ep, region_name="us-east-1",
                  config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
def code(f):
    try:
        f()
    except ClientError as e:
        return e.response["Error"]["Code"]
    return "OK"
s3.put_bucket_versioning(Bucket=vers, VersioningConfiguration={"Status": "Enabled"})
assert s3.get_bucket_versioning(Bucket=vers)["Status"] == "Enabled"
v1 = s3.put_object(Bucket=vers, Key="k", Body=b"one")["VersionId"]
v2 = s3.put_object(Bucket=vers, Key="k", Body=b"two")["VersionId"]
assert v1 and v1 != v2
assert s3.get_object(Bucket=vers, Key="k", VersionId=v1)["Body"].read() == b"one"
vs = s3.list_object_versions(Bucket=vers)["Versions"]
assert sorted(v["VersionId"] for v in vs) == sorted([v1, v2]), vs
s3.delete_object(Bucket=vers, Key="k", VersionId=v1)
assert code(lambda: s3.head_object(Bucket=vers, Key="k", VersionId=v1)) in ("404", "NoSuchVersion", "NoSuchKey")
held = s3.put_object(Bucket=locked, Key="e", Body=b"keep", ObjectLockLegalHoldStatus="ON")["VersionId"]
assert s3.get_object_legal_hold(Bucket=locked, Key="e", VersionId=held)["LegalHold"]["Status"] == "ON"
assert code(lambda: s3.delete_object(Bucket=locked, Key="e", VersionId=held)) == "AccessDenied"
until = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(hours=1)
s3.put_object_retention(Bucket=locked, Key="e", VersionId=held, Retention={"Mode": "GOVERNANCE", "RetainUntilDate": until})
assert s3.get_object_retention(Bucket=locked, Key="e", VersionId=held)["Retention"]["Mode"] == "GOVERNANCE"
s3.put_object_legal_hold(Bucket=locked, Key="e", VersionId=held, LegalHold={"Status": "OFF"})
assert code(lambda: s3.delete_object(Bucket=locked, Key="e", VersionId=held)) == "AccessDenied", "retention holds"
s3.delete_object(Bucket=locked, Key="e", VersionId=held, BypassGovernanceRetention=True)
print("OK")
`

// TestBoto3VersioningAndLock is TestAWSCLIVersioningAndLock with boto3
// (issue 13: versioning and object lock with real clients): versions
// written, read, listed and deleted by id; a legal hold and then a
// GOVERNANCE retention each block deleting the version, until the hold is
// lifted and the retention bypassed (s3:BypassGovernanceRetention); each
// step audited.
func TestBoto3VersioningAndLock(t *testing.T) {
	needBinary(t, "/usr/bin/python3")
	be := versitygwBackend(t)
	vers := scratchBucket(t, be, "b3vers", false)
	locked := scratchBucket(t, be, "b3lock", true)
	e := newEnv(t, envOptions{backend: be})
	c := e.cli(t, e.creds("alice", roleARNs.admin, ""))
	c.env = append(c.env, "PYTHONWARNINGS=ignore")
	if _, err := c.try("/usr/bin/python3", "-c", "import boto3"); err != nil {
		needBinary(t, "/nonexistent/python3-boto3")
	}
	script := filepath.Join(c.dir, "v.py")
	require.NoError(t, os.WriteFile(script, []byte(boto3VersioningScript), 0o600))
	require.Contains(t, c.run("/usr/bin/python3", script, e.srv.URL, vers, locked), "OK")
	for _, op := range []string{"PutBucketVersioning", "ListObjectVersions", "PutObjectLegalHold", "PutObjectRetention"} {
		require.Equal(t, audit.CodeS3Access, e.lastCode(t, op), op)
	}
	ev := e.audit.find("DeleteObject")
	require.Equal(t, audit.CodeS3Access, ev[len(ev)-1].Code, "the bypassing delete is recorded")
}
