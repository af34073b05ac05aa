package sigv4

import (
	"encoding/hex"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Algorithm is the only signing algorithm accepted (DESIGN invariant 6: an
// explicit allowlist, never what the client asks for).
const Algorithm = "AWS4-HMAC-SHA256"

const (
	algorithmSigV4a = "AWS4-ECDSA-P256-SHA256"
	terminator      = "aws4_request"
	amzDateLayout   = "20060102T150405Z"

	// Bounds on untrusted input, far above what any SDK sends.
	maxAuthorizationLen = 8 << 10
	maxSignedHeaders    = 128
	maxCanonicalHeaders = 64 << 10
	maxTokenLen         = 8 << 10
)

// Query parameter names of a presigned URL (case-sensitive, as in AWS).
const (
	qAlgorithm     = "X-Amz-Algorithm"
	qCredential    = "X-Amz-Credential"
	qDate          = "X-Amz-Date"
	qExpires       = "X-Amz-Expires"
	qSignedHeaders = "X-Amz-SignedHeaders"
	qSignature     = "X-Amz-Signature"
	qSecurityToken = "X-Amz-Security-Token"
)

// authFields is what the Authorization header or the presigned query names.
type authFields struct {
	accessKeyID string
	date        string // YYYYMMDD from the credential scope
	region      string
	service     string
	terminal    string
	scope       string // date/region/service/terminal
	signedRaw   string
	signed      []string
	signature   [32]byte

	// presigned form only
	presigned bool
	amzDate   string
	expires   int64
	token     string
	hasToken  bool
}

const credentialForm = `"<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request"`

// parseAuthorization parses an Authorization header value of the form
//
//	AWS4-HMAC-SHA256 Credential=AKID/20150830/us-east-1/sts/aws4_request, SignedHeaders=host;x-amz-date, Signature=<64 hex>
//
// Components may be separated by "," or ", "; each must appear exactly once.
func parseAuthorization(h string) (*authFields, *Error) {
	a := &authFields{}
	if e := parseAuthorizationInto(h, a); e != nil {
		return nil, e
	}
	return a, nil
}

// parseAuthorizationInto is parseAuthorization filling in *a, which it
// resets first.
func parseAuthorizationInto(h string, a *authFields) *Error {
	*a = authFields{}
	if len(h) > maxAuthorizationLen {
		return malformedHeader("the header is too long.")
	}
	alg, rest, _ := strings.Cut(h, " ")
	switch alg {
	case Algorithm:
	case algorithmSigV4a:
		return newErr(CodeNotImplemented, http.StatusNotImplemented,
			"Signature Version 4A (AWS4-ECDSA-P256-SHA256) is not supported. Please use AWS4-HMAC-SHA256.")
	default:
		return newErr(CodeInvalidRequest, http.StatusBadRequest,
			"The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.")
	}
	var cred, signed, sig string
	var haveCred, haveSigned, haveSig bool
	for rest != "" {
		var part string
		part, rest, _ = strings.Cut(rest, ",")
		part = strings.TrimSpace(part)
		k, v, ok := strings.Cut(part, "=")
		if !ok {
			return malformedHeader("the component %q is not of the form key=value.", truncate(part))
		}
		var dst *string
		var seen *bool
		switch k {
		case "Credential":
			dst, seen = &cred, &haveCred
		case "SignedHeaders":
			dst, seen = &signed, &haveSigned
		case "Signature":
			dst, seen = &sig, &haveSig
		default:
			return malformedHeader("unknown component %q.", truncate(k))
		}
		if *seen {
			return malformedHeader("the component %s appears more than once.", k)
		}
		*dst, *seen = v, true
	}
	if !haveCred || !haveSigned || !haveSig {
		return malformedHeader("the authorization header requires three components: Credential, SignedHeaders, and Signature.")
	}
	if !parseCredential(cred, a) {
		return malformedHeader("the Credential is mal-formed; expecting %s.", credentialForm)
	}
	var ok bool
	if a.signed, ok = parseSignedHeaders(signed); !ok {
		return malformedHeader("the SignedHeaders component is mal-formed; expecting lowercase header names, sorted and separated by ';'.")
	}
	a.signedRaw = signed
	if !parseSignature(sig, &a.signature) {
		return malformedHeader("the Signature must be 64 hexadecimal characters.")
	}
	return nil
}

// parseCredential parses AKID/YYYYMMDD/region/service/aws4_request.
func parseCredential(s string, a *authFields) bool {
	var parts [5]string
	rest := s
	for i := range 4 {
		var ok bool
		if parts[i], rest, ok = strings.Cut(rest, "/"); !ok {
			return false
		}
	}
	if strings.IndexByte(rest, '/') >= 0 {
		return false
	}
	parts[4] = rest
	for _, p := range parts {
		if p == "" {
			return false
		}
	}
	if len(parts[1]) != 8 {
		return false
	}
	for i := 0; i < 8; i++ {
		if parts[1][i] < '0' || parts[1][i] > '9' {
			return false
		}
	}
	a.accessKeyID, a.date, a.region, a.service, a.terminal = parts[0], parts[1], parts[2], parts[3], parts[4]
	a.scope = s[len(parts[0])+1:]
	return true
}

// parseSignedHeaders splits the SignedHeaders list and checks that every
// name is a lowercase HTTP token and that the list is strictly ascending, as
// the canonical request requires.
func parseSignedHeaders(s string) ([]string, bool) {
	if s == "" || len(s) > maxCanonicalHeaders {
		return nil, false
	}
	n := strings.Count(s, ";") + 1
	if n > maxSignedHeaders {
		return nil, false
	}
	out := make([]string, 0, n)
	start := 0
	for i := 0; i <= len(s); i++ {
		if i < len(s) && s[i] != ';' {
			if !isLowerToken[s[i]] {
				return nil, false
			}
			continue
		}
		name := s[start:i]
		if name == "" || len(out) > 0 && out[len(out)-1] >= name {
			return nil, false
		}
		out = append(out, name)
		start = i + 1
	}
	return out, true
}

// isLowerToken marks the bytes of an HTTP token (RFC 9110 section 5.6.2)
// except the uppercase letters.
var isLowerToken = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range []byte("!#$%&'*+-.^_`|~") {
		t[c] = true
	}
	return t
}()

func parseSignature(s string, dst *[32]byte) bool {
	if len(s) != 64 {
		return false
	}
	_, err := hex.Decode(dst[:], []byte(s))
	return err == nil
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

// isPresignParam reports whether a query parameter belongs to SigV4 query
// authentication.
func isPresignParam(k string) bool {
	switch k {
	case qAlgorithm, qCredential, qDate, qExpires, qSignedHeaders, qSignature:
		return true
	}
	return false
}

// parsePresign extracts the presigned-URL parameters from params. Each must
// appear exactly once; X-Amz-Security-Token at most once.
func parsePresign(params []queryParam, maxExpiry time.Duration) (*authFields, *Error) {
	a := &authFields{}
	if e := parsePresignInto(params, maxExpiry, a); e != nil {
		return nil, e
	}
	return a, nil
}

// parsePresignInto is parsePresign filling in *a, which it resets first.
func parsePresignInto(params []queryParam, maxExpiry time.Duration, a *authFields) *Error {
	*a = authFields{}
	var alg, cred, date, expires, signed, sig, token string
	var seen [7]bool
	for j := range params {
		p := &params[j]
		var dst *string
		var i int
		switch p.key {
		case qAlgorithm:
			dst, i = &alg, 0
		case qCredential:
			dst, i = &cred, 1
		case qDate:
			dst, i = &date, 2
		case qExpires:
			dst, i = &expires, 3
		case qSignedHeaders:
			dst, i = &signed, 4
		case qSignature:
			dst, i = &sig, 5
		case qSecurityToken:
			dst, i = &token, 6
		default:
			continue
		}
		if seen[i] {
			return malformedQuery("The query parameter %s appears more than once.", p.key)
		}
		*dst, seen[i] = p.value(), true
	}
	if seen[0] {
		switch alg {
		case Algorithm:
		case algorithmSigV4a:
			return newErr(CodeNotImplemented, http.StatusNotImplemented,
				"Signature Version 4A (AWS4-ECDSA-P256-SHA256) is not supported. Please use AWS4-HMAC-SHA256.")
		default:
			return malformedQuery(`X-Amz-Algorithm only supports "AWS4-HMAC-SHA256"`)
		}
	}
	for i := 0; i < 6; i++ {
		if !seen[i] {
			return malformedQuery("Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters.")
		}
	}
	a.presigned, a.amzDate, a.token, a.hasToken = true, date, token, seen[6]
	if !parseCredential(cred, a) {
		return malformedQuery("Error parsing the X-Amz-Credential parameter; the Credential is mal-formed; expecting %s.", credentialForm)
	}
	n, err := strconv.ParseInt(expires, 10, 64)
	if err != nil || len(expires) > 12 {
		return malformedQuery("X-Amz-Expires should be a number")
	}
	if n < 1 {
		return malformedQuery("X-Amz-Expires must be positive")
	}
	if n > int64(maxExpiry/time.Second) {
		return malformedQuery("X-Amz-Expires must be less than a week (in seconds) that is %d", int64(maxExpiry/time.Second))
	}
	a.expires = n
	var ok bool
	if a.signed, ok = parseSignedHeaders(signed); !ok {
		return malformedQuery("X-Amz-SignedHeaders is mal-formed; expecting lowercase header names, sorted and separated by ';'.")
	}
	a.signedRaw = signed
	if !parseSignature(sig, &a.signature) {
		return malformedQuery("X-Amz-Signature must be 64 hexadecimal characters.")
	}
	return nil
}

// parseAmzDate parses the ISO 8601 basic format of X-Amz-Date,
// "yyyyMMdd'T'HHmmss'Z'" in UTC. It accepts exactly what
// time.Parse(amzDateLayout, s) accepts for a string of that length (every
// field its number of digits, month, day, hour, minute and second in range),
// without its generality.
func parseAmzDate(s string) (time.Time, bool) {
	if len(s) != len(amzDateLayout) || s[8] != 'T' || s[15] != 'Z' {
		return time.Time{}, false
	}
	year, ok1 := atoiDigits(s[0:4])
	month, ok2 := atoiDigits(s[4:6])
	day, ok3 := atoiDigits(s[6:8])
	hour, ok4 := atoiDigits(s[9:11])
	minute, ok5 := atoiDigits(s[11:13])
	sec, ok6 := atoiDigits(s[13:15])
	if !ok1 || !ok2 || !ok3 || !ok4 || !ok5 || !ok6 ||
		month < 1 || month > 12 || day < 1 || day > daysIn(time.Month(month), year) ||
		hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, false
	}
	return time.Date(year, time.Month(month), day, hour, minute, sec, 0, time.UTC), true
}

// atoiDigits parses s, which must be all ASCII digits.
func atoiDigits(s string) (int, bool) {
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

// daysIn returns the number of days in month m of year y (proleptic
// Gregorian calendar, as package time).
func daysIn(m time.Month, y int) int {
	if m == time.February {
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	}
	return 30 + int((m+m/8)&1) // 31 in Jan, Mar, May, Jul, Aug, Oct, Dec
}
