package codecserver

import (
	"sync"
	"time"
)

// tokenCache remembers verified tokens by the SHA-256 of the token, so
// that a client sending the same token on every request (the Web UI, the
// CLI) costs one signature check, not one per request. An entry is used
// only inside the clock bounds its checks passed for and only while the
// key set is the one it was verified against. It holds at most max
// entries.
type tokenCache struct {
	mu  sync.RWMutex
	m   map[[32]byte]cachedToken
	max int
}

type cachedToken struct {
	id                 *Identity
	notBefore, expires time.Time // valid for notBefore <= now < expires
	gen                uint64    // key-set generation it was verified against
}

func newTokenCache(max int) *tokenCache {
	return &tokenCache{m: make(map[[32]byte]cachedToken), max: max}
}

// get returns the identity of a cached token still valid at now under key
// generation gen.
func (c *tokenCache) get(key [32]byte, now time.Time, gen uint64) (*Identity, bool) {
	c.mu.RLock()
	e, ok := c.m[key]
	c.mu.RUnlock()
	if !ok || e.gen != gen || now.Before(e.notBefore) || !now.Before(e.expires) {
		return nil, false
	}
	return e.id, true
}

// put stores a verified token. When full it first drops entries expired at
// now (the verifier's clock) or of an older key generation, then, if still
// full, one arbitrary entry.
func (c *tokenCache) put(key [32]byte, e cachedToken, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.m[key]; !ok && len(c.m) >= c.max {
		for k, old := range c.m {
			if !now.Before(old.expires) || old.gen != e.gen {
				delete(c.m, k)
			}
		}
		for k := range c.m {
			if len(c.m) < c.max {
				break
			}
			delete(c.m, k)
		}
	}
	c.m[key] = e
}

// len returns the number of cached tokens.
func (c *tokenCache) len() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.m)
}

// clear drops every entry (the key set changed).
func (c *tokenCache) clear() {
	c.mu.Lock()
	clear(c.m)
	c.mu.Unlock()
}
