package websso

import (
	"sync"
	"time"
)

// pendingRequests remembers the IDs of AuthnRequests this SP sent
// (SP-initiated logins), so a response that claims to answer one
// (InResponseTo) is accepted only if we really sent it, once, recently
// (SAML profiles §4.1.4.3). IdP-initiated responses carry no InResponseTo
// and are not affected.
//
// The set is per process: with several replicas behind a load balancer, the
// ACS must be sticky to the replica that started the login, or the login is
// refused (fail closed) and the user starts again.
type pendingRequests struct {
	mu  sync.Mutex
	ids map[string]time.Time // id -> expiry
	max int
}

// authnRequestTTL bounds how long a user may take at the IdP.
const authnRequestTTL = 10 * time.Minute

func newPendingRequests() *pendingRequests {
	return &pendingRequests{ids: map[string]time.Time{}, max: 100000}
}

// add records id until now+authnRequestTTL. When full, expired ids are dropped;
// if it is still full the oldest ids are not evicted: add reports false and
// the login is not started (fail closed rather than forget).
func (p *pendingRequests) add(id string, now time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.ids) >= p.max {
		for k, exp := range p.ids {
			if !now.Before(exp) {
				delete(p.ids, k)
			}
		}
		if len(p.ids) >= p.max {
			return false
		}
	}
	p.ids[id] = now.Add(authnRequestTTL)
	return true
}

// consume reports whether id is pending and unexpired, and forgets it.
func (p *pendingRequests) consume(id string, now time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	exp, ok := p.ids[id]
	delete(p.ids, id)
	return ok && now.Before(exp)
}
