package s3gw

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
)

// TestVersionIDRefusedBeforeEffect proves issue 11 finding 10 (versionId):
// the gateway used to ignore ?versionId, so "delete version X" deleted the
// current object and "get version X" returned the current one. The attack:
// a client asks to delete an old version it is allowed to remove and
// destroys the live object instead. Every object request naming a version
// (and DeleteObjects naming one for any key) is now refused with
// NotImplemented before it takes effect, and audited as refused; "null",
// the version id of objects in unversioned buckets, still means the
// current object.
func TestVersionIDRefusedBeforeEffect(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	c := e.client(e.creds("root", roleARNs.admin, ""))
	require.NoError(t, put(t, c, "data", "k", "current"))
	v := aws.String("3HL4kqtJlcpXroDTDmjVBH40Nrjfkd")

	cases := []struct {
		name string
		op   string
		call func() error
	}{
		{"GetObject", "GetObject", func() error {
			_, err := c.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String("data"), Key: aws.String("k"), VersionId: v})
			return err
		}},
		{"HeadObject", "HeadObject", func() error {
			_, err := c.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: aws.String("data"), Key: aws.String("k"), VersionId: v})
			return err
		}},
		{"DeleteObject", "DeleteObject", func() error {
			_, err := c.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: aws.String("data"), Key: aws.String("k"), VersionId: v})
			return err
		}},
		{"DeleteObjects", "DeleteObjects", func() error {
			_, err := c.DeleteObjects(ctx, &awss3.DeleteObjectsInput{Bucket: aws.String("data"), Delete: &types.Delete{
				Objects: []types.ObjectIdentifier{{Key: aws.String("other")}, {Key: aws.String("k"), VersionId: v}}}})
			return err
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			require.Error(t, err)
			if tc.op != "HeadObject" { // HEAD answers carry no body, hence no code
				require.Equal(t, "NotImplemented", apiCode(err))
			}
			require.True(t, e.objectExists(t, "data", "k"), "the current object must survive")
			evs := e.audit.find(tc.op)
			require.NotEmpty(t, evs)
			require.Equal(t, audit.CodeS3Denied, evs[len(evs)-1].Code)
		})
	}

	got, err := c.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String("data"), Key: aws.String("k"), VersionId: aws.String("null")})
	require.NoError(t, err, `versionId "null" is the current object`)
	got.Body.Close()
	_, err = c.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: aws.String("data"), Key: aws.String("k"), VersionId: aws.String("null")})
	require.NoError(t, err)
	require.False(t, e.objectExists(t, "data", "k"))
}
