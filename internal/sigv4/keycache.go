package sigv4

import (
	"container/list"
	"crypto/hmac"
	"crypto/sha256"
	"encoding"
	"encoding/binary"
	"hash"
	"sync"
	"time"
)

// deriveSigningKey computes the SigV4 signing key (AWS docs, "Derive a
// signing key"):
//
//	kDate    = HMAC("AWS4" + secret, date)
//	kRegion  = HMAC(kDate, region)
//	kService = HMAC(kRegion, service)
//	kSigning = HMAC(kService, "aws4_request")
func deriveSigningKey(secret, date, region, service string) [32]byte {
	k := hmacSum([]byte("AWS4"+secret), date)
	k = hmacSum(k[:], region)
	k = hmacSum(k[:], service)
	return hmacSum(k[:], terminator)
}

func hmacSum(key []byte, data string) [32]byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	var out [32]byte
	m.Sum(out[:0])
	return out
}

// keyCache is a bounded LRU of derived signing keys with a time to live.
// Entries are keyed by a SHA-256 over (access key, secret, date, region,
// service), so a rotated or different secret never finds a stale key, and
// the cache never holds a secret in its index. It is safe for concurrent use.
type keyCache struct {
	mu  sync.Mutex
	max int
	ttl time.Duration
	ll  *list.List // front = most recently used
	m   map[[32]byte]*list.Element
}

type keyEntry struct {
	id      [32]byte
	key     *macKey
	expires time.Time
}

func newKeyCache(max int, ttl time.Duration) *keyCache {
	return &keyCache{max: max, ttl: ttl, ll: list.New(), m: make(map[[32]byte]*list.Element, max)}
}

func cacheID(accessKeyID, secret, date, region, service string) [32]byte {
	var stack [256]byte
	b := stack[:0]
	for _, s := range [...]string{accessKeyID, secret, date, region, service} {
		b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
		b = append(b, s...)
	}
	id := sha256.Sum256(b)
	clear(stack[:]) // the secret does not linger on the stack copy
	return id
}

// macPool holds SHA-256 states and scratch space for hmacSHA256, which
// computes the same HMAC-SHA256 (RFC 2104) as crypto/hmac for a 32-byte key
// without allocating.
var macPool = sync.Pool{New: func() any {
	h := sha256.New()
	u, _ := h.(encoding.BinaryUnmarshaler)
	return &macState{h: h, u: u}
}}

type macState struct {
	h     hash.Hash
	u     encoding.BinaryUnmarshaler // h, to restore a macKey state; nil if h cannot
	pad   [64]byte                   // the key XOR ipad, then XOR opad
	inner [32]byte
	sum   [32]byte
}

func hmacSHA256(key *[32]byte, msg []byte) [32]byte {
	st := macPool.Get().(*macState)
	for i := range st.pad {
		st.pad[i] = 0x36
	}
	for i, k := range key {
		st.pad[i] ^= k
	}
	st.h.Reset()
	st.h.Write(st.pad[:])
	st.h.Write(msg)
	st.h.Sum(st.inner[:0])
	for i := range st.pad {
		st.pad[i] ^= 0x36 ^ 0x5c
	}
	st.h.Reset()
	st.h.Write(st.pad[:])
	st.h.Write(st.inner[:])
	st.h.Sum(st.sum[:0])
	out := st.sum
	clear(st.pad[:]) // no key material lingers in the pool
	macPool.Put(st)
	return out
}

// macKey is a signing key with the SHA-256 states after each of its HMAC
// pad blocks (RFC 2104 section 2: the key XOR ipad, the key XOR opad) saved,
// which makes every HMAC with the key two block compressions cheaper. It is
// immutable once built, so the key cache shares it between concurrent
// verifications.
type macKey struct {
	key          [32]byte
	inner, outer []byte // marshaled SHA-256 states; nil: sum uses hmacSHA256
}

// newMACKey returns key with its pad states.
func newMACKey(key [32]byte) *macKey {
	mk := &macKey{key: key}
	h := sha256.New()
	m, ok := h.(encoding.BinaryMarshaler)
	if !ok {
		return mk
	}
	var pad [64]byte
	for i := range pad {
		pad[i] = 0x36
	}
	for i, k := range key {
		pad[i] ^= k
	}
	h.Write(pad[:])
	inner, err1 := m.MarshalBinary()
	for i := range pad {
		pad[i] ^= 0x36 ^ 0x5c
	}
	h.Reset()
	h.Write(pad[:])
	outer, err2 := m.MarshalBinary()
	clear(pad[:])
	if err1 == nil && err2 == nil {
		mk.inner, mk.outer = inner, outer
	}
	return mk
}

// sum returns HMAC-SHA256(key, msg), as hmacSHA256(&k.key, msg). It is safe
// for concurrent use.
func (k *macKey) sum(msg []byte) [32]byte {
	if k.inner == nil {
		return hmacSHA256(&k.key, msg)
	}
	st := macPool.Get().(*macState)
	if st.u == nil || st.u.UnmarshalBinary(k.inner) != nil {
		macPool.Put(st)
		return hmacSHA256(&k.key, msg)
	}
	st.h.Write(msg)
	st.h.Sum(st.inner[:0])
	if st.u.UnmarshalBinary(k.outer) != nil {
		macPool.Put(st)
		return hmacSHA256(&k.key, msg)
	}
	st.h.Write(st.inner[:])
	st.h.Sum(st.sum[:0])
	out := st.sum
	macPool.Put(st)
	return out
}

// get returns the signing key for the tuple, deriving and caching it on a
// miss.
func (c *keyCache) get(now time.Time, accessKeyID, secret, date, region, service string) [32]byte {
	return c.getMAC(now, accessKeyID, secret, date, region, service).key
}

// getMAC is get returning the key with its HMAC pad states. Without a cache
// the states are not computed: they would serve one HMAC only.
func (c *keyCache) getMAC(now time.Time, accessKeyID, secret, date, region, service string) *macKey {
	if c == nil || c.max <= 0 {
		return &macKey{key: deriveSigningKey(secret, date, region, service)}
	}
	id := cacheID(accessKeyID, secret, date, region, service)
	c.mu.Lock()
	if el, ok := c.m[id]; ok {
		e := el.Value.(*keyEntry)
		if now.Before(e.expires) {
			c.ll.MoveToFront(el)
			k := e.key
			c.mu.Unlock()
			return k
		}
		c.ll.Remove(el)
		delete(c.m, id)
	}
	c.mu.Unlock()

	k := newMACKey(deriveSigningKey(secret, date, region, service))

	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[id]; ok {
		return k // another goroutine raced us; its entry is equivalent
	}
	c.m[id] = c.ll.PushFront(&keyEntry{id: id, key: k, expires: now.Add(c.ttl)})
	for c.ll.Len() > c.max {
		old := c.ll.Back()
		c.ll.Remove(old)
		delete(c.m, old.Value.(*keyEntry).id)
	}
	return k
}

func (c *keyCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.ll.Len()
}
