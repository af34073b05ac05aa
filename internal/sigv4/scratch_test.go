package sigv4

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// Tests of the allocation-free paths: the pooled per-request scratch space
// (pending), the cached HMAC pad states (macKey) and the hand-written
// parsers that stand in for general library code.

// twoKeyLookup serves two access keys with different secrets.
func twoKeyLookup() CredentialLookup {
	secrets := map[string]string{"AKIDONE": "secret-one", "AKIDTWO": "secret-two/+="}
	return LookupFunc(func(_ context.Context, ak, _ string) (Credentials, error) {
		s, ok := secrets[ak]
		if !ok {
			return Credentials{}, ErrUnknownAccessKey
		}
		return Credentials{SecretAccessKey: s, Principal: "p:" + ak}, nil
	})
}

// signedFor returns a header-signed and a presigned S3 GET for ak/secret,
// with path and query from key and, when extra, one more signed header.
func signedFor(t *testing.T, ak, secret, key string, extra bool) (header, presigned *http.Request) {
	t.Helper()
	creds := aws.Credentials{AccessKeyID: ak, SecretAccessKey: secret}
	signer := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
	r, _ := http.NewRequest("GET", "https://gw.test/bucket/"+key+"?versionId=v%2B"+key, nil)
	r.Header.Set("X-Amz-Content-Sha256", UnsignedPayload)
	r.Header.Set("X-Amz-Meta-Owner", ak)
	if extra {
		r.Header.Set("Range", "bytes=0-99")
	}
	if err := signer.SignHTTP(context.Background(), creds, r, UnsignedPayload, "s3", "us-east-1", xTime); err != nil {
		t.Fatal(err)
	}
	header = wireRoundTrip(t, r)

	r, _ = http.NewRequest("GET", "https://gw.test/bucket/"+key+"?X-Amz-Expires=600&part="+key, nil)
	u, _, err := signer.PresignHTTP(context.Background(), creds, r, UnsignedPayload, "s3", "us-east-1", xTime)
	if err != nil {
		t.Fatal(err)
	}
	nr, _ := http.NewRequest("GET", u, nil)
	return header, wireRoundTrip(t, nr)
}

// swapSignature returns a copy of r carrying sig instead of its own
// signature.
func swapSignature(t *testing.T, r *http.Request, sig string) *http.Request {
	t.Helper()
	c := r.Clone(context.Background())
	if h := c.Header.Get("Authorization"); h != "" {
		i := strings.Index(h, "Signature=")
		c.Header.Set("Authorization", h[:i]+"Signature="+sig)
		return c
	}
	p, q, _ := strings.Cut(c.RequestURI, "?")
	vals, err := url.ParseQuery(q)
	if err != nil {
		t.Fatal(err)
	}
	vals.Set("X-Amz-Signature", sig)
	c.RequestURI = p + "?" + vals.Encode()
	return c
}

func signatureOf(r *http.Request) string {
	if h := r.Header.Get("Authorization"); h != "" {
		return h[strings.Index(h, "Signature=")+len("Signature="):]
	}
	_, q, _ := strings.Cut(r.RequestURI, "?")
	vals, _ := url.ParseQuery(q)
	return vals.Get("X-Amz-Signature")
}

// TestScratchIsolation interleaves verifications of two principals with
// different secrets and signed headers, from many goroutines, on one
// Verifier (one key cache, one scratch pool): each must pass with its own
// identity, and a request carrying the other principal's signature must
// fail. No Result may change when its scratch space is reused by later
// verifications.
func TestScratchIsolation(t *testing.T) {
	v := mustVerifier(t, Config{Lookup: twoKeyLookup(), Service: "s3", Regions: []string{"us-east-1"}, Clock: fixedClock(xTime)})
	type principal struct {
		ak                string
		header, presigned *http.Request
	}
	var ps []principal
	for i, c := range []struct{ ak, secret, key string }{
		{"AKIDONE", "secret-one", "first-object"},
		{"AKIDTWO", "secret-two/+=", "second/object with a longer key"},
	} {
		h, p := signedFor(t, c.ak, c.secret, strings.ReplaceAll(c.key, " ", "%20"), i == 1)
		ps = append(ps, principal{c.ak, h, p})
	}
	// What each request verifies to, alone.
	want := map[*http.Request]string{}
	for _, p := range ps {
		for _, r := range []*http.Request{p.header, p.presigned} {
			res, err := mustVerifier(t, Config{Lookup: twoKeyLookup(), Service: "s3", Regions: []string{"us-east-1"},
				Clock: fixedClock(xTime)}).Verify(r.Clone(context.Background()))
			if err != nil {
				t.Fatal(err)
			}
			want[r] = fmt.Sprintf("%+v", *res)
		}
	}
	// Swapped signatures: principal i's request with principal j's signature.
	swapped := []*http.Request{
		swapSignature(t, ps[0].header, signatureOf(ps[1].header)),
		swapSignature(t, ps[1].header, signatureOf(ps[0].header)),
		swapSignature(t, ps[0].presigned, signatureOf(ps[1].presigned)),
		swapSignature(t, ps[1].presigned, signatureOf(ps[0].presigned)),
	}

	type verified struct {
		r   *http.Request
		res *Result
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	results := make([][]verified, 8)
	for g := range results {
		wg.Go(func() {
			for i := range 200 {
				p := ps[(g+i)%2]
				for _, r := range []*http.Request{p.header, p.presigned} {
					res, err := v.Verify(r.Clone(context.Background()))
					if err != nil {
						errs <- fmt.Errorf("%s presigned=%v: %v", p.ak, r.Header.Get("Authorization") == "", err)
						return
					}
					if res.AccessKeyID != p.ak || res.Principal != "p:"+p.ak {
						errs <- fmt.Errorf("%s: verified as %s (%v)", p.ak, res.AccessKeyID, res.Principal)
						return
					}
					if !slices.IsSorted(res.SignedHeaders) || !slices.Contains(res.SignedHeaders, "host") {
						errs <- fmt.Errorf("%s: signed headers %q", p.ak, res.SignedHeaders)
						return
					}
					results[g] = append(results[g], verified{r, res})
				}
				bad := swapped[(g+i)%len(swapped)]
				if _, err := v.Verify(bad.Clone(context.Background())); !errors.Is(err, ErrSignatureDoesNotMatch) {
					errs <- fmt.Errorf("swapped signature: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for _, rs := range results {
		for _, v := range rs {
			if got := fmt.Sprintf("%+v", *v.res); got != want[v.r] {
				t.Fatalf("result changed after later verifications:\n got %s\nwant %s", got, want[v.r])
			}
		}
	}
}

// TestMACKey: the cached pad states give the stdlib HMAC, for every message
// length around the block boundaries, and so does a macKey without them.
func TestMACKey(t *testing.T) {
	for _, secret := range []string{"k", "secret-two/+="} {
		key := deriveSigningKey(secret, "20260314", "us-east-1", "s3")
		mk := newMACKey(key)
		if mk.inner == nil || mk.outer == nil {
			t.Fatal("no pad states")
		}
		bare := &macKey{key: key}
		for n := range 200 {
			msg := strings.Repeat("m", n)
			want := hmacSum(key[:], msg)
			if got := mk.sum([]byte(msg)); got != want {
				t.Fatalf("len %d: %x != %x", n, got, want)
			}
			if got := bare.sum([]byte(msg)); got != want {
				t.Fatalf("len %d, no states: %x != %x", n, got, want)
			}
		}
	}
	// The cache hands out each key's own states.
	c := newKeyCache(8, time.Hour)
	for i := range 20 {
		secret := fmt.Sprint("secret", i%3)
		mk := c.getMAC(xTime, "AK", secret, "20260314", "us-east-1", "s3")
		key := deriveSigningKey(secret, "20260314", "us-east-1", "s3")
		m := hmac.New(sha256.New, key[:])
		m.Write([]byte("string to sign"))
		if got := mk.sum([]byte("string to sign")); !hmac.Equal(got[:], m.Sum(nil)) {
			t.Fatalf("%s: HMAC with the cached key differs", secret)
		}
	}
}

// TestParseAmzDate compares the hand-written X-Amz-Date parser with
// time.Parse, which it replaces.
func TestParseAmzDate(t *testing.T) {
	for _, s := range []string{
		"20260314T150926Z", "20240229T000000Z", "20230229T000000Z", "21000229T120000Z", "20000229T235959Z",
		"20261231T235959Z", "20260431T000000Z", "20260430T240000Z", "20260430T236000Z", "20260430T235960Z",
		"20260001T000000Z", "20261301T000000Z", "20260100T000000Z", "00000101T000000Z", "99991231T235959Z",
		"2026031T4150926Z", "20260314 150926Z", "20260314T150926z", "+0260314T150926Z", "2026-314T150926Z",
		"20260314T1509260", "20260314T15:926Z", "20260314T150926", "20260314T150926ZZ", "",
	} {
		checkAmzDate(t, s)
	}
}

func FuzzParseAmzDate(f *testing.F) {
	f.Add("20260314T150926Z")
	f.Add("20240229T235959Z")
	f.Add("2026031a150926Z")
	f.Fuzz(func(t *testing.T, s string) {
		checkAmzDate(t, s)
		// Mutating a valid date reaches the range checks more often.
		if len(s) >= 14 {
			checkAmzDate(t, s[:8]+"T"+s[8:14]+"Z")
		}
	})
}

func checkAmzDate(t *testing.T, s string) {
	t.Helper()
	got, ok := parseAmzDate(s)
	want, err := time.Parse(amzDateLayout, s)
	wantOK := err == nil && len(s) == len(amzDateLayout)
	if ok != wantOK || ok && (!got.Equal(want) || got.Location() != want.Location()) {
		t.Fatalf("parseAmzDate(%q) = %v, %v; time.Parse: %v, %v", s, got, ok, want, err)
	}
}

// FuzzQueryComponent checks the decoding and canonical encoding shortcuts
// against their definitions: percent-decoding as package url does it, then
// UriEncode.
func FuzzQueryComponent(f *testing.F) {
	for _, s := range []string{"", "a", "%2F", "%2f", "%41", "a+b", "%", "%4", "%zz", "AKID%2F2026%2Fus", "%E1%88%B4~._-", "/a%2Bb/c d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		dq, errQ := url.QueryUnescape(s)
		got, ok := percentDecode(s, true)
		if ok != (errQ == nil) || ok && got != dq {
			t.Fatalf("percentDecode(%q, true) = %q, %v; url: %q, %v", s, got, ok, dq, errQ)
		}
		dp, errP := url.PathUnescape(s)
		got, ok = percentDecode(s, false)
		if ok != (errP == nil) || ok && got != dp {
			t.Fatalf("percentDecode(%q, false) = %q, %v; url: %q, %v", s, got, ok, dp, errP)
		}
		if ok {
			enc := string(appendURIEncode(nil, dp, true))
			if b, ok := appendDecodedURIEncode([]byte("x"), s); !ok || string(b) != "x"+enc {
				t.Fatalf("appendDecodedURIEncode(%q) = %q, %v; want %q", s, b, ok, enc)
			}
		} else if b, ok := appendDecodedURIEncode([]byte("x"), s); ok || string(b) != "x" {
			t.Fatalf("appendDecodedURIEncode(%q) = %q, %v; want failure", s, b, ok)
		}
		for _, decode := range []bool{true, false} {
			dec, enc, ok := parseComponent(s, decode)
			if ok != (errQ == nil) {
				t.Fatalf("parseComponent(%q) ok=%v; url: %v", s, ok, errQ)
			}
			if !ok {
				continue
			}
			if want := encodeComponent(dq); enc != want {
				t.Fatalf("parseComponent(%q) encodes to %q, want %q", s, enc, want)
			}
			if decode && dec != dq {
				t.Fatalf("parseComponent(%q) decodes to %q, want %q", s, dec, dq)
			}
		}
		// The raw query form: every piece's value as sent decodes to what
		// url.ParseQuery finds, in wire order.
		q := "k=" + s + "&" + s + "=v"
		params, ok := parseQuery(q)
		if !ok {
			return
		}
		for _, p := range params {
			if p.encKey != encodeComponent(p.key) || p.encValue != encodeComponent(p.value()) {
				t.Fatalf("%q: param %+v: encodings differ from the decoded forms", q, p)
			}
		}
	})
}
