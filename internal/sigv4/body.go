package sigv4

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"hash"
	"io"
	"net/http"
)

// hashReader passes the body through and checks its SHA-256 against the
// declared x-amz-content-sha256 when the body ends. A mismatch fails the
// Read that reaches EOF (and every later one) with XAmzContentSHA256Mismatch.
type hashReader struct {
	body io.ReadCloser
	h    hash.Hash
	want [32]byte
	err  error
}

func newHashReader(body io.ReadCloser, hexSum string) *hashReader {
	hr := &hashReader{body: body, h: sha256.New()}
	hex.Decode(hr.want[:], []byte(hexSum)) //nolint:errcheck // validated by the caller
	return hr
}

func (hr *hashReader) Read(p []byte) (int, error) {
	if hr.err != nil {
		return 0, hr.err
	}
	n, err := hr.body.Read(p)
	hr.h.Write(p[:n])
	switch {
	case err == io.EOF:
		var got [32]byte
		hr.h.Sum(got[:0])
		if subtle.ConstantTimeCompare(got[:], hr.want[:]) != 1 {
			hr.err = newErr(CodeXAmzContentSHA256Mismatch, http.StatusBadRequest,
				"The provided 'x-amz-content-sha256' header does not match what was computed.")
			return n, hr.err
		}
		hr.err = io.EOF
	case errors.Is(err, io.ErrUnexpectedEOF):
		e := incompleteBody()
		e.Err = err
		hr.err = e
		return n, e
	case err != nil:
		hr.err = err
	}
	return n, err
}

func (hr *hashReader) Close() error { return hr.body.Close() }
