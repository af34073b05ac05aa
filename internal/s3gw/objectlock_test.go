package s3gw

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
)

// TestLockHeadersRefusedWithoutLockBackend proves issue 13, "never accept
// and drop" for object lock: on a backend without object lock (the local
// one) an upload asking for a legal hold or a retention used to get 200 with
// nothing applied. Every request carrying x-amz-object-lock-* is now
// refused with NotImplemented before any effect (no object is written), and
// audited as refused. x-amz-bypass-governance-retention, which only lifts a
// protection, is authorized as s3:BypassGovernanceRetention (it used to be
// ignored, so a session denied that action could still send it).
func TestLockHeadersRefusedWithoutLockBackend(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	c := e.client(e.creds("root", roleARNs.admin, ""))
	require.NoError(t, put(t, c, "data", "src", "source"))
	until := aws.Time(time.Now().Add(24 * time.Hour))
	cases := []struct {
		name, op, key string
		call          func() error
	}{
		{"PutObject legal hold", "PutObject", "held", func() error {
			_, err := c.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String("data"), Key: aws.String("held"),
				Body: strings.NewReader("x"), ObjectLockLegalHoldStatus: types.ObjectLockLegalHoldStatusOn})
			return err
		}},
		{"PutObject retention", "PutObject", "retained", func() error {
			_, err := c.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String("data"), Key: aws.String("retained"),
				Body: strings.NewReader("x"), ObjectLockMode: types.ObjectLockModeCompliance, ObjectLockRetainUntilDate: until})
			return err
		}},
		{"CreateMultipartUpload legal hold", "CreateMultipartUpload", "mpu", func() error {
			_, err := c.CreateMultipartUpload(ctx, &awss3.CreateMultipartUploadInput{Bucket: aws.String("data"), Key: aws.String("mpu"),
				ObjectLockLegalHoldStatus: types.ObjectLockLegalHoldStatusOn})
			return err
		}},
		{"CopyObject retention", "CopyObject", "copy", func() error {
			_, err := c.CopyObject(ctx, &awss3.CopyObjectInput{Bucket: aws.String("data"), Key: aws.String("copy"),
				CopySource: aws.String("data/src"), ObjectLockMode: types.ObjectLockModeGovernance, ObjectLockRetainUntilDate: until})
			return err
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			require.Equal(t, "NotImplemented", apiCode(err))
			require.False(t, e.objectExists(t, "data", tc.key), "nothing may be written")
			evs := e.audit.find(tc.op)
			require.NotEmpty(t, evs)
			require.Equal(t, audit.CodeS3Denied, evs[len(evs)-1].Code)
		})
	}
	t.Run("DeleteObject bypass governance", func(t *testing.T) {
		// The bypass lifts a protection this backend never applies: the
		// delete does what was asked, authorized as s3:BypassGovernanceRetention.
		noBypass := e.client(e.creds("bob", roleARNs.admin, sessionDeny("s3:BypassGovernanceRetention")))
		_, err := noBypass.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: aws.String("data"), Key: aws.String("src"),
			BypassGovernanceRetention: aws.Bool(true)})
		require.Equal(t, "AccessDenied", apiCode(err))
		require.True(t, e.objectExists(t, "data", "src"), "nothing may be deleted")
		_, err = c.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: aws.String("data"), Key: aws.String("src"),
			BypassGovernanceRetention: aws.Bool(true)})
		require.NoError(t, err)
		require.False(t, e.objectExists(t, "data", "src"))
	})
	t.Run("subresources", func(t *testing.T) {
		_, err := c.PutObjectLegalHold(ctx, &awss3.PutObjectLegalHoldInput{Bucket: aws.String("data"), Key: aws.String("src"),
			LegalHold: &types.ObjectLockLegalHold{Status: types.ObjectLockLegalHoldStatusOn}})
		require.Equal(t, "NotImplemented", apiCode(err))
		_, err = c.PutBucketVersioning(ctx, &awss3.PutBucketVersioningInput{Bucket: aws.String("data"),
			VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusEnabled}})
		require.Equal(t, "NotImplemented", apiCode(err))
	})
}

// TestMalformedLockHeadersAreInvalidArgument: a malformed
// x-amz-object-lock-* header is the client's error on every backend
// (InvalidArgument, as S3 and versitygw answer), checked before the
// capability; nothing is written.
func TestMalformedLockHeadersAreInvalidArgument(t *testing.T) {
	e := newEnv(t)
	c := e.creds("root", roleARNs.admin, "")
	future := time.Now().Add(time.Hour).UTC().Format(time.RFC3339)
	for name, h := range map[string]map[string]string{
		"mode without date": {"X-Amz-Object-Lock-Mode": "GOVERNANCE"},
		"date without mode": {"X-Amz-Object-Lock-Retain-Until-Date": future},
		"unknown mode":      {"X-Amz-Object-Lock-Mode": "FOREVER", "X-Amz-Object-Lock-Retain-Until-Date": future},
		"past date":         {"X-Amz-Object-Lock-Mode": "GOVERNANCE", "X-Amz-Object-Lock-Retain-Until-Date": "2001-01-01T00:00:00Z"},
		"bad date":          {"X-Amz-Object-Lock-Mode": "GOVERNANCE", "X-Amz-Object-Lock-Retain-Until-Date": "tomorrow"},
		"bad legal hold":    {"X-Amz-Object-Lock-Legal-Hold": "MAYBE"},
	} {
		t.Run(name, func(t *testing.T) {
			hdr := http.Header{}
			for k, v := range h {
				hdr.Set(k, v)
			}
			resp := e.signed(t, c, http.MethodPut, "/data/bad-lock", hdr, []byte("x"))
			require.Equal(t, http.StatusBadRequest, resp.StatusCode)
			require.Equal(t, "InvalidArgument", errorCode(t, resp))
			require.False(t, e.objectExists(t, "data", "bad-lock"))
		})
	}
}
