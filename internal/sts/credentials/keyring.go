package credentials

import (
	"bytes"
	"context"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/gatehouse-dev/gatehouse/internal/secrets"
	"github.com/gatehouse-dev/gatehouse/internal/store"
)

const (
	// MetaKeyring is the store meta key holding the keyring, sealed with the
	// master key.
	MetaKeyring = "sts/keyring"
	keyringAAD  = "gatehouse/sts/keyring/v1"
	// RetireAfter is how long a key keeps opening tokens after a newer key
	// replaced it: the longest session plus margin for replicas that seal
	// with it until their next Refresh.
	RetireAfter = MaxSessionDuration + 5*time.Minute
	keySize     = 32
	keyIDLen    = 4 // bytes in the token header
	maxCASTries = 10
)

// storedKey is one keyring key as persisted (inside the sealed blob).
type storedKey struct {
	ID         string     `json:"id"` // 8 hex digits
	Secret     []byte     `json:"secret"`
	CreatedAt  time.Time  `json:"created"`
	ReplacedAt *time.Time `json:"replaced,omitempty"` // when a newer key became current
}

type keyringState struct {
	Keys []storedKey `json:"keys"` // oldest first; the last one seals
}

// ringKey is a key ready to use.
type ringKey struct {
	id         string
	idBytes    [keyIDLen]byte
	aead       cipher.AEAD
	secretKey  []byte
	replacedAt *time.Time
}

func (k *ringKey) retired(now time.Time) bool {
	return k.replacedAt != nil && !now.Before(k.replacedAt.Add(RetireAfter))
}

// Keyring holds the session-token keys shared by all replicas: the newest
// key seals, every key that is not retired opens. The keys live in the store
// under MetaKeyring, sealed with the master key (DESIGN invariant 7);
// changes go through the store's compare-and-swap, so concurrent rotations
// by several replicas never lose a key. A Keyring is safe for concurrent use.
type Keyring struct {
	st     store.Store
	master []byte
	now    func() time.Time
	rand   io.Reader

	mu   sync.RWMutex
	raw  []byte // sealed blob last seen in the store
	keys []*ringKey
	byID map[string]*ringKey

	refreshMu   sync.Mutex
	lastRefresh time.Time
}

// LoadOrCreateKeyring loads the keyring from st, creating it with one fresh
// key if absent. masterKey is the 32-byte master key; clock defaults to
// time.Now.
func LoadOrCreateKeyring(ctx context.Context, st store.Store, masterKey []byte, clock func() time.Time) (*Keyring, error) {
	if len(masterKey) != secrets.KeySize {
		return nil, secrets.ErrKeySize
	}
	if clock == nil {
		clock = time.Now
	}
	kr := &Keyring{st: st, master: bytes.Clone(masterKey), now: clock, rand: rand.Reader}
	for range maxCASTries {
		raw, err := st.GetMeta(ctx, MetaKeyring)
		if err == nil {
			return kr, kr.install(raw)
		}
		if !errors.Is(err, store.ErrNotFound) {
			return nil, fmt.Errorf("credentials: load keyring: %w", err)
		}
		k, err := kr.newKey(nil)
		if err != nil {
			return nil, err
		}
		sealed, err := kr.seal(keyringState{Keys: []storedKey{k}})
		if err != nil {
			return nil, err
		}
		absent := []byte{}
		err = st.PutMeta(ctx, MetaKeyring, sealed, &absent)
		if err == nil {
			return kr, kr.install(sealed)
		}
		if !errors.Is(err, store.ErrConflict) {
			return nil, fmt.Errorf("credentials: create keyring: %w", err)
		}
		// Another replica created it first: load theirs.
	}
	return nil, errors.New("credentials: create keyring: too much contention")
}

func (kr *Keyring) newKey(existing []storedKey) (storedKey, error) {
	secret := make([]byte, keySize)
	if _, err := io.ReadFull(kr.rand, secret); err != nil {
		return storedKey{}, fmt.Errorf("credentials: generate key: %w", err)
	}
	for {
		id := make([]byte, keyIDLen)
		if _, err := io.ReadFull(kr.rand, id); err != nil {
			return storedKey{}, fmt.Errorf("credentials: generate key id: %w", err)
		}
		k := storedKey{ID: hex.EncodeToString(id), Secret: secret, CreatedAt: kr.now().UTC()}
		unique := true
		for _, e := range existing {
			unique = unique && e.ID != k.ID
		}
		if unique {
			return k, nil
		}
	}
}

func (kr *Keyring) seal(s keyringState) ([]byte, error) {
	pt, err := json.Marshal(s)
	if err != nil {
		return nil, err
	}
	return secrets.Seal(kr.master, pt, []byte(keyringAAD))
}

func (kr *Keyring) open(raw []byte) (keyringState, error) {
	pt, err := secrets.Open(kr.master, raw, []byte(keyringAAD))
	if err != nil {
		return keyringState{}, fmt.Errorf("credentials: open keyring (wrong master key?): %w", err)
	}
	var s keyringState
	if err := json.Unmarshal(pt, &s); err != nil || len(s.Keys) == 0 {
		return keyringState{}, errors.New("credentials: keyring is corrupt")
	}
	return s, nil
}

// install replaces the in-memory keys with the sealed blob raw.
func (kr *Keyring) install(raw []byte) error {
	s, err := kr.open(raw)
	if err != nil {
		return err
	}
	keys := make([]*ringKey, 0, len(s.Keys))
	byID := make(map[string]*ringKey, len(s.Keys))
	for _, sk := range s.Keys {
		rk, err := deriveRingKey(sk)
		if err != nil {
			return err
		}
		keys = append(keys, rk)
		byID[rk.id] = rk
	}
	kr.mu.Lock()
	kr.raw, kr.keys, kr.byID = raw, keys, byID
	kr.mu.Unlock()
	return nil
}

func deriveRingKey(sk storedKey) (*ringKey, error) {
	idb, err := hex.DecodeString(sk.ID)
	if err != nil || len(idb) != keyIDLen || len(sk.Secret) != keySize {
		return nil, errors.New("credentials: keyring holds a malformed key")
	}
	encKey, err := hkdf.Key(sha256.New, sk.Secret, nil, "gatehouse/sts/token-aead/v1", chacha20poly1305.KeySize)
	if err != nil {
		return nil, err
	}
	macKey, err := hkdf.Key(sha256.New, sk.Secret, nil, "gatehouse/sts/secret-access-key/v1", 32)
	if err != nil {
		return nil, err
	}
	aead, err := chacha20poly1305.NewX(encKey)
	if err != nil {
		return nil, err
	}
	rk := &ringKey{id: sk.ID, aead: aead, secretKey: macKey, replacedAt: sk.ReplacedAt}
	copy(rk.idBytes[:], idb)
	return rk, nil
}

// current returns the sealing key (the newest).
func (kr *Keyring) current() *ringKey {
	kr.mu.RLock()
	defer kr.mu.RUnlock()
	return kr.keys[len(kr.keys)-1]
}

// lookup returns the key with id if it is known and not retired at now.
func (kr *Keyring) lookup(id string, now time.Time) (*ringKey, bool) {
	kr.mu.RLock()
	defer kr.mu.RUnlock()
	k, ok := kr.byID[id]
	if !ok || k.retired(now) {
		return nil, false
	}
	return k, true
}

// KeyIDs returns the ids of the keys that can open tokens at now, oldest
// first; the last one seals new tokens.
func (kr *Keyring) KeyIDs(now time.Time) []string {
	kr.mu.RLock()
	defer kr.mu.RUnlock()
	var ids []string
	for _, k := range kr.keys {
		if !k.retired(now) {
			ids = append(ids, k.id)
		}
	}
	return ids
}

// CurrentKeyID returns the id of the key that seals new tokens.
func (kr *Keyring) CurrentKeyID() string { return kr.current().id }

// Refresh reloads the keyring from the store, picking up rotations made by
// other replicas. It is cheap when nothing changed. Call it periodically
// (e.g. every 30 s); Verifier also calls it when a token names an unknown key.
func (kr *Keyring) Refresh(ctx context.Context) error {
	raw, err := kr.st.GetMeta(ctx, MetaKeyring)
	if err != nil {
		return fmt.Errorf("credentials: refresh keyring: %w", err)
	}
	kr.mu.RLock()
	same := bytes.Equal(raw, kr.raw)
	kr.mu.RUnlock()
	if same {
		return nil
	}
	return kr.install(raw)
}

// refreshRateLimited refreshes at most once per second; used on unknown key
// ids, which an attacker controls.
func (kr *Keyring) refreshRateLimited(ctx context.Context) {
	kr.refreshMu.Lock()
	defer kr.refreshMu.Unlock()
	now := kr.now()
	if !kr.lastRefresh.IsZero() && now.Sub(kr.lastRefresh) < time.Second {
		return
	}
	kr.lastRefresh = now
	_ = kr.Refresh(ctx)
}

// Rotate adds a new key that seals from now on, marks the previous one
// replaced at now, and drops keys retired at now. Other replicas start using
// the new key at their next Refresh; tokens sealed with older keys keep
// verifying until those keys retire (RetireAfter after being replaced).
func (kr *Keyring) Rotate(ctx context.Context, now time.Time) error {
	return kr.rotate(ctx, now, 0)
}

// RotateIfOlder rotates only if the current key was created maxAge or more
// before now. Every replica can call it on a timer: the compare-and-swap lets
// one win and the others then see a fresh key and do nothing.
func (kr *Keyring) RotateIfOlder(ctx context.Context, now time.Time, maxAge time.Duration) error {
	if maxAge <= 0 {
		return errors.New("credentials: RotateIfOlder needs a positive maxAge")
	}
	return kr.rotate(ctx, now, maxAge)
}

func (kr *Keyring) rotate(ctx context.Context, now time.Time, maxAge time.Duration) error {
	now = now.UTC()
	for range maxCASTries {
		raw, err := kr.st.GetMeta(ctx, MetaKeyring)
		if err != nil {
			return fmt.Errorf("credentials: rotate: %w", err)
		}
		s, err := kr.open(raw)
		if err != nil {
			return err
		}
		if maxAge > 0 && now.Sub(s.Keys[len(s.Keys)-1].CreatedAt) < maxAge {
			return kr.install(raw)
		}
		var kept []storedKey
		for i, k := range s.Keys {
			if i == len(s.Keys)-1 {
				t := now
				k.ReplacedAt = &t
			}
			if k.ReplacedAt != nil && !now.Before(k.ReplacedAt.Add(RetireAfter)) {
				continue // retired: drop
			}
			kept = append(kept, k)
		}
		k, err := kr.newKey(kept)
		if err != nil {
			return err
		}
		k.CreatedAt = now
		s.Keys = append(kept, k)
		sealed, err := kr.seal(s)
		if err != nil {
			return err
		}
		expect := raw
		err = kr.st.PutMeta(ctx, MetaKeyring, sealed, &expect)
		if err == nil {
			return kr.install(sealed)
		}
		if !errors.Is(err, store.ErrConflict) {
			return fmt.Errorf("credentials: rotate: %w", err)
		}
	}
	return errors.New("credentials: rotate: too much contention")
}
