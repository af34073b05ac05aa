//go:build linux || darwin

package local

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// metaAttr is the extended attribute holding an object's ETag and metadata.
// It is set on the temporary file before the rename that publishes it, so
// data and metadata appear together (one atomic rename).
const metaAttr = "user.gatehouse.s3"

func setMeta(f *os.File, v []byte) error {
	return unix.Fsetxattr(int(f.Fd()), metaAttr, v, 0)
}

// getMeta returns nil, nil when the file has no metadata attribute (a file
// placed in the directory by other means).
func getMeta(f *os.File) ([]byte, error) {
	buf := make([]byte, 4096)
	for {
		n, err := unix.Fgetxattr(int(f.Fd()), metaAttr, buf)
		switch {
		case err == nil:
			return buf[:n], nil
		case errors.Is(err, unix.ENODATA) || errors.Is(err, unix.ENOTSUP):
			return nil, nil
		case errors.Is(err, unix.ERANGE) && len(buf) < 1<<16:
			buf = make([]byte, len(buf)*4)
		default:
			return nil, err
		}
	}
}
