package sigv4

import (
	"container/list"
	"crypto/hmac"
	"crypto/sha256"
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
	key     [32]byte
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

// macPool holds SHA-256 states for hmacSHA256, which computes the same
// HMAC-SHA256 (RFC 2104) as crypto/hmac for a 32-byte key without the
// allocations of hmac.New on every request.
var macPool = sync.Pool{New: func() any { return &macState{in: sha256.New(), out: sha256.New()} }}

type macState struct{ in, out hash.Hash }

func hmacSHA256(key *[32]byte, msg []byte) [32]byte {
	const block = 64
	var ipad, opad [block]byte
	for i := range ipad {
		var k byte
		if i < len(key) {
			k = key[i]
		}
		ipad[i] = k ^ 0x36
		opad[i] = k ^ 0x5c
	}
	st := macPool.Get().(*macState)
	st.in.Reset()
	st.in.Write(ipad[:])
	st.in.Write(msg)
	var inner, out [32]byte
	st.in.Sum(inner[:0])
	st.out.Reset()
	st.out.Write(opad[:])
	st.out.Write(inner[:])
	st.out.Sum(out[:0])
	macPool.Put(st)
	return out
}

// get returns the signing key for the tuple, deriving and caching it on a
// miss.
func (c *keyCache) get(now time.Time, accessKeyID, secret, date, region, service string) [32]byte {
	if c == nil || c.max <= 0 {
		return deriveSigningKey(secret, date, region, service)
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

	k := deriveSigningKey(secret, date, region, service)

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
