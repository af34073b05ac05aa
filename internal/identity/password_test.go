package identity

import (
	"crypto/rand"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestHashPasswordPolicy(t *testing.T) {
	for _, tc := range []struct {
		name string
		pw   string
		ok   bool
	}{
		{"empty", "", false},
		{"short", "1234567", false},
		{"minimum", "12345678", true},
		{"maximum", strings.Repeat("a", MaxPasswordLen), true},
		{"overlong", strings.Repeat("a", MaxPasswordLen+1), false},
		{"unicode", "pässwörd-☃-long", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, err := HashPassword(tc.pw, fastArgon, rand.Reader)
			if !tc.ok {
				require.ErrorIs(t, err, ErrInvalidPassword)
				require.NotContains(t, err.Error(), tc.pw+"x") // never echoes the password
				return
			}
			require.NoError(t, err)
			require.True(t, strings.HasPrefix(h, "$argon2id$v=19$m=64,t=1,p=1$"), h)
			ok, err := VerifyPassword(h, tc.pw)
			require.NoError(t, err)
			require.True(t, ok)
		})
	}
}

func TestVerifyPassword(t *testing.T) {
	const pw = "correct horse battery staple"
	h, err := HashPassword(pw, DefaultArgon2Params, rand.Reader)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$"), h)
	h2, err := HashPassword(pw, DefaultArgon2Params, rand.Reader)
	require.NoError(t, err)
	require.NotEqual(t, h, h2, "salts must differ")

	parts := strings.Split(h, "$")
	flip := func(s string) string { // change one character of the base64
		b := []byte(s)
		if b[3] == 'A' {
			b[3] = 'B'
		} else {
			b[3] = 'A'
		}
		return string(b)
	}
	join := func(p ...string) string { return strings.Join(p, "$") }

	for _, tc := range []struct {
		name    string
		hash    string
		pw      string
		want    bool
		wantErr bool
	}{
		{"right password", h, pw, true, false},
		{"wrong password", h, pw + "!", false, false},
		{"case differs", h, strings.ToUpper(pw), false, false},
		{"empty password", h, "", false, false},
		{"overlong password", h, strings.Repeat("x", MaxPasswordLen+1), false, false},
		{"tampered hash", join(parts[0], parts[1], parts[2], parts[3], parts[4], flip(parts[5])), pw, false, false},
		{"tampered salt", join(parts[0], parts[1], parts[2], parts[3], flip(parts[4]), parts[5]), pw, false, false},
		{"tampered params", join(parts[0], parts[1], parts[2], "m=19456,t=1,p=1", parts[4], parts[5]), pw, false, false},
		{"argon2i", join(parts[0], "argon2i", parts[2], parts[3], parts[4], parts[5]), pw, false, true},
		{"bad version", join(parts[0], parts[1], "v=16", parts[3], parts[4], parts[5]), pw, false, true},
		{"huge memory", join(parts[0], parts[1], parts[2], "m=4194304,t=2,p=1", parts[4], parts[5]), pw, false, true},
		{"huge time", join(parts[0], parts[1], parts[2], "m=19456,t=1000,p=1", parts[4], parts[5]), pw, false, true},
		{"zero threads", join(parts[0], parts[1], parts[2], "m=19456,t=2,p=0", parts[4], parts[5]), pw, false, true},
		{"params trailing junk", join(parts[0], parts[1], parts[2], parts[3]+",x=1", parts[4], parts[5]), pw, false, true},
		{"bad base64", join(parts[0], parts[1], parts[2], parts[3], "!!!", parts[5]), pw, false, true},
		{"short key", join(parts[0], parts[1], parts[2], parts[3], parts[4], "AAAA"), pw, false, true},
		{"missing part", join(parts[0], parts[1], parts[2], parts[3], parts[4]), pw, false, true},
		{"empty", "", pw, false, true},
		{"bcrypt", "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy", pw, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, err := VerifyPassword(tc.hash, tc.pw)
			if tc.wantErr {
				require.Error(t, err)
			} else {
				require.NoError(t, err)
			}
			require.Equal(t, tc.want, ok)
		})
	}
}

func TestTokenFormat(t *testing.T) {
	id, secret, err := newTokenParts(rand.Reader)
	require.NoError(t, err)
	require.Len(t, id, 24)
	require.Len(t, secret, 52) // 256 bits
	raw, err := formatToken("pat", id, secret)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(raw, "ghp_"))
	k, gotID, gotSecret, err := parseToken(raw)
	require.NoError(t, err)
	require.Equal(t, "pat", string(k))
	require.Equal(t, id, gotID)
	require.Equal(t, secret, gotSecret)

	for _, bad := range []string{"", "ghp_", "ghp__", "ghx_" + id + "_" + secret, "ghp_" + id + "_" + secret[:20],
		"ghp_" + id + "_" + strings.ToUpper(secret), "ghp_" + id + "_" + secret + "_x", "Bearer " + raw,
		"ghp_" + id + "_" + secret + strings.Repeat("a", 300)} {
		_, _, _, err := parseToken(bad)
		require.Error(t, err, bad)
	}
}
