package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// RecordType says what a log record carries.
type RecordType string

const (
	// TypeEvent records carry an Event.
	TypeEvent RecordType = "event"
	// TypeCheckpoint records carry a signed Checkpoint over the record
	// immediately before them.
	TypeCheckpoint RecordType = "checkpoint"
	// TypeRecovery records note that Open truncated a torn final line.
	TypeRecovery RecordType = "recovery"
)

// GenesisHash is the prev value of the first record: 64 zeros.
const GenesisHash = "0000000000000000000000000000000000000000000000000000000000000000"

// Record is one line of the audit log, as returned by Search. Exactly one of
// Event, Checkpoint and Recovery is set, according to Type.
type Record struct {
	Seq        uint64      `json:"seq"`
	Time       time.Time   `json:"time"`
	Type       RecordType  `json:"type"`
	Prev       string      `json:"prev"`
	Event      *Event      `json:"event,omitempty"`
	Checkpoint *Checkpoint `json:"checkpoint,omitempty"`
	Recovery   *Recovery   `json:"recovery,omitempty"`
	Hash       string      `json:"hash"`
}

// Recovery is the payload of a recovery record: what Open cut away.
type Recovery struct {
	Reason         string `json:"reason"`
	TruncatedBytes int64  `json:"truncatedBytes"`
	SHA256         string `json:"sha256"`            // of the bytes cut away
	SavedAs        string `json:"savedAs,omitempty"` // file holding them, in the audit dir
}

// Canonical form (see docs/design/0002-audit-chain.md):
//
//	body = {"seq":N,"time":"T","type":"K","prev":"P","<K>":PAYLOAD}
//	hash = hex(SHA-256(body))
//	line = body without its final "}" + ,"hash":"<hash>"} + "\n"
//
// The hash covers the exact bytes written, so no re-encoding is needed to
// verify: strip the fixed-size hash suffix, put back "}", hash.

const (
	hashSuffixLen = len(`,"hash":"`) + 64 + len(`"}`)
)

// appendRecord appends one complete log line to dst and returns the record's
// hash. payload must be a valid JSON value.
func appendRecord(dst []byte, seq uint64, t time.Time, typ RecordType, prev *[64]byte, payload []byte) ([]byte, [32]byte) {
	start := len(dst)
	dst = append(dst, `{"seq":`...)
	dst = strconv.AppendUint(dst, seq, 10)
	dst = append(dst, `,"time":"`...)
	dst = t.UTC().AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, `","type":"`...)
	dst = append(dst, typ...)
	dst = append(dst, `","prev":"`...)
	dst = append(dst, prev[:]...)
	dst = append(dst, `","`...)
	dst = append(dst, typ...)
	dst = append(dst, `":`...)
	dst = append(dst, payload...)
	end := len(dst)
	dst = append(dst, '}')
	sum := sha256.Sum256(dst[start:])
	dst = dst[:end]
	dst = append(dst, `,"hash":"`...)
	dst = hex.AppendEncode(dst, sum[:])
	dst = append(dst, "\"}\n"...)
	return dst, sum
}

// splitLine checks the fixed hash suffix of a line (without its newline)
// and returns the record's recomputed body hash and its claimed hash.
func splitLine(line []byte) (computed, claimed [32]byte, ok bool) {
	if len(line) < hashSuffixLen+2 || line[0] != '{' {
		return computed, claimed, false
	}
	cut := len(line) - hashSuffixLen
	suf := line[cut:]
	if !bytes.HasPrefix(suf, []byte(`,"hash":"`)) || !bytes.HasSuffix(suf, []byte(`"}`)) {
		return computed, claimed, false
	}
	hx := suf[len(`,"hash":"`) : len(`,"hash":"`)+64]
	for _, c := range hx {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return computed, claimed, false
		}
	}
	if _, err := hex.Decode(claimed[:], hx); err != nil {
		return computed, claimed, false
	}
	h := sha256.New()
	h.Write(line[:cut])
	h.Write([]byte{'}'})
	h.Sum(computed[:0])
	return computed, claimed, true
}

// recordHeader is what the verifier decodes from a record body.
type recordHeader struct {
	Seq        *uint64         `json:"seq"`
	Time       time.Time       `json:"time"`
	Type       RecordType      `json:"type"`
	Prev       string          `json:"prev"`
	Event      json.RawMessage `json:"event"`
	Checkpoint *Checkpoint     `json:"checkpoint"`
	Recovery   *Recovery       `json:"recovery"`
}

// encodeEvent appends the JSON encoding of e to dst. It produces the same
// document as encoding/json would for Event (field order and omitempty as in
// the struct tags; Details through encoding/json, keys sorted; Time in UTC),
// without reflection for the fixed fields.
func encodeEvent(dst []byte, e *Event) ([]byte, error) {
	dst = append(dst, `{"code":`...)
	dst = appendString(dst, string(e.Code))
	dst = append(dst, `,"action":`...)
	dst = appendString(dst, e.Action)
	dst = append(dst, `,"time":"`...)
	dst = e.Time.UTC().AppendFormat(dst, time.RFC3339Nano)
	dst = append(dst, '"')
	if e.RequestID != "" {
		dst = append(dst, `,"requestId":`...)
		dst = appendString(dst, e.RequestID)
	}
	if e.ClientRequestID != "" {
		dst = append(dst, `,"clientRequestId":`...)
		dst = appendString(dst, e.ClientRequestID)
	}
	dst = append(dst, `,"actor":{`...)
	n := len(dst)
	dst = appendOpt(dst, n, "userId", e.Actor.UserID)
	dst = appendOpt(dst, n, "user", e.Actor.User)
	dst = appendOpt(dst, n, "impersonator", e.Actor.Impersonator)
	dst = appendOpt(dst, n, "sourceIp", e.Actor.SourceIP)
	dst = appendOpt(dst, n, "userAgent", e.Actor.UserAgent)
	dst = appendOpt(dst, n, "authMethod", e.Actor.AuthMethod)
	dst = appendOpt(dst, n, "sessionId", e.Actor.SessionID)
	dst = appendOpt(dst, n, "accessKeyId", e.Actor.AccessKeyID)
	dst = append(dst, `},"resource":{"type":`...)
	dst = appendString(dst, e.Resource.Type)
	if e.Resource.ID != "" {
		dst = append(dst, `,"id":`...)
		dst = appendString(dst, e.Resource.ID)
	}
	if e.Resource.Name != "" {
		dst = append(dst, `,"name":`...)
		dst = appendString(dst, e.Resource.Name)
	}
	dst = append(dst, `},"decision":`...)
	dst = appendString(dst, string(e.Decision))
	if e.Reason != "" {
		dst = append(dst, `,"reason":`...)
		dst = appendString(dst, e.Reason)
	}
	if len(e.Details) > 0 {
		dst = append(dst, `,"details":`...)
		var err error
		if dst, err = AppendJSONObject(dst, e.Details); err != nil {
			return dst, fmt.Errorf("audit: encode event details: %w", err)
		}
	}
	return append(dst, '}'), nil
}

// JSONAppender is a Details value that appends its own JSON encoding, so
// that a plane's hot-path record is encoded without reflection. Its output
// must be what encoding/json writes for the value (its tests compare the
// two), with strings escaped by AppendJSONString.
type JSONAppender interface {
	AppendJSON(dst []byte) ([]byte, error)
}

// AppendJSONString appends s as a JSON string, escaped as the log escapes
// every string (like encoding/json; invalid UTF-8 becomes \ufffd).
func AppendJSONString(dst []byte, s string) []byte { return appendString(dst, s) }

// AppendJSONValue appends v's JSON encoding: through AppendJSON for a
// JSONAppender, directly for a string, and with encoding/json otherwise.
func AppendJSONValue(dst []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case JSONAppender:
		return x.AppendJSON(dst)
	case string:
		return appendString(dst, x), nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return dst, err
	}
	return append(dst, b...), nil
}

// AppendJSONObject appends m as a JSON object with its keys sorted, as
// encoding/json writes a map, each value through AppendJSONValue.
func AppendJSONObject(dst []byte, m map[string]any) ([]byte, error) {
	var stack [16]string
	keys := stack[:0]
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	dst = append(dst, '{')
	for i, k := range keys {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = appendString(dst, k)
		dst = append(dst, ':')
		var err error
		if dst, err = AppendJSONValue(dst, m[k]); err != nil {
			return dst, err
		}
	}
	return append(dst, '}'), nil
}

func appendOpt(dst []byte, objStart int, key, v string) []byte {
	if v == "" {
		return dst
	}
	if len(dst) > objStart {
		dst = append(dst, ',')
	}
	dst = append(dst, '"')
	dst = append(dst, key...)
	dst = append(dst, `":`...)
	return appendString(dst, v)
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string, escaping like encoding/json
// (including <, >, & and U+2028/U+2029; invalid UTF-8 becomes U+FFFD,
// written \ufffd as encoding/json did before Go 1.27, on every release).
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
