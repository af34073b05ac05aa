package sigv4

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// EmptySHA256 is the hex SHA-256 of an empty body.
const EmptySHA256 = emptySHA256

// SignerConfig configures a Signer.
type SignerConfig struct {
	AccessKeyID     string // required
	SecretAccessKey string // required
	SessionToken    string // optional; sent (and signed) as X-Amz-Security-Token
	Region          string // required
	Service         string // required, e.g. "s3"
	// Mode is ModeS3 (the path is signed as sent, decoded once and
	// re-encoded, never normalized) or ModeStandard (double encoding, and
	// normalization unless DisablePathNormalization), as for a Verifier.
	Mode                     Mode
	DisablePathNormalization bool
	// ContentSHA256Header adds (and signs) x-amz-content-sha256 with the
	// payload hash; S3 requires it. It is always on in ModeS3.
	ContentSHA256Header bool
}

// Signer signs outgoing requests with AWS4-HMAC-SHA256 in the Authorization
// header form, for one set of credentials, one region and one service. It
// computes exactly the canonical request the Verifier checks (one
// implementation of the canonical form for both directions), and is tested
// against the aws-c-auth signing suite. It keeps the signing key of the
// current date. Safe for concurrent use.
type Signer struct {
	cfg    SignerConfig
	s3     bool
	scope2 string // "/<region>/<service>/aws4_request"

	mu   sync.Mutex
	date string // yyyymmdd of key
	key  *macKey
}

// NewSigner validates cfg and returns a Signer.
func NewSigner(cfg SignerConfig) (*Signer, error) {
	if cfg.AccessKeyID == "" || cfg.SecretAccessKey == "" || cfg.Region == "" || cfg.Service == "" {
		return nil, errors.New("sigv4: signer: access key id, secret, region and service are required")
	}
	s3 := cfg.Mode == ModeS3
	if s3 {
		cfg.ContentSHA256Header = true
	}
	return &Signer{cfg: cfg, s3: s3, scope2: "/" + cfg.Region + "/" + cfg.Service + "/" + terminator}, nil
}

// unsignedHeader reports the headers that are never signed: proxies and
// transports may change or add them on the way (the AWS SDKs leave out the
// same ones; some S3-compatible services rewrite Accept-Encoding).
func unsignedHeader(lower string) bool {
	switch lower {
	case "authorization", "user-agent", "x-amzn-trace-id", "expect", "transfer-encoding", "connection", "accept-encoding":
		return true
	}
	return false
}

// Sign sets X-Amz-Date, X-Amz-Security-Token (with a session token),
// X-Amz-Content-Sha256 (when configured) and Authorization on r, signing
// the host, every header already on r except the transport's own
// (User-Agent, Expect, Transfer-Encoding, ...), the path and the query as
// they will be sent (r.URL.Opaque or r.URL.EscapedPath, r.URL.RawQuery). payloadHash is the
// hex SHA-256 of the body, or UnsignedPayload. r.Host, if set, must be the
// host the request goes to; otherwise r.URL.Host is signed. Headers added to
// r after Sign are not covered.
func (s *Signer) Sign(r *http.Request, payloadHash string, now time.Time) error {
	if r.Host == "" {
		r.Host = r.URL.Host
	}
	now = now.UTC()
	var stamp [16]byte
	amzDate := string(now.AppendFormat(stamp[:0], "20060102T150405Z"))
	date := amzDate[:8]
	r.Header.Set("X-Amz-Date", amzDate)
	if s.cfg.SessionToken != "" {
		r.Header.Set("X-Amz-Security-Token", s.cfg.SessionToken)
	}
	if s.cfg.ContentSHA256Header {
		r.Header.Set("X-Amz-Content-Sha256", payloadHash)
	}

	// Header names in canonical form, so that each is found under it when
	// its values are read (header names are case-insensitive on the wire).
	for k, v := range r.Header {
		if ck := http.CanonicalHeaderKey(k); ck != k {
			delete(r.Header, k)
			r.Header[ck] = append(r.Header[ck], v...)
		}
	}
	signed := make([]string, 0, len(r.Header)+1)
	signed = append(signed, "host")
	for k := range r.Header {
		lk := strings.ToLower(k)
		if !unsignedHeader(lk) && lk != "host" {
			signed = append(signed, lk)
		}
	}
	slices.Sort(signed)
	query, ok := parseQuery(r.URL.RawQuery)
	if !ok {
		return errors.New("sigv4: sign: malformed query")
	}
	in := canonicalInput{
		method:        r.Method,
		rawPath:       wirePath(r),
		query:         query,
		signedHeaders: signed,
		signedRaw:     strings.Join(signed, ";"),
		payloadHash:   payloadHash,
		s3:            s.s3,
		normalize:     !s.s3 && !s.cfg.DisablePathNormalization,
	}
	buf, ok := appendCanonicalRequest(make([]byte, 0, 512), r, &in)
	if !ok {
		return errors.New("sigv4: sign: malformed path")
	}
	crHash := sha256.Sum256(buf)
	buf = append(buf[:0], Algorithm...)
	buf = append(buf, '\n')
	buf = append(buf, amzDate...)
	buf = append(buf, '\n')
	scopeStart := len(buf)
	buf = append(buf, date...)
	buf = append(buf, s.scope2...)
	scope := string(buf[scopeStart:])
	buf = append(buf, '\n')
	buf = hex.AppendEncode(buf, crHash[:])
	sig := s.signingKey(date).sum(buf)

	auth := make([]byte, 0, 160+len(in.signedRaw))
	auth = append(auth, Algorithm...)
	auth = append(auth, " Credential="...)
	auth = append(auth, s.cfg.AccessKeyID...)
	auth = append(auth, '/')
	auth = append(auth, scope...)
	auth = append(auth, ", SignedHeaders="...)
	auth = append(auth, in.signedRaw...)
	auth = append(auth, ", Signature="...)
	auth = hex.AppendEncode(auth, sig[:])
	r.Header.Set("Authorization", string(auth))
	return nil
}

// wirePath is the path r's client sends: r.URL.Opaque when it holds an
// origin-form path (sent verbatim), else r.URL.EscapedPath().
func wirePath(r *http.Request) string {
	if o := r.URL.Opaque; o != "" && o[0] == '/' {
		return o
	}
	return r.URL.EscapedPath()
}

// signingKey returns the signing key of date, deriving it once per date.
func (s *Signer) signingKey(date string) *macKey {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.date != date || s.key == nil {
		s.key = newMACKey(deriveSigningKey(s.cfg.SecretAccessKey, date, s.cfg.Region, s.cfg.Service))
		s.date = date
	}
	return s.key
}
