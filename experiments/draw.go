// Package experiments holds the experiment layer: reproducible randomisation
// draws, probability clipping and between-person assignment by permuted blocks.
package experiments

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"hash"
	"math"
	"sync"
)

// Drawer derives reproducible uniform draws from a study seed. It is safe for
// concurrent use.
type Drawer struct {
	pool sync.Pool
}

// NewDrawer returns a Drawer keyed by the study seed.
func NewDrawer(seed string) *Drawer {
	key := []byte(seed)
	return &Drawer{pool: sync.Pool{New: func() any { return hmac.New(sha256.New, key) }}}
}

// Uniform returns u in [0, 1) from HMAC-SHA256(seed, participant, decision
// id, factor). Each part is length-prefixed, so no two different key tuples
// share an input, and different factors give independent draws.
func (d *Drawer) Uniform(participant, decisionID, factor string) float64 {
	h := d.pool.Get().(hash.Hash)
	h.Reset()
	var buf [96]byte
	msg := buf[:0]
	for _, s := range [...]string{participant, decisionID, factor} {
		msg = binary.BigEndian.AppendUint32(msg, uint32(len(s)))
		msg = append(msg, s...)
	}
	h.Write(msg)
	var sum [sha256.Size]byte
	out := h.Sum(sum[:0])
	d.pool.Put(h)
	// 53 random bits give every representable float64 in [0,1) of the form k/2^53.
	return float64(binary.BigEndian.Uint64(out[:8])>>11) / (1 << 53)
}

// Clip limits p to [lo, hi].
func Clip(p, lo, hi float64) float64 {
	if math.IsNaN(p) {
		return lo
	}
	return math.Min(hi, math.Max(lo, p))
}

// Level returns 1 when the draw u falls below the probability p of level 1.
func Level(u, p float64) int {
	if u < p {
		return 1
	}
	return 0
}

// Weighted picks index i with probability w[i]/sum(w) using the draw u, and
// returns the index and its probability. Non-positive weights are never picked.
// It returns -1 when no weight is positive.
func Weighted(u float64, w []float64) (int, float64) {
	var total float64
	for _, x := range w {
		if x > 0 {
			total += x
		}
	}
	if total <= 0 {
		return -1, 0
	}
	target := u * total
	var acc float64
	last := -1
	for i, x := range w {
		if x <= 0 {
			continue
		}
		acc += x
		last = i
		if target < acc {
			return i, x / total
		}
	}
	return last, w[last] / total // rounding: u*total == total
}
