package backend

import (
	"crypto/md5"
	"encoding/hex"
	"strconv"
	"strings"
)

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
