package sigv4

import (
	"context"
	"net/http"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// benchRequest is a typical S3 GET as aws-sdk-go-v2 sends it: path-style
// key, a query, the SDK's headers, a session token.
func benchRequest() *http.Request {
	r, _ := http.NewRequest("GET", "https://gw.example.test/analytics-bucket/warehouse/sales/part-00042.parquet?versionId=3HL4kqtJlcpXroDTDmJ%2BrmSpXd3dIbrHY&partNumber=2", nil)
	r.URL.RawPath = "/analytics-bucket/warehouse/sales/part-00042.parquet"
	r.Header.Set("X-Amz-Content-Sha256", UnsignedPayload)
	r.Header.Set("Range", "bytes=0-1048575")
	r.Header.Set("User-Agent", "aws-sdk-go-v2/1.48.0 os/linux lang/go#1.26 api/s3#1.80.0")
	r.Header.Set("Amz-Sdk-Invocation-Id", "5f0a0e1c-0f61-4d4e-9a4c-6b1d4f1e2a3b")
	r.Header.Set("Amz-Sdk-Request", "attempt=1; max=3")
	r.Header.Set("Accept-Encoding", "identity")
	return r
}

var benchCreds = aws.Credentials{AccessKeyID: xAK, SecretAccessKey: xSecret, SessionToken: xToken}

// BenchmarkVerifyHeader: one full verification of a header-signed S3 GET,
// with the signing key cached (the steady state).
func BenchmarkVerifyHeader(b *testing.B) {
	r := benchRequest()
	signer := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
	if err := signer.SignHTTP(context.Background(), benchCreds, r, UnsignedPayload, "s3", "us-east-1", xTime); err != nil {
		b.Fatal(err)
	}
	sr := wireRoundTrip(b, r)
	v := mustVerifier(b, Config{Lookup: xLookup(), Service: "s3", Regions: []string{"us-east-1"}, Clock: fixedClock(xTime)})
	if _, err := v.Verify(sr); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := v.Verify(sr); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyPresign: the same request as a presigned URL.
func BenchmarkVerifyPresign(b *testing.B) {
	r := benchRequest()
	r.Header.Del("X-Amz-Content-Sha256")
	r.URL.RawQuery += "&X-Amz-Expires=3600"
	signer := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
	u, hdr, err := signer.PresignHTTP(context.Background(), benchCreds, r, UnsignedPayload, "s3", "us-east-1", xTime)
	if err != nil {
		b.Fatal(err)
	}
	nr, _ := http.NewRequest("GET", u, nil)
	for k, vs := range hdr {
		if k != "Host" {
			nr.Header[k] = vs
		}
	}
	sr := wireRoundTrip(b, nr)
	v := mustVerifier(b, Config{Lookup: xLookup(), Service: "s3", Regions: []string{"us-east-1"}, Clock: fixedClock(xTime)})
	if _, err := v.Verify(sr); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := v.Verify(sr); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSDKSign: the aws-sdk-go-v2 signer re-signing the same request
// (it caches its signing key too): the cost a verifier built on re-signing
// would pay.
func BenchmarkSDKSign(b *testing.B) {
	r := benchRequest()
	signer := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := signer.SignHTTP(ctx, benchCreds, r, UnsignedPayload, "s3", "us-east-1", xTime); err != nil {
			b.Fatal(err)
		}
	}
}
