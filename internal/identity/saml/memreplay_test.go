package saml

import (
	"errors"
	"sync"
	"time"
)

// ErrReplayCacheFull is returned by MemoryReplayCache.Seen when it holds
// its maximum number of unexpired IDs. Evicting one instead would let it be
// replayed, so the validation fails closed.
var ErrReplayCacheFull = errors.New("saml: replay cache is full")

// MemoryReplayCache is a ReplayCache for a single process, for the tests
// of this package (a deployment uses StoreReplayCache). It forgets an ID
// once its expiry has passed. It is safe for concurrent use.
type MemoryReplayCache struct {
	mu        sync.Mutex
	now       func() time.Time
	max       int
	entries   map[string]time.Time
	nextSweep time.Time
}

var _ ReplayCache = (*MemoryReplayCache)(nil)

// NewMemoryReplayCache returns an empty cache holding at most maxEntries
// unexpired IDs (default 100000 when ≤ 0). now defaults to time.Now.
func NewMemoryReplayCache(now func() time.Time, maxEntries int) *MemoryReplayCache {
	if now == nil {
		now = time.Now
	}
	if maxEntries <= 0 {
		maxEntries = 100000
	}
	return &MemoryReplayCache{now: now, max: maxEntries, entries: map[string]time.Time{}}
}

// Seen implements ReplayCache.
func (c *MemoryReplayCache) Seen(id string, until time.Time) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if exp, ok := c.entries[id]; ok && now.Before(exp) {
		return true, nil
	}
	if len(c.entries) >= c.max || !now.Before(c.nextSweep) {
		for k, exp := range c.entries {
			if !now.Before(exp) {
				delete(c.entries, k)
			}
		}
		c.nextSweep = now.Add(time.Minute)
	}
	if len(c.entries) >= c.max {
		return false, ErrReplayCacheFull
	}
	c.entries[id] = until
	return false, nil
}

// Len reports the number of IDs held, expired or not.
func (c *MemoryReplayCache) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}
