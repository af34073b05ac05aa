package credentials

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/awsname"
)

// SessionRequest describes the session to mint. The STS front end fills it
// after authenticating the caller and evaluating the role's trust policy;
// this package checks shapes and limits, not entitlements.
type SessionRequest struct {
	PrincipalID       string // gatehouse user id of the end user
	UserName          string
	SourceIdentity    string
	RoleARN           string
	RoleSessionName   string
	AssumedRoleID     string
	SessionPolicy     string // inline IAM policy JSON, optional
	PolicyARNs        []string
	SessionTags       map[string]string
	TransitiveTagKeys []string
	Groups            []string
	// Parent is the caller's own session when this is role chaining
	// (AssumeRole called with temporary credentials). The new session then
	// inherits the end user, source identity and transitive tags, and is
	// capped at MaxChainedDuration.
	Parent *Claims
	// RoleLimit is the role restriction of the sign-in behind the session
	// (nil: none). A chained session keeps its parent's as well.
	RoleLimit *RoleLimit
}

// Issuer mints credentials sealed with the current keyring key. Safe for
// concurrent use.
type Issuer struct {
	kr   *Keyring
	now  func() time.Time
	rand io.Reader
}

// IssuerOptions inject the clock and randomness (tests); nil means
// time.Now and crypto/rand.
type IssuerOptions struct {
	Clock func() time.Time
	Rand  io.Reader
}

// NewIssuer returns an Issuer using kr.
func NewIssuer(kr *Keyring, opts IssuerOptions) *Issuer {
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.Rand == nil {
		opts.Rand = rand.Reader
	}
	return &Issuer{kr: kr, now: opts.Clock, rand: opts.Rand}
}

// Limits from the AWS STS API reference (AssumeRole request parameters).
const (
	maxSessionPolicy = 2048
	maxPolicyARNs    = 10
	maxTags          = 50
	maxTagKey        = 128
	maxTagValue      = 256
	maxSourceIDLen   = 64
)

// Issue mints credentials for req, valid for duration (MinSessionDuration to
// MaxSessionDuration; at most MaxChainedDuration when chained). The caller
// has already clamped duration to the role's own maximum.
func (is *Issuer) Issue(ctx context.Context, req SessionRequest, duration time.Duration) (Credentials, error) {
	now := is.now().UTC().Truncate(time.Millisecond)
	c := &Claims{
		Version:           1,
		PrincipalID:       req.PrincipalID,
		UserName:          req.UserName,
		SourceIdentity:    req.SourceIdentity,
		RoleARN:           req.RoleARN,
		RoleSessionName:   req.RoleSessionName,
		AssumedRoleID:     req.AssumedRoleID,
		SessionPolicy:     req.SessionPolicy,
		PolicyARNs:        slices.Clone(req.PolicyARNs),
		SessionTags:       maps.Clone(req.SessionTags),
		TransitiveTagKeys: slices.Clone(req.TransitiveTagKeys),
		Groups:            slices.Clone(req.Groups),
		IssuedAt:          now,
	}
	if req.RoleLimit != nil {
		c.RoleLimit = NewRoleLimit(req.RoleLimit.RoleARNs)
	}
	maxDur := MaxSessionDuration
	if p := req.Parent; p != nil {
		if err := chain(c, p); err != nil {
			return Credentials{}, err
		}
		maxDur = MaxChainedDuration
	}
	if duration < MinSessionDuration || duration > maxDur {
		return Credentials{}, errValidation(fmt.Sprintf("DurationSeconds must be between %d and %d",
			int(MinSessionDuration.Seconds()), int(maxDur.Seconds())))
	}
	if err := validate(c); err != nil {
		return Credentials{}, err
	}
	c.Expiry = now.Add(duration).Truncate(time.Second)
	var err error
	if c.AccessKeyID, err = newAccessKeyID(is.rand); err != nil {
		return Credentials{}, &Error{Code: CodeInternalFailure, Message: "cannot generate credentials", Err: err}
	}
	if c.SessionID, err = newSessionID(is.rand); err != nil {
		return Credentials{}, &Error{Code: CodeInternalFailure, Message: "cannot generate credentials", Err: err}
	}
	k := is.kr.current()
	tok, err := sealToken(k, c, is.rand)
	if err != nil {
		return Credentials{}, &Error{Code: CodeInternalFailure, Message: "cannot seal session token", Err: err}
	}
	return Credentials{
		AccessKeyID:     c.AccessKeyID,
		SecretAccessKey: deriveSecret(k, c.AccessKeyID, c.SessionID),
		SessionToken:    tok,
		Expiration:      c.Expiry,
		SessionID:       c.SessionID,
	}, nil
}

// chain applies AWS role-chaining rules: the end user, source identity and
// transitive tags carry over from the parent and cannot be changed.
func chain(c *Claims, p *Claims) error {
	if p.ChainDepth+1 > MaxChainDepth {
		return errValidation(fmt.Sprintf("role chaining deeper than %d", MaxChainDepth))
	}
	if c.PrincipalID != "" && c.PrincipalID != p.PrincipalID {
		return errValidation("a chained session must keep the end user of its parent")
	}
	c.PrincipalID, c.UserName = p.PrincipalID, p.UserName
	if p.SourceIdentity != "" {
		if c.SourceIdentity != "" && c.SourceIdentity != p.SourceIdentity {
			return errValidation("SourceIdentity cannot be changed once set")
		}
		c.SourceIdentity = p.SourceIdentity
	}
	for _, key := range p.TransitiveTagKeys {
		v, ok := p.SessionTags[key]
		if !ok {
			continue
		}
		if c.SessionTags == nil {
			c.SessionTags = map[string]string{}
		}
		for k2 := range c.SessionTags {
			if strings.EqualFold(k2, key) {
				return errValidation("a transitive session tag of the parent session cannot be overridden")
			}
		}
		c.SessionTags[key] = v
		if !slices.Contains(c.TransitiveTagKeys, key) {
			c.TransitiveTagKeys = append(c.TransitiveTagKeys, key)
		}
	}
	if len(c.Groups) == 0 {
		c.Groups = slices.Clone(p.Groups)
	}
	c.RoleLimit = narrowLimit(c.RoleLimit, p.RoleLimit)
	c.ChainDepth = p.ChainDepth + 1
	c.ChainedFrom = append(slices.Clone(p.ChainedFrom), p.SessionID)
	return nil
}

// narrowLimit is the restriction of a session limited by both a and b
// (nil: unrestricted): their intersection.
func narrowLimit(a, b *RoleLimit) *RoleLimit {
	switch {
	case a == nil && b == nil:
		return nil
	case a == nil:
		return NewRoleLimit(b.RoleARNs)
	case b == nil:
		return NewRoleLimit(a.RoleARNs)
	}
	out := &RoleLimit{RoleARNs: []string{}}
	for _, r := range a.RoleARNs {
		if slices.Contains(b.RoleARNs, r) {
			out.RoleARNs = append(out.RoleARNs, r)
		}
	}
	return out
}

func validate(c *Claims) error {
	switch {
	case c.PrincipalID == "":
		return errValidation("the session needs an end user")
	case c.RoleARN == "" || !strings.HasPrefix(c.RoleARN, "arn:"):
		return errValidation("RoleArn is not an ARN")
	case awsname.RoleSessionName(c.RoleSessionName) != nil:
		return errValidation(awsname.RoleSessionName(c.RoleSessionName).Error())
	case c.UserName != "" && awsname.UserName(c.UserName) != nil:
		// A name stored before names were checked must not reach
		// ${aws:username}: "carol/x" would get home/carol/x/*.
		return errValidation(fmt.Sprintf("the end user's name %q cannot become aws:username (%v); an administrator must rename the user",
			c.UserName, awsname.UserName(c.UserName)))
	case len(c.SourceIdentity) > maxSourceIDLen:
		return errValidation("SourceIdentity longer than 64 characters")
	case len(c.SessionPolicy) > maxSessionPolicy:
		return errValidation("session policy longer than 2048 characters")
	case len(c.PolicyARNs) > maxPolicyARNs:
		return errValidation("more than 10 managed session policies")
	case len(c.SessionTags) > maxTags:
		return errValidation("more than 50 session tags")
	}
	for k, v := range c.SessionTags {
		if k == "" || len(k) > maxTagKey || len(v) > maxTagValue {
			return errValidation("session tag key must be 1-128 and value 0-256 characters")
		}
	}
	for _, k := range c.TransitiveTagKeys {
		if _, ok := c.SessionTags[k]; !ok {
			return errValidation("transitive tag key names no session tag")
		}
	}
	return nil
}
