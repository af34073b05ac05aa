package backendtest

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-dev/gatehouse/internal/s3gw/backend"
)

// RunVersioning runs the suite of the backend.Versioner capability. The
// factory's backend must implement it; its bucket is empty and may have
// versioning enabled by the suite.
func RunVersioning(t *testing.T, f Factory) {
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, v backend.Versioner, b backend.Backend, bucket string)
	}{
		{"Versions", testVersions},
		{"FailedBodyLeavesNoVersion", testFailedBodyNoVersion},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, bucket := f(t)
			v, ok := b.(backend.Versioner)
			require.True(t, ok, "%T is not a backend.Versioner", b)
			require.NoError(t, v.PutBucketVersioning(ctx(), bucket, backend.VersioningEnabled))
			tc.fn(t, v, b, bucket)
		})
	}
}

// RunObjectLock runs the suite of the backend.ObjectLocker capability. The
// factory's backend must implement it and Versioner; its bucket is empty
// and was created with object lock (CreateBucketWithObjectLock). Versions
// the suite leaves behind carry GOVERNANCE retention at most, and no legal
// hold.
func RunObjectLock(t *testing.T, f Factory) {
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, l backend.ObjectLocker, v backend.Versioner, b backend.Backend, bucket string)
	}{
		{"LegalHold", testLegalHold},
		{"Retention", testRetention},
		{"Configuration", testLockConfiguration},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, bucket := f(t)
			l, ok := b.(backend.ObjectLocker)
			require.True(t, ok, "%T is not a backend.ObjectLocker", b)
			v, ok := b.(backend.Versioner)
			require.True(t, ok, "%T is an ObjectLocker but not a Versioner", b)
			tc.fn(t, l, v, b, bucket)
		})
	}
}

// refusedAs asserts that err is a *backend.ClientError with code.
func refusedAs(t *testing.T, err error, code string) {
	t.Helper()
	var re *backend.ClientError
	require.True(t, errors.As(err, &re), "want a refusal %s, got %v", code, err)
	require.Equal(t, code, re.Code)
}

func testVersions(t *testing.T, v backend.Versioner, b backend.Backend, bucket string) {
	st, err := v.GetBucketVersioning(ctx(), bucket)
	require.NoError(t, err)
	require.Equal(t, backend.VersioningEnabled, st)
	i1 := put(t, b, bucket, "k", []byte("one"))
	i2 := put(t, b, bucket, "k", []byte("two!"))
	require.NotEmpty(t, i1.VersionID)
	require.NotEqual(t, i1.VersionID, i2.VersionID)

	r, info, err := v.GetObjectVersion(ctx(), bucket, "k", i1.VersionID, nil)
	require.NoError(t, err)
	data, _ := io.ReadAll(r)
	r.Close()
	require.Equal(t, "one", string(data))
	require.Equal(t, i1.VersionID, info.VersionID)
	h, err := v.HeadObjectVersion(ctx(), bucket, "k", i1.VersionID)
	require.NoError(t, err)
	require.Equal(t, int64(3), h.Size)
	cur, err := b.HeadObject(ctx(), bucket, "k")
	require.NoError(t, err)
	require.Equal(t, i2.VersionID, cur.VersionID)

	res, err := v.ListObjectVersions(ctx(), bucket, backend.ListVersionsOptions{MaxKeys: 1000})
	require.NoError(t, err)
	require.Len(t, res.Versions, 2)
	require.Equal(t, i2.VersionID, res.Versions[0].VersionID, "newest first")
	require.True(t, res.Versions[0].IsLatest)
	require.False(t, res.Versions[1].IsLatest)

	d, err := v.DeleteObjectVersion(ctx(), bucket, "k", i1.VersionID, false)
	require.NoError(t, err)
	require.Equal(t, i1.VersionID, d.VersionID)
	_, err = v.HeadObjectVersion(ctx(), bucket, "k", i1.VersionID)
	require.Error(t, err, "a deleted version is gone")

	d, err = v.DeleteObjectVersion(ctx(), bucket, "k", "", false)
	require.NoError(t, err)
	require.True(t, d.DeleteMarker, "deleting the current object of a versioned bucket leaves a delete marker")
	_, err = b.HeadObject(ctx(), bucket, "k")
	require.ErrorIs(t, err, backend.ErrNoSuchKey)
	got, _ := func() ([]byte, error) {
		r, _, err := v.GetObjectVersion(ctx(), bucket, "k", i2.VersionID, nil)
		require.NoError(t, err)
		defer r.Close()
		return io.ReadAll(r)
	}()
	require.Equal(t, "two!", string(got), "older versions survive a delete marker")

	require.NoError(t, v.PutBucketVersioning(ctx(), bucket, backend.VersioningSuspended))
	st, err = v.GetBucketVersioning(ctx(), bucket)
	require.NoError(t, err)
	require.Equal(t, backend.VersioningSuspended, st)
}

// testFailedBodyNoVersion: in a versioned bucket a failed write leaves
// neither a version nor a delete marker, visible or hidden.
func testFailedBodyNoVersion(t *testing.T, v backend.Versioner, b backend.Backend, bucket string) {
	bad := errors.New("chunk signature mismatch")
	data := bytes.Repeat([]byte("x"), 300<<10)
	_, err := b.PutObject(ctx(), bucket, "new", &failingReader{bytes.NewReader(data), bad}, int64(len(data)), backend.Metadata{})
	require.Error(t, err)
	put(t, b, bucket, "ok", []byte("fine"))
	res, err := v.ListObjectVersions(ctx(), bucket, backend.ListVersionsOptions{MaxKeys: 1000})
	require.NoError(t, err)
	require.Len(t, res.Versions, 1)
	require.Equal(t, "ok", res.Versions[0].Key)
}

func testLegalHold(t *testing.T, l backend.ObjectLocker, v backend.Versioner, b backend.Backend, bucket string) {
	info, err := l.PutObjectLocked(ctx(), bucket, "held", bytes.NewReader([]byte("evidence")), 8, backend.Metadata{},
		backend.ObjectLock{LegalHold: true})
	require.NoError(t, err)
	require.NotEmpty(t, info.VersionID)
	on, err := l.GetObjectLegalHold(ctx(), bucket, "held", info.VersionID)
	require.NoError(t, err)
	require.True(t, on, "the hold asked for on upload is applied")
	_, err = v.DeleteObjectVersion(ctx(), bucket, "held", info.VersionID, true)
	refusedAs(t, err, "AccessDenied")
	_, err = v.HeadObjectVersion(ctx(), bucket, "held", info.VersionID)
	require.NoError(t, err, "a held version survives a delete")

	require.NoError(t, l.PutObjectLegalHold(ctx(), bucket, "held", info.VersionID, false))
	on, err = l.GetObjectLegalHold(ctx(), bucket, "held", info.VersionID)
	require.NoError(t, err)
	require.False(t, on)
	_, err = v.DeleteObjectVersion(ctx(), bucket, "held", info.VersionID, false)
	require.NoError(t, err)

	// A hold placed afterwards protects as well.
	i2 := put(t, b, bucket, "later", []byte("x"))
	require.NoError(t, l.PutObjectLegalHold(ctx(), bucket, "later", i2.VersionID, true))
	_, err = v.DeleteObjectVersion(ctx(), bucket, "later", i2.VersionID, false)
	refusedAs(t, err, "AccessDenied")
	require.NoError(t, l.PutObjectLegalHold(ctx(), bucket, "later", i2.VersionID, false))
}

func testRetention(t *testing.T, l backend.ObjectLocker, v backend.Versioner, b backend.Backend, bucket string) {
	until := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	info, err := l.PutObjectLocked(ctx(), bucket, "kept", bytes.NewReader([]byte("ledger")), 6, backend.Metadata{},
		backend.ObjectLock{Retention: backend.Retention{Mode: backend.LockGovernance, RetainUntil: until}})
	require.NoError(t, err)
	r, err := l.GetObjectRetention(ctx(), bucket, "kept", info.VersionID)
	require.NoError(t, err)
	require.Equal(t, backend.LockGovernance, r.Mode)
	require.True(t, until.Equal(r.RetainUntil), "%v != %v", until, r.RetainUntil)
	_, err = v.DeleteObjectVersion(ctx(), bucket, "kept", info.VersionID, false)
	refusedAs(t, err, "AccessDenied")
	_, err = v.DeleteObjectVersion(ctx(), bucket, "kept", info.VersionID, true)
	require.NoError(t, err, "GOVERNANCE yields to a bypass")

	i2 := put(t, b, bucket, "set-later", []byte("x"))
	require.NoError(t, l.PutObjectRetention(ctx(), bucket, "set-later", i2.VersionID,
		backend.Retention{Mode: backend.LockGovernance, RetainUntil: until}, false))
	_, err = v.DeleteObjectVersion(ctx(), bucket, "set-later", i2.VersionID, false)
	refusedAs(t, err, "AccessDenied")
}

func testLockConfiguration(t *testing.T, l backend.ObjectLocker, _ backend.Versioner, _ backend.Backend, bucket string) {
	cfg, err := l.GetObjectLockConfiguration(ctx(), bucket)
	require.NoError(t, err)
	require.True(t, cfg.Enabled)
	want := backend.LockConfiguration{Enabled: true, Mode: backend.LockGovernance, Days: 2}
	require.NoError(t, l.PutObjectLockConfiguration(ctx(), bucket, want))
	cfg, err = l.GetObjectLockConfiguration(ctx(), bucket)
	require.NoError(t, err)
	require.Equal(t, want, cfg)
	require.NoError(t, l.PutObjectLockConfiguration(ctx(), bucket, backend.LockConfiguration{Enabled: true}))
}
