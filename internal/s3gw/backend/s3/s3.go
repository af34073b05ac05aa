// Package s3 is the storage backend for any S3-compatible endpoint (AWS S3,
// versitygw, MinIO, Ceph RGW), reached with the location's storage
// credential: GetObject, HeadObject and PutObject as plain requests signed
// by sigv4.Signer (path style; see leanClient), everything else through
// aws-sdk-go-v2. Bodies stream through: uploads are sent
// with UNSIGNED-PAYLOAD and an exact Content-Length (the gateway has already
// verified the client's signature), so nothing is buffered or re-read.
package s3

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	smithyauth "github.com/aws/smithy-go/auth"
	smithyendpoints "github.com/aws/smithy-go/endpoints"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/gatehouse-dev/gatehouse/internal/s3gw/backend"
	"github.com/gatehouse-dev/gatehouse/internal/s3name"
)

// Options configure the backend.
type Options struct {
	Endpoint        string // e.g. http://127.0.0.1:7070; required
	Region          string // default us-east-1
	AccessKeyID     string // required
	SecretAccessKey string // required
	SessionToken    string
	// VirtualHosted selects virtual-hosted-style requests; the default is
	// path style, which every S3-compatible server supports.
	VirtualHosted bool
	HTTPClient    *http.Client // default: a client with no overall timeout
	// StageUploads writes each PutObject to a staging key first and
	// publishes it with a server-side copy once the whole body has been
	// verified. Use it for servers that commit a truncated body when the
	// upload is aborted (versitygw v1.8.0 does; AWS S3 does not): it keeps
	// "a write lands whole or not at all" at the cost of a server-side copy.
	StageUploads bool
}

// StagingPrefix holds staged uploads (StageUploads); listings hide it and
// the gateway refuses keys under it.
const StagingPrefix = ".gatehouse-staging/"

// Validate checks the options without I/O.
func (o Options) Validate() error {
	var errs []error
	if u, err := url.Parse(o.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("endpoint %q must be an http(s) URL", o.Endpoint))
	}
	if o.AccessKeyID == "" || o.SecretAccessKey == "" {
		errs = append(errs, errors.New("access key id and secret access key are required"))
	}
	if len(errs) > 0 {
		return fmt.Errorf("s3 backend: %w", errors.Join(errs...))
	}
	return nil
}

// Backend forwards to an S3-compatible endpoint. Safe for concurrent use.
type Backend struct {
	c     *awss3.Client
	lean  *leanClient // GetObject, HeadObject, PutObject with path style; nil: all through c
	stage bool
}

var (
	_ backend.UnchangedWriter = (*Backend)(nil)
	_ backend.Backend         = (*Backend)(nil)
	_ backend.BucketAdmin     = (*Backend)(nil)
	_ backend.Tagger          = (*Backend)(nil)
)

// New validates o and returns a Backend. It does not contact the endpoint.
func New(o Options) (*Backend, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.Region == "" {
		o.Region = "us-east-1"
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Transport: &http.Transport{
			Proxy:                 nil,
			MaxIdleConnsPerHost:   64,
			IdleConnTimeout:       90 * time.Second,
			ResponseHeaderTimeout: 5 * time.Minute,
		}}
	}
	creds := aws.Credentials{AccessKeyID: o.AccessKeyID, SecretAccessKey: o.SecretAccessKey, SessionToken: o.SessionToken, Source: "gatehouse"}
	var resolver awss3.EndpointResolverV2
	var lean *leanClient
	if !o.VirtualHosted {
		u, err := url.Parse(o.Endpoint)
		if err != nil {
			return nil, fmt.Errorf("s3 backend: endpoint: %w", err)
		}
		resolver = &pathStyleEndpoint{base: *u, region: o.Region}
		if lean, err = newLeanClient(o, o.HTTPClient); err != nil {
			return nil, fmt.Errorf("s3 backend: %w", err)
		}
	}
	c := awss3.New(awss3.Options{
		EndpointResolverV2:         resolver,
		Region:                     o.Region,
		BaseEndpoint:               aws.String(o.Endpoint),
		UsePathStyle:               !o.VirtualHosted,
		HTTPClient:                 o.HTTPClient,
		Credentials:                aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) { return creds, nil }),
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenRequired,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenRequired,
		RetryMaxAttempts:           3,
	})
	return &Backend{c: c, lean: lean, stage: o.StageUploads}, nil
}

// pathStyleEndpoint resolves every request to <endpoint>/<bucket> with
// SigV4 for service s3 in the backend's region and no double encoding of the
// path: what the SDK's rules engine resolves for a custom endpoint with
// path-style addressing, without evaluating the rule set for every call
// (about half the SDK's CPU for a small GET). Bucket names are validated
// (checkBucket) before any call.
type pathStyleEndpoint struct {
	base   url.URL
	region string
}

func (p *pathStyleEndpoint) ResolveEndpoint(_ context.Context, in awss3.EndpointParameters) (smithyendpoints.Endpoint, error) {
	u := p.base
	if in.Bucket != nil && *in.Bucket != "" {
		// Both forms: the SDK joins the key onto Path and RawPath alike.
		u.Path = strings.TrimSuffix(p.base.Path, "/") + "/" + *in.Bucket
		u.RawPath = strings.TrimSuffix(p.base.EscapedPath(), "/") + "/" + *in.Bucket
	}
	// Fresh properties per call: the SDK writes into them.
	var sp smithy.Properties
	smithyhttp.SetDisableDoubleEncoding(&sp, true)
	smithyhttp.SetSigV4SigningName(&sp, "s3")
	smithyhttp.SetSigV4SigningRegion(&sp, p.region)
	var props smithy.Properties
	smithyauth.SetAuthOptions(&props, []*smithyauth.Option{{SchemeID: "sigv4", SignerProperties: sp}})
	return smithyendpoints.Endpoint{URI: u, Headers: http.Header{}, Properties: props}, nil
}

// Client exposes the SDK client (tests, bucket setup).
func (b *Backend) Client() *awss3.Client { return b.c }

// streaming makes an upload call send its body once, unsigned and unretried.
func streaming(o *awss3.Options) {
	o.RetryMaxAttempts = 1
	o.APIOptions = append(o.APIOptions, func(s *middleware.Stack) error {
		return v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware(s)
	})
}

// mapErr classifies SDK errors into backend sentinels; anything else is the
// endpoint failing (503 to the gateway's client).
func mapErr(op string, err error, notFound error) error {
	if err == nil {
		return nil
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "NoSuchBucket":
			return fmt.Errorf("%w: %s", backend.ErrNoSuchBucket, op)
		case "NoSuchKey":
			return fmt.Errorf("%w: %s", backend.ErrNoSuchKey, op)
		case "NotFound":
			if notFound != nil {
				return fmt.Errorf("%w: %s", notFound, op)
			}
		case "NoSuchUpload":
			return fmt.Errorf("%w: %s", backend.ErrNoSuchUpload, op)
		case "InvalidPart":
			return fmt.Errorf("%w: %s", backend.ErrInvalidPart, op)
		case "InvalidPartOrder":
			return fmt.Errorf("%w: %s", backend.ErrInvalidOrder, op)
		case "EntityTooSmall":
			return fmt.Errorf("%w: %s", backend.ErrEntityTooSmall, op)
		case "InvalidRange":
			return fmt.Errorf("%w: %s", backend.ErrInvalidRange, op)
		case "PreconditionFailed", "ConditionalRequestConflict":
			return fmt.Errorf("%w: %s", backend.ErrPreconditionFailed, op)
		case "BucketAlreadyOwnedByYou":
			return fmt.Errorf("%w: %s", backend.ErrBucketExists, op)
		case "BucketAlreadyExists":
			return fmt.Errorf("%w: %s", backend.ErrBucketTaken, op)
		case "BucketNotEmpty":
			return fmt.Errorf("%w: %s", backend.ErrBucketNotEmpty, op)
		}
		if ce := clientError(op, ae, err); ce != nil {
			return ce
		}
	}
	return fmt.Errorf("s3 backend: %s: %w", op, err)
}

// storeCredentialCodes are the 4xx codes with which a store refuses the
// backend's own credentials or clock: a configuration fault, not the client's.
var storeCredentialCodes = map[string]bool{
	"InvalidAccessKeyId": true, "SignatureDoesNotMatch": true, "ExpiredToken": true, "InvalidToken": true,
	"TokenRefreshRequired": true, "AuthorizationHeaderMalformed": true, "RequestTimeTooSkewed": true,
	"InvalidSecurity": true, "MissingSecurityHeader": true,
}

// clientError returns the store's 4xx answer as a backend.ClientError, or
// nil when it is not one the client caused.
func clientError(op string, ae smithy.APIError, err error) *backend.ClientError {
	var re *awshttp.ResponseError
	if !errors.As(err, &re) {
		return nil
	}
	st := re.HTTPStatusCode()
	if st < 400 || st >= 500 || st == http.StatusTooManyRequests || storeCredentialCodes[ae.ErrorCode()] {
		return nil
	}
	msg := ae.ErrorMessage()
	if msg == "" {
		msg = http.StatusText(st) // HEAD answers carry no body
	}
	return &backend.ClientError{Op: op, Code: ae.ErrorCode(), Message: msg, Status: st, Err: err}
}

func str(p *string) string { return aws.ToString(p) }

func randomID() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func etag(p *string) string { return strings.Trim(aws.ToString(p), `"`) }

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func checkObject(bucket, key string) error {
	if err := s3name.Bucket(bucket); err != nil {
		return err
	}
	return s3name.Key(key)
}

func parseExpires(s string) *time.Time {
	if s == "" {
		return nil
	}
	t, err := http.ParseTime(s)
	if err != nil {
		return nil
	}
	return &t
}

// ListBuckets lists the endpoint's buckets.
func (b *Backend) ListBuckets(ctx context.Context) ([]backend.BucketInfo, error) {
	out, err := b.c.ListBuckets(ctx, &awss3.ListBucketsInput{})
	if err != nil {
		return nil, mapErr("list buckets", err, nil)
	}
	res := make([]backend.BucketInfo, 0, len(out.Buckets))
	for _, bk := range out.Buckets {
		res = append(res, backend.BucketInfo{Name: str(bk.Name), Created: aws.ToTime(bk.CreationDate)})
	}
	return res, nil
}

// HeadBucket checks the bucket exists.
func (b *Backend) HeadBucket(ctx context.Context, bucket string) error {
	if err := s3name.Bucket(bucket); err != nil {
		return err
	}
	_, err := b.c.HeadBucket(ctx, &awss3.HeadBucketInput{Bucket: &bucket})
	return mapErr("head bucket", err, backend.ErrNoSuchBucket)
}

// CreateBucket creates the bucket on the endpoint (backend.BucketAdmin).
func (b *Backend) CreateBucket(ctx context.Context, bucket string) error {
	if err := s3name.Bucket(bucket); err != nil {
		return err
	}
	_, err := b.c.CreateBucket(ctx, &awss3.CreateBucketInput{Bucket: &bucket})
	return mapErr("create bucket", err, nil)
}

// DeleteBucket removes an empty bucket.
func (b *Backend) DeleteBucket(ctx context.Context, bucket string) error {
	if err := s3name.Bucket(bucket); err != nil {
		return err
	}
	if b.stage {
		b.purgeStaging(ctx, bucket)
	}
	_, err := b.c.DeleteBucket(ctx, &awss3.DeleteBucketInput{Bucket: &bucket})
	return mapErr("delete bucket", err, backend.ErrNoSuchBucket)
}

// purgeStaging removes what failed staged uploads may have left under
// StagingPrefix in bucket (objects, versions and delete markers that no
// listing of the gateway shows), so that a bucket the caller sees empty can
// be deleted. An upload still in flight to the bucket then fails to publish;
// the bucket is being deleted. Best effort: DeleteBucket reports what stays.
func (b *Backend) purgeStaging(ctx context.Context, bucket string) {
	prefix := StagingPrefix
	in := &awss3.ListObjectVersionsInput{Bucket: &bucket, Prefix: &prefix}
	for range 100 { // at most 100,000 leftovers per call
		out, err := b.c.ListObjectVersions(ctx, in)
		if err != nil {
			break
		}
		for _, v := range out.Versions {
			b.c.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: &bucket, Key: v.Key, VersionId: nonEmpty(str(v.VersionId))})
		}
		for _, d := range out.DeleteMarkers {
			b.c.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: &bucket, Key: d.Key, VersionId: nonEmpty(str(d.VersionId))})
		}
		if !aws.ToBool(out.IsTruncated) {
			break
		}
		in.KeyMarker, in.VersionIdMarker = out.NextKeyMarker, out.NextVersionIdMarker
	}
	lin := &awss3.ListObjectsV2Input{Bucket: &bucket, Prefix: &prefix}
	for range 100 {
		out, err := b.c.ListObjectsV2(ctx, lin)
		if err != nil {
			return
		}
		for _, o := range out.Contents {
			b.c.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: &bucket, Key: o.Key})
		}
		if !aws.ToBool(out.IsTruncated) {
			return
		}
		lin.ContinuationToken = out.NextContinuationToken
	}
}

// PutObject streams body to the endpoint.
func (b *Backend) PutObject(ctx context.Context, bucket, key string, body io.Reader, size int64, meta backend.Metadata) (backend.ObjectInfo, error) {
	return b.putObject(ctx, bucket, key, body, size, meta, nil, nil)
}

// WritesIfUnchanged: the endpoint checks If-Match / If-None-Match itself,
// except with StageUploads, where the object is published by CopyObject
// (whose destination conditions not every S3 server honours: versitygw
// v1.8.0 ignores them).
func (b *Backend) WritesIfUnchanged() bool { return !b.stage }

// PutObjectIfUnchanged is PutObject with the endpoint checking u atomically.
func (b *Backend) PutObjectIfUnchanged(ctx context.Context, bucket, key string, body io.Reader, size int64, meta backend.Metadata, u backend.Unchanged) (backend.ObjectInfo, error) {
	if b.stage {
		return backend.ObjectInfo{}, errors.New("s3 backend: conditional writes with StageUploads are not atomic at the endpoint")
	}
	return b.putObject(ctx, bucket, key, body, size, meta, &u, nil)
}

// CompleteMultipartUploadIfUnchanged is CompleteMultipartUpload with the
// endpoint checking u atomically.
func (b *Backend) CompleteMultipartUploadIfUnchanged(ctx context.Context, bucket, key, uploadID string, parts []backend.CompletePart, u backend.Unchanged) (backend.ObjectInfo, error) {
	return b.completeMultipartUpload(ctx, bucket, key, uploadID, parts, &u)
}

// DeleteObjectIfUnchanged deletes the key if it still holds u.ETag (an
// absent key is left absent).
func (b *Backend) DeleteObjectIfUnchanged(ctx context.Context, bucket, key string, u backend.Unchanged) error {
	if err := checkObject(bucket, key); err != nil {
		return err
	}
	if u.Absent {
		return nil
	}
	ifMatch, _ := ifUnchanged(&u)
	_, err := b.c.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: &bucket, Key: &key, IfMatch: ifMatch})
	return mapErr("delete object", err, nil)
}

// ifUnchanged returns the If-Match / If-None-Match values for u (nil: none).
func ifUnchanged(u *backend.Unchanged) (ifMatch, ifNoneMatch *string) {
	switch {
	case u == nil:
		return nil, nil
	case u.Absent:
		return nil, aws.String("*")
	}
	return aws.String(`"` + u.ETag + `"`), nil
}

// putObject writes key, with lock (nil: none) on the new version; u (nil:
// none) is checked by the endpoint. With StageUploads the body goes to a
// staging key, is published by a server-side copy once verified, and the
// staging version is then removed for good (by its version id, so that a
// versioned bucket keeps neither it nor a delete marker).
func (b *Backend) putObject(ctx context.Context, bucket, key string, body io.Reader, size int64, meta backend.Metadata, u *backend.Unchanged, lock *backend.ObjectLock) (backend.ObjectInfo, error) {
	if err := checkObject(bucket, key); err != nil {
		return backend.ObjectInfo{}, err
	}
	target := key
	putLock := lock
	if b.stage {
		target = StagingPrefix + randomID()
		putLock = nil // the lock goes on the published copy
	}
	er := &exactReader{r: body, left: size}
	sent, err := b.sendPut(ctx, bucket, target, er, size, meta, u, putLock)
	if er.err != nil {
		if b.stage {
			b.dropStaged(context.WithoutCancel(ctx), bucket, target)
		}
		return backend.ObjectInfo{}, er.err // the body failed: the endpoint saw a truncated request
	}
	if err != nil {
		if b.stage {
			b.dropStaged(context.WithoutCancel(ctx), bucket, target)
		}
		return backend.ObjectInfo{}, mapRefused("put object", err, nil)
	}
	info := backend.ObjectInfo{Key: key, Size: size, ETag: sent.etag, LastModified: time.Now().UTC(), Metadata: meta,
		VersionID: sent.versionID, TagCount: len(meta.Tags)}
	info.Metadata.Tags = nil
	if b.stage {
		// The body is verified: publish it, then drop the staging version.
		defer b.dropPublished(context.WithoutCancel(ctx), bucket, target, sent.versionID)
		cp := &awss3.CopyObjectInput{Bucket: &bucket, Key: &key, CopySource: aws.String(copySource(bucket, target))}
		if len(meta.Tags) > 0 {
			cp.TaggingDirective, cp.Tagging = types.TaggingDirectiveReplace, encodeTags(meta.Tags)
		}
		lockCopy(cp, lock)
		cout, err := b.c.CopyObject(ctx, cp)
		if err != nil {
			return backend.ObjectInfo{}, mapRefused("publish staged object", err, nil)
		}
		info.VersionID = str(cout.VersionId)
	}
	return info, nil
}

// putResult is what a PutObject answered: the new object's ETag and, in a
// versioned bucket, its version id.
type putResult struct{ etag, versionID string }

// sendPut sends one PutObject of body (streamed once, unsigned, unretried),
// with lock (nil: none) on the new version: on the lean path when there is
// one and no lock is asked for, else through the SDK.
func (b *Backend) sendPut(ctx context.Context, bucket, key string, body io.Reader, size int64, meta backend.Metadata, u *backend.Unchanged, lock *backend.ObjectLock) (putResult, error) {
	if b.lean != nil && lock == nil {
		return b.lean.putObject(ctx, bucket, key, body, size, meta, u)
	}
	ifMatch, ifNoneMatch := ifUnchanged(u)
	in := &awss3.PutObjectInput{
		Bucket: &bucket, Key: &key, Body: body, ContentLength: aws.Int64(size),
		ContentType: nonEmpty(meta.ContentType), ContentEncoding: nonEmpty(meta.ContentEncoding),
		ContentDisposition: nonEmpty(meta.ContentDisposition), ContentLanguage: nonEmpty(meta.ContentLanguage),
		CacheControl: nonEmpty(meta.CacheControl), Expires: parseExpires(meta.Expires), Metadata: meta.User,
		Tagging: encodeTags(meta.Tags), IfMatch: ifMatch, IfNoneMatch: ifNoneMatch,
	}
	lockPut(in, lock)
	out, err := b.c.PutObject(ctx, in, streaming)
	if err != nil {
		return putResult{}, err
	}
	return putResult{etag: etag(out.ETag), versionID: str(out.VersionId)}, nil
}

// dropPublished removes the staging copy of a published upload: by its
// version id when the bucket gave one (versioning enabled: no delete marker
// is left), else as dropStaged does (unversioned or suspended buckets, where
// a plain delete could leave a null delete marker behind).
func (b *Backend) dropPublished(ctx context.Context, bucket, target, versionID string) {
	if versionID != "" && versionID != "null" {
		b.c.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: &bucket, Key: &target, VersionId: &versionID})
		return
	}
	b.dropStaged(ctx, bucket, target)
}

// dropStaged removes, as far as the endpoint has committed it, what a
// failed staged upload left under its staging key: the object, and in a
// versioned bucket every version of that key (by id, so that no delete
// marker is left either). Best effort: an endpoint that commits a truncated
// body after the failed request has returned (versitygw v1.8.0 may) can
// still leave a hidden version, which listings never show.
func (b *Backend) dropStaged(ctx context.Context, bucket, target string) {
	b.c.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: &bucket, Key: &target})
	out, err := b.c.ListObjectVersions(ctx, &awss3.ListObjectVersionsInput{Bucket: &bucket, Prefix: &target})
	if err != nil {
		return
	}
	for _, v := range out.Versions {
		if str(v.Key) == target && str(v.VersionId) != "" {
			b.c.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: &bucket, Key: &target, VersionId: v.VersionId})
		}
	}
	for _, d := range out.DeleteMarkers {
		if str(d.Key) == target && str(d.VersionId) != "" {
			b.c.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: &bucket, Key: &target, VersionId: d.VersionId})
		}
	}
}

// exactReader passes through exactly left bytes and confirms the source's
// EOF before handing out the last of them, so that a verifying reader (SigV4
// payload hash, chunk signatures, digests) reports its verdict while the
// upstream request is still incomplete: a failure then aborts the request
// and the endpoint never commits the object. An error sticks.
type exactReader struct {
	r    io.Reader
	left int64
	done bool
	err  error
}

func (e *exactReader) fail(err error) (int, error) {
	e.err = err
	return 0, err
}

func (e *exactReader) Read(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	if e.left == 0 {
		if !e.done {
			if err := probeEOF(e.r); err != nil {
				return e.fail(err)
			}
			e.done = true
		}
		return 0, io.EOF
	}
	if int64(len(p)) > e.left {
		p = p[:e.left]
	}
	n, err := e.r.Read(p)
	e.left -= int64(n)
	switch {
	case err != nil && !errors.Is(err, io.EOF):
		return e.fail(err)
	case e.left == 0:
		if !errors.Is(err, io.EOF) {
			if perr := probeEOF(e.r); perr != nil {
				return e.fail(perr)
			}
		}
		e.done = true
		return n, nil
	case errors.Is(err, io.EOF):
		return e.fail(backend.ErrIncompleteBody)
	}
	return n, nil
}

// probeEOF reads r expecting io.EOF and nothing else.
func probeEOF(r io.Reader) error {
	var one [1]byte
	for range 64 {
		n, err := r.Read(one[:])
		if n > 0 {
			return errors.New("s3 backend: body longer than its declared size")
		}
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
	}
	return io.ErrNoProgress
}

func objectInfo(key string, size *int64, et *string, lm *time.Time, ct, ce, cd, cl, cc, exp *string, user map[string]string) backend.ObjectInfo {
	return backend.ObjectInfo{
		Key: key, Size: aws.ToInt64(size), ETag: etag(et), LastModified: aws.ToTime(lm).UTC(),
		Metadata: backend.Metadata{
			ContentType: str(ct), ContentEncoding: str(ce), ContentDisposition: str(cd),
			ContentLanguage: str(cl), CacheControl: str(cc), Expires: str(exp), User: lowerKeys(user),
		},
	}
}

func lowerKeys(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[strings.ToLower(k)] = v
	}
	return out
}

// GetObject streams the object (or a range of it) from the endpoint.
func (b *Backend) GetObject(ctx context.Context, bucket, key string, rng *backend.Range) (io.ReadCloser, backend.ObjectInfo, error) {
	return b.getObject(ctx, bucket, key, "", rng)
}

// getObject is GetObject of version versionID ("": the current one).
func (b *Backend) getObject(ctx context.Context, bucket, key, versionID string, rng *backend.Range) (io.ReadCloser, backend.ObjectInfo, error) {
	if err := checkObject(bucket, key); err != nil {
		return nil, backend.ObjectInfo{}, err
	}
	if rng != nil && rng.Length <= 0 {
		return nil, backend.ObjectInfo{}, backend.ErrInvalidRange
	}
	if b.lean != nil && versionID == "" {
		body, info, err := b.lean.getObject(ctx, bucket, key, rng)
		if err != nil {
			return nil, backend.ObjectInfo{}, mapErr("get object", err, backend.ErrNoSuchKey)
		}
		return body, info, nil
	}
	in := &awss3.GetObjectInput{Bucket: &bucket, Key: &key, VersionId: nonEmpty(versionID)}
	if rng != nil {
		in.Range = aws.String(fmt.Sprintf("bytes=%d-%d", rng.Start, rng.Start+rng.Length-1))
	}
	out, err := b.c.GetObject(ctx, in)
	if err != nil {
		if versionID != "" {
			return nil, backend.ObjectInfo{}, mapRefused("get object version", err, backend.ErrNoSuchKey)
		}
		return nil, backend.ObjectInfo{}, mapErr("get object", err, backend.ErrNoSuchKey)
	}
	info := objectInfo(key, out.ContentLength, out.ETag, out.LastModified, out.ContentType, out.ContentEncoding,
		out.ContentDisposition, out.ContentLanguage, out.CacheControl, out.ExpiresString, out.Metadata)
	info.TagCount = int(aws.ToInt32(out.TagCount))
	info.VersionID = str(out.VersionId)
	info.Lock = lockOf(out.ObjectLockMode, out.ObjectLockRetainUntilDate, out.ObjectLockLegalHoldStatus)
	if rng != nil {
		// Size is the whole object's: from Content-Range "bytes a-b/size".
		info.Size = rangeTotal(str(out.ContentRange), info.Size)
	}
	return out.Body, info, nil
}

// HeadObject returns the object's info.
func (b *Backend) HeadObject(ctx context.Context, bucket, key string) (backend.ObjectInfo, error) {
	return b.headObject(ctx, bucket, key, "")
}

// headObject is HeadObject of version versionID ("": the current one).
func (b *Backend) headObject(ctx context.Context, bucket, key, versionID string) (backend.ObjectInfo, error) {
	if err := checkObject(bucket, key); err != nil {
		return backend.ObjectInfo{}, err
	}
	if b.lean != nil && versionID == "" {
		info, err := b.lean.headObject(ctx, bucket, key)
		return info, mapErr("head object", err, backend.ErrNoSuchKey)
	}
	out, err := b.c.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: &bucket, Key: &key, VersionId: nonEmpty(versionID)})
	if err != nil {
		if versionID != "" {
			return backend.ObjectInfo{}, mapRefused("head object version", err, backend.ErrNoSuchKey)
		}
		return backend.ObjectInfo{}, mapErr("head object", err, backend.ErrNoSuchKey)
	}
	info := objectInfo(key, out.ContentLength, out.ETag, out.LastModified, out.ContentType, out.ContentEncoding,
		out.ContentDisposition, out.ContentLanguage, out.CacheControl, out.ExpiresString, out.Metadata)
	info.VersionID = str(out.VersionId)
	info.Lock = lockOf(out.ObjectLockMode, out.ObjectLockRetainUntilDate, out.ObjectLockLegalHoldStatus)
	return info, nil
}

// DeleteObject deletes the key; a missing key is not an error.
func (b *Backend) DeleteObject(ctx context.Context, bucket, key string) error {
	if err := checkObject(bucket, key); err != nil {
		return err
	}
	_, err := b.c.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: &bucket, Key: &key})
	err = mapErr("delete object", err, nil)
	if errors.Is(err, backend.ErrNoSuchKey) {
		return nil
	}
	return err
}

func copySource(bucket, key string) string {
	segs := strings.Split(key, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return bucket + "/" + strings.Join(segs, "/")
}

// CopyObject copies server-side on the endpoint.
func (b *Backend) CopyObject(ctx context.Context, srcBucket, srcKey, dstBucket, dstKey string, meta *backend.Metadata) (backend.ObjectInfo, error) {
	if err := checkObject(srcBucket, srcKey); err != nil {
		return backend.ObjectInfo{}, err
	}
	if err := checkObject(dstBucket, dstKey); err != nil {
		return backend.ObjectInfo{}, err
	}
	in := &awss3.CopyObjectInput{Bucket: &dstBucket, Key: &dstKey, CopySource: aws.String(copySource(srcBucket, srcKey))}
	if meta != nil {
		in.MetadataDirective = types.MetadataDirectiveReplace
		in.ContentType, in.ContentEncoding = nonEmpty(meta.ContentType), nonEmpty(meta.ContentEncoding)
		in.ContentDisposition, in.ContentLanguage = nonEmpty(meta.ContentDisposition), nonEmpty(meta.ContentLanguage)
		in.CacheControl, in.Expires, in.Metadata = nonEmpty(meta.CacheControl), parseExpires(meta.Expires), meta.User
		// The tags are the request's too (none when meta has none).
		in.TaggingDirective, in.Tagging = types.TaggingDirectiveReplace, encodeTags(meta.Tags)
		if in.Tagging == nil {
			in.Tagging = aws.String("")
		}
	}
	if _, err := b.c.CopyObject(ctx, in); err != nil {
		return backend.ObjectInfo{}, mapErr("copy object", err, nil)
	}
	return b.HeadObject(ctx, dstBucket, dstKey)
}

// ListObjects lists keys through ListObjectsV2, resuming after opts.After.
func (b *Backend) ListObjects(ctx context.Context, bucket string, opts backend.ListOptions) (backend.ListResult, error) {
	var res backend.ListResult
	if err := s3name.Bucket(bucket); err != nil {
		return res, err
	}
	if opts.MaxKeys <= 0 {
		if err := b.HeadBucket(ctx, bucket); err != nil {
			return res, err
		}
		return res, nil
	}
	in := &awss3.ListObjectsV2Input{Bucket: &bucket, Prefix: nonEmpty(opts.Prefix), Delimiter: nonEmpty(opts.Delimiter),
		StartAfter: nonEmpty(opts.After), MaxKeys: aws.Int32(int32(min(opts.MaxKeys+1, 1000)))}
	type item struct {
		key string
		obj *types.Object
	}
	for {
		out, err := b.c.ListObjectsV2(ctx, in)
		if err != nil {
			return backend.ListResult{}, mapErr("list objects", err, backend.ErrNoSuchBucket)
		}
		items := make([]item, 0, len(out.Contents)+len(out.CommonPrefixes))
		for i := range out.Contents {
			if k := str(out.Contents[i].Key); !strings.HasPrefix(k, StagingPrefix) {
				items = append(items, item{k, &out.Contents[i]})
			}
		}
		for _, cp := range out.CommonPrefixes {
			if p := str(cp.Prefix); !strings.HasPrefix(p, StagingPrefix) {
				items = append(items, item{key: p})
			}
		}
		slices.SortFunc(items, func(a, b item) int { return strings.Compare(a.key, b.key) })
		for _, it := range items {
			if it.key <= opts.After {
				continue // a common prefix equal to After (resuming after it)
			}
			if len(res.Objects)+len(res.CommonPrefixes) >= opts.MaxKeys {
				res.IsTruncated = true
				return res, nil
			}
			if it.obj == nil {
				res.CommonPrefixes = append(res.CommonPrefixes, it.key)
			} else {
				res.Objects = append(res.Objects, backend.ObjectInfo{Key: it.key, Size: aws.ToInt64(it.obj.Size),
					ETag: etag(it.obj.ETag), LastModified: aws.ToTime(it.obj.LastModified).UTC()})
			}
			res.NextAfter = it.key
		}
		if !aws.ToBool(out.IsTruncated) || out.NextContinuationToken == nil {
			res.NextAfter = ""
			return res, nil
		}
		in.ContinuationToken = out.NextContinuationToken
		in.StartAfter = nil
	}
}

// CreateMultipartUpload starts an upload on the endpoint.
func (b *Backend) CreateMultipartUpload(ctx context.Context, bucket, key string, meta backend.Metadata) (string, error) {
	if err := checkObject(bucket, key); err != nil {
		return "", err
	}
	out, err := b.c.CreateMultipartUpload(ctx, &awss3.CreateMultipartUploadInput{
		Bucket: &bucket, Key: &key,
		ContentType: nonEmpty(meta.ContentType), ContentEncoding: nonEmpty(meta.ContentEncoding),
		ContentDisposition: nonEmpty(meta.ContentDisposition), ContentLanguage: nonEmpty(meta.ContentLanguage),
		CacheControl: nonEmpty(meta.CacheControl), Expires: parseExpires(meta.Expires), Metadata: meta.User,
		Tagging: encodeTags(meta.Tags),
	})
	if err != nil {
		return "", mapErr("create multipart upload", err, nil)
	}
	return str(out.UploadId), nil
}

// UploadPart streams one part.
func (b *Backend) UploadPart(ctx context.Context, bucket, key, uploadID string, partNumber int, body io.Reader, size int64) (backend.PartInfo, error) {
	if err := checkObject(bucket, key); err != nil {
		return backend.PartInfo{}, err
	}
	if partNumber < 1 || partNumber > backend.MaxParts {
		return backend.PartInfo{}, fmt.Errorf("%w: part number %d", backend.ErrInvalidPart, partNumber)
	}
	er := &exactReader{r: body, left: size}
	out, err := b.c.UploadPart(ctx, &awss3.UploadPartInput{Bucket: &bucket, Key: &key, UploadId: &uploadID,
		PartNumber: aws.Int32(int32(partNumber)), Body: er, ContentLength: aws.Int64(size)}, streaming)
	if er.err != nil {
		return backend.PartInfo{}, er.err
	}
	if err != nil {
		return backend.PartInfo{}, mapErr("upload part", err, backend.ErrNoSuchUpload)
	}
	return backend.PartInfo{PartNumber: partNumber, ETag: etag(out.ETag), Size: size, LastModified: time.Now().UTC()}, nil
}

// CompleteMultipartUpload completes the upload on the endpoint.
func (b *Backend) CompleteMultipartUpload(ctx context.Context, bucket, key, uploadID string, parts []backend.CompletePart) (backend.ObjectInfo, error) {
	return b.completeMultipartUpload(ctx, bucket, key, uploadID, parts, nil)
}

func (b *Backend) completeMultipartUpload(ctx context.Context, bucket, key, uploadID string, parts []backend.CompletePart, u *backend.Unchanged) (backend.ObjectInfo, error) {
	if err := checkObject(bucket, key); err != nil {
		return backend.ObjectInfo{}, err
	}
	cps := make([]types.CompletedPart, len(parts))
	for i, p := range parts {
		cps[i] = types.CompletedPart{PartNumber: aws.Int32(int32(p.PartNumber)), ETag: aws.String(`"` + strings.Trim(p.ETag, `"`) + `"`)}
	}
	ifMatch, ifNoneMatch := ifUnchanged(u)
	_, err := b.c.CompleteMultipartUpload(ctx, &awss3.CompleteMultipartUploadInput{Bucket: &bucket, Key: &key,
		UploadId: &uploadID, MultipartUpload: &types.CompletedMultipartUpload{Parts: cps}, IfMatch: ifMatch, IfNoneMatch: ifNoneMatch})
	if err != nil {
		return backend.ObjectInfo{}, mapErr("complete multipart upload", err, backend.ErrNoSuchUpload)
	}
	return b.HeadObject(ctx, bucket, key)
}

// AbortMultipartUpload aborts the upload on the endpoint.
func (b *Backend) AbortMultipartUpload(ctx context.Context, bucket, key, uploadID string) error {
	if err := checkObject(bucket, key); err != nil {
		return err
	}
	_, err := b.c.AbortMultipartUpload(ctx, &awss3.AbortMultipartUploadInput{Bucket: &bucket, Key: &key, UploadId: &uploadID})
	return mapErr("abort multipart upload", err, backend.ErrNoSuchUpload)
}

// ListParts lists the upload's parts after the given part number.
func (b *Backend) ListParts(ctx context.Context, bucket, key, uploadID string, after, max int) (backend.ListPartsResult, error) {
	if err := checkObject(bucket, key); err != nil {
		return backend.ListPartsResult{}, err
	}
	in := &awss3.ListPartsInput{Bucket: &bucket, Key: &key, UploadId: &uploadID, MaxParts: aws.Int32(int32(max))}
	if after > 0 {
		in.PartNumberMarker = aws.String(strconv.Itoa(after))
	}
	out, err := b.c.ListParts(ctx, in)
	if err != nil {
		return backend.ListPartsResult{}, mapErr("list parts", err, backend.ErrNoSuchUpload)
	}
	res := backend.ListPartsResult{IsTruncated: aws.ToBool(out.IsTruncated)}
	for _, p := range out.Parts {
		res.Parts = append(res.Parts, backend.PartInfo{PartNumber: int(aws.ToInt32(p.PartNumber)), ETag: etag(p.ETag),
			Size: aws.ToInt64(p.Size), LastModified: aws.ToTime(p.LastModified).UTC()})
	}
	if n := len(res.Parts); n > 0 {
		res.NextPartNumberMarker = res.Parts[n-1].PartNumber
	}
	return res, nil
}

// ListMultipartUploads lists the bucket's uploads on the endpoint.
func (b *Backend) ListMultipartUploads(ctx context.Context, bucket string, opts backend.ListUploadsOptions) (backend.ListUploadsResult, error) {
	if err := s3name.Bucket(bucket); err != nil {
		return backend.ListUploadsResult{}, err
	}
	out, err := b.c.ListMultipartUploads(ctx, &awss3.ListMultipartUploadsInput{Bucket: &bucket,
		Prefix: nonEmpty(opts.Prefix), Delimiter: nonEmpty(opts.Delimiter), KeyMarker: nonEmpty(opts.KeyMarker),
		UploadIdMarker: nonEmpty(opts.UploadIDMarker), MaxUploads: aws.Int32(int32(opts.MaxUploads))})
	if err != nil {
		return backend.ListUploadsResult{}, mapErr("list multipart uploads", err, backend.ErrNoSuchBucket)
	}
	res := backend.ListUploadsResult{IsTruncated: aws.ToBool(out.IsTruncated),
		NextKeyMarker: str(out.NextKeyMarker), NextUploadIDMarker: str(out.NextUploadIdMarker)}
	for _, u := range out.Uploads {
		res.Uploads = append(res.Uploads, backend.UploadInfo{Key: str(u.Key), UploadID: str(u.UploadId), Initiated: aws.ToTime(u.Initiated).UTC()})
	}
	for _, cp := range out.CommonPrefixes {
		res.CommonPrefixes = append(res.CommonPrefixes, str(cp.Prefix))
	}
	return res, nil
}

// encodeTags writes tags as the x-amz-tagging header: a URL query string,
// spaces as %20 (nil for none).
func encodeTags(tags map[string]string) *string {
	if len(tags) == 0 {
		return nil
	}
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var sb strings.Builder
	for i, k := range keys {
		if i > 0 {
			sb.WriteByte('&')
		}
		sb.WriteString(strings.ReplaceAll(url.QueryEscape(k), "+", "%20"))
		sb.WriteByte('=')
		sb.WriteString(strings.ReplaceAll(url.QueryEscape(tags[k]), "+", "%20"))
	}
	return aws.String(sb.String())
}

// GetObjectTagging reads the object's tags from the endpoint (Tagger).
func (b *Backend) GetObjectTagging(ctx context.Context, bucket, key string) (map[string]string, error) {
	if err := checkObject(bucket, key); err != nil {
		return nil, err
	}
	out, err := b.c.GetObjectTagging(ctx, &awss3.GetObjectTaggingInput{Bucket: &bucket, Key: &key})
	if err != nil {
		return nil, mapErr("get object tagging", err, backend.ErrNoSuchKey)
	}
	if len(out.TagSet) == 0 {
		return nil, nil
	}
	tags := make(map[string]string, len(out.TagSet))
	for _, t := range out.TagSet {
		tags[str(t.Key)] = str(t.Value)
	}
	return tags, nil
}

// PutObjectTagging replaces the object's tags on the endpoint, or deletes
// them when tags is empty (Tagger).
func (b *Backend) PutObjectTagging(ctx context.Context, bucket, key string, tags map[string]string) error {
	if err := checkObject(bucket, key); err != nil {
		return err
	}
	if len(tags) == 0 {
		_, err := b.c.DeleteObjectTagging(ctx, &awss3.DeleteObjectTaggingInput{Bucket: &bucket, Key: &key})
		return mapErr("delete object tagging", err, backend.ErrNoSuchKey)
	}
	set := make([]types.Tag, 0, len(tags))
	for k, v := range tags {
		set = append(set, types.Tag{Key: aws.String(k), Value: aws.String(v)})
	}
	slices.SortFunc(set, func(a, b types.Tag) int { return strings.Compare(*a.Key, *b.Key) })
	_, err := b.c.PutObjectTagging(ctx, &awss3.PutObjectTaggingInput{Bucket: &bucket, Key: &key, Tagging: &types.Tagging{TagSet: set}})
	return mapErr("put object tagging", err, backend.ErrNoSuchKey)
}
