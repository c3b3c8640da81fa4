package redisstore

import (
	"time"

	"github.com/jitai/jitai/engine/trial"

	"testing"

	"github.com/jitai/jitai/engine/store/storetest"
)

// TestEraser runs the participant-rights tests against the local Redis
// (singleURL), each store on a fresh key prefix deleted afterwards.
func TestEraser(t *testing.T) {
	storetest.RunEraser(t, func(t *testing.T) trial.Store { return openAt(t, singleURL(t), Options{}) })
}

// TestEraseLeavesNoKeys: after erasure with remove, no key of the
// participant is left and the decision log holds only others' decisions.
func TestEraseLeavesNoKeys(t *testing.T) {
	s := openAt(t, singleURL(t), Options{})
	defer s.Close()
	ctx := t.Context()
	for _, p := range []string{"p1", "p2"} {
		if _, _, err := s.Enroll(ctx, &trial.Participant{Study: "s1", ID: p, Status: trial.StatusActive}, nil); err != nil {
			t.Fatal(err)
		}
		if _, err := s.AppendEvents(ctx, "s1", p, []trial.Event{{ID: "e", Type: "ema", Time: time.Unix(100, 0), Data: []byte(`{}`)}}, func(*trial.State, []trial.Event) error { return nil }); err != nil {
			t.Fatal(err)
		}
		rec := &trial.Record{ID: p + "-d", Study: "s1", Participant: p, Time: time.Unix(200, 0), Input: []byte(`{"x":1}`)}
		if err := s.CommitDecision(ctx, &trial.Commit{Record: rec, State: &trial.State{Version: 2}, Idempotency: &trial.IdempotencyEntry{Key: "k", DecisionID: rec.ID}}); err != nil {
			t.Fatal(err)
		}
	}
	before, err := s.LogLen(ctx, "s1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Erase(ctx, "s1", "p1", false); err != nil {
		t.Fatal(err)
	}
	keys, err := s.scanKeys(ctx, globEsc(s.k.participant("s1", "p1").base)+"*")
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 0 {
		t.Errorf("keys left after erasure: %v", keys)
	}
	after, err := s.LogLen(ctx, "s1")
	if err != nil {
		t.Fatal(err)
	}
	if after != before-1 {
		t.Errorf("log length %d after erasure, want %d", after, before-1)
	}
	if ok, err := s.rdb.HExists(ctx, s.k.study("s1").participants(), "p1").Result(); err != nil || ok {
		t.Errorf("register still names p1 (%v)", err)
	}
}
