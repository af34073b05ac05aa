package s3gw

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/stretchr/testify/require"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
)

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// onlyReader hides Seek so the SDK must stream (aws-chunked with a trailer).
type onlyReader struct{ io.Reader }

func TestSDKObjectLifecycle(t *testing.T) {
	t.Run("http", func(t *testing.T) { sdkObjectLifecycle(t, newEnv(t)) })
	// Over TLS the SDK sends its default CRC32 checksum in an aws-chunked
	// trailer (STREAMING-UNSIGNED-PAYLOAD-TRAILER).
	t.Run("https", func(t *testing.T) {
		e := newEnv(t, envOptions{tls: true})
		modes := recordPayloadModes(e)
		sdkObjectLifecycle(t, e)
		require.Contains(t, modes(), "STREAMING-UNSIGNED-PAYLOAD-TRAILER x-amz-checksum-crc32")
	})
}

func sdkObjectLifecycle(t *testing.T, e *env) {
	ctx := context.Background()
	c := e.client(e.creds("alice", roleARNs.admin, ""))

	// Default SDK upload: checksum (CRC32) in an aws-chunked trailer.
	data := bytes.Repeat([]byte("gatehouse "), 100_000)
	_, err := c.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String("data"), Key: aws.String("dir/obj.txt"),
		Body: bytes.NewReader(data), ContentType: aws.String("text/plain"), CacheControl: aws.String("max-age=60"),
		ContentDisposition: aws.String("inline"), Metadata: map[string]string{"owner": "alice", "Mixed-Case": "v"}})
	require.NoError(t, err)
	// Non-seekable body: the SDK streams with STREAMING-UNSIGNED-PAYLOAD-TRAILER.
	_, err = c.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String("data"), Key: aws.String("dir/stream.bin"),
		Body: onlyReader{bytes.NewReader(data)}, ContentLength: aws.Int64(int64(len(data)))},
		awss3.WithAPIOptions(v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware),
		func(o *awss3.Options) { o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired })
	require.NoError(t, err)
	if e.srv.TLS != nil {
		// Over TLS a non-seekable body goes as aws-chunked with a CRC32 trailer.
		_, err = c.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String("data"), Key: aws.String("dir/trailer.bin"),
			Body: onlyReader{bytes.NewReader(data)}, ContentLength: aws.Int64(int64(len(data)))})
		require.NoError(t, err)
	}
	// SHA-256 signed payload and Content-MD5, no trailer.
	_, err = c.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String("data"), Key: aws.String("dir/signed.bin"),
		Body: bytes.NewReader(data)}, func(o *awss3.Options) { o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired })
	require.NoError(t, err)

	got, err := c.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String("data"), Key: aws.String("dir/obj.txt")})
	require.NoError(t, err)
	body, _ := io.ReadAll(got.Body)
	got.Body.Close()
	require.Equal(t, data, body)
	require.Equal(t, "text/plain", aws.ToString(got.ContentType))
	require.Equal(t, "max-age=60", aws.ToString(got.CacheControl))
	require.Equal(t, "inline", aws.ToString(got.ContentDisposition))
	require.Equal(t, map[string]string{"owner": "alice", "mixed-case": "v"}, got.Metadata)

	rg, err := c.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String("data"), Key: aws.String("dir/stream.bin"), Range: aws.String("bytes=10-19")})
	require.NoError(t, err)
	body, _ = io.ReadAll(rg.Body)
	rg.Body.Close()
	require.Equal(t, "gatehouse ", string(body))
	require.Equal(t, fmt.Sprintf("bytes 10-19/%d", len(data)), aws.ToString(rg.ContentRange))

	head, err := c.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: aws.String("data"), Key: aws.String("dir/signed.bin")})
	require.NoError(t, err)
	require.Equal(t, int64(len(data)), aws.ToInt64(head.ContentLength))

	// Conditional requests.
	_, err = c.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String("data"), Key: aws.String("dir/obj.txt"), IfNoneMatch: head.ETag})
	require.Error(t, err)
	_, err = c.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String("data"), Key: aws.String("dir/obj.txt"), IfMatch: aws.String(`"nope"`)})
	require.Equal(t, "PreconditionFailed", apiCode(err))
	_, err = c.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String("data"), Key: aws.String("dir/obj.txt"), IfModifiedSince: aws.Time(time.Now().Add(time.Hour))})
	require.Error(t, err) // 304
	_, err = c.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: aws.String("data"), Key: aws.String("dir/obj.txt"), IfUnmodifiedSince: aws.Time(time.Now().Add(-time.Hour))})
	require.Error(t, err) // 412

	_, err = c.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String("data"), Key: aws.String("nope")})
	require.Equal(t, "NoSuchKey", apiCode(err))
	_, err = c.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String("data"), Key: aws.String("dir/obj.txt"), Range: aws.String("bytes=99999999-")})
	require.Equal(t, "InvalidRange", apiCode(err))

	// Copy, with and without replacing metadata.
	_, err = c.CopyObject(ctx, &awss3.CopyObjectInput{Bucket: aws.String("other"), Key: aws.String("copy 1.txt"), CopySource: aws.String("data/dir/obj.txt")})
	require.NoError(t, err)
	h2, err := c.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: aws.String("other"), Key: aws.String("copy 1.txt")})
	require.NoError(t, err)
	require.Equal(t, "alice", h2.Metadata["owner"])
	_, err = c.CopyObject(ctx, &awss3.CopyObjectInput{Bucket: aws.String("other"), Key: aws.String("copy2"), CopySource: aws.String("data/dir/obj.txt"),
		MetadataDirective: types.MetadataDirectiveReplace, Metadata: map[string]string{"new": "1"}, ContentType: aws.String("a/b")})
	require.NoError(t, err)
	h3, err := c.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: aws.String("other"), Key: aws.String("copy2")})
	require.NoError(t, err)
	require.Equal(t, map[string]string{"new": "1"}, h3.Metadata)
	require.Equal(t, "a/b", aws.ToString(h3.ContentType))

	// Listing: v2 with pagination and delimiter, v1, buckets, location.
	for i := range 5 {
		_, err := c.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String("data"), Key: aws.String(fmt.Sprintf("list/k+%d é", i)), Body: strings.NewReader("x")})
		require.NoError(t, err)
	}
	p := awss3.NewListObjectsV2Paginator(c, &awss3.ListObjectsV2Input{Bucket: aws.String("data"), Prefix: aws.String("list/"), MaxKeys: aws.Int32(2)})
	var keys []string
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		require.NoError(t, err)
		for _, o := range page.Contents {
			keys = append(keys, aws.ToString(o.Key))
		}
	}
	require.Equal(t, []string{"list/k+0 é", "list/k+1 é", "list/k+2 é", "list/k+3 é", "list/k+4 é"}, keys)
	lv, err := c.ListObjectsV2(ctx, &awss3.ListObjectsV2Input{Bucket: aws.String("data"), Delimiter: aws.String("/")})
	require.NoError(t, err)
	require.Len(t, lv.CommonPrefixes, 2)
	require.Equal(t, "dir/", aws.ToString(lv.CommonPrefixes[0].Prefix))
	l1, err := c.ListObjects(ctx, &awss3.ListObjectsInput{Bucket: aws.String("data"), Prefix: aws.String("dir/")})
	require.NoError(t, err)
	require.GreaterOrEqual(t, len(l1.Contents), 3)
	lb, err := c.ListBuckets(ctx, &awss3.ListBucketsInput{})
	require.NoError(t, err)
	var names []string
	for _, b := range lb.Buckets {
		names = append(names, aws.ToString(b.Name))
	}
	require.Subset(t, names, []string{"data", "other"})
	_, err = c.GetBucketLocation(ctx, &awss3.GetBucketLocationInput{Bucket: aws.String("data")})
	require.NoError(t, err)
	_, err = c.HeadBucket(ctx, &awss3.HeadBucketInput{Bucket: aws.String("data")})
	require.NoError(t, err)
	_, err = c.HeadBucket(ctx, &awss3.HeadBucketInput{Bucket: aws.String("nobucket")})
	require.Error(t, err)

	// DeleteObjects and DeleteObject.
	del, err := c.DeleteObjects(ctx, &awss3.DeleteObjectsInput{Bucket: aws.String("data"), Delete: &types.Delete{Objects: []types.ObjectIdentifier{
		{Key: aws.String("list/k+0 é")}, {Key: aws.String("list/k+1 é")}}}})
	require.NoError(t, err)
	require.Len(t, del.Deleted, 2)
	_, err = c.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: aws.String("data"), Key: aws.String("list/k+2 é")})
	require.NoError(t, err)
	lv, err = c.ListObjectsV2(ctx, &awss3.ListObjectsV2Input{Bucket: aws.String("data"), Prefix: aws.String("list/")})
	require.NoError(t, err)
	require.Len(t, lv.Contents, 2)

	// Presigned GET.
	ps := awss3.NewPresignClient(c)
	req, err := ps.PresignGetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String("data"), Key: aws.String("dir/obj.txt")},
		awss3.WithPresignExpires(5*time.Minute))
	require.NoError(t, err)
	resp, err := e.srv.Client().Get(req.URL)
	require.NoError(t, err)
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, data, body)
	resp, err = e.srv.Client().Get(strings.Replace(req.URL, "obj.txt", "obj.txx", 1))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusForbidden, resp.StatusCode)

	// Audit: a CloudTrail-shaped event naming the end user.
	evs := e.audit.find("GetObject")
	require.NotEmpty(t, evs)
	ev := evs[0]
	require.Equal(t, audit.CodeS3Access, ev.Code)
	require.Equal(t, "alice", ev.Actor.User)
	ct := ev.Details["cloudTrail"].(map[string]any)
	require.Equal(t, "GetObject", ct["eventName"])
	require.EqualValues(t, len(data), ct["bytesTransferred"])
	ui := ct["userIdentity"].(map[string]any)
	require.Equal(t, "AssumedRole", ui["type"])
	require.Equal(t, "arn:aws:sts::"+testAccount+":assumed-role/data-admin/alice", ui["arn"])
	require.Equal(t, "alice", ui["sourceIdentity"])
	rp := ct["requestParameters"].(map[string]any)
	require.Equal(t, "data", rp["bucketName"])
	require.Equal(t, "dir/obj.txt", rp["key"])
	rgEv := e.audit.find("GetObject")[1]
	require.Equal(t, "bytes=10-19", rgEv.Details["cloudTrail"].(map[string]any)["requestParameters"].(map[string]any)["range"])
}

func TestSDKMultipart(t *testing.T) { sdkMultipart(t, newEnv(t)) }

func sdkMultipart(t *testing.T, e *env) {
	ctx := context.Background()
	c := e.client(e.creds("alice", roleARNs.admin, ""))
	cr, err := c.CreateMultipartUpload(ctx, &awss3.CreateMultipartUploadInput{Bucket: aws.String("data"), Key: aws.String("mp/big.bin"),
		ContentType: aws.String("application/x-test"), Metadata: map[string]string{"k": "v"}})
	require.NoError(t, err)
	part1 := bytes.Repeat([]byte{1}, 5<<20)
	u1, err := c.UploadPart(ctx, &awss3.UploadPartInput{Bucket: aws.String("data"), Key: aws.String("mp/big.bin"), UploadId: cr.UploadId,
		PartNumber: aws.Int32(1), Body: bytes.NewReader(part1)})
	require.NoError(t, err)
	// Part 2 copied from an existing object's range.
	_, err = c.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String("data"), Key: aws.String("src"), Body: strings.NewReader("0123456789")})
	require.NoError(t, err)
	u2, err := c.UploadPartCopy(ctx, &awss3.UploadPartCopyInput{Bucket: aws.String("data"), Key: aws.String("mp/big.bin"), UploadId: cr.UploadId,
		PartNumber: aws.Int32(2), CopySource: aws.String("data/src"), CopySourceRange: aws.String("bytes=2-5")})
	require.NoError(t, err)

	lp, err := c.ListParts(ctx, &awss3.ListPartsInput{Bucket: aws.String("data"), Key: aws.String("mp/big.bin"), UploadId: cr.UploadId})
	require.NoError(t, err)
	require.Len(t, lp.Parts, 2)
	lu, err := c.ListMultipartUploads(ctx, &awss3.ListMultipartUploadsInput{Bucket: aws.String("data")})
	require.NoError(t, err)
	require.Len(t, lu.Uploads, 1)

	_, err = c.CompleteMultipartUpload(ctx, &awss3.CompleteMultipartUploadInput{Bucket: aws.String("data"), Key: aws.String("mp/big.bin"),
		UploadId: cr.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{
			{PartNumber: aws.Int32(1), ETag: u1.ETag}, {PartNumber: aws.Int32(2), ETag: u2.CopyPartResult.ETag}}}})
	require.NoError(t, err)
	got, err := c.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String("data"), Key: aws.String("mp/big.bin")})
	require.NoError(t, err)
	body, _ := io.ReadAll(got.Body)
	got.Body.Close()
	require.Equal(t, append(part1, []byte("2345")...), body)
	require.Equal(t, "v", got.Metadata["k"])
	require.True(t, strings.HasSuffix(strings.Trim(aws.ToString(got.ETag), `"`), "-2"))

	// Abort.
	cr2, err := c.CreateMultipartUpload(ctx, &awss3.CreateMultipartUploadInput{Bucket: aws.String("data"), Key: aws.String("mp/aborted")})
	require.NoError(t, err)
	_, err = c.AbortMultipartUpload(ctx, &awss3.AbortMultipartUploadInput{Bucket: aws.String("data"), Key: aws.String("mp/aborted"), UploadId: cr2.UploadId})
	require.NoError(t, err)
	_, err = c.ListParts(ctx, &awss3.ListPartsInput{Bucket: aws.String("data"), Key: aws.String("mp/aborted"), UploadId: cr2.UploadId})
	require.Equal(t, "NoSuchUpload", apiCode(err))
}

func TestVirtualHostedStyle(t *testing.T) {
	e := newEnv(t, envOptions{baseDomain: "s3.gatehouse.test"})
	ctx := context.Background()
	c := e.client(e.creds("alice", roleARNs.admin, ""), func(o *awss3.Options) {
		o.UsePathStyle = false
		o.BaseEndpoint = aws.String("http://s3.gatehouse.test")
		addr := strings.TrimPrefix(e.srv.URL, "http://")
		o.HTTPClient = &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		}}}
	})
	_, err := c.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String("data"), Key: aws.String("vh/key"), Body: strings.NewReader("vhost")})
	require.NoError(t, err)
	got, err := c.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String("data"), Key: aws.String("vh/key")})
	require.NoError(t, err)
	b, _ := io.ReadAll(got.Body)
	require.Equal(t, "vhost", string(b))
	lv, err := c.ListObjectsV2(ctx, &awss3.ListObjectsV2Input{Bucket: aws.String("data")})
	require.NoError(t, err)
	require.Len(t, lv.Contents, 1)
}

// recordPayloadModes records x-amz-content-sha256 and x-amz-trailer of
// every upload the server receives.
func recordPayloadModes(e *env) func() []string {
	var mu sync.Mutex
	var modes []string
	h := e.srv.Config.Handler
	e.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut {
			mu.Lock()
			modes = append(modes, r.Header.Get("X-Amz-Content-Sha256")+" "+r.Header.Get("X-Amz-Trailer"))
			mu.Unlock()
		}
		h.ServeHTTP(w, r)
	})
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return append([]string(nil), modes...)
	}
}
