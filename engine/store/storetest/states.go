package storetest

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/jitai/jitai/engine/trial"
)

// errApply is what a failing state enricher returns.
var errApply = errors.New("enricher rejected the event")

func (h *harness) testSnapshot(t *testing.T) {
	s := h.store(t)
	p := mustEnroll(t, s, participant("s1", "p1", "a"))

	t.Run("Unknown", func(t *testing.T) {
		for _, c := range []struct{ study, id, key string }{{"s1", "nobody", ""}, {"s1", "nobody", "k1"}, {"s2", "p1", ""}} {
			_, err := s.Snapshot(ctx(t), c.study, c.id, c.key)
			wantErr(t, fmt.Sprintf("Snapshot(%s, %s, %q)", c.study, c.id, c.key), err, trial.ErrNotFound)
		}
	})
	t.Run("NewParticipant", func(t *testing.T) {
		snap := mustSnapshot(t, s, "s1", "p1", "k1")
		sameJSON(t, "snapshot participant", snap.Participant, p)
		sameJSON(t, "state of a new participant", snap.State, &trial.State{})
		if snap.Replay != nil {
			t.Fatalf("Replay = %+v for an unused key, want nil", snap.Replay)
		}
	})
	t.Run("Replay", func(t *testing.T) {
		entry := idem("k1", "d1", at(5))
		rec := record("s1", "p1", "d1", at(5))
		rec.IdempotencyKey = "k1"
		mustCommit(t, s, &trial.Commit{Record: rec, Idempotency: entry})
		cases := []struct {
			name, key string
			want      *trial.IdempotencyEntry
		}{
			{"SameKey", "k1", entry},
			{"OtherKey", "k2", nil},
			{"EmptyKey", "", nil},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				snap := mustSnapshot(t, s, "s1", "p1", c.key)
				if c.want == nil {
					if snap.Replay != nil {
						t.Fatalf("Replay = %+v, want nil", snap.Replay)
					}
					return
				}
				if snap.Replay == nil {
					t.Fatal("Replay = nil, want the stored entry")
				}
				sameJSON(t, "replayed entry", snap.Replay, c.want)
				if string(snap.Replay.Response) != string(c.want.Response) {
					t.Fatalf("replayed response = %q, want %q", snap.Replay.Response, c.want.Response)
				}
			})
		}
	})
}

// applyRecorder wraps applyEvents and remembers the fresh events of each call.
type applyRecorder struct {
	calls [][]trial.Event
	fail  error
}

func (r *applyRecorder) apply(st *trial.State, fresh []trial.Event) error {
	r.calls = append(r.calls, slices.Clone(fresh))
	if r.fail != nil {
		return r.fail
	}
	return applyEvents(st, fresh)
}

// ids lists the events' ids.
func ids(evs []trial.Event) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = ev.ID
	}
	return out
}

func (h *harness) testAppendEvents(t *testing.T) {
	t.Run("UnknownParticipant", h.testAppendEventsUnknownParticipant)

	t.Run("NewAndDuplicate", h.testAppendEventsNewAndDuplicate)

	t.Run("ApplyError", h.testAppendEventsApplyError)

	t.Run("EventsInTimeOrder", h.testAppendEventsEventsInTimeOrder)

	t.Run("SameIDSameContent", h.testAppendEventsSameContent)

	t.Run("SameIDOtherContent", h.testAppendEventsConflict)
}

// testAppendEventsSameContent: an event sent again with the same content,
// however its JSON is spelt, is a duplicate.
func (h *harness) testAppendEventsSameContent(t *testing.T) {
	s := h.store(t)
	mustEnroll(t, s, participant("s1", "p1", "a"))
	e1 := emaEvent("e1", at(1), 4)
	if _, err := s.AppendEvents(ctx(t), "s1", "p1", []trial.Event{e1}, applyEvents); err != nil {
		t.Fatalf("AppendEvents: %v", err)
	}
	again := e1
	again.Data = json.RawMessage(` { "prompted": true, "value": 4.0, "item": "stress" } `)
	again.ReceivedAt = e1.ReceivedAt.Add(time.Hour)
	again.Time = e1.Time.In(time.FixedZone("UTC+1", 3600))
	var rec applyRecorder
	n, err := s.AppendEvents(ctx(t), "s1", "p1", []trial.Event{again, again}, rec.apply)
	if err != nil || n != 0 {
		t.Fatalf("AppendEvents of the same event again = %d, %v; want 0 new and no error", n, err)
	}
	if len(rec.calls) != 0 {
		t.Fatal("apply called although no event was new")
	}
	evs, err := s.Events(ctx(t), "s1", "p1")
	if err != nil {
		t.Fatalf("Events: %v", err)
	}
	sameJSON(t, "events", evs, []trial.Event{e1})
}

// testAppendEventsConflict: an id stored (or repeated in the call) with
// another type, time or data fails the whole call with an
// *EventConflictError naming it and stores nothing of it.
func (h *harness) testAppendEventsConflict(t *testing.T) {
	s := h.store(t)
	mustEnroll(t, s, participant("s1", "p1", "a"))
	e1, e2 := emaEvent("e1", at(1), 4), contextEvent("e2", at(2), "walking")
	if _, err := s.AppendEvents(ctx(t), "s1", "p1", []trial.Event{e1, e2}, applyEvents); err != nil {
		t.Fatalf("AppendEvents: %v", err)
	}
	before := mustSnapshot(t, s, "s1", "p1", "").State
	other := contextEvent("e1", at(1), "walking")
	other.Data, other.ReceivedAt = e1.Data, e1.ReceivedAt
	cases := []struct {
		name string
		send []trial.Event
		id   string
	}{
		{"OtherData", []trial.Event{emaEvent("e3", at(3), 1), emaEvent("e1", at(1), 5)}, "e1"},
		{"OtherType", []trial.Event{emaEvent("e3", at(3), 1), other}, "e1"},
		{"OtherTime", []trial.Event{emaEvent("e1", at(1).Add(time.Second), 4), emaEvent("e3", at(3), 1)}, "e1"},
		{"OtherTimeByAMicrosecond", []trial.Event{contextEvent("e2", at(2).Add(time.Microsecond), "walking")}, "e2"},
		{"RepeatedWithinCall", []trial.Event{emaEvent("e4", at(4), 1), emaEvent("e4", at(4), 2)}, "e4"},
	}
	for _, c := range cases {
		n, err := s.AppendEvents(ctx(t), "s1", "p1", c.send, applyEvents)
		var ce *trial.EventConflictError
		if !errors.As(err, &ce) || ce.ID != c.id {
			t.Fatalf("%s: AppendEvents = %d, %v; want an EventConflictError for %s", c.name, n, err, c.id)
		}
		evs, err := s.Events(ctx(t), "s1", "p1")
		if err != nil {
			t.Fatalf("%s: Events: %v", c.name, err)
		}
		sameJSON(t, c.name+": events after the conflict", evs, []trial.Event{e1, e2})
		sameJSON(t, c.name+": state after the conflict", mustSnapshot(t, s, "s1", "p1", "").State, before)
	}
	// Nothing of the refused calls was stored: their new events are new.
	n, err := s.AppendEvents(ctx(t), "s1", "p1", []trial.Event{emaEvent("e3", at(3), 1), emaEvent("e4", at(4), 2)}, applyEvents)
	if err != nil || n != 2 {
		t.Fatalf("AppendEvents after the conflicts = %d, %v; want 2 new", n, err)
	}
}

func (h *harness) testAppendEventsUnknownParticipant(t *testing.T) {
	s := h.store(t)
	var rec applyRecorder
	_, err := s.AppendEvents(ctx(t), "s1", "nobody", []trial.Event{emaEvent("e1", at(1), 5)}, rec.apply)
	wantErr(t, "AppendEvents for an unknown participant", err, trial.ErrNotFound)
	if len(rec.calls) != 0 {
		t.Fatal("apply called for an unknown participant")
	}
}

func (h *harness) testAppendEventsNewAndDuplicate(t *testing.T) {
	s := h.store(t)
	mustEnroll(t, s, participant("s1", "p1", "a"))
	mustEnroll(t, s, participant("s1", "p2", "a"))
	e1, e2, e3 := emaEvent("e1", at(3), 4), contextEvent("e2", at(1), "walking"), emaEvent("e3", at(2), 8)
	e4, e5 := emaEvent("e4", at(6), 2), contextEvent("e5", at(4), "still")
	steps := []struct {
		name      string
		send      []trial.Event
		wantFresh []string
		wantVer   int64
	}{
		{"New", []trial.Event{e1, e2, e3}, []string{"e1", "e2", "e3"}, 1},
		{"AllDuplicates", []trial.Event{e2, e1}, nil, 1},
		{"Mixed", []trial.Event{e3, e4, e1, e5}, []string{"e4", "e5"}, 2},
		{"RepeatedWithinCall", []trial.Event{emaEvent("e6", at(7), 3), emaEvent("e6", at(7), 3)}, []string{"e6"}, 3},
		{"Empty", nil, nil, 3},
	}
	for _, st := range steps {
		var rec applyRecorder
		n, err := s.AppendEvents(ctx(t), "s1", "p1", st.send, rec.apply)
		if err != nil {
			t.Fatalf("%s: AppendEvents: %v", st.name, err)
		}
		if n != len(st.wantFresh) {
			t.Fatalf("%s: AppendEvents = %d new, want %d", st.name, n, len(st.wantFresh))
		}
		switch {
		case len(st.wantFresh) == 0 && len(rec.calls) != 0:
			t.Fatalf("%s: apply called with %v although no event was new", st.name, ids(rec.calls[0]))
		case len(st.wantFresh) > 0 && len(rec.calls) != 1:
			t.Fatalf("%s: apply called %d times, want once", st.name, len(rec.calls))
		case len(st.wantFresh) > 0 && !slices.Equal(ids(rec.calls[0]), st.wantFresh):
			t.Fatalf("%s: apply got %v, want %v", st.name, ids(rec.calls[0]), st.wantFresh)
		}
		if snap := mustSnapshot(t, s, "s1", "p1", ""); snap.State.Version != st.wantVer {
			t.Fatalf("%s: state version %d, want %d", st.name, snap.State.Version, st.wantVer)
		}
	}
	// Fresh events reach apply exactly as sent.
	var rec applyRecorder
	e7 := emaEvent("e7", at(8), 9)
	if _, err := s.AppendEvents(ctx(t), "s1", "p1", []trial.Event{e7}, rec.apply); err != nil {
		t.Fatalf("AppendEvents: %v", err)
	}
	sameJSON(t, "event passed to apply", rec.calls[0], []trial.Event{e7})

	// apply's changes persist.
	want := &trial.State{Version: 4}
	if err := applyEvents(want, []trial.Event{e1, e2, e3, e4, e5, emaEvent("e6", at(7), 3), e7}); err != nil {
		t.Fatal(err)
	}
	sameJSON(t, "state after events", mustSnapshot(t, s, "s1", "p1", "").State, want)

	// Event ids are per participant.
	n, err := s.AppendEvents(ctx(t), "s1", "p2", []trial.Event{e1, e2}, applyEvents)
	if err != nil || n != 2 {
		t.Fatalf("AppendEvents with another participant's ids = %d, %v; want 2 new", n, err)
	}
}

func (h *harness) testAppendEventsApplyError(t *testing.T) {
	s := h.store(t)
	mustEnroll(t, s, participant("s1", "p1", "a"))
	if _, err := s.AppendEvents(ctx(t), "s1", "p1", []trial.Event{emaEvent("e1", at(1), 5)}, applyEvents); err != nil {
		t.Fatalf("AppendEvents: %v", err)
	}
	before := mustSnapshot(t, s, "s1", "p1", "").State

	rec := applyRecorder{fail: errApply}
	_, err := s.AppendEvents(ctx(t), "s1", "p1", []trial.Event{emaEvent("e2", at(2), 9), contextEvent("e3", at(3), "driving")}, rec.apply)
	wantErr(t, "AppendEvents with failing apply", err, errApply)
	sameJSON(t, "state after failed apply", mustSnapshot(t, s, "s1", "p1", "").State, before)
	evs, err := s.Events(ctx(t), "s1", "p1")
	if err != nil {
		t.Fatalf("Events: %v", err)
	}
	if got := ids(evs); !slices.Equal(got, []string{"e1"}) {
		t.Fatalf("events after failed apply: %v, want [e1]", got)
	}
	// The rejected events were not stored, so they are new next time.
	rec = applyRecorder{}
	n, err := s.AppendEvents(ctx(t), "s1", "p1", []trial.Event{emaEvent("e2", at(2), 9), contextEvent("e3", at(3), "driving")}, rec.apply)
	if err != nil || n != 2 {
		t.Fatalf("resending after failed apply = %d, %v; want 2 new", n, err)
	}
	if got := mustSnapshot(t, s, "s1", "p1", "").State.Version; got != before.Version+1 {
		t.Fatalf("version %d, want %d", got, before.Version+1)
	}
}

func (h *harness) testAppendEventsEventsInTimeOrder(t *testing.T) {
	s := h.store(t)
	mustEnroll(t, s, participant("s1", "p1", "a"))
	mustEnroll(t, s, participant("s1", "p2", "a"))
	// Sent out of order and in two batches.
	batches := [][]trial.Event{
		{emaEvent("m", at(30), 6), contextEvent("a", at(10), "still")},
		{emaEvent("z", at(20), 3), {
			ID: "x", Type: trial.EventPreference, Time: at(5), ReceivedAt: at(40),
			Data: json.RawMessage(`{"snooze_minutes":90,"quiet_hours":{"start":"22:00","end":"07:30"},"nested":[1,2.5,"three",null,true]}`),
		}},
	}
	for _, b := range batches {
		if _, err := s.AppendEvents(ctx(t), "s1", "p1", b, applyEvents); err != nil {
			t.Fatalf("AppendEvents: %v", err)
		}
	}
	if _, err := s.AppendEvents(ctx(t), "s1", "p2", []trial.Event{emaEvent("b", at(15), 1)}, applyEvents); err != nil {
		t.Fatalf("AppendEvents: %v", err)
	}
	got, err := s.Events(ctx(t), "s1", "p1")
	if err != nil {
		t.Fatalf("Events: %v", err)
	}
	want := []trial.Event{batches[1][1], batches[0][1], batches[1][0], batches[0][0]}
	sameJSON(t, "Events", got, want)
	for i := range got {
		if !got[i].Time.Equal(want[i].Time) || got[i].Time.Location() != time.UTC {
			t.Fatalf("event %s time = %v, want %v in UTC", got[i].ID, got[i].Time, want[i].Time)
		}
	}

	none, err := s.Events(ctx(t), "s1", "nobody")
	if err != nil && !errors.Is(err, trial.ErrNotFound) {
		t.Fatalf("Events of an unknown participant: %v", err)
	}
	if len(none) != 0 {
		t.Fatalf("Events of an unknown participant lists %d", len(none))
	}
}
