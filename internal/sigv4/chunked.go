package sigv4

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"hash"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// This file decodes aws-chunked bodies: AWS S3 docs "Signature Calculations
// for the Authorization Header: Transferring Payload in Multiple Chunks
// (Chunked Upload)" and "Signature calculations for trailing headers
// (chunked uploads)".
//
//	signed chunk:   hex(size) ";chunk-signature=" sig CRLF data CRLF
//	unsigned chunk: hex(size) CRLF data CRLF
//	final chunk:    a chunk of size 0, then either CRLF (no trailers) or
//	                trailer lines "name:value" CRLF ..., then CRLF
//
// The signature of chunk n is
//
//	HMAC(signingKey, "AWS4-HMAC-SHA256-PAYLOAD" \n amzDate \n scope \n
//	     sig(n-1) \n SHA256("") \n SHA256(data n))
//
// with sig(0) the request (seed) signature; the trailer signature is
//
//	HMAC(signingKey, "AWS4-HMAC-SHA256-TRAILER" \n amzDate \n scope \n
//	     sig(final chunk) \n SHA256(canonical trailers))
//
// where the canonical trailers are "name:value\n" per trailer, sorted.

const (
	maxChunkLine   = 4096
	maxTrailers    = 16
	trailerSigName = "x-amz-trailer-signature"
)

// TrailerReader is implemented by the body Result.Body returns for the
// streaming payload modes. Trailer returns the trailers received (checksum
// values), valid once Read has returned io.EOF.
type TrailerReader interface {
	io.ReadCloser
	Trailer() http.Header
}

// streamingHeaders reads x-amz-decoded-content-length and x-amz-trailer for
// a streaming payload.
func streamingHeaders(r *http.Request, res *Result) *Error {
	dl := r.Header.Values("X-Amz-Decoded-Content-Length")
	if len(dl) != 1 {
		return newErr(CodeMissingContentLength, http.StatusLengthRequired,
			"You must provide exactly one x-amz-decoded-content-length header with an aws-chunked body.")
	}
	n, err := strconv.ParseInt(dl[0], 10, 64)
	if err != nil || n < 0 {
		return newErr(CodeInvalidArgument, http.StatusBadRequest, "x-amz-decoded-content-length must be a non-negative integer.")
	}
	res.DecodedContentLength = n

	var names []string
	for _, v := range r.Header.Values("X-Amz-Trailer") {
		for _, name := range strings.Split(v, ",") {
			name = strings.ToLower(strings.TrimSpace(name))
			if name == "" {
				continue
			}
			if _, ok := newChecksum(name); !ok {
				return errf(CodeInvalidRequest, http.StatusBadRequest,
					"The value specified in the x-amz-trailer header is not supported: %s", truncate(name))
			}
			if slices.Contains(names, name) {
				return newErr(CodeInvalidRequest, http.StatusBadRequest, "The x-amz-trailer header names a trailer twice.")
			}
			names = append(names, name)
		}
	}
	if len(names) > 1 {
		return newErr(CodeInvalidRequest, http.StatusBadRequest, "Expecting a single x-amz-checksum- trailer.")
	}
	if len(names) > 0 && res.Payload == PayloadStreamingSigned {
		return errf(CodeInvalidRequest, http.StatusBadRequest,
			"x-amz-trailer requires x-amz-content-sha256 %s or %s.", StreamingPayloadTrailer, StreamingUnsignedPayloadTrailer)
	}
	res.Trailers = names
	return nil
}

type chunkedReader struct {
	src  *bufio.Reader
	body io.Closer
	res  *Result

	signed  bool // chunk signatures present
	trailer bool // trailer section expected

	prevSig   []byte // hex of the previous signature
	remaining int64  // data bytes left in the current chunk
	inChunk   bool
	chunkSig  [32]byte
	chunkHash hash.Hash
	decoded   int64

	checksum     hash.Hash
	checksumName string
	trailers     http.Header

	err error // sticky; io.EOF when done
}

func newChunkedReader(body io.ReadCloser, res *Result) *chunkedReader {
	cr := &chunkedReader{
		src:     bufio.NewReaderSize(body, 16<<10),
		body:    body,
		res:     res,
		signed:  res.Payload != PayloadStreamingUnsignedTrailer,
		trailer: res.Payload != PayloadStreamingSigned,
		prevSig: []byte(res.seed),
	}
	if cr.signed {
		cr.chunkHash = sha256.New()
	}
	if len(res.Trailers) == 1 {
		cr.checksumName = res.Trailers[0]
		cr.checksum, _ = newChecksum(cr.checksumName)
	}
	return cr
}

func (cr *chunkedReader) Close() error { return cr.body.Close() }

// Trailer returns the trailers received; valid after Read returned io.EOF.
func (cr *chunkedReader) Trailer() http.Header { return cr.trailers }

func (cr *chunkedReader) fail(e *Error) error {
	cr.err = e
	return e
}

// srcErr maps an error from the underlying body.
func (cr *chunkedReader) srcErr(err error) error {
	if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
		e := incompleteBody()
		e.Err = err
		return cr.fail(e)
	}
	cr.err = err
	return err
}

func (cr *chunkedReader) Read(p []byte) (int, error) {
	if cr.err != nil {
		return 0, cr.err
	}
	for !cr.inChunk {
		if err := cr.readChunkHeader(); err != nil {
			return 0, err
		}
	}
	if len(p) == 0 {
		return 0, nil
	}
	if int64(len(p)) > cr.remaining {
		p = p[:cr.remaining]
	}
	n, err := cr.src.Read(p)
	p = p[:n]
	if cr.signed {
		cr.chunkHash.Write(p)
	}
	if cr.checksum != nil {
		cr.checksum.Write(p)
	}
	cr.remaining -= int64(n)
	cr.decoded += int64(n)
	if err != nil && (cr.remaining > 0 || err != io.EOF) {
		return n, cr.srcErr(err)
	}
	if cr.remaining == 0 {
		if err := cr.endChunk(); err != nil {
			return n, err
		}
	}
	return n, nil
}

// readLine returns the next CRLF-terminated line without the CRLF.
func (cr *chunkedReader) readLine() ([]byte, error) {
	line, err := cr.src.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) || len(line) >= maxChunkLine {
			return nil, cr.fail(badChunk("line too long"))
		}
		return nil, cr.srcErr(err)
	}
	if len(line) > maxChunkLine {
		return nil, cr.fail(badChunk("line too long"))
	}
	if len(line) < 2 || line[len(line)-2] != '\r' {
		return nil, cr.fail(badChunk("line not terminated by CRLF"))
	}
	return line[:len(line)-2], nil
}

func (cr *chunkedReader) readChunkHeader() error {
	line, err := cr.readLine()
	if err != nil {
		return err
	}
	sizeHex, ext, hasExt := bytes.Cut(line, []byte{';'})
	if len(sizeHex) == 0 || len(sizeHex) > 16 {
		return cr.fail(badChunk("invalid chunk size"))
	}
	size, perr := strconv.ParseUint(string(sizeHex), 16, 63)
	if perr != nil {
		return cr.fail(badChunk("invalid chunk size"))
	}
	if cr.signed {
		sig, ok := bytes.CutPrefix(ext, []byte("chunk-signature="))
		if !hasExt || !ok || len(sig) != 64 {
			return cr.fail(badChunk("missing or malformed chunk-signature"))
		}
		if _, err := hex.Decode(cr.chunkSig[:], sig); err != nil {
			return cr.fail(badChunk("missing or malformed chunk-signature"))
		}
	} else if hasExt {
		return cr.fail(badChunk("unexpected chunk extension in an unsigned payload"))
	}
	if int64(size) > cr.res.DecodedContentLength-cr.decoded {
		return cr.fail(newErr(CodeInvalidRequest, http.StatusBadRequest,
			"The aws-chunked body holds more data than x-amz-decoded-content-length."))
	}
	if size == 0 {
		return cr.finish()
	}
	cr.remaining = int64(size)
	cr.inChunk = true
	if cr.signed {
		cr.chunkHash.Reset()
	}
	return nil
}

// endChunk consumes the CRLF after a chunk's data and checks its signature.
func (cr *chunkedReader) endChunk() error {
	var crlf [2]byte
	if _, err := io.ReadFull(cr.src, crlf[:]); err != nil {
		return cr.srcErr(err)
	}
	if crlf != [2]byte{'\r', '\n'} {
		return cr.fail(badChunk("chunk data not followed by CRLF"))
	}
	cr.inChunk = false
	if cr.signed {
		var sum [32]byte
		cr.chunkHash.Sum(sum[:0])
		return cr.checkChunkSig(sum[:])
	}
	return nil
}

func (cr *chunkedReader) stringToSign(alg string, hashHex []byte) []byte {
	b := make([]byte, 0, 256)
	b = append(b, alg...)
	b = append(b, '\n')
	b = append(b, cr.res.amzDate...)
	b = append(b, '\n')
	b = append(b, cr.res.scope...)
	b = append(b, '\n')
	b = append(b, cr.prevSig...)
	b = append(b, '\n')
	return append(b, hashHex...)
}

func (cr *chunkedReader) mac(sts []byte) [32]byte {
	return hmacSHA256(&cr.res.signingKey, sts)
}

func (cr *chunkedReader) checkChunkSig(dataSum []byte) error {
	h := make([]byte, 0, 64+1+64)
	h = append(h, emptySHA256...)
	h = append(h, '\n')
	h = hex.AppendEncode(h, dataSum)
	got := cr.mac(cr.stringToSign("AWS4-HMAC-SHA256-PAYLOAD", h))
	if !hmac.Equal(got[:], cr.chunkSig[:]) {
		return cr.fail(chunkSigMismatch())
	}
	cr.prevSig = hex.AppendEncode(cr.prevSig[:0], got[:])
	return nil
}

// finish handles the final (zero-size) chunk: its signature, the trailer
// section, the decoded length and the checksum.
func (cr *chunkedReader) finish() error {
	if cr.signed {
		sum := sha256.Sum256(nil)
		if err := cr.checkChunkSig(sum[:]); err != nil {
			return err
		}
	}
	if cr.decoded != cr.res.DecodedContentLength {
		return cr.fail(incompleteBody())
	}
	if err := cr.readTrailers(); err != nil {
		return err
	}
	// Nothing may follow.
	if _, err := cr.src.ReadByte(); err == nil {
		return cr.fail(badChunk("data after the final chunk"))
	} else if err != io.EOF {
		return cr.srcErr(err)
	}
	cr.err = io.EOF
	return io.EOF
}

func (cr *chunkedReader) readTrailers() error {
	if !cr.trailer {
		line, err := cr.readLine()
		if err != nil {
			return err
		}
		if len(line) != 0 {
			return cr.fail(badChunk("unexpected trailer"))
		}
		return nil
	}
	cr.trailers = make(http.Header)
	var sig []byte
	canonical := make([]string, 0, 2)
	leading := true
	for {
		line, err := cr.src.ReadSlice('\n')
		if err == io.EOF && len(line) == 0 && !leading {
			break // tolerate a missing final CRLF after the trailers
		}
		if err != nil {
			if errors.Is(err, bufio.ErrBufferFull) {
				return cr.fail(badChunk("line too long"))
			}
			return cr.srcErr(err)
		}
		if len(line) < 2 || line[len(line)-2] != '\r' {
			return cr.fail(badChunk("line not terminated by CRLF"))
		}
		line = line[:len(line)-2]
		if len(line) == 0 {
			if leading {
				// Some clients put the CRLF that ends the final chunk before
				// the trailers; accept one such empty line.
				leading = false
				if _, err := cr.src.Peek(1); err == io.EOF {
					break
				}
				continue
			}
			break
		}
		leading = false
		k, val, ok := bytes.Cut(line, []byte{':'})
		if !ok {
			return cr.fail(badChunk("malformed trailer line"))
		}
		name := strings.ToLower(strings.TrimSpace(string(k)))
		value := strings.TrimSpace(string(val))
		if name == trailerSigName {
			if !cr.signed || sig != nil {
				return cr.fail(badChunk("unexpected x-amz-trailer-signature"))
			}
			sig = []byte(value)
			continue
		}
		if sig != nil {
			return cr.fail(badChunk("trailer after x-amz-trailer-signature"))
		}
		if !slices.Contains(cr.res.Trailers, name) {
			return cr.fail(errf(CodeInvalidRequest, http.StatusBadRequest,
				"The trailer %s was not declared in x-amz-trailer.", truncate(name)))
		}
		if cr.trailers.Get(name) != "" || len(canonical) >= maxTrailers {
			return cr.fail(badChunk("repeated trailer"))
		}
		cr.trailers.Set(name, value)
		canonical = append(canonical, name+":"+value+"\n")
	}
	for _, name := range cr.res.Trailers {
		if cr.trailers.Get(name) == "" {
			return cr.fail(errf(CodeInvalidRequest, http.StatusBadRequest,
				"The trailer %s declared in x-amz-trailer is missing.", name))
		}
	}
	if cr.signed {
		var want [32]byte
		if len(sig) != 64 {
			return cr.fail(badChunk("missing or malformed x-amz-trailer-signature"))
		}
		if _, err := hex.Decode(want[:], sig); err != nil {
			return cr.fail(badChunk("missing or malformed x-amz-trailer-signature"))
		}
		slices.Sort(canonical)
		sum := sha256.Sum256([]byte(strings.Join(canonical, "")))
		got := cr.mac(cr.stringToSign("AWS4-HMAC-SHA256-TRAILER", hex.AppendEncode(nil, sum[:])))
		if !hmac.Equal(got[:], want[:]) {
			return cr.fail(newErr(CodeSignatureDoesNotMatch, http.StatusForbidden,
				"The trailer signature we calculated does not match the signature you provided."))
		}
	}
	if cr.checksum != nil {
		want, err := base64.StdEncoding.DecodeString(cr.trailers.Get(cr.checksumName))
		if err != nil || len(want) != cr.checksum.Size() {
			return cr.fail(errf(CodeInvalidDigest, http.StatusBadRequest,
				"Value for %s trailing header is invalid.", cr.checksumName))
		}
		if subtle.ConstantTimeCompare(cr.checksum.Sum(nil), want) != 1 {
			return cr.fail(errf(CodeBadDigest, http.StatusBadRequest,
				"The %s you specified did not match the calculated checksum.", cr.checksumName))
		}
	}
	return nil
}
