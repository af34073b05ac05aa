package identity

import (
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/gatehouse-dev/gatehouse/internal/store"
)

// Bearer token wire format: gh<k>_<id>_<secret>, where <k> is the kind
// letter ("p" personal access token, "s" session), <id> the stored token id
// and <secret> 256 random bits. Both id and secret use lowercase unpadded
// base32, so neither contains "_" and the token is safe in headers, cookies
// and shell variables. Only SHA-256(secret) is stored. The prefix makes
// leaked tokens easy to find with secret scanners.
const (
	tokenIDBytes     = 15 // 120 bits, 24 characters
	tokenSecretBytes = 32 // 256 bits, 52 characters
)

var tokenEnc = base32.StdEncoding.WithPadding(base32.NoPadding)

var errMalformedToken = errors.New("identity: malformed token")

func kindLetter(k store.TokenKind) (string, error) {
	switch k {
	case store.TokenPAT:
		return "p", nil
	case store.TokenSession:
		return "s", nil
	}
	return "", fmt.Errorf("identity: unknown token kind %q", k)
}

func randomToken(rnd io.Reader, n int) (string, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(rnd, b); err != nil {
		return "", fmt.Errorf("identity: token randomness: %w", err)
	}
	return strings.ToLower(tokenEnc.EncodeToString(b)), nil
}

// newTokenParts returns a fresh id and secret.
func newTokenParts(rnd io.Reader) (id, secret string, err error) {
	if id, err = randomToken(rnd, tokenIDBytes); err != nil {
		return "", "", err
	}
	if secret, err = randomToken(rnd, tokenSecretBytes); err != nil {
		return "", "", err
	}
	return id, secret, nil
}

func formatToken(kind store.TokenKind, id, secret string) (string, error) {
	l, err := kindLetter(kind)
	if err != nil {
		return "", err
	}
	return "gh" + l + "_" + id + "_" + secret, nil
}

// parseToken splits a bearer token into kind, id and secret. It checks the
// shape only; the caller checks the secret against the stored hash.
func parseToken(tok string) (kind store.TokenKind, id, secret string, err error) {
	if len(tok) > 256 {
		return "", "", "", errMalformedToken
	}
	parts := strings.Split(tok, "_")
	if len(parts) != 3 {
		return "", "", "", errMalformedToken
	}
	switch parts[0] {
	case "ghp":
		kind = store.TokenPAT
	case "ghs":
		kind = store.TokenSession
	default:
		return "", "", "", errMalformedToken
	}
	id, secret = parts[1], parts[2]
	if !isBase32Lower(id) || !isBase32Lower(secret) || len(secret) < 52 {
		return "", "", "", errMalformedToken
	}
	return kind, id, secret, nil
}

func isBase32Lower(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if (c < 'a' || c > 'z') && (c < '2' || c > '7') {
			return false
		}
	}
	return true
}

func hashSecret(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}
