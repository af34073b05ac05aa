package credentials

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"

	"golang.org/x/crypto/chacha20poly1305"
)

const (
	tokenVersion = 0x01
	tokenAAD     = "gatehouse/sts/session-token/v1"
	headerLen    = 1 + keyIDLen
	// AccessKeyPrefix marks temporary credentials, as in AWS.
	AccessKeyPrefix = "ASIA"
	accessKeyLen    = 20
	secretKeyLen    = 40
)

var akidEncoding = base32.StdEncoding.WithPadding(base32.NoPadding) // A-Z2-7

// newAccessKeyID returns "ASIA" + 16 base32 characters (80 random bits).
func newAccessKeyID(r io.Reader) (string, error) {
	b := make([]byte, 10)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", err
	}
	return AccessKeyPrefix + akidEncoding.EncodeToString(b), nil
}

// ValidAccessKeyID reports whether s has the shape of a gatehouse temporary
// access key id. It says nothing about whether it was issued.
func ValidAccessKeyID(s string) bool {
	if len(s) != accessKeyLen || s[:4] != AccessKeyPrefix {
		return false
	}
	for _, c := range s[4:] {
		if !(c >= 'A' && c <= 'Z' || c >= '2' && c <= '7') {
			return false
		}
	}
	return true
}

func newSessionID(r io.Reader) (string, error) {
	b := make([]byte, 16)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// deriveSecret computes the secret access key of a session. It is a pure
// function of the keyring key, the access key id and the session id, so any
// replica holding the key recomputes it and the token never carries it.
func deriveSecret(k *ringKey, akid, sessionID string) string {
	m := hmac.New(sha256.New, k.secretKey)
	m.Write([]byte("gatehouse/sts/secret/v1\x00"))
	m.Write([]byte(akid))
	m.Write([]byte{0})
	m.Write([]byte(sessionID))
	return base64.StdEncoding.EncodeToString(m.Sum(nil)[:30]) // 40 characters
}

func tokenAD(header []byte) []byte {
	return append([]byte(tokenAAD), header...)
}

// sealToken encrypts c under k.
func sealToken(k *ringKey, c *Claims, r io.Reader) (string, error) {
	pt, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	nonceSize := k.aead.NonceSize()
	buf := make([]byte, headerLen+nonceSize, headerLen+nonceSize+len(pt)+k.aead.Overhead())
	buf[0] = tokenVersion
	copy(buf[1:headerLen], k.idBytes[:])
	if _, err := io.ReadFull(r, buf[headerLen:]); err != nil {
		return "", fmt.Errorf("nonce: %w", err)
	}
	out := k.aead.Seal(buf, buf[headerLen:], pt, tokenAD(buf[:headerLen]))
	return base64.RawURLEncoding.EncodeToString(out), nil
}

// parsedToken is a decoded but not yet authenticated token.
type parsedToken struct {
	keyID string
	raw   []byte
}

// decodeToken checks the outer shape of a session token without any key.
func decodeToken(tok string) (parsedToken, error) {
	if len(tok) == 0 || len(tok) > maxTokenLen {
		return parsedToken{}, ErrMalformed
	}
	raw, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil {
		return parsedToken{}, ErrMalformed
	}
	if len(raw) < headerLen+chacha20poly1305.NonceSizeX+chacha20poly1305.Overhead || raw[0] != tokenVersion {
		return parsedToken{}, ErrMalformed
	}
	return parsedToken{keyID: hex.EncodeToString(raw[1:headerLen]), raw: raw}, nil
}

// openToken authenticates and decrypts p with k.
func openToken(k *ringKey, p parsedToken) (*Claims, error) {
	ns := k.aead.NonceSize()
	pt, err := k.aead.Open(nil, p.raw[headerLen:headerLen+ns], p.raw[headerLen+ns:], tokenAD(p.raw[:headerLen]))
	if err != nil {
		return nil, ErrForged
	}
	dec := json.NewDecoder(bytes.NewReader(pt))
	dec.DisallowUnknownFields()
	var c Claims
	if err := dec.Decode(&c); err != nil || c.Version != 1 {
		// Authenticated but unreadable: a bug or a future format, not an attack.
		return nil, ErrMalformed
	}
	c.KeyID = p.keyID
	return &c, nil
}
