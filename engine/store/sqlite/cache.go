package sqlite

import (
	"sync"

	"github.com/jitai/jitai/engine/trial"
)

// stateCache keeps decoded participants and states, written through on every
// successful commit. It is sound because this process is the only writer of
// the database file (Open takes an exclusive lock on it). Cached values are
// shared and never modified: the engine builds new states instead of
// changing old ones, and AppendEvents hands apply a freshly decoded copy.
type stateCache struct {
	mu  sync.RWMutex
	m   map[string]cached
	max int
}

type cached struct {
	p  *trial.Participant
	st *trial.State
}

func newStateCache(max int) *stateCache {
	return &stateCache{m: make(map[string]cached), max: max}
}

func cacheKey(study, participant string) string { return study + "\x00" + participant }

func (c *stateCache) get(study, participant string) (cached, bool) {
	if c.max <= 0 {
		return cached{}, false
	}
	c.mu.RLock()
	e, ok := c.m[cacheKey(study, participant)]
	c.mu.RUnlock()
	return e, ok
}

// put stores a state unless a newer version is already cached (commits of
// one participant may finish in either order).
func (c *stateCache) put(study, participant string, p *trial.Participant, st *trial.State) {
	if c.max <= 0 || p == nil || st == nil {
		return
	}
	k := cacheKey(study, participant)
	c.mu.Lock()
	defer c.mu.Unlock()
	if old, ok := c.m[k]; ok && old.st.Version >= st.Version {
		return
	}
	if _, ok := c.m[k]; !ok && len(c.m) >= c.max {
		for victim := range c.m { // map order is random: a random eviction
			delete(c.m, victim)
			break
		}
	}
	c.m[k] = cached{p: p, st: st}
}

// putState replaces only the state of a cached participant.
func (c *stateCache) putState(study, participant string, st *trial.State) {
	if e, ok := c.get(study, participant); ok {
		c.put(study, participant, e.p, st)
	}
}
