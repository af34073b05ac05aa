// Package authzmsg seals the explanation of an authorization denial into an
// opaque message that the denied caller can hand to an administrator, who
// decodes it (like AWS's encoded authorization messages and
// sts:DecodeAuthorizationMessage). The caller learns nothing from the
// message itself: it is AES-256-GCM sealed under a key derived from the
// master key, so only a gatehouse replica (through the admin API) can open it.
package authzmsg

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/secrets"
)

// Explanation is what a denial message carries.
type Explanation struct {
	Allowed   bool      `json:"allowed"`
	Time      time.Time `json:"time"`
	RequestID string    `json:"requestId,omitempty"`
	Principal string    `json:"principal,omitempty"` // assumed-role session ARN or role ARN
	// UserID is the gatehouse principal id of the denied end user: STS
	// DecodeAuthorizationMessage lets that user decode the message
	// without sts:DecodeAuthorizationMessage.
	UserID         string `json:"userId,omitempty"`
	SourceIdentity string `json:"sourceIdentity,omitempty"`
	Action         string `json:"action"`
	Resource       string `json:"resource"`
	Mount          string `json:"mount,omitempty"` // mount id, when one applied
	Reason         string `json:"reason"`          // the evaluator's explanation
}

// maxMessage bounds what Decode accepts (base64 text).
const maxMessage = 16 << 10

// prefix marks gatehouse messages and their format version.
const prefix = "ghm1."

// ErrInvalid is returned for a message that is malformed, tampered with,
// or sealed by another deployment's key.
var ErrInvalid = errors.New("authzmsg: not a valid authorization message")

// Codec seals and opens messages. Safe for concurrent use.
type Codec struct{ key []byte }

// New derives the message key from the master key, so every replica that
// shares the master key can decode every replica's messages.
func New(masterKey []byte) (*Codec, error) {
	if len(masterKey) != secrets.KeySize {
		return nil, fmt.Errorf("authzmsg: master key must be %d bytes", secrets.KeySize)
	}
	m := hmac.New(sha256.New, masterKey)
	m.Write([]byte("gatehouse authorization message key v1"))
	return &Codec{key: m.Sum(nil)}, nil
}

var aad = []byte("gatehouse/authzmsg/v1")

// Encode seals e into a message safe to put in an error body.
func (c *Codec) Encode(e Explanation) (string, error) {
	raw, err := json.Marshal(e)
	if err != nil {
		return "", fmt.Errorf("authzmsg: encode: %w", err)
	}
	sealed, err := secrets.Seal(c.key, raw, aad)
	if err != nil {
		return "", fmt.Errorf("authzmsg: seal: %w", err)
	}
	return prefix + base64.RawURLEncoding.EncodeToString(sealed), nil
}

// Decode opens a message produced by Encode.
func (c *Codec) Decode(msg string) (*Explanation, error) {
	msg = strings.TrimSpace(msg)
	if len(msg) > maxMessage || !strings.HasPrefix(msg, prefix) {
		return nil, ErrInvalid
	}
	sealed, err := base64.RawURLEncoding.Strict().DecodeString(msg[len(prefix):])
	if err != nil {
		return nil, ErrInvalid
	}
	raw, err := secrets.Open(c.key, sealed, aad)
	if err != nil {
		return nil, ErrInvalid
	}
	var e Explanation
	if err := json.Unmarshal(raw, &e); err != nil {
		return nil, ErrInvalid
	}
	return &e, nil
}
