package codec

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/envelopecodec/envelope/codec/internal/envelope"
	"github.com/envelopecodec/envelope/keyring"
)

// The codec's key caches: sealing keys per (namespace, data subject), and
// the decode cache of unwrapped data keys (an LRU in core.dec).
//
//   - The seal lock is never held across a keyring call: a keyring that
//     hangs (a Vault that accepts and never answers) delays only the
//     encodes that need a new key for that (namespace, subject); encodes
//     with a cached key, and other namespaces and subjects, go on.
//   - Data keys under a data subject's key leave both caches within
//     Options.SubjectKeyMaxAge of being cached, by time: a timer runs
//     while any is cached, even in an idle process.
//   - When the keyring's generation changes (keyring.Rotating; a
//     subject.Keyring adds one per shred it makes) every cached data
//     subject key is dropped before the next encode or decode uses one.
//   - The seal cache holds at most maxSealKeys entries: namespaces and
//     subjects come from callers (serialization contexts, X-Namespace).

// maxSealKeys bounds the sealing keys a codec keeps.
const maxSealKeys = 4096

// sealSlot is the seal cache's entry for one (namespace, subject): the
// current key, and while one caller asks the keyring for a new key, a
// channel the others wait on.
type sealSlot struct {
	key  *sealKey
	wait chan struct{} // non-nil while a keyring call is in flight; closed when it ends
}

// sealKey returns a data key for sealing one payload, counting the use. It
// asks the keyring for a new key when the cached one is used up, too old,
// or wrapped under a key-encryption key the keyring may no longer hold
// active (keyring.Rotating). One caller per (namespace, subject) asks; the
// others wait for it (or their context), without holding the lock.
func (c *core) sealKey(ctx context.Context, namespace, subject string) (*sealKey, error) {
	if len(namespace) > envelope.MaxNamespaceLen {
		// Decode refuses such a payload: sealing it would lose the data.
		return nil, fmt.Errorf("namespace is %d bytes, at most %d allowed", len(namespace), envelope.MaxNamespaceLen)
	}
	c.purgeOnNewGeneration()
	id := sealKeyID{namespace, subject}
	for {
		c.encMu.Lock()
		now := c.opts.now()
		var gen uint64
		if c.rot != nil {
			// Read before NewDataKey: a rotation during the call leaves
			// the new key marked stale, never a stale key marked current.
			gen = c.rot.KeyGeneration()
		}
		s := c.enc[id]
		if s != nil && s.key != nil && now.Before(s.key.expires) && s.key.gen == gen && s.key.uses.Add(1) <= int64(c.opts.DataKeyMaxUses) {
			k := s.key // read under encMu: another caller may replace it
			c.encMu.Unlock()
			return k, nil
		}
		if s != nil && s.wait != nil {
			w := s.wait
			c.encMu.Unlock()
			select {
			case <-w:
				continue
			case <-ctx.Done():
				return nil, fmt.Errorf("waiting for a data key: %w", ctx.Err())
			}
		}
		if s == nil {
			c.makeRoomLocked(now)
			s = &sealSlot{}
			c.enc[id] = s
		}
		w := make(chan struct{})
		s.wait = w
		c.encMu.Unlock()

		k, err := c.fetchSealKey(ctx, namespace, subject, now, gen)

		c.encMu.Lock()
		s.wait = nil
		close(w)
		if c.enc[id] == s {
			s.key = k
			if err != nil {
				delete(c.enc, id)
			}
		}
		c.encMu.Unlock()
		if err != nil {
			return nil, err
		}
		if subject != "" {
			c.armSweep()
		}
		return k, nil
	}
}

// fetchSealKey asks the keyring for a new data key; called without encMu.
func (c *core) fetchSealKey(ctx context.Context, namespace, subject string, now time.Time, gen uint64) (*sealKey, error) {
	dk, err := c.newDataKey(ctx, namespace, subject)
	if err != nil {
		return nil, err
	}
	aead, err := newGCM(dk.Key)
	if err != nil {
		return nil, err
	}
	k := &sealKey{
		aead:    aead,
		aad:     envelope.AADv2(namespace, dk.KeyID, dk.Wrapped),
		md:      envelope.NewMetadataV2(namespace, dk.KeyID, dk.Wrapped),
		expires: now.Add(c.maxAge(dk.KeyID, c.opts.DataKeyMaxAge)),
		gen:     gen,
	}
	k.uses.Store(1)
	return k, nil
}

// makeRoomLocked keeps the seal cache under maxSealKeys entries: expired
// keys go first, then any key no call is waiting for. Called with encMu
// held before adding an entry.
func (c *core) makeRoomLocked(now time.Time) {
	if len(c.enc) < maxSealKeys {
		return
	}
	for id, s := range c.enc {
		if s.wait == nil && (s.key == nil || !now.Before(s.key.expires)) {
			delete(c.enc, id)
		}
	}
	for id, s := range c.enc {
		if len(c.enc) < maxSealKeys {
			return
		}
		if s.wait == nil {
			delete(c.enc, id)
		}
	}
}

// sealKeysCached reports how many sealing data keys c keeps (tests).
func (c *Codec) sealKeysCached() int {
	c.core.encMu.Lock()
	defer c.core.encMu.Unlock()
	n := 0
	for _, s := range c.core.enc {
		if s.key != nil {
			n++
		}
	}
	return n
}

// cacheOpenKey adds an unwrapped data key to the decode cache.
func (c *core) cacheOpenKey(hash uint64, k *openKey, now time.Time) {
	c.dec.Add(hash, k)
	if keyring.IsSubjectKeyID(k.keyID) {
		c.armSweep()
	}
}

// purgeOnNewGeneration drops every cached data subject key when the
// keyring's generation changed since the last check (a shred through a
// subject.Keyring, a rotation). It returns the generation (0 for a
// keyring that does not rotate).
func (c *core) purgeOnNewGeneration() uint64 {
	if c.rot == nil {
		return 0
	}
	g := c.rot.KeyGeneration()
	if c.seenGen.Load() == g {
		return g
	}
	c.seenGen.Store(g)
	c.dropSubjectKeys(c.opts.now(), true)
	return g
}

// generation is the keyring's generation (0 if it does not rotate).
func (c *core) generation() uint64 {
	if c.rot == nil {
		return 0
	}
	return c.rot.KeyGeneration()
}

// watchShreds has a keyring that shreds in-process (keyring.ShredNotifier)
// tell c, so that a shred drops every cached data subject key at once.
func (c *core) watchShreds() {
	if n, ok := c.kr.(keyring.ShredNotifier); ok {
		n.NotifyShred(func() { c.dropSubjectKeys(c.opts.now(), true) })
	}
}

// subjectSweeper is the timer that drops data subject keys from the
// caches when they expire.
type subjectSweeper struct {
	mu    sync.Mutex
	timer *time.Timer
}

// armSweep starts the sweep timer unless it runs: it fires when the
// earliest data subject key cached now expires, SubjectKeyMaxAge at most.
func (c *core) armSweep() {
	c.sweep.mu.Lock()
	defer c.sweep.mu.Unlock()
	if c.sweep.timer == nil {
		c.sweep.timer = time.AfterFunc(c.opts.SubjectKeyMaxAge, c.sweepSubjectKeys)
	}
}

func (c *core) sweepSubjectKeys() {
	next, left := c.dropSubjectKeys(c.opts.now(), false)
	c.sweep.mu.Lock()
	defer c.sweep.mu.Unlock()
	c.sweep.timer = nil
	if left {
		c.sweep.timer = time.AfterFunc(max(next, time.Millisecond), c.sweepSubjectKeys)
	}
}

// dropSubjectKeys drops the data subject keys expired at now (all of them
// if all), and expired sealing keys of any kind. It reports whether
// subject keys remain and how long until the first of them expires.
func (c *core) dropSubjectKeys(now time.Time, all bool) (time.Duration, bool) {
	var next time.Duration
	left := false
	keep := func(expires time.Time) {
		if d := expires.Sub(now); !left || d < next {
			next = d
		}
		left = true
	}
	c.encMu.Lock()
	for id, s := range c.enc {
		if s.key == nil || s.wait != nil {
			continue
		}
		expired := !now.Before(s.key.expires)
		if expired || all && id.subject != "" {
			delete(c.enc, id)
		} else if id.subject != "" {
			keep(s.key.expires)
		}
	}
	c.encMu.Unlock()
	for _, h := range c.dec.Keys() {
		k, ok := c.dec.Peek(h)
		if !ok || !keyring.IsSubjectKeyID(k.keyID) {
			continue
		}
		if all || !now.Before(k.expires) {
			c.dec.Remove(h)
		} else {
			keep(k.expires)
		}
	}
	return next, left
}

// findPending finds the pending key for a wrapped data key among
// missing, by a map once there are many.
func findPending(missing []*pendingKey, by map[uint64][]*pendingKey, hash uint64, h envelope.Header) *pendingKey {
	if by != nil {
		for _, m := range by[hash] {
			if m.h.Same(h) {
				return m
			}
		}
		return nil
	}
	for _, m := range missing {
		if m.hash == hash && m.h.Same(h) {
			return m
		}
	}
	return nil
}

// pendingIndexAt is the number of missing keys from which they are
// indexed by hash: a linear search beyond it would make a request of many
// distinct keys quadratic.
const pendingIndexAt = 16

// indexPending records m (just appended to missing) in the index, which
// it creates when missing reaches pendingIndexAt.
func indexPending(missing []*pendingKey, by map[uint64][]*pendingKey, m *pendingKey) map[uint64][]*pendingKey {
	if by == nil {
		if len(missing) < pendingIndexAt {
			return nil
		}
		by = make(map[uint64][]*pendingKey, 2*len(missing))
		for _, p := range missing {
			by[p.hash] = append(by[p.hash], p)
		}
		return by
	}
	by[m.hash] = append(by[m.hash], m)
	return by
}

// decodeKeysCached reports how many unwrapped data keys c keeps, and how
// many of them are under a data subject's key (tests).
func (c *Codec) decodeKeysCached() (all, subject int) {
	for _, h := range c.core.dec.Keys() {
		if k, ok := c.core.dec.Peek(h); ok {
			all++
			if keyring.IsSubjectKeyID(k.keyID) {
				subject++
			}
		}
	}
	return all, subject
}
