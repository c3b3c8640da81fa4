package sqlite

import (
	"context"
	"database/sql"
	"hash/maphash"
	"math/bits"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// idemFilter is a negative cache of idempotency keys: a Bloom filter of
// every (study, participant, key) in the idempotency table. A decision with
// a fresh key (nearly all of them) then needs no idempotency query: a key
// the filter has never seen was certainly never committed.
//
// It is sound because this process is the only writer of the database file
// (Open takes an exclusive lock): the writer adds a key inside the
// transaction that inserts it, so before that transaction commits, and a
// loader adds the keys already in the file when the store opens. Until the
// loader has finished, every lookup goes to the database. Keys that are
// deleted (erasure) or rolled back stay in the filter; they only cost a
// query. The filter grows by adding levels of twice the size, so that its
// false-positive rate stays low however many keys the file holds.
type idemFilter struct {
	seed   maphash.Seed
	mu     sync.Mutex // serialises adds: the writer and the loader
	levels atomic.Pointer[[]*bloomLevel]
	ready  atomic.Bool
	// skipped counts the lookups the filter answered.
	skipped atomic.Uint64
	// stop ends the loader; loaded is closed when it has returned.
	stop   context.CancelFunc
	loaded chan struct{}
}

// bloomLevel is a blocked Bloom filter: each key sets bloomProbes bits in
// one 512-bit block (a cache line), so a lookup reads one line per level.
type bloomLevel struct {
	words    []atomic.Uint64
	blocks   uint64
	n, limit int
}

const (
	bloomFirstKeys  = 1 << 16 // keys in the first level
	bloomBitsPerKey = 16      // about 0.1% false positives per level
	bloomProbes     = 6
)

func newBloomLevel(keys int) *bloomLevel {
	blocks := uint64(keys * bloomBitsPerKey / 512)
	return &bloomLevel{words: make([]atomic.Uint64, blocks*8), blocks: blocks, limit: keys}
}

func newIdemFilter() *idemFilter {
	f := &idemFilter{seed: maphash.MakeSeed(), loaded: make(chan struct{})}
	levels := []*bloomLevel{newBloomLevel(bloomFirstKeys)}
	f.levels.Store(&levels)
	return f
}

// hash hashes one key; the parts are ids, which never hold a NUL.
func (f *idemFilter) hash(study, participant, key []byte) uint64 {
	var h maphash.Hash
	h.SetSeed(f.seed)
	h.Write(study)
	h.WriteByte(0)
	h.Write(participant)
	h.WriteByte(0)
	h.Write(key)
	return h.Sum64()
}

func (f *idemFilter) hashString(study, participant, key string) uint64 {
	var h maphash.Hash
	h.SetSeed(f.seed)
	h.WriteString(study)
	h.WriteByte(0)
	h.WriteString(participant)
	h.WriteByte(0)
	h.WriteString(key)
	return h.Sum64()
}

// block returns the 512-bit block of hash h and the bits to set or test
// in it: bloomProbes positions of 9 bits each (a word, a bit), taken from a
// remix of h, as the block index used h's high bits.
func (l *bloomLevel) block(h uint64) ([]atomic.Uint64, uint64) {
	b, _ := bits.Mul64(h, l.blocks) // the high word: a block in [0, blocks)
	g := h ^ h>>33
	g *= 0xff51afd7ed558ccd
	g ^= g >> 33
	return l.words[b*8 : b*8+8 : b*8+8], g
}

func (l *bloomLevel) add(h uint64) {
	words, g := l.block(h)
	for range bloomProbes {
		words[g&7].Or(1 << (g >> 3 & 63))
		g >>= 9
	}
}

func (l *bloomLevel) has(h uint64) bool {
	words, g := l.block(h)
	for range bloomProbes {
		if words[g&7].Load()&(1<<(g>>3&63)) == 0 {
			return false
		}
		g >>= 9
	}
	return true
}

// add records a key (f may be nil: no filter).
func (f *idemFilter) add(h uint64) {
	if f == nil {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	levels := *f.levels.Load()
	last := levels[len(levels)-1]
	if last.n >= last.limit {
		last = newBloomLevel(2 * last.limit)
		grown := append(levels[:len(levels):len(levels)], last)
		f.levels.Store(&grown)
	}
	last.add(h)
	last.n++
}

// mayContain reports whether the key may have been committed: false only
// when the filter is loaded and has never seen the key.
func (f *idemFilter) mayContain(study, participant, key string) bool {
	if f == nil || !f.ready.Load() {
		return true
	}
	h := f.hashString(study, participant, key)
	for _, l := range *f.levels.Load() {
		if l.has(h) {
			return true
		}
	}
	f.skipped.Add(1)
	return false
}

// load adds the keys already stored and then makes the filter answer. It
// runs on its own goroutine; on an error the filter stays unready (every
// lookup queries) and the error is logged.
func (f *idemFilter) load(ctx context.Context, db *sql.DB, log *zap.Logger) {
	defer close(f.loaded)
	start := time.Now()
	n, err := f.loadRows(ctx, db)
	if err != nil {
		if ctx.Err() == nil {
			log.Warn("sqlite store: loading idempotency keys failed; every decision with a key queries them", zap.Error(err))
		}
		return
	}
	f.ready.Store(true)
	log.Debug("sqlite store: idempotency keys loaded", zap.Int("keys", n), zap.Duration("took", time.Since(start)))
}

func (f *idemFilter) loadRows(ctx context.Context, db *sql.DB) (int, error) {
	rows, err := db.QueryContext(ctx, `SELECT study, participant, key FROM idempotency`)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	n := 0
	for rows.Next() {
		var study, participant, key sql.RawBytes
		if err := rows.Scan(&study, &participant, &key); err != nil {
			return n, err
		}
		f.add(f.hash(study, participant, key))
		n++
	}
	return n, rows.Err()
}

// close stops the loader and waits for it.
func (f *idemFilter) close() {
	if f == nil || f.stop == nil {
		return
	}
	f.stop()
	<-f.loaded
}
