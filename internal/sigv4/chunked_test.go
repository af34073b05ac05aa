package sigv4

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc64"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

// Test vectors of the AWS S3 API Reference, "Signature Calculations for the
// Authorization Header: Transferring Payload in Multiple Chunks (Chunked
// Upload)" (Example: PUT Object) and "Signature calculations for trailing
// headers (chunked uploads)".
const (
	docAK     = "AKIAIOSFODNN7EXAMPLE"
	docSecret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	docDate   = "20130524T000000Z"

	docSeed       = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
	docChunk1     = "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648"
	docChunk2     = "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497"
	docChunkFinal = "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9"

	docTrailerSeed       = "106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e"
	docTrailerChunk1     = "b474d8862b1487a5145d686f57f013e54db672cee1c953b3010fb58501ef5aa2"
	docTrailerChunk2     = "1c1344b170168f8e65b41376b44b20fe354e373826ccbbe2c1d40a8cae51e5c7"
	docTrailerChunkFinal = "2ca2aba2005185cf7159c6277faf83795951dd77a3a99e6e65d5c9f85863f992"
	docTrailerCRC32C     = "sOO8/Q=="
	docTrailerSignature  = "d81f82fc3505edab99d459891051a732e8730629a2e4a59689829ca17fe2e435"
)

var docTime = time.Date(2013, 5, 24, 0, 0, 0, 0, time.UTC)

func docVerifier(t testing.TB) *Verifier {
	return mustVerifier(t, Config{
		Lookup:  staticLookup{docAK: {SecretAccessKey: docSecret}},
		Service: "s3", Regions: []string{"us-east-1"}, Clock: fixedClock(docTime),
	})
}

func docRequest(trailer bool) *http.Request {
	r, _ := http.NewRequest("PUT", "http://s3.amazonaws.com/examplebucket/chunkObject.txt", nil)
	r.RequestURI = "/examplebucket/chunkObject.txt"
	r.Header.Set("X-Amz-Date", docDate)
	r.Header.Set("X-Amz-Storage-Class", "REDUCED_REDUNDANCY")
	r.Header.Set("Content-Encoding", "aws-chunked")
	r.Header.Set("X-Amz-Decoded-Content-Length", "66560")
	if trailer {
		r.Header.Set("X-Amz-Content-Sha256", StreamingPayloadTrailer)
		r.Header.Set("X-Amz-Trailer", "x-amz-checksum-crc32c")
		r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+docAK+"/20130524/us-east-1/s3/aws4_request,SignedHeaders=content-encoding;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class;x-amz-trailer,Signature="+docTrailerSeed)
	} else {
		r.Header.Set("Content-Length", "66824")
		r.Header.Set("X-Amz-Content-Sha256", StreamingPayload)
		r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+docAK+"/20130524/us-east-1/s3/aws4_request,SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class,Signature="+docSeed)
	}
	return r
}

func docBody(trailer bool) string {
	a1, a2 := strings.Repeat("a", 65536), strings.Repeat("a", 1024)
	if !trailer {
		return "10000;chunk-signature=" + docChunk1 + "\r\n" + a1 + "\r\n" +
			"400;chunk-signature=" + docChunk2 + "\r\n" + a2 + "\r\n" +
			"0;chunk-signature=" + docChunkFinal + "\r\n\r\n"
	}
	return "10000;chunk-signature=" + docTrailerChunk1 + "\r\n" + a1 + "\r\n" +
		"400;chunk-signature=" + docTrailerChunk2 + "\r\n" + a2 + "\r\n" +
		"0;chunk-signature=" + docTrailerChunkFinal + "\r\n" +
		"x-amz-checksum-crc32c:" + docTrailerCRC32C + "\r\n" +
		"x-amz-trailer-signature:" + docTrailerSignature + "\r\n\r\n"
}

func readBody(res *Result, body string) ([]byte, error) {
	rc := res.Body(io.NopCloser(strings.NewReader(body)))
	defer rc.Close()
	return io.ReadAll(rc)
}

func TestChunkedAWSDocExample(t *testing.T) {
	for _, trailer := range []bool{false, true} {
		t.Run(fmt.Sprintf("trailer=%v", trailer), func(t *testing.T) {
			v := docVerifier(t)
			res, err := v.Verify(docRequest(trailer))
			if err != nil {
				t.Fatalf("seed signature of the AWS example rejected: %v", err)
			}
			wantSeed := docSeed
			if trailer {
				wantSeed = docTrailerSeed
			}
			if res.seed != wantSeed || res.DecodedContentLength != 66560 {
				t.Fatalf("seed %s, decoded length %d", res.seed, res.DecodedContentLength)
			}
			body := docBody(trailer)
			// Read in odd slices to exercise chunk boundaries.
			rc := res.Body(io.NopCloser(iotest.HalfReader(strings.NewReader(body))))
			got, err := io.ReadAll(rc)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if string(got) != strings.Repeat("a", 66560) {
				t.Fatalf("decoded %d bytes", len(got))
			}
			if trailer {
				if tr := rc.(TrailerReader).Trailer(); tr.Get("x-amz-checksum-crc32c") != docTrailerCRC32C {
					t.Fatalf("trailers %v", tr)
				}
			}

			// Tampering: each must fail.
			tamper := map[string]string{
				"chunk signature": strings.Replace(body, "chunk-signature="+body[22:30], "chunk-signature=00000000", 1),
				"chunk byte":      body[:200] + "b" + body[201:],
				"truncated data":  body[:40000],
				"truncated final": body[:len(body)-3],
				"no final chunk":  body[:strings.Index(body, "0;chunk-signature")],
				"chunks swapped":  swapFirstChunks(body),
				"trailing junk":   body + "x",
				"size too big":    strings.Replace(body, "400;", "401;", 1),
				"bad size":        strings.Replace(body, "400;", "4z0;", 1),
				"missing sig":     strings.Replace(body, "400;chunk-signature=", "400;chunk-signaturx=", 1),
				"lf only":         strings.Replace(body, "\r\n400;", "\n400;", 1),
			}
			if trailer {
				tamper["trailer value"] = strings.Replace(body, docTrailerCRC32C, "sOO8/A==", 1)
				tamper["trailer signature"] = strings.Replace(body, docTrailerSignature, docTrailerSignature[:63]+"0", 1)
				tamper["trailer missing"] = strings.Replace(body, "x-amz-checksum-crc32c:"+docTrailerCRC32C+"\r\n", "", 1)
				tamper["trailer undeclared"] = strings.Replace(body, "x-amz-checksum-crc32c:", "x-amz-checksum-crc32:", 1)
				tamper["no trailer signature"] = strings.Replace(body, "x-amz-trailer-signature:"+docTrailerSignature+"\r\n", "", 1)
			}
			for name, bad := range tamper {
				res, err := v.Verify(docRequest(trailer))
				if err != nil {
					t.Fatal(err)
				}
				if _, err := readBody(res, bad); err == nil {
					t.Errorf("%s: accepted", name)
				} else if !errors.As(err, new(*Error)) {
					t.Errorf("%s: error %v is not an *Error", name, err)
				}
			}
		})
	}
}

func swapFirstChunks(body string) string {
	i := strings.Index(body, "400;")
	j := strings.Index(body, "0;chunk-signature="+docChunkFinal)
	if j < 0 {
		j = strings.Index(body, "0;chunk-signature="+docTrailerChunkFinal)
	}
	return body[i:j] + body[:i] + body[j:]
}

// chunkSigner produces aws-chunked bodies the way the AWS docs describe, to
// test the decoder beyond the documented example.
type chunkSigner struct {
	key   [32]byte
	date  string
	scope string
	prev  string
}

func (s *chunkSigner) sign(kind, hashLine string) string {
	sts := kind + "\n" + s.date + "\n" + s.scope + "\n" + s.prev + "\n" + hashLine
	m := hmac.New(sha256.New, s.key[:])
	m.Write([]byte(sts))
	s.prev = hex.EncodeToString(m.Sum(nil))
	return s.prev
}

func (s *chunkSigner) chunk(data []byte, signed bool) string {
	if !signed {
		return fmt.Sprintf("%x\r\n%s\r\n", len(data), data)
	}
	h := sha256.Sum256(data)
	sig := s.sign("AWS4-HMAC-SHA256-PAYLOAD", emptySHA256+"\n"+hex.EncodeToString(h[:]))
	return fmt.Sprintf("%x;chunk-signature=%s\r\n%s\r\n", len(data), sig, data)
}

// encode builds a complete body. trailers are "name:value" lines.
func (s *chunkSigner) encode(chunks [][]byte, signed bool, trailers []string, signTrailer bool) string {
	var b strings.Builder
	for _, c := range chunks {
		b.WriteString(s.chunk(c, signed))
	}
	final := s.chunk(nil, signed)
	b.WriteString(final[:len(final)-2]) // the final chunk ends after its header line
	if trailers == nil {
		b.WriteString("\r\n")
		return b.String()
	}
	var canon []string
	for _, tr := range trailers {
		b.WriteString(tr + "\r\n")
		canon = append(canon, tr+"\n")
	}
	if signTrailer {
		slices.Sort(canon)
		h := sha256.Sum256([]byte(strings.Join(canon, "")))
		b.WriteString("x-amz-trailer-signature:" + s.sign("AWS4-HMAC-SHA256-TRAILER", hex.EncodeToString(h[:])) + "\r\n")
	}
	b.WriteString("\r\n")
	return b.String()
}

func checksumB64(name string, data []byte) string {
	h, _ := newChecksum(name)
	h.Write(data)
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

// streamingRequest builds and signs (with our own code path: the SDK has no
// aws-chunked signer) a request declaring a streaming payload, returning the
// verified Result and a chunk signer seeded with its signature.
func streamingRequest(t *testing.T, v *Verifier, payload string, decodedLen int, trailer string) (*Result, *chunkSigner) {
	t.Helper()
	r, _ := http.NewRequest("PUT", "http://gw.example.test/bucket/key", nil)
	r.RequestURI = "/bucket/key"
	r.Header.Set("X-Amz-Date", docDate)
	r.Header.Set("X-Amz-Content-Sha256", payload)
	r.Header.Set("Content-Encoding", "aws-chunked")
	r.Header.Set("X-Amz-Decoded-Content-Length", fmt.Sprint(decodedLen))
	signed := "content-encoding;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length"
	if trailer != "" {
		r.Header.Set("X-Amz-Trailer", trailer)
		signed += ";x-amz-trailer"
	}
	// Compute the seed with the verifier's own canonicalization, checked
	// independently by the corpus and SDK tests.
	r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+docAK+"/20130524/us-east-1/s3/aws4_request,SignedHeaders="+signed+",Signature="+strings.Repeat("0", 64))
	_, err := v.Verify(r)
	var e *Error
	if !errors.As(err, &e) || e.Code != CodeSignatureDoesNotMatch {
		t.Fatalf("want SignatureDoesNotMatch, got %v", err)
	}
	key := deriveSigningKey(docSecret, "20130524", "us-east-1", "s3")
	m := hmac.New(sha256.New, key[:])
	m.Write([]byte(e.StringToSign))
	seed := hex.EncodeToString(m.Sum(nil))
	r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+docAK+"/20130524/us-east-1/s3/aws4_request,SignedHeaders="+signed+",Signature="+seed)
	res, err := v.Verify(r)
	if err != nil {
		t.Fatal(err)
	}
	return res, &chunkSigner{key: key, date: docDate, scope: "20130524/us-east-1/s3/aws4_request", prev: seed}
}

func TestChunkedRandom(t *testing.T) {
	v := docVerifier(t)
	rng := rand.New(rand.NewPCG(1, 2))
	algs := []string{"x-amz-checksum-crc32", "x-amz-checksum-crc32c", "x-amz-checksum-crc64nvme", "x-amz-checksum-sha1", "x-amz-checksum-sha256"}
	for i := range 60 {
		var chunks [][]byte
		var all []byte
		for range rng.IntN(5) {
			c := make([]byte, 1+rng.IntN(20000))
			for j := range c {
				c[j] = byte(rng.IntN(256))
			}
			chunks = append(chunks, c)
			all = append(all, c...)
		}
		for _, payload := range []string{StreamingPayload, StreamingPayloadTrailer, StreamingUnsignedPayloadTrailer} {
			signed := payload != StreamingUnsignedPayloadTrailer
			trailer := ""
			var trailers []string
			if payload != StreamingPayload {
				trailer = algs[rng.IntN(len(algs))]
				trailers = []string{trailer + ":" + checksumB64(trailer, all)}
			}
			res, cs := streamingRequest(t, v, payload, len(all), trailer)
			body := cs.encode(chunks, signed, trailers, payload == StreamingPayloadTrailer)
			got, err := readBody(res, body)
			if err != nil || !bytes.Equal(got, all) {
				t.Fatalf("#%d %s: %v", i, payload, err)
			}

			// A checksum that is correctly signed but wrong: BadDigest.
			if trailer != "" && len(all) > 0 {
				res, cs := streamingRequest(t, v, payload, len(all), trailer)
				wrong := append([]byte{all[0] ^ 1}, all[1:]...)
				body := cs.encode(chunks, signed, []string{trailer + ":" + checksumB64(trailer, wrong)}, payload == StreamingPayloadTrailer)
				_, err := readBody(res, body)
				wantCode(t, err, CodeBadDigest)
			}
			// Declared length differs from the data.
			if len(all) > 0 {
				res, cs := streamingRequest(t, v, payload, len(all)+1, trailer)
				_, err := readBody(res, cs.encode(chunks, signed, trailers, payload == StreamingPayloadTrailer))
				wantCode(t, err, CodeIncompleteBody)
				res, cs = streamingRequest(t, v, payload, len(all)-1, trailer)
				_, err = readBody(res, cs.encode(chunks, signed, trailers, payload == StreamingPayloadTrailer))
				wantCode(t, err, CodeInvalidRequest)
			}
			// Every truncation fails.
			for cut := 0; cut < len(body); cut += 1 + rng.IntN(4000) {
				res, _ := streamingRequest(t, v, payload, len(all), trailer)
				if _, err := readBody(res, body[:cut]); err == nil {
					t.Fatalf("#%d %s: truncation at %d of %d accepted", i, payload, cut, len(body))
				}
			}
		}
	}
}

func TestChunkedErrors(t *testing.T) {
	v := docVerifier(t)
	// Trailer names must be supported checksums, at most one, and only with
	// a -TRAILER payload.
	for _, tc := range []struct{ payload, trailer string }{
		{StreamingPayloadTrailer, "x-amz-meta-foo"},
		{StreamingPayloadTrailer, "x-amz-checksum-crc32,x-amz-checksum-sha256"},
		{StreamingPayload, "x-amz-checksum-crc32"},
	} {
		r := docRequest(false)
		r.Header.Set("X-Amz-Trailer", tc.trailer)
		res := &Result{Payload: PayloadStreamingSigned}
		if tc.payload == StreamingPayloadTrailer {
			res.Payload = PayloadStreamingSignedTrailer
		}
		wantCode(t, streamingHeaders(r, res), CodeInvalidRequest)
		// Through Verify the unsigned x-amz-trailer header is refused first.
		_, err := v.Verify(r)
		wantCode(t, err, CodeAccessDenied)
	}
	r := docRequest(false)
	r.Header.Del("X-Amz-Decoded-Content-Length")
	_, err := v.Verify(r)
	wantCode(t, err, CodeMissingContentLength)

	// SigV4a streaming payloads are refused.
	r = docRequest(false)
	r.Header.Set("X-Amz-Content-Sha256", "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD")
	_, err = v.Verify(r)
	wantCode(t, err, CodeNotImplemented)

	// The chunk signature mismatch code.
	res, err := v.Verify(docRequest(false))
	if err != nil {
		t.Fatal(err)
	}
	_, err = readBody(res, strings.Replace(docBody(false), docChunk2, docChunk1, 1))
	wantCode(t, err, CodeSignatureDoesNotMatch)
}

// TestCRC64NVME checks the CRC-64/NVME parameters against the catalogue
// check value and S3's value for the empty string.
func TestCRC64NVME(t *testing.T) {
	if got := crc64.Checksum([]byte("123456789"), crc64NVMETable); got != 0xAE8B14860A799888 {
		t.Fatalf("check value %#x", got)
	}
	h, _ := newChecksum("x-amz-checksum-crc64nvme")
	h.Write([]byte("123456789"))
	if binary.BigEndian.Uint64(h.Sum(nil)) != 0xAE8B14860A799888 {
		t.Fatal("Sum is not big-endian")
	}
	if got := checksumB64("x-amz-checksum-crc64nvme", nil); got != "AAAAAAAAAAA=" {
		t.Fatalf("empty: %s", got)
	}
	// crc32c of the AWS trailer example data.
	if got := checksumB64("x-amz-checksum-crc32c", bytes.Repeat([]byte{'a'}, 66560)); got != docTrailerCRC32C {
		t.Fatalf("crc32c %s", got)
	}
}

// TestHashReader covers the x-amz-content-sha256 body check.
func TestHashReader(t *testing.T) {
	body := []byte("hello, world")
	sum := sha256.Sum256(body)
	ok := newHashReader(io.NopCloser(bytes.NewReader(body)), hex.EncodeToString(sum[:]))
	if got, err := io.ReadAll(ok); err != nil || !bytes.Equal(got, body) {
		t.Fatal(err)
	}
	bad := newHashReader(io.NopCloser(bytes.NewReader([]byte("hello, World"))), hex.EncodeToString(sum[:]))
	_, err := io.ReadAll(bad)
	wantCode(t, err, CodeXAmzContentSHA256Mismatch)
	trunc := newHashReader(io.NopCloser(iotest.ErrReader(io.ErrUnexpectedEOF)), hex.EncodeToString(sum[:]))
	_, err = io.ReadAll(trunc)
	wantCode(t, err, CodeIncompleteBody)
	_ = context.Background
}
