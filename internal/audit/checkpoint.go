package audit

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/gatehouse-dev/gatehouse/internal/secrets"
)

// Files in an audit directory.
const (
	LogFile  = "audit.log"  // the hash-chained JSON Lines log
	HeadFile = "audit.head" // the latest signed head (a Checkpoint)
	KeyFile  = "audit.key"  // Ed25519 signing key seed, sealed under the master key
	PubFile  = "audit.pub"  // Ed25519 public key, base64, plaintext
	lockFile = "audit.lock"
)

const (
	checkpointDomain = "gatehouse-audit-checkpoint-v1"
	keyAAD           = "gatehouse/audit/signing-key/v1"
)

// Checkpoint is a signed statement that the log's record Seq has hash Hash,
// made at Time by the key identified by Key. Checkpoint records in the log
// carry a statement about the record just before them; audit.head carries
// a statement about the latest checkpoint record itself.
type Checkpoint struct {
	Seq  uint64    `json:"seq"`
	Hash string    `json:"hash"`
	Time time.Time `json:"time"`
	Key  string    `json:"key"` // key id: first 8 bytes of SHA-256(public key), hex
	Sig  string    `json:"sig"` // base64 Ed25519 signature over SignedBytes
}

// SignedBytes is the exact message an Ed25519 checkpoint signature covers:
//
//	"gatehouse-audit-checkpoint-v1\n" + seq + "\n" + hash + "\n" + RFC3339Nano UTC time
func (c *Checkpoint) SignedBytes() []byte {
	b := make([]byte, 0, 128)
	b = append(b, checkpointDomain...)
	b = append(b, '\n')
	b = strconv.AppendUint(b, c.Seq, 10)
	b = append(b, '\n')
	b = append(b, c.Hash...)
	b = append(b, '\n')
	return c.Time.UTC().AppendFormat(b, time.RFC3339Nano)
}

// verify checks the signature of c under pub.
func (c *Checkpoint) verify(pub ed25519.PublicKey) bool {
	sig, err := base64.StdEncoding.DecodeString(c.Sig)
	if err != nil || len(sig) != ed25519.SignatureSize || len(pub) != ed25519.PublicKeySize {
		return false
	}
	return ed25519.Verify(pub, c.SignedBytes(), sig)
}

func signCheckpoint(priv ed25519.PrivateKey, keyID string, seq uint64, hash string, t time.Time) Checkpoint {
	c := Checkpoint{Seq: seq, Hash: hash, Time: t.UTC(), Key: keyID}
	c.Sig = base64.StdEncoding.EncodeToString(ed25519.Sign(priv, c.SignedBytes()))
	return c
}

// KeyID returns the short identifier of an audit public key.
func KeyID(pub ed25519.PublicKey) string {
	s := sha256.Sum256(pub)
	return hex.EncodeToString(s[:8])
}

// ParsePublicKey parses a base64 Ed25519 public key, as stored in audit.pub.
func ParsePublicKey(s string) (ed25519.PublicKey, error) {
	b, err := base64.StdEncoding.DecodeString(strings.TrimSpace(s))
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, errors.New("audit: public key must be base64 of 32 bytes")
	}
	return ed25519.PublicKey(b), nil
}

// ReadPublicKey reads audit.pub from an audit directory.
func ReadPublicKey(dir string) (ed25519.PublicKey, error) {
	b, err := os.ReadFile(filepath.Join(dir, PubFile))
	if err != nil {
		return nil, fmt.Errorf("audit: read public key: %w", err)
	}
	pub, err := ParsePublicKey(string(b))
	if err != nil {
		return nil, fmt.Errorf("audit: %s: %w", PubFile, err)
	}
	return pub, nil
}

// loadOrCreateSigningKey opens the sealed signing key in dir, or creates it
// (and audit.pub) when neither the key nor a non-empty log exists.
func loadOrCreateSigningKey(dir string, master []byte, logHasData bool) (ed25519.PrivateKey, error) {
	keyPath := filepath.Join(dir, KeyFile)
	sealed, err := os.ReadFile(keyPath)
	switch {
	case err == nil:
		seed, err := secrets.Open(master, sealed, []byte(keyAAD))
		if err != nil {
			return nil, fmt.Errorf("audit: open signing key %s: %w", KeyFile, err)
		}
		if len(seed) != ed25519.SeedSize {
			return nil, fmt.Errorf("audit: signing key %s has wrong size", KeyFile)
		}
		priv := ed25519.NewKeyFromSeed(seed)
		pub, perr := ReadPublicKey(dir)
		if errors.Is(perr, fs.ErrNotExist) {
			// Recreate the public half from the private key.
			if err := writePub(dir, priv.Public().(ed25519.PublicKey)); err != nil {
				return nil, err
			}
			return priv, nil
		}
		if perr != nil {
			return nil, perr
		}
		if !pub.Equal(priv.Public()) {
			return nil, fmt.Errorf("audit: %s does not match the signing key in %s", PubFile, KeyFile)
		}
		return priv, nil
	case !errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("audit: read signing key: %w", err)
	case logHasData:
		return nil, fmt.Errorf("audit: %s is missing but %s has records; refusing to start a new key (restore the key file)", KeyFile, LogFile)
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("audit: generate signing key: %w", err)
	}
	sealed, err = secrets.Seal(master, priv.Seed(), []byte(keyAAD))
	if err != nil {
		return nil, fmt.Errorf("audit: seal signing key: %w", err)
	}
	if err := writePub(dir, pub); err != nil {
		return nil, err
	}
	if err := secrets.WriteFileAtomic(keyPath, sealed, 0o600); err != nil {
		return nil, fmt.Errorf("audit: write signing key: %w", err)
	}
	return priv, nil
}

func writePub(dir string, pub ed25519.PublicKey) error {
	data := []byte(base64.StdEncoding.EncodeToString(pub) + "\n")
	if err := secrets.WriteFileAtomic(filepath.Join(dir, PubFile), data, 0o644); err != nil {
		return fmt.Errorf("audit: write public key: %w", err)
	}
	return nil
}

// readHead reads audit.head. A missing file returns (nil, fs.ErrNotExist).
func readHead(dir string) (*Checkpoint, error) {
	b, err := os.ReadFile(filepath.Join(dir, HeadFile))
	if err != nil {
		return nil, err
	}
	var c Checkpoint
	if err := json.Unmarshal(b, &c); err != nil {
		return nil, fmt.Errorf("audit: %s is malformed: %w", HeadFile, err)
	}
	return &c, nil
}

// writeHead replaces audit.head via a synced temporary file and rename.
// durable also syncs the directory so the rename itself survives a crash;
// that is needed for the first head only, since losing a later rename just
// leaves the previous head, which is still valid (it lags, never leads).
func writeHead(dir string, c Checkpoint, durable bool) error {
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if durable {
		err = secrets.WriteFileAtomic(filepath.Join(dir, HeadFile), b, 0o644)
	} else {
		err = writeFileRename(filepath.Join(dir, HeadFile), b)
	}
	if err != nil {
		return fmt.Errorf("audit: write head: %w", err)
	}
	return nil
}

func writeFileRename(path string, data []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
