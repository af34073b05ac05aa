package secrets

import (
	"bytes"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSealOpen(t *testing.T) {
	key := bytes.Repeat([]byte{7}, KeySize)
	other := bytes.Repeat([]byte{8}, KeySize)
	secret := []byte("hunter2-super-secret")
	sealed, err := Seal(key, secret, []byte("ctx"))
	require.NoError(t, err)
	require.Equal(t, byte(version1), sealed[0])
	require.False(t, bytes.Contains(sealed, secret))

	sealed2, err := Seal(key, secret, []byte("ctx"))
	require.NoError(t, err)
	require.NotEqual(t, sealed, sealed2, "nonce must be random")

	pt, err := Open(key, sealed, []byte("ctx"))
	require.NoError(t, err)
	require.Equal(t, secret, pt)

	flipped := bytes.Clone(sealed)
	flipped[len(flipped)-1] ^= 1
	badVersion := bytes.Clone(sealed)
	badVersion[0] = 2

	tests := []struct {
		name    string
		key     []byte
		sealed  []byte
		aad     []byte
		wantErr error
	}{
		{"wrong key", other, sealed, []byte("ctx"), ErrOpen},
		{"wrong aad", key, sealed, []byte("other"), ErrOpen},
		{"tampered", key, flipped, []byte("ctx"), ErrOpen},
		{"bad version", key, badVersion, []byte("ctx"), ErrFormat},
		{"short", key, sealed[:10], []byte("ctx"), ErrFormat},
		{"short key", key[:16], sealed, []byte("ctx"), ErrKeySize},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Open(tt.key, tt.sealed, tt.aad)
			require.ErrorIs(t, err, tt.wantErr)
			require.NotContains(t, err.Error(), string(secret))
		})
	}
}

func TestParseKey(t *testing.T) {
	key := bytes.Repeat([]byte{0xfb}, KeySize)
	tests := []struct {
		name, in string
		ok       bool
	}{
		{"std", base64.StdEncoding.EncodeToString(key), true},
		{"url raw", base64.RawURLEncoding.EncodeToString(key), true},
		{"spaces", "  " + EncodeKey(key) + "\n", true},
		{"short", base64.StdEncoding.EncodeToString(key[:16]), false},
		{"garbage", "not!base64-sekrit", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, err := ParseKey(tt.in)
			if !tt.ok {
				require.Error(t, err)
				require.NotContains(t, err.Error(), strings.TrimSpace(tt.in))
				return
			}
			require.NoError(t, err)
			require.Equal(t, key, k)
		})
	}
}

func TestFromEnv(t *testing.T) {
	t.Setenv(EnvMasterKey, "")
	_, ok, err := FromEnv()
	require.NoError(t, err)
	require.False(t, ok)

	key := bytes.Repeat([]byte{1}, KeySize)
	t.Setenv(EnvMasterKey, EncodeKey(key))
	k, ok, err := FromEnv()
	require.NoError(t, err)
	require.True(t, ok)
	require.Equal(t, key, k)

	t.Setenv(EnvMasterKey, "c2hvcnQ=")
	_, _, err = FromEnv()
	require.Error(t, err)
	require.NotContains(t, err.Error(), "c2hvcnQ=")
}

func TestLoadOrCreateMasterKey(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sub", "master.key")
	k1, err := LoadOrCreateMasterKey(path)
	require.NoError(t, err)
	require.Len(t, k1, KeySize)
	st, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), st.Mode().Perm())

	k2, err := LoadOrCreateMasterKey(path)
	require.NoError(t, err)
	require.Equal(t, k1, k2)

	require.NoError(t, os.Chmod(path, 0o640))
	_, err = LoadOrCreateMasterKey(path)
	require.True(t, errors.Is(err, ErrKeyPermissions), "got %v", err)
	require.NotContains(t, err.Error(), string(k1))

	require.NoError(t, os.Chmod(path, 0o600))
	require.NoError(t, os.WriteFile(path, []byte("short"), 0o600))
	_, err = LoadOrCreateMasterKey(path)
	require.Error(t, err)
	require.NotContains(t, err.Error(), "short")
}

func TestWriteFileAtomic(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f")
	require.NoError(t, WriteFileAtomic(path, []byte("a"), 0o600))
	require.NoError(t, WriteFileAtomic(path, []byte("bb"), 0o644))
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	require.Equal(t, "bb", string(b))
	st, _ := os.Stat(path)
	require.Equal(t, os.FileMode(0o644), st.Mode().Perm())
}
