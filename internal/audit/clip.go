package audit

import (
	"strings"
	"unicode/utf8"
)

// Field limits for attacker-chosen values in audit records. A record is
// written for every request, refused ones included, so a value the caller
// picks (a User-Agent, a header, an access key id, a query parameter) must
// not decide how many bytes each record costs.
const (
	MaxUserAgent = 256          // User-Agent, in Actor and in CloudTrail records
	MaxField     = 1024         // any other attacker-chosen string (S3 keys are at most 1024 bytes)
	MaxReason    = 4 * MaxField // an event's reason, which may quote several such values
)

// Clip returns s cut to at most n bytes of valid UTF-8, for recording an
// attacker-chosen value in an audit record or an error message. A clipped
// value ends in "…" (counted within n), so a reader can tell it was cut;
// invalid UTF-8 is replaced by U+FFFD. Values already short and valid are
// returned unchanged, without allocating. Clip is the one clipping helper:
// every plane uses it.
func Clip(s string, n int) string {
	if len(s) <= n && utf8.ValidString(s) {
		return s
	}
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	const ellipsis = "…"
	cut := n - len(ellipsis)
	if cut <= 0 {
		cut = n
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		return s[:cut]
	}
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + ellipsis
}
