package engine_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/jitai/jitai/engine"
	"github.com/jitai/jitai/engine/store/memstore"
	"github.com/jitai/jitai/engine/trial"
	"github.com/jitai/jitai/policies"
	"github.com/jitai/jitai/policies/policytest"
)

// TestIngestEventIDConflict: an event id sent again unchanged is a
// duplicate; with other data or another time it is an EventConflictError
// naming the event as sent (events[i].id), and the stored event and the
// state stay as they were. A withdrawn participant's events are refused
// with ErrWithdrawn and not stored.
func TestIngestEventIDConflict(t *testing.T) {
	ctx := context.Background()
	study := policytest.Load(t, "../policies/examples/stress-mrt")
	id := study.Config.ID
	clk := &fakeClock{now: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
	store := memstore.New()
	eng, err := engine.New(engine.Components{Store: store, Studies: []*policies.Study{study}, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := eng.Enroll(ctx, id, engine.EnrollRequest{ParticipantID: "p1"}); err != nil {
		t.Fatal(err)
	}
	t0 := clk.now.Add(-time.Minute)
	ema := func(evID string, at time.Time, data string) trial.Event {
		return trial.Event{ID: evID, Type: trial.EventEMA, Time: at, Data: json.RawMessage(data)}
	}
	ingest := func(evs ...trial.Event) (int, int, error) { return eng.Ingest(ctx, id, "p1", evs) }
	if acc, dup, err := ingest(ema("e1", t0, `{"stress":6}`)); err != nil || acc != 1 || dup != 0 {
		t.Fatalf("first send = %d, %d, %v; want 1 accepted", acc, dup, err)
	}
	if acc, dup, err := ingest(ema("e1", t0.Add(300*time.Nanosecond), ` { "stress" : 6.0 } `)); err != nil || acc != 0 || dup != 1 {
		t.Fatalf("unchanged resend = %d, %d, %v; want 1 duplicate", acc, dup, err)
	}
	stored, _ := store.Events(ctx, id, "p1")
	before, _ := store.Snapshot(ctx, id, "p1", "")
	for _, c := range []struct {
		name  string
		evs   []trial.Event
		field string
	}{
		{"OtherData", []trial.Event{ema("e1", t0, `{"stress":7}`)}, "events[0].id"},
		{"OtherTime", []trial.Event{ema("e1", t0.Add(time.Second), `{"stress":6}`)}, "events[0].id"},
		// The engine sorts events by time before storing; the field is
		// still the index as sent.
		{"SecondAsSent", []trial.Event{ema("e2", t0.Add(-time.Second), `{"stress":1}`), ema("e1", t0.Add(-2*time.Second), `{"stress":6}`)}, "events[1].id"},
	} {
		acc, dup, err := ingest(c.evs...)
		var ce *trial.EventConflictError
		if !errors.As(err, &ce) || ce.ID != "e1" || ce.Field != c.field || acc != 0 || dup != 0 {
			t.Errorf("%s: Ingest = %d, %d, %v (%+v); want a conflict for e1 at %s", c.name, acc, dup, err, ce, c.field)
		}
		evs, _ := store.Events(ctx, id, "p1")
		after, _ := store.Snapshot(ctx, id, "p1", "")
		if len(evs) != 1 || !trial.SameEventContent(&evs[0], &stored[0]) || after.State.Version != before.State.Version {
			t.Errorf("%s: after the conflict: events %+v, state version %d; want them unchanged", c.name, evs, after.State.Version)
		}
	}

	if _, err := eng.Withdraw(ctx, id, "p1"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ingest(ema("e3", t0, `{"stress":2}`)); !errors.Is(err, engine.ErrWithdrawn) {
		t.Errorf("Ingest after withdrawal: %v, want ErrWithdrawn", err)
	}
	if evs, _ := store.Events(ctx, id, "p1"); len(evs) != 1 {
		t.Errorf("%d events stored after withdrawal, want 1", len(evs))
	}
}
