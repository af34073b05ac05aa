package s3gw

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/stretchr/testify/require"
)

// TestListingsDoNotRevealMountedKeys proves issue 11 finding 10 (listings
// under mounts): data/hr/ is mounted with the hr-reader role, to which root
// is not entitled. root's own role allows s3:* everywhere. The attack: list
// the bucket with an empty or short prefix ("", "h"), or list multipart
// uploads, and read key names under hr/ that GetObject would refuse. Those
// listings are now refused; a listing whose delimiter folds hr/ into one
// common prefix still works and names no key under it, and alice (entitled
// to hr-reader) still lists everything.
func TestListingsDoNotRevealMountedKeys(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, envOptions{
		mounts:   []Mount{{ID: "hr", Bucket: "data", Prefix: "hr/", RoleARN: roleARNs.hr}},
		entitled: map[string][]string{roleARNs.hr: {"alice"}},
	})
	_, err := e.backend.PutObject(ctx, "data", "hr/salaries-2026.csv", stringsReader("x"), 1, mdNone)
	require.NoError(t, err)
	_, err = e.backend.PutObject(ctx, "data", "shared/readme", stringsReader("x"), 1, mdNone)
	require.NoError(t, err)
	_, err = e.backend.CreateMultipartUpload(ctx, "data", "hr/layoffs-draft.xlsx", mdNone)
	require.NoError(t, err)
	root := e.client(e.creds("root", roleARNs.admin, ""))

	listV2 := func(c *awss3.Client, prefix, delim string) ([]string, error) {
		in := &awss3.ListObjectsV2Input{Bucket: aws.String("data"), Prefix: aws.String(prefix)}
		if delim != "" {
			in.Delimiter = aws.String(delim)
		}
		out, err := c.ListObjectsV2(ctx, in)
		if err != nil {
			return nil, err
		}
		var names []string
		for _, o := range out.Contents {
			names = append(names, aws.ToString(o.Key))
		}
		for _, p := range out.CommonPrefixes {
			names = append(names, aws.ToString(p.Prefix))
		}
		return names, nil
	}
	listV1 := func(c *awss3.Client, prefix string) error {
		_, err := c.ListObjects(ctx, &awss3.ListObjectsInput{Bucket: aws.String("data"), Prefix: aws.String(prefix)})
		return err
	}
	uploads := func(c *awss3.Client, prefix string) ([]string, error) {
		out, err := c.ListMultipartUploads(ctx, &awss3.ListMultipartUploadsInput{Bucket: aws.String("data"), Prefix: aws.String(prefix)})
		if err != nil {
			return nil, err
		}
		var keys []string
		for _, u := range out.Uploads {
			keys = append(keys, aws.ToString(u.Key))
		}
		return keys, nil
	}

	attacks := []struct {
		name string
		call func() error
	}{
		{"ListObjectsV2 whole bucket", func() error { _, err := listV2(root, "", ""); return err }},
		{"ListObjectsV2 short prefix", func() error { _, err := listV2(root, "h", ""); return err }},
		{"ListObjectsV2 short prefix, delimiter inside the key part", func() error { _, err := listV2(root, "hr", "-"); return err }},
		{"ListObjects v1 whole bucket", func() error { return listV1(root, "") }},
		{"ListMultipartUploads whole bucket", func() error { _, err := uploads(root, ""); return err }},
		{"ListMultipartUploads under the mount", func() error { _, err := uploads(root, "hr/"); return err }},
	}
	for _, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			require.Equal(t, "AccessDenied", apiCode(a.call()))
		})
	}

	names, err := listV2(root, "", "/")
	require.NoError(t, err, "a delimiter that folds the mount into its own path is safe")
	require.ElementsMatch(t, []string{"hr/", "shared/"}, names)

	alice := e.client(e.creds("alice", roleARNs.analyst, ""))
	names, err = listV2(alice, "", "")
	require.NoError(t, err, "alice may list the mount: she sees it all")
	require.ElementsMatch(t, []string{"hr/salaries-2026.csv", "shared/readme"}, names)
}

// TestListingGuardNestedMounts: inside a mount alice may list (hr/), a
// nested mount she is not entitled to (hr/exec/) still keeps its key names
// out of her listings, unless the delimiter folds it into its own path.
func TestListingGuardNestedMounts(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, envOptions{
		mounts: []Mount{
			{ID: "hr", Bucket: "data", Prefix: "hr/", RoleARN: roleARNs.hr},
			{ID: "exec", Bucket: "data", Prefix: "hr/exec/", RoleARN: roleARNs.admin},
		},
		entitled: map[string][]string{roleARNs.hr: {"alice"}},
	})
	for _, k := range []string{"hr/staff.csv", "hr/exec/ceo-salary.csv"} {
		_, err := e.backend.PutObject(ctx, "data", k, stringsReader("x"), 1, mdNone)
		require.NoError(t, err)
	}
	alice := e.client(e.creds("alice", roleARNs.analyst, ""))
	_, err := alice.ListObjectsV2(ctx, &awss3.ListObjectsV2Input{Bucket: aws.String("data"), Prefix: aws.String("hr/")})
	require.Equal(t, "AccessDenied", apiCode(err))
	keys, err := list(alice, "data", "hr/")
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"hr/staff.csv", "hr/exec/"}, keys)
}

func TestFoldsInto(t *testing.T) {
	for _, tc := range []struct {
		prefix, delim, mount string
		want                 bool
	}{
		{"", "/", "hr/", true},
		{"", "/", "a/b/", true},
		{"h", "/", "hr/", true},
		{"", "", "hr/", false},
		{"hr", "-", "hr/", false},
		{"", "r/", "hr/", true},
		{"hr/", "/", "hr/exec/", true},
		{"hr/e", "x", "hr/exec/", true},
		{"hr/e", "z", "hr/exec/", false},
	} {
		require.Equal(t, tc.want, foldsInto(tc.prefix, tc.delim, tc.mount), "%+v", tc)
	}
}
