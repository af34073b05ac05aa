package identity

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/gatehouse-dev/gatehouse/internal/audit"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

func bearer(tok string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/api/v1/whoami", nil)
	r.Header.Set("Authorization", "Bearer "+tok)
	return r
}

func TestTokenLifecycle(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	alice := e.user(t, "alice", store.KindUser, "engineers")
	// nested: engineers ⊂ gatehouse-admins, which confers nothing any more
	eng, err := e.st.GetGroupByName(ctx, "engineers")
	require.NoError(t, err)
	admins := &store.Group{DisplayName: "gatehouse-admins", Members: []store.Member{{ID: eng.ID, Type: store.MemberGroup}}}
	require.NoError(t, e.st.CreateGroup(ctx, admins))
	_, err = e.svc.GrantPrivilege(ctx, alice.ID, PrivilegeAdmin, "system")
	require.NoError(t, err)

	secret, tok, err := e.svc.CreateToken(ctx, nil, alice.ID, "laptop", 0)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(secret, "ghp_"+tok.ID+"_"))
	require.Equal(t, store.TokenPAT, tok.Kind)
	require.WithinDuration(t, e.clock.Now().Add(DefaultTokenTTL), tok.ExpiresAt, time.Second)
	stored, err := e.st.GetToken(ctx, tok.ID)
	require.NoError(t, err)
	require.NotContains(t, string(stored.Hash), secret)
	require.Len(t, stored.Hash, 32)

	p, err := e.svc.AuthenticateRequest(bearer(secret))
	require.NoError(t, err)
	require.Equal(t, alice.ID, p.UserID)
	require.Equal(t, "alice", p.UserName)
	require.Equal(t, "token", p.AuthMethod)
	require.Equal(t, tok.ID, p.TokenID)
	require.True(t, p.Admin, "holds the admin privilege")
	require.True(t, p.SCIM, "admins may call SCIM")
	require.ElementsMatch(t, []string{"engineers", "gatehouse-admins"}, p.Groups)

	touched, err := e.st.GetToken(ctx, tok.ID)
	require.NoError(t, err)
	require.NotNil(t, touched.LastUsedAt)

	list, err := e.svc.ListTokens(ctx, alice.ID)
	require.NoError(t, err)
	require.Len(t, list, 1)

	require.NoError(t, e.svc.RevokeToken(ctx, tok.ID))
	require.NoError(t, e.svc.RevokeToken(ctx, tok.ID), "idempotent")
	_, err = e.svc.AuthenticateRequest(bearer(secret))
	require.ErrorIs(t, err, ErrUnauthenticated)
	require.NotContains(t, err.Error(), secret)
}

func TestTokenTTL(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	u := e.user(t, "bob", store.KindUser)
	for _, tc := range []struct {
		name string
		ttl  time.Duration
		ok   bool
	}{
		{"default", 0, true},
		{"one hour", time.Hour, true},
		{"max", DefaultMaxTokenTTL, true},
		{"over max", DefaultMaxTokenTTL + time.Second, false},
		{"a year", 365 * 24 * time.Hour, false},
		{"negative", -time.Second, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := e.svc.CreateToken(ctx, nil, u.ID, tc.name, tc.ttl)
			if tc.ok {
				require.NoError(t, err)
			} else {
				require.ErrorIs(t, err, ErrInvalidTokenRequest)
			}
		})
	}
	_, _, err := e.svc.CreateToken(ctx, nil, "no-such-principal", "x", 0)
	require.ErrorIs(t, err, store.ErrNotFound)
	require.Equal(t, 7*24*time.Hour, NewService(e.st, e.rec, Options{MaxTokenTTL: 7 * 24 * time.Hour}).MaxTokenTTL())
	require.Equal(t, MaxTokenTTL, NewService(e.st, e.rec, Options{MaxTokenTTL: 10 * MaxTokenTTL}).MaxTokenTTL())
	_, _, err = e.svc.CreateToken(ctx, nil, u.ID, strings.Repeat("n", 200), 0)
	require.ErrorIs(t, err, ErrInvalidTokenRequest)
}

func TestAuthenticateRefusals(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	mk := func(name string) (*store.User, string) {
		u := e.user(t, name, store.KindUser)
		secret, _, err := e.svc.CreateToken(ctx, nil, u.ID, "t", time.Hour)
		require.NoError(t, err)
		return u, secret
	}

	t.Run("expired", func(t *testing.T) {
		_, secret := mk("exp")
		_, err := e.svc.AuthenticateRequest(bearer(secret))
		require.NoError(t, err)
		e.clock.Add(time.Hour)
		_, err = e.svc.AuthenticateRequest(bearer(secret))
		require.ErrorIs(t, err, ErrUnauthenticated)
		e.clock.Add(-time.Hour)
	})
	t.Run("disabled on next request", func(t *testing.T) {
		u, secret := mk("dis")
		_, err := e.svc.AuthenticateRequest(bearer(secret))
		require.NoError(t, err)
		u, err = e.st.GetUser(ctx, u.ID)
		require.NoError(t, err)
		u.Active = false
		require.NoError(t, e.st.UpdateUser(ctx, u))
		_, err = e.svc.AuthenticateRequest(bearer(secret))
		require.ErrorIs(t, err, ErrUnauthenticated)
		_, _, err = e.svc.CreateToken(ctx, nil, u.ID, "again", 0)
		require.ErrorIs(t, err, ErrInvalidTokenRequest)
	})
	t.Run("deleted", func(t *testing.T) {
		u, secret := mk("del")
		require.NoError(t, e.st.DeleteUser(ctx, u.ID))
		_, err := e.svc.AuthenticateRequest(bearer(secret))
		require.ErrorIs(t, err, ErrUnauthenticated)
	})
	t.Run("tampered secret", func(t *testing.T) {
		_, secret := mk("tamper")
		last := secret[len(secret)-1]
		repl := byte('a')
		if last == 'a' {
			repl = 'b'
		}
		_, err := e.svc.AuthenticateRequest(bearer(secret[:len(secret)-1] + string(repl)))
		require.ErrorIs(t, err, ErrUnauthenticated)
	})
	t.Run("kind swapped", func(t *testing.T) {
		_, secret := mk("kind")
		_, err := e.svc.AuthenticateRequest(bearer("ghs_" + strings.TrimPrefix(secret, "ghp_")))
		require.ErrorIs(t, err, ErrUnauthenticated)
	})
	t.Run("malformed headers", func(t *testing.T) {
		_, secret := mk("hdr")
		for _, h := range []string{"", "Bearer", "Bearer ", "Basic " + secret, "bearer" + secret, "Token " + secret} {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			if h != "" {
				r.Header.Set("Authorization", h)
			}
			_, err := e.svc.AuthenticateRequest(r)
			require.ErrorIs(t, err, ErrUnauthenticated, h)
		}
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("Authorization", "bEaReR "+secret)
		_, err := e.svc.AuthenticateRequest(r)
		require.NoError(t, err, "scheme is case-insensitive")
	})
	t.Run("cookie takes sessions only", func(t *testing.T) {
		_, secret := mk("cookie")
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.AddCookie(&http.Cookie{Name: SessionCookie, Value: secret})
		_, err := e.svc.AuthenticateRequest(r)
		require.ErrorIs(t, err, ErrUnauthenticated)
	})
	require.NotContains(t, e.logs.String(), "ghp_", "token secrets never reach the log")
}

func TestLogin(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	const pw = "s3cret-Password"
	carol := e.user(t, "carol", store.KindUser)
	require.NoError(t, e.svc.SetPassword(ctx, carol.ID, pw))
	svc := e.user(t, "robot", store.KindService)
	require.ErrorIs(t, e.svc.SetPassword(ctx, svc.ID, pw), ErrNoPassword)
	require.ErrorIs(t, e.svc.SetPassword(ctx, carol.ID, ""), ErrInvalidPassword)
	meta := LoginMeta{SourceIP: "192.0.2.1", UserAgent: "test", RequestID: "rid-1"}

	raw, tok, err := e.svc.Login(ctx, "CAROL", pw, meta)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(raw, "ghs_"))
	require.Equal(t, store.TokenSession, tok.Kind)
	require.WithinDuration(t, e.clock.Now().Add(DefaultSessionTTL), tok.ExpiresAt, time.Second)

	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.AddCookie(&http.Cookie{Name: SessionCookie, Value: raw})
	p, err := e.svc.AuthenticateRequest(r)
	require.NoError(t, err)
	require.Equal(t, "session", p.AuthMethod)
	require.False(t, p.Admin)
	require.True(t, CredentialFromCookie(r))

	var failMsgs []string
	for _, tc := range []struct{ name, user, pw string }{
		{"wrong password", "carol", pw + "x"},
		{"unknown user", "mallory", pw},
		{"service principal", "robot", pw},
		{"empty password", "carol", ""},
		{"empty user", "", pw},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := e.svc.Login(ctx, tc.user, tc.pw, meta)
			require.ErrorIs(t, err, ErrUnauthenticated)
			failMsgs = append(failMsgs, err.Error())
		})
	}
	for _, m := range failMsgs {
		require.Equal(t, failMsgs[0], m, "failures must not say which part was wrong")
	}

	// Disabled user with the right password is refused too.
	u, err := e.st.GetUser(ctx, carol.ID)
	require.NoError(t, err)
	u.Active = false
	require.NoError(t, e.st.UpdateUser(ctx, u))
	_, _, err = e.svc.Login(ctx, "carol", pw, meta)
	require.ErrorIs(t, err, ErrUnauthenticated)
	_, err = e.svc.AuthenticateRequest(r)
	require.ErrorIs(t, err, ErrUnauthenticated, "existing session cut off")

	codes := e.rec.codes()
	require.Equal(t, audit.CodeLoginSucceeded, codes[0])
	require.Len(t, codes, 7)
	for _, c := range codes[1:] {
		require.Equal(t, audit.CodeLoginFailed, c)
	}
	all := e.rec.json(t)
	require.NotContains(t, all, pw, "passwords are never audited")
	require.NotContains(t, all, "mallory", "unknown user names are recorded as keyed hashes")
	require.Contains(t, all, "attemptedUserHash")
	require.Contains(t, all, "192.0.2.1")
	require.NotContains(t, e.logs.String(), pw)

	// The keyed hash is stable across services sharing the store.
	h1, err := e.svc.keyedHash(ctx, "mallory")
	require.NoError(t, err)
	h2, err := e.service().keyedHash(ctx, "mallory")
	require.NoError(t, err)
	require.Equal(t, h1, h2)
}

func TestLoginAuditFailClosed(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	const pw = "s3cret-Password"
	u := e.user(t, "dave", store.KindUser)
	require.NoError(t, e.svc.SetPassword(ctx, u.ID, pw))
	e.rec.setFail(true)
	raw, _, err := e.svc.Login(ctx, "dave", pw, LoginMeta{})
	require.ErrorIs(t, err, ErrUnavailable)
	require.Empty(t, raw)
	toks, err := e.st.ListTokens(ctx, u.ID)
	require.NoError(t, err)
	for _, tk := range toks {
		require.NotNil(t, tk.RevokedAt, "an unaudited session must not stay usable")
	}
	_, _, err = e.svc.Login(ctx, "dave", "wrong-password", LoginMeta{})
	require.ErrorIs(t, err, ErrUnavailable)
}

func TestSetPasswordRevokesSessions(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	u := e.user(t, "erin", store.KindUser)
	require.NoError(t, e.svc.SetPassword(ctx, u.ID, "first-password"))
	sess, _, err := e.svc.Login(ctx, "erin", "first-password", LoginMeta{})
	require.NoError(t, err)
	pat, _, err := e.svc.CreateToken(ctx, nil, u.ID, "pat", 0)
	require.NoError(t, err)
	require.NoError(t, e.svc.SetPassword(ctx, u.ID, "second-password"))
	_, err = e.svc.AuthenticateRequest(bearer(sess))
	require.ErrorIs(t, err, ErrUnauthenticated)
	_, err = e.svc.AuthenticateRequest(bearer(pat))
	require.NoError(t, err, "personal access tokens survive a password change")
	_, _, err = e.svc.Login(ctx, "erin", "first-password", LoginMeta{})
	require.ErrorIs(t, err, ErrUnauthenticated)
}

func TestBootstrap(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "admin.token")

	created, err := e.svc.Bootstrap(ctx, path)
	require.NoError(t, err)
	require.True(t, created)

	fi, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	secret := strings.TrimSpace(string(b))
	require.True(t, strings.HasPrefix(secret, "ghp_"))

	p, err := e.svc.AuthenticateRequest(bearer(secret))
	require.NoError(t, err)
	require.True(t, p.Admin)
	require.Equal(t, BootstrapPrincipal, p.UserName)
	require.Equal(t, "service", p.Kind)

	require.Contains(t, e.logs.String(), path, "the path is logged")
	require.NotContains(t, e.logs.String(), secret, "the secret is not")
	require.NotContains(t, e.rec.json(t), secret)
	require.Contains(t, e.rec.codes(), audit.CodeBootstrap)

	// Idempotent: a second run, and a second replica, do nothing.
	require.NoError(t, os.Remove(path))
	for _, svc := range []*Service{e.svc, e.service()} {
		created, err = svc.Bootstrap(ctx, path)
		require.NoError(t, err)
		require.False(t, created)
	}
	_, err = os.Stat(path)
	require.ErrorIs(t, err, os.ErrNotExist, "no token file on later runs")
}

func TestBootstrapRace(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	dir := t.TempDir()
	var wg sync.WaitGroup
	results := make([]bool, 4)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			created, err := e.service().Bootstrap(ctx, filepath.Join(dir, "token-"+string(rune('a'+i))))
			require.NoError(t, err)
			results[i] = created
		}()
	}
	wg.Wait()
	n := 0
	for _, c := range results {
		if c {
			n++
		}
	}
	require.Equal(t, 1, n, "exactly one replica bootstraps")
	files, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, files, 1, "losers remove their token files")
}

func TestBootstrapRefusals(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	path := filepath.Join(t.TempDir(), "admin.token")

	// An existing file is never overwritten.
	require.NoError(t, os.WriteFile(path, []byte("keep me"), 0o600))
	_, err := e.svc.Bootstrap(ctx, path)
	require.Error(t, err)
	b, _ := os.ReadFile(path)
	require.Equal(t, "keep me", string(b))
	require.NoError(t, os.Remove(path))

	// Audit down: fail closed, no file, no usable token; a later run succeeds.
	e.rec.setFail(true)
	_, err = e.svc.Bootstrap(ctx, path)
	require.ErrorIs(t, err, ErrUnavailable)
	_, err = os.Stat(path)
	require.ErrorIs(t, err, os.ErrNotExist)
	bp, err := e.st.GetUserByName(ctx, BootstrapPrincipal)
	require.NoError(t, err)
	toks, err := e.st.ListTokens(ctx, bp.ID)
	require.NoError(t, err)
	for _, tk := range toks {
		require.NotNil(t, tk.RevokedAt)
	}
	e.rec.setFail(false)
	created, err := e.svc.Bootstrap(ctx, path)
	require.NoError(t, err)
	require.True(t, created)
	grants, err := e.svc.ListGrants(ctx)
	require.NoError(t, err)
	require.Len(t, grants, 1)
	require.Equal(t, bp.ID, grants[0].PrincipalID)
	require.Equal(t, PrivilegeAdmin, grants[0].Privilege)

	_, err = e.service().Bootstrap(ctx, "")
	require.NoError(t, err, "already done: the path is not needed")
	e2 := newEnv(t)
	_, err = e2.svc.Bootstrap(ctx, "")
	require.Error(t, err)
	require.False(t, errors.Is(err, store.ErrNotFound))
}

// TestTokenInheritsMintingCredential checks that a personal access token
// minted with a token or session of the same principal keeps its role
// restriction and cannot outlive it, while an administrator's token for
// another principal passes neither on (issue 11 finding 9).
func TestTokenInheritsMintingCredential(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	u := e.user(t, "carol", store.KindUser)
	now := e.clock.Now().UTC()
	sessExp := now.Add(12 * time.Hour)
	analyst := []store.RoleGrant{{RoleARN: "arn:aws:iam::123456789012:role/analyst", ProviderARN: "arn:aws:iam::123456789012:saml-provider/idp"}}
	for id, kind := range map[string]store.TokenKind{"s1": store.TokenSession, "p1": store.TokenPAT} {
		require.NoError(t, e.st.CreateToken(ctx, &store.Token{ID: id, Kind: kind, PrincipalID: u.ID, Hash: []byte("h"),
			ExpiresAt: now.Add(400 * 24 * time.Hour)}))
	}
	for _, tc := range []struct {
		name      string
		by        *Principal
		ttl       time.Duration
		ok        bool
		wantExp   time.Time
		wantRoles []store.RoleGrant
	}{
		{"restricted session, default ttl", &Principal{UserID: u.ID, TokenID: "s1", AuthMethod: "session", TokenExpiresAt: sessExp, RoleLimit: analyst},
			0, true, sessExp, analyst},
		{"empty restriction stays empty", &Principal{UserID: u.ID, TokenID: "s1", AuthMethod: "session", TokenExpiresAt: sessExp, RoleLimit: []store.RoleGrant{}},
			time.Hour, true, now.Add(time.Hour), []store.RoleGrant{}},
		{"outliving the session", &Principal{UserID: u.ID, TokenID: "s1", AuthMethod: "session", TokenExpiresAt: sessExp},
			13 * time.Hour, false, time.Time{}, nil},
		{"expired minting token", &Principal{UserID: u.ID, TokenID: "p1", AuthMethod: "token", TokenExpiresAt: now},
			0, false, time.Time{}, nil},
		{"unrestricted PAT", &Principal{UserID: u.ID, TokenID: "p1", AuthMethod: "token", TokenExpiresAt: now.Add(400 * 24 * time.Hour)},
			0, true, now.Add(DefaultTokenTTL), nil},
		{"admin for another principal", &Principal{UserID: "admin", TokenID: "s2", AuthMethod: "session", TokenExpiresAt: sessExp, RoleLimit: analyst, Admin: true},
			30 * 24 * time.Hour, true, now.Add(30 * 24 * time.Hour), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, tok, err := e.svc.CreateToken(ctx, tc.by, u.ID, "t", tc.ttl)
			if !tc.ok {
				require.ErrorIs(t, err, ErrInvalidTokenRequest)
				return
			}
			require.NoError(t, err)
			require.True(t, tc.wantExp.Truncate(time.Microsecond).Equal(tok.ExpiresAt), "expires %s, want %s", tok.ExpiresAt, tc.wantExp)
			require.Equal(t, tc.wantRoles, tok.Roles)
			got, err := e.st.GetToken(ctx, tok.ID)
			require.NoError(t, err)
			require.Equal(t, tc.wantRoles == nil, got.Roles == nil)
		})
	}
}

// TestTokenChain checks that a token minted with a token records it as its
// parent, dies when any ancestor is revoked, and that chains are bounded.
func TestTokenChain(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	u := e.user(t, "dora", store.KindUser)
	raws := make([]string, 0, maxTokenChain+1)
	raw, root, err := e.svc.CreateToken(ctx, nil, u.ID, "root", 0)
	require.NoError(t, err)
	require.Empty(t, root.ParentID)
	raws = append(raws, raw)
	for i := range maxTokenChain {
		p, err := e.svc.Authenticate(ctx, raws[i])
		require.NoError(t, err)
		raw, tok, err := e.svc.CreateToken(ctx, p, u.ID, "child", 0)
		require.NoError(t, err, "depth %d", i+1)
		require.Equal(t, p.TokenID, tok.ParentID)
		raws = append(raws, raw)
	}
	p, err := e.svc.Authenticate(ctx, raws[maxTokenChain])
	require.NoError(t, err)
	_, _, err = e.svc.CreateToken(ctx, p, u.ID, "too deep", 0)
	require.ErrorIs(t, err, ErrInvalidTokenRequest)

	p, err = e.svc.Authenticate(ctx, raws[1])
	require.NoError(t, err)
	require.NoError(t, e.svc.RevokeToken(ctx, p.TokenID))
	_, err = e.svc.Authenticate(ctx, raws[0])
	require.NoError(t, err, "the root survives its child's revocation")
	for i := 1; i <= maxTokenChain; i++ {
		_, err = e.svc.Authenticate(ctx, raws[i])
		require.ErrorIs(t, err, ErrUnauthenticated, "depth %d", i)
	}
}
