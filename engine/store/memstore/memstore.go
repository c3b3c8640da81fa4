// Package memstore is an in-memory trial.Store (and trial.Eraser) for
// simulations and tests. Nothing survives the process.
//
// Participants are spread over shards by a hash of (study, participant id);
// each shard has its own lock, so decisions for different participants
// rarely contend. Everything one decision touches (enrolment, state, events,
// idempotency entries and the participant's records) lives in one shard, so
// a commit is atomic under one lock. A second set of shards indexes records
// by decision id for Decision. The trial clock's schedule, outbox and
// delivery logs (clock.go) are under one more lock, which a commit with a
// delivery takes inside its shard's (never the other way round).
//
// Records are kept as their JSON encoding, which the garbage collector
// need not scan: a simulation that keeps its records holds hundreds of
// thousands of them. The few most recent records of each participant are
// also kept decoded, because engagement events look them up. Decision and ListDecisions return records
// of their own; WriteJSONL copies the stored encodings.
//
// By default the store keeps every record. A simulation that streams its
// records elsewhere can instead ask (NewWithOptions) to be told of each
// record as it is committed (OnCommit) and to keep only a participant's
// recent records (Retain), so that its memory does not grow with the
// number of decisions.
//
// States and participants handed to the store are owned by it afterwards,
// and those it returns are shared: callers must not modify them. The engine
// already works that way (it builds a new state rather than changing the one
// it read). AppendEvents hands apply a copy of the state (see CloneState),
// so a failing apply changes nothing.
package memstore

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/maphash"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jitai/jitai/engine/trial"
)

// shardCount is the number of participant shards (and of id-index shards).
const shardCount = 256

// errClosed is returned by every operation after Close.
var errClosed = fmt.Errorf("memory store is closed: %w", trial.ErrUnavailable)

// Store is the in-memory trial.Store. It is safe for concurrent use.
type Store struct {
	seed   maphash.Seed
	shards [shardCount]shard
	index  [shardCount]idShard
	closed atomic.Bool
	opts   Options

	// enrolMu serialises enrolments: they allocate per-stratum sequence
	// numbers and append to the study's enrolment order.
	enrolMu sync.Mutex
	seqs    map[string]int64            // study \x00 stratum -> next seq
	order   map[string][]*participantID // study -> participants in enrolment order

	pinMu sync.Mutex
	pins  map[string][]byte // study \x00 name -> pinned value

	clock clockState
}

type participantID struct {
	study, id string
	gone      bool // erased
}

type key struct{ study, id string }

type shard struct {
	mu     sync.Mutex
	people map[key]*person
}

type idShard struct {
	mu   sync.RWMutex
	recs map[key]*stored // (study, decision id)
}

// recentDecoded is how many of a participant's latest records stay decoded.
const recentDecoded = 8

// stored is one record: its JSON and, while it is recent, the record.
type stored struct {
	time time.Time
	id   string
	doc  []byte
	rec  atomic.Pointer[trial.Record]
}

func (r *stored) record() (*trial.Record, error) {
	if rec := r.rec.Load(); rec != nil {
		return rec, nil
	}
	var rec trial.Record
	if err := json.Unmarshal(r.doc, &rec); err != nil {
		return nil, fmt.Errorf("decoding decision record %s: %w", r.id, err)
	}
	return &rec, nil
}

func cmpStored(a, b *stored) int { return cmpTimeID(a.time, a.id, b.time, b.id) }

// person is everything stored under one (study, participant id). Records
// and idempotency entries may exist without an enrolment (a commit without
// state does not check it, as the SQLite store does not; and anonymised
// records live under their surrogate id).
type person struct {
	p        *trial.Participant
	ref      *participantID
	st       *trial.State
	events   []trial.Event // in (time, id) order
	eventIDs map[string]struct{}
	idem     map[string]*trial.IdempotencyEntry
	records  []*stored // in (time, id) order
	devices  map[string]*trial.Device
}

var (
	_ trial.Store  = (*Store)(nil)
	_ trial.Eraser = (*Store)(nil)
	_ trial.Clock  = (*Store)(nil)
)

// Options change what the store keeps. The zero value keeps everything,
// as New does.
type Options struct {
	// OnCommit, if set, is called with each committed record and its JSON
	// encoding (what WriteJSONL writes for it and Decision decodes), after
	// the commit, outside the store's locks, on the committing goroutine.
	// Neither may be modified.
	OnCommit func(rec *trial.Record, doc []byte)
	// Retain, if positive, bounds the records kept: on each commit, the
	// participant's records more than Retain older than their latest record
	// are dropped, and Decision, ListDecisions and WriteJSONL no longer see
	// them; so are their events more than Retain older than their latest
	// event, which Events no longer lists and AppendEvents no longer knows
	// (an event sent again after that is stored again). Zero keeps
	// everything. States and idempotency entries are kept whatever Retain.
	Retain time.Duration
}

// New returns an empty store that keeps everything.
func New() *Store { return NewWithOptions(Options{}) }

// NewWithOptions returns an empty store with the given options.
func NewWithOptions(o Options) *Store {
	s := &Store{seed: maphash.MakeSeed(), seqs: map[string]int64{}, order: map[string][]*participantID{}, opts: o, clock: newClockState()}
	for i := range s.shards {
		s.shards[i].people = map[key]*person{}
		s.index[i].recs = map[key]*stored{}
	}
	return s
}

func (s *Store) hash(study, id string) uint64 {
	var h maphash.Hash
	h.SetSeed(s.seed)
	h.WriteString(study)
	h.WriteByte(0)
	h.WriteString(id)
	return h.Sum64()
}

func (s *Store) shard(study, participant string) *shard {
	return &s.shards[s.hash(study, participant)%shardCount]
}

func (s *Store) idShard(study, id string) *idShard {
	return &s.index[s.hash(study, id)%shardCount]
}

// Ping reports whether the store is open.
func (s *Store) Ping(context.Context) error {
	if s.closed.Load() {
		return errClosed
	}
	return nil
}

// Close marks the store closed; later operations fail with ErrUnavailable.
func (s *Store) Close() error {
	s.closed.Store(true)
	return nil
}

func (s *Store) check(ctx context.Context) error {
	if s.closed.Load() {
		return errClosed
	}
	return ctx.Err()
}

// Enroll creates the participant unless it exists (trial.Participants).
func (s *Store) Enroll(ctx context.Context, p *trial.Participant, assign func(seq int64) error) (*trial.Participant, bool, error) {
	if err := s.check(ctx); err != nil {
		return nil, false, err
	}
	s.enrolMu.Lock()
	defer s.enrolMu.Unlock()
	sh := s.shard(p.Study, p.ID)
	k := key{p.Study, p.ID}
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if ps := sh.people[k]; ps != nil && ps.p != nil {
		return ps.p, false, nil
	}
	sk := p.Study + "\x00" + p.Stratum
	seq := s.seqs[sk]
	if err := assign(seq); err != nil {
		return nil, false, fmt.Errorf("assigning participant in study %s: %w", p.Study, err)
	}
	stored := cloneParticipant(p)
	stored.Seq = seq
	s.seqs[sk] = seq + 1
	ps := sh.people[k]
	if ps == nil {
		ps = &person{}
		sh.people[k] = ps
	}
	ps.p = stored
	ps.st = &trial.State{}
	ps.ref = &participantID{study: p.Study, id: p.ID}
	s.order[p.Study] = append(s.order[p.Study], ps.ref)
	return stored, true, nil
}

// Participant returns one participant or ErrNotFound.
func (s *Store) Participant(ctx context.Context, study, id string) (*trial.Participant, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	sh := s.shard(study, id)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if ps := sh.people[key{study, id}]; ps != nil && ps.p != nil {
		return ps.p, nil
	}
	return nil, fmt.Errorf("participant %s in study %s: %w", id, study, trial.ErrNotFound)
}

// Participants lists a study's participants in enrolment order.
func (s *Store) Participants(ctx context.Context, study string) ([]*trial.Participant, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	s.enrolMu.Lock()
	refs := slices.Clone(s.order[study])
	s.enrolMu.Unlock()
	out := make([]*trial.Participant, 0, len(refs))
	for _, r := range refs {
		if p, err := s.Participant(ctx, r.study, r.id); err == nil {
			out = append(out, p)
		}
	}
	return out, nil
}

// Snapshot reads the participant, their state and the entry for idemKey.
func (s *Store) Snapshot(ctx context.Context, study, participant, idemKey string) (*trial.Snapshot, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	sh := s.shard(study, participant)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	ps := sh.people[key{study, participant}]
	if ps == nil || ps.p == nil {
		return nil, fmt.Errorf("participant %s in study %s: %w", participant, study, trial.ErrNotFound)
	}
	snap := &trial.Snapshot{Participant: ps.p, State: ps.st}
	if idemKey != "" {
		snap.Replay = ps.idem[idemKey]
	}
	return snap, nil
}

// AppendEvents stores the new events and lets apply update a copy of the
// state, which replaces the stored one only if apply succeeds.
func (s *Store) AppendEvents(ctx context.Context, study, participant string, events []trial.Event, apply func(st *trial.State, fresh []trial.Event) error) (int, error) {
	if err := s.check(ctx); err != nil {
		return 0, err
	}
	sh := s.shard(study, participant)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	ps := sh.people[key{study, participant}]
	if ps == nil || ps.p == nil {
		return 0, fmt.Errorf("participant %s in study %s: %w", participant, study, trial.ErrNotFound)
	}
	var fresh []trial.Event
	seen := map[string]bool{}
	for _, ev := range events {
		if _, dup := ps.eventIDs[ev.ID]; dup || seen[ev.ID] {
			continue
		}
		seen[ev.ID] = true
		fresh = append(fresh, ev)
	}
	if len(fresh) == 0 {
		return 0, nil
	}
	st := CloneState(ps.st)
	if err := apply(st, fresh); err != nil {
		return 0, err
	}
	st.Version = ps.st.Version + 1
	if ps.eventIDs == nil {
		ps.eventIDs = make(map[string]struct{}, len(fresh))
	}
	for _, ev := range fresh {
		ev.Time = ev.Time.UTC()
		ev.ReceivedAt = ev.ReceivedAt.UTC()
		ps.eventIDs[ev.ID] = struct{}{}
		ps.events = insertSorted(ps.events, ev, func(a, b trial.Event) int { return cmpTimeID(a.Time, a.ID, b.Time, b.ID) })
	}
	if s.opts.Retain > 0 {
		cut := ps.events[len(ps.events)-1].Time.Add(-s.opts.Retain)
		k := 0
		for k < len(ps.events) && ps.events[k].Time.Before(cut) {
			delete(ps.eventIDs, ps.events[k].ID)
			k++
		}
		clear(ps.events[:k])
		ps.events = ps.events[k:]
	}
	ps.st = st
	return len(fresh), nil
}

// Events lists a participant's events in (time, id) order.
func (s *Store) Events(ctx context.Context, study, participant string) ([]trial.Event, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	sh := s.shard(study, participant)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	ps := sh.people[key{study, participant}]
	if ps == nil {
		return nil, nil
	}
	return slices.Clone(ps.events), nil
}

// CommitDecision stores the record, the new state (version-checked), the
// idempotency entry and the delivery log (queued in the outbox if it is
// queued), all or nothing.
func (s *Store) CommitDecision(ctx context.Context, c *trial.Commit) error {
	if err := c.Validate(); err != nil {
		return err
	}
	if err := s.check(ctx); err != nil {
		return err
	}
	rec := c.Record
	doc, err := json.Marshal(rec)
	if err != nil {
		return fmt.Errorf("encoding decision record in study %s: %w", rec.Study, err)
	}
	sr := &stored{time: rec.Time, id: rec.ID, doc: doc}
	sr.rec.Store(rec)
	if err := s.commit(c, sr); err != nil {
		return err
	}
	if s.opts.OnCommit != nil {
		s.opts.OnCommit(rec, doc)
	}
	return nil
}

// commit stores what CommitDecision was given, under the shard's lock.
func (s *Store) commit(c *trial.Commit, sr *stored) error {
	rec := c.Record
	sh := s.shard(rec.Study, rec.Participant)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	k := key{rec.Study, rec.Participant}
	ps := sh.people[k]
	if c.Idempotency != nil && ps != nil && ps.idem[c.Idempotency.Key] != nil {
		return fmt.Errorf("committing decision in study %s: %w", rec.Study, trial.ErrIdempotencyReplay)
	}
	if c.State != nil {
		if ps == nil || ps.p == nil {
			return fmt.Errorf("committing decision in study %s: participant %s: %w", rec.Study, rec.Participant, trial.ErrNotFound)
		}
		if ps.st.Version != c.State.Version-1 {
			return fmt.Errorf("committing decision in study %s: %w", rec.Study, trial.ErrConflict)
		}
	}
	if ps == nil {
		ps = &person{}
		sh.people[k] = ps
	}
	if c.State != nil {
		ps.st = c.State
	}
	if c.Idempotency != nil {
		if ps.idem == nil {
			ps.idem = map[string]*trial.IdempotencyEntry{}
		}
		ps.idem[c.Idempotency.Key] = c.Idempotency
	}
	if c.Delivery != nil {
		s.clock.mu.Lock()
		s.clock.putDelivery(c.Delivery)
		s.clock.mu.Unlock()
	}
	ps.records = insertSorted(ps.records, sr, cmpStored)
	if n := len(ps.records); n > recentDecoded {
		ps.records[n-recentDecoded-1].rec.Store(nil)
	}
	ix := s.idShard(rec.Study, rec.ID)
	ix.mu.Lock()
	ix.recs[key{rec.Study, rec.ID}] = sr
	ix.mu.Unlock()
	if s.opts.Retain > 0 {
		s.dropOld(rec.Study, ps)
	}
	return nil
}

// dropOld drops the participant's records more than Retain older than their
// latest (with the participant's shard locked).
func (s *Store) dropOld(study string, ps *person) {
	cut := ps.records[len(ps.records)-1].time.Add(-s.opts.Retain)
	k := 0
	for k < len(ps.records) && ps.records[k].time.Before(cut) {
		k++
	}
	if k == 0 {
		return
	}
	for _, r := range ps.records[:k] {
		ix := s.idShard(study, r.id)
		ix.mu.Lock()
		// Unless a later commit reused the id.
		if ix.recs[key{study, r.id}] == r {
			delete(ix.recs, key{study, r.id})
		}
		ix.mu.Unlock()
	}
	clear(ps.records[:k])
	ps.records = ps.records[k:]
}

// Decision returns one record or ErrNotFound.
func (s *Store) Decision(ctx context.Context, study, id string) (*trial.Record, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	ix := s.idShard(study, id)
	ix.mu.RLock()
	sr := ix.recs[key{study, id}]
	ix.mu.RUnlock()
	if sr == nil {
		return nil, fmt.Errorf("decision %s in study %s: %w", id, study, trial.ErrNotFound)
	}
	return sr.record()
}

// ListDecisions lists records in (time, id) order. A listing of a whole
// study gathers and sorts every record of the study, so paging through a
// large study costs a sort per page; simulations list once (WriteJSONL).
func (s *Store) ListDecisions(ctx context.Context, q trial.DecisionQuery) ([]*trial.Record, error) {
	var out []*trial.Record
	err := s.each(ctx, q, func(sr *stored) error {
		rec, err := sr.record()
		if err != nil {
			return err
		}
		out = append(out, rec)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// WriteJSONL writes a study's records to w, one JSON document a line in
// (time, id) order: what json.Encoder writes for each record.
func (s *Store) WriteJSONL(ctx context.Context, study string, w io.Writer) error {
	return s.each(ctx, trial.DecisionQuery{Study: study}, func(sr *stored) error {
		if _, err := w.Write(sr.doc); err != nil {
			return err
		}
		_, err := w.Write([]byte{'\n'})
		return err
	})
}

// each visits the records q selects in (time, id) order.
func (s *Store) each(ctx context.Context, q trial.DecisionQuery, fn func(*stored) error) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	var all []*stored
	if q.Participant != "" {
		sh := s.shard(q.Study, q.Participant)
		sh.mu.Lock()
		if ps := sh.people[key{q.Study, q.Participant}]; ps != nil {
			all = slices.Clone(ps.records)
		}
		sh.mu.Unlock()
	} else {
		for i := range s.shards {
			sh := &s.shards[i]
			sh.mu.Lock()
			for k, ps := range sh.people {
				if k.study == q.Study {
					all = append(all, ps.records...)
				}
			}
			sh.mu.Unlock()
		}
		slices.SortFunc(all, cmpStored)
	}
	n := 0
	for _, r := range all {
		if !q.Since.IsZero() && r.time.Before(q.Since) {
			continue
		}
		if !q.AfterTime.IsZero() && cmpTimeID(r.time, r.id, q.AfterTime, q.AfterID) <= 0 {
			continue
		}
		if err := fn(r); err != nil {
			return err
		}
		n++
		if q.Limit > 0 && n == q.Limit {
			break
		}
	}
	return nil
}

func cmpTimeID(at time.Time, aid string, bt time.Time, bid string) int {
	if c := at.Compare(bt); c != 0 {
		return c
	}
	switch {
	case aid < bid:
		return -1
	case aid > bid:
		return 1
	}
	return 0
}

// insertSorted inserts v after every element that is not greater: appending
// is the common case, since events and decisions mostly arrive in order.
func insertSorted[T any](list []T, v T, cmp func(a, b T) int) []T {
	i := len(list)
	for i > 0 && cmp(list[i-1], v) > 0 {
		i--
	}
	return slices.Insert(list, i, v)
}
