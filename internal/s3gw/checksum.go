package s3gw

import (
	"crypto/sha1" //nolint:gosec // S3 integrity checksum chosen by the client, never an authenticator.
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"hash"
	"hash/crc32"
	"hash/crc64"
	"io"
	"net/http"
	"strings"
)

// Flexible checksums sent as headers ("Checking object integrity", Amazon
// S3 User Guide): x-amz-checksum-<alg>: base64(big-endian digest). With
// UNSIGNED-PAYLOAD they are the only integrity check of the body, so the
// gateway verifies them at EOF and fails the upload (no object) on a
// mismatch. Trailer checksums of aws-chunked bodies are verified by sigv4.

var (
	crc32cTable    = crc32.MakeTable(crc32.Castagnoli)
	crc64NVMETable = crc64.MakeTable(0x9A6C9329AC4BC9B5) // CRC-64/NVME, reversed form
)

func newChecksum(alg string) (hash.Hash, bool) {
	switch alg {
	case "crc32":
		return crc32.NewIEEE(), true
	case "crc32c":
		return crc32.New(crc32cTable), true
	case "crc64nvme":
		return crc64.New(crc64NVMETable), true
	case "sha1":
		return sha1.New(), true //nolint:gosec // see above
	case "sha256":
		return sha256.New(), true
	}
	return nil, false
}

type checksumReader struct {
	r    io.Reader
	name string
	h    hash.Hash
	want []byte
}

func (c *checksumReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.h.Write(p[:n])
	if errors.Is(err, io.EOF) && string(c.h.Sum(nil)) != string(c.want) {
		return n, s3err("BadDigest", http.StatusBadRequest, "The "+c.name+" you specified did not match the calculated checksum.")
	}
	return n, err
}

// withHeaderChecksums wraps body with a verifier for each x-amz-checksum-*
// header. An unknown algorithm or a malformed value is InvalidRequest.
func withHeaderChecksums(h http.Header, body io.Reader) (io.Reader, error) {
	for k, vs := range h {
		lk := strings.ToLower(k)
		alg, ok := strings.CutPrefix(lk, "x-amz-checksum-")
		if !ok || alg == "algorithm" || alg == "type" {
			continue
		}
		hh, ok := newChecksum(alg)
		if !ok || len(vs) != 1 {
			return nil, s3err("InvalidRequest", http.StatusBadRequest, "Unsupported or repeated checksum header "+lk+".")
		}
		want, err := base64.StdEncoding.DecodeString(vs[0])
		if err != nil || len(want) != hh.Size() {
			return nil, s3err("InvalidRequest", http.StatusBadRequest, "Value for "+lk+" header is invalid.")
		}
		body = &checksumReader{r: body, name: lk, h: hh, want: want}
	}
	return body, nil
}
