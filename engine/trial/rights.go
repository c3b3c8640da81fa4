package trial

import (
	"context"
	"crypto/rand"
	"encoding/hex"
)

// Eraser is the optional store ability behind participants' rights
// (withdrawal and erasure). Stores that have it are detected with a type
// assertion; the API answers 501 for stores that do not.
type Eraser interface {
	// Withdraw marks the participant withdrawn: no more decisions are made
	// for them; their data are kept. ErrNotFound if not enrolled.
	Withdraw(ctx context.Context, study, participant string) (*Participant, error)
	// Erase deletes the participant's enrolment, state, events and
	// idempotency entries. Their decision records are deleted when
	// anonymise is false; otherwise they are kept with the participant id
	// replaced by a random surrogate (the same for all their records) and
	// stripped by AnonymiseRecord. ErrNotFound if not enrolled.
	Erase(ctx context.Context, study, participant string, anonymise bool) (*Erasure, error)
}

// Erasure reports what an erasure did.
type Erasure struct {
	// Records is how many decision records were removed or anonymised.
	Records int `json:"records"`
	// Events is how many events were deleted.
	Events int `json:"events"`
	// Anonymised says whether records were kept anonymised.
	Anonymised bool `json:"anonymised"`
	// Copies says, for each place where the store keeps bytes on disk
	// (database file, write-ahead log, append-only file, snapshots,
	// replicas), whether the erased data are gone from it now or when they
	// will be. Empty when the store keeps nothing on disk.
	Copies []ErasedCopy `json:"copies,omitempty"`
}

// ErasedCopy is one place where a store keeps data on disk, and whether an
// erasure's bytes have left it.
type ErasedCopy struct {
	// Name names the copy: "database", "write-ahead log", "append-only
	// file", "RDB snapshot", "replicas".
	Name string `json:"name"`
	// Clean: the erased participant's bytes are gone from this copy now.
	Clean bool `json:"clean"`
	// When says when the bytes leave the copy, if not now.
	When string `json:"when,omitempty"`
}

// NewSurrogate returns a random participant id for anonymised records.
func NewSurrogate() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "anon-" + hex.EncodeToString(b[:])
}

// AnonymiseRecord rewrites rec for keeping after its participant's erasure:
// the participant id becomes surrogate; the input snapshot (state, context,
// history), the tailoring values, the input hash and the idempotency key are dropped. What
// analysis needs stays: times, availability, factor levels, probabilities
// and draws, the chosen option.
func AnonymiseRecord(rec *Record, surrogate string) {
	rec.Participant = surrogate
	rec.Input = []byte(`{}`)
	rec.Tailoring = nil
	rec.IdempotencyKey = ""
	rec.Conditions = nil
	rec.InputHash = ""
}
