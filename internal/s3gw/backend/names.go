package backend

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MaxKeyLen is the AWS limit on object key length, in bytes.
const MaxKeyLen = 1024

// ValidateKey refuses keys that could name anything but one object below a
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
func ValidateKey(key string) error {
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

// ValidateBucket checks the S3 bucket naming rules ("Bucket naming rules",
// Amazon S3 User Guide): 3 to 63 characters of lower-case letters, digits,
// dots and hyphens, starting and ending with a letter or digit, no "..", not
// an IP address.
func ValidateBucket(b string) error {
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

// ResolveRange parses an HTTP Range header value (RFC 9110 section 14.1.2)
// for an object of the given size, as S3 does. It returns nil, nil when the
// header is empty or not a single, well-formed byte range (S3 then serves
// the whole object: "bytes=10-5", "bytes= -1", "bytes=0-0,1-2", "foo=0-1"),
// and ErrInvalidRange when a well-formed range is not satisfiable (a first
// byte at or past the end, "bytes=-0"). A suffix range of an empty object is
// ignored.
func ResolveRange(h string, size int64) (*Range, error) {
	spec, ok := strings.CutPrefix(h, "bytes=")
	if !ok {
		return nil, nil
	}
	first, last, ok := strings.Cut(spec, "-")
	if !ok || (first == "" && last == "") {
		return nil, nil
	}
	start, okFirst := parseOffset(first)
	end, okLast := parseOffset(last)
	if (first != "" && !okFirst) || (last != "" && !okLast) {
		return nil, nil
	}
	if first == "" { // suffix: the last n bytes
		if end == 0 {
			return nil, ErrInvalidRange
		}
		if size == 0 {
			return nil, nil
		}
		n := min(end, size)
		return &Range{Start: size - n, Length: n}, nil
	}
	if last == "" {
		end = size - 1
	} else if end < start {
		return nil, nil
	}
	if start >= size {
		return nil, ErrInvalidRange
	}
	end = min(end, size-1)
	return &Range{Start: start, Length: end - start + 1}, nil
}

// ResolveCopySourceRange parses x-amz-copy-source-range ("bytes=first-last",
// both required) for a source object of the given size. ok is false when
// the value is malformed; ErrInvalidRange when last is at or past the end.
func ResolveCopySourceRange(h string, size int64) (rng *Range, ok bool, err error) {
	spec, found := strings.CutPrefix(h, "bytes=")
	if !found {
		return nil, false, nil
	}
	first, last, found := strings.Cut(spec, "-")
	start, ok1 := parseOffset(first)
	end, ok2 := parseOffset(last)
	if !found || !ok1 || !ok2 || end < start {
		return nil, false, nil
	}
	if end >= size {
		return nil, true, ErrInvalidRange
	}
	return &Range{Start: start, Length: end - start + 1}, true, nil
}

// parseOffset accepts only decimal digits (no sign, no spaces).
func parseOffset(s string) (int64, bool) {
	if s == "" || strings.Trim(s, "0123456789") != "" {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

// MultipartETag is the S3 ETag of a multipart object: the MD5 of the
// concatenated binary MD5s of its parts, "-", the part count.
func MultipartETag(partETags []string) string {
	h := md5.New()
	for _, e := range partETags {
		b, _ := hex.DecodeString(strings.Trim(e, `"`))
		h.Write(b)
	}
	return hex.EncodeToString(h.Sum(nil)) + "-" + strconv.Itoa(len(partETags))
}
