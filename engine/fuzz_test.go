package engine_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/jitai/jitai/engine/trial"

	"github.com/jitai/jitai/engine"
	"github.com/jitai/jitai/engine/store/sqlite"
	"github.com/jitai/jitai/interventions"
	"github.com/jitai/jitai/policies"
)

// FuzzIngest gives engine.Ingest one event of arbitrary id, type and data
// for a fresh participant, then asks for a decision. Ingest must either
// accept the event or refuse it with an InputError naming a field under
// events[0]; and whatever it accepted must not break the policy: the
// decision that follows succeeds. Seeds are below and in
// testdata/fuzz/FuzzIngest.
func FuzzIngest(f *testing.F) {
	ctx := context.Background()
	cat, err := interventions.Embedded()
	if err != nil {
		f.Fatal(err)
	}
	study, err := policies.LoadStudy(ctx, "../policies/examples/stress-mrt", cat)
	if err != nil {
		f.Fatal(err)
	}
	store, err := sqlite.Open(filepath.Join(f.TempDir(), "fuzz.db"), sqlite.Options{Durability: "process"}, nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { _ = store.Close() })
	now := time.Date(2026, 11, 18, 14, 30, 0, 0, time.UTC)
	eng, err := engine.New(engine.Components{Store: store, Studies: []*policies.Study{study}, Now: func() time.Time { return now }})
	if err != nil {
		f.Fatal(err)
	}

	f.Add("e1", "ema", []byte(`{"stress":7,"mood":3,"note":"a long day"}`))
	f.Add("e2", "context", []byte(`{"driving":true,"location":"work"}`))
	f.Add("e3", "engagement", []byte(`{"decision_id":"d-1","status":"opened"}`))
	f.Add("e4", "preference", []byte(`{"snooze_minutes":60,"quiet_hours":{"start":"22:00","end":"07:30"},"opt_out":false}`))
	f.Add("e5", "preference", []byte(`{"snooze_until":"2026-11-18T15:00:00Z","quiet_hours":null}`))
	f.Add("e6", "assessment", []byte(`{"instrument":"phq9","items":[3,3,3,3,3,3,3,3,3]}`))
	f.Add("e7", "assessment", []byte(`{"instrument":"gad7","items":[0,0,0,0,0,0,-1]}`))
	f.Add("e8", "ema", []byte(`{"stress":1e999}`))
	f.Add("e9", "ema", []byte(`{"risk":"yes","suicidal_thoughts":true}`))
	f.Add("", "", []byte(`null`))

	var n int
	f.Fuzz(func(t *testing.T, id, typ string, data []byte) {
		// An input that hangs (a minute: far beyond any input's time, also on a
		// loaded machine) crashes the worker with every stack printed,
		// so the fuzzer keeps it as a failure.
		defer time.AfterFunc(time.Minute, func() { panic("input took over a minute") }).Stop()
		n++
		p := fmt.Sprintf("p-%d", n)
		if _, _, err := eng.Enroll(ctx, study.Config.ID, engine.EnrollRequest{ParticipantID: p}); err != nil {
			t.Fatalf("enrolling: %v", err)
		}
		ev := trial.Event{ID: id, Type: typ, Time: now.Add(-time.Hour), Data: json.RawMessage(data)}
		_, _, err := eng.Ingest(ctx, study.Config.ID, p, []trial.Event{ev})
		var ie *trial.InputError
		switch {
		case err == nil:
		case errors.As(err, &ie):
			if len(ie.Field) < len("events[0]") || ie.Field[:len("events[0]")] != "events[0]" {
				t.Fatalf("input error names %q, not a field of events[0]: %v", ie.Field, err)
			}
			if len(ie.Error()) > 8<<10 {
				t.Fatalf("input error is %d bytes long", len(ie.Error()))
			}
			return
		default:
			t.Fatalf("Ingest failed with a non-input error: %v", err)
		}
		_, err = eng.Decide(ctx, study.Config.ID, p, engine.DecideRequest{DecisionPoint: "afternoon", Time: now})
		if err != nil {
			t.Fatalf("after accepting %s event %s, Decide failed: %v", typ, data, err)
		}
	})
}
