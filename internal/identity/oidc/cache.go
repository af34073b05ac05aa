package oidc

import "sync"

// maxCached bounds a ProviderCache; registrations are admin-made, so the
// bound is never reached in practice and only guards memory.
const maxCached = 1000

// ProviderCache keeps what is built from one provider registration (a
// Verifier with its fetched key set, discovered endpoints) for as long as
// the registration is unchanged: an entry is keyed by the provider's id and
// used only while its store revision matches, so an edited or re-created
// provider is rebuilt on next use. Build errors are not cached. The zero
// value is ready to use; it is safe for concurrent use.
type ProviderCache[T any] struct {
	mu sync.Mutex
	m  map[string]cachedProvider[T]
}

type cachedProvider[T any] struct {
	revision int64
	v        T
}

// Get returns the value for provider id at revision, calling build (outside
// the lock) when there is none or it was built for another revision.
func (c *ProviderCache[T]) Get(id string, revision int64, build func() (T, error)) (T, error) {
	c.mu.Lock()
	e, ok := c.m[id]
	c.mu.Unlock()
	if ok && e.revision == revision {
		return e.v, nil
	}
	v, err := build()
	if err != nil {
		return v, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxCached {
		c.m = map[string]cachedProvider[T]{}
	}
	c.m[id] = cachedProvider[T]{revision: revision, v: v}
	return v, nil
}
