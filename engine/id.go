package engine

import (
	"crypto/rand"
	"encoding/binary"
	"io"
	"sync"
	"time"
)

const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// idSource makes ULIDs: 48 bits of milliseconds then 80 random bits, in
// Crockford base32, so decision ids sort by time and never collide.
type idSource struct {
	mu  sync.Mutex
	r   io.Reader
	buf [4096]byte
	off int
}

// newIDSource reads randomness from r (crypto/rand when nil).
func newIDSource(r io.Reader) *idSource {
	if r == nil {
		r = rand.Reader
	}
	s := &idSource{r: r}
	s.off = len(s.buf)
	return s
}

func (s *idSource) random(dst []byte) {
	s.mu.Lock()
	if s.off+len(dst) > len(s.buf) {
		if _, err := io.ReadFull(s.r, s.buf[:]); err != nil {
			panic("reading randomness for decision ids: " + err.Error())
		}
		s.off = 0
	}
	copy(dst, s.buf[s.off:])
	s.off += len(dst)
	s.mu.Unlock()
}

// next returns a new id whose time part is t.
func (s *idSource) next(t time.Time) string {
	var b [16]byte
	ms := uint64(t.UnixMilli())
	binary.BigEndian.PutUint16(b[0:2], uint16(ms>>32))
	binary.BigEndian.PutUint32(b[2:6], uint32(ms))
	s.random(b[6:])
	// 128 bits -> 26 base32 characters (the first carries 3 bits).
	var out [26]byte
	hi := binary.BigEndian.Uint64(b[0:8])
	lo := binary.BigEndian.Uint64(b[8:16])
	for i := 25; i >= 0; i-- {
		out[i] = crockford[lo&31]
		lo = lo>>5 | hi<<59
		hi >>= 5
	}
	return string(out[:])
}
