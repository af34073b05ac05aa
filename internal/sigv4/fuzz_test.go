package sigv4

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func FuzzParseAuthorization(f *testing.F) {
	for _, s := range []string{
		"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
		"AWS4-HMAC-SHA256 Credential=a/b/c/d/e,SignedHeaders=host,Signature=",
		"AWS4-ECDSA-P256-SHA256 Credential=x",
		"AWS AKID:sig",
		"AWS4-HMAC-SHA256 ,,,==,",
	} {
		f.Add(s)
	}
	v := mustVerifier(f, Config{Lookup: staticLookup{"AKIDEXAMPLE": {SecretAccessKey: "s"}}, Service: "service",
		Regions: []string{"us-east-1"}, Clock: fixedClock(time.Date(2015, 8, 30, 12, 36, 0, 0, time.UTC))})
	f.Fuzz(func(t *testing.T, h string) {
		a, e := parseAuthorization(h)
		if (a == nil) == (e == nil) {
			t.Fatalf("parseAuthorization(%q): result %v and error %v", h, a, e)
		}
		r := &http.Request{Method: "GET", RequestURI: "/", Host: "example.amazonaws.com", Header: http.Header{
			"Authorization": {h}, "X-Amz-Date": {"20150830T123600Z"},
		}, Body: http.NoBody}
		if _, err := v.Verify(r); err == nil {
			t.Fatalf("fuzzed header %q verified", h)
		}
	})
}

func FuzzParseQuery(f *testing.F) {
	for _, s := range []string{
		"X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fservice%2Faws4_request&X-Amz-Date=20150830T123600Z&X-Amz-SignedHeaders=host&X-Amz-Expires=3600&X-Amz-Signature=7a1f416954786484c9824d93c1f26ef64acb9b1b6c9154d08c9f07d0e394abf6",
		"a=1&a=2&b&=c&%E1%88%B4=+",
		"X-Amz-Expires=-1&X-Amz-Date=x",
		"%zz&&&;;",
	} {
		f.Add(s)
	}
	v := mustVerifier(f, Config{Lookup: staticLookup{"AKIDEXAMPLE": {SecretAccessKey: "s"}}, Service: "service",
		Regions: []string{"us-east-1"}, Clock: fixedClock(time.Date(2015, 8, 30, 12, 36, 0, 0, time.UTC))})
	f.Fuzz(func(t *testing.T, q string) {
		params, ok := parseQuery(q)
		if ok {
			_ = appendCanonicalQuery(nil, params, skipSignature)
			a, e := parsePresign(params, MaxPresignExpiry)
			if (a == nil) == (e == nil) {
				t.Fatalf("parsePresign(%q): result %v and error %v", q, a, e)
			}
		}
		r := &http.Request{Method: "GET", RequestURI: "/p?" + q, Host: "example.amazonaws.com", Header: http.Header{}, Body: http.NoBody}
		if _, err := v.Verify(r); err == nil {
			t.Fatalf("fuzzed query %q verified", q)
		}
		_, _ = appendCanonicalURI(nil, q, true, false)
		_, _ = appendCanonicalURI(nil, q, false, true)
	})
}

func FuzzChunkedDecoder(f *testing.F) {
	f.Add(byte(0), docBody(false)[:200]+"\r\n0;chunk-signature="+docChunkFinal+"\r\n\r\n")
	f.Add(byte(1), docBody(true)[len(docBody(true))-300:])
	f.Add(byte(2), "5\r\nhello\r\n0\r\nx-amz-checksum-crc32:NhCmhg==\r\n\r\n")
	f.Add(byte(2), "0\r\n\r\n")
	f.Add(byte(0), "ffffffffffffffff;chunk-signature=00\r\n")
	v := docVerifier(f)
	f.Fuzz(func(t *testing.T, kind byte, body string) {
		res := &Result{DecodedContentLength: 5, Trailers: []string{"x-amz-checksum-crc32"}, amzDate: docDate,
			scope: "20130524/us-east-1/s3/aws4_request", seed: docSeed}
		switch kind % 3 {
		case 0:
			res.Payload, res.Trailers = PayloadStreamingSigned, nil
		case 1:
			res.Payload = PayloadStreamingSignedTrailer
		default:
			res.Payload = PayloadStreamingUnsignedTrailer
		}
		_ = v
		rc := res.Body(io.NopCloser(strings.NewReader(body)))
		buf := make([]byte, 1+int(kind)%7)
		total := 0
		for {
			n, err := rc.Read(buf)
			total += n
			if total > len(body) {
				t.Fatalf("decoded more bytes (%d) than the body holds (%d)", total, len(body))
			}
			if err == io.EOF {
				if total != 5 {
					t.Fatalf("EOF after %d bytes, declared 5", total)
				}
				break
			}
			if err != nil {
				if _, ok := err.(*Error); !ok {
					t.Fatalf("error %v is not an *Error", err)
				}
				break
			}
		}
	})
}
