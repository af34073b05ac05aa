package s3gw

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/s3gw/backend"
)

// unhonouredHeaders are request headers that ask for functionality the
// gateway does not provide, each with a value that asks for it. (Object
// lock headers, served where the backend has object lock, are proven
// refused elsewhere by TestLockHeadersRefusedWithoutLockBackend.)
var unhonouredHeaders = []struct{ name, value string }{
	{"X-Amz-Storage-Class", "GLACIER"},
	{"X-Amz-Website-Redirect-Location", "/elsewhere"},
	{"X-Amz-Server-Side-Encryption", "AES256"},
	{"X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id", "key"},
	{"X-Amz-Server-Side-Encryption-Customer-Algorithm", "AES256"},
	{"X-Amz-Grant-Read", `id="someone"`},
	{"X-Amz-Acl", "public-read"},
	{"X-Amz-Request-Payer", "requester"},
	{"X-Amz-Checksum-Algorithm", "SHA512"},
	{"X-Amz-Checksum-Type", "FULL_OBJECT"},
}

// TestNeverAcceptAndDrop proves issue 13, "never accept and drop": a PUT, a
// copy or a multipart upload start that carries a header asking for
// functionality the gateway does not provide (legal hold, retention,
// a storage class, a website redirect, encryption, grants…; object tagging
// is served, see tagging_test.go) is
// refused 501 NotImplemented before any effect: no object, no upload, and
// the refusal is audited. Before the fix each of them got 200 and the
// header was silently dropped.
func TestNeverAcceptAndDrop(t *testing.T) {
	e := newEnv(t)
	c := e.creds("alice", roleARNs.admin, "")
	require.Equal(t, http.StatusOK, e.signed(t, c, "PUT", "/data/src", nil, []byte("source")).StatusCode)
	ops := []struct {
		op, method, path string
		hdr              http.Header
	}{
		{"PutObject", "PUT", "/data/put", nil},
		{"CopyObject", "PUT", "/data/copied", http.Header{"X-Amz-Copy-Source": {"/data/src"}}},
		{"CreateMultipartUpload", "POST", "/data/mpu?uploads", nil},
	}
	for _, op := range ops {
		for _, h := range unhonouredHeaders {
			t.Run(op.op+"/"+h.name, func(t *testing.T) {
				hdr := http.Header{h.name: {h.value}}
				for k, v := range op.hdr {
					hdr[k] = v
				}
				before := len(e.audit.find(op.op))
				resp := e.signed(t, c, op.method, op.path, hdr, []byte("body"))
				require.Equal(t, http.StatusNotImplemented, resp.StatusCode)
				require.Equal(t, "NotImplemented", errorCode(t, resp))
				evs := e.audit.find(op.op)
				require.Len(t, evs, before+1)
				require.Equal(t, audit.CodeS3Denied, evs[len(evs)-1].Code, "audited as refused")
				require.Contains(t, evs[len(evs)-1].Reason, strings.ToLower(h.name))
			})
		}
	}
	requireNothingWritten(t, e, "put", "copied", "mpu")
	// A sub-resource an operation does not act on is refused the same way.
	resp := e.signed(t, c, "GET", "/data/src?partNumber=1", nil, nil)
	require.Equal(t, http.StatusNotImplemented, resp.StatusCode)
	require.Equal(t, "NotImplemented", errorCode(t, resp))
	// x-amz-expected-bucket-owner is checked: another account is refused.
	resp = e.signed(t, c, "PUT", "/data/put", http.Header{"X-Amz-Expected-Bucket-Owner": {"111111111111"}}, []byte("body"))
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	require.Equal(t, "AccessDenied", errorCode(t, resp))
	requireNothingWritten(t, e, "put")
	resp = e.signed(t, c, "PUT", "/data/put", http.Header{"X-Amz-Expected-Bucket-Owner": {testAccount}}, []byte("body"))
	require.Equal(t, http.StatusOK, resp.StatusCode)
	// A value S3 does not define is the client's error, as in S3.
	resp = e.signed(t, c, "PUT", "/data/put2", http.Header{"X-Amz-Acl": {"no-such-acl"}}, []byte("body"))
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	require.Equal(t, "InvalidArgument", errorCode(t, resp))
	requireNothingWritten(t, e, "put2")
	// What the gateway does anyway is accepted: STANDARD, private.
	resp = e.signed(t, c, "PUT", "/data/put", http.Header{"X-Amz-Storage-Class": {"STANDARD"}, "X-Amz-Acl": {"private"}}, []byte("body"))
	require.Equal(t, http.StatusOK, resp.StatusCode)
}

// requireNothingWritten checks that none of the keys exists in "data" and
// that no multipart upload is in progress there.
func requireNothingWritten(t *testing.T, e *env, keys ...string) {
	t.Helper()
	for _, k := range keys {
		require.False(t, e.objectExists(t, "data", k), k)
	}
	ups, err := e.backend.ListMultipartUploads(context.Background(), "data", backend.ListUploadsOptions{MaxUploads: 1000})
	require.NoError(t, err)
	require.Empty(t, ups.Uploads)
}

const boto3NotImplementedScript = `
import sys, boto3, botocore
from botocore.config import Config
s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1",
                  config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
s3.put_object(Bucket="data", Key="boto-src", Body=b"source")
cases = {
    "legal hold": {"ObjectLockLegalHoldStatus": "ON"},
    "retention": {"ObjectLockMode": "GOVERNANCE", "ObjectLockRetainUntilDate": "2030-01-01T00:00:00Z"},
    "storage class": {"StorageClass": "GLACIER"},
    "website redirect": {"WebsiteRedirectLocation": "/elsewhere"},
    "sse": {"ServerSideEncryption": "AES256"},
    "sse-kms": {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": "key"},
    "grant": {"GrantRead": 'id="someone"'},
    "acl": {"ACL": "public-read"},
}
calls = {
    "put": lambda kw: s3.put_object(Bucket="data", Key="boto-put", Body=b"x", **kw),
    "copy": lambda kw: s3.copy_object(Bucket="data", Key="boto-copy", CopySource={"Bucket": "data", "Key": "boto-src"}, **kw),
    "mpu": lambda kw: s3.create_multipart_upload(Bucket="data", Key="boto-mpu", **kw),
}
for cn, call in calls.items():
    for name, kw in cases.items():
        try:
            call(kw)
        except botocore.exceptions.ClientError as e:
            err = e.response["Error"]
            status = e.response["ResponseMetadata"]["HTTPStatusCode"]
            assert err["Code"] == "NotImplemented" and status == 501, (cn, name, err, status)
            continue
        raise SystemExit("accepted: %s %s" % (cn, name))
for k in ("boto-put", "boto-copy"):
    try:
        s3.head_object(Bucket="data", Key=k)
        raise SystemExit("object exists: " + k)
    except botocore.exceptions.ClientError as e:
        assert e.response["Error"]["Code"] == "404", e.response
assert not s3.list_multipart_uploads(Bucket="data").get("Uploads"), "an upload was started"
print("OK")
`

// TestNeverAcceptAndDropBoto3 is TestNeverAcceptAndDrop with boto3's own
// parameters for each unsupported feature (issue 13, never accept and drop).
func TestNeverAcceptAndDropBoto3(t *testing.T) {
	needBinary(t, "/usr/bin/python3")
	e := newEnv(t)
	c := e.cli(t, e.creds("alice", roleARNs.admin, ""))
	c.env = append(c.env, "PYTHONWARNINGS=ignore")
	script := filepath.Join(c.dir, "t.py")
	require.NoError(t, os.WriteFile(script, []byte(boto3NotImplementedScript), 0o600))
	require.Contains(t, c.run("/usr/bin/python3", script, e.srv.URL), "OK")
	requireNothingWritten(t, e, "boto-put", "boto-copy", "boto-mpu")
}

// TestNeverAcceptAndDropAWSCLI is TestNeverAcceptAndDrop with the aws cli's
// own options (issue 13, never accept and drop).
func TestNeverAcceptAndDropAWSCLI(t *testing.T) {
	needBinary(t, "/usr/bin/aws")
	e := newEnv(t)
	c := e.cli(t, e.creds("alice", roleARNs.admin, ""))
	body := filepath.Join(c.dir, "body")
	require.NoError(t, os.WriteFile(body, []byte("x"), 0o600))
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"legal hold", []string{"--object-lock-legal-hold-status", "ON"}},
		{"retention", []string{"--object-lock-mode", "GOVERNANCE", "--object-lock-retain-until-date", "2030-01-01T00:00:00Z"}},
		{"storage class", []string{"--storage-class", "GLACIER"}},
		{"website redirect", []string{"--website-redirect-location", "/elsewhere"}},
		{"sse", []string{"--server-side-encryption", "AES256"}},
		{"grant", []string{"--grant-read", `id="someone"`}},
		{"acl", []string{"--acl", "public-read"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"--endpoint-url", e.srv.URL, "s3api", "put-object", "--bucket", "data", "--key", "cli-put", "--body", body}, tc.args...)
			out, err := c.try("/usr/bin/aws", args...)
			require.Error(t, err, out)
			require.Contains(t, out, "NotImplemented", out)
			require.False(t, e.objectExists(t, "data", "cli-put"))
		})
	}
	out, err := c.try("/usr/bin/aws", "--endpoint-url", e.srv.URL, "s3", "cp", body, "s3://data/cli-cp", "--storage-class", "GLACIER")
	require.Error(t, err, out)
	require.Contains(t, out, "NotImplemented", out)
	requireNothingWritten(t, e, "cli-put", "cli-cp")
}

// TestMultipartWithDefaultChecksumAlgorithm: current AWS SDKs start every
// multipart upload with x-amz-checksum-algorithm: CRC32 and send each part
// with its CRC32. The gateway verifies the parts, so it accepts the header
// (issue 13: refusing it would refuse every such upload), and a part whose
// checksum is wrong leaves nothing.
func TestMultipartWithDefaultChecksumAlgorithm(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c := e.client(e.creds("alice", roleARNs.admin, ""))
	up, err := c.CreateMultipartUpload(ctx, &awss3.CreateMultipartUploadInput{Bucket: aws.String("data"), Key: aws.String("crc"),
		ChecksumAlgorithm: types.ChecksumAlgorithmCrc32})
	require.NoError(t, err)
	part, err := c.UploadPart(ctx, &awss3.UploadPartInput{Bucket: aws.String("data"), Key: aws.String("crc"), UploadId: up.UploadId,
		PartNumber: aws.Int32(1), Body: strings.NewReader("part one"), ChecksumAlgorithm: types.ChecksumAlgorithmCrc32})
	require.NoError(t, err)
	_, err = c.UploadPart(ctx, &awss3.UploadPartInput{Bucket: aws.String("data"), Key: aws.String("crc"), UploadId: up.UploadId,
		PartNumber: aws.Int32(2), Body: strings.NewReader("part two"), ChecksumCRC32: aws.String("AAAAAA==")})
	require.Error(t, err, "a part whose CRC32 does not match is refused")
	_, err = c.CompleteMultipartUpload(ctx, &awss3.CompleteMultipartUploadInput{Bucket: aws.String("data"), Key: aws.String("crc"),
		UploadId: up.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{
			{PartNumber: aws.Int32(1), ETag: part.ETag, ChecksumCRC32: part.ChecksumCRC32}}}})
	require.NoError(t, err)
	got, err := getString(t, c, "data", "crc")
	require.NoError(t, err)
	require.Equal(t, "part one", got)
}
