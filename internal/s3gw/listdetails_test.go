package s3gw

import (
	"context"
	"encoding/base64"
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-dev/gatehouse/internal/s3gw/backend"
)

const boto3ListingScript = `
import sys, boto3
from botocore.config import Config
s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1",
                  config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
account = sys.argv[2]
s3.put_object(Bucket="data", Key="a b/c+d", Body=b"x")
# ListObjects v1: botocore asks for encoding-type=url and decodes Key, not Prefix.
r = s3.list_objects(Bucket="data", Prefix="a b/")
assert r["Prefix"] == "a b/", r["Prefix"]
assert [c["Key"] for c in r["Contents"]] == ["a b/c+d"], r["Contents"]
assert r["Contents"][0]["Owner"]["ID"] == account, r["Contents"][0]
# ListObjectsV2: the owner only with fetch-owner.
r = s3.list_objects_v2(Bucket="data", Prefix="a b/")
assert "Owner" not in r["Contents"][0], r["Contents"][0]
r = s3.list_objects_v2(Bucket="data", Prefix="a b/", FetchOwner=True)
assert r["Contents"][0]["Owner"]["ID"] == account, r["Contents"][0]
print("OK")
`

// TestListingDetails proves issue 13's listing details with boto3:
// ListObjects (v1) answers Prefix as given although botocore asks for
// encoding-type=url (S3 encodes only keys, markers and the delimiter
// there), ListObjects names owners and ListObjectsV2 does with fetch-owner,
// and ListBuckets honours max-buckets, continuation-token and prefix. Before
// the change the Prefix came back encoded, fetch-owner and the three
// ListBuckets parameters were ignored.
func TestListingDetails(t *testing.T) {
	needBinary(t, "/usr/bin/python3")
	e := newEnv(t)
	for _, b := range []string{"lb-1", "lb-2", "lb-3"} {
		require.NoError(t, backend.EnsureBucket(context.Background(), e.backend, b))
	}
	c := e.cli(t, e.creds("alice", roleARNs.admin, ""))
	c.env = append(c.env, "PYTHONWARNINGS=ignore")
	script := filepath.Join(c.dir, "l.py")
	require.NoError(t, os.WriteFile(script, []byte(boto3ListingScript), 0o600))
	require.Contains(t, c.run("/usr/bin/python3", script, e.srv.URL, testAccount), "OK")

	// ListBuckets with aws-sdk-go-v2 (boto3 1.43 does not send max-buckets).
	ctx := context.Background()
	sdk := e.client(e.creds("alice", roleARNs.admin, ""))
	var names []string
	pages := awss3.NewListBucketsPaginator(sdk, &awss3.ListBucketsInput{MaxBuckets: aws.Int32(2)})
	for pages.HasMorePages() {
		out, err := pages.NextPage(ctx)
		require.NoError(t, err)
		require.LessOrEqual(t, len(out.Buckets), 2)
		for _, b := range out.Buckets {
			names = append(names, aws.ToString(b.Name))
		}
	}
	require.Equal(t, []string{"data", "lb-1", "lb-2", "lb-3", "other"}, names)
	out, err := sdk.ListBuckets(ctx, &awss3.ListBucketsInput{Prefix: aws.String("lb-")})
	require.NoError(t, err)
	require.Len(t, out.Buckets, 3)
	require.Equal(t, "lb-", aws.ToString(out.Prefix))
	out, err = sdk.ListBuckets(ctx, &awss3.ListBucketsInput{Prefix: aws.String("lb-"), MaxBuckets: aws.Int32(1),
		ContinuationToken: aws.String(base64.RawURLEncoding.EncodeToString([]byte("lb-2")))})
	require.NoError(t, err)
	require.Equal(t, "lb-3", aws.ToString(out.Buckets[0].Name))
	require.Nil(t, out.ContinuationToken, "the last page")
	// An analyst (no s3:ListAllMyBuckets) pages through what it may list.
	bob := e.client(e.creds("bob", roleARNs.analyst, ""))
	out, err = bob.ListBuckets(ctx, &awss3.ListBucketsInput{MaxBuckets: aws.Int32(1)})
	require.NoError(t, err)
	require.Len(t, out.Buckets, 1)
	_, err = sdk.ListBuckets(ctx, &awss3.ListBucketsInput{MaxBuckets: aws.Int32(0)})
	require.Error(t, err, "max-buckets 0 is invalid")
}
