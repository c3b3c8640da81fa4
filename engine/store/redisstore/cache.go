package redisstore

import (
	"hash/maphash"
	"sync"

	"github.com/jitai/jitai/engine/trial"
)

// decodeCache keeps decoded participants and states so that a snapshot
// whose documents have not changed skips JSON decoding (the larger part of
// a snapshot's cost). Redis stays the source of truth: every snapshot reads
// the documents, and a cached value is used only if the hash of the
// document read (and, for states, the version) matches the one cached.
// Other replicas' writes therefore simply miss. Cached values are shared and
// never modified: the engine builds new states instead of changing old ones,
// and AppendEvents hands apply a freshly decoded copy.
type decodeCache struct {
	mu   sync.RWMutex
	m    map[string]cachedDocs
	max  int
	seed maphash.Seed
}

type cachedDocs struct {
	pHash   uint64
	p       *trial.Participant
	sHash   uint64
	version int64
	st      *trial.State
}

func newDecodeCache(max int) *decodeCache {
	return &decodeCache{m: make(map[string]cachedDocs), max: max, seed: maphash.MakeSeed()}
}

func (c *decodeCache) hash(doc string) uint64 { return maphash.String(c.seed, doc) }

// get returns the cached participant for pdoc and state for (sdoc,
// version), each nil on a miss.
func (c *decodeCache) get(key, pdoc, sdoc string, version int64) (*trial.Participant, *trial.State) {
	if c.max <= 0 {
		return nil, nil
	}
	c.mu.RLock()
	e, ok := c.m[key]
	c.mu.RUnlock()
	if !ok {
		return nil, nil
	}
	var (
		p  *trial.Participant
		st *trial.State
	)
	if e.p != nil && e.pHash == c.hash(pdoc) {
		p = e.p
	}
	if e.st != nil && e.version == version && e.sHash == c.hash(sdoc) {
		st = e.st
	}
	return p, st
}

// put caches a participant (if p is not nil) and a state (if st is not
// nil) decoded from, or encoded to, the given documents.
func (c *decodeCache) put(key, pdoc string, p *trial.Participant, sdoc string, st *trial.State) {
	if c.max <= 0 {
		return
	}
	var ph, sh uint64
	if p != nil {
		ph = c.hash(pdoc)
	}
	if st != nil {
		sh = c.hash(sdoc)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[key]
	if !ok && len(c.m) >= c.max {
		for victim := range c.m { // map order is random: a random eviction
			delete(c.m, victim)
			break
		}
	}
	if p != nil {
		e.p, e.pHash = p, ph
	}
	if st != nil {
		e.st, e.sHash, e.version = st, sh, st.Version
	}
	c.m[key] = e
}
