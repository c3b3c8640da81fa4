package engine_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jitai/jitai/engine"
	"github.com/jitai/jitai/engine/store/memstore"
	"github.com/jitai/jitai/engine/trial"
	"github.com/jitai/jitai/policies"
	"github.com/jitai/jitai/policies/policytest"
)

// dictionaryEngine is an engine of the stress-mrt example whose data
// dictionary is replaced by vars (when not nil) and unknown_variables by
// unknown, with participant p1 enrolled.
func dictionaryEngine(t *testing.T, vars []policies.Variable, unknown string) (ingest func(evs ...trial.Event) error, store *memstore.Store, ev func(typ, data string) trial.Event) {
	t.Helper()
	ctx := context.Background()
	study := policytest.Load(t, "../policies/examples/stress-mrt")
	if vars != nil {
		study.Config.Variables = vars
	}
	study.Config.UnknownVariables = unknown
	clk := &fakeClock{now: time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)}
	store = memstore.New()
	eng, err := engine.New(engine.Components{Store: store, Studies: []*policies.Study{study}, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	id := study.Config.ID
	if _, _, err := eng.Enroll(ctx, id, engine.EnrollRequest{ParticipantID: "p1"}); err != nil {
		t.Fatal(err)
	}
	n := 0
	ev = func(typ, data string) trial.Event {
		n++
		return trial.Event{ID: fmt.Sprintf("e%d", n), Type: typ, Time: clk.now.Add(-time.Minute), Data: json.RawMessage(data)}
	}
	ingest = func(evs ...trial.Event) error {
		_, _, err := eng.Ingest(ctx, id, "p1", evs)
		return err
	}
	return ingest, store, ev
}

func f64(x float64) *float64 { return &x }

// TestIngestDataDictionary: every variable type with a valid value, a value
// of the wrong type, a value out of range or not among the levels, and the
// variable missing from the event: the invalid ones are 422 naming
// events[i].data.<name> and the rule, and nothing of the batch is stored.
func TestIngestDataDictionary(t *testing.T) {
	vars := []policies.Variable{
		{Name: "stress", Source: "ema", Type: "number", Min: f64(0), Max: f64(10)},
		{Name: "cups", Source: "ema", Type: "integer", Min: f64(0), Max: f64(20)},
		{Name: "driving", Source: "context", Type: "boolean"},
		{Name: "location", Source: "context", Type: "category", Levels: []string{"home", "work"}},
	}
	ingest, store, ev := dictionaryEngine(t, vars, "")
	const ok = ""
	cases := []struct {
		name, typ, data, field, reason string
	}{
		{"number valid", "ema", `{"stress":7.5}`, ok, ""},
		{"number at bounds", "ema", `{"stress":0,"cups":20}`, ok, ""},
		{"number wrong type", "ema", `{"stress":"high"}`, "stress", `stress must be a number from 0 to 10; got "high"`},
		{"number below", "ema", `{"stress":-50}`, "stress", "stress must be a number from 0 to 10; got -50"},
		{"number above", "ema", `{"stress":10.5}`, "stress", "stress must be a number from 0 to 10; got 10.5"},
		{"number missing", "ema", `{"cups":2}`, ok, ""},
		{"integer valid", "ema", `{"cups":3}`, ok, ""},
		{"integer written 3.0", "ema", `{"cups":3.0}`, ok, ""},
		{"integer fraction", "ema", `{"cups":2.5}`, "cups", "cups must be a whole number from 0 to 20; got 2.5"},
		{"integer wrong type", "ema", `{"cups":true}`, "cups", "cups must be a whole number from 0 to 20; got true"},
		{"integer above", "ema", `{"cups":21}`, "cups", "cups must be a whole number from 0 to 20; got 21"},
		{"integer missing", "ema", `{"stress":1}`, ok, ""},
		{"boolean valid", "context", `{"driving":false}`, ok, ""},
		{"boolean wrong type", "context", `{"driving":"yes"}`, "driving", `driving must be true or false; got "yes"`},
		{"boolean number", "context", `{"driving":1}`, "driving", "driving must be true or false; got 1"},
		{"boolean missing", "context", `{"location":"home"}`, ok, ""},
		{"category valid", "context", `{"location":"work","driving":true}`, ok, ""},
		{"category not a level", "context", `{"location":"gym"}`, "location", `location must be one of home, work; got "gym"`},
		{"category wrong type", "context", `{"location":3}`, "location", "location must be one of home, work; got 3"},
		{"category missing", "context", `{"driving":true}`, ok, ""},
		// Variables are declared per source: an EMA "driving" is undeclared.
		{"other source", "ema", `{"driving":"yes"}`, ok, ""},
		{"undeclared kept", "ema", `{"note":"a long day","risk":1}`, ok, ""},
	}
	for _, c := range cases {
		before, _ := store.Events(context.Background(), "stress-mrt", "p1")
		// A valid event first: the batch is refused as a whole.
		err := ingest(ev("ema", `{"stress":5}`), ev(c.typ, c.data))
		after, _ := store.Events(context.Background(), "stress-mrt", "p1")
		if c.field == ok {
			if err != nil || len(after) != len(before)+2 {
				t.Errorf("%s: %v, %d events stored; want both stored", c.name, err, len(after)-len(before))
			}
			continue
		}
		var ie *trial.InputError
		if !errors.As(err, &ie) || ie.Field != "events[1].data."+c.field || ie.Reason != c.reason {
			t.Errorf("%s: error %v; want events[1].data.%s: %s", c.name, err, c.field, c.reason)
		}
		if len(after) != len(before) {
			t.Errorf("%s: %d events stored from a refused batch", c.name, len(after)-len(before))
		}
	}
}

// TestIngestExampleDictionary: the stress-mrt example's own dictionary
// refuses driving "yes", stress -50 and mood 1000 and stores a valid event.
func TestIngestExampleDictionary(t *testing.T) {
	ingest, store, ev := dictionaryEngine(t, nil, policies.UnknownKeep)
	for _, c := range []struct{ typ, data, field string }{
		{"context", `{"driving":"yes"}`, "events[0].data.driving"},
		{"ema", `{"stress":-50}`, "events[0].data.stress"},
		{"ema", `{"mood":1000,"stress":4}`, "events[0].data.mood"},
		{"context", `{"location":"moon"}`, "events[0].data.location"},
	} {
		err := ingest(ev(c.typ, c.data))
		var ie *trial.InputError
		if !errors.As(err, &ie) || ie.Field != c.field {
			t.Errorf("%s: error %v; want a 422 at %s", c.data, err, c.field)
		}
	}
	if err := ingest(ev("ema", `{"stress":4,"mood":6,"energy":3,"risk":1}`), ev("context", `{"driving":true,"location":"transit","activity":"in_vehicle"}`)); err != nil {
		t.Fatalf("valid events refused: %v", err)
	}
	if evs, _ := store.Events(context.Background(), "stress-mrt", "p1"); len(evs) != 2 {
		t.Errorf("%d events stored; want the 2 valid ones", len(evs))
	}
}

// TestIngestUnknownVariablesRefuse: with unknown_variables: refuse an
// undeclared variable is 422 naming it; declared ones still pass.
func TestIngestUnknownVariablesRefuse(t *testing.T) {
	ingest, store, ev := dictionaryEngine(t, nil, policies.UnknownRefuse)
	err := ingest(ev("ema", `{"stress":4,"sleepiness":3}`))
	var ie *trial.InputError
	if !errors.As(err, &ie) || ie.Field != "events[0].data.sleepiness" || !strings.Contains(ie.Reason, "not a declared ema variable") {
		t.Errorf("undeclared variable: %v; want a 422 at events[0].data.sleepiness", err)
	}
	if err := ingest(ev("ema", `{"stress":4}`), ev("context", `{"driving":false}`)); err != nil {
		t.Errorf("declared variables refused: %v", err)
	}
	if evs, _ := store.Events(context.Background(), "stress-mrt", "p1"); len(evs) != 2 {
		t.Errorf("%d events stored; want 2", len(evs))
	}
}
