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

// unreserved marks the RFC 3986 unreserved set that the SigV4 UriEncode
// leaves alone: A-Z a-z 0-9 - . _ ~
var unreserved = func() (t [256]bool) {
	for c := range t {
		t[c] = 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
			c == '-' || c == '.' || c == '_' || c == '~'
	}
	return t
}()

// appendURIEncode appends s encoded the SigV4 way (UriEncode in the AWS
// docs): every byte outside the unreserved set becomes %XX with uppercase hex;
// '/' is kept when keepSlash.
func appendURIEncode(dst []byte, s string, keepSlash bool) []byte {
	for i := 0; i < len(s); {
		// Copy the run of bytes that stay as they are in one append.
		j := i
		for j < len(s) && (unreserved[s[j]] || keepSlash && s[j] == '/') {
			j++
		}
		dst = append(dst, s[i:j]...)
		if j == len(s) {
			break
		}
		c := s[j]
		dst = append(dst, '%', upperhex[c>>4], upperhex[c&15])
		i = j + 1
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
	if strings.IndexByte(s, '%') < 0 && (!plusSpace || strings.IndexByte(s, '+') < 0) {
		return s, true
	}
	var b strings.Builder // one allocation, which String does not copy
	b.Grow(len(s))
	for i := 0; i < len(s); {
		// Copy the run up to the next escape or '+' in one write.
		j := i
		for j < len(s) && s[j] != '%' && !(plusSpace && s[j] == '+') {
			j++
		}
		b.WriteString(s[i:j])
		if j == len(s) {
			break
		}
		if s[j] == '+' {
			b.WriteByte(' ')
			i = j + 1
			continue
		}
		if j+2 >= len(s) {
			return "", false
		}
		hi, ok1 := unhex(s[j+1])
		lo, ok2 := unhex(s[j+2])
		if !ok1 || !ok2 {
			return "", false
		}
		b.WriteByte(hi<<4 | lo)
		i = j + 3
	}
	return b.String(), true
}

// appendDecodedURIEncode appends the UriEncode (keeping '/') of s after
// percentDecode(s, false), without building the decoded string. ok is false
// when percentDecode would fail.
func appendDecodedURIEncode(dst []byte, s string) ([]byte, bool) {
	start := len(dst)
	for i := 0; i < len(s); {
		j := i
		for j < len(s) && (unreserved[s[j]] || s[j] == '/') {
			j++
		}
		dst = append(dst, s[i:j]...)
		if j == len(s) {
			break
		}
		c := s[j]
		i = j + 1
		if c == '%' {
			if j+2 >= len(s) {
				return dst[:start], false
			}
			hi, ok1 := unhex(s[j+1])
			lo, ok2 := unhex(s[j+2])
			if !ok1 || !ok2 {
				return dst[:start], false
			}
			c = hi<<4 | lo
			i = j + 3
			if unreserved[c] || c == '/' {
				dst = append(dst, c)
				continue
			}
		}
		dst = append(dst, '%', upperhex[c>>4], upperhex[c&15])
	}
	return dst, true
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
		return appendDecodedURIEncode(dst, rawPath)
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

// queryParam is one query parameter: its decoded name, its value as sent,
// and both in the SigV4 canonical encoding.
type queryParam struct {
	key              string // decoded
	rawValue         string // as sent (its escapes are valid); see value
	encKey, encValue string // SigV4 UriEncoded
}

// value returns the decoded value.
func (p *queryParam) value() string {
	v, _ := percentDecode(p.rawValue, true) // validated by appendQueryParams
	return v
}

// parseQuery splits a raw query string into parameters in wire order. '+'
// decodes to a space, as in application/x-www-form-urlencoded and as the AWS
// SDKs treat it. Empty pieces ("a=1&&b=2") are skipped. A malformed percent
// escape makes ok false.
func parseQuery(raw string) (params []queryParam, ok bool) {
	if raw == "" {
		return nil, true
	}
	return appendQueryParams(make([]queryParam, 0, strings.Count(raw, "&")+1), raw)
}

// appendQueryParams is parseQuery appending to params, so that the caller
// can reuse its storage. Values are decoded only on demand (value).
func appendQueryParams(params []queryParam, raw string) ([]queryParam, bool) {
	for raw != "" {
		var piece string
		piece, raw, _ = strings.Cut(raw, "&")
		if piece == "" {
			continue
		}
		k, v, _ := strings.Cut(piece, "=")
		p := queryParam{rawValue: v}
		var ok bool
		if p.key, p.encKey, ok = parseComponent(k, true); !ok {
			return nil, false
		}
		if _, p.encValue, ok = parseComponent(v, false); !ok {
			return nil, false
		}
		params = append(params, p)
	}
	return params, true
}

// parseComponent checks the escapes of a query component as sent and
// returns its SigV4 UriEncode and, with decode, its decoded form. A
// component already in canonical form (the common case: the SDKs send them
// so) is its own encoding and costs no allocation.
func parseComponent(raw string, decode bool) (decoded, enc string, ok bool) {
	if canonical, escaped := isCanonicalComponent(raw); canonical {
		if decode && escaped {
			decoded, _ = percentDecode(raw, true)
		} else {
			decoded = raw
		}
		return decoded, raw, true
	}
	if decoded, ok = percentDecode(raw, true); !ok {
		return "", "", false
	}
	return decoded, encodeComponent(decoded), true
}

// isCanonicalComponent reports whether s is its own SigV4 UriEncode after
// decoding: only unreserved bytes and %XX escapes with uppercase hex digits
// of bytes outside the unreserved set (so no '+', which decodes to a space).
// escaped reports whether s holds any escape.
func isCanonicalComponent(s string) (canonical, escaped bool) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if unreserved[c] {
			continue
		}
		if c != '%' || i+2 >= len(s) {
			return false, false
		}
		hi, ok1 := upperHexValue(s[i+1])
		lo, ok2 := upperHexValue(s[i+2])
		if !ok1 || !ok2 || unreserved[hi<<4|lo] {
			return false, false
		}
		escaped = true
		i += 2
	}
	return true, escaped
}

func upperHexValue(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}

// appendCanonicalQuery appends the canonical query string: each name and
// value UriEncoded, sorted by encoded name then encoded value, joined with
// '&'. Parameters named skip (X-Amz-Signature for presigned URLs) are left out.
func appendCanonicalQuery(dst []byte, params []queryParam, skip func(key string) bool) []byte {
	if len(params) == 0 {
		return dst
	}
	// Sort indexes into params; a small query needs no allocation.
	var stack [32]int
	order := stack[:0]
	for i := range params {
		if skip != nil && skip(params[i].key) {
			continue
		}
		order = append(order, i)
	}
	slices.SortFunc(order, func(i, j int) int {
		a, b := &params[i], &params[j]
		if c := strings.Compare(a.encKey, b.encKey); c != 0 {
			return c
		}
		return strings.Compare(a.encValue, b.encValue)
	})
	for n, i := range order {
		if n > 0 {
			dst = append(dst, '&')
		}
		dst = append(dst, params[i].encKey...)
		dst = append(dst, '=')
		dst = append(dst, params[i].encValue...)
	}
	return dst
}

func encodeComponent(s string) string {
	for i := 0; i < len(s); i++ {
		if !unreserved[s[i]] {
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
	if !strings.Contains(v, "  ") {
		return append(dst, v...)
	}
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
