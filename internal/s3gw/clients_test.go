package s3gw

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-dev/gatehouse/internal/sts/credentials"
)

// Real clients against the gateway on loopback. Debian packages: awscli,
// python3-boto3, s3cmd, rclone. Missing clients skip the test, except with
// CI=true, where they fail it.

func needBinary(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is required in CI: %v", path, err)
		}
		t.Skipf("%s not installed", path)
	}
}

type cli struct {
	t   *testing.T
	env []string
	dir string
}

func (e *env) cli(t *testing.T, c credentials.Credentials) *cli {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "aws-config")
	require.NoError(t, os.WriteFile(cfg, []byte("[default]\nregion = us-east-1\ns3 =\n  addressing_style = path\n"), 0o600))
	return &cli{t: t, dir: dir, env: []string{
		"HOME=" + dir, "PATH=/usr/bin:/bin", "LANG=C.UTF-8",
		"AWS_ACCESS_KEY_ID=" + c.AccessKeyID, "AWS_SECRET_ACCESS_KEY=" + c.SecretAccessKey, "AWS_SESSION_TOKEN=" + c.SessionToken,
		"AWS_CONFIG_FILE=" + cfg, "AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(dir, "none"), "AWS_DEFAULT_REGION=us-east-1",
		"AWS_EC2_METADATA_DISABLED=true",
	}}
}

func (c *cli) run(name string, args ...string) string {
	c.t.Helper()
	out, err := c.try(name, args...)
	require.NoError(c.t, err, "%s %s:\n%s", name, strings.Join(args, " "), out)
	return out
}

func (c *cli) try(name string, args ...string) (string, error) {
	cmd := exec.Command(name, args...)
	cmd.Env = c.env
	cmd.Dir = c.dir
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	err := cmd.Run()
	return buf.String(), err
}

func randomFile(t *testing.T, path string, size int) []byte {
	data := make([]byte, size)
	rand.Read(data)
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, os.WriteFile(path, data, 0o644))
	return data
}

func TestAWSCLI(t *testing.T) {
	needBinary(t, "/usr/bin/aws")
	e := newEnv(t)
	c := e.cli(t, e.creds("alice", roleARNs.admin, ""))
	aws := func(args ...string) string {
		return c.run("/usr/bin/aws", append([]string{"--endpoint-url", e.srv.URL}, args...)...)
	}

	small := randomFile(t, filepath.Join(c.dir, "small.bin"), 1000)
	big := randomFile(t, filepath.Join(c.dir, "big.bin"), 20<<20) // > multipart threshold (8 MiB)
	aws("s3", "cp", filepath.Join(c.dir, "small.bin"), "s3://data/cli/small.bin")
	aws("s3", "cp", filepath.Join(c.dir, "big.bin"), "s3://data/cli/big.bin")
	out := aws("s3", "ls", "s3://data/cli/")
	require.Contains(t, out, "small.bin")
	require.Contains(t, out, "big.bin")
	require.Contains(t, aws("s3", "ls"), "data")
	aws("s3", "cp", "s3://data/cli/big.bin", filepath.Join(c.dir, "big.copy"))
	got, err := os.ReadFile(filepath.Join(c.dir, "big.copy"))
	require.NoError(t, err)
	require.True(t, bytes.Equal(big, got))

	// sync up, change, sync again, and down.
	for i := range 3 {
		randomFile(t, filepath.Join(c.dir, "tree", fmt.Sprintf("d%d", i), "f.txt"), 100+i)
	}
	aws("s3", "sync", filepath.Join(c.dir, "tree"), "s3://data/tree/")
	randomFile(t, filepath.Join(c.dir, "tree", "new.txt"), 10)
	out = aws("s3", "sync", filepath.Join(c.dir, "tree"), "s3://data/tree/")
	require.Contains(t, out, "new.txt")
	require.NotContains(t, out, "d0/f.txt", "unchanged files are not uploaded again")
	aws("s3", "sync", "s3://data/tree/", filepath.Join(c.dir, "tree-down"))
	_, err = os.Stat(filepath.Join(c.dir, "tree-down", "d2", "f.txt"))
	require.NoError(t, err)
	out = aws("s3", "ls", "--recursive", "s3://data/tree/")
	require.Equal(t, 4, strings.Count(out, "\n"), out)

	// presign.
	url := strings.TrimSpace(aws("s3", "presign", "s3://data/cli/small.bin", "--expires-in", "300"))
	resp, err := http.Get(url)
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	require.Equal(t, small, body)

	// Multipart through s3api.
	var created struct{ UploadId string }
	require.NoError(t, json.Unmarshal([]byte(aws("s3api", "create-multipart-upload", "--bucket", "data", "--key", "cli/mp.bin")), &created))
	part1 := randomFile(t, filepath.Join(c.dir, "p1"), 5<<20)
	part2 := randomFile(t, filepath.Join(c.dir, "p2"), 1234)
	var p1, p2 struct{ ETag string }
	require.NoError(t, json.Unmarshal([]byte(aws("s3api", "upload-part", "--bucket", "data", "--key", "cli/mp.bin", "--part-number", "1",
		"--upload-id", created.UploadId, "--body", filepath.Join(c.dir, "p1"))), &p1))
	require.NoError(t, json.Unmarshal([]byte(aws("s3api", "upload-part", "--bucket", "data", "--key", "cli/mp.bin", "--part-number", "2",
		"--upload-id", created.UploadId, "--body", filepath.Join(c.dir, "p2"))), &p2))
	require.Contains(t, aws("s3api", "list-parts", "--bucket", "data", "--key", "cli/mp.bin", "--upload-id", created.UploadId), `"PartNumber": 2`)
	parts := fmt.Sprintf(`{"Parts":[{"PartNumber":1,"ETag":%q},{"PartNumber":2,"ETag":%q}]}`, p1.ETag, p2.ETag)
	require.NoError(t, os.WriteFile(filepath.Join(c.dir, "parts.json"), []byte(parts), 0o600))
	aws("s3api", "complete-multipart-upload", "--bucket", "data", "--key", "cli/mp.bin", "--upload-id", created.UploadId,
		"--multipart-upload", "file://"+filepath.Join(c.dir, "parts.json"))
	aws("s3api", "get-object", "--bucket", "data", "--key", "cli/mp.bin", filepath.Join(c.dir, "mp.out"))
	got, _ = os.ReadFile(filepath.Join(c.dir, "mp.out"))
	require.True(t, bytes.Equal(append(part1, part2...), got))
	aws("s3api", "head-object", "--bucket", "data", "--key", "cli/mp.bin")

	// rm, including --recursive (DeleteObjects).
	aws("s3", "rm", "s3://data/cli/small.bin")
	aws("s3", "rm", "--recursive", "s3://data/tree/")
	out = aws("s3", "ls", "--recursive", "s3://data/")
	require.NotContains(t, out, "small.bin")
	require.NotContains(t, out, "tree/")
	require.Contains(t, out, "cli/big.bin")

	// A denied command fails with AccessDenied.
	bob := e.cli(t, e.creds("bob", roleARNs.analyst, ""))
	out, err = bob.try("/usr/bin/aws", "--endpoint-url", e.srv.URL, "s3", "cp", "s3://data/cli/big.bin", filepath.Join(bob.dir, "x"))
	require.Error(t, err)
	require.Contains(t, out, "403")
}

const boto3Script = `
import os, sys, io, boto3, botocore
from botocore.config import Config
ep = sys.argv[1]
s3 = boto3.client("s3", endpoint_url=ep, region_name="us-east-1", verify=False,
                  config=Config(s3={"addressing_style": "path"}, signature_version="s3v4"))
data = os.urandom(3 * 1024 * 1024)
s3.put_object(Bucket="data", Key="boto/one.bin", Body=data, Metadata={"who": "boto"}, ContentType="application/x-boto")
o = s3.get_object(Bucket="data", Key="boto/one.bin")
assert o["Body"].read() == data
assert o["Metadata"] == {"who": "boto"}, o["Metadata"]
assert o["ContentType"] == "application/x-boto"
r = s3.get_object(Bucket="data", Key="boto/one.bin", Range="bytes=100-199")
assert r["Body"].read() == data[100:200]
# upload_fileobj: managed multipart above the threshold
from boto3.s3.transfer import TransferConfig
big = os.urandom(12 * 1024 * 1024)
s3.upload_fileobj(io.BytesIO(big), "data", "boto/big.bin", Config=TransferConfig(multipart_threshold=5*1024*1024, multipart_chunksize=5*1024*1024))
buf = io.BytesIO()
s3.download_fileobj("data", "boto/big.bin", buf)
assert buf.getvalue() == big
keys = [c["Key"] for p in s3.get_paginator("list_objects_v2").paginate(Bucket="data", Prefix="boto/", PaginationConfig={"PageSize": 1}) for c in p.get("Contents", [])]
assert keys == ["boto/big.bin", "boto/one.bin"], keys
s3.copy_object(Bucket="data", Key="boto/copy.bin", CopySource={"Bucket": "data", "Key": "boto/one.bin"})
s3.delete_objects(Bucket="data", Delete={"Objects": [{"Key": "boto/one.bin"}, {"Key": "boto/copy.bin"}]})
try:
    s3.head_object(Bucket="data", Key="boto/one.bin")
    raise SystemExit("head after delete succeeded")
except botocore.exceptions.ClientError as e:
    assert e.response["Error"]["Code"] == "404", e.response
try:
    s3.get_object(Bucket="data", Key="missing")
except s3.exceptions.NoSuchKey:
    pass
url = s3.generate_presigned_url("get_object", Params={"Bucket": "data", "Key": "boto/big.bin"}, ExpiresIn=60)
print("PRESIGNED", url)
print("OK")
`

func TestBoto3(t *testing.T) {
	needBinary(t, "/usr/bin/python3")
	for _, tlsOn := range []bool{false, true} {
		t.Run(fmt.Sprintf("tls=%v", tlsOn), func(t *testing.T) {
			e := newEnv(t, envOptions{tls: tlsOn})
			c := e.cli(t, e.creds("alice", roleARNs.admin, ""))
			c.env = append(c.env, "PYTHONWARNINGS=ignore")
			if _, err := c.try("/usr/bin/python3", "-c", "import boto3"); err != nil {
				needBinary(t, "/nonexistent/python3-boto3")
			}
			script := filepath.Join(c.dir, "t.py")
			require.NoError(t, os.WriteFile(script, []byte(boto3Script), 0o600))
			out := c.run("/usr/bin/python3", script, e.srv.URL)
			require.Contains(t, out, "OK")
		})
	}
}

func TestS3cmd(t *testing.T) {
	needBinary(t, "/usr/bin/s3cmd")
	e := newEnv(t)
	cr := e.creds("alice", roleARNs.admin, "")
	c := e.cli(t, cr)
	host := strings.TrimPrefix(e.srv.URL, "http://")
	cfg := filepath.Join(c.dir, "s3cfg")
	require.NoError(t, os.WriteFile(cfg, []byte(fmt.Sprintf(`[default]
access_key = %s
secret_key = %s
access_token = %s
host_base = %s
host_bucket = %s
use_https = False
signature_v2 = False
bucket_location = us-east-1
check_ssl_certificate = False
`, cr.AccessKeyID, cr.SecretAccessKey, cr.SessionToken, host, host)), 0o600))
	s3cmd := func(args ...string) string { return c.run("/usr/bin/s3cmd", append([]string{"-c", cfg}, args...)...) }
	data := randomFile(t, filepath.Join(c.dir, "f.bin"), 12<<20)
	s3cmd("put", "--multipart-chunk-size-mb=5", filepath.Join(c.dir, "f.bin"), "s3://data/s3cmd/f.bin")
	randomFile(t, filepath.Join(c.dir, "small.txt"), 100)
	s3cmd("put", filepath.Join(c.dir, "small.txt"), "s3://data/s3cmd/small.txt")
	out := s3cmd("ls", "s3://data/s3cmd/")
	require.Contains(t, out, "s3://data/s3cmd/f.bin")
	require.Contains(t, out, "s3://data/s3cmd/small.txt")
	s3cmd("get", "s3://data/s3cmd/f.bin", filepath.Join(c.dir, "f.out"))
	got, _ := os.ReadFile(filepath.Join(c.dir, "f.out"))
	require.True(t, bytes.Equal(data, got))
	s3cmd("info", "s3://data/s3cmd/small.txt")
	s3cmd("del", "s3://data/s3cmd/f.bin")
	require.NotContains(t, s3cmd("ls", "s3://data/s3cmd/"), "f.bin")
}

func TestRclone(t *testing.T) {
	needBinary(t, "/usr/bin/rclone")
	e := newEnv(t)
	cr := e.creds("alice", roleARNs.admin, "")
	c := e.cli(t, cr)
	c.env = append(c.env,
		"RCLONE_CONFIG="+filepath.Join(c.dir, "rclone.conf"),
		"RCLONE_CONFIG_GH_TYPE=s3", "RCLONE_CONFIG_GH_PROVIDER=Other",
		"RCLONE_CONFIG_GH_ACCESS_KEY_ID="+cr.AccessKeyID, "RCLONE_CONFIG_GH_SECRET_ACCESS_KEY="+cr.SecretAccessKey,
		"RCLONE_CONFIG_GH_SESSION_TOKEN="+cr.SessionToken, "RCLONE_CONFIG_GH_ENDPOINT="+e.srv.URL,
		"RCLONE_CONFIG_GH_REGION=us-east-1", "RCLONE_CONFIG_GH_FORCE_PATH_STYLE=true", "RCLONE_S3_NO_CHECK_BUCKET=true",
	)
	for i := range 3 {
		randomFile(t, filepath.Join(c.dir, "src", fmt.Sprintf("dir%d", i), "file.bin"), 1000*(i+1))
	}
	big := randomFile(t, filepath.Join(c.dir, "src", "big.bin"), 11<<20)
	c.run("/usr/bin/rclone", "copy", "--s3-upload-cutoff", "5M", "--s3-chunk-size", "5M", filepath.Join(c.dir, "src"), "gh:data/rclone")
	out := c.run("/usr/bin/rclone", "ls", "gh:data/rclone")
	require.Contains(t, out, "dir2/file.bin")
	require.Contains(t, out, "big.bin")
	c.run("/usr/bin/rclone", "check", filepath.Join(c.dir, "src"), "gh:data/rclone")
	c.run("/usr/bin/rclone", "copyto", "gh:data/rclone/big.bin", filepath.Join(c.dir, "big.out"))
	got, _ := os.ReadFile(filepath.Join(c.dir, "big.out"))
	require.True(t, bytes.Equal(big, got))
	c.run("/usr/bin/rclone", "delete", "gh:data/rclone/dir0")
	require.NotContains(t, c.run("/usr/bin/rclone", "ls", "gh:data/rclone"), "dir0/")
}
