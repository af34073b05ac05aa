// Package secrets seals secrets at rest under a 32-byte master key.
//
// Sealed values use AES-256-GCM with a fresh random 96-bit nonce per call and
// a leading version byte, so the format can change without ambiguity:
//
//	sealed = version(1 byte, 0x01) || nonce(12 bytes) || ciphertext || tag(16 bytes)
//
// The additional authenticated data (aad) binds a sealed value to its purpose
// (for example "gatehouse/audit/signing-key/v1"); opening with different aad
// fails. Errors from this package never contain key material or plaintext.
package secrets

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// KeySize is the size of a master key in bytes (AES-256).
const KeySize = 32

// EnvMasterKey is the environment variable holding a base64 master key.
const EnvMasterKey = "GATEHOUSE_MASTER_KEY"

const (
	version1  = 0x01
	nonceSize = 12
	tagSize   = 16
)

var (
	// ErrKeySize is returned for a key that is not KeySize bytes long.
	ErrKeySize = errors.New("secrets: key must be 32 bytes")
	// ErrOpen is returned when a sealed value cannot be authenticated: wrong
	// key, wrong aad, or a modified ciphertext. It deliberately says no more.
	ErrOpen = errors.New("secrets: cannot open sealed value (wrong key, wrong context or tampered)")
	// ErrFormat is returned for a sealed value that is too short or has an
	// unknown version byte.
	ErrFormat = errors.New("secrets: malformed sealed value")
	// ErrKeyPermissions is returned when a key file is readable or writable
	// by group or others.
	ErrKeyPermissions = errors.New("secrets: key file must not be accessible by group or others (chmod 600)")
)

// Seal encrypts and authenticates plaintext under key, binding aad.
// It is safe for concurrent use.
func Seal(key, plaintext, aad []byte) ([]byte, error) {
	aead, err := newAEAD(key)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 1+nonceSize, 1+nonceSize+len(plaintext)+tagSize)
	out[0] = version1
	if _, err := io.ReadFull(rand.Reader, out[1:1+nonceSize]); err != nil {
		return nil, fmt.Errorf("secrets: seal: reading random nonce: %w", err)
	}
	return aead.Seal(out, out[1:1+nonceSize], plaintext, aad), nil
}

// Open authenticates and decrypts a value produced by Seal with the same key
// and aad. Any mismatch yields ErrOpen.
func Open(key, sealed, aad []byte) ([]byte, error) {
	aead, err := newAEAD(key)
	if err != nil {
		return nil, err
	}
	if len(sealed) < 1+nonceSize+tagSize || sealed[0] != version1 {
		return nil, ErrFormat
	}
	pt, err := aead.Open(nil, sealed[1:1+nonceSize], sealed[1+nonceSize:], aad)
	if err != nil {
		return nil, ErrOpen
	}
	return pt, nil
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	if len(key) != KeySize {
		return nil, ErrKeySize
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, ErrKeySize
	}
	return cipher.NewGCM(block)
}

// ParseKey decodes a base64 (standard or URL alphabet, padded or not) master
// key and checks its length. The error never echoes the input.
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if k, err := enc.DecodeString(s); err == nil {
			if len(k) != KeySize {
				return nil, fmt.Errorf("secrets: master key decodes to %d bytes, want %d", len(k), KeySize)
			}
			return k, nil
		}
	}
	return nil, errors.New("secrets: master key is not valid base64")
}

// FromEnv reads the master key from GATEHOUSE_MASTER_KEY. ok is false when
// the variable is unset or empty; a set but invalid value is an error.
func FromEnv() (key []byte, ok bool, err error) {
	v := os.Getenv(EnvMasterKey)
	if strings.TrimSpace(v) == "" {
		return nil, false, nil
	}
	k, err := ParseKey(v)
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", EnvMasterKey, err)
	}
	return k, true, nil
}

// EncodeKey returns the standard base64 form of key, as accepted by ParseKey.
func EncodeKey(key []byte) string { return base64.StdEncoding.EncodeToString(key) }

// LoadOrCreateMasterKey reads a raw 32-byte master key from path, or creates
// one from crypto/rand (file mode 0600, parent directory 0700 if created)
// when path does not exist. An existing file with any group or other
// permission bits is refused with ErrKeyPermissions.
func LoadOrCreateMasterKey(path string) ([]byte, error) {
	k, err := loadKeyFile(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return k, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("secrets: create key directory: %w", err)
	}
	key := make([]byte, KeySize)
	if _, err := io.ReadFull(rand.Reader, key); err != nil {
		return nil, fmt.Errorf("secrets: generate master key: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		// Lost a race with another creator: use theirs.
		return loadKeyFile(path)
	}
	if err != nil {
		return nil, fmt.Errorf("secrets: create master key file: %w", err)
	}
	if _, err := f.Write(key); err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("secrets: write master key file: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(path)
		return nil, fmt.Errorf("secrets: sync master key file: %w", err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("secrets: close master key file: %w", err)
	}
	syncDir(filepath.Dir(path))
	return key, nil
}

func loadKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("secrets: open master key file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("secrets: stat master key file: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, errors.New("secrets: master key path is not a regular file")
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s has mode %04o", ErrKeyPermissions, path, st.Mode().Perm())
	}
	buf := make([]byte, KeySize+1)
	n, err := io.ReadFull(f, buf)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("secrets: read master key file: %w", err)
	}
	if n != KeySize {
		return nil, fmt.Errorf("secrets: master key file %s must hold exactly %d bytes", path, KeySize)
	}
	return buf[:KeySize], nil
}

// WriteFileAtomic writes data to path with the given mode via a synced
// temporary file and rename, so readers see the old or the new content.
func WriteFileAtomic(path string, data []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	if err := f.Chmod(mode); err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	ok = true
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
