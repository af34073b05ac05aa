package backend

import (
	"context"
	"errors"
	"io"
	"time"
)

// Versioning and object lock are optional capabilities of a backend in
// front of a store that keeps object versions (the s3 backend; versitygw
// with a versioning directory). The local backend keeps one version of each
// object and implements neither: the gateway then refuses every versioning
// and object lock request with NotImplemented before it takes effect.

// ErrNoSuchVersion: the version id names no version of the key.
var ErrNoSuchVersion = errors.New("backend: no such version")

// Bucket versioning states (S3 VersioningConfiguration Status). A bucket
// that never had versioning enabled has the empty state.
const (
	VersioningEnabled   = "Enabled"
	VersioningSuspended = "Suspended"
)

// VersionInfo describes one version of a key, or a delete marker.
type VersionInfo struct {
	Key          string
	VersionID    string
	IsLatest     bool
	DeleteMarker bool
	Size         int64
	ETag         string // without quotes; empty for a delete marker
	LastModified time.Time
}

// ListVersionsOptions select versions ordered by key, then newest first.
// KeyMarker and VersionIDMarker resume after the last entry of a page.
type ListVersionsOptions struct {
	Prefix          string
	Delimiter       string
	KeyMarker       string
	VersionIDMarker string
	MaxKeys         int
}

// ListVersionsResult is one page of versions and delete markers.
type ListVersionsResult struct {
	Versions            []VersionInfo
	CommonPrefixes      []string
	IsTruncated         bool
	NextKeyMarker       string
	NextVersionIDMarker string
}

// DeleteResult is what deleting a key or a version did: the version id
// removed (or, deleting the current object of a versioned bucket, of the
// delete marker created) and whether that version is a delete marker.
type DeleteResult struct {
	VersionID    string
	DeleteMarker bool
}

// Versioner is the optional versioning capability. Callers type-assert for
// it. versionID "" in the object methods names the current version; every
// other value (including "null") is passed to the store as is. A version id
// that names no version is ErrNoSuchVersion or a *ClientError.
type Versioner interface {
	// GetBucketVersioning returns "", VersioningEnabled or VersioningSuspended.
	GetBucketVersioning(ctx context.Context, bucket string) (string, error)
	// PutBucketVersioning sets VersioningEnabled or VersioningSuspended.
	PutBucketVersioning(ctx context.Context, bucket, status string) error
	ListObjectVersions(ctx context.Context, bucket string, opts ListVersionsOptions) (ListVersionsResult, error)
	// GetObjectVersion is GetObject of one version; ObjectInfo.VersionID is set.
	GetObjectVersion(ctx context.Context, bucket, key, versionID string, rng *Range) (io.ReadCloser, ObjectInfo, error)
	// HeadObjectVersion is HeadObject of one version.
	HeadObjectVersion(ctx context.Context, bucket, key, versionID string) (ObjectInfo, error)
	// DeleteObjectVersion removes one version for good (versionID set), or
	// deletes the current object (versionID "": a delete marker in a
	// versioned bucket; a missing key is not an error). bypassGovernance lets a delete remove a version
	// under GOVERNANCE retention; a version under a legal hold or
	// COMPLIANCE retention is never removed (a *ClientError AccessDenied).
	DeleteObjectVersion(ctx context.Context, bucket, key, versionID string, bypassGovernance bool) (DeleteResult, error)
}

// Object lock retention modes.
const (
	LockGovernance = "GOVERNANCE"
	LockCompliance = "COMPLIANCE"
)

// Retention is an object version's retention: Mode (LockGovernance or
// LockCompliance) until RetainUntil. The zero Retention is none.
type Retention struct {
	Mode        string
	RetainUntil time.Time
}

// ObjectLock is what an upload asks for: a retention and/or a legal hold.
type ObjectLock struct {
	Retention Retention
	LegalHold bool
}

// LockConfiguration is a bucket's object lock configuration: whether object
// lock is enabled, and the default retention of new versions (Days or
// Years, zero for none).
type LockConfiguration struct {
	Enabled bool
	Mode    string
	Days    int
	Years   int
}

// ObjectLocker is the optional object lock capability (S3 Object Lock: legal
// holds and retention, WORM). Callers type-assert for it. A backend that
// implements it also implements Versioner. Each method applies what it is
// given or fails having changed nothing; none accepts a setting it does not
// apply.
type ObjectLocker interface {
	// CreateBucketWithObjectLock creates a bucket with object lock (and so
	// versioning) enabled.
	CreateBucketWithObjectLock(ctx context.Context, bucket string) error
	GetObjectLockConfiguration(ctx context.Context, bucket string) (LockConfiguration, error)
	PutObjectLockConfiguration(ctx context.Context, bucket string, cfg LockConfiguration) error
	GetObjectLegalHold(ctx context.Context, bucket, key, versionID string) (bool, error)
	PutObjectLegalHold(ctx context.Context, bucket, key, versionID string, on bool) error
	GetObjectRetention(ctx context.Context, bucket, key, versionID string) (Retention, error)
	// PutObjectRetention sets (or, the zero Retention, removes) a
	// version's retention; shortening or removing GOVERNANCE retention
	// needs bypassGovernance.
	PutObjectRetention(ctx context.Context, bucket, key, versionID string, r Retention, bypassGovernance bool) error
	// PutObjectLocked is PutObject with the lock applied to the new
	// version atomically with its creation.
	PutObjectLocked(ctx context.Context, bucket, key string, body io.Reader, size int64, meta Metadata, lock ObjectLock) (ObjectInfo, error)
}
