package s3gw

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/s3gw/backend"
	"github.com/gatehouse-dev/gatehouse/internal/s3gw/backend/local"
)

// tagMap returns a tag set as a map.
func tagMap(ts []types.Tag) map[string]string {
	m := map[string]string{}
	for _, t := range ts {
		m[aws.ToString(t.Key)] = aws.ToString(t.Value)
	}
	return m
}

func getTags(t *testing.T, c *awss3.Client, key string) map[string]string {
	t.Helper()
	out, err := c.GetObjectTagging(context.Background(), &awss3.GetObjectTaggingInput{Bucket: aws.String("data"), Key: aws.String(key)})
	require.NoError(t, err)
	return tagMap(out.TagSet)
}

func tagSet(kv ...string) *types.Tagging {
	var ts []types.Tag
	for i := 0; i+1 < len(kv); i += 2 {
		ts = append(ts, types.Tag{Key: aws.String(kv[i]), Value: aws.String(kv[i+1])})
	}
	return &types.Tagging{TagSet: ts}
}

// auditedTagKeys returns the tagKeys request parameter of the last event
// of op.
func auditedTagKeys(t *testing.T, e *env, op string) []string {
	t.Helper()
	evs := e.audit.find(op)
	require.NotEmpty(t, evs, "no %s event", op)
	ct, _ := evs[len(evs)-1].Details["cloudTrail"].(map[string]any)
	rp, _ := ct["requestParameters"].(map[string]any)
	var keys []string
	if ks, ok := rp["tagKeys"].([]any); ok {
		for _, k := range ks {
			keys = append(keys, k.(string))
		}
	}
	return keys
}

// TestTaggingRoundTrip proves issue 13, "serve object tagging": tags given
// with PutObject, CreateMultipartUpload and CopyObject (COPY and REPLACE)
// are stored, read back through GetObjectTagging and counted in
// x-amz-tagging-count, replaced by PutObjectTagging and removed by
// DeleteObjectTagging; each call is audited with its tag keys (not values).
func TestTaggingRoundTrip(t *testing.T) { taggingRoundTrip(t, newEnv(t)) }

func taggingRoundTrip(t *testing.T, e *env) {
	ctx := context.Background()
	c := e.client(e.creds("alice", roleARNs.admin, ""))
	put := func(key, tagging string) {
		_, err := c.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String("data"), Key: aws.String(key),
			Body: strings.NewReader("body of " + key), Tagging: aws.String(tagging)})
		require.NoError(t, err)
	}
	put("t/a.txt", "classification=public&team=data%20eng")
	require.Equal(t, map[string]string{"classification": "public", "team": "data eng"}, getTags(t, c, "t/a.txt"))
	require.ElementsMatch(t, []string{"classification", "team"}, auditedTagKeys(t, e, "PutObject"))
	for _, ev := range e.audit.find("PutObject") {
		require.NotContains(t, fmt.Sprint(ev.Details), "data eng", "tag values stay out of the record")
	}

	got, err := c.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String("data"), Key: aws.String("t/a.txt")})
	require.NoError(t, err)
	got.Body.Close()
	require.EqualValues(t, 2, aws.ToInt32(got.TagCount))

	_, err = c.PutObjectTagging(ctx, &awss3.PutObjectTaggingInput{Bucket: aws.String("data"), Key: aws.String("t/a.txt"),
		Tagging: tagSet("classification", "internal")})
	require.NoError(t, err)
	require.Equal(t, map[string]string{"classification": "internal"}, getTags(t, c, "t/a.txt"))
	require.Equal(t, []string{"classification"}, auditedTagKeys(t, e, "PutObjectTagging"))
	require.NotEmpty(t, e.audit.find("GetObjectTagging"))

	// CopyObject: the default directive (COPY) keeps the source's tags,
	// REPLACE sets the request's, with the metadata directive on its own.
	_, err = c.CopyObject(ctx, &awss3.CopyObjectInput{Bucket: aws.String("data"), Key: aws.String("t/copy.txt"),
		CopySource: aws.String("data/t/a.txt")})
	require.NoError(t, err)
	require.Equal(t, map[string]string{"classification": "internal"}, getTags(t, c, "t/copy.txt"))
	_, err = c.CopyObject(ctx, &awss3.CopyObjectInput{Bucket: aws.String("data"), Key: aws.String("t/replaced.txt"),
		CopySource: aws.String("data/t/a.txt"), TaggingDirective: types.TaggingDirectiveReplace, Tagging: aws.String("k=v")})
	require.NoError(t, err)
	require.Equal(t, map[string]string{"k": "v"}, getTags(t, c, "t/replaced.txt"))
	_, err = c.CopyObject(ctx, &awss3.CopyObjectInput{Bucket: aws.String("data"), Key: aws.String("t/meta.txt"),
		CopySource: aws.String("data/t/a.txt"), MetadataDirective: types.MetadataDirectiveReplace,
		Metadata: map[string]string{"m": "1"}})
	require.NoError(t, err)
	require.Equal(t, map[string]string{"classification": "internal"}, getTags(t, c, "t/meta.txt"))
	head, err := c.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: aws.String("data"), Key: aws.String("t/meta.txt")})
	require.NoError(t, err)
	require.Equal(t, map[string]string{"m": "1"}, head.Metadata)

	// Multipart: the tags given at creation are the object's.
	mp, err := c.CreateMultipartUpload(ctx, &awss3.CreateMultipartUploadInput{Bucket: aws.String("data"),
		Key: aws.String("t/mp.bin"), Tagging: aws.String("stage=raw")})
	require.NoError(t, err)
	part, err := c.UploadPart(ctx, &awss3.UploadPartInput{Bucket: aws.String("data"), Key: aws.String("t/mp.bin"),
		UploadId: mp.UploadId, PartNumber: aws.Int32(1), Body: strings.NewReader("only part")})
	require.NoError(t, err)
	_, err = c.CompleteMultipartUpload(ctx, &awss3.CompleteMultipartUploadInput{Bucket: aws.String("data"), Key: aws.String("t/mp.bin"),
		UploadId: mp.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{ETag: part.ETag, PartNumber: aws.Int32(1)}}}})
	require.NoError(t, err)
	require.Equal(t, map[string]string{"stage": "raw"}, getTags(t, c, "t/mp.bin"))

	_, err = c.DeleteObjectTagging(ctx, &awss3.DeleteObjectTaggingInput{Bucket: aws.String("data"), Key: aws.String("t/a.txt")})
	require.NoError(t, err)
	require.Empty(t, getTags(t, c, "t/a.txt"))
	require.NotEmpty(t, e.audit.find("DeleteObjectTagging"))
	got, err = c.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String("data"), Key: aws.String("t/a.txt")})
	require.NoError(t, err)
	got.Body.Close()
	require.Nil(t, got.TagCount)

	_, err = c.GetObjectTagging(ctx, &awss3.GetObjectTaggingInput{Bucket: aws.String("data"), Key: aws.String("t/none")})
	require.Equal(t, "NoSuchKey", apiCode(err))
}

// TestTaggingInvalid proves issue 13, "validate tags as AWS does": a tag set
// over the limits, with a duplicate key or a forbidden character is
// refused with InvalidTag (BadRequest for more than 10 tags, InvalidArgument
// for a malformed header) before any effect, through PutObjectTagging and through x-amz-tagging.
func TestTaggingInvalid(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c := e.client(e.creds("alice", roleARNs.admin, ""))
	_, err := c.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String("data"), Key: aws.String("v/x"),
		Body: strings.NewReader("x"), Tagging: aws.String("keep=me")})
	require.NoError(t, err)
	var eleven []string
	for i := range 11 {
		eleven = append(eleven, fmt.Sprintf("k%d", i), "v")
	}
	cases := []struct {
		name string
		tags []string
		code string
	}{
		{"eleven tags", eleven, "BadRequest"},
		{"key too long", []string{strings.Repeat("k", 129), "v"}, "InvalidTag"},
		{"value too long", []string{"k", strings.Repeat("v", 257)}, "InvalidTag"},
		{"empty key", []string{"", "v"}, "InvalidTag"},
		{"duplicate key", []string{"k", "1", "k", "2"}, "InvalidTag"},
		{"bad character", []string{"k!", "v"}, "InvalidTag"},
		{"aws prefix", []string{"aws:k", "v"}, "InvalidTag"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.PutObjectTagging(ctx, &awss3.PutObjectTaggingInput{Bucket: aws.String("data"), Key: aws.String("v/x"),
				Tagging: tagSet(tc.tags...)})
			require.Equal(t, tc.code, apiCode(err))
			require.Equal(t, map[string]string{"keep": "me"}, getTags(t, c, "v/x"))

			var q []string
			for i := 0; i+1 < len(tc.tags); i += 2 {
				q = append(q, tc.tags[i]+"="+tc.tags[i+1])
			}
			key := "v/new-" + strings.ReplaceAll(tc.name, " ", "-")
			_, err = c.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String("data"), Key: aws.String(key),
				Body: strings.NewReader("y"), Tagging: aws.String(strings.Join(q, "&"))})
			require.Error(t, err)
			_, err = c.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: aws.String("data"), Key: aws.String(key)})
			require.Error(t, err, "a refused write has no effect")
		})
	}
}

// TestTaggingABAC proves issue 13, "ABAC on objects": a role allowed
// s3:GetObject only when s3:ExistingObjectTag/classification is public
// reads public objects and is denied the others (and the untagged), and
// sees a change of tags at once; a write carrying tags the policy forbids
// (s3:RequestObjectTag/classification, s3:RequestObjectTagKeys) is refused
// before any effect, and audited as a denial with its tag keys.
func TestTaggingABAC(t *testing.T) { taggingABAC(t, newEnv(t)) }

func taggingABAC(t *testing.T, e *env) {
	ctx := context.Background()
	admin := e.client(e.creds("alice", roleARNs.admin, ""))
	user := e.client(e.creds("carol", roleARNs.abac, ""))
	seed := map[string]string{"abac/public.txt": "classification=public", "abac/secret.txt": "classification=secret", "abac/plain.txt": ""}
	for k, tg := range seed {
		in := &awss3.PutObjectInput{Bucket: aws.String("data"), Key: aws.String(k), Body: strings.NewReader(k)}
		if tg != "" {
			in.Tagging = aws.String(tg)
		}
		_, err := admin.PutObject(ctx, in)
		require.NoError(t, err)
	}
	read := func(key string) string {
		out, err := user.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String("data"), Key: aws.String(key)})
		if err != nil {
			return apiCode(err)
		}
		body, _ := io.ReadAll(out.Body)
		out.Body.Close()
		return string(body)
	}
	require.Equal(t, "abac/public.txt", read("abac/public.txt"))
	evs := e.audit.find("GetObject")
	ct, _ := evs[len(evs)-1].Details["cloudTrail"].(map[string]any)
	rp, _ := ct["requestParameters"].(map[string]any)
	require.Equal(t, []any{"classification"}, rp["existingObjectTagKeys"], "the record names the tag keys the decision was given")
	require.Equal(t, "AccessDenied", read("abac/secret.txt"))
	require.Equal(t, "AccessDenied", read("abac/plain.txt"))
	_, err := user.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: aws.String("data"), Key: aws.String("abac/secret.txt")})
	require.Error(t, err)
	_, err = user.GetObjectTagging(ctx, &awss3.GetObjectTaggingInput{Bucket: aws.String("data"), Key: aws.String("abac/secret.txt")})
	require.Equal(t, "AccessDenied", apiCode(err))
	require.Equal(t, map[string]string{"classification": "public"}, getTags(t, user, "abac/public.txt"))

	// Retagged, the object is readable at once.
	_, err = admin.PutObjectTagging(ctx, &awss3.PutObjectTaggingInput{Bucket: aws.String("data"), Key: aws.String("abac/secret.txt"),
		Tagging: tagSet("classification", "public")})
	require.NoError(t, err)
	require.Equal(t, "abac/secret.txt", read("abac/secret.txt"))

	writes := []struct {
		name, tagging string
		allowed       bool
	}{
		{"forbidden value", "classification=secret", false},
		{"forbidden key", "classification=public&owner=carol", false},
		{"no tags", "", false},
		{"allowed", "classification=internal&team=bi", true},
	}
	for _, w := range writes {
		t.Run(w.name, func(t *testing.T) {
			key := "abac/new-" + strings.ReplaceAll(w.name, " ", "-")
			in := &awss3.PutObjectInput{Bucket: aws.String("data"), Key: aws.String(key), Body: strings.NewReader("new")}
			if w.tagging != "" {
				in.Tagging = aws.String(w.tagging)
			}
			_, err := user.PutObject(ctx, in)
			_, herr := admin.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: aws.String("data"), Key: aws.String(key)})
			if w.allowed {
				require.NoError(t, err)
				require.NoError(t, herr)
				return
			}
			require.Equal(t, "AccessDenied", apiCode(err))
			require.Error(t, herr, "a refused write has no effect")
			evs := e.audit.find("PutObject")
			last := evs[len(evs)-1]
			require.Equal(t, audit.CodeS3Denied, last.Code)
		})
	}
	// The denied write is audited with the tag keys it carried.
	require.NotEmpty(t, auditedTagKeys(t, e, "PutObject"))

	// PutObjectTagging with forbidden tags leaves the tags as they were.
	_, err = user.PutObjectTagging(ctx, &awss3.PutObjectTaggingInput{Bucket: aws.String("data"), Key: aws.String("abac/public.txt"),
		Tagging: tagSet("classification", "secret")})
	require.Equal(t, "AccessDenied", apiCode(err))
	require.Equal(t, map[string]string{"classification": "public"}, getTags(t, admin, "abac/public.txt"))
	require.Equal(t, []string{"classification"}, auditedTagKeys(t, e, "PutObjectTagging"))
}

// untaggedBackend hides every optional capability of a backend, tagging
// among them.
type untaggedBackend struct{ backend.Backend }

// TestTaggingRefusedWithoutBackendSupport proves issue 13, "never accept and
// drop": on a backend that cannot store tags, a write carrying
// x-amz-tagging is refused with NotImplemented and has no effect.
func TestTaggingRefusedWithoutBackendSupport(t *testing.T) {
	plain := newEnv(t)
	e := newEnv(t, envOptions{backend: untaggedBackend{plain.backend}})
	ctx := context.Background()
	c := e.client(e.creds("alice", roleARNs.admin, ""))
	_, err := c.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String("data"), Key: aws.String("u/x"),
		Body: strings.NewReader("x"), Tagging: aws.String("k=v")})
	require.Equal(t, "NotImplemented", apiCode(err))
	_, err = c.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: aws.String("data"), Key: aws.String("u/x")})
	require.Error(t, err)
	_, err = c.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String("data"), Key: aws.String("u/x"), Body: strings.NewReader("x")})
	require.NoError(t, err)
	_, err = c.GetObjectTagging(ctx, &awss3.GetObjectTaggingInput{Bucket: aws.String("data"), Key: aws.String("u/x")})
	require.Equal(t, "NotImplemented", apiCode(err))
}

// TestTaggingHeaderRefusedWhenMalformed proves issue 13, "never accept and
// drop": an x-amz-tagging header that is not a query string is refused.
func TestTaggingHeaderRefusedWhenMalformed(t *testing.T) {
	e := newEnv(t)
	c := e.client(e.creds("alice", roleARNs.admin, ""))
	for _, h := range []string{"a=%zz", "=", "key%", "k=1&k=2", "=v"} {
		_, err := c.PutObject(context.Background(), &awss3.PutObjectInput{Bucket: aws.String("data"), Key: aws.String("m/x"),
			Body: strings.NewReader("x"), Tagging: aws.String(h)})
		require.Equal(t, "InvalidArgument", apiCode(err), h)
	}
	_, err := c.HeadObject(context.Background(), &awss3.HeadObjectInput{Bucket: aws.String("data"), Key: aws.String("m/x")})
	require.Error(t, err, "no refused write left an object")
	_, err = c.CopyObject(context.Background(), &awss3.CopyObjectInput{Bucket: aws.String("data"), Key: aws.String("m/y"),
		CopySource: aws.String("data/m/x"), TaggingDirective: "MOVE"})
	require.Error(t, err)
}

// TestTaggingAWSCLI proves issue 13 tagging with the aws cli: a round trip
// through s3api, and an ABAC role denied an object tagged secret.
func TestTaggingAWSCLI(t *testing.T) {
	needBinary(t, "/usr/bin/aws")
	e := newEnv(t)
	admin := e.cli(t, e.creds("alice", roleARNs.admin, ""))
	user := e.cli(t, e.creds("carol", roleARNs.abac, ""))
	run := func(c *cli, args ...string) (string, error) {
		return c.try("/usr/bin/aws", append([]string{"--endpoint-url", e.srv.URL}, args...)...)
	}
	must := func(c *cli, args ...string) string {
		out, err := run(c, args...)
		require.NoError(t, err, out)
		return out
	}
	f := filepath.Join(admin.dir, "f.txt")
	require.NoError(t, os.WriteFile(f, []byte("hello"), 0o600))
	must(admin, "s3api", "put-object", "--bucket", "data", "--key", "abac/cli.txt", "--body", f, "--tagging", "classification=secret")
	require.Contains(t, must(admin, "s3api", "get-object-tagging", "--bucket", "data", "--key", "abac/cli.txt"), `"Value": "secret"`)
	out, err := run(user, "s3api", "get-object", "--bucket", "data", "--key", "abac/cli.txt", filepath.Join(user.dir, "o"))
	require.Error(t, err)
	require.Contains(t, out, "AccessDenied")
	must(admin, "s3api", "put-object-tagging", "--bucket", "data", "--key", "abac/cli.txt",
		"--tagging", `{"TagSet":[{"Key":"classification","Value":"public"}]}`)
	must(user, "s3api", "get-object", "--bucket", "data", "--key", "abac/cli.txt", filepath.Join(user.dir, "o"))
	got, err := os.ReadFile(filepath.Join(user.dir, "o"))
	require.NoError(t, err)
	require.Equal(t, "hello", string(got))
	must(admin, "s3api", "delete-object-tagging", "--bucket", "data", "--key", "abac/cli.txt")
	require.NotContains(t, must(admin, "s3api", "get-object-tagging", "--bucket", "data", "--key", "abac/cli.txt"), "classification")
	require.NotEmpty(t, e.audit.find("DeleteObjectTagging"))
}

const boto3TaggingScript = `
import sys, boto3, botocore
from botocore.config import Config
ep = sys.argv[1]
def client(ak, sk, tok):
    return boto3.client("s3", endpoint_url=ep, region_name="us-east-1", aws_access_key_id=ak,
                        aws_secret_access_key=sk, aws_session_token=tok,
                        config=Config(s3={"addressing_style": "path"}, signature_version="s3v4"))
admin = client(*sys.argv[2:5])
user = client(*sys.argv[5:8])
admin.put_object(Bucket="data", Key="abac/boto.txt", Body=b"boto", Tagging="classification=public&team=bi")
t = admin.get_object_tagging(Bucket="data", Key="abac/boto.txt")["TagSet"]
assert sorted((x["Key"], x["Value"]) for x in t) == [("classification", "public"), ("team", "bi")], t
assert user.get_object(Bucket="data", Key="abac/boto.txt")["Body"].read() == b"boto"
admin.put_object_tagging(Bucket="data", Key="abac/boto.txt", Tagging={"TagSet": [{"Key": "classification", "Value": "secret"}]})
try:
    user.get_object(Bucket="data", Key="abac/boto.txt")
    raise SystemExit("read of a secret object succeeded")
except botocore.exceptions.ClientError as e:
    assert e.response["Error"]["Code"] == "AccessDenied", e.response
try:
    user.put_object(Bucket="data", Key="abac/boto-new.txt", Body=b"x", Tagging="classification=secret")
    raise SystemExit("a forbidden tag was accepted")
except botocore.exceptions.ClientError as e:
    assert e.response["Error"]["Code"] == "AccessDenied", e.response
user.put_object(Bucket="data", Key="abac/boto-new.txt", Body=b"x", Tagging="classification=internal")
admin.delete_object_tagging(Bucket="data", Key="abac/boto.txt")
assert admin.get_object_tagging(Bucket="data", Key="abac/boto.txt")["TagSet"] == []
print("OK")
`

// TestTaggingBoto3 proves issue 13 tagging with boto3: a round trip, an
// ABAC read denied once the object is retagged secret, and a write with a
// forbidden tag refused.
func TestTaggingBoto3(t *testing.T) {
	needBinary(t, "/usr/bin/python3")
	e := newEnv(t)
	a, u := e.creds("alice", roleARNs.admin, ""), e.creds("carol", roleARNs.abac, "")
	c := e.cli(t, a)
	c.env = append(c.env, "PYTHONWARNINGS=ignore")
	if _, err := c.try("/usr/bin/python3", "-c", "import boto3"); err != nil {
		needBinary(t, "/nonexistent/python3-boto3")
	}
	script := filepath.Join(c.dir, "t.py")
	require.NoError(t, os.WriteFile(script, []byte(boto3TaggingScript), 0o600))
	out := c.run("/usr/bin/python3", script, e.srv.URL, a.AccessKeyID, a.SecretAccessKey, a.SessionToken,
		u.AccessKeyID, u.SecretAccessKey, u.SessionToken)
	require.Contains(t, out, "OK")
	require.True(t, slices.ContainsFunc(e.audit.find("PutObject"), func(ev audit.Event) bool { return ev.Code == audit.CodeS3Denied }))
}

// TestTaggingRawHeaderOnGet checks x-amz-tagging-count on a plain GET.
func TestTaggingRawHeaderOnGet(t *testing.T) {
	e := newEnv(t)
	c := e.client(e.creds("alice", roleARNs.admin, ""))
	_, err := c.PutObject(context.Background(), &awss3.PutObjectInput{Bucket: aws.String("data"), Key: aws.String("h/x"),
		Body: bytes.NewReader([]byte("x")), Tagging: aws.String("a=1&b=2&c=3")})
	require.NoError(t, err)
	url, err := awss3.NewPresignClient(c).PresignGetObject(context.Background(), &awss3.GetObjectInput{Bucket: aws.String("data"), Key: aws.String("h/x")})
	require.NoError(t, err)
	resp, err := e.srv.Client().Get(url.URL)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, "3", resp.Header.Get("X-Amz-Tagging-Count"))
}

// countingTagger counts the tag reads of a local backend and can make them
// fail.
type countingTagger struct {
	*local.Backend
	reads atomic.Int64
	fail  atomic.Bool
}

func (c *countingTagger) GetObjectTagging(ctx context.Context, bucket, key string) (map[string]string, error) {
	c.reads.Add(1)
	if c.fail.Load() {
		return nil, errors.New("tag store unavailable")
	}
	return c.Backend.GetObjectTagging(ctx, bucket, key)
}

// TestExistingTagsReadOnlyWhenNamed proves issue 13, "keep the hot path
// cheap" and "fail closed": a GET that no tag policy governs reads no
// tags; one whose policy names s3:ExistingObjectTag reads them once; and
// when they cannot be read, the governed GET is denied, never allowed.
func TestExistingTagsReadOnlyWhenNamed(t *testing.T) {
	plain := newEnv(t)
	ct := &countingTagger{Backend: plain.backend}
	e := newEnv(t, envOptions{backend: ct})
	ctx := context.Background()
	admin := e.client(e.creds("alice", roleARNs.admin, ""))
	user := e.client(e.creds("carol", roleARNs.abac, ""))
	_, err := admin.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String("data"), Key: aws.String("abac/p"),
		Body: strings.NewReader("p"), Tagging: aws.String("classification=public")})
	require.NoError(t, err)

	ct.reads.Store(0)
	for range 3 {
		out, err := admin.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String("data"), Key: aws.String("abac/p")})
		require.NoError(t, err)
		out.Body.Close()
	}
	require.Zero(t, ct.reads.Load(), "no policy of the admin role names a tag key")

	out, err := user.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String("data"), Key: aws.String("abac/p")})
	require.NoError(t, err)
	out.Body.Close()
	require.EqualValues(t, 1, ct.reads.Load(), "read once for the GET and the tag count it answers with")
	require.EqualValues(t, 1, aws.ToInt32(out.TagCount))

	ct.fail.Store(true)
	_, err = user.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String("data"), Key: aws.String("abac/p")})
	require.Equal(t, "AccessDenied", apiCode(err))
	evs := e.audit.find("GetObject")
	require.Equal(t, audit.CodeS3Denied, evs[len(evs)-1].Code)
}

// TestTaggingLargestSetStoredWholeOrRefused proves issue 13, "nothing
// lost, never accept and drop", on the local backend: the largest valid
// tag set (10 keys of 128 and values of 256 three-byte characters) is
// either stored whole or, where the file system's extended attributes
// cannot hold it (ext4: one block), refused with MetadataTooLarge, leaving
// the object and its tags as they were.
func TestTaggingLargestSetStoredWholeOrRefused(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	c := e.client(e.creds("alice", roleARNs.admin, ""))
	_, err := c.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String("data"), Key: aws.String("big/x"),
		Body: strings.NewReader("x"), Tagging: aws.String("keep=me")})
	require.NoError(t, err)
	var kv []string
	for i := range 10 {
		kv = append(kv, fmt.Sprintf("%d", i)+strings.Repeat("鍵", 127), strings.Repeat("値", 256))
	}
	want := map[string]string{}
	for i := 0; i < len(kv); i += 2 {
		want[kv[i]] = kv[i+1]
	}
	_, err = c.PutObjectTagging(ctx, &awss3.PutObjectTaggingInput{Bucket: aws.String("data"), Key: aws.String("big/x"), Tagging: tagSet(kv...)})
	t.Logf("largest tag set: %v", err)
	if err != nil {
		require.Equal(t, "MetadataTooLarge", apiCode(err))
		require.Equal(t, map[string]string{"keep": "me"}, getTags(t, c, "big/x"))
	} else {
		require.Equal(t, want, getTags(t, c, "big/x"))
	}
	out, err := c.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String("data"), Key: aws.String("big/x")})
	require.NoError(t, err)
	body, _ := io.ReadAll(out.Body)
	out.Body.Close()
	require.Equal(t, "x", string(body))
}

// TestPutObjectTaggingChecksBodyDigests proves issue 13, "never accept and
// drop": the Content-MD5 or x-amz-checksum-* a PutObjectTagging carries is
// checked, and a body that does not match it changes no tag.
func TestPutObjectTaggingChecksBodyDigests(t *testing.T) {
	e := newEnv(t)
	c := e.creds("alice", roleARNs.admin, "")
	sdk := e.client(c)
	_, err := sdk.PutObject(context.Background(), &awss3.PutObjectInput{Bucket: aws.String("data"), Key: aws.String("d/x"),
		Body: strings.NewReader("x"), Tagging: aws.String("keep=me")})
	require.NoError(t, err)
	body := []byte(`<Tagging><TagSet><Tag><Key>k</Key><Value>v</Value></Tag></TagSet></Tagging>`)
	for name, hdr := range map[string]http.Header{
		"Content-MD5": {"Content-Md5": {"1B2M2Y8AsgTpgAmY7PhCfg=="}}, // MD5 of ""
		"CRC32":       {"X-Amz-Checksum-Crc32": {"AAAAAA=="}},
	} {
		t.Run(name, func(t *testing.T) {
			resp := e.signedRequestDo(t, c, "PUT", "/data/d/x?tagging", hdr, body, signOpts{payloadHash: "UNSIGNED-PAYLOAD"})
			require.Equal(t, "BadDigest", errorCode(t, resp))
			require.Equal(t, map[string]string{"keep": "me"}, getTags(t, sdk, "d/x"))
		})
	}
}

// TestTagKeysDifferingOnlyInCase proves issue 13, "fail closed", for a
// trap of ABAC on objects: S3 tag keys are case-sensitive while condition
// keys are not, so "classification" and "Classification" would reach a
// policy as one key with two values. A write carrying such a set is
// refused before any effect, and a read of an object stored with one
// (tagged beside the gateway) is denied rather than decided on either.
func TestTagKeysDifferingOnlyInCase(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	admin := e.client(e.creds("alice", roleARNs.admin, ""))
	user := e.client(e.creds("carol", roleARNs.abac, ""))
	_, err := user.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String("data"), Key: aws.String("abac/case.txt"),
		Body: strings.NewReader("x"), Tagging: aws.String("classification=public&Classification=secret")})
	require.Equal(t, "InvalidTag", apiCode(err))
	_, err = admin.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: aws.String("data"), Key: aws.String("abac/case.txt")})
	require.Error(t, err)
	_, err = admin.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String("data"), Key: aws.String("abac/case.txt"),
		Body: strings.NewReader("x"), Tagging: aws.String("classification=public")})
	require.NoError(t, err)
	_, err = admin.PutObjectTagging(ctx, &awss3.PutObjectTaggingInput{Bucket: aws.String("data"), Key: aws.String("abac/case.txt"),
		Tagging: tagSet("classification", "public", "CLASSIFICATION", "secret")})
	require.Equal(t, "InvalidTag", apiCode(err))

	// Tagged beside the gateway, straight on the backend.
	require.NoError(t, e.backend.PutObjectTagging(ctx, "data", "abac/case.txt",
		map[string]string{"classification": "public", "Classification": "secret"}))
	_, err = user.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String("data"), Key: aws.String("abac/case.txt")})
	require.Equal(t, "AccessDenied", apiCode(err))
}
