package memstore_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/jitai/jitai/engine/trial"

	"github.com/jitai/jitai/engine/store/memstore"
	"github.com/jitai/jitai/engine/store/storetest"
)

func open(*testing.T) trial.Store { return memstore.New() }

// TestConformance runs the store conformance suite (no reopen: nothing is
// durable).
func TestConformance(t *testing.T) { storetest.Run(t, open, nil) }

// TestEraser runs the withdrawal and erasure suite.
func TestEraser(t *testing.T) { storetest.RunEraser(t, open) }

// TestOldRecordsDecode: records beyond the decoded window come back equal
// from their JSON, and WriteJSONL writes every record in (time, id) order.
func TestOldRecordsDecode(t *testing.T) {
	ctx := t.Context()
	s := memstore.New()
	p := &trial.Participant{Study: "s1", ID: "p1", Timezone: "UTC", EnrolledAt: time.Unix(0, 0).UTC(), Status: trial.StatusActive}
	if _, _, err := s.Enroll(ctx, p, func(int64) error { return nil }); err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 3, 2, 9, 0, 0, 123000, time.UTC)
	var want []*trial.Record
	for i := range 20 {
		// Committed newest first for half of them: insertion keeps order.
		at := base.Add(time.Duration((i*7)%20) * time.Hour)
		rec := storetest.BenchRecord("s1", "p1", fmt.Sprintf("d%02d", i), at)
		if err := s.CommitDecision(ctx, &trial.Commit{Record: rec}); err != nil {
			t.Fatal(err)
		}
		want = append(want, rec)
	}
	for _, rec := range want {
		got, err := s.Decision(ctx, "s1", rec.ID)
		if err != nil {
			t.Fatal(err)
		}
		g, _ := json.Marshal(got)
		w, _ := json.Marshal(rec)
		if !bytes.Equal(g, w) {
			t.Fatalf("record %s:\n got %s\nwant %s", rec.ID, g, w)
		}
	}
	var buf bytes.Buffer
	if err := s.WriteJSONL(ctx, "s1", &buf); err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(want, func(a, b *trial.Record) int { return a.Time.Compare(b.Time) })
	var expect bytes.Buffer
	enc := json.NewEncoder(&expect)
	for _, rec := range want {
		if err := enc.Encode(rec); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(buf.Bytes(), expect.Bytes()) {
		t.Fatalf("WriteJSONL differs from encoding the records in time order")
	}
}

// TestFailedApplyLeavesState: an apply that appends to the state's slices
// and then fails leaves the stored state as it was.
func TestFailedApplyLeavesState(t *testing.T) {
	ctx := t.Context()
	s := memstore.New()
	p := &trial.Participant{Study: "s1", ID: "p1", Timezone: "UTC", EnrolledAt: time.Unix(0, 0).UTC(), Status: trial.StatusActive}
	if _, _, err := s.Enroll(ctx, p, func(int64) error { return nil }); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	ev := func(id string) []trial.Event {
		return []trial.Event{{ID: id, Type: trial.EventEngagement, Time: at, Data: json.RawMessage(`{}`)}}
	}
	grow := func(st *trial.State, _ []trial.Event) error {
		st.Engagement = append(st.Engagement, trial.Engagement{DecisionID: "d", Status: "opened", Time: at})
		st.EMA = map[string]trial.Observation{"stress": {Value: 3.0, Time: at}}
		return nil
	}
	for i := range 3 {
		if _, err := s.AppendEvents(ctx, "s1", "p1", ev(fmt.Sprint("e", i)), grow); err != nil {
			t.Fatal(err)
		}
	}
	before, _ := s.Snapshot(ctx, "s1", "p1", "")
	b0, _ := json.Marshal(before.State)
	boom := errors.New("boom")
	_, err := s.AppendEvents(ctx, "s1", "p1", ev("bad"), func(st *trial.State, fresh []trial.Event) error {
		_ = grow(st, fresh)
		st.Engagement[0].Status = "changed in the copy"
		st.Preferences.OptedOut = true
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("error %v", err)
	}
	after, _ := s.Snapshot(ctx, "s1", "p1", "")
	b1, _ := json.Marshal(after.State)
	if !bytes.Equal(b0, b1) {
		t.Fatalf("state changed by a failed apply:\n%s\n%s", b0, b1)
	}
}

// TestRetain: with Retain, each commit hands OnCommit the record and the
// JSON WriteJSONL would write, and a participant's records and events more
// than Retain older than their latest are dropped (and their ids
// forgotten); the rest stay as the default store keeps them.
func TestRetain(t *testing.T) {
	ctx := t.Context()
	type seen struct {
		id  string
		doc []byte
	}
	var got []seen
	s := memstore.NewWithOptions(memstore.Options{Retain: 3 * time.Hour, OnCommit: func(rec *trial.Record, doc []byte) {
		got = append(got, seen{rec.ID, doc})
	}})
	p := &trial.Participant{Study: "s1", ID: "p1", Timezone: "UTC", EnrolledAt: time.Unix(0, 0).UTC(), Status: trial.StatusActive}
	if _, _, err := s.Enroll(ctx, p, func(int64) error { return nil }); err != nil {
		t.Fatal(err)
	}
	base := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	noop := func(*trial.State, []trial.Event) error { return nil }
	for i := range 10 {
		at := base.Add(time.Duration(i) * time.Hour)
		rec := storetest.BenchRecord("s1", "p1", fmt.Sprintf("d%02d", i), at)
		if err := s.CommitDecision(ctx, &trial.Commit{Record: rec}); err != nil {
			t.Fatal(err)
		}
		want, _ := json.Marshal(rec)
		if len(got) != i+1 || got[i].id != rec.ID || !bytes.Equal(got[i].doc, want) {
			t.Fatalf("commit %d: OnCommit saw %d records, the last %+v", i, len(got), got[len(got)-1].id)
		}
		ev := trial.Event{ID: fmt.Sprintf("e%02d", i), Type: trial.EventEMA, Time: at, Data: json.RawMessage(`{}`)}
		if _, err := s.AppendEvents(ctx, "s1", "p1", []trial.Event{ev}, noop); err != nil {
			t.Fatal(err)
		}
	}
	// The latest is at base+9h: d06 (base+6h) and later stay.
	for i := range 10 {
		_, err := s.Decision(ctx, "s1", fmt.Sprintf("d%02d", i))
		if kept := i >= 6; kept != (err == nil) || !kept && !errors.Is(err, trial.ErrNotFound) {
			t.Errorf("d%02d: %v (kept %v)", i, err, kept)
		}
	}
	recs, err := s.ListDecisions(ctx, trial.DecisionQuery{Study: "s1", Participant: "p1"})
	if err != nil || len(recs) != 4 || recs[0].ID != "d06" {
		t.Fatalf("ListDecisions: %d records, %v", len(recs), err)
	}
	var buf bytes.Buffer
	if err := s.WriteJSONL(ctx, "s1", &buf); err != nil {
		t.Fatal(err)
	}
	var expect []byte
	for _, g := range got[6:] {
		expect = append(append(expect, g.doc...), '\n')
	}
	if !bytes.Equal(buf.Bytes(), expect) {
		t.Fatal("WriteJSONL of the retained records differs from their OnCommit encodings")
	}
	evs, _ := s.Events(ctx, "s1", "p1")
	if len(evs) != 4 || evs[0].ID != "e06" {
		t.Fatalf("events kept: %+v", evs)
	}
	// A forgotten event id is stored again (whatever its content); a
	// retained one is a duplicate, or a conflict if its content differs.
	for _, c := range []struct {
		id       string
		hour     int
		want     int
		conflict bool
	}{{"e00", 9, 1, false}, {"e08", 8, 0, false}, {"e07", 9, 0, true}} {
		n, err := s.AppendEvents(ctx, "s1", "p1", []trial.Event{{ID: c.id, Type: trial.EventEMA, Time: base.Add(time.Duration(c.hour) * time.Hour), Data: json.RawMessage(`{}`)}}, noop)
		var ce *trial.EventConflictError
		if n != c.want || c.conflict != errors.As(err, &ce) || !c.conflict && err != nil {
			t.Errorf("sending %s again: %d stored, %v; want %d (conflict %v)", c.id, n, err, c.want, c.conflict)
		}
	}
}
