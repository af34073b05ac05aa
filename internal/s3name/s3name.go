// Package s3name holds the rules for S3 bucket names and object keys as
// gatehouse applies them, below every package that checks a name: the S3
// gateway and its backends on each request, the admin API when a mount is
// stored. A domain package checks names here, never in a front end's
// subtree.
package s3name

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"unicode/utf8"
)

// Errors of Key and Bucket; callers test with errors.Is.
var (
	ErrInvalidKey    = errors.New("invalid object key")
	ErrInvalidBucket = errors.New("invalid bucket name")
)

// MaxKeyLen is the AWS limit on object key length, in bytes.
const MaxKeyLen = 1024

// Key refuses keys that could name anything but one object below a
// bucket once stored on a file system, or that look like an attempt to: the
// gateway applies it to every key, whatever the backend, so that an IAM
// resource ARN always names exactly the bytes it governs.
//
// Refused: empty or longer than MaxKeyLen, invalid UTF-8, control characters
// (NUL included), a leading "/" (absolute path), "\" (Windows separator),
// segments starting with ReservedPrefix,
// "//", "." or ".." segments, a drive letter ("C:"), and percent-encoded
// dots, slashes, backslashes and NULs ("%2e", "%2f", "%5c", "%00"), which a
// layer that decodes once more would turn into the above.
func Key(key string) error {
	if key == "" || len(key) > MaxKeyLen {
		return fmt.Errorf("%w: length must be 1 to %d bytes", ErrInvalidKey, MaxKeyLen)
	}
	if !utf8.ValidString(key) {
		return fmt.Errorf("%w: not valid UTF-8", ErrInvalidKey)
	}
	for i := 0; i < len(key); i++ {
		c := key[i]
		if c < 0x20 || c == 0x7f {
			return fmt.Errorf("%w: control character", ErrInvalidKey)
		}
		if c == '\\' {
			return fmt.Errorf("%w: backslash", ErrInvalidKey)
		}
		if c == '%' && i+2 < len(key) {
			switch strings.ToLower(key[i+1 : i+3]) {
			case "2e", "2f", "5c", "00":
				return fmt.Errorf("%w: percent-encoded separator or dot", ErrInvalidKey)
			}
		}
	}
	if key[0] == '/' {
		return fmt.Errorf("%w: leading slash", ErrInvalidKey)
	}
	if len(key) >= 2 && key[1] == ':' {
		return fmt.Errorf("%w: drive letter", ErrInvalidKey)
	}
	if strings.Contains(key, "//") {
		return fmt.Errorf("%w: empty path segment", ErrInvalidKey)
	}
	for seg := range strings.SplitSeq(key, "/") {
		if seg == "." || seg == ".." {
			return fmt.Errorf("%w: dot segment", ErrInvalidKey)
		}
		if strings.HasPrefix(seg, ReservedPrefix) {
			return fmt.Errorf("%w: segments starting with %q are reserved", ErrInvalidKey, ReservedPrefix)
		}
	}
	return nil
}

// ReservedPrefix starts the names backends use for their own files and
// keys (staging, directory markers); no key segment may start with it.
const ReservedPrefix = ".gatehouse"

// Bucket checks the S3 bucket naming rules ("Bucket naming rules",
// Amazon S3 User Guide): 3 to 63 characters of lower-case letters, digits,
// dots and hyphens, starting and ending with a letter or digit, no "..", not
// an IP address.
func Bucket(b string) error {
	if len(b) < 3 || len(b) > 63 {
		return fmt.Errorf("%w: length must be 3 to 63", ErrInvalidBucket)
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		ok := c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-'
		if !ok {
			return fmt.Errorf("%w: invalid character", ErrInvalidBucket)
		}
	}
	if !isAlnum(b[0]) || !isAlnum(b[len(b)-1]) {
		return fmt.Errorf("%w: must start and end with a letter or digit", ErrInvalidBucket)
	}
	if strings.Contains(b, "..") || strings.Contains(b, ".-") || strings.Contains(b, "-.") {
		return fmt.Errorf("%w: adjacent periods", ErrInvalidBucket)
	}
	if _, err := netip.ParseAddr(b); err == nil {
		return fmt.Errorf("%w: IP address", ErrInvalidBucket)
	}
	return nil
}

func isAlnum(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }
