package server

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-dev/gatehouse/internal/config"
	"github.com/gatehouse-dev/gatehouse/internal/s3gw/backend"
	"github.com/gatehouse-dev/gatehouse/internal/secrets"
	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/sts/credentials"
)

// regionalPolicy lets a session read and list the bucket, guarded by two
// Deny statements on the session's region tag: one in NotResource, one
// under a negated operator. A session without the tag has no region, so
// both guards must fire (AWS IAM User Guide, "Policy variables with no
// value").
const regionalPolicy = `{"Version":"2012-10-17","Statement":[
 {"Effect":"Allow","Action":["s3:GetObject","s3:ListBucket"],"Resource":["arn:aws:s3:::data","arn:aws:s3:::data/*"]},
 {"Sid":"OwnRegionOnly","Effect":"Deny","Action":"s3:GetObject","NotResource":"arn:aws:s3:::data/${aws:PrincipalTag/region}/*"},
 {"Sid":"ListOwnRegionOnly","Effect":"Deny","Action":"s3:ListBucket","Resource":"arn:aws:s3:::data",
  "Condition":{"StringNotLike":{"s3:prefix":"${aws:PrincipalTag/region}/*"}}}]}`

// TestPolicyVariableWithNoValueDeniesThroughS3 is the attack of issue 11
// finding 4 against a running server (real STS decision point, real S3
// listener, real SigV4): a role's Allow is guarded by Deny statements that
// use ${aws:PrincipalTag/region}. A caller whose session carries no region
// tag must be denied by those guards, not slip past them because the
// variable cannot be resolved. A caller with the tag keeps her access to her
// own region only.
func TestPolicyVariableWithNoValueDeniesThroughS3(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cfg, err := config.Load("", func(string) (string, bool) { return "", false }, []config.Override{
		{Path: "data_dir", Value: dir},
		{Path: "api.listen", Value: "127.0.0.1:0"},
		{Path: "admin.listen", Value: "127.0.0.1:0"},
		{Path: "s3.listen", Value: "127.0.0.1:0"},
		{Path: "s3.buckets", Value: "data"},
	})
	require.NoError(t, err)
	srv, err := New(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, err)
	serveCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(serveCtx) }()
	t.Cleanup(func() {
		stop()
		require.NoError(t, <-done)
	})

	for _, key := range []string{"eu/report.csv", "us/report.csv"} {
		_, err := srv.Objects.PutObject(ctx, "data", key, strings.NewReader("rows"), 4, backend.Metadata{})
		require.NoError(t, err)
	}
	role := &store.Role{Name: "regional", MaxSessionDuration: 3600,
		TrustPolicy:        `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"` + cfg.STS.AccountID + `"},"Action":"sts:AssumeRole"}]}`,
		PermissionPolicies: []store.NamedPolicy{{Name: "regional", Document: regionalPolicy}}}
	require.NoError(t, srv.Store.CreateRole(ctx, role))
	roleARN := "arn:aws:iam::" + cfg.STS.AccountID + ":role/regional"

	mk, err := secrets.LoadOrCreateMasterKey(filepath.Join(cfg.DataDir, "master.key"))
	require.NoError(t, err)
	kr, err := credentials.LoadOrCreateKeyring(ctx, srv.Store, mk, nil)
	require.NoError(t, err)
	issuer := credentials.NewIssuer(kr, credentials.IssuerOptions{})
	client := func(name string, tags map[string]string) *awss3.Client {
		u := &store.User{UserName: name, Active: true}
		require.NoError(t, srv.Store.CreateUser(ctx, u))
		c, err := issuer.Issue(ctx, credentials.SessionRequest{
			PrincipalID: u.ID, UserName: name, SourceIdentity: name, RoleARN: roleARN,
			RoleSessionName: name, AssumedRoleID: "AROAREGIONAL", SessionTags: tags,
		}, time.Hour)
		require.NoError(t, err)
		creds := aws.Credentials{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken, Source: "test"}
		return awss3.New(awss3.Options{
			Region: cfg.S3.Region, BaseEndpoint: aws.String(srv.S3URL()), UsePathStyle: true,
			Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) { return creds, nil }),
		})
	}
	erin := client("erin", map[string]string{"region": "eu"})
	mallory := client("mallory", nil) // her IdP sent no region

	get := func(c *awss3.Client, key string) error {
		out, err := c.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String("data"), Key: aws.String(key)})
		if err == nil {
			out.Body.Close()
		}
		return err
	}
	list := func(c *awss3.Client, prefix string) error {
		_, err := c.ListObjectsV2(ctx, &awss3.ListObjectsV2Input{Bucket: aws.String("data"), Prefix: aws.String(prefix)})
		return err
	}
	for _, tc := range []struct {
		name    string
		do      func() error
		allowed bool
	}{
		{"tagged caller reads her region", func() error { return get(erin, "eu/report.csv") }, true},
		{"tagged caller lists her region", func() error { return list(erin, "eu/") }, true},
		{"tagged caller cannot read another region", func() error { return get(erin, "us/report.csv") }, false},
		{"tagged caller cannot list another region", func() error { return list(erin, "us/") }, false},
		{"untagged caller cannot read a region (NotResource guard)", func() error { return get(mallory, "eu/report.csv") }, false},
		{"untagged caller cannot read another region", func() error { return get(mallory, "us/report.csv") }, false},
		{"untagged caller cannot list a region (StringNotLike guard)", func() error { return list(mallory, "eu/") }, false},
		{"untagged caller cannot list the bucket", func() error { return list(mallory, "") }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.do()
			if tc.allowed {
				require.NoError(t, err)
				return
			}
			var ae smithy.APIError
			require.True(t, errors.As(err, &ae), "want an S3 error, got %v", err)
			require.Equal(t, "AccessDenied", ae.ErrorCode(), ae.ErrorMessage())
		})
	}
}
