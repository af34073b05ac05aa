package sigv4

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// This file builds the canonical request of the SigV4 spec ("Create a
// canonical request", AWS IAM User Guide, "Elements of an AWS API request
// signature"; for S3: "Signature Calculations for the Authorization Header:
// Transferring Payload in a Single Chunk").
//
//	CanonicalRequest =
//	  HTTPMethod + '\n' + CanonicalURI + '\n' + CanonicalQueryString + '\n' +
//	  CanonicalHeaders + '\n' + SignedHeaders + '\n' + HashedPayload

const upperhex = "0123456789ABCDEF"

// isUnreserved reports whether c is in the RFC 3986 unreserved set that the
// SigV4 UriEncode leaves alone: A-Z a-z 0-9 - . _ ~
func isUnreserved(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
		c == '-' || c == '.' || c == '_' || c == '~'
}

// appendURIEncode appends s encoded the SigV4 way (UriEncode in the AWS
// docs): every byte outside the unreserved set becomes %XX with uppercase hex;
// '/' is kept when keepSlash.
func appendURIEncode(dst []byte, s string, keepSlash bool) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if isUnreserved(c) || keepSlash && c == '/' {
			dst = append(dst, c)
			continue
		}
		dst = append(dst, '%', upperhex[c>>4], upperhex[c&15])
	}
	return dst
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// percentDecode decodes %XX escapes; with plusSpace a '+' becomes a space
// (query strings). A malformed escape makes ok false.
func percentDecode(s string, plusSpace bool) (out string, ok bool) {
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '%' || plusSpace && s[i] == '+' {
			n++
		}
	}
	if n == 0 {
		return s, true
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '%':
			if i+2 >= len(s) {
				return "", false
			}
			hi, ok1 := unhex(s[i+1])
			lo, ok2 := unhex(s[i+2])
			if !ok1 || !ok2 {
				return "", false
			}
			b = append(b, hi<<4|lo)
			i += 2
		case plusSpace && c == '+':
			b = append(b, ' ')
		default:
			b = append(b, c)
		}
	}
	return string(b), true
}

// appendCanonicalURI appends the canonical URI for rawPath, the path exactly
// as sent on the wire (still percent-encoded).
//
// S3 mode (s3 == true): S3 neither normalizes nor double-encodes. The path is
// decoded once and re-encoded with UriEncode, so "/a%2Bb" and "/a+b" both
// canonicalize to "/a%2Bb" and the canonical URI names exactly the object key
// the gateway will use.
//
// Standard mode (every other service): dot segments and duplicate slashes are
// removed (when normalize) and the raw path is UriEncoded once more ("double encoding": a
// space sent as %20 is signed as %2520). This is what the AWS SDKs and the
// aws-c-auth test suite (use_double_uri_encode, should_normalize_uri_path)
// do.
func appendCanonicalURI(dst []byte, rawPath string, s3, normalize bool) ([]byte, bool) {
	if rawPath == "" {
		return append(dst, '/'), true
	}
	if s3 {
		p, ok := percentDecode(rawPath, false)
		if !ok {
			return dst, false
		}
		return appendURIEncode(dst, p, true), true
	}
	if normalize {
		rawPath = normalizePath(rawPath)
	}
	return appendURIEncode(dst, rawPath, true), true
}

// normalizePath removes empty segments ("//"), "." and ".." from an absolute
// path, in the manner of RFC 3986 section 5.2.4, keeping a trailing slash.
// The result always starts with '/'.
func normalizePath(p string) string {
	if !strings.Contains(p, "//") && !strings.Contains(p, "/.") && p != "" && p[0] == '/' && !strings.HasPrefix(p, ".") {
		return p
	}
	segs := strings.Split(p, "/")
	out := make([]string, 0, len(segs))
	trailing := false
	for i, s := range segs {
		last := i == len(segs)-1
		switch s {
		case "", ".":
			trailing = last
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
			trailing = last
		default:
			out = append(out, s)
			trailing = false
		}
	}
	if len(out) == 0 {
		return "/"
	}
	r := "/" + strings.Join(out, "/")
	if trailing {
		r += "/"
	}
	return r
}

// queryParam is one decoded query parameter, kept with its encoded form.
type queryParam struct {
	key, value       string // decoded
	encKey, encValue string // SigV4 UriEncoded
}

// parseQuery splits a raw query string into parameters in wire order. '+'
// decodes to a space, as in application/x-www-form-urlencoded and as the AWS
// SDKs treat it. Empty pieces ("a=1&&b=2") are skipped. A malformed percent
// escape makes ok false.
func parseQuery(raw string) (params []queryParam, ok bool) {
	if raw == "" {
		return nil, true
	}
	params = make([]queryParam, 0, strings.Count(raw, "&")+1)
	for raw != "" {
		var piece string
		piece, raw, _ = strings.Cut(raw, "&")
		if piece == "" {
			continue
		}
		k, v, _ := strings.Cut(piece, "=")
		dk, ok1 := percentDecode(k, true)
		dv, ok2 := percentDecode(v, true)
		if !ok1 || !ok2 {
			return nil, false
		}
		params = append(params, queryParam{key: dk, value: dv})
	}
	return params, true
}

// appendCanonicalQuery appends the canonical query string: each name and
// value UriEncoded, sorted by encoded name then encoded value, joined with
// '&'. Parameters named skip (X-Amz-Signature for presigned URLs) are left out.
func appendCanonicalQuery(dst []byte, params []queryParam, skip func(key string) bool) []byte {
	if len(params) == 0 {
		return dst
	}
	sorted := make([]queryParam, 0, len(params))
	for _, p := range params {
		if skip != nil && skip(p.key) {
			continue
		}
		p.encKey = encodeComponent(p.key)
		p.encValue = encodeComponent(p.value)
		sorted = append(sorted, p)
	}
	slices.SortFunc(sorted, func(a, b queryParam) int {
		if c := strings.Compare(a.encKey, b.encKey); c != 0 {
			return c
		}
		return strings.Compare(a.encValue, b.encValue)
	})
	for i, p := range sorted {
		if i > 0 {
			dst = append(dst, '&')
		}
		dst = append(dst, p.encKey...)
		dst = append(dst, '=')
		dst = append(dst, p.encValue...)
	}
	return dst
}

func encodeComponent(s string) string {
	for i := 0; i < len(s); i++ {
		if !isUnreserved(s[i]) {
			return string(appendURIEncode(make([]byte, 0, len(s)+16), s, false))
		}
	}
	return s
}

// appendTrimmedValue appends v with leading and trailing whitespace removed
// and every inner run of spaces (not tabs) collapsed to one, the SigV4
// "Trimall" as the AWS SDKs implement it.
// Line folding has already been turned into spaces by the HTTP parser.
func appendTrimmedValue(dst []byte, v string) []byte {
	v = strings.TrimSpace(v)
	space := false
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == ' ' {
			if !space {
				dst = append(dst, ' ')
			}
			space = true
			continue
		}
		space = false
		dst = append(dst, c)
	}
	return dst
}

// headerValues returns the values of the lowercase header name as the
// client sent them. Go's HTTP server moves some headers out of r.Header:
// Host into r.Host, Transfer-Encoding into r.TransferEncoding, and (for
// client-built requests) Content-Length into r.ContentLength.
func headerValues(r *http.Request, name string) []string {
	switch name {
	case "host":
		return []string{r.Host}
	case "content-length":
		if v := r.Header.Values("Content-Length"); len(v) > 0 {
			return v
		}
		if r.ContentLength > 0 {
			return []string{strconv.FormatInt(r.ContentLength, 10)}
		}
		return nil
	case "transfer-encoding":
		if v := r.Header.Values("Transfer-Encoding"); len(v) > 0 {
			return v
		}
		if len(r.TransferEncoding) > 0 {
			return []string{strings.Join(r.TransferEncoding, ",")}
		}
		return nil
	}
	return lookupHeader(r.Header, name)
}

// lookupHeader returns h's values for a lowercase token name without
// allocating: it builds the canonical MIME key (as net/textproto does for
// token names) in a stack buffer.
func lookupHeader(h http.Header, name string) []string {
	var buf [64]byte
	if len(name) > len(buf) {
		return h.Values(name)
	}
	upper := true
	for i := 0; i < len(name); i++ {
		c := name[i]
		if upper && 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		buf[i] = c
		upper = c == '-'
	}
	return h[string(buf[:len(name)])]
}

// appendCanonicalHeaders appends "name:value\n" for each signed header, in
// the order given (which the parser has checked is sorted and unique).
// Repeated headers are joined with ',' in the order received.
// values, when not nil, holds headerValues for each signed header.
func appendCanonicalHeaders(dst []byte, r *http.Request, signed []string, values [][]string) []byte {
	for j, name := range signed {
		dst = append(dst, name...)
		dst = append(dst, ':')
		var vals []string
		if values != nil {
			vals = values[j]
		} else {
			vals = headerValues(r, name)
		}
		for i, v := range vals {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendTrimmedValue(dst, v)
		}
		dst = append(dst, '\n')
	}
	return dst
}

// canonicalInput is everything that goes into a canonical request.
type canonicalInput struct {
	method        string
	rawPath       string
	query         []queryParam
	skipQuery     func(string) bool
	signedHeaders []string
	values        [][]string // optional: the values of each signed header
	signedRaw     string     // the SignedHeaders value, joined with ';'
	payloadHash   string
	s3            bool
	normalize     bool // standard mode only
}

// appendCanonicalRequest appends the canonical request. ok is false when the
// path cannot be decoded.
func appendCanonicalRequest(dst []byte, r *http.Request, in *canonicalInput) ([]byte, bool) {
	dst = append(dst, in.method...)
	dst = append(dst, '\n')
	var ok bool
	dst, ok = appendCanonicalURI(dst, in.rawPath, in.s3, in.normalize)
	if !ok {
		return dst, false
	}
	dst = append(dst, '\n')
	dst = appendCanonicalQuery(dst, in.query, in.skipQuery)
	dst = append(dst, '\n')
	dst = appendCanonicalHeaders(dst, r, in.signedHeaders, in.values)
	dst = append(dst, '\n')
	dst = append(dst, in.signedRaw...)
	dst = append(dst, '\n')
	dst = append(dst, in.payloadHash...)
	return dst, true
}
