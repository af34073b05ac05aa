package s3

import (
	"cmp"
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/gatehouse-dev/gatehouse/internal/s3gw/backend"
	"github.com/gatehouse-dev/gatehouse/internal/s3name"
)

var (
	_ backend.Versioner    = (*Backend)(nil)
	_ backend.ObjectLocker = (*Backend)(nil)
)

// mapRefused is mapErr for the versioning and object lock calls: it also
// names NoSuchVersion as backend.ErrNoSuchVersion. Any other 4xx the client
// caused (an object protected by object lock, a bucket without object lock,
// a malformed version id) is mapErr's *backend.ClientError, passed on as is.
func mapRefused(op string, err error, notFound error) error {
	m := mapErr(op, err, notFound)
	var ae smithy.APIError
	if m != nil && errors.As(err, &ae) && ae.ErrorCode() == "NoSuchVersion" {
		return errors.Join(backend.ErrNoSuchVersion, m)
	}
	return m
}

// GetBucketVersioning returns the bucket's versioning state.
func (b *Backend) GetBucketVersioning(ctx context.Context, bucket string) (string, error) {
	if err := s3name.Bucket(bucket); err != nil {
		return "", err
	}
	out, err := b.c.GetBucketVersioning(ctx, &awss3.GetBucketVersioningInput{Bucket: &bucket})
	if err != nil {
		return "", mapRefused("get bucket versioning", err, nil)
	}
	return string(out.Status), nil
}

// PutBucketVersioning enables or suspends versioning.
func (b *Backend) PutBucketVersioning(ctx context.Context, bucket, status string) error {
	if err := s3name.Bucket(bucket); err != nil {
		return err
	}
	_, err := b.c.PutBucketVersioning(ctx, &awss3.PutBucketVersioningInput{Bucket: &bucket,
		VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatus(status)}})
	return mapRefused("put bucket versioning", err, nil)
}

// ListObjectVersions lists versions and delete markers, by key and then
// newest first. Staged uploads (StagingPrefix) are not listed.
func (b *Backend) ListObjectVersions(ctx context.Context, bucket string, opts backend.ListVersionsOptions) (backend.ListVersionsResult, error) {
	var res backend.ListVersionsResult
	if err := s3name.Bucket(bucket); err != nil {
		return res, err
	}
	if opts.MaxKeys <= 0 {
		return res, b.HeadBucket(ctx, bucket)
	}
	out, err := b.c.ListObjectVersions(ctx, &awss3.ListObjectVersionsInput{Bucket: &bucket, Prefix: nonEmpty(opts.Prefix),
		Delimiter: nonEmpty(opts.Delimiter), KeyMarker: nonEmpty(opts.KeyMarker), VersionIdMarker: nonEmpty(opts.VersionIDMarker),
		MaxKeys: aws.Int32(int32(min(opts.MaxKeys, 1000)))})
	if err != nil {
		return res, mapRefused("list object versions", err, nil)
	}
	for _, v := range out.Versions {
		res.Versions = append(res.Versions, backend.VersionInfo{Key: str(v.Key), VersionID: str(v.VersionId),
			IsLatest: aws.ToBool(v.IsLatest), Size: aws.ToInt64(v.Size), ETag: etag(v.ETag), LastModified: aws.ToTime(v.LastModified).UTC()})
	}
	for _, d := range out.DeleteMarkers {
		res.Versions = append(res.Versions, backend.VersionInfo{Key: str(d.Key), VersionID: str(d.VersionId),
			IsLatest: aws.ToBool(d.IsLatest), DeleteMarker: true, LastModified: aws.ToTime(d.LastModified).UTC()})
	}
	res.Versions = slices.DeleteFunc(res.Versions, func(v backend.VersionInfo) bool { return strings.HasPrefix(v.Key, StagingPrefix) })
	slices.SortStableFunc(res.Versions, func(x, y backend.VersionInfo) int {
		return cmp.Or(strings.Compare(x.Key, y.Key), y.LastModified.Compare(x.LastModified))
	})
	for _, p := range out.CommonPrefixes {
		if s := str(p.Prefix); s != StagingPrefix {
			res.CommonPrefixes = append(res.CommonPrefixes, s)
		}
	}
	res.IsTruncated = aws.ToBool(out.IsTruncated)
	res.NextKeyMarker, res.NextVersionIDMarker = str(out.NextKeyMarker), str(out.NextVersionIdMarker)
	return res, nil
}

// GetObjectVersion streams one version (or a range of it).
func (b *Backend) GetObjectVersion(ctx context.Context, bucket, key, versionID string, rng *backend.Range) (io.ReadCloser, backend.ObjectInfo, error) {
	return b.getObject(ctx, bucket, key, versionID, rng)
}

// HeadObjectVersion returns one version's info.
func (b *Backend) HeadObjectVersion(ctx context.Context, bucket, key, versionID string) (backend.ObjectInfo, error) {
	return b.headObject(ctx, bucket, key, versionID)
}

// DeleteObjectVersion removes a version, or deletes the current object.
func (b *Backend) DeleteObjectVersion(ctx context.Context, bucket, key, versionID string, bypassGovernance bool) (backend.DeleteResult, error) {
	if err := checkObject(bucket, key); err != nil {
		return backend.DeleteResult{}, err
	}
	in := &awss3.DeleteObjectInput{Bucket: &bucket, Key: &key, VersionId: nonEmpty(versionID)}
	if bypassGovernance {
		in.BypassGovernanceRetention = aws.Bool(true)
	}
	out, err := b.c.DeleteObject(ctx, in)
	if err != nil {
		err = mapRefused("delete object version", err, nil)
		if versionID == "" && errors.Is(err, backend.ErrNoSuchKey) {
			return backend.DeleteResult{}, nil // deleting a missing key is not an error
		}
		return backend.DeleteResult{}, err
	}
	return backend.DeleteResult{VersionID: str(out.VersionId), DeleteMarker: aws.ToBool(out.DeleteMarker)}, nil
}

// CreateBucketWithObjectLock creates a bucket with object lock enabled.
func (b *Backend) CreateBucketWithObjectLock(ctx context.Context, bucket string) error {
	if err := s3name.Bucket(bucket); err != nil {
		return err
	}
	_, err := b.c.CreateBucket(ctx, &awss3.CreateBucketInput{Bucket: &bucket, ObjectLockEnabledForBucket: aws.Bool(true)})
	return mapRefused("create bucket with object lock", err, nil)
}

// GetObjectLockConfiguration returns the bucket's object lock configuration.
func (b *Backend) GetObjectLockConfiguration(ctx context.Context, bucket string) (backend.LockConfiguration, error) {
	var cfg backend.LockConfiguration
	if err := s3name.Bucket(bucket); err != nil {
		return cfg, err
	}
	out, err := b.c.GetObjectLockConfiguration(ctx, &awss3.GetObjectLockConfigurationInput{Bucket: &bucket})
	if err != nil {
		return cfg, mapRefused("get object lock configuration", err, nil)
	}
	if c := out.ObjectLockConfiguration; c != nil {
		cfg.Enabled = c.ObjectLockEnabled == types.ObjectLockEnabledEnabled
		if c.Rule != nil && c.Rule.DefaultRetention != nil {
			d := c.Rule.DefaultRetention
			cfg.Mode, cfg.Days, cfg.Years = string(d.Mode), int(aws.ToInt32(d.Days)), int(aws.ToInt32(d.Years))
		}
	}
	return cfg, nil
}

// PutObjectLockConfiguration sets the bucket's object lock configuration.
func (b *Backend) PutObjectLockConfiguration(ctx context.Context, bucket string, cfg backend.LockConfiguration) error {
	if err := s3name.Bucket(bucket); err != nil {
		return err
	}
	c := &types.ObjectLockConfiguration{}
	if cfg.Enabled {
		c.ObjectLockEnabled = types.ObjectLockEnabledEnabled
	}
	if cfg.Mode != "" {
		d := &types.DefaultRetention{Mode: types.ObjectLockRetentionMode(cfg.Mode)}
		if cfg.Days > 0 {
			d.Days = aws.Int32(int32(cfg.Days))
		}
		if cfg.Years > 0 {
			d.Years = aws.Int32(int32(cfg.Years))
		}
		c.Rule = &types.ObjectLockRule{DefaultRetention: d}
	}
	_, err := b.c.PutObjectLockConfiguration(ctx, &awss3.PutObjectLockConfigurationInput{Bucket: &bucket, ObjectLockConfiguration: c})
	return mapRefused("put object lock configuration", err, nil)
}

// GetObjectLegalHold reports whether a version is under a legal hold.
func (b *Backend) GetObjectLegalHold(ctx context.Context, bucket, key, versionID string) (bool, error) {
	if err := checkObject(bucket, key); err != nil {
		return false, err
	}
	out, err := b.c.GetObjectLegalHold(ctx, &awss3.GetObjectLegalHoldInput{Bucket: &bucket, Key: &key, VersionId: nonEmpty(versionID)})
	if err != nil {
		return false, mapRefused("get object legal hold", err, nil)
	}
	return out.LegalHold != nil && out.LegalHold.Status == types.ObjectLockLegalHoldStatusOn, nil
}

// PutObjectLegalHold places or lifts a version's legal hold.
func (b *Backend) PutObjectLegalHold(ctx context.Context, bucket, key, versionID string, on bool) error {
	if err := checkObject(bucket, key); err != nil {
		return err
	}
	st := types.ObjectLockLegalHoldStatusOff
	if on {
		st = types.ObjectLockLegalHoldStatusOn
	}
	_, err := b.c.PutObjectLegalHold(ctx, &awss3.PutObjectLegalHoldInput{Bucket: &bucket, Key: &key, VersionId: nonEmpty(versionID),
		LegalHold: &types.ObjectLockLegalHold{Status: st}})
	return mapRefused("put object legal hold", err, nil)
}

// GetObjectRetention returns a version's retention.
func (b *Backend) GetObjectRetention(ctx context.Context, bucket, key, versionID string) (backend.Retention, error) {
	if err := checkObject(bucket, key); err != nil {
		return backend.Retention{}, err
	}
	out, err := b.c.GetObjectRetention(ctx, &awss3.GetObjectRetentionInput{Bucket: &bucket, Key: &key, VersionId: nonEmpty(versionID)})
	if err != nil {
		return backend.Retention{}, mapRefused("get object retention", err, nil)
	}
	if out.Retention == nil {
		return backend.Retention{}, nil
	}
	return backend.Retention{Mode: string(out.Retention.Mode), RetainUntil: aws.ToTime(out.Retention.RetainUntilDate).UTC()}, nil
}

// PutObjectRetention sets a version's retention.
func (b *Backend) PutObjectRetention(ctx context.Context, bucket, key, versionID string, r backend.Retention, bypassGovernance bool) error {
	if err := checkObject(bucket, key); err != nil {
		return err
	}
	in := &awss3.PutObjectRetentionInput{Bucket: &bucket, Key: &key, VersionId: nonEmpty(versionID), Retention: &types.ObjectLockRetention{}}
	if r.Mode != "" {
		in.Retention.Mode, in.Retention.RetainUntilDate = types.ObjectLockRetentionMode(r.Mode), aws.Time(r.RetainUntil)
	}
	if bypassGovernance {
		in.BypassGovernanceRetention = aws.Bool(true)
	}
	_, err := b.c.PutObjectRetention(ctx, in)
	return mapRefused("put object retention", err, nil)
}

// PutObjectLocked is PutObject with the lock set on the new version by the
// same request (with StageUploads: by the publishing copy).
func (b *Backend) PutObjectLocked(ctx context.Context, bucket, key string, body io.Reader, size int64, meta backend.Metadata, lock backend.ObjectLock) (backend.ObjectInfo, error) {
	return b.putObject(ctx, bucket, key, body, size, meta, nil, &lock)
}

// lockOf is the lock a GetObject or HeadObject answer reports (nil: none).
func lockOf(mode types.ObjectLockMode, until *time.Time, hold types.ObjectLockLegalHoldStatus) *backend.ObjectLock {
	if mode == "" && hold == "" {
		return nil
	}
	l := &backend.ObjectLock{LegalHold: hold == types.ObjectLockLegalHoldStatusOn}
	if mode != "" && until != nil {
		l.Retention = backend.Retention{Mode: string(mode), RetainUntil: until.UTC()}
	}
	return l
}

// lockPut sets lock (nil: none) on a PutObject input.
func lockPut(in *awss3.PutObjectInput, lock *backend.ObjectLock) {
	if lock == nil {
		return
	}
	if lock.LegalHold {
		in.ObjectLockLegalHoldStatus = types.ObjectLockLegalHoldStatusOn
	}
	if lock.Retention.Mode != "" {
		in.ObjectLockMode, in.ObjectLockRetainUntilDate = types.ObjectLockMode(lock.Retention.Mode), aws.Time(lock.Retention.RetainUntil)
	}
}

// lockCopy sets lock (nil: none) on a CopyObject input.
func lockCopy(in *awss3.CopyObjectInput, lock *backend.ObjectLock) {
	if lock == nil {
		return
	}
	if lock.LegalHold {
		in.ObjectLockLegalHoldStatus = types.ObjectLockLegalHoldStatusOn
	}
	if lock.Retention.Mode != "" {
		in.ObjectLockMode, in.ObjectLockRetainUntilDate = types.ObjectLockMode(lock.Retention.Mode), aws.Time(lock.Retention.RetainUntil)
	}
}
