package s3gw

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/authzmsg"
	"github.com/gatehouse-dev/gatehouse/internal/clientip"
	"github.com/gatehouse-dev/gatehouse/internal/decision"
	"github.com/gatehouse-dev/gatehouse/internal/iam"
	"github.com/gatehouse-dev/gatehouse/internal/sigv4"
	"github.com/gatehouse-dev/gatehouse/internal/sts/credentials"
)

// Authorizer is the one decision point for S3 requests: it evaluates the
// session's role policies ∩ its session policies (∩ the role's permissions
// boundary) for one action on one resource. With roleARN set to a mount's
// role, it first decides whether the session's user may act as that role,
// and evaluates as it; a *decision.NotEntitledError says it may not.
// (*sts.Service).AuthorizeAs implements it over internal/decision. Any
// other error must be treated as a denial (fail closed).
type Authorizer interface {
	AuthorizeAs(ctx context.Context, claims *credentials.Claims, roleARN, action, resource string, reqCtx map[string][]string) (iam.Result, error)
}

// CredentialVerifier is what CredentialLookup needs from
// *credentials.Verifier.
type CredentialVerifier interface {
	Verify(ctx context.Context, accessKeyID, sessionToken string, now time.Time) (*credentials.Claims, string, error)
}

// CredentialLookup adapts a credentials.Verifier to sigv4.CredentialLookup:
// temporary credentials only (a request without a session token is an
// unknown access key). The resolved sigv4.Credentials carry the
// *credentials.Claims as Principal.
type CredentialLookup struct {
	Verifier CredentialVerifier
	Clock    func() time.Time // default time.Now
}

// LookupCredentials implements sigv4.CredentialLookup.
func (l CredentialLookup) LookupCredentials(ctx context.Context, accessKeyID, sessionToken string) (sigv4.Credentials, error) {
	if sessionToken == "" {
		return sigv4.Credentials{}, sigv4.ErrUnknownAccessKey
	}
	now := time.Now
	if l.Clock != nil {
		now = l.Clock
	}
	claims, secret, err := l.Verifier.Verify(ctx, accessKeyID, sessionToken, now())
	if err != nil {
		if why, ok := credentials.RevokedReason(err); ok && claims != nil {
			return sigv4.Credentials{}, &sigv4.RevokedError{Reason: why, Err: err,
				Credentials: sigv4.Credentials{SecretAccessKey: secret, Principal: claims, Expires: claims.Expiry}}
		}
		var ce *credentials.Error
		if errors.As(err, &ce) {
			switch ce.Code {
			case credentials.CodeExpiredToken:
				return sigv4.Credentials{}, errors.Join(sigv4.ErrCredentialsExpired, err)
			case credentials.CodeInvalidClientTokenID, credentials.CodeAccessDenied:
				return sigv4.Credentials{}, errors.Join(sigv4.ErrInvalidSessionToken, err)
			}
		}
		return sigv4.Credentials{}, err // internal: the verifier denies
	}
	return sigv4.Credentials{SecretAccessKey: secret, Principal: claims, Expires: claims.Expiry}, nil
}

// Resource ARNs (Amazon S3 "Actions, resources, and condition keys").
func bucketARN(bucket string) string      { return "arn:aws:s3:::" + bucket }
func objectARN(bucket, key string) string { return "arn:aws:s3:::" + bucket + "/" + key }

const allBucketsARN = "arn:aws:s3:::*"

// conditionContext builds the request's global and S3 condition keys. The
// principal keys are set from the verified claims only; the Authorizer
// sets them again from the same claims.
func (g *Gateway) conditionContext(r *http.Request, res *sigv4.Result, c *credentials.Claims) map[string][]string {
	now := g.now().UTC()
	m := make(map[string][]string, 20)
	m["aws:currenttime"] = []string{now.Format(time.RFC3339)}
	m["aws:epochtime"] = []string{strconv.FormatInt(now.Unix(), 10)}
	m["aws:sourceip"] = []string{sourceIP(r)}
	m["aws:securetransport"] = []string{strconv.FormatBool(clientip.SecureTransport(r))}
	if ua := r.UserAgent(); ua != "" {
		m["aws:useragent"] = []string{ua}
	}
	if c.UserName != "" {
		// A session without a user name has no aws:username: the key is
		// absent (Null true), as the policy variable has no value.
		m["aws:username"] = []string{c.UserName}
	}
	m["aws:userid"] = []string{c.AssumedRoleID}
	m["aws:principalarn"] = []string{c.RoleARN}
	m["aws:principaltype"] = []string{"AssumedRole"}
	if c.SourceIdentity != "" {
		m["aws:sourceidentity"] = []string{c.SourceIdentity}
	}
	for k, v := range c.SessionTags {
		m["aws:principaltag/"+strings.ToLower(k)] = []string{v}
	}
	m["s3:signatureversion"] = []string{"AWS4-HMAC-SHA256"}
	if res.Presigned {
		m["s3:authtype"] = []string{"REST-QUERY-STRING"}
	} else {
		m["s3:authtype"] = []string{"REST-HEADER"}
	}
	m["s3:x-amz-content-sha256"] = []string{res.PayloadHash}
	m["s3:signatureage"] = []string{strconv.FormatInt(now.Sub(res.SignedAt).Milliseconds(), 10)}
	return m
}

// sourceIP is the client address: the host of RemoteAddr, which the
// listener has already resolved (internal/clientip: the TCP peer, or what a
// trusted proxy forwarded). The gateway itself reads no forwarding header.
func sourceIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// check asks the Authorizer; any error or non-Allow decision is AccessDenied.
func (g *Gateway) check(ctx context.Context, rq *request, action, resource string, extra map[string][]string) error {
	return g.checkAt(ctx, rq, action, resource, mountPath(action, resource, extra), extra)
}

// checkAt is check with the path that selects the governing mount given
// explicitly (see decideAt).
func (g *Gateway) checkAt(ctx context.Context, rq *request, action, resource, path string, extra map[string][]string) error {
	ok, reason, err := g.decideAt(ctx, rq, action, resource, path, extra)
	if ok {
		rq.decisions = append(rq.decisions, reason)
		return nil
	}
	rq.denyReason = reason
	e := errAccessDenied()
	e.Err = err
	if g.o.AuthzMessages != nil && rq.claims != nil {
		e.Message += g.encodedDenial(rq, action, resource, reason)
	}
	return e
}

// encodedDenial seals why this request was denied into a message that the
// denied user can open through STS DecodeAuthorizationMessage, and give an
// administrator (gatehouse admin decode-authorization-message, or anyone
// allowed sts:DecodeAuthorizationMessage); the message itself is opaque. On a sealing
// failure the denial stands without the message.
func (g *Gateway) encodedDenial(rq *request, action, resource, reason string) string {
	account, roleName := splitRoleARN(rq.claims.RoleARN)
	src := rq.claims.SourceIdentity
	if src == "" {
		src = rq.claims.UserName
	}
	var mount string
	if len(rq.mounts) > 0 {
		mount = rq.mounts[len(rq.mounts)-1].ID
	}
	msg, err := g.o.AuthzMessages.Encode(authzmsg.Explanation{
		Time: g.now().UTC(), RequestID: rq.id,
		Principal:      "arn:aws:sts::" + account + ":assumed-role/" + roleName + "/" + rq.claims.RoleSessionName,
		UserID:         rq.claims.PrincipalID,
		SourceIdentity: src, Action: action, Resource: resource, Mount: mount, Reason: reason,
	})
	if err != nil {
		g.log.Error("s3: sealing the authorization message failed", "err", err)
		return ""
	}
	return ". Encoded authorization failure message: " + msg
}

// mountPath is the path whose mount governs action on resource: the key of
// an object ARN, or for s3:ListBucket and s3:ListBucketVersions the s3:prefix of the listing ("" for
// none: no mount).
func mountPath(action, resource string, extra map[string][]string) string {
	_, path := splitS3ARN(resource)
	if action == "s3:ListBucket" || action == "s3:ListBucketVersions" {
		path = ""
		if p, ok := extra["s3:prefix"]; ok && len(p) == 1 {
			path = p[0]
		}
	}
	return path
}

// decide authorizes one action on one resource: as the caller's session,
// or, under a mount bound to another role, as that role if the caller is
// entitled to it. It fails closed: any error is a denial.
func (g *Gateway) decide(ctx context.Context, rq *request, action, resource string, extra map[string][]string) (bool, string, error) {
	return g.decideAt(ctx, rq, action, resource, mountPath(action, resource, extra), extra)
}

// decideAt is decide with the mount chosen by path (a key or a listing
// prefix in the resource's bucket; "" for no mount).
func (g *Gateway) decideAt(ctx context.Context, rq *request, action, resource, path string, extra map[string][]string) (bool, string, error) {
	reqCtx := rq.condCtx
	if len(extra) > 0 {
		reqCtx = make(map[string][]string, len(rq.condCtx)+len(extra))
		for k, v := range rq.condCtx {
			reqCtx[k] = v
		}
		for k, v := range extra {
			reqCtx[k] = v
		}
	}
	m, actAs, denied, err := g.mountRole(ctx, rq, resource, path)
	if denied != "" || err != nil {
		return false, denied, err
	}
	if reqCtx, err = g.withExistingTags(ctx, rq, actAs, action, resource, reqCtx); err != nil {
		return false, "reading the object's tags failed: " + err.Error(), err
	}
	res, err := g.o.Authorizer.AuthorizeAs(ctx, rq.claims, actAs, action, resource, reqCtx)
	var ne *decision.NotEntitledError
	if errors.As(err, &ne) {
		return false, fmt.Sprintf("not entitled to role %s of mount %s", ne.RoleARN, m.ID), nil
	}
	if err != nil {
		return false, "authorization failed: " + err.Error(), err
	}
	if actAs != "" {
		rq.addMount(m)
	}
	if res.Decision != iam.Allowed {
		return false, res.Reason(), nil
	}
	return true, res.Reason(), nil
}

// mountRole finds the mount governing path in the resource's bucket. It
// returns the mount and, when the mount binds another role than the
// session's, that role for the decision point to act as. A broken mount
// denies (denied holds the reason); a failed lookup is an error.
func (g *Gateway) mountRole(ctx context.Context, rq *request, resource, path string) (m Mount, actAs, denied string, err error) {
	if g.o.Mounts == nil {
		return Mount{}, "", "", nil
	}
	bucket, _ := splitS3ARN(resource)
	if bucket == "" || path == "" {
		return Mount{}, "", "", nil
	}
	m, ok, err := g.o.Mounts.MountFor(ctx, bucket, path)
	if err != nil {
		return Mount{}, "", "mount lookup failed: " + err.Error(), err
	}
	if !ok {
		return Mount{}, "", "", nil
	}
	if m.Broken != "" {
		rq.addMount(m)
		return m, "", fmt.Sprintf("mount %s is invalid and denies its prefix: %s", m.ID, m.Broken), nil
	}
	if m.RoleARN != rq.claims.RoleARN {
		actAs = m.RoleARN
	}
	return m, actAs, "", nil
}

// splitS3ARN returns the bucket and key (or "") of an S3 resource ARN.
func splitS3ARN(arn string) (bucket, key string) {
	rest, ok := strings.CutPrefix(arn, "arn:aws:s3:::")
	if !ok {
		return "", ""
	}
	bucket, key, _ = strings.Cut(rest, "/")
	return bucket, key
}
