package sigv4

import (
	"crypto/sha1" //nolint:gosec // S3 integrity checksum named by the client, not an authenticator.
	"crypto/sha256"
	"hash"
	"hash/crc32"
	"hash/crc64"
)

// crc64NVMEPoly is the CRC-64/NVME polynomial 0xAD93D23594C93659 in the
// reversed (LSB-first) form hash/crc64 expects. With hash/crc64's initial
// value and final XOR of all ones this is CRC-64/NVME as S3 uses it for
// x-amz-checksum-crc64nvme (check value of "123456789": 0xAE8B14860A799888).
const crc64NVMEPoly = 0x9A6C9329AC4BC9B5

var (
	crc32cTable    = crc32.MakeTable(crc32.Castagnoli)
	crc64NVMETable = crc64.MakeTable(crc64NVMEPoly)
)

// newChecksum returns a hash for an S3 flexible-checksum trailer name
// (x-amz-checksum-crc32, -crc32c, -crc64nvme, -sha1, -sha256). Its Sum is
// the big-endian checksum whose standard base64 is the trailer value.
//
// SHA-1 here is an integrity checksum the client chose for its own data
// (S3 compatibility); it never authenticates anything, so invariant 6
// (no SHA-1 in signatures) is not at stake.
func newChecksum(name string) (hash.Hash, bool) {
	switch name {
	case "x-amz-checksum-crc32":
		return crc32.NewIEEE(), true
	case "x-amz-checksum-crc32c":
		return crc32.New(crc32cTable), true
	case "x-amz-checksum-crc64nvme":
		return crc64.New(crc64NVMETable), true
	case "x-amz-checksum-sha1":
		return sha1.New(), true //nolint:gosec // see above
	case "x-amz-checksum-sha256":
		return sha256.New(), true
	}
	return nil, false
}
