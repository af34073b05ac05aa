package sigv4

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

func stsVerifier(t testing.TB, now time.Time, mutate ...func(*Config)) *Verifier {
	cfg := Config{Lookup: xLookup(), Service: "sts", Regions: []string{"us-east-1"}, Clock: fixedClock(now)}
	for _, m := range mutate {
		m(&cfg)
	}
	return mustVerifier(t, cfg)
}

// sdkSigned returns an STS-style POST signed by the SDK at signTime.
func sdkSigned(t testing.TB, signTime time.Time, token bool, edit func(*http.Request)) *http.Request {
	body := "Action=GetCallerIdentity&Version=2011-06-15"
	r, _ := http.NewRequest("POST", "https://sts.gw.test/", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	if edit != nil {
		edit(r)
	}
	creds := aws.Credentials{AccessKeyID: xAK, SecretAccessKey: xSecret}
	if token {
		creds.SessionToken = xToken
	}
	sum := sha256.Sum256([]byte(body))
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, r, hex.EncodeToString(sum[:]), "sts", "us-east-1", signTime); err != nil {
		t.Fatal(err)
	}
	return wireRoundTrip(t, r)
}

func sdkPresigned(t testing.TB, signTime time.Time, expires time.Duration, s3 bool) *http.Request {
	service := "sts"
	if s3 {
		service = "s3"
	}
	r, _ := http.NewRequest("GET", "https://gw.test/bucket/key", nil)
	r.URL.RawQuery = "X-Amz-Expires=" + strconv.FormatInt(int64(expires/time.Second), 10)
	creds := aws.Credentials{AccessKeyID: xAK, SecretAccessKey: xSecret, SessionToken: xToken}
	u, hdr, err := v4.NewSigner().PresignHTTP(context.Background(), creds, r, UnsignedPayload, service, "us-east-1", signTime)
	if err != nil {
		t.Fatal(err)
	}
	nr, _ := http.NewRequest("GET", u, nil)
	for k, vs := range hdr {
		if !strings.EqualFold(k, "host") {
			nr.Header[k] = vs
		}
	}
	return wireRoundTrip(t, nr)
}

func TestSkew(t *testing.T) {
	for _, tc := range []struct {
		offset time.Duration
		ok     bool
	}{
		{0, true}, {14 * time.Minute, true}, {-14 * time.Minute, true},
		{16 * time.Minute, false}, {-16 * time.Minute, false}, {24 * time.Hour, false},
	} {
		v := stsVerifier(t, xTime)
		_, err := v.Verify(sdkSigned(t, xTime.Add(tc.offset), false, nil))
		if tc.ok && err != nil {
			t.Errorf("offset %v: %v", tc.offset, err)
		}
		if !tc.ok {
			wantCode(t, err, CodeRequestTimeTooSkewed)
		}
	}
}

func TestPresignExpiry(t *testing.T) {
	s3 := func(c *Config) { c.Service, c.Mode = "s3", ModeS3 }
	// Valid inside the window.
	v := stsVerifier(t, xTime.Add(30*time.Minute), s3)
	res, err := v.Verify(sdkPresigned(t, xTime, time.Hour, true))
	if err != nil {
		t.Fatal(err)
	}
	if !res.Expires.Equal(xTime.Add(time.Hour)) {
		t.Fatalf("expires %v", res.Expires)
	}
	// Expired.
	v = stsVerifier(t, xTime.Add(61*time.Minute), s3)
	_, err = v.Verify(sdkPresigned(t, xTime, time.Hour, true))
	wantCode(t, err, CodeAccessDenied)
	if !strings.Contains(err.Error(), "Request has expired") {
		t.Fatalf("message: %v", err)
	}
	// Signed in the future beyond the skew.
	v = stsVerifier(t, xTime.Add(-20*time.Minute), s3)
	_, err = v.Verify(sdkPresigned(t, xTime, time.Hour, true))
	wantCode(t, err, CodeAccessDenied)
	// X-Amz-Expires bounds.
	for _, exp := range []time.Duration{0, 604801 * time.Second} {
		v = stsVerifier(t, xTime, s3)
		_, err = v.Verify(sdkPresigned(t, xTime, exp, true))
		wantCode(t, err, CodeAuthorizationQueryParametersError)
	}
	// 7 days is allowed, but capped by the credentials (which expire 12 h
	// after xTime): fine at +11 h, ExpiredToken at +13 h.
	v = stsVerifier(t, xTime.Add(11*time.Hour), s3)
	res, err = v.Verify(sdkPresigned(t, xTime, 7*24*time.Hour, true))
	if err != nil {
		t.Fatal(err)
	}
	if !res.Expires.Equal(xTime.Add(12 * time.Hour)) {
		t.Fatalf("presign expiry %v not capped by the credentials", res.Expires)
	}
	v = stsVerifier(t, xTime.Add(13*time.Hour), s3)
	_, err = v.Verify(sdkPresigned(t, xTime, 7*24*time.Hour, true))
	wantCode(t, err, CodeExpiredToken)
}

func TestLookupErrors(t *testing.T) {
	for _, tc := range []struct {
		err          error
		s3, standard string
	}{
		{ErrUnknownAccessKey, CodeInvalidAccessKeyID, CodeInvalidClientTokenID},
		{ErrInvalidSessionToken, CodeInvalidToken, CodeInvalidClientTokenID},
		{ErrCredentialsExpired, CodeExpiredToken, CodeExpiredToken},
		{errors.New("database down"), CodeInternalError, CodeInternalError},
	} {
		lookup := LookupFunc(func(context.Context, string, string) (Credentials, error) {
			return Credentials{}, tc.err
		})
		v := stsVerifier(t, xTime, func(c *Config) { c.Lookup = lookup })
		_, err := v.Verify(sdkSigned(t, xTime, true, nil))
		wantCode(t, err, tc.standard)
		if !errors.Is(err, tc.err) {
			t.Errorf("cause %v not wrapped", tc.err)
		}
		v = stsVerifier(t, xTime, func(c *Config) { c.Lookup, c.Service, c.Mode = lookup, "s3", ModeS3 })
		_, err = v.Verify(sdkPresigned(t, xTime, time.Hour, true))
		wantCode(t, err, tc.s3)
	}
	// Credentials past their expiry.
	lookup := LookupFunc(func(context.Context, string, string) (Credentials, error) {
		return Credentials{SecretAccessKey: xSecret, Expires: xTime}, nil
	})
	v := stsVerifier(t, xTime, func(c *Config) { c.Lookup = lookup })
	_, err := v.Verify(sdkSigned(t, xTime, true, nil))
	wantCode(t, err, CodeExpiredToken)
}

// TestMalformed feeds broken Authorization headers, query parameters and
// requests; every one must fail with the AWS code, never panic, never pass.
func TestMalformed(t *testing.T) {
	good := sdkSigned(t, xTime, false, nil)
	authz := good.Header.Get("Authorization")
	cred := authz[strings.Index(authz, "Credential=")+len("Credential=") : strings.Index(authz, ",")]
	sig := authz[strings.Index(authz, "Signature=")+len("Signature="):]
	sh := "content-length;content-type;host;x-amz-date"

	header := map[string]string{
		"empty":               "",
		"garbage":             "\x00\xff garbage",
		"no components":       "AWS4-HMAC-SHA256",
		"missing signature":   "AWS4-HMAC-SHA256 Credential=" + cred + ", SignedHeaders=" + sh,
		"duplicate signature": "AWS4-HMAC-SHA256 Credential=" + cred + ", SignedHeaders=" + sh + ", Signature=" + sig + ", Signature=" + sig,
		"duplicate cred":      "AWS4-HMAC-SHA256 Credential=" + cred + ", Credential=" + cred + ", SignedHeaders=" + sh + ", Signature=" + sig,
		"unknown component":   "AWS4-HMAC-SHA256 Credential=" + cred + ", SignedHeaders=" + sh + ", Signature=" + sig + ", Foo=bar",
		"no equals":           "AWS4-HMAC-SHA256 Credential=" + cred + ", SignedHeaders, Signature=" + sig,
		"short signature":     "AWS4-HMAC-SHA256 Credential=" + cred + ", SignedHeaders=" + sh + ", Signature=abcd",
		"non-hex signature":   "AWS4-HMAC-SHA256 Credential=" + cred + ", SignedHeaders=" + sh + ", Signature=" + strings.Repeat("zz", 32),
		"credential parts":    "AWS4-HMAC-SHA256 Credential=" + xAK + "/20260314/us-east-1/sts, SignedHeaders=" + sh + ", Signature=" + sig,
		"credential date":     "AWS4-HMAC-SHA256 Credential=" + xAK + "/2026031/us-east-1/sts/aws4_request, SignedHeaders=" + sh + ", Signature=" + sig,
		"wrong date":          "AWS4-HMAC-SHA256 Credential=" + xAK + "/20260313/us-east-1/sts/aws4_request, SignedHeaders=" + sh + ", Signature=" + sig,
		"wrong service":       "AWS4-HMAC-SHA256 Credential=" + xAK + "/20260314/us-east-1/s3/aws4_request, SignedHeaders=" + sh + ", Signature=" + sig,
		"wrong terminal":      "AWS4-HMAC-SHA256 Credential=" + xAK + "/20260314/us-east-1/sts/aws5_request, SignedHeaders=" + sh + ", Signature=" + sig,
		"unsorted headers":    "AWS4-HMAC-SHA256 Credential=" + cred + ", SignedHeaders=host;content-type;x-amz-date, Signature=" + sig,
		"uppercase headers":   "AWS4-HMAC-SHA256 Credential=" + cred + ", SignedHeaders=Host;x-amz-date, Signature=" + sig,
		"empty header name":   "AWS4-HMAC-SHA256 Credential=" + cred + ", SignedHeaders=host;;x-amz-date, Signature=" + sig,
		"host not signed":     "AWS4-HMAC-SHA256 Credential=" + cred + ", SignedHeaders=content-type;x-amz-date, Signature=" + sig,
		"oversized":           "AWS4-HMAC-SHA256 Credential=" + cred + ", SignedHeaders=" + strings.Repeat("a", 9000) + ", Signature=" + sig,
		"too many headers":    "AWS4-HMAC-SHA256 Credential=" + cred + ", SignedHeaders=" + manyHeaders(200) + ", Signature=" + sig,
	}
	for name, h := range header {
		v := stsVerifier(t, xTime)
		r := good.Clone(context.Background())
		r.Body = http.NoBody
		r.Header.Set("Authorization", h)
		_, err := v.Verify(r)
		var e *Error
		if !errors.As(err, &e) {
			t.Errorf("%s: got %v", name, err)
			continue
		}
		switch e.Code {
		case CodeAuthorizationHeaderMalformed, CodeInvalidRequest, CodeAccessDenied:
		default:
			t.Errorf("%s: code %s (%s)", name, e.Code, e.Message)
		}
	}

	// The region message follows AWS.
	v := stsVerifier(t, xTime)
	r := good.Clone(context.Background())
	r.Header.Set("Authorization", strings.Replace(authz, "/us-east-1/", "/eu-central-1/", 1))
	_, err := v.Verify(r)
	wantCode(t, err, CodeAuthorizationHeaderMalformed)
	if !strings.Contains(err.Error(), "the region 'eu-central-1' is wrong; expecting 'us-east-1'") {
		t.Errorf("region message: %v", err)
	}

	// Algorithm allowlist: SigV2 and SigV4a are refused.
	for h, code := range map[string]string{
		"AWS " + xAK + ":c2lnbmF0dXJl": CodeInvalidRequest,
		"AWS4-HMAC-SHA1 Credential=x":  CodeInvalidRequest,
		"AWS4-ECDSA-P256-SHA256 Credential=" + cred + ", SignedHeaders=host, Signature=3045": CodeNotImplemented,
	} {
		r := good.Clone(context.Background())
		r.Header.Set("Authorization", h)
		_, err := stsVerifier(t, xTime).Verify(r)
		wantCode(t, err, code)
	}
	for q, code := range map[string]string{
		"AWSAccessKeyId=" + xAK + "&Signature=abc&Expires=1":        CodeInvalidRequest,
		"X-Amz-Algorithm=AWS4-ECDSA-P256-SHA256&X-Amz-Credential=x": CodeNotImplemented,
		"X-Amz-Algorithm=AWS4-HMAC-SHA1&X-Amz-Credential=x":         CodeAuthorizationQueryParametersError,
		"X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=x":       CodeAuthorizationQueryParametersError,
		"X-Amz-Signature=a&X-Amz-Signature=b":                       CodeAuthorizationQueryParametersError,
		"a=%zz":                                                     CodeInvalidArgument,
	} {
		r, _ := http.NewRequest("GET", "https://gw.test/?"+q, nil)
		r = wireRoundTrip(t, r)
		_, err := stsVerifier(t, xTime).Verify(r)
		wantCode(t, err, code)
	}

	// Two mechanisms at once; none at all.
	pr := sdkPresigned(t, xTime, time.Hour, false)
	pr.Header.Set("Authorization", authz)
	_, err = stsVerifier(t, xTime).Verify(pr)
	wantCode(t, err, CodeInvalidArgument)
	anon, _ := http.NewRequest("GET", "https://gw.test/", nil)
	_, err = stsVerifier(t, xTime).Verify(anon)
	wantCode(t, err, CodeMissingAuthenticationToken)
	if !errors.Is(err, ErrUnsigned) {
		t.Error("anonymous request does not wrap ErrUnsigned")
	}
	// Two Authorization headers.
	r = good.Clone(context.Background())
	r.Header.Add("Authorization", authz)
	_, err = stsVerifier(t, xTime).Verify(r)
	wantCode(t, err, CodeAuthorizationHeaderMalformed)

	// Oversized signed header values.
	big := sdkSigned(t, xTime, false, func(r *http.Request) { r.Header.Set("X-Big", strings.Repeat("b", 70<<10)) })
	_, err = stsVerifier(t, xTime).Verify(big)
	wantCode(t, err, CodeRequestHeaderSectionTooLarge)

	// An x-amz-* header added after signing.
	r = sdkSigned(t, xTime, false, nil)
	r.Header.Set("X-Amz-Target", "evil")
	_, err = stsVerifier(t, xTime).Verify(r)
	wantCode(t, err, CodeAccessDenied)

	// Body too large for eager verification.
	_, err = stsVerifier(t, xTime, func(c *Config) { c.MaxEagerBody = 10 }).Verify(sdkSigned(t, xTime, false, nil))
	wantCode(t, err, CodeEntityTooLarge)

	// S3 header auth needs x-amz-content-sha256, signed.
	s3 := func(c *Config) { c.Service, c.Mode = "s3", ModeS3 }
	r, _ = http.NewRequest("GET", "https://gw.test/b/k", nil)
	if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: xAK, SecretAccessKey: xSecret}, r, emptySHA256, "s3", "us-east-1", xTime); err != nil {
		t.Fatal(err)
	}
	_, err = stsVerifier(t, xTime, s3).Verify(wireRoundTrip(t, r))
	wantCode(t, err, CodeMissingSecurityHeader)
	r.Header.Set("X-Amz-Content-Sha256", "not-a-hash")
	_, err = stsVerifier(t, xTime, s3).Verify(wireRoundTrip(t, r))
	var e *Error
	if !errors.As(err, &e) {
		t.Fatal(err)
	}
}

func manyHeaders(n int) string {
	var b []string
	for i := range n {
		b = append(b, "h"+strings.Repeat("a", 3)+string(rune('a'+i/26%26))+string(rune('a'+i%26)))
	}
	return strings.Join(b, ";")
}

func TestSessionTokenSigning(t *testing.T) {
	// Header form: a token header added after signing is accepted unless
	// RequireSignedSessionToken.
	r := sdkSigned(t, xTime, false, nil)
	r.Header.Set("X-Amz-Security-Token", xToken)
	res, err := stsVerifier(t, xTime).Verify(r.Clone(context.Background()))
	if err != nil || res.SessionToken != xToken {
		t.Fatalf("unsigned token: %v", err)
	}
	_, err = stsVerifier(t, xTime, func(c *Config) { c.RequireSignedSessionToken = true }).Verify(r)
	wantCode(t, err, CodeAccessDenied)
	// The token reaches the lookup, which can refuse it.
	r = sdkSigned(t, xTime, false, nil)
	r.Header.Set("X-Amz-Security-Token", "forged")
	_, err = stsVerifier(t, xTime).Verify(r)
	wantCode(t, err, CodeInvalidClientTokenID)
}

func TestConfigValidate(t *testing.T) {
	for name, cfg := range map[string]Config{
		"no lookup":  {Service: "s3", Regions: []string{"us-east-1"}},
		"no service": {Lookup: xLookup(), Regions: []string{"us-east-1"}},
		"no region":  {Lookup: xLookup(), Service: "s3"},
		"bad region": {Lookup: xLookup(), Service: "s3", Regions: []string{"us/east"}},
		"expiry":     {Lookup: xLookup(), Service: "s3", Regions: []string{"x"}, MaxPresignExpiry: 8 * 24 * time.Hour},
		"mode":       {Lookup: xLookup(), Service: "s3", Regions: []string{"x"}, Mode: 9},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	v := mustVerifier(t, Config{Lookup: xLookup(), Service: "s3", Regions: []string{"x"}})
	if !v.S3Mode() {
		t.Error("service s3 should select S3 mode")
	}
}

func TestKeyCache(t *testing.T) {
	c := newKeyCache(2, time.Hour)
	now := xTime
	k1 := c.get(now, "AK", "secret1", "20260314", "us-east-1", "s3")
	if k1 != deriveSigningKey("secret1", "20260314", "us-east-1", "s3") {
		t.Fatal("cached key differs from derived key")
	}
	// A rotated secret never hits the old entry.
	k2 := c.get(now, "AK", "secret2", "20260314", "us-east-1", "s3")
	if k2 == k1 || k2 != deriveSigningKey("secret2", "20260314", "us-east-1", "s3") {
		t.Fatal("rotated secret got a stale key")
	}
	c.get(now, "AK", "secret3", "20260314", "us-east-1", "s3")
	if c.len() != 2 {
		t.Fatalf("cache not bounded: %d", c.len())
	}
	// Expired entries are re-derived.
	if k := c.get(now.Add(2*time.Hour), "AK", "secret3", "20260314", "us-east-1", "s3"); k != deriveSigningKey("secret3", "20260314", "us-east-1", "s3") {
		t.Fatal("expired entry")
	}
}

// TestDateHeader: requests may carry their time in Date instead of X-Amz-Date.
func TestDateHeader(t *testing.T) {
	r, _ := http.NewRequest("GET", "https://sts.gw.test/?Action=GetCallerIdentity", nil)
	r.Header.Set("Date", xTime.Format(http.TimeFormat))
	creds := aws.Credentials{AccessKeyID: xAK, SecretAccessKey: xSecret}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, r, emptySHA256, "sts", "us-east-1", xTime); err != nil {
		t.Fatal(err)
	}
	// The SDK always adds X-Amz-Date; drop it and re-sign by hand with Date.
	r.Header.Del("X-Amz-Date")
	sr := wireRoundTrip(t, r)
	v := stsVerifier(t, xTime)
	_, err := v.Verify(sr)
	var e *Error
	if !errors.As(err, &e) || e.Code != CodeSignatureDoesNotMatch {
		t.Fatalf("want mismatch to learn the string to sign, got %v", err)
	}
	if !strings.Contains(e.StringToSign, "20260314T150926Z") {
		t.Fatalf("string to sign does not use Date: %q", e.StringToSign)
	}
}

func TestHMACMatchesStdlib(t *testing.T) {
	key := deriveSigningKey("k", "20260314", "us-east-1", "s3")
	for _, msg := range []string{"", "a", strings.Repeat("x", 63), strings.Repeat("y", 64), strings.Repeat("z", 1000)} {
		want := hmacSum(key[:], msg)
		if got := hmacSHA256(&key, []byte(msg)); got != want {
			t.Fatalf("len %d: %x != %x", len(msg), got, want)
		}
	}
}
