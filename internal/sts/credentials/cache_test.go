package credentials

import (
	"context"
	"testing"
	"time"
)

// The cache of opened tokens must not change any answer of Verify: each
// case verifies once (filling the cache) and then checks that what changed
// since is still enforced on the cached path.
func TestVerifyCacheKeepsEveryCheck(t *testing.T) {
	ctx := context.Background()

	t.Run("repeat hits return equal, independent claims", func(t *testing.T) {
		e := newEnv(t)
		r := e.replica(t)
		cred, _ := r.is.Issue(ctx, request(), time.Hour)
		c1, s1, err := r.ver.Verify(ctx, cred.AccessKeyID, cred.SessionToken, e.clk.Now())
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := r.ver.cache.get(cred.SessionToken); !ok {
			t.Fatal("a verified token was not cached")
		}
		c1.RoleARN = "arn:aws:iam::123456789012:role/Changed" // a caller scribbling on its copy
		c2, s2, err := r.ver.Verify(ctx, cred.AccessKeyID, cred.SessionToken, e.clk.Now())
		if err != nil {
			t.Fatal(err)
		}
		if s1 != s2 || s2 != cred.SecretAccessKey {
			t.Fatal("cached secret differs from the issued one")
		}
		if c2.RoleARN != request().RoleARN || c2.UserName != "alice" || c2.SessionTags["team"] != "data" {
			t.Fatalf("cached claims: %+v", c2)
		}
	})

	t.Run("wrong access key id", func(t *testing.T) {
		e := newEnv(t)
		r := e.replica(t)
		a, _ := r.is.Issue(ctx, request(), time.Hour)
		b, _ := r.is.Issue(ctx, request(), time.Hour)
		if _, _, err := r.ver.Verify(ctx, a.AccessKeyID, a.SessionToken, e.clk.Now()); err != nil {
			t.Fatal(err)
		}
		_, _, err := r.ver.Verify(ctx, b.AccessKeyID, a.SessionToken, e.clk.Now())
		wantCode(t, err, CodeInvalidClientTokenID, ErrKeyMismatch)
	})

	t.Run("expiry", func(t *testing.T) {
		e := newEnv(t)
		r := e.replica(t)
		cred, _ := r.is.Issue(ctx, request(), 15*time.Minute)
		if _, _, err := r.ver.Verify(ctx, cred.AccessKeyID, cred.SessionToken, e.clk.Now()); err != nil {
			t.Fatal(err)
		}
		e.clk.Advance(15*time.Minute + ClockSkew)
		_, _, err := r.ver.Verify(ctx, cred.AccessKeyID, cred.SessionToken, e.clk.Now())
		wantCode(t, err, CodeExpiredToken, ErrExpired)
	})

	t.Run("revocation", func(t *testing.T) {
		e := newEnv(t)
		r := e.replica(t)
		cred, _ := r.is.Issue(ctx, request(), time.Hour)
		if _, _, err := r.ver.Verify(ctx, cred.AccessKeyID, cred.SessionToken, e.clk.Now()); err != nil {
			t.Fatal(err)
		}
		e.clk.Advance(time.Millisecond)
		if err := r.rev.RevokeUser(ctx, "u-alice", e.clk.Now()); err != nil {
			t.Fatal(err)
		}
		_, _, err := r.ver.Verify(ctx, cred.AccessKeyID, cred.SessionToken, e.clk.Now())
		wantCode(t, err, CodeAccessDenied, ErrRevoked)
	})

	t.Run("retired key", func(t *testing.T) {
		e := newEnv(t)
		r := e.replica(t)
		cred, _ := r.is.Issue(ctx, request(), 12*time.Hour)
		if _, _, err := r.ver.Verify(ctx, cred.AccessKeyID, cred.SessionToken, e.clk.Now()); err != nil {
			t.Fatal(err)
		}
		if err := r.kr.Rotate(ctx, e.clk.Now()); err != nil {
			t.Fatal(err)
		}
		// Still valid under the replaced key until it retires...
		if _, _, err := r.ver.Verify(ctx, cred.AccessKeyID, cred.SessionToken, e.clk.Now()); err != nil {
			t.Fatalf("after rotation: %v", err)
		}
		// ...and refused once it has, although the token is cached.
		_, _, err := r.ver.Verify(ctx, cred.AccessKeyID, cred.SessionToken, e.clk.Now().Add(RetireAfter))
		wantCode(t, err, CodeInvalidClientTokenID, ErrUnknownKey)
	})

	t.Run("bounded", func(t *testing.T) {
		var c openedTokens
		now := t0
		for i := range maxOpenedTokens + 10 {
			c.put(string(rune(i))+"tok", openedToken{claims: Claims{Expiry: now.Add(time.Hour)}}, now)
		}
		if n := len(c.m); n > maxOpenedTokens {
			t.Fatalf("cache holds %d entries, bound %d", n, maxOpenedTokens)
		}
	})
}
