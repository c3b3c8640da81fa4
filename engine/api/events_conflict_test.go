package api_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jitai/jitai/engine/trial"
)

// storedEvents lists a participant's stored events.
func (e *env) storedEvents(study, p string) []trial.Event {
	e.t.Helper()
	evs, err := e.store.Events(e.t.Context(), study, p)
	if err != nil {
		e.t.Fatalf("Events: %v", err)
	}
	return evs
}

// TestEventResentUnchanged: an event sent again with the same content,
// however its JSON is spelt, is a duplicate (202).
func TestEventResentUnchanged(t *testing.T) {
	e := newEnv(t)
	e.enrol(stressMRT, "p-dup")
	e.clock.Set(at(0, 13, 5))
	ev := eventDoc{ID: "ev-1", Type: "ema", Time: rfc(at(0, 13, 0)), Data: map[string]any{"stress": 6, "mood": 5}}
	if res := e.postEvents(stressMRT, "p-dup", ev); *res.Accepted != 1 || *res.Duplicates != 0 {
		t.Fatalf("first send: accepted %d, duplicates %d; want 1, 0", *res.Accepted, *res.Duplicates)
	}
	if res := e.postEvents(stressMRT, "p-dup", ev); *res.Accepted != 0 || *res.Duplicates != 1 {
		t.Fatalf("resend: accepted %d, duplicates %d; want 0, 1", *res.Accepted, *res.Duplicates)
	}
	// The same event, its data re-spelt and its time in another zone.
	body := fmt.Sprintf(`{"events":[{"id":"ev-1","type":"ema","time":%q,"data":{ "mood" : 5.0, "stress" : 6 }}]}`,
		at(0, 13, 0).In(time.FixedZone("", -5*3600)).Format(time.RFC3339))
	r := e.do(req{Method: "POST", Path: eventsPath(stressMRT, "p-dup"), Body: raw(body)}).expect(t, http.StatusAccepted)
	var res eventsResult
	r.decode(t, &res)
	if res.Accepted == nil || res.Duplicates == nil || *res.Accepted != 0 || *res.Duplicates != 1 {
		t.Fatalf("re-spelt resend: %s; want accepted 0, duplicates 1", r.Body)
	}
	if evs := e.storedEvents(stressMRT, "p-dup"); len(evs) != 1 {
		t.Fatalf("%d events stored, want 1", len(evs))
	}
}

// TestEventIDConflict: an event id sent again with another time, type or
// data is refused (409 naming the event), and nothing of that request is
// stored.
func TestEventIDConflict(t *testing.T) {
	e := newEnv(t)
	e.enrol(stressMRT, "p-c")
	e.clock.Set(at(0, 13, 5))
	first := eventDoc{ID: "ev-1", Type: "ema", Time: rfc(at(0, 13, 0)), Data: map[string]any{"stress": 6, "mood": 5}}
	e.postEvents(stressMRT, "p-c", first)
	stored := e.storedEvents(stressMRT, "p-c")
	fresh := eventDoc{ID: "ev-2", Type: "ema", Time: rfc(at(0, 13, 1)), Data: map[string]any{"stress": 2}}
	cases := []struct {
		name  string
		evs   []eventDoc
		field string
	}{
		{"OtherData", []eventDoc{{ID: "ev-1", Type: "ema", Time: first.Time, Data: map[string]any{"stress": 7, "mood": 5}}}, "events[0].id"},
		{"OtherTime", []eventDoc{{ID: "ev-1", Type: "ema", Time: rfc(at(0, 13, 2)), Data: first.Data}}, "events[0].id"},
		{"OtherType", []eventDoc{{ID: "ev-1", Type: "context", Time: first.Time, Data: map[string]any{"location": "home"}}}, "events[0].id"},
		{"AfterANewEvent", []eventDoc{fresh, {ID: "ev-1", Type: "ema", Time: first.Time, Data: map[string]any{"stress": 1}}}, "events[1].id"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.do(req{Method: "POST", Path: eventsPath(stressMRT, "p-c"), Body: map[string]any{"events": c.evs}})
			p := checkProblem(t, r, http.StatusConflict, c.field)
			if p.Type != "urn:jitai:problem:event-id-conflict" || !strings.Contains(p.Detail, `"ev-1"`) {
				t.Errorf("problem %+v: want type event-id-conflict and a detail naming ev-1", p)
			}
			got := e.storedEvents(stressMRT, "p-c")
			if len(got) != 1 || !trial.SameEventContent(&got[0], &stored[0]) || !got[0].ReceivedAt.Equal(stored[0].ReceivedAt) {
				t.Errorf("stored events after the conflict: %+v; want only the first, unchanged", got)
			}
		})
	}
	// ev-2 was not stored with the refused request: it is new now.
	if res := e.postEvents(stressMRT, "p-c", fresh); *res.Accepted != 1 {
		t.Errorf("ev-2 after the conflict: accepted %d, want 1", *res.Accepted)
	}
}

// TestEventsAfterWithdrawal: a withdrawn participant's events are refused
// (409 withdrawn) and not stored.
func TestEventsAfterWithdrawal(t *testing.T) {
	e := newEnv(t)
	e.enrol(stressMRT, "p-w")
	e.clock.Set(at(0, 13, 5))
	e.postEvents(stressMRT, "p-w", eventDoc{ID: "ev-1", Type: "ema", Time: rfc(at(0, 13, 0)), Data: map[string]any{"stress": 6}})
	e.do(req{Method: "POST", Path: participantsPath(stressMRT) + "/p-w/withdraw"}).expect(t, http.StatusOK)
	for _, ev := range []eventDoc{
		{ID: "ev-2", Type: "ema", Time: rfc(at(0, 13, 1)), Data: map[string]any{"stress": 3}},
		{ID: "ev-1", Type: "ema", Time: rfc(at(0, 13, 0)), Data: map[string]any{"stress": 6}}, // a resend too
	} {
		r := e.do(req{Method: "POST", Path: eventsPath(stressMRT, "p-w"), Body: map[string]any{"events": []eventDoc{ev}}})
		if p := checkProblem(t, r, http.StatusConflict, "participant"); p.Type != "urn:jitai:problem:withdrawn" {
			t.Errorf("%s: problem type %q, want withdrawn", ev.ID, p.Type)
		}
	}
	if evs := e.storedEvents(stressMRT, "p-w"); len(evs) != 1 || evs[0].ID != "ev-1" {
		t.Errorf("stored events after withdrawal: %+v; want only ev-1", evs)
	}
}
