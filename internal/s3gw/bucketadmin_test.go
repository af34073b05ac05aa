package s3gw

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/s3gw/backend"
)

// bucketBackends are the backends CreateBucket and DeleteBucket are proven
// on: local, and the s3 backend on versitygw.
func bucketBackends(t *testing.T) map[string]func(t *testing.T) *env {
	return map[string]func(t *testing.T) *env{
		"local": func(t *testing.T) *env { return newEnv(t) },
		"s3": func(t *testing.T) *env {
			return newEnv(t, envOptions{backend: versitygwBackend(t)})
		},
	}
}

func uniqueBucket(prefix string) string {
	var b [4]byte
	rand.Read(b[:])
	return prefix + "-" + hex.EncodeToString(b[:])
}

// TestCreateBucketWithObjectLock proves issue 13, "never accept and drop",
// for CreateBucket: x-amz-bucket-object-lock-enabled: true makes a bucket
// with object lock on a backend that serves it (s3 on versitygw), and is
// refused NotImplemented before any effect on one that does not (local).
func TestCreateBucketWithObjectLock(t *testing.T) {
	for name, mk := range bucketBackends(t) {
		t.Run(name, func(t *testing.T) {
			e := mk(t)
			be := e.gw.o.Backend
			admin := e.creds("alice", roleARNs.admin, "")
			b := uniqueBucket("gh-lock")
			t.Cleanup(func() {
				if a, ok := be.(backend.BucketAdmin); ok {
					a.DeleteBucket(context.Background(), b)
				}
			})
			resp := e.signed(t, admin, "PUT", "/"+b, http.Header{"X-Amz-Bucket-Object-Lock-Enabled": {"true"}}, nil)
			l, locks := be.(backend.ObjectLocker)
			if !locks {
				require.Equal(t, http.StatusNotImplemented, resp.StatusCode)
				require.Equal(t, "NotImplemented", errorCode(t, resp))
				require.Error(t, be.HeadBucket(context.Background(), b), "nothing was created")
				return
			}
			require.Equal(t, http.StatusOK, resp.StatusCode, errorCode(t, resp))
			cfg, err := l.GetObjectLockConfiguration(context.Background(), b)
			require.NoError(t, err)
			require.True(t, cfg.Enabled, "the bucket was created with object lock")
			evs := e.audit.find("CreateBucket")
			require.Len(t, evs, 1)
			require.Equal(t, audit.CodeS3Access, evs[0].Code)
		})
	}
}

// TestCreateDeleteBucket proves issue 13, "serve CreateBucket and
// DeleteBucket": each is authorized as its own IAM action on the bucket
// ARN through the Authorizer, recorded before it takes effect, refuses what
// it does not serve (object lock, public ACLs, a foreign region) before any
// effect, and answers S3's errors in S3's XML, on both backends. Before the
// change both answered 501.
func TestCreateDeleteBucket(t *testing.T) {
	for name, mk := range bucketBackends(t) {
		t.Run(name, func(t *testing.T) {
			e := mk(t)
			be := e.gw.o.Backend
			admin := e.creds("alice", roleARNs.admin, "")
			analyst := e.creds("bob", roleARNs.analyst, "")
			b := uniqueBucket("gh-new")
			exists := func() bool { return be.HeadBucket(context.Background(), b) == nil }
			t.Cleanup(func() {
				if a, ok := be.(backend.BucketAdmin); ok {
					a.DeleteBucket(context.Background(), b)
				}
			})

			// Denied without s3:CreateBucket, and recorded as a denial.
			resp := e.signed(t, analyst, "PUT", "/"+b, nil, nil)
			require.Equal(t, http.StatusForbidden, resp.StatusCode)
			require.Equal(t, "AccessDenied", errorCode(t, resp))
			require.False(t, exists())
			evs := e.audit.find("CreateBucket")
			require.Len(t, evs, 1)
			require.Equal(t, audit.CodeS3Denied, evs[0].Code)

			// Refused before any effect: what the gateway does not serve.
			for _, tc := range []struct {
				hdr    http.Header
				body   string
				status int
				code   string
			}{
				{http.Header{"X-Amz-Acl": {"public-read"}}, "", 501, "NotImplemented"},
				{http.Header{"X-Amz-Grant-Read": {`id="x"`}}, "", 501, "NotImplemented"},
				{nil, `<CreateBucketConfiguration><LocationConstraint>eu-west-1</LocationConstraint></CreateBucketConfiguration>`, 400, "IllegalLocationConstraintException"},
				{nil, `<CreateBucketConfiguration><LocationConstraint>`, 400, "MalformedXML"},
			} {
				resp := e.signed(t, admin, "PUT", "/"+b, tc.hdr, []byte(tc.body))
				require.Equal(t, tc.status, resp.StatusCode, "%v %s", tc.hdr, tc.body)
				require.Equal(t, tc.code, errorCode(t, resp))
				require.False(t, exists())
			}
			resp = e.signed(t, admin, "PUT", "/Bad_Bucket", nil, nil)
			require.Equal(t, http.StatusBadRequest, resp.StatusCode)
			require.Equal(t, "InvalidBucketName", errorCode(t, resp))

			// Allowed: recorded before the bucket exists.
			var existedAtRecord []bool
			e.audit.setHook(func(ev audit.Event) {
				if ev.Action == "s3.CreateBucket" && ev.Code == audit.CodeS3Access {
					existedAtRecord = append(existedAtRecord, exists())
				}
			})
			resp = e.signed(t, admin, "PUT", "/"+b, http.Header{"X-Amz-Acl": {"private"}},
				[]byte(`<CreateBucketConfiguration><LocationConstraint>us-east-1</LocationConstraint></CreateBucketConfiguration>`))
			require.Equal(t, http.StatusOK, resp.StatusCode, errorCode(t, resp))
			require.Equal(t, "/"+b, resp.Header.Get("Location"))
			require.Equal(t, []bool{false}, existedAtRecord)
			require.True(t, exists())
			resp = e.signed(t, admin, "GET", "/", nil, nil)
			body := readAll(t, resp)
			require.Contains(t, body, "<Name>"+b+"</Name>", "ListBuckets shows the new bucket")

			resp = e.signed(t, admin, "PUT", "/"+b, nil, nil)
			require.Equal(t, http.StatusConflict, resp.StatusCode)
			require.Equal(t, "BucketAlreadyOwnedByYou", errorCode(t, resp))

			// DeleteBucket: its own action, only when empty.
			require.Equal(t, http.StatusOK, e.signed(t, admin, "PUT", "/"+b+"/k", nil, []byte("x")).StatusCode)
			resp = e.signed(t, analyst, "DELETE", "/"+b, nil, nil)
			require.Equal(t, http.StatusForbidden, resp.StatusCode)
			resp = e.signed(t, admin, "DELETE", "/"+b, nil, nil)
			require.Equal(t, http.StatusConflict, resp.StatusCode)
			require.Equal(t, "BucketNotEmpty", errorCode(t, resp))
			require.Equal(t, http.StatusNoContent, e.signed(t, admin, "DELETE", "/"+b+"/k", nil, nil).StatusCode)
			var goneAtRecord []bool
			e.audit.setHook(func(ev audit.Event) {
				if ev.Action == "s3.DeleteBucket" && ev.Code == audit.CodeS3Access {
					goneAtRecord = append(goneAtRecord, !exists())
				}
			})
			resp = e.signed(t, admin, "DELETE", "/"+b, nil, nil)
			require.Equal(t, http.StatusNoContent, resp.StatusCode, errorCode(t, resp))
			require.Equal(t, []bool{false}, goneAtRecord)
			require.False(t, exists())
			resp = e.signed(t, admin, "DELETE", "/"+b, nil, nil)
			require.Equal(t, http.StatusNotFound, resp.StatusCode)
			require.Equal(t, "NoSuchBucket", errorCode(t, resp))

			// Fail closed: an unrecorded create does not happen.
			e.audit.setHook(nil)
			e.audit.setFail(true)
			resp = e.signed(t, admin, "PUT", "/"+b, nil, nil)
			require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
			require.False(t, exists())
		})
	}
}

func readAll(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(b)
}

const boto3BucketScript = `
import sys, boto3, botocore
from botocore.config import Config
s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1",
                  config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
b = sys.argv[2]
s3.create_bucket(Bucket=b)
assert b in [x["Name"] for x in s3.list_buckets()["Buckets"]]
def code(call):
    try:
        call()
    except botocore.exceptions.ClientError as e:
        return e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"]
    raise SystemExit("no error")
assert code(lambda: s3.create_bucket(Bucket=b)) == ("BucketAlreadyOwnedByYou", 409)
assert code(lambda: s3.create_bucket(Bucket=b + "-lock", ObjectLockEnabledForBucket=True)) == ("NotImplemented", 501)
s3.put_object(Bucket=b, Key="k", Body=b"x")
assert code(lambda: s3.delete_bucket(Bucket=b)) == ("BucketNotEmpty", 409)
s3.delete_object(Bucket=b, Key="k")
s3.delete_bucket(Bucket=b)
assert code(lambda: s3.head_bucket(Bucket=b))[1] == 404
print("OK")
`

// TestBucketsWithRealClients: aws cli (mb, rb) and boto3 create and delete
// buckets through the gateway (issue 13, CreateBucket and DeleteBucket with
// real clients).
func TestBucketsWithRealClients(t *testing.T) {
	e := newEnv(t)
	c := e.cli(t, e.creds("alice", roleARNs.admin, ""))
	t.Run("aws", func(t *testing.T) {
		needBinary(t, "/usr/bin/aws")
		b := uniqueBucket("cli")
		aws := func(args ...string) (string, error) {
			return c.try("/usr/bin/aws", append([]string{"--endpoint-url", e.srv.URL}, args...)...)
		}
		out, err := aws("s3", "mb", "s3://"+b)
		require.NoError(t, err, out)
		out, err = aws("s3", "ls")
		require.NoError(t, err, out)
		require.Contains(t, out, b)
		out, err = aws("s3api", "create-bucket", "--bucket", b+"-lock", "--object-lock-enabled-for-bucket")
		require.Error(t, err, out)
		require.Contains(t, out, "NotImplemented")
		out, err = aws("s3", "rb", "s3://"+b)
		require.NoError(t, err, out)
		require.Error(t, e.backend.HeadBucket(context.Background(), b))
		require.Error(t, e.backend.HeadBucket(context.Background(), b+"-lock"))
	})
	t.Run("boto3", func(t *testing.T) {
		needBinary(t, "/usr/bin/python3")
		c.env = append(c.env, "PYTHONWARNINGS=ignore")
		script := filepath.Join(c.dir, "b.py")
		require.NoError(t, os.WriteFile(script, []byte(boto3BucketScript), 0o600))
		b := uniqueBucket("boto")
		require.Contains(t, c.run("/usr/bin/python3", script, e.srv.URL, b), "OK")
		require.Error(t, e.backend.HeadBucket(context.Background(), b+"-lock"))
	})
	require.NotEmpty(t, e.audit.find("CreateBucket"))
	require.NotEmpty(t, e.audit.find("DeleteBucket"))
}
