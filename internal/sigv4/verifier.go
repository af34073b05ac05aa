package sigv4

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// Credentials is what a CredentialLookup resolves an access key (and session
// token) to.
type Credentials struct {
	// SecretAccessKey is the secret the client signed with. The verifier
	// uses it to derive a signing key and never logs or returns it.
	SecretAccessKey string
	// Principal is opaque to this package and handed back in Result.
	Principal any
	// Expires is when the credentials stop being valid; zero means never.
	// A request (or a presigned URL) is refused with ExpiredToken from this
	// instant, whatever its own X-Amz-Expires says.
	Expires time.Time
}

// CredentialLookup resolves the access key and session token of a request to
// the signing secret. The STS and S3 front ends implement it: for temporary
// credentials they verify the session token and derive the secret from it.
//
// It must return an error wrapping ErrUnknownAccessKey, ErrInvalidSessionToken
// or ErrCredentialsExpired for those cases; any other error is reported as an
// internal error and the request is denied. sessionToken is "" when the
// request carries none. It is called concurrently and only after the request
// has passed the cheap syntactic, scope and time checks.
type CredentialLookup interface {
	LookupCredentials(ctx context.Context, accessKeyID, sessionToken string) (Credentials, error)
}

// LookupFunc adapts a function to CredentialLookup.
type LookupFunc func(ctx context.Context, accessKeyID, sessionToken string) (Credentials, error)

// LookupCredentials calls f.
func (f LookupFunc) LookupCredentials(ctx context.Context, accessKeyID, sessionToken string) (Credentials, error) {
	return f(ctx, accessKeyID, sessionToken)
}

// Mode selects the canonicalization rules.
type Mode int

const (
	// ModeAuto is ModeS3 when Config.Service is "s3" and ModeStandard otherwise.
	ModeAuto Mode = iota
	// ModeS3: the path is not normalized and is URI-encoded once (decoded from
	// the wire, re-encoded per SigV4); x-amz-content-sha256 is required for
	// header authentication and may be UNSIGNED-PAYLOAD or a STREAMING-*
	// value; the body is verified while the caller streams it.
	ModeS3
	// ModeStandard (STS and every other AWS service): the path is normalized
	// (dot segments and duplicate slashes removed) and double-encoded; the
	// body is read eagerly (at most Config.MaxEagerBody bytes), hashed, and
	// put back into the request.
	ModeStandard
)

// Config configures a Verifier. Zero values get the AWS defaults.
type Config struct {
	Lookup  CredentialLookup // required
	Service string           // required, the credential scope service: "s3", "sts"
	// Regions accepted in the credential scope; the first is the one named
	// in "expecting" error messages. Required.
	Regions []string
	Mode    Mode
	Clock   func() time.Time // default time.Now
	// MaxSkew is how far the request time may be from the server's clock
	// (default 15 minutes, as AWS).
	MaxSkew time.Duration
	// MaxPresignExpiry bounds X-Amz-Expires (default and maximum 7 days).
	MaxPresignExpiry time.Duration
	// MaxEagerBody bounds the body read eagerly in ModeStandard (default 1 MiB).
	MaxEagerBody int64
	// RequireSignedSessionToken refuses a session token that is not covered
	// by the signature. By default an unsigned token is accepted, as AWS
	// does for services that let the token be added after signing: the
	// lookup still authenticates the token, because it must resolve to the
	// very secret that made the signature.
	RequireSignedSessionToken bool
	// DisablePathNormalization keeps dot segments and duplicate slashes in
	// the canonical path in ModeStandard (the path is still double-encoded):
	// for clients whose signer does not normalize (aws-c-auth with
	// should_normalize_uri_path=false, aws-sdk-go-v2). S3 never normalizes.
	DisablePathNormalization bool
	// KeyCacheSize bounds the signing-key cache (default 4096 entries;
	// negative disables it).
	KeyCacheSize int
}

// Verifier verifies AWS Signature Version 4 requests. It is safe for
// concurrent use; build it with New.
type Verifier struct {
	cfg   Config
	s3    bool
	cache *keyCache
}

// DefaultMaxSkew is the AWS clock-skew allowance.
const DefaultMaxSkew = 15 * time.Minute

// MaxPresignExpiry is the AWS upper bound on X-Amz-Expires (7 days).
const MaxPresignExpiry = 7 * 24 * time.Hour

// Validate checks the configuration without side effects.
func (c Config) Validate() error {
	var errs []error
	if c.Lookup == nil {
		errs = append(errs, errors.New("Lookup is required"))
	}
	if c.Service == "" || strings.ContainsAny(c.Service, "/ ") {
		errs = append(errs, fmt.Errorf("Service %q is invalid", c.Service))
	}
	if len(c.Regions) == 0 {
		errs = append(errs, errors.New("at least one region is required"))
	}
	for _, r := range c.Regions {
		if r == "" || strings.ContainsAny(r, "/ ") {
			errs = append(errs, fmt.Errorf("region %q is invalid", r))
		}
	}
	if c.Mode < ModeAuto || c.Mode > ModeStandard {
		errs = append(errs, fmt.Errorf("unknown mode %d", c.Mode))
	}
	if c.MaxSkew < 0 {
		errs = append(errs, errors.New("MaxSkew must not be negative"))
	}
	if c.MaxPresignExpiry < 0 || c.MaxPresignExpiry > MaxPresignExpiry {
		errs = append(errs, fmt.Errorf("MaxPresignExpiry must be between 0 and %s", MaxPresignExpiry))
	}
	if c.MaxEagerBody < 0 {
		errs = append(errs, errors.New("MaxEagerBody must not be negative"))
	}
	if len(errs) > 0 {
		return fmt.Errorf("sigv4: config: %w", errors.Join(errs...))
	}
	return nil
}

// New validates cfg, applies defaults and returns a Verifier.
func New(cfg Config) (*Verifier, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.MaxSkew == 0 {
		cfg.MaxSkew = DefaultMaxSkew
	}
	if cfg.MaxPresignExpiry == 0 {
		cfg.MaxPresignExpiry = MaxPresignExpiry
	}
	if cfg.MaxEagerBody == 0 {
		cfg.MaxEagerBody = 1 << 20
	}
	if cfg.KeyCacheSize == 0 {
		cfg.KeyCacheSize = 4096
	}
	cfg.Regions = slices.Clone(cfg.Regions)
	v := &Verifier{cfg: cfg}
	switch cfg.Mode {
	case ModeS3:
		v.s3 = true
	case ModeAuto:
		v.s3 = cfg.Service == "s3"
	}
	if cfg.KeyCacheSize > 0 {
		// A signing key is valid for one scope date; 26 h covers the day
		// plus clock skew on either side.
		v.cache = newKeyCache(cfg.KeyCacheSize, 26*time.Hour)
	}
	return v, nil
}

// S3Mode reports whether the verifier uses the S3 canonicalization rules.
func (v *Verifier) S3Mode() bool { return v.s3 }

// PayloadMode says how the request body is protected.
type PayloadMode int

const (
	// PayloadHashed: the canonical request names the SHA-256 of the body.
	// In ModeStandard it has already been checked; in ModeS3 Result.Body
	// checks it at EOF.
	PayloadHashed PayloadMode = iota + 1
	// PayloadUnsigned: UNSIGNED-PAYLOAD (S3 only); the body is not covered.
	PayloadUnsigned
	// PayloadStreamingSigned: STREAMING-AWS4-HMAC-SHA256-PAYLOAD, an
	// aws-chunked body with a signature on every chunk.
	PayloadStreamingSigned
	// PayloadStreamingSignedTrailer: STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER,
	// signed chunks followed by signed trailers.
	PayloadStreamingSignedTrailer
	// PayloadStreamingUnsignedTrailer: STREAMING-UNSIGNED-PAYLOAD-TRAILER,
	// unsigned chunks followed by (unsigned) checksum trailers.
	PayloadStreamingUnsignedTrailer
)

// Values of x-amz-content-sha256.
const (
	UnsignedPayload                 = "UNSIGNED-PAYLOAD"
	StreamingPayload                = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
	StreamingPayloadTrailer         = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
	StreamingUnsignedPayloadTrailer = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
	emptySHA256                     = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
)

// Result describes a request whose signature has been verified.
type Result struct {
	AccessKeyID  string
	SessionToken string // "" when none
	Principal    any    // from the lookup
	// CredentialsExpire is the credentials' expiry (zero: none).
	CredentialsExpire time.Time
	Region            string
	Service           string
	SignedAt          time.Time // X-Amz-Date (or Date)
	Presigned         bool
	// Expires is when a presigned URL stops working: the earlier of
	// X-Amz-Date + X-Amz-Expires and the credentials' expiry. Zero for
	// header authentication.
	Expires       time.Time
	SignedHeaders []string
	Payload       PayloadMode
	// PayloadHash is the payload line of the canonical request: a hex
	// SHA-256 or one of the UNSIGNED/STREAMING literals.
	PayloadHash string
	// DecodedContentLength is x-amz-decoded-content-length for streaming
	// payloads, else -1.
	DecodedContentLength int64
	// Trailers lists the trailer names declared in x-amz-trailer (lowercase).
	Trailers []string

	signingKey [32]byte
	amzDate    string
	scope      string
	seed       string // the request signature, lowercase hex: the chunk chain seed
	bodyDone   bool   // ModeStandard: the body was verified eagerly
}

// Body wraps the request body so that it is verified as it is read:
//
//   - PayloadHashed (ModeS3): the SHA-256 of the bytes read is checked at
//     EOF; a mismatch fails that Read with XAmzContentSHA256Mismatch.
//   - streaming payloads: the aws-chunked framing is decoded, every chunk
//     signature (chained from the request signature), the trailer
//     signature, checksum trailers and x-amz-decoded-content-length are
//     checked; the reader yields the decoded object bytes.
//   - PayloadUnsigned, and bodies already checked eagerly: body unchanged.
//
// Bytes returned before io.EOF are provisional: a caller that stores them
// must discard everything if any Read returns an error other than io.EOF
// (abort the upload), so no object is left behind.
func (res *Result) Body(body io.ReadCloser) io.ReadCloser {
	if body == nil {
		body = http.NoBody
	}
	switch res.Payload {
	case PayloadHashed:
		if res.bodyDone {
			return body
		}
		return newHashReader(body, res.PayloadHash)
	case PayloadStreamingSigned, PayloadStreamingSignedTrailer, PayloadStreamingUnsignedTrailer:
		return newChunkedReader(body, res)
	}
	return body
}

// ErrUnsigned is wrapped by the error Verify returns for a request that
// carries no SigV4 authentication at all, so a caller that allows anonymous
// access can tell it apart: errors.Is(err, sigv4.ErrUnsigned).
var ErrUnsigned = errors.New("sigv4: request is not signed")

// Verify checks the SigV4 signature of r, in the Authorization header form or
// the presigned query form, and returns who signed it. On failure it returns
// an *Error with the AWS code and status.
//
// In ModeStandard the body is read eagerly, checked, and replaced by an
// in-memory copy. In ModeS3 the body is left alone: wrap it with
// Result.Body before reading it.
func (v *Verifier) Verify(r *http.Request) (*Result, error) {
	res, err := v.verify(r)
	if err != nil {
		return nil, err
	}
	return res, nil
}

// pending is a request that passed the syntactic, scope, time and payload
// checks and awaits its credentials. verify takes it from pendingPool and
// returns it when done, so that its scratch space is reused: nothing in a
// Result or an Error may point into a pending.
type pending struct {
	a   authFields
	res *Result
	in  canonicalInput
	now time.Time

	// Scratch space.
	params    []queryParam
	values    [][]string
	hostValue [1]string
	buf       []byte // canonical request, then string to sign
}

var pendingPool = sync.Pool{New: func() any { return &pending{buf: make([]byte, 0, 1024)} }}

// release clears p, keeping its scratch space unless a large request grew
// it, and puts it back in pendingPool.
func (p *pending) release() {
	clear(p.params)
	clear(p.values)
	next := pending{params: p.params[:0], values: p.values[:0], buf: p.buf[:0]}
	if cap(next.params) > 64 {
		next.params = nil
	}
	if cap(next.values) > 64 {
		next.values = nil
	}
	if cap(next.buf) > 16<<10 {
		next.buf = make([]byte, 0, 1024)
	}
	*p = next
	pendingPool.Put(p)
}

func (v *Verifier) verify(r *http.Request) (*Result, *Error) {
	p := pendingPool.Get().(*pending)
	defer p.release()
	res, e := v.verifyPending(r, p)
	if e != nil {
		e.AccessKeyID, e.Presigned = p.a.accessKeyID, p.a.presigned
	}
	return res, e
}

// verifyPending is verify with p, a pending from pendingPool.
func (v *Verifier) verifyPending(r *http.Request, p *pending) (*Result, *Error) {
	if e := v.prepareInto(r, p); e != nil {
		return nil, e
	}
	a, res, now := &p.a, p.res, p.now

	creds, err := v.cfg.Lookup.LookupCredentials(r.Context(), a.accessKeyID, a.token)
	var revoked *RevokedError
	if err != nil && errors.As(err, &revoked) && revoked.Credentials.SecretAccessKey != "" {
		creds = revoked.Credentials // check the signature first; refuse below
	} else if err != nil {
		return nil, v.lookupError(err)
	}
	if creds.SecretAccessKey == "" {
		return nil, &Error{Code: CodeInternalError, Status: http.StatusInternalServerError,
			Message: "We encountered an internal error. Please try again.", Err: errors.New("lookup returned an empty secret")}
	}
	if !creds.Expires.IsZero() {
		if !now.Before(creds.Expires) {
			return nil, newErr(CodeExpiredToken, http.StatusBadRequest, "The provided token has expired.")
		}
		if a.presigned && creds.Expires.Before(res.Expires) {
			res.Expires = creds.Expires
		}
	}
	res.Principal = creds.Principal
	res.CredentialsExpire = creds.Expires
	mk := v.cache.getMAC(now, a.accessKeyID, creds.SecretAccessKey, a.date, a.region, a.service)
	res.signingKey = mk.key

	sig, sts, ok := v.sign(&p.buf, r, &p.in, res, mk, a.signature)
	if !ok && a.presigned && a.hasToken && !v.cfg.RequireSignedSessionToken {
		// Some signers add X-Amz-Security-Token after signing (AWS allows it
		// for services other than S3); accept a signature that leaves it out.
		p.in.skipQuery = skipSignatureAndToken
		sig, sts, ok = v.sign(&p.buf, r, &p.in, res, mk, a.signature)
	}
	if !ok {
		if sts == "" {
			return nil, newErr(CodeInvalidArgument, http.StatusBadRequest, "The request path is not properly percent-encoded.")
		}
		e := sigMismatch()
		e.StringToSign = sts
		return nil, e
	}
	if revoked != nil {
		return nil, &Error{Code: CodeAccessDenied, Status: http.StatusForbidden,
			Message: RevokedMessage(revoked.Reason), Principal: creds.Principal, Err: err}
	}
	switch res.Payload {
	case PayloadStreamingSigned, PayloadStreamingSignedTrailer, PayloadStreamingUnsignedTrailer:
		// Only the aws-chunked decoder (Result.Body) reads the seed.
		res.seed = hex.EncodeToString(sig[:])
	}
	return res, nil
}

func skipSignature(k string) bool         { return k == qSignature }
func skipSignatureAndToken(k string) bool { return k == qSignature || k == qSecurityToken }

// prepare runs every check that needs no credentials and builds the
// canonical request input.
func (v *Verifier) prepare(r *http.Request) (*pending, *Error) {
	p := &pending{}
	if e := v.prepareInto(r, p); e != nil {
		return nil, e
	}
	return p, nil
}

// prepareInto is prepare filling in p, a cleared pending whose scratch space
// it uses.
func (v *Verifier) prepareInto(r *http.Request, p *pending) *Error {
	now := v.cfg.Clock()
	rawPath, rawQuery := requestTarget(r)
	params, ok := appendQueryParams(p.params[:0], rawQuery)
	p.params = params // nil on failure: storage holding part of the query is dropped
	if !ok {
		return newErr(CodeInvalidArgument, http.StatusBadRequest, "The query string is not properly percent-encoded.")
	}
	// The header keys below are in canonical form, so indexing the map is
	// what Header.Values does.
	authz := r.Header["Authorization"]
	presign := false
	sigV2Query := false
	for i := range params {
		if k := params[i].key; isPresignParam(k) {
			presign = true
		} else if k == "AWSAccessKeyId" || k == "Signature" {
			sigV2Query = true
		}
	}
	switch {
	case len(authz) > 1:
		return malformedHeader("more than one Authorization header.")
	case len(authz) == 1 && presign:
		return newErr(CodeInvalidArgument, http.StatusBadRequest,
			"Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified")
	case len(authz) == 0 && !presign:
		if sigV2Query {
			return newErr(CodeInvalidRequest, http.StatusBadRequest,
				"The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.")
		}
		e := newErr(CodeMissingAuthenticationToken, http.StatusForbidden, "Request is missing Authentication Token")
		if v.s3 {
			e = newErr(CodeAccessDenied, http.StatusForbidden, "Anonymous access is not allowed; sign the request with AWS4-HMAC-SHA256.")
		}
		e.Err = ErrUnsigned
		return e
	}

	a := &p.a
	var e *Error
	if presign {
		e = parsePresignInto(params, v.cfg.MaxPresignExpiry, a)
	} else {
		e = parseAuthorizationInto(authz[0], a)
	}
	if e != nil {
		return e
	}
	if e := v.checkScope(a); e != nil {
		return e
	}

	// Request time.
	var signedAt time.Time
	if presign {
		if signedAt, ok = parseAmzDate(a.amzDate); !ok {
			return malformedQuery("X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"")
		}
	} else {
		if signedAt, a.amzDate, e = requestTime(r); e != nil {
			return e
		}
	}
	if a.amzDate[:8] != a.date {
		if presign {
			return malformedQuery("Invalid credential date \"%s\". This date is not the same as X-Amz-Date: \"%s\".", a.date, a.amzDate[:8])
		}
		return malformedHeader("Invalid credential date. Date is not the same as X-Amz-Date.")
	}
	var expires time.Time
	if presign {
		if signedAt.After(now.Add(v.cfg.MaxSkew)) {
			return newErr(CodeAccessDenied, http.StatusForbidden, "Request is not valid yet")
		}
		expires = signedAt.Add(time.Duration(a.expires) * time.Second)
		if !now.Before(expires) {
			return newErr(CodeAccessDenied, http.StatusForbidden, "Request has expired")
		}
	} else if d := now.Sub(signedAt); d > v.cfg.MaxSkew || d < -v.cfg.MaxSkew {
		return newErr(CodeRequestTimeTooSkewed, http.StatusForbidden,
			"The difference between the request time and the server's time is too large.")
	}

	// Signed headers: host always; every x-amz-* header present.
	values, e := v.checkSignedHeaders(r, a, p)
	if e != nil {
		return e
	}

	// Session token.
	if !presign {
		toks := r.Header["X-Amz-Security-Token"]
		if len(toks) > 1 {
			return v.invalidToken()
		}
		if len(toks) == 1 {
			a.token, a.hasToken = toks[0], true
		}
	}
	if a.hasToken && (a.token == "" || len(a.token) > maxTokenLen) {
		return v.invalidToken()
	}

	res := &Result{
		AccessKeyID:          a.accessKeyID,
		SessionToken:         a.token,
		Region:               a.region,
		Service:              a.service,
		SignedAt:             signedAt,
		Presigned:            presign,
		Expires:              expires,
		SignedHeaders:        a.signed,
		DecodedContentLength: -1,
		amzDate:              a.amzDate,
		scope:                a.scope,
	}
	if e := v.payload(r, a, res); e != nil {
		return e
	}
	p.res, p.now, p.in = res, now, canonicalInput{
		method:        r.Method,
		rawPath:       rawPath,
		query:         params,
		signedHeaders: a.signed,
		values:        values,
		signedRaw:     a.signedRaw,
		payloadHash:   res.PayloadHash,
		s3:            v.s3,
		normalize:     !v.s3 && !v.cfg.DisablePathNormalization,
	}
	if presign {
		p.in.skipQuery = skipSignature
	}
	return nil
}

// sign computes the request signature and compares it with want in constant
// time. It returns the string to sign ("" if the path is malformed).
// bp is scratch space; mk is the signing key.
func (v *Verifier) sign(bp *[]byte, r *http.Request, in *canonicalInput, res *Result, mk *macKey, want [32]byte) (sig [32]byte, sts string, ok bool) {
	buf, good := appendCanonicalRequest((*bp)[:0], r, in)
	if !good {
		*bp = buf[:0]
		return sig, "", false
	}
	crHash := sha256.Sum256(buf)
	// String to sign, reusing the buffer.
	buf = append(buf[:0], Algorithm...)
	buf = append(buf, '\n')
	buf = append(buf, res.amzDate...)
	buf = append(buf, '\n')
	buf = append(buf, res.scope...)
	buf = append(buf, '\n')
	buf = hex.AppendEncode(buf, crHash[:])
	sig = mk.sum(buf)
	ok = hmac.Equal(sig[:], want[:])
	if !ok {
		sts = string(buf)
	}
	*bp = buf[:0]
	return sig, sts, ok
}

func (v *Verifier) checkScope(a *authFields) *Error {
	bad := func(format string, args ...any) *Error {
		if a.presigned {
			return malformedQuery("Error parsing the X-Amz-Credential parameter; "+format, args...)
		}
		return malformedHeader(format, args...)
	}
	if !slices.Contains(v.cfg.Regions, a.region) {
		return bad("the region '%s' is wrong; expecting '%s'", truncate(a.region), v.cfg.Regions[0])
	}
	if a.service != v.cfg.Service {
		return bad("incorrect service '%s'. This endpoint belongs to '%s'.", truncate(a.service), v.cfg.Service)
	}
	if a.terminal != terminator {
		return bad("incorrect terminal '%s'. This endpoint uses '%s'.", truncate(a.terminal), terminator)
	}
	return nil
}

// requestTime returns the request time of a header-signed request from
// X-Amz-Date, or else from the Date header.
func requestTime(r *http.Request) (time.Time, string, *Error) {
	if vals := r.Header["X-Amz-Date"]; len(vals) > 0 {
		if len(vals) > 1 {
			return time.Time{}, "", malformedHeader("more than one X-Amz-Date header.")
		}
		t, ok := parseAmzDate(vals[0])
		if !ok {
			return time.Time{}, "", newErr(CodeAccessDenied, http.StatusForbidden,
				"AWS authentication requires a valid Date or x-amz-date header")
		}
		return t, vals[0], nil
	}
	if d := r.Header.Get("Date"); d != "" {
		if t, err := http.ParseTime(d); err == nil {
			t = t.UTC()
			return t, t.Format(amzDateLayout), nil
		}
	}
	return time.Time{}, "", newErr(CodeAccessDenied, http.StatusForbidden,
		"AWS authentication requires a valid Date or x-amz-date header")
}

// checkSignedHeaders enforces that host is signed, that every x-amz-*
// header in the request is signed (AWS: "There were headers present in the
// request which were not signed"), and bounds the signed header section. It
// returns the values of the signed headers, kept in p's scratch space.
func (v *Verifier) checkSignedHeaders(r *http.Request, a *authFields, p *pending) ([][]string, *Error) {
	if _, found := slices.BinarySearch(a.signed, "host"); !found {
		if a.presigned {
			return nil, malformedQuery("X-Amz-SignedHeaders must include 'host'")
		}
		return nil, malformedHeader("SignedHeaders must include 'host'.")
	}
	values := p.values[:0]
	total := 0
	for _, name := range a.signed {
		var vals []string
		if name == "host" {
			p.hostValue[0] = r.Host // as headerValues, without allocating
			vals = p.hostValue[:]
		} else {
			vals = headerValues(r, name)
		}
		values = append(values, vals)
		for _, val := range vals {
			total += len(name) + len(val) + 2
		}
	}
	p.values = values
	if total > maxCanonicalHeaders {
		return nil, newErr(CodeRequestHeaderSectionTooLarge, http.StatusBadRequest,
			"Your request header section exceeds the maximum allowed size.")
	}
	for k := range r.Header {
		if len(k) < 6 || !strings.EqualFold(k[:6], "x-amz-") || isSigned(a.signed, k) {
			continue
		}
		if strings.EqualFold(k, "x-amz-security-token") && !v.cfg.RequireSignedSessionToken {
			continue
		}
		return nil, errf(CodeAccessDenied, http.StatusForbidden,
			"There were headers present in the request which were not signed: %s", truncate(strings.ToLower(k)))
	}
	return values, nil
}

func isSigned(signed []string, key string) bool {
	for _, s := range signed {
		if strings.EqualFold(s, key) {
			return true
		}
	}
	return false
}

// payload decides the payload line of the canonical request and how the
// body is protected.
func (v *Verifier) payload(r *http.Request, a *authFields, res *Result) *Error {
	declared := r.Header["X-Amz-Content-Sha256"]
	if len(declared) > 1 {
		return newErr(CodeInvalidArgument, http.StatusBadRequest, "More than one x-amz-content-sha256 header.")
	}
	if !v.s3 {
		return v.eagerPayload(r, declared, res)
	}
	var h string
	switch {
	case len(declared) == 1:
		h = declared[0]
	case a.presigned:
		h = UnsignedPayload
	default:
		return newErr(CodeMissingSecurityHeader, http.StatusBadRequest,
			"Missing required header for this request: x-amz-content-sha256")
	}
	if !a.presigned {
		if _, found := slices.BinarySearch(a.signed, "x-amz-content-sha256"); !found {
			return malformedHeader("SignedHeaders must include 'x-amz-content-sha256'.")
		}
	}
	res.PayloadHash = h
	switch h {
	case UnsignedPayload:
		res.Payload = PayloadUnsigned
		return nil
	case StreamingPayload, StreamingPayloadTrailer, StreamingUnsignedPayloadTrailer:
		if a.presigned {
			return errf(CodeInvalidRequest, http.StatusBadRequest, "%s is not allowed in a presigned request.", h)
		}
		switch h {
		case StreamingPayload:
			res.Payload = PayloadStreamingSigned
		case StreamingPayloadTrailer:
			res.Payload = PayloadStreamingSignedTrailer
		default:
			res.Payload = PayloadStreamingUnsignedTrailer
		}
		return streamingHeaders(r, res)
	case "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD", "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD-TRAILER":
		return newErr(CodeNotImplemented, http.StatusNotImplemented,
			"Signature Version 4A streaming payloads are not supported. Please use AWS4-HMAC-SHA256.")
	}
	if !isHexSHA256(h) {
		return newErr(CodeInvalidArgument, http.StatusBadRequest,
			"x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, STREAMING-AWS4-HMAC-SHA256-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER, or a valid sha256 value.")
	}
	res.PayloadHash = strings.ToLower(h)
	res.Payload = PayloadHashed
	return nil
}

// eagerPayload reads and hashes the (small) body in ModeStandard.
func (v *Verifier) eagerPayload(r *http.Request, declared []string, res *Result) *Error {
	if len(declared) == 1 && !isHexSHA256(declared[0]) {
		return newErr(CodeInvalidRequest, http.StatusBadRequest,
			"x-amz-content-sha256 must be the hex SHA-256 of the body for this service.")
	}
	if r.ContentLength > v.cfg.MaxEagerBody {
		return newErr(CodeEntityTooLarge, http.StatusRequestEntityTooLarge, "Your proposed upload exceeds the maximum allowed size.")
	}
	var body []byte
	if r.Body != nil && r.Body != http.NoBody {
		var err error
		body, err = io.ReadAll(io.LimitReader(r.Body, v.cfg.MaxEagerBody+1))
		r.Body.Close()
		if err != nil {
			e := incompleteBody()
			e.Err = err
			return e
		}
		if int64(len(body)) > v.cfg.MaxEagerBody {
			return newErr(CodeEntityTooLarge, http.StatusRequestEntityTooLarge, "Your proposed upload exceeds the maximum allowed size.")
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
	}
	sum := sha256.Sum256(body)
	h := hex.EncodeToString(sum[:])
	if len(declared) == 1 && !strings.EqualFold(declared[0], h) {
		return newErr(CodeXAmzContentSHA256Mismatch, http.StatusBadRequest,
			"The provided 'x-amz-content-sha256' header does not match what was computed.")
	}
	res.PayloadHash = h
	res.Payload = PayloadHashed
	res.bodyDone = true
	return nil
}

func isHexSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if _, ok := unhex(s[i]); !ok {
			return false
		}
	}
	return true
}

func (v *Verifier) invalidToken() *Error {
	if !v.s3 {
		return newErr(CodeInvalidClientTokenID, http.StatusForbidden, "The security token included in the request is invalid.")
	}
	return newErr(CodeInvalidToken, http.StatusBadRequest, "The provided token is malformed or otherwise invalid.")
}

func (v *Verifier) lookupError(err error) *Error {
	var e *Error
	switch {
	case errors.Is(err, ErrUnknownAccessKey):
		if v.s3 {
			e = newErr(CodeInvalidAccessKeyID, http.StatusForbidden, "The AWS Access Key Id you provided does not exist in our records.")
		} else {
			e = newErr(CodeInvalidClientTokenID, http.StatusForbidden, "The security token included in the request is invalid.")
		}
	case errors.As(err, new(*RevokedError)):
		var re *RevokedError
		errors.As(err, &re)
		e = newErr(CodeAccessDenied, http.StatusForbidden, RevokedMessage(re.Reason))
	case errors.Is(err, ErrInvalidSessionToken):
		e = v.invalidToken()
	case errors.Is(err, ErrCredentialsExpired):
		e = newErr(CodeExpiredToken, http.StatusBadRequest, "The provided token has expired.")
	default:
		e = newErr(CodeInternalError, http.StatusInternalServerError, "We encountered an internal error. Please try again.")
	}
	e.Err = err
	return e
}

// requestTarget returns the path and query exactly as the client sent them.
// A server-side request has them in RequestURI; a client-built request (or
// an absolute-form target) falls back to the parsed URL.
func requestTarget(r *http.Request) (rawPath, rawQuery string) {
	if u := r.RequestURI; u != "" && u[0] == '/' {
		p, q, _ := strings.Cut(u, "?")
		return p, q
	}
	if r.URL == nil {
		return "/", ""
	}
	return r.URL.EscapedPath(), r.URL.RawQuery
}
