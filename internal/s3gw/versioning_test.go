package s3gw

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/s3gw/backend"
	s3backend "github.com/gatehouse-dev/gatehouse/internal/s3gw/backend/s3"
)

// scratchBucket creates a bucket with a fresh name on be's versitygw (with
// object lock when locked) and removes it, every version included, at the
// end of the test.
func scratchBucket(t *testing.T, be *s3backend.Backend, prefix string, locked bool) string {
	t.Helper()
	ctx := context.Background()
	var rnd [4]byte
	rand.Read(rnd[:])
	name := prefix + "-" + hex.EncodeToString(rnd[:])
	if locked {
		require.NoError(t, be.CreateBucketWithObjectLock(ctx, name))
	} else {
		require.NoError(t, be.CreateBucket(ctx, name))
	}
	t.Cleanup(func() {
		c := be.Client()
		out, err := c.ListObjectVersions(ctx, &awss3.ListObjectVersionsInput{Bucket: &name})
		require.NoError(t, err)
		del := func(key, vid *string) {
			if locked {
				c.PutObjectLegalHold(ctx, &awss3.PutObjectLegalHoldInput{Bucket: &name, Key: key, VersionId: vid,
					LegalHold: &types.ObjectLockLegalHold{Status: types.ObjectLockLegalHoldStatusOff}})
			}
			_, err := c.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: &name, Key: key, VersionId: vid,
				BypassGovernanceRetention: aws.Bool(locked)})
			require.NoError(t, err)
		}
		for _, v := range out.Versions {
			del(v.Key, v.VersionId)
		}
		for _, d := range out.DeleteMarkers {
			del(d.Key, d.VersionId)
		}
		require.NoError(t, be.DeleteBucket(ctx, name))
	})
	return name
}

// sessionDeny is a session policy that allows everything but actions.
func sessionDeny(actions ...string) string {
	return `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"},` +
		`{"Effect":"Deny","Action":["` + strings.Join(actions, `","`) + `"],"Resource":"*"}]}`
}

func readObject(t *testing.T, out *awss3.GetObjectOutput) string {
	t.Helper()
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	require.NoError(t, err)
	return string(b)
}

// lastCode is the code of the last audit event of op.
func (e *env) lastCode(t *testing.T, op string) audit.Code {
	t.Helper()
	evs := e.audit.find(op)
	require.NotEmpty(t, evs, "no audit event for %s", op)
	return evs[len(evs)-1].Code
}

// TestVersioningOverVersitygw proves issue 13, versioning, with the Go
// SDK through the gateway in front of versitygw: versioning is enabled
// through the gateway (s3:PutBucketVersioning), two versions are written and
// the old one read back by its id (s3:GetObjectVersion; refused to a session
// without it, which could read only the current object), the versions are
// listed (s3:ListBucketVersions), and a version is deleted for good
// (s3:DeleteObjectVersion; refused to a session without it, the version
// kept). Each step is audited. Before, every one of these requests was
// refused with NotImplemented.
func TestVersioningOverVersitygw(t *testing.T) {
	ctx := context.Background()
	be := versitygwBackend(t)
	bucket := scratchBucket(t, be, "vers", false)
	e := newEnv(t, envOptions{backend: be})
	admin := e.client(e.creds("root", roleARNs.admin, ""))
	noVersions := e.client(e.creds("bob", roleARNs.admin, sessionDeny("s3:GetObjectVersion", "s3:DeleteObjectVersion")))
	b, k := aws.String(bucket), aws.String("doc.txt")

	_, err := admin.PutBucketVersioning(ctx, &awss3.PutBucketVersioningInput{Bucket: b,
		VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusEnabled}})
	require.NoError(t, err)
	require.Equal(t, audit.CodeS3Access, e.lastCode(t, "PutBucketVersioning"))
	gv, err := admin.GetBucketVersioning(ctx, &awss3.GetBucketVersioningInput{Bucket: b})
	require.NoError(t, err)
	require.Equal(t, types.BucketVersioningStatusEnabled, gv.Status)

	p1, err := admin.PutObject(ctx, &awss3.PutObjectInput{Bucket: b, Key: k, Body: strings.NewReader("first")})
	require.NoError(t, err)
	p2, err := admin.PutObject(ctx, &awss3.PutObjectInput{Bucket: b, Key: k, Body: strings.NewReader("second")})
	require.NoError(t, err)
	v1, v2 := aws.ToString(p1.VersionId), aws.ToString(p2.VersionId)
	require.NotEmpty(t, v1, "x-amz-version-id on PutObject")
	require.NotEqual(t, v1, v2)

	old, err := admin.GetObject(ctx, &awss3.GetObjectInput{Bucket: b, Key: k, VersionId: &v1})
	require.NoError(t, err)
	require.Equal(t, v1, aws.ToString(old.VersionId))
	require.Equal(t, "first", readObject(t, old))
	cur, err := admin.GetObject(ctx, &awss3.GetObjectInput{Bucket: b, Key: k})
	require.NoError(t, err)
	require.Equal(t, v2, aws.ToString(cur.VersionId))
	require.Equal(t, "second", readObject(t, cur))
	h, err := admin.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: b, Key: k, VersionId: &v1})
	require.NoError(t, err)
	require.Equal(t, int64(5), aws.ToInt64(h.ContentLength))

	// Without s3:GetObjectVersion: the current object only.
	_, err = noVersions.GetObject(ctx, &awss3.GetObjectInput{Bucket: b, Key: k, VersionId: &v1})
	require.Equal(t, "AccessDenied", apiCode(err))
	require.Equal(t, audit.CodeS3Denied, e.lastCode(t, "GetObject"))
	cur, err = noVersions.GetObject(ctx, &awss3.GetObjectInput{Bucket: b, Key: k})
	require.NoError(t, err)
	require.Equal(t, "second", readObject(t, cur))

	lv, err := admin.ListObjectVersions(ctx, &awss3.ListObjectVersionsInput{Bucket: b})
	require.NoError(t, err)
	require.Len(t, lv.Versions, 2)
	require.Equal(t, v2, aws.ToString(lv.Versions[0].VersionId))
	require.True(t, aws.ToBool(lv.Versions[0].IsLatest))
	require.Equal(t, v1, aws.ToString(lv.Versions[1].VersionId))
	require.Equal(t, int64(5), aws.ToInt64(lv.Versions[1].Size))
	require.Equal(t, audit.CodeS3Access, e.lastCode(t, "ListObjectVersions"))
	// Staged uploads (issue 13, stage_uploads) leave no hidden version or
	// delete marker behind in a versioned bucket.
	raw, err := be.Client().ListObjectVersions(ctx, &awss3.ListObjectVersionsInput{Bucket: b, Prefix: aws.String(s3backend.StagingPrefix)})
	require.NoError(t, err)
	require.Empty(t, raw.Versions)
	require.Empty(t, raw.DeleteMarkers)

	// Without s3:DeleteObjectVersion nothing is deleted.
	_, err = noVersions.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: b, Key: k, VersionId: &v1})
	require.Equal(t, "AccessDenied", apiCode(err))
	_, err = admin.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: b, Key: k, VersionId: &v1})
	require.NoError(t, err, "the version survives a refused delete")

	del, err := admin.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: b, Key: k, VersionId: &v1})
	require.NoError(t, err)
	require.Equal(t, v1, aws.ToString(del.VersionId))
	ev := e.audit.find("DeleteObject")
	require.Equal(t, audit.CodeS3Access, ev[len(ev)-1].Code)
	_, err = admin.GetObject(ctx, &awss3.GetObjectInput{Bucket: b, Key: k, VersionId: &v1})
	require.Error(t, err, "the deleted version is gone")
	cur, err = admin.GetObject(ctx, &awss3.GetObjectInput{Bucket: b, Key: k})
	require.NoError(t, err)
	require.Equal(t, "second", readObject(t, cur), "deleting a version leaves the current object")

	// Deleting the current object leaves a delete marker, named in the answer.
	dm, err := admin.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: b, Key: k})
	require.NoError(t, err)
	require.True(t, aws.ToBool(dm.DeleteMarker))
	require.NotEmpty(t, aws.ToString(dm.VersionId))
	_, err = admin.GetObject(ctx, &awss3.GetObjectInput{Bucket: b, Key: k})
	require.Equal(t, "NoSuchKey", apiCode(err))
	old, err = admin.GetObject(ctx, &awss3.GetObjectInput{Bucket: b, Key: k, VersionId: &v2})
	require.NoError(t, err)
	require.Equal(t, "second", readObject(t, old), "versions survive the delete marker")
}

// TestListObjectVersionsUnderMounts proves issue 13, "no key names leak"
// for ListObjectVersions: it is guarded exactly like ListObjects. hr/ is
// mounted with the hr-reader role, to which root is not entitled; root's
// own role allows s3:* everywhere. Listing versions with a prefix that
// reaches into hr/ is refused; a delimiter that folds hr/ into one common
// prefix is allowed and names no key under it.
func TestListObjectVersionsUnderMounts(t *testing.T) {
	ctx := context.Background()
	be := versitygwBackend(t)
	bucket := scratchBucket(t, be, "versmnt", false)
	e := newEnv(t, envOptions{backend: be,
		mounts: []Mount{{ID: "hr", Bucket: bucket, Prefix: "hr/", RoleARN: roleARNs.hr}}})
	_, err := be.PutObject(ctx, bucket, "hr/salaries.csv", strings.NewReader("x"), 1, mdNone)
	require.NoError(t, err)
	_, err = be.PutObject(ctx, bucket, "shared/readme", strings.NewReader("x"), 1, mdNone)
	require.NoError(t, err)
	root := e.client(e.creds("root", roleARNs.admin, ""))

	for _, prefix := range []string{"", "h", "hr/"} {
		_, err := root.ListObjectVersions(ctx, &awss3.ListObjectVersionsInput{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
		require.Equal(t, "AccessDenied", apiCode(err), "prefix %q", prefix)
		require.Equal(t, audit.CodeS3Denied, e.lastCode(t, "ListObjectVersions"))
	}
	out, err := root.ListObjectVersions(ctx, &awss3.ListObjectVersionsInput{Bucket: aws.String(bucket), Delimiter: aws.String("/")})
	require.NoError(t, err)
	var prefixes []string
	for _, p := range out.CommonPrefixes {
		prefixes = append(prefixes, aws.ToString(p.Prefix))
	}
	require.ElementsMatch(t, []string{"hr/", "shared/"}, prefixes)
	require.Empty(t, out.Versions)
	out, err = root.ListObjectVersions(ctx, &awss3.ListObjectVersionsInput{Bucket: aws.String(bucket), Prefix: aws.String("shared/")})
	require.NoError(t, err)
	require.Len(t, out.Versions, 1)
}

// TestObjectLockOverVersitygw proves issue 13, object lock, with the Go SDK
// through the gateway in front of versitygw: a legal hold asked for on
// upload is applied (the version then cannot be deleted, until the hold is
// lifted through the gateway); a GOVERNANCE retention is applied and only a
// session allowed s3:BypassGovernanceRetention can delete through it; a
// session without s3:PutObjectRetention can neither upload with a retention
// (nothing is written) nor set one; the s3:object-lock-* condition keys
// reach the policy; and every step is audited. Before, the upload headers
// were accepted with 200 and dropped, and the subresources answered
// NotImplemented.
func TestObjectLockOverVersitygw(t *testing.T) {
	ctx := context.Background()
	be := versitygwBackend(t)
	bucket := scratchBucket(t, be, "lock", true)
	e := newEnv(t, envOptions{backend: be})
	admin := e.client(e.creds("root", roleARNs.admin, ""))
	b := aws.String(bucket)
	until := aws.Time(time.Now().Add(time.Hour).UTC().Truncate(time.Second))

	cfg, err := admin.GetObjectLockConfiguration(ctx, &awss3.GetObjectLockConfigurationInput{Bucket: b})
	require.NoError(t, err)
	require.Equal(t, types.ObjectLockEnabledEnabled, cfg.ObjectLockConfiguration.ObjectLockEnabled)
	_, err = admin.PutObjectLockConfiguration(ctx, &awss3.PutObjectLockConfigurationInput{Bucket: b,
		ObjectLockConfiguration: &types.ObjectLockConfiguration{ObjectLockEnabled: types.ObjectLockEnabledEnabled,
			Rule: &types.ObjectLockRule{DefaultRetention: &types.DefaultRetention{Mode: types.ObjectLockRetentionModeGovernance, Days: aws.Int32(1)}}}})
	require.NoError(t, err)
	cfg, err = admin.GetObjectLockConfiguration(ctx, &awss3.GetObjectLockConfigurationInput{Bucket: b})
	require.NoError(t, err)
	require.Equal(t, types.ObjectLockRetentionModeGovernance, cfg.ObjectLockConfiguration.Rule.DefaultRetention.Mode)
	require.Equal(t, int32(1), aws.ToInt32(cfg.ObjectLockConfiguration.Rule.DefaultRetention.Days))
	_, err = admin.PutObjectLockConfiguration(ctx, &awss3.PutObjectLockConfigurationInput{Bucket: b,
		ObjectLockConfiguration: &types.ObjectLockConfiguration{ObjectLockEnabled: types.ObjectLockEnabledEnabled}})
	require.NoError(t, err)
	require.Equal(t, audit.CodeS3Access, e.lastCode(t, "PutObjectLockConfiguration"))

	t.Run("legal hold on upload blocks a delete", func(t *testing.T) {
		k := aws.String("held.txt")
		p, err := admin.PutObject(ctx, &awss3.PutObjectInput{Bucket: b, Key: k, Body: strings.NewReader("evidence"),
			ObjectLockLegalHoldStatus: types.ObjectLockLegalHoldStatusOn})
		require.NoError(t, err)
		vid := p.VersionId
		require.NotEmpty(t, aws.ToString(vid))
		lh, err := admin.GetObjectLegalHold(ctx, &awss3.GetObjectLegalHoldInput{Bucket: b, Key: k, VersionId: vid})
		require.NoError(t, err)
		require.Equal(t, types.ObjectLockLegalHoldStatusOn, lh.LegalHold.Status)
		hd, err := admin.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: b, Key: k, VersionId: vid})
		require.NoError(t, err)
		require.Equal(t, types.ObjectLockLegalHoldStatusOn, hd.ObjectLockLegalHoldStatus)
		noHoldRead := e.client(e.creds("bob", roleARNs.admin, sessionDeny("s3:GetObjectLegalHold")))
		hd, err = noHoldRead.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: b, Key: k, VersionId: vid})
		require.NoError(t, err)
		require.Empty(t, hd.ObjectLockLegalHoldStatus, "the hold is shown only with s3:GetObjectLegalHold")

		_, err = admin.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: b, Key: k, VersionId: vid})
		require.Equal(t, "AccessDenied", apiCode(err), "a held version cannot be deleted")
		require.Equal(t, audit.CodeS3Failed, e.lastCode(t, "DeleteObject"))
		_, err = admin.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: b, Key: k, VersionId: vid, BypassGovernanceRetention: aws.Bool(true)})
		require.Equal(t, "AccessDenied", apiCode(err), "bypassing governance does not lift a legal hold")
		got, err := admin.GetObject(ctx, &awss3.GetObjectInput{Bucket: b, Key: k, VersionId: vid})
		require.NoError(t, err)
		require.Equal(t, "evidence", readObject(t, got))

		_, err = admin.PutObjectLegalHold(ctx, &awss3.PutObjectLegalHoldInput{Bucket: b, Key: k, VersionId: vid,
			LegalHold: &types.ObjectLockLegalHold{Status: types.ObjectLockLegalHoldStatusOff}})
		require.NoError(t, err)
		require.Equal(t, audit.CodeS3Access, e.lastCode(t, "PutObjectLegalHold"))
		_, err = admin.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: b, Key: k, VersionId: vid})
		require.NoError(t, err, "deletable once the hold is lifted")
	})

	t.Run("governance retention and its bypass", func(t *testing.T) {
		k := aws.String("retained.txt")
		p, err := admin.PutObject(ctx, &awss3.PutObjectInput{Bucket: b, Key: k, Body: strings.NewReader("ledger"),
			ObjectLockMode: types.ObjectLockModeGovernance, ObjectLockRetainUntilDate: until})
		require.NoError(t, err)
		vid := p.VersionId
		r, err := admin.GetObjectRetention(ctx, &awss3.GetObjectRetentionInput{Bucket: b, Key: k, VersionId: vid})
		require.NoError(t, err)
		require.Equal(t, types.ObjectLockRetentionModeGovernance, r.Retention.Mode)
		require.True(t, until.Equal(aws.ToTime(r.Retention.RetainUntilDate)))
		// (versitygw v1.8.0 reports the lock on HEAD only, not on GET.)
		hd, err := admin.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: b, Key: k, VersionId: vid})
		require.NoError(t, err)
		require.Equal(t, types.ObjectLockModeGovernance, hd.ObjectLockMode)
		require.True(t, until.Equal(aws.ToTime(hd.ObjectLockRetainUntilDate)))
		noRetRead := e.client(e.creds("bob", roleARNs.admin, sessionDeny("s3:GetObjectRetention")))
		hd, err = noRetRead.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: b, Key: k, VersionId: vid})
		require.NoError(t, err)
		require.Empty(t, hd.ObjectLockMode, "the retention is shown only with s3:GetObjectRetention")

		_, err = admin.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: b, Key: k, VersionId: vid})
		require.Equal(t, "AccessDenied", apiCode(err), "a retained version cannot be deleted")
		noBypass := e.client(e.creds("bob", roleARNs.admin, sessionDeny("s3:BypassGovernanceRetention")))
		_, err = noBypass.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: b, Key: k, VersionId: vid, BypassGovernanceRetention: aws.Bool(true)})
		require.Equal(t, "AccessDenied", apiCode(err))
		require.Equal(t, audit.CodeS3Denied, e.lastCode(t, "DeleteObject"))
		_, err = admin.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: b, Key: k, VersionId: vid})
		require.NoError(t, err)
		_, err = admin.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: b, Key: k, VersionId: vid, BypassGovernanceRetention: aws.Bool(true)})
		require.NoError(t, err)
	})

	t.Run("retention refused without s3:PutObjectRetention", func(t *testing.T) {
		c := e.client(e.creds("bob", roleARNs.admin, sessionDeny("s3:PutObjectRetention")))
		k := aws.String("no-retention.txt")
		_, err := c.PutObject(ctx, &awss3.PutObjectInput{Bucket: b, Key: k, Body: strings.NewReader("x"),
			ObjectLockMode: types.ObjectLockModeGovernance, ObjectLockRetainUntilDate: until})
		require.Equal(t, "AccessDenied", apiCode(err))
		require.Equal(t, audit.CodeS3Denied, e.lastCode(t, "PutObject"))
		_, err = admin.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: b, Key: k})
		require.Error(t, err, "nothing written")

		_, err = c.PutObject(ctx, &awss3.PutObjectInput{Bucket: b, Key: k, Body: strings.NewReader("x")})
		require.NoError(t, err, "a plain upload is still allowed")
		_, err = c.PutObjectRetention(ctx, &awss3.PutObjectRetentionInput{Bucket: b, Key: k,
			Retention: &types.ObjectLockRetention{Mode: types.ObjectLockRetentionModeGovernance, RetainUntilDate: until}})
		require.Equal(t, "AccessDenied", apiCode(err))
		require.Equal(t, audit.CodeS3Denied, e.lastCode(t, "PutObjectRetention"))
		_, err = admin.GetObjectRetention(ctx, &awss3.GetObjectRetentionInput{Bucket: b, Key: k})
		require.Error(t, err, "no retention was set")
	})

	t.Run("condition keys", func(t *testing.T) {
		noCompliance := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"},
		 {"Effect":"Deny","Action":["s3:PutObject","s3:PutObjectRetention"],"Resource":"*","Condition":{"StringEquals":{"s3:object-lock-mode":"COMPLIANCE"}}},
		 {"Effect":"Deny","Action":"s3:PutObjectRetention","Resource":"*","Condition":{"NumericGreaterThan":{"s3:object-lock-remaining-retention-days":"30"}}},
		 {"Effect":"Deny","Action":"s3:PutObjectLegalHold","Resource":"*","Condition":{"StringEquals":{"s3:object-lock-legal-hold":"ON"}}}]}`
		c := e.client(e.creds("carol", roleARNs.admin, noCompliance))
		k := aws.String("cond.txt")
		_, err := c.PutObject(ctx, &awss3.PutObjectInput{Bucket: b, Key: k, Body: strings.NewReader("x"),
			ObjectLockMode: types.ObjectLockModeCompliance, ObjectLockRetainUntilDate: until})
		require.Equal(t, "AccessDenied", apiCode(err), "s3:object-lock-mode")
		_, err = c.PutObject(ctx, &awss3.PutObjectInput{Bucket: b, Key: k, Body: strings.NewReader("x"),
			ObjectLockMode: types.ObjectLockModeGovernance, ObjectLockRetainUntilDate: aws.Time(time.Now().Add(60 * 24 * time.Hour))})
		require.Equal(t, "AccessDenied", apiCode(err), "s3:object-lock-remaining-retention-days")
		_, err = c.PutObject(ctx, &awss3.PutObjectInput{Bucket: b, Key: k, Body: strings.NewReader("x"),
			ObjectLockLegalHoldStatus: types.ObjectLockLegalHoldStatusOn})
		require.Equal(t, "AccessDenied", apiCode(err), "s3:object-lock-legal-hold")
		_, err = admin.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: b, Key: k})
		require.Error(t, err, "nothing written")
		p, err := c.PutObject(ctx, &awss3.PutObjectInput{Bucket: b, Key: k, Body: strings.NewReader("x"),
			ObjectLockMode: types.ObjectLockModeGovernance, ObjectLockRetainUntilDate: until})
		require.NoError(t, err)
		ev := e.audit.find("PutObject")
		rp := ev[len(ev)-1].Details["cloudTrail"].(map[string]any)["requestParameters"].(map[string]any)
		require.Equal(t, "GOVERNANCE", rp["objectLockMode"])
		_, err = admin.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: b, Key: k, VersionId: p.VersionId, BypassGovernanceRetention: aws.Bool(true)})
		require.NoError(t, err)
	})
}

// TestDeleteObjectsVersionsOverVersitygw proves issue 13, versioning, for
// DeleteObjects: a key named with a VersionId is deleted as that version,
// authorized per key as s3:DeleteObjectVersion (a session without it gets
// AccessDenied for that key and the version is kept), and the answer names
// the version deleted. Before, the whole request was refused.
func TestDeleteObjectsVersionsOverVersitygw(t *testing.T) {
	ctx := context.Background()
	be := versitygwBackend(t)
	bucket := scratchBucket(t, be, "versdel", false)
	e := newEnv(t, envOptions{backend: be})
	admin := e.client(e.creds("root", roleARNs.admin, ""))
	noVersions := e.client(e.creds("bob", roleARNs.admin, sessionDeny("s3:DeleteObjectVersion")))
	b := aws.String(bucket)
	_, err := admin.PutBucketVersioning(ctx, &awss3.PutBucketVersioningInput{Bucket: b,
		VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusEnabled}})
	require.NoError(t, err)
	p1, err := admin.PutObject(ctx, &awss3.PutObjectInput{Bucket: b, Key: aws.String("k"), Body: strings.NewReader("1")})
	require.NoError(t, err)
	_, err = admin.PutObject(ctx, &awss3.PutObjectInput{Bucket: b, Key: aws.String("k"), Body: strings.NewReader("2")})
	require.NoError(t, err)
	batch := &awss3.DeleteObjectsInput{Bucket: b, Delete: &types.Delete{Objects: []types.ObjectIdentifier{
		{Key: aws.String("k"), VersionId: p1.VersionId}}}}

	out, err := noVersions.DeleteObjects(ctx, batch)
	require.NoError(t, err)
	require.Len(t, out.Errors, 1)
	require.Equal(t, "AccessDenied", aws.ToString(out.Errors[0].Code))
	_, err = admin.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: b, Key: aws.String("k"), VersionId: p1.VersionId})
	require.NoError(t, err, "the version is kept")

	out, err = admin.DeleteObjects(ctx, batch)
	require.NoError(t, err)
	require.Empty(t, out.Errors)
	require.Len(t, out.Deleted, 1)
	require.Equal(t, aws.ToString(p1.VersionId), aws.ToString(out.Deleted[0].VersionId))
	_, err = admin.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: b, Key: aws.String("k"), VersionId: p1.VersionId})
	require.Error(t, err, "the version is gone")
	cur, err := admin.GetObject(ctx, &awss3.GetObjectInput{Bucket: b, Key: aws.String("k")})
	require.NoError(t, err)
	require.Equal(t, "2", readObject(t, cur))
	ev := e.audit.find("DeleteObjects")
	rp := ev[len(ev)-1].Details["cloudTrail"].(map[string]any)["requestParameters"].(map[string]any)
	require.Equal(t, []any{"k@" + aws.ToString(p1.VersionId)}, rp["versions"])
}

// TestStagedUploadsLeaveNothingHidden proves issue 13, "stage_uploads must
// leave no hidden objects or delete markers in versioned backend buckets",
// where the bucket's versioning is suspended (a plain delete of the staging
// copy would leave a null delete marker) and unversioned, and that a bucket
// holding only what a failed staged upload left behind (versitygw may commit
// a truncated body after the failed request returned; simulated by writing
// under the staging prefix directly) is empty to its caller and can be
// deleted through the gateway. Before, each left a hidden key behind and the
// DeleteBucket answered BucketNotEmpty.
func TestStagedUploadsLeaveNothingHidden(t *testing.T) {
	ctx := context.Background()
	be := versitygwBackend(t)
	e := newEnv(t, envOptions{backend: be})
	admin := e.client(e.creds("root", roleARNs.admin, ""))
	hidden := func(bucket string) []string {
		raw, err := be.Client().ListObjectVersions(ctx, &awss3.ListObjectVersionsInput{Bucket: &bucket, Prefix: aws.String(s3backend.StagingPrefix)})
		require.NoError(t, err)
		var keys []string
		for _, v := range raw.Versions {
			keys = append(keys, "version "+aws.ToString(v.Key))
		}
		for _, d := range raw.DeleteMarkers {
			keys = append(keys, "delete marker "+aws.ToString(d.Key))
		}
		return keys
	}
	for _, status := range []types.BucketVersioningStatus{types.BucketVersioningStatusSuspended, ""} {
		t.Run("versioning "+string(status), func(t *testing.T) {
			bucket := scratchBucket(t, be, "stg", false)
			if status != "" {
				for _, st := range []types.BucketVersioningStatus{types.BucketVersioningStatusEnabled, status} {
					_, err := be.Client().PutBucketVersioning(ctx, &awss3.PutBucketVersioningInput{Bucket: &bucket,
						VersioningConfiguration: &types.VersioningConfiguration{Status: st}})
					require.NoError(t, err)
				}
			}
			_, err := admin.PutObject(ctx, &awss3.PutObjectInput{Bucket: &bucket, Key: aws.String("k"), Body: strings.NewReader("v")})
			require.NoError(t, err)
			require.Empty(t, hidden(bucket))
		})
	}
	t.Run("leftover", func(t *testing.T) {
		bucket := uniqueBucket("stg")
		require.NoError(t, be.CreateBucket(ctx, bucket))
		t.Cleanup(func() { be.DeleteBucket(ctx, bucket) })
		_, err := be.Client().PutObject(ctx, &awss3.PutObjectInput{Bucket: &bucket,
			Key: aws.String(s3backend.StagingPrefix + "late-commit"), Body: strings.NewReader("trunc")})
		require.NoError(t, err)
		l, err := admin.ListObjectsV2(ctx, &awss3.ListObjectsV2Input{Bucket: &bucket})
		require.NoError(t, err)
		require.Empty(t, l.Contents, "the caller sees an empty bucket")
		_, err = admin.DeleteBucket(ctx, &awss3.DeleteBucketInput{Bucket: &bucket})
		require.NoError(t, err)
		require.ErrorIs(t, be.HeadBucket(ctx, bucket), backend.ErrNoSuchBucket)
	})
}

// TestPutBucketVersioningMFADelete: MfaDelete "Disabled" (what the
// gateway does; ceph/s3-tests and some tools send it) is accepted, while
// "Enabled", a protection the gateway never applies, is refused
// NotImplemented before any effect, and an x-amz-mfa header is refused by
// the honoured table (issue 13, never accept and drop).
func TestPutBucketVersioningMFADelete(t *testing.T) {
	ctx := context.Background()
	be := versitygwBackend(t)
	bucket := scratchBucket(t, be, "mfa", false)
	e := newEnv(t, envOptions{backend: be})
	admin := e.client(e.creds("root", roleARNs.admin, ""))
	put := func(mfa types.MFADelete, opt ...func(*awss3.Options)) error {
		_, err := admin.PutBucketVersioning(ctx, &awss3.PutBucketVersioningInput{Bucket: &bucket,
			VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusEnabled, MFADelete: mfa}}, opt...)
		return err
	}
	require.Equal(t, "NotImplemented", apiCode(put(types.MFADeleteEnabled)))
	gv, err := admin.GetBucketVersioning(ctx, &awss3.GetBucketVersioningInput{Bucket: &bucket})
	require.NoError(t, err)
	require.Empty(t, gv.Status, "nothing changed")
	withMFA := func(o *awss3.Options) {
		o.APIOptions = append(o.APIOptions, smithyhttp.AddHeaderValue("X-Amz-Mfa", "arn:aws:iam::000000000000:mfa/x 123456"))
	}
	require.Equal(t, "NotImplemented", apiCode(put(types.MFADeleteDisabled, withMFA)))
	require.NoError(t, put(types.MFADeleteDisabled))
	gv, err = admin.GetBucketVersioning(ctx, &awss3.GetBucketVersioningInput{Bucket: &bucket})
	require.NoError(t, err)
	require.Equal(t, types.BucketVersioningStatusEnabled, gv.Status)
}

// TestExistingObjectTagGovernsVersionReads is an attack test (issue 13,
// tagging on versioned buckets): a session whose policy denies reading
// objects tagged classification=secret must not read such an object by
// naming its version. The version read is s3:GetObjectVersion, for which
// the gateway cannot yet read the version's own tags; it therefore denies
// whenever a policy that could decide the request names
// s3:ExistingObjectTag/, rather than deciding without the key (where the
// Deny's condition would not match and the read would be allowed). Before
// the fix the version read succeeded.
func TestExistingObjectTagGovernsVersionReads(t *testing.T) {
	ctx := context.Background()
	be := versitygwBackend(t)
	bucket := scratchBucket(t, be, "tagver", false)
	e := newEnv(t, envOptions{backend: be})
	admin := e.client(e.creds("root", roleARNs.admin, ""))
	_, err := admin.PutBucketVersioning(ctx, &awss3.PutBucketVersioningInput{Bucket: &bucket,
		VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusEnabled}})
	require.NoError(t, err)
	put, err := admin.PutObject(ctx, &awss3.PutObjectInput{Bucket: &bucket, Key: aws.String("payroll.csv"),
		Body: strings.NewReader("salaries"), Tagging: aws.String("classification=secret")})
	require.NoError(t, err)
	vid := put.VersionId
	require.NotEmpty(t, aws.ToString(vid))

	const noSecrets = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"},` +
		`{"Effect":"Deny","Action":"s3:GetObject*","Resource":"*","Condition":{"StringEquals":{"s3:ExistingObjectTag/classification":"secret"}}}]}`
	eve := e.client(e.creds("eve", roleARNs.admin, noSecrets))
	_, err = eve.GetObject(ctx, &awss3.GetObjectInput{Bucket: &bucket, Key: aws.String("payroll.csv")})
	require.Equal(t, "AccessDenied", apiCode(err), "the current object is governed by its tags")
	_, err = eve.GetObject(ctx, &awss3.GetObjectInput{Bucket: &bucket, Key: aws.String("payroll.csv"), VersionId: vid})
	require.Equal(t, "AccessDenied", apiCode(err), "naming the version must not escape the tag policy")
	require.Equal(t, audit.CodeS3Denied, e.lastCode(t, "GetObject"))

	// A session no tag policy governs reads versions as before.
	o, err := admin.GetObject(ctx, &awss3.GetObjectInput{Bucket: &bucket, Key: aws.String("payroll.csv"), VersionId: vid})
	require.NoError(t, err)
	require.Equal(t, "salaries", readObject(t, o))
}
