// Package backend defines the storage seam of the S3 gateway and its
// implementations: local (a directory, the embedded default) and s3 (any
// S3-compatible endpoint). The gateway front end authenticates, authorizes
// and audits; a Backend only stores bytes.
//
// Contract shared by every implementation (checked by backendtest):
//   - Bodies stream: PutObject and UploadPart read their io.Reader once, to
//     EOF, and never hold the whole object in memory; GetObject returns a
//     reader the caller must Close.
//   - A write lands whole or not at all: if the reader returns an error other
//     than io.EOF (a failed signature or digest check, a client that went
//     away), or yields a different number of bytes than size, no object is
//     created and a previous object under the key is left untouched.
//   - Keys are validated with s3name.Key and buckets with s3name.Bucket
//     before any I/O; invalid names are s3name.ErrInvalidKey / ErrInvalidBucket.
//   - Errors are classified with the sentinels below (errors.Is); any other
//     error means the backend is unavailable or failed (503 to the client).
//
// Implementations are safe for concurrent use.
package backend

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// Sentinel errors. Implementations wrap them.
var (
	ErrNoSuchBucket   = errors.New("backend: no such bucket")
	ErrNoSuchKey      = errors.New("backend: no such key")
	ErrNoSuchUpload   = errors.New("backend: no such upload")
	ErrInvalidPart    = errors.New("backend: invalid part")
	ErrInvalidOrder   = errors.New("backend: parts not in ascending order")
	ErrEntityTooSmall = errors.New("backend: part too small")
	ErrInvalidRange   = errors.New("backend: range not satisfiable")
	// ErrKeyConflict: the key cannot be stored next to an existing one (the
	// local backend cannot hold both "a" and "a/b").
	ErrKeyConflict = errors.New("backend: key conflicts with an existing key")
	// ErrIncompleteBody: the body ended before size bytes were read.
	ErrIncompleteBody = errors.New("backend: body shorter than its declared size")
	// ErrInvalidUploadIDMarker: ListMultipartUploads got an upload-id-marker
	// that is malformed or names no upload at the key marker.
	ErrInvalidUploadIDMarker = errors.New("backend: invalid upload id marker")
	// ErrPreconditionFailed: an UnchangedWriter's condition did not hold
	// when the object was to be published; nothing changed.
	ErrPreconditionFailed = errors.New("backend: the object changed since it was checked")
	// ErrMetadataTooLarge: the object's metadata and tags together do not
	// fit where the backend keeps them; nothing changed.
	ErrMetadataTooLarge = errors.New("backend: metadata and tags too large to store")
	// ErrBucketExists: CreateBucket found the bucket already there, owned
	// by the backend's own account (S3: BucketAlreadyOwnedByYou).
	ErrBucketExists = errors.New("backend: bucket already exists")
	// ErrBucketTaken: CreateBucket found the name taken by another account
	// of the store (S3: BucketAlreadyExists).
	ErrBucketTaken = errors.New("backend: bucket name taken by another account")
	// ErrBucketNotEmpty: DeleteBucket found objects in the bucket.
	ErrBucketNotEmpty = errors.New("backend: bucket not empty")
)

// ClientError is a request the store refused as the client's fault (an
// HTTP 4xx) with no sentinel above: the gateway answers with the store's
// code, status and message, as the store itself would have. Failures of
// the backend's own credentials are not ClientErrors: the client can do
// nothing about them (503).
type ClientError struct {
	Op      string
	Code    string
	Message string
	Status  int
	Err     error // the store's answer, for the log
}

func (e *ClientError) Error() string {
	return fmt.Sprintf("backend: %s: %s (%d): %s", e.Op, e.Code, e.Status, e.Message)
}

func (e *ClientError) Unwrap() error { return e.Err }

// MinPartSize is the smallest part other than the last one (AWS: 5 MiB).
const MinPartSize = 5 << 20

// MaxParts is the largest part number (AWS: 10000).
const MaxParts = 10000

// Metadata is what a client sets on an object and gets back unchanged.
type Metadata struct {
	ContentType        string `json:"contentType,omitempty"`
	ContentEncoding    string `json:"contentEncoding,omitempty"`
	ContentDisposition string `json:"contentDisposition,omitempty"`
	ContentLanguage    string `json:"contentLanguage,omitempty"`
	CacheControl       string `json:"cacheControl,omitempty"`
	Expires            string `json:"expires,omitempty"`
	// User holds x-amz-meta-* headers, keys lower-case without the prefix.
	User map[string]string `json:"user,omitempty"`
	// Tags is the object's tag set given with a write (PutObject,
	// CreateMultipartUpload, CopyObject with meta), stored with the object
	// atomically. Only a Tagger is given tags; reads leave Tags empty and
	// report ObjectInfo.TagCount (Tagger.GetObjectTagging returns them).
	Tags map[string]string `json:"tags,omitempty"`
}

// ObjectInfo describes a stored object.
type ObjectInfo struct {
	Key          string
	Size         int64
	ETag         string // without quotes: hex MD5, or "<hex>-<parts>" for multipart
	LastModified time.Time
	Metadata     Metadata
	// TagCount is the number of the object's tags, when the read reports
	// it (GetObject of every Tagger; HeadObject where the store says).
	TagCount int
	// VersionID is the object's version id in a store that keeps versions
	// (see Versioner); empty elsewhere.
	VersionID string
	// Lock is the version's object lock as the store reports it (see
	// ObjectLocker); nil when it has none.
	Lock *ObjectLock
}

// BucketInfo describes a bucket.
type BucketInfo struct {
	Name    string
	Created time.Time
}

// Range selects bytes [Start, Start+Length) of an object. Use ResolveRange
// to turn an HTTP Range header into one.
type Range struct {
	Start, Length int64
}

// ListOptions select keys in lexicographic (UTF-8 byte) order.
type ListOptions struct {
	Prefix    string
	Delimiter string
	// After is exclusive: only keys (and common prefixes) greater than it.
	After   string
	MaxKeys int // 0 means an empty page (AWS semantics); callers default to 1000
}

// ListResult is one page. NextAfter is the last key or common prefix
// returned, set when IsTruncated.
type ListResult struct {
	Objects        []ObjectInfo
	CommonPrefixes []string
	IsTruncated    bool
	NextAfter      string
}

// PartInfo describes an uploaded part.
type PartInfo struct {
	PartNumber   int
	ETag         string // without quotes
	Size         int64
	LastModified time.Time
}

// CompletePart names a part in CompleteMultipartUpload.
type CompletePart struct {
	PartNumber int
	ETag       string // quotes are ignored
}

// UploadInfo describes an in-progress multipart upload.
type UploadInfo struct {
	Key       string
	UploadID  string
	Initiated time.Time
}

// ListUploadsOptions select uploads ordered by (key, upload id).
type ListUploadsOptions struct {
	Prefix         string
	Delimiter      string
	KeyMarker      string
	UploadIDMarker string
	MaxUploads     int
}

// ListUploadsResult is one page of uploads.
type ListUploadsResult struct {
	Uploads            []UploadInfo
	CommonPrefixes     []string
	IsTruncated        bool
	NextKeyMarker      string
	NextUploadIDMarker string
}

// ListPartsResult is one page of parts.
type ListPartsResult struct {
	Parts                []PartInfo
	IsTruncated          bool
	NextPartNumberMarker int
}

// Backend stores buckets and objects. See the package documentation for
// the contract.
type Backend interface {
	ListBuckets(ctx context.Context) ([]BucketInfo, error)
	// HeadBucket returns ErrNoSuchBucket when the bucket does not exist.
	HeadBucket(ctx context.Context, bucket string) error

	// PutObject stores exactly size bytes read from body under key,
	// replacing any object there, atomically.
	PutObject(ctx context.Context, bucket, key string, body io.Reader, size int64, meta Metadata) (ObjectInfo, error)
	// GetObject opens the object, or the part of it rng selects (nil: all).
	// rng must lie within the object (see ResolveRange).
	GetObject(ctx context.Context, bucket, key string, rng *Range) (io.ReadCloser, ObjectInfo, error)
	HeadObject(ctx context.Context, bucket, key string) (ObjectInfo, error)
	// DeleteObject removes key; deleting a missing key is not an error.
	DeleteObject(ctx context.Context, bucket, key string) error
	// CopyObject copies src to dst. meta nil keeps the source's metadata.
	CopyObject(ctx context.Context, srcBucket, srcKey, dstBucket, dstKey string, meta *Metadata) (ObjectInfo, error)
	ListObjects(ctx context.Context, bucket string, opts ListOptions) (ListResult, error)

	CreateMultipartUpload(ctx context.Context, bucket, key string, meta Metadata) (uploadID string, err error)
	// UploadPart stores part partNumber (1..MaxParts), replacing a previous
	// upload of the same number.
	UploadPart(ctx context.Context, bucket, key, uploadID string, partNumber int, body io.Reader, size int64) (PartInfo, error)
	// CompleteMultipartUpload assembles the listed parts, in ascending part
	// order, into the object atomically and ends the upload.
	CompleteMultipartUpload(ctx context.Context, bucket, key, uploadID string, parts []CompletePart) (ObjectInfo, error)
	AbortMultipartUpload(ctx context.Context, bucket, key, uploadID string) error
	ListParts(ctx context.Context, bucket, key, uploadID string, after, max int) (ListPartsResult, error)
	ListMultipartUploads(ctx context.Context, bucket string, opts ListUploadsOptions) (ListUploadsResult, error)
}

// Precondition decides whether a write may replace (or a delete remove) the
// current object; current is nil when there is none. A non-nil error aborts
// the operation and is returned as is.
type Precondition func(current *ObjectInfo) error

// ConditionalWriter is an optional capability: writes whose precondition is
// checked atomically with publishing (If-Match / If-None-Match). An
// implementation evaluates cond under a lock that every write and delete of
// the same key takes, after the body is staged and right before the object
// is published; if cond fails nothing changes. Callers type-assert for it and
// otherwise serialize conditional writes themselves.
type ConditionalWriter interface {
	PutObjectIf(ctx context.Context, bucket, key string, body io.Reader, size int64, meta Metadata, cond Precondition) (ObjectInfo, error)
	CompleteMultipartUploadIf(ctx context.Context, bucket, key, uploadID string, parts []CompletePart, cond Precondition) (ObjectInfo, error)
	DeleteObjectIf(ctx context.Context, bucket, key string, cond Precondition) error
}

// Unchanged is a condition a remote store checks atomically with publishing
// a write: the key is still absent (Absent), or still holds the object with
// ETag (If-None-Match: * or If-Match: "<ETag>" on the S3 wire).
type Unchanged struct {
	Absent bool
	ETag   string
}

// UnchangedWriter is an optional capability of backends in front of a store
// that checks conditional writes itself (the s3 backend: S3 If-Match /
// If-None-Match). The gateway checks a request's precondition first and then
// asks the store to publish only if the object is as that check saw it, so
// conditional writes stay atomic across gateway processes. Each method
// returns ErrPreconditionFailed, having changed nothing, when the object
// changed. WritesIfUnchanged reports whether the methods can be used in the
// backend's configuration; when it is false the caller serializes
// conditional writes itself.
type UnchangedWriter interface {
	WritesIfUnchanged() bool
	PutObjectIfUnchanged(ctx context.Context, bucket, key string, body io.Reader, size int64, meta Metadata, u Unchanged) (ObjectInfo, error)
	CompleteMultipartUploadIfUnchanged(ctx context.Context, bucket, key, uploadID string, parts []CompletePart, u Unchanged) (ObjectInfo, error)
	DeleteObjectIfUnchanged(ctx context.Context, bucket, key string, u Unchanged) error
}

// Tagger is an optional capability: object tags, kept with the object. A
// Tagger stores Metadata.Tags with every write that carries them, copies
// the source's tags in CopyObject with meta nil, and counts them in
// ObjectInfo.TagCount on GetObject. Callers type-assert for it; a backend
// without it is never given tags (the gateway refuses them as
// NotImplemented rather than drop them).
type Tagger interface {
	// GetObjectTagging returns the object's tags (empty when it has none);
	// ErrNoSuchKey when there is no object.
	GetObjectTagging(ctx context.Context, bucket, key string) (map[string]string, error)
	// PutObjectTagging replaces the object's tags with tags (empty: none),
	// atomically, leaving its data, metadata and ETag as they are;
	// ErrNoSuchKey when there is no object.
	PutObjectTagging(ctx context.Context, bucket, key string, tags map[string]string) error
}

// BucketAdmin is an optional capability: creating and removing buckets
// (the gateway's CreateBucket and DeleteBucket, s3.buckets at start, tests).
// Callers type-assert for it.
type BucketAdmin interface {
	// CreateBucket creates an empty bucket. It returns ErrBucketExists when
	// the bucket is already there (nothing changes) and ErrBucketTaken when
	// the store gives the name to another account. See EnsureBucket.
	CreateBucket(ctx context.Context, bucket string) error
	// DeleteBucket removes an empty bucket: ErrNoSuchBucket when there is
	// none, ErrBucketNotEmpty when it holds objects (nothing changes).
	DeleteBucket(ctx context.Context, bucket string) error
}

// EnsureBucket creates bucket unless it is already there.
func EnsureBucket(ctx context.Context, a BucketAdmin, bucket string) error {
	if err := a.CreateBucket(ctx, bucket); err != nil && !errors.Is(err, ErrBucketExists) {
		return err
	}
	return nil
}
