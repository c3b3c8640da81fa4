package trial

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Store errors. Implementations return these (possibly wrapped).
var (
	// ErrNotFound: no such participant or decision.
	ErrNotFound = errors.New("not found")
	// ErrConflict: the participant's state changed since it was read; the
	// caller re-reads and tries again.
	ErrConflict = errors.New("state changed concurrently")
	// ErrIdempotencyReplay: the idempotency key was committed concurrently
	// by another request; the caller re-reads and returns the stored answer.
	ErrIdempotencyReplay = errors.New("idempotency key already committed")
	// ErrUnavailable: the store cannot be reached now (maps to 503).
	ErrUnavailable = errors.New("store unavailable")
)

// UnavailableError is an ErrUnavailable that says why the store cannot
// write and when to try again: its disk is nearly full or its file or
// file system is read-only. It answers errors.Is(err, ErrUnavailable).
type UnavailableError struct {
	// Reason says what is wrong and what fixes it, without participant data.
	Reason string
	// RetryAfter is when a retry may succeed (the Retry-After header).
	RetryAfter time.Duration
	// Err is the underlying error, if any.
	Err error
}

func (e *UnavailableError) Error() string {
	if e.Err == nil {
		return ErrUnavailable.Error() + ": " + e.Reason
	}
	return ErrUnavailable.Error() + ": " + e.Reason + ": " + e.Err.Error()
}

// Unwrap returns ErrUnavailable and the underlying error.
func (e *UnavailableError) Unwrap() []error {
	if e.Err == nil {
		return []error{ErrUnavailable}
	}
	return []error{ErrUnavailable, e.Err}
}

// Participants stores enrolments and between-person assignments.
type Participants interface {
	// Enroll creates the participant unless it exists. For a new
	// participant, assign is called with the enrolment's 0-based sequence
	// number within p.Stratum (allocated atomically with the insert) and
	// fills in the assignment. It returns the stored participant and whether
	// it was created.
	Enroll(ctx context.Context, p *Participant, assign func(seq int64) error) (*Participant, bool, error)
	// Participant returns one participant or ErrNotFound.
	Participant(ctx context.Context, study, id string) (*Participant, error)
	// Participants lists a study's participants in enrolment order.
	Participants(ctx context.Context, study string) ([]*Participant, error)
}

// States stores each participant's state document and raw events.
type States interface {
	// Snapshot reads, in one round trip, everything a decision needs: the
	// participant, their state and the answer already given for idemKey
	// (if idemKey is not empty). ErrNotFound if the participant is unknown.
	Snapshot(ctx context.Context, study, participant, idemKey string) (*Snapshot, error)
	// AppendEvents stores the events whose ids are new for this participant
	// and, in the same transaction, calls apply with the participant's state
	// and those new events (in the given order) so it can update the state.
	// An event whose id is already stored for the participant (or repeated
	// in events) with the same content (SameEventContent: type, time to the
	// microsecond, data as JSON) is a duplicate and skipped. One stored with
	// different content fails the call with *EventConflictError and nothing
	// of the batch is stored. It returns how many events were new.
	AppendEvents(ctx context.Context, study, participant string, events []Event, apply func(st *State, fresh []Event) error) (int, error)
	// Events lists a participant's stored events in time order (for export).
	Events(ctx context.Context, study, participant string) ([]Event, error)
}

// Decisions stores decision records atomically with the state change and
// idempotency entry they imply.
type Decisions interface {
	// CommitDecision durably stores c.Record, replaces the participant's
	// state with c.State if its version is still c.State.Version-1
	// (ErrConflict otherwise) and stores the idempotency entry, all or
	// nothing. It returns only once the commit is durable.
	CommitDecision(ctx context.Context, c *Commit) error
	// Decision returns one record or ErrNotFound.
	Decision(ctx context.Context, study, id string) (*Record, error)
	// ListDecisions lists records in (time, id) order.
	ListDecisions(ctx context.Context, q DecisionQuery) ([]*Record, error)
}

// Pins keeps what is fixed for a study once it has participants, such as
// its between-person design: written once, then only read and compared.
type Pins interface {
	// Pin stores value under (study, name) unless a value is stored there,
	// and returns the stored value either way (value itself when it was
	// stored now).
	Pin(ctx context.Context, study, name string, value []byte) ([]byte, error)
	// Pinned returns the value stored under (study, name), or ErrNotFound.
	Pinned(ctx context.Context, study, name string) ([]byte, error)
}

// Store is everything the engine needs from storage.
type Store interface {
	Participants
	States
	Decisions
	Pins
	Clock
	// Ping checks that the store can serve, writes included (for /readyz):
	// a store that answers but cannot write (its disk nearly full or
	// read-only) returns a *UnavailableError saying why.
	Ping(ctx context.Context) error
	// Close flushes pending writes and releases resources.
	Close() error
}

// Snapshot is what a decision reads.
type Snapshot struct {
	Participant *Participant
	State       *State
	// Replay is the stored answer for the idempotency key, if any.
	Replay *IdempotencyEntry
}

// IdempotencyEntry is the answer stored for an idempotency key.
type IdempotencyEntry struct {
	Key         string    `json:"key"`
	RequestHash string    `json:"request_hash"`
	DecisionID  string    `json:"decision_id"`
	Response    []byte    `json:"response"`
	CreatedAt   time.Time `json:"created_at"`
}

// Commit is one decision's atomic write.
type Commit struct {
	Record *Record
	// State is the participant's new state; its Version is one more than the
	// version read. Nil leaves the state unchanged (no version check).
	State *State
	// Idempotency is stored with the record when not nil.
	Idempotency *IdempotencyEntry
	// Delivery, when not nil, is the decision's delivery log, stored with
	// the record; a queued one enters the outbox in the same commit.
	Delivery *Delivery
}

// DecisionQuery selects decision records.
type DecisionQuery struct {
	Study       string
	Participant string    // empty: all participants
	Since       time.Time // zero: from the start; inclusive
	// After continues a listing after the record (AfterTime, AfterID).
	AfterTime time.Time
	AfterID   string
	Limit     int
}

// Validate rejects commits that cannot be stored meaningfully; every store
// calls it first.
func (c *Commit) Validate() error {
	switch {
	case c == nil || c.Record == nil:
		return errors.New("committing decision: no record")
	case c.Record.ID == "" || c.Record.Study == "" || c.Record.Participant == "":
		return errors.New("committing decision: the record needs a decision id, study and participant id")
	case strings.ContainsRune(c.Record.ID, 0) || strings.ContainsRune(c.Record.Participant, 0):
		return fmt.Errorf("committing decision in study %s: the decision or participant id contains a NUL character", c.Record.Study)
	case c.Record.Time.IsZero():
		return fmt.Errorf("committing decision in study %s: the record has no time", c.Record.Study)
	case c.Idempotency != nil && c.Idempotency.Key == "":
		return fmt.Errorf("committing decision in study %s: the idempotency entry has no key", c.Record.Study)
	case c.Delivery != nil && (c.Delivery.ID == "" || c.Delivery.DecisionID != c.Record.ID || c.Delivery.Participant != c.Record.Participant || c.Delivery.Study != c.Record.Study):
		return fmt.Errorf("committing decision in study %s: the delivery needs an id and the record's decision, participant and study", c.Record.Study)
	case c.State != nil && c.State.Version < 1:
		return fmt.Errorf("committing decision in study %s: new state version %d, want the version read plus one", c.Record.Study, c.State.Version)
	}
	return nil
}
