package websso

import (
	"context"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/clientip"
)

// PassthroughHeader is the troubleshooting header of failed federations.
const PassthroughHeader = "X-Gatehouse-Passthrough-Error"

// Values of PassthroughHeader.
const (
	PassValidationError        = "ValidationError"
	PassInvalidIdentityToken   = "InvalidIdentityToken"
	PassAccessDenied           = "AccessDenied"
	PassMalformedRoleAttribute = "MalformedRoleAttribute"
)

// AssumeInput is an AssumeRoleWithWebIdentity call.
type AssumeInput struct {
	RoleARN     string
	SessionName string
	Token       string
	// Duration 0 lets STS pick (its default, capped by the role).
	Duration time.Duration
	// Origin is the end user's request on whose behalf the call is made.
	// HandlerAssumer requires it and reports its client address, TLS state
	// and User-Agent to STS as the caller's, so aws:SourceIp,
	// aws:SecureTransport and the audit record describe the user rather
	// than the server. Remote assumers (AssumeRoleWithWebIdentity over a
	// network) ignore it: there the network says who calls.
	Origin *http.Request
}

// Credentials are temporary AWS-style credentials.
type Credentials struct {
	AccessKeyID     string    `json:"accessKeyId"`
	SecretAccessKey string    `json:"secretAccessKey"`
	SessionToken    string    `json:"sessionToken"`
	Expiration      time.Time `json:"expiration"`
	AssumedRoleARN  string    `json:"assumedRoleArn,omitempty"`
}

// STSError is an error answered by an STS endpoint.
type STSError struct {
	Status      int
	Code        string
	Message     string
	Passthrough string // X-Gatehouse-Passthrough-Error, if any
	RequestID   string
}

func (e *STSError) Error() string {
	s := fmt.Sprintf("sts: %s: %s (HTTP %d", e.Code, e.Message, e.Status)
	if e.RequestID != "" {
		s += ", request id " + e.RequestID
	}
	return s + ")"
}

// RoleAssumer exchanges a web-identity token for credentials.
type RoleAssumer interface {
	AssumeRoleWithWebIdentity(ctx context.Context, in AssumeInput) (*Credentials, error)
}

// HandlerAssumer calls an STS Query endpoint in process: the request goes
// through Handler exactly as an HTTP client's would (same parsing, trust
// evaluation and audit), without a network hop, and as if sent from the
// end user's connection (AssumeInput.Origin).
type HandlerAssumer struct {
	Handler http.Handler
	// Path is where the handler is mounted; default "/sts".
	Path string
}

// errNoOrigin refuses an in-process call that does not say whose it is:
// STS would otherwise see the server's own address (fail closed).
var errNoOrigin = errors.New("sts: in-process call without the end user's request (AssumeInput.Origin)")

// AssumeRoleWithWebIdentity implements RoleAssumer. in.Origin is required.
func (h HandlerAssumer) AssumeRoleWithWebIdentity(ctx context.Context, in AssumeInput) (*Credentials, error) {
	if in.Origin == nil {
		return nil, errNoOrigin
	}
	path := h.Path
	if path == "" {
		path = "/sts"
	}
	return AssumeRoleWithWebIdentity(ctx, roundTripFunc(func(req *http.Request) (*http.Response, error) {
		req.RemoteAddr, req.TLS = in.Origin.RemoteAddr, in.Origin.TLS
		req = req.WithContext(clientip.WithSecureTransport(req.Context(), clientip.SecureTransport(in.Origin)))
		if ua := in.Origin.UserAgent(); ua != "" {
			req.Header.Set("User-Agent", ua)
		}
		req.RequestURI = req.URL.RequestURI()
		rec := httptest.NewRecorder()
		h.Handler.ServeHTTP(rec, req)
		return rec.Result(), nil
	}), "http://gatehouse.internal"+path, in)
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) Do(r *http.Request) (*http.Response, error) { return f(r) }

// Doer sends HTTP requests; *http.Client is one.
type Doer interface {
	Do(*http.Request) (*http.Response, error)
}

// AssumeRoleWithWebIdentity calls the STS Query API at endpoint (e.g.
// https://gatehouse.example.com/sts) over HTTP, the way AWS SDKs do
// (form POST, Version 2011-06-15, XML answer). An error answer is an *STSError.
func AssumeRoleWithWebIdentity(ctx context.Context, hc Doer, endpoint string, in AssumeInput) (*Credentials, error) {
	form := url.Values{
		"Action":           {"AssumeRoleWithWebIdentity"},
		"Version":          {"2011-06-15"},
		"RoleArn":          {in.RoleARN},
		"RoleSessionName":  {in.SessionName},
		"WebIdentityToken": {in.Token},
	}
	if in.Duration > 0 {
		form.Set("DurationSeconds", strconv.Itoa(int(in.Duration/time.Second)))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "text/xml")
	res, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("sts: %w", err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("sts: read answer: %w", err)
	}
	if res.StatusCode != http.StatusOK {
		var er struct {
			Error struct {
				Code    string `xml:"Code"`
				Message string `xml:"Message"`
			} `xml:"Error"`
			RequestID string `xml:"RequestId"`
		}
		se := &STSError{Status: res.StatusCode, Passthrough: res.Header.Get(PassthroughHeader),
			RequestID: res.Header.Get("x-amzn-RequestId")}
		if xml.Unmarshal(body, &er) == nil && er.Error.Code != "" {
			se.Code, se.Message = er.Error.Code, er.Error.Message
			if er.RequestID != "" {
				se.RequestID = er.RequestID
			}
		} else {
			se.Code, se.Message = "HTTPError", http.StatusText(res.StatusCode)
		}
		return nil, se
	}
	var ok struct {
		Result struct {
			Credentials struct {
				AccessKeyID     string `xml:"AccessKeyId"`
				SecretAccessKey string `xml:"SecretAccessKey"`
				SessionToken    string `xml:"SessionToken"`
				Expiration      string `xml:"Expiration"`
			} `xml:"Credentials"`
			AssumedRoleUser struct {
				Arn string `xml:"Arn"`
			} `xml:"AssumedRoleUser"`
		} `xml:"AssumeRoleWithWebIdentityResult"`
	}
	if err := xml.Unmarshal(body, &ok); err != nil {
		return nil, fmt.Errorf("sts: malformed answer: %w", err)
	}
	c := ok.Result.Credentials
	exp, err := time.Parse(time.RFC3339, strings.TrimSpace(c.Expiration))
	if err != nil || c.AccessKeyID == "" || c.SecretAccessKey == "" || c.SessionToken == "" {
		return nil, fmt.Errorf("sts: answer lacks credentials")
	}
	return &Credentials{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken,
		Expiration: exp.UTC(), AssumedRoleARN: ok.Result.AssumedRoleUser.Arn}, nil
}
