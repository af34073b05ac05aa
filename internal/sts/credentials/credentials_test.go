package credentials

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/store"
	"github.com/gatehouse-dev/gatehouse/internal/store/sqlite"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// replica is one gatehouse process: its own store handle on the shared
// database file, keyring, revoker, issuer and verifier.
type replica struct {
	st  *sqlite.Store
	kr  *Keyring
	rev *Revoker
	is  *Issuer
	ver *Verifier
}

type env struct {
	path   string
	master []byte
	clk    *fakeClock
}

func newEnv(t testing.TB) *env {
	m := make([]byte, 32)
	rand.Read(m)
	return &env{path: filepath.Join(t.TempDir(), "gatehouse.db"), master: m, clk: &fakeClock{now: t0}}
}

func (e *env) replica(t testing.TB) *replica {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, e.path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	kr, err := LoadOrCreateKeyring(ctx, st, e.master, e.clk.Now)
	if err != nil {
		t.Fatal(err)
	}
	rev, err := NewRevoker(st, RevokerOptions{TTL: time.Second, Clock: e.clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	ver, err := NewVerifier(kr, rev)
	if err != nil {
		t.Fatal(err)
	}
	return &replica{st: st, kr: kr, rev: rev, is: NewIssuer(kr, IssuerOptions{Clock: e.clk.Now}), ver: ver}
}

func request() SessionRequest {
	return SessionRequest{
		PrincipalID: "u-alice", UserName: "alice", SourceIdentity: "alice@example.com",
		RoleARN: "arn:aws:iam::123456789012:role/Analyst", RoleSessionName: "alice",
		AssumedRoleID: "AROAEXAMPLE:alice",
		SessionPolicy: `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}`,
		PolicyARNs:    []string{"arn:aws:iam::aws:policy/ReadOnly"},
		SessionTags:   map[string]string{"team": "data", "cost": "42"}, TransitiveTagKeys: []string{"team"},
		Groups: []string{"eng"},
	}
}

func wantCode(t *testing.T, err error, code string, cause error) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T), want *credentials.Error %s", err, err, code)
	}
	if e.Code != code {
		t.Fatalf("code %s, want %s (%v)", e.Code, code, err)
	}
	if cause != nil && !errors.Is(err, cause) {
		t.Fatalf("error %v, want cause %v", err, cause)
	}
}

var akidRE = regexp.MustCompile(`^ASIA[A-Z2-7]{16}$`)

func TestRoundTrip(t *testing.T) {
	e := newEnv(t)
	r := e.replica(t)
	ctx := context.Background()
	cred, err := r.is.Issue(ctx, request(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if !akidRE.MatchString(cred.AccessKeyID) || len(cred.SecretAccessKey) != 40 {
		t.Fatalf("akid %q secret len %d", cred.AccessKeyID, len(cred.SecretAccessKey))
	}
	if _, err := base64.RawURLEncoding.DecodeString(cred.SessionToken); err != nil {
		t.Fatalf("token is not base64url: %v", err)
	}
	if !cred.Expiration.Equal(t0.Add(time.Hour)) {
		t.Errorf("expiration %v", cred.Expiration)
	}
	for _, s := range []string{cred.SecretAccessKey, "alice", "Analyst", "s3:GetObject"} {
		if strings.Contains(cred.SessionToken, s) {
			t.Errorf("token leaks %q in clear", s)
		}
	}
	c, secret, err := r.ver.Verify(ctx, cred.AccessKeyID, cred.SessionToken, t0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if secret != cred.SecretAccessKey {
		t.Fatal("derived secret differs from the issued one")
	}
	req := request()
	if c.PrincipalID != req.PrincipalID || c.UserName != "alice" || c.RoleARN != req.RoleARN ||
		c.RoleSessionName != "alice" || c.AssumedRoleID != req.AssumedRoleID || c.SessionPolicy != req.SessionPolicy ||
		c.SourceIdentity != req.SourceIdentity || c.SessionTags["team"] != "data" || c.TransitiveTagKeys[0] != "team" ||
		c.PolicyARNs[0] != req.PolicyARNs[0] || c.Groups[0] != "eng" || c.SessionID != cred.SessionID ||
		c.AccessKeyID != cred.AccessKeyID || c.KeyID != r.kr.CurrentKeyID() || !c.IssuedAt.Equal(t0) ||
		!c.Expiry.Equal(cred.Expiration) || c.ChainDepth != 0 || c.Version != 1 {
		t.Errorf("claims %+v", c)
	}
	// Sessions are distinct.
	cred2, _ := r.is.Issue(ctx, request(), time.Hour)
	if cred2.AccessKeyID == cred.AccessKeyID || cred2.SessionID == cred.SessionID || cred2.SecretAccessKey == cred.SecretAccessKey {
		t.Error("two sessions share identifiers")
	}
}

func TestTamperedTokenRejected(t *testing.T) {
	e := newEnv(t)
	r := e.replica(t)
	ctx := context.Background()
	cred, err := r.is.Issue(ctx, request(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.RawURLEncoding.DecodeString(cred.SessionToken)
	for i := range raw {
		for _, mask := range []byte{0x01, 0x80} {
			b := bytes.Clone(raw)
			b[i] ^= mask
			_, _, err := r.ver.Verify(ctx, cred.AccessKeyID, base64.RawURLEncoding.EncodeToString(b), t0)
			if err == nil {
				t.Fatalf("byte %d ^ %#x accepted", i, mask)
			}
			wantCode(t, err, CodeInvalidClientTokenID, nil)
			if strings.Contains(err.Error(), cred.SessionToken[:20]) {
				t.Fatal("error echoes the token")
			}
		}
	}
	for name, tok := range map[string]string{
		"truncated": base64.RawURLEncoding.EncodeToString(raw[:len(raw)-1]),
		"extended":  base64.RawURLEncoding.EncodeToString(append(bytes.Clone(raw), 0)),
		"padded":    cred.SessionToken + "=",
		"std b64":   base64.StdEncoding.EncodeToString(raw),
		"empty":     "",
		"huge":      strings.Repeat("A", maxTokenLen+4),
	} {
		if _, _, err := r.ver.Verify(ctx, cred.AccessKeyID, tok, t0); err == nil {
			t.Errorf("%s token accepted", name)
		}
	}
}

func TestWrongAccessKeyID(t *testing.T) {
	e := newEnv(t)
	r := e.replica(t)
	ctx := context.Background()
	c1, _ := r.is.Issue(ctx, request(), time.Hour)
	c2, _ := r.is.Issue(ctx, request(), time.Hour)
	_, _, err := r.ver.Verify(ctx, c1.AccessKeyID, c2.SessionToken, t0)
	wantCode(t, err, CodeInvalidClientTokenID, ErrKeyMismatch)
	for _, akid := range []string{"", "AKIAIOSFODNN7EXAMPLE", strings.ToLower(c1.AccessKeyID), c1.AccessKeyID + "A", "ASIA" + strings.Repeat("1", 16)} {
		_, _, err := r.ver.Verify(ctx, akid, c1.SessionToken, t0)
		wantCode(t, err, CodeInvalidClientTokenID, nil)
	}
}

func TestExpiry(t *testing.T) {
	e := newEnv(t)
	r := e.replica(t)
	ctx := context.Background()
	cred, _ := r.is.Issue(ctx, request(), 15*time.Minute)
	if _, _, err := r.ver.Verify(ctx, cred.AccessKeyID, cred.SessionToken, cred.Expiration.Add(-time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.ver.Verify(ctx, cred.AccessKeyID, cred.SessionToken, cred.Expiration.Add(ClockSkew-time.Millisecond)); err != nil {
		t.Fatalf("within skew: %v", err)
	}
	_, _, err := r.ver.Verify(ctx, cred.AccessKeyID, cred.SessionToken, cred.Expiration.Add(ClockSkew))
	wantCode(t, err, CodeExpiredToken, ErrExpired)
	// Issued in the future (a replica's clock far ahead).
	_, _, err = r.ver.Verify(ctx, cred.AccessKeyID, cred.SessionToken, t0.Add(-time.Minute))
	wantCode(t, err, CodeInvalidClientTokenID, nil)
}

func TestDurationAndValidation(t *testing.T) {
	e := newEnv(t)
	r := e.replica(t)
	ctx := context.Background()
	for name, tc := range map[string]struct {
		mod func(*SessionRequest)
		d   time.Duration
	}{
		"too short":    {nil, 14 * time.Minute},
		"too long":     {nil, 12*time.Hour + time.Second},
		"no user":      {func(r *SessionRequest) { r.PrincipalID = "" }, time.Hour},
		"bad arn":      {func(r *SessionRequest) { r.RoleARN = "role/x" }, time.Hour},
		"bad name":     {func(r *SessionRequest) { r.RoleSessionName = "a b" }, time.Hour},
		"short name":   {func(r *SessionRequest) { r.RoleSessionName = "a" }, time.Hour},
		"big policy":   {func(r *SessionRequest) { r.SessionPolicy = strings.Repeat(" ", 2049) }, time.Hour},
		"bad tag":      {func(r *SessionRequest) { r.SessionTags = map[string]string{"": "x"} }, time.Hour},
		"dangling ttk": {func(r *SessionRequest) { r.TransitiveTagKeys = []string{"nope"} }, time.Hour},
	} {
		req := request()
		if tc.mod != nil {
			tc.mod(&req)
		}
		_, err := r.is.Issue(ctx, req, tc.d)
		if err == nil {
			t.Errorf("%s: issued", name)
			continue
		}
		wantCode(t, err, CodeValidationError, nil)
	}
	if _, err := r.is.Issue(ctx, request(), 12*time.Hour); err != nil {
		t.Errorf("12 h: %v", err)
	}
}

func TestRoleChaining(t *testing.T) {
	e := newEnv(t)
	r := e.replica(t)
	ctx := context.Background()
	root, _ := r.is.Issue(ctx, request(), 12*time.Hour)
	parent, _, err := r.ver.Verify(ctx, root.AccessKeyID, root.SessionToken, t0)
	if err != nil {
		t.Fatal(err)
	}
	child := SessionRequest{RoleARN: "arn:aws:iam::123456789012:role/Other", RoleSessionName: "hop1",
		SessionTags: map[string]string{"x": "1"}, Parent: parent}
	_, err = r.is.Issue(ctx, child, 2*time.Hour)
	wantCode(t, err, CodeValidationError, nil) // chained sessions are capped at 1 h, like AWS
	cred, err := r.is.Issue(ctx, child, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	c, _, err := r.ver.Verify(ctx, cred.AccessKeyID, cred.SessionToken, t0)
	if err != nil {
		t.Fatal(err)
	}
	if c.ChainDepth != 1 || len(c.ChainedFrom) != 1 || c.ChainedFrom[0] != root.SessionID ||
		c.PrincipalID != "u-alice" || c.UserName != "alice" || c.SourceIdentity != "alice@example.com" ||
		c.SessionTags["team"] != "data" || c.SessionTags["x"] != "1" || c.SessionTags["cost"] != "" {
		t.Errorf("chained claims %+v", c)
	}
	// Rules that cannot be bent by chaining.
	for name, mod := range map[string]func(*SessionRequest){
		"other user":          func(r *SessionRequest) { r.PrincipalID = "u-mallory" },
		"new source identity": func(r *SessionRequest) { r.SourceIdentity = "mallory" },
		"override transitive": func(r *SessionRequest) { r.SessionTags = map[string]string{"TEAM": "admins"} },
	} {
		req := child
		mod(&req)
		_, err := r.is.Issue(ctx, req, time.Hour)
		if err == nil {
			t.Errorf("%s: issued", name)
			continue
		}
		wantCode(t, err, CodeValidationError, nil)
	}
	// Depth cap.
	p := c
	for i := 2; i <= MaxChainDepth+1; i++ {
		cr, err := r.is.Issue(ctx, SessionRequest{RoleARN: child.RoleARN, RoleSessionName: "hop", Parent: p}, time.Hour)
		if i > MaxChainDepth {
			wantCode(t, err, CodeValidationError, nil)
			break
		}
		if err != nil {
			t.Fatalf("depth %d: %v", i, err)
		}
		if p, _, err = r.ver.Verify(ctx, cr.AccessKeyID, cr.SessionToken, t0); err != nil {
			t.Fatal(err)
		}
	}
}

func TestKeyRotationAcrossReplicas(t *testing.T) {
	e := newEnv(t)
	a := e.replica(t)
	b := e.replica(t) // loads the keyring a created
	ctx := context.Background()
	if a.kr.CurrentKeyID() != b.kr.CurrentKeyID() {
		t.Fatal("replicas disagree on the keyring")
	}
	old, _ := a.is.Issue(ctx, request(), 12*time.Hour)
	if _, _, err := b.ver.Verify(ctx, old.AccessKeyID, old.SessionToken, t0); err != nil {
		t.Fatalf("replica b verifying a's token: %v", err)
	}
	oldKey := a.kr.CurrentKeyID()

	e.clk.Advance(time.Hour)
	if err := a.kr.Rotate(ctx, e.clk.Now()); err != nil {
		t.Fatal(err)
	}
	if a.kr.CurrentKeyID() == oldKey {
		t.Fatal("rotation kept the sealing key")
	}
	fresh, _ := a.is.Issue(ctx, request(), time.Hour)
	c, _, err := a.ver.Verify(ctx, fresh.AccessKeyID, fresh.SessionToken, e.clk.Now())
	if err != nil || c.KeyID != a.kr.CurrentKeyID() {
		t.Fatalf("new token: %v, key %v", err, c)
	}
	// b has not refreshed: the unknown key id makes it refresh once.
	if _, _, err := b.ver.Verify(ctx, fresh.AccessKeyID, fresh.SessionToken, e.clk.Now()); err != nil {
		t.Fatalf("replica b verifying a token under the new key: %v", err)
	}
	if b.kr.CurrentKeyID() != a.kr.CurrentKeyID() {
		t.Fatal("b did not pick up the rotation")
	}
	// Old tokens verify on both until they expire.
	for _, r := range []*replica{a, b} {
		if _, _, err := r.ver.Verify(ctx, old.AccessKeyID, old.SessionToken, e.clk.Now()); err != nil {
			t.Fatalf("old token after rotation: %v", err)
		}
	}
	// The old key retires RetireAfter after it was replaced, and the next
	// rotation drops it from the store.
	later := e.clk.Now().Add(RetireAfter)
	if ids := a.kr.KeyIDs(later); len(ids) != 1 || ids[0] == oldKey {
		t.Fatalf("keys at retirement: %v", ids)
	}
	if err := b.kr.Rotate(ctx, later); err != nil {
		t.Fatal(err)
	}
	if err := a.kr.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if ids := a.kr.KeyIDs(later); len(ids) != 2 || ids[0] == oldKey {
		t.Fatalf("keys after second rotation: %v", ids)
	}

	// A third process started now loads the same keyring.
	c3 := e.replica(t)
	if c3.kr.CurrentKeyID() != a.kr.CurrentKeyID() {
		t.Fatal("new replica disagrees")
	}
}

func TestRotateIfOlderConcurrent(t *testing.T) {
	e := newEnv(t)
	rs := []*replica{e.replica(t), e.replica(t), e.replica(t)}
	ctx := context.Background()
	first := rs[0].kr.CurrentKeyID()
	e.clk.Advance(25 * time.Hour)
	var wg sync.WaitGroup
	errs := make([]error, len(rs))
	for i, r := range rs {
		wg.Go(func() { errs[i] = r.kr.RotateIfOlder(ctx, e.clk.Now(), 24*time.Hour) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, r := range rs {
		if err := r.kr.Refresh(ctx); err != nil {
			t.Fatal(err)
		}
		if ids := r.kr.KeyIDs(e.clk.Now()); len(ids) != 2 || ids[0] != first || r.kr.CurrentKeyID() != rs[0].kr.CurrentKeyID() {
			t.Fatalf("after concurrent RotateIfOlder: %v (want exactly one new key)", ids)
		}
	}
}

func TestKeyringAtRest(t *testing.T) {
	e := newEnv(t)
	r := e.replica(t)
	ctx := context.Background()
	raw, err := r.st.GetMeta(ctx, MetaKeyring)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(raw, []byte("secret")) || bytes.Contains(raw, []byte(r.kr.CurrentKeyID())) {
		t.Fatal("keyring stored in clear")
	}
	wrong := make([]byte, 32)
	if _, err := LoadOrCreateKeyring(ctx, r.st, wrong, nil); err == nil {
		t.Fatal("keyring opened with the wrong master key")
	}
	if _, err := LoadOrCreateKeyring(ctx, r.st, wrong[:16], nil); err == nil {
		t.Fatal("short master key accepted")
	}
}

func TestRevocationAcrossReplicas(t *testing.T) {
	e := newEnv(t)
	a := e.replica(t)
	b := e.replica(t)
	ctx := context.Background()
	cred, _ := a.is.Issue(ctx, request(), time.Hour)
	other := request()
	other.PrincipalID = "u-bob"
	bob, _ := a.is.Issue(ctx, other, time.Hour)
	verify := func(r *replica, c Credentials) error {
		_, _, err := r.ver.Verify(ctx, c.AccessKeyID, c.SessionToken, e.clk.Now())
		return err
	}
	if err := verify(b, cred); err != nil { // b caches "not revoked"
		t.Fatal(err)
	}

	// Revoke the user on a: immediate on a, within the TTL on b.
	e.clk.Advance(100 * time.Millisecond)
	if err := a.rev.RevokeUser(ctx, "u-alice", e.clk.Now()); err != nil {
		t.Fatal(err)
	}
	wantCode(t, verify(a, cred), CodeAccessDenied, ErrRevoked)
	if err := verify(b, cred); err != nil {
		t.Logf("b saw the revocation before its cache expired (allowed): %v", err)
	}
	e.clk.Advance(time.Second) // the TTL; ≤ MaxRevocationTTL (2 s) in production
	wantCode(t, verify(b, cred), CodeAccessDenied, ErrRevoked)
	if err := verify(b, bob); err != nil {
		t.Fatalf("another user's session: %v", err)
	}
	// Credentials issued after the not-before time work again.
	e.clk.Advance(time.Millisecond)
	again, _ := a.is.Issue(ctx, request(), time.Hour)
	if err := verify(b, again); err != nil {
		t.Fatalf("new credentials after revocation: %v", err)
	}
	// An earlier not-before never lowers the recorded one.
	if err := b.rev.RevokeUser(ctx, "u-alice", t0.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	e.clk.Advance(time.Second)
	wantCode(t, verify(a, cred), CodeAccessDenied, ErrRevoked)

	// Revoke one session (and what is chained from it) on b.
	parent, _, _ := a.ver.Verify(ctx, bob.AccessKeyID, bob.SessionToken, e.clk.Now())
	chained, err := a.is.Issue(ctx, SessionRequest{RoleARN: other.RoleARN, RoleSessionName: "hop", Parent: parent}, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	bob2, _ := a.is.Issue(ctx, other, time.Hour)
	for _, c := range []Credentials{bob, chained, bob2} {
		if err := verify(a, c); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.rev.RevokeSession(ctx, bob.SessionID, bob.Expiration); err != nil {
		t.Fatal(err)
	}
	wantCode(t, verify(b, bob), CodeAccessDenied, ErrRevoked)
	e.clk.Advance(time.Second)
	wantCode(t, verify(a, bob), CodeAccessDenied, ErrRevoked)
	wantCode(t, verify(a, chained), CodeAccessDenied, ErrRevoked)
	if err := verify(a, bob2); err != nil {
		t.Fatalf("bob's other session: %v", err)
	}
}

func TestRevocationFailsClosed(t *testing.T) {
	e := newEnv(t)
	r := e.replica(t)
	ctx := context.Background()
	cred, _ := r.is.Issue(ctx, request(), time.Hour)
	r.st.Close()
	e.clk.Advance(2 * time.Second) // cache entries expire
	_, _, err := r.ver.Verify(ctx, cred.AccessKeyID, cred.SessionToken, e.clk.Now())
	wantCode(t, err, CodeInternalFailure, nil)
	if _, err := NewRevoker(r.st, RevokerOptions{TTL: 3 * time.Second}); err == nil {
		t.Error("TTL above the maximum accepted")
	}
	if _, err := NewVerifier(r.kr, nil); err == nil {
		t.Error("verifier without revoker accepted")
	}
}

// A corrupt revocation record denies (fail closed).
func TestCorruptRevocationRecord(t *testing.T) {
	e := newEnv(t)
	r := e.replica(t)
	ctx := context.Background()
	cred, _ := r.is.Issue(ctx, request(), time.Hour)
	if err := r.st.PutMeta(ctx, MetaUserNotBefore+"u-alice", []byte("garbage"), nil); err != nil {
		t.Fatal(err)
	}
	_, _, err := r.ver.Verify(ctx, cred.AccessKeyID, cred.SessionToken, e.clk.Now())
	wantCode(t, err, CodeAccessDenied, ErrRevoked)
}

var _ store.Store = (*sqlite.Store)(nil)

func FuzzDecodeSessionToken(f *testing.F) {
	e := newEnv(f)
	r := e.replica(f)
	ctx := context.Background()
	cred, err := r.is.Issue(ctx, request(), time.Hour)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(cred.SessionToken)
	f.Add("")
	f.Add("AQ")
	f.Add(base64.RawURLEncoding.EncodeToString(make([]byte, 64)))
	f.Fuzz(func(t *testing.T, tok string) {
		if _, err := decodeToken(tok); err == nil && len(tok) == 0 {
			t.Fatal("empty token decoded")
		}
		c, secret, err := r.ver.Verify(ctx, cred.AccessKeyID, tok, t0)
		if err == nil {
			if tok != cred.SessionToken || secret != cred.SecretAccessKey || c.SessionID != cred.SessionID {
				t.Fatalf("fuzzed token verified: %q", tok)
			}
			return
		}
		var ce *Error
		if !errors.As(err, &ce) {
			t.Fatalf("error type %T", err)
		}
	})
}

func BenchmarkIssue(b *testing.B) {
	e := newEnv(b)
	r := e.replica(b)
	ctx := context.Background()
	req := request()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.is.Issue(ctx, req, time.Hour); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	e := newEnv(b)
	r := e.replica(b)
	ctx := context.Background()
	cred, _ := r.is.Issue(ctx, request(), time.Hour)
	now := e.clk.Now()
	b.ReportAllocs()
	for b.Loop() {
		// Revocation lookups hit the per-replica cache (the clock is frozen).
		if _, _, err := r.ver.Verify(ctx, cred.AccessKeyID, cred.SessionToken, now); err != nil {
			b.Fatal(err)
		}
	}
}

// TestRevocationRecordsExpireOnlyWhenHarmless checks that revocation
// records are not kept forever (issue 11 finding 5) and never swept while
// they still matter: a user revocation holds while any credential issued
// before it can be alive (MaxSessionDuration), a session denial until the
// session's expiry, and each is swept only after that (plus skew).
func TestRevocationRecordsExpireOnlyWhenHarmless(t *testing.T) {
	e := newEnv(t)
	r := e.replica(t)
	ctx := context.Background()
	cred, err := r.is.Issue(ctx, request(), MaxSessionDuration)
	if err != nil {
		t.Fatal(err)
	}
	other := request()
	other.PrincipalID = "u-bob"
	bob, err := r.is.Issue(ctx, other, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	e.clk.Advance(time.Millisecond)
	at := e.clk.Now()
	if err := r.rev.RevokeUser(ctx, "u-alice", at); err != nil {
		t.Fatal(err)
	}
	if err := r.rev.RevokeSession(ctx, bob.SessionID, bob.Expiration); err != nil {
		t.Fatal(err)
	}
	verify := func(c Credentials, now time.Time) error {
		_, _, err := r.ver.Verify(ctx, c.AccessKeyID, c.SessionToken, now)
		return err
	}
	// The last instants each revocation applies: a user revocation while
	// the credential is accepted at all, a session denial until its time
	// plus the same skew.
	lastAlice := cred.Expiration.Add(ClockSkew - time.Millisecond)
	lastBob := bob.Expiration.Add(ClockSkew - time.Millisecond)
	for _, c := range []struct {
		cred Credentials
		last time.Time
	}{{bob, lastBob}, {cred, lastAlice}} {
		if _, err := r.st.SweepMeta(ctx, c.last); err != nil {
			t.Fatal(err)
		}
		e.clk.now = c.last // past every cached lookup
		wantCode(t, verify(c.cred, c.last), CodeAccessDenied, ErrRevoked)
	}
	n, err := r.st.SweepMeta(ctx, at.Add(MaxSessionDuration+ClockSkew+revocationMargin))
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Fatalf("swept %d records, want the user revocation", n)
	}
}

// TestRevokedSessionStaysDeniedThroughExpirySkew proves the revocation
// skew gap left by issue 11 (finding 10): the verifier accepts a session
// for ClockSkew after its expiry, so a session revoked until its expiry
// must stay denied through that tolerance too, on the replica that revoked
// it and on another one. The clock is injected.
func TestRevokedSessionStaysDeniedThroughExpirySkew(t *testing.T) {
	e := newEnv(t)
	a, b := e.replica(t), e.replica(t)
	ctx := context.Background()
	cred, err := a.is.Issue(ctx, request(), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.rev.RevokeSession(ctx, cred.SessionID, cred.Expiration); err != nil {
		t.Fatal(err)
	}
	for _, at := range []time.Duration{0, time.Millisecond, ClockSkew / 2, ClockSkew - time.Millisecond} {
		e.clk.now = cred.Expiration.Add(at) // past every cached lookup
		for name, r := range map[string]*replica{"revoking replica": a, "other replica": b} {
			_, _, err := r.ver.Verify(ctx, cred.AccessKeyID, cred.SessionToken, e.clk.now)
			if !errors.Is(err, ErrRevoked) {
				t.Fatalf("%s, %s after expiry: err = %v, want ErrRevoked", name, at, err)
			}
		}
	}
	e.clk.now = cred.Expiration.Add(ClockSkew)
	_, _, err = b.ver.Verify(ctx, cred.AccessKeyID, cred.SessionToken, e.clk.now)
	wantCode(t, err, CodeExpiredToken, ErrExpired)
}

// TestRoleLimitSealedAndNarrowedByChaining checks the role restriction a
// session carries (the first gap left by issue 11 finding 9): it survives
// sealing, a chained session gets the intersection of its own and its
// parent's, an empty restriction admits no other role, and a session
// without one (as every token sealed before the field existed) admits any.
func TestRoleLimitSealedAndNarrowedByChaining(t *testing.T) {
	const a, b, c = "arn:aws:iam::123456789012:role/A", "arn:aws:iam::123456789012:role/B", "arn:aws:iam::123456789012:role/C"
	cases := []struct {
		name          string
		parent, child *RoleLimit
		want          *RoleLimit
	}{
		{"unrestricted stays unrestricted", nil, nil, nil},
		{"child inherits the parent's", NewRoleLimit([]string{a, b}), nil, NewRoleLimit([]string{a, b})},
		{"child keeps its own", nil, NewRoleLimit([]string{c}), NewRoleLimit([]string{c})},
		{"both: intersection", NewRoleLimit([]string{a, b}), NewRoleLimit([]string{b, c}), NewRoleLimit([]string{b})},
		{"empty stays empty", NewRoleLimit(nil), nil, NewRoleLimit(nil)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newEnv(t).replica(t)
			ctx := context.Background()
			req := request()
			req.RoleLimit = tc.parent
			parent, err := r.is.Issue(ctx, req, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			pc, _, err := r.ver.Verify(ctx, parent.AccessKeyID, parent.SessionToken, t0)
			if err != nil {
				t.Fatal(err)
			}
			req = request()
			req.SessionTags, req.TransitiveTagKeys = nil, nil
			req.RoleLimit, req.Parent = tc.child, pc
			child, err := r.is.Issue(ctx, req, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			cc, _, err := r.ver.Verify(ctx, child.AccessKeyID, child.SessionToken, t0)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(cc.RoleLimit, tc.want) {
				t.Fatalf("RoleLimit = %+v, want %+v", cc.RoleLimit, tc.want)
			}
		})
	}
}
