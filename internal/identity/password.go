package identity

import (
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strings"

	"golang.org/x/crypto/argon2"
)

// Password policy bounds. A password is opaque bytes to us: no composition
// rules, only a length window (NIST SP 800-63B §5.1.1.2).
const (
	MinPasswordLen = 8
	MaxPasswordLen = 1024
)

// ErrInvalidPassword reports a password outside the policy (empty, too short
// or too long). It never carries the password itself.
var ErrInvalidPassword = errors.New("identity: password does not meet the policy")

// Argon2Params are the argon2id cost parameters recorded in each hash.
type Argon2Params struct {
	Memory  uint32 // KiB
	Time    uint32 // iterations
	Threads uint8
	SaltLen uint32
	KeyLen  uint32
}

// DefaultArgon2Params follow OWASP's argon2id recommendation
// (m=19 MiB, t=2, p=1), which costs tens of milliseconds per hash.
var DefaultArgon2Params = Argon2Params{Memory: 19 * 1024, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}

// Bounds accepted when verifying a stored hash, so a tampered hash string
// cannot make verification arbitrarily expensive.
const (
	maxArgonMemory  = 1 << 20 // 1 GiB in KiB
	maxArgonTime    = 16
	maxArgonThreads = 16
)

var b64 = base64.RawStdEncoding

// CheckPasswordPolicy reports ErrInvalidPassword when pw is outside the
// accepted length window.
func CheckPasswordPolicy(pw string) error {
	if len(pw) < MinPasswordLen || len(pw) > MaxPasswordLen {
		return fmt.Errorf("%w: length must be between %d and %d bytes", ErrInvalidPassword, MinPasswordLen, MaxPasswordLen)
	}
	return nil
}

// HashPassword returns pw hashed with argon2id in PHC string format:
// $argon2id$v=19$m=<KiB>,t=<iter>,p=<threads>$<salt>$<hash> (unpadded
// standard base64). rnd supplies the salt.
func HashPassword(pw string, p Argon2Params, rnd io.Reader) (string, error) {
	if err := CheckPasswordPolicy(pw); err != nil {
		return "", err
	}
	salt := make([]byte, p.SaltLen)
	if _, err := io.ReadFull(rnd, salt); err != nil {
		return "", fmt.Errorf("identity: password salt: %w", err)
	}
	key := argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.Memory, p.Time, p.Threads, b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// VerifyPassword reports whether pw matches the PHC-format argon2id hash
// encoded. It returns an error only when encoded is malformed or uses
// parameters outside the accepted bounds; a wrong password is (false, nil).
// The comparison is constant-time.
func VerifyPassword(encoded, pw string) (bool, error) {
	p, salt, want, err := parsePHC(encoded)
	if err != nil {
		return false, err
	}
	if len(pw) == 0 || len(pw) > MaxPasswordLen {
		return false, nil
	}
	got := argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

var errBadHash = errors.New("identity: malformed password hash")

func parsePHC(s string) (p Argon2Params, salt, key []byte, err error) {
	parts := strings.Split(s, "$")
	// "", "argon2id", "v=19", "m=..,t=..,p=..", salt, hash
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return p, nil, nil, errBadHash
	}
	var v int
	if _, err := fmt.Sscanf(parts[2], "v=%d", &v); err != nil || v != argon2.Version {
		return p, nil, nil, errBadHash
	}
	var m, t uint32
	var th uint8
	n, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &th)
	if err != nil || n != 3 || fmt.Sprintf("m=%d,t=%d,p=%d", m, t, th) != parts[3] {
		return p, nil, nil, errBadHash
	}
	if m < 8*uint32(th) || m > maxArgonMemory || t < 1 || t > maxArgonTime || th < 1 || th > maxArgonThreads {
		return p, nil, nil, errBadHash
	}
	salt, err = b64.DecodeString(parts[4])
	if err != nil || len(salt) < 8 || len(salt) > 64 {
		return p, nil, nil, errBadHash
	}
	key, err = b64.DecodeString(parts[5])
	if err != nil || len(key) < 16 || len(key) > 64 {
		return p, nil, nil, errBadHash
	}
	return Argon2Params{Memory: m, Time: t, Threads: th, SaltLen: uint32(len(salt)), KeyLen: uint32(len(key))}, salt, key, nil
}
