package simulate

import (
	"bufio"
	"bytes"
	"container/heap"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// A spill holds a run's decision records on disk, so that the run's memory
// does not grow with its decisions (Options.SpillDir). Each participant's
// records arrive in (time, id) order (committing one participant's
// decisions in order is one goroutine's work) and are framed into a buffer
// of their own, which is appended to the one spill file as a chunk when it
// fills and when the participant's timeline ends. writeTo merges the
// participants' chunk lists by (time, id), which is the order of
// memstore.WriteJSONL, and writes each record's JSON as it was stored.
//
// A frame is the record's time (Unix seconds, int64, and nanoseconds,
// uint32), the length of its decision id (uint16) and of its JSON (uint32),
// the id and the JSON, little-endian.
type spill struct {
	mu   sync.Mutex
	f    *os.File
	off  int64
	err  error
	recs atomic.Int64

	people []*spillPerson
}

// spillChunkSize is the size at which a participant's buffer is appended.
const spillChunkSize = 1 << 20

// spillPerson is one participant's part of a spill. Only the participant's
// goroutine touches it before the merge.
type spillPerson struct {
	s      *spill
	chunks []chunk
	buf    bytes.Buffer
	// Records with the latest time are held back until a later time shows
	// that none will join them, then framed in id order.
	held     []heldRecord
	heldTime time.Time
	err      error
}

type chunk struct{ off, n int64 }

type heldRecord struct {
	id  string
	doc []byte
}

func newSpill(dir string, participants int) (*spill, error) {
	f, err := os.CreateTemp(dir, ".decisions-*.spill")
	if err != nil {
		return nil, fmt.Errorf("simulate: creating the decision spill file: %w", err)
	}
	s := &spill{f: f, people: make([]*spillPerson, participants)}
	for i := range s.people {
		s.people[i] = &spillPerson{s: s}
	}
	return s, nil
}

// close removes the spill file.
func (s *spill) close() error {
	err := s.f.Close()
	if rerr := os.Remove(s.f.Name()); err == nil {
		err = rerr
	}
	return err
}

// add takes the participant's next committed record.
func (p *spillPerson) add(at time.Time, id string, doc []byte) {
	if p.err != nil {
		return
	}
	if len(id) > math.MaxUint16 || uint64(len(doc)) > math.MaxUint32 {
		p.err = fmt.Errorf("simulate: decision %.40s is too large to spill", id)
		return
	}
	if len(p.held) > 0 {
		switch c := at.Compare(p.heldTime); {
		case c < 0:
			p.err = fmt.Errorf("simulate: decision %s at %s committed after one at %s", id, at.Format(time.RFC3339Nano), p.heldTime.Format(time.RFC3339Nano))
			return
		case c > 0:
			p.frameHeld()
		}
	}
	p.heldTime = at
	p.held = append(p.held, heldRecord{id: id, doc: doc})
}

func (p *spillPerson) frameHeld() {
	slices.SortFunc(p.held, func(a, b heldRecord) int { return strings.Compare(a.id, b.id) })
	sec, nsec := p.heldTime.Unix(), p.heldTime.Nanosecond()
	for _, h := range p.held {
		var hdr [8 + 4 + 2 + 4]byte
		binary.LittleEndian.PutUint64(hdr[0:], uint64(sec))
		binary.LittleEndian.PutUint32(hdr[8:], uint32(nsec))
		binary.LittleEndian.PutUint16(hdr[12:], uint16(len(h.id)))
		binary.LittleEndian.PutUint32(hdr[14:], uint32(len(h.doc)))
		p.buf.Write(hdr[:])
		p.buf.WriteString(h.id)
		p.buf.Write(h.doc)
	}
	p.s.recs.Add(int64(len(p.held)))
	clear(p.held)
	p.held = p.held[:0]
	if p.buf.Len() >= spillChunkSize {
		p.flush()
	}
}

// flush appends the buffer to the spill file as a chunk.
func (p *spillPerson) flush() {
	if p.buf.Len() == 0 || p.err != nil {
		return
	}
	s := p.s
	s.mu.Lock()
	off := s.off
	_, err := s.f.Write(p.buf.Bytes())
	s.off += int64(p.buf.Len())
	s.mu.Unlock()
	if err != nil {
		p.err = fmt.Errorf("simulate: writing the decision spill file: %w", err)
		s.fail(p.err)
		return
	}
	p.chunks = append(p.chunks, chunk{off, int64(p.buf.Len())})
	p.buf.Reset()
}

// fail records the spill's first failure, which writeTo reports.
func (s *spill) fail(err error) {
	s.mu.Lock()
	if s.err == nil {
		s.err = err
	}
	s.mu.Unlock()
}

// finish writes out what the participant still holds; their timeline has
// ended.
func (p *spillPerson) finish() error {
	if len(p.held) > 0 {
		p.frameHeld()
	}
	p.flush()
	p.buf = bytes.Buffer{}
	p.held = nil
	return p.err
}

// spillReader reads one participant's frames back.
type spillReader struct {
	r    *bufio.Reader
	sec  int64
	nsec uint32
	id   []byte
	doc  []byte
}

func (r *spillReader) next() (bool, error) {
	var hdr [8 + 4 + 2 + 4]byte
	if _, err := io.ReadFull(r.r, hdr[:]); err != nil {
		if err == io.EOF {
			return false, nil
		}
		return false, err
	}
	r.sec = int64(binary.LittleEndian.Uint64(hdr[0:]))
	r.nsec = binary.LittleEndian.Uint32(hdr[8:])
	r.id = resize(r.id, int(binary.LittleEndian.Uint16(hdr[12:])))
	r.doc = resize(r.doc, int(binary.LittleEndian.Uint32(hdr[14:])))
	if _, err := io.ReadFull(r.r, r.id); err != nil {
		return false, truncated(err)
	}
	if _, err := io.ReadFull(r.r, r.doc); err != nil {
		return false, truncated(err)
	}
	return true, nil
}

// resize returns b with length n, reusing its storage when it can.
func resize(b []byte, n int) []byte {
	if cap(b) < n {
		return make([]byte, n, max(n, 2*cap(b)))
	}
	return b[:n]
}

func truncated(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

type readers []*spillReader

func (h readers) Len() int { return len(h) }
func (h readers) Less(i, j int) bool {
	a, b := h[i], h[j]
	if a.sec != b.sec {
		return a.sec < b.sec
	}
	if a.nsec != b.nsec {
		return a.nsec < b.nsec
	}
	return bytes.Compare(a.id, b.id) < 0
}
func (h readers) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *readers) Push(x any)   { *h = append(*h, x.(*spillReader)) }
func (h *readers) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// writeTo writes every spilled record to w, one JSON document a line in
// (time, id) order, and checks that it wrote as many as were spilled.
func (s *spill) writeTo(w io.Writer) error {
	s.mu.Lock()
	err := s.err
	s.mu.Unlock()
	want := s.recs.Load()
	if err != nil {
		return err
	}
	// Read buffers of 16 MB in all, between 4 and 64 kB each.
	size := min(64<<10, max(4<<10, (16<<20)/max(1, len(s.people))))
	h := make(readers, 0, len(s.people))
	for _, p := range s.people {
		if p.err != nil {
			return p.err
		}
		if len(p.held) > 0 || p.buf.Len() > 0 {
			return errors.New("simulate: a participant's records were not all spilled")
		}
		parts := make([]io.Reader, len(p.chunks))
		for i, c := range p.chunks {
			parts[i] = io.NewSectionReader(s.f, c.off, c.n)
		}
		r := &spillReader{r: bufio.NewReaderSize(io.MultiReader(parts...), size)}
		ok, err := r.next()
		if err != nil {
			return fmt.Errorf("simulate: reading the decision spill file: %w", err)
		}
		if ok {
			h = append(h, r)
		}
	}
	heap.Init(&h)
	var n int64
	for len(h) > 0 {
		r := h[0]
		if _, err := w.Write(r.doc); err != nil {
			return err
		}
		if _, err := w.Write([]byte{'\n'}); err != nil {
			return err
		}
		n++
		ok, err := r.next()
		if err != nil {
			return fmt.Errorf("simulate: reading the decision spill file: %w", err)
		}
		if ok {
			heap.Fix(&h, 0)
		} else {
			heap.Pop(&h)
		}
	}
	if n != want {
		return fmt.Errorf("simulate: %d decision records read back from the spill file, %d were spilled", n, want)
	}
	return nil
}
