package api_test

import (
	"context"
	"strings"
	"testing"
)

// TestBadInputWritesNothing: every malformed or invalid request is answered
// with a 4xx problem naming the offending field, and none of them writes
// anything to the store.
func TestBadInputWritesNothing(t *testing.T) {
	e := newEnv(t)
	const study = stressMRT
	p, other, noneID := badInputSetup(t, e, study)
	cases := badInputCases(study, p, other, noneID)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := c.method
			if m == "" {
				m = "POST"
			}
			var body any
			if m == "POST" {
				body = c.body
			}
			r := e.do(req{Method: m, Path: c.path, Body: body, Header: c.header})
			if r.Status < 400 || r.Status > 499 {
				t.Fatalf("status %d, want %d; body: %.300s", r.Status, c.status, r.Body)
			}
			checkProblem(t, r, c.status, c.field)
		})
	}

	checkOnlySetupWritten(t, e, study, p, noneID)
}

// badInputSetup writes what bad requests must leave alone: two
// participants, one event, one decision (none: quiet hours); it returns the
// participants and the decision's id, with the clock at 21:30, the time of
// the bad requests.
func badInputSetup(t *testing.T, e *env, study string) (p, other, noneID string) {
	t.Helper()
	p, other = "p-bad-01", "p-bad-02"
	e.clock.Set(at(0, 21, 0)) // enrolled before the decisions
	e.enrol(study, p)
	e.enrol(study, other)
	e.postEvents(study, p, eventDoc{ID: "ev-ok-1", Type: "ema", Time: rfc(at(0, 21, 0)), Data: map[string]any{"stress": 4}})
	_, none := e.decide(study, p, "on_demand", at(0, 23, 0), nil)
	if none.Action != "none" {
		t.Fatalf("setup decision at 23:00 is %s, want none (quiet hours)", none.Action)
	}
	e.clock.Set(at(0, 21, 30))
	return p, other, none.DecisionID
}

type badInputCase struct {
	name   string
	method string
	path   string
	body   raw
	header map[string]string
	status int
	field  string // "" when the problem need not name a field
}

// badInputCases are requests that must be refused with a 4xx problem.
func badInputCases(study, p, other, noneID string) []badInputCase {
	D := decisionsPath(study, p)
	E := eventsPath(study, p)
	P := participantsPath(study)
	okTime := rfc(at(0, 21, 30))
	okDecide := `{"decision_point":"evening","time":"` + okTime + `"}`
	ev := func(inner string) raw { return raw(`{"events":[` + inner + `]}`) }
	ema := func(id string) string {
		return `{"id":"` + id + `","type":"ema","time":"` + okTime + `","data":{"stress":5}}`
	}
	phq := func(items string) raw {
		return ev(`{"id":"ev-phq","type":"assessment","time":"` + okTime + `","data":{"instrument":"phq9","items":` + items + `}}`)
	}
	big := `{"events":[{"id":"ev-big","type":"ema","time":"` + okTime + `","data":{"note":"` + strings.Repeat("x", 1<<20) + `"}}]}`
	bigDecide := `{"decision_point":"evening","time":"` + okTime + `","context":{"note":"` + strings.Repeat("y", 1<<20) + `"}}`

	return []badInputCase{
		// Syntax.
		{name: "decide malformed JSON", path: D, body: `{"decision_point": "evening", "time": `, status: 400},
		{name: "decide not an object", path: D, body: `[1,2,3]`, status: 400},
		{name: "decide empty body", path: D, body: ``, status: 400},
		{name: "decide trailing garbage", path: D, body: raw(okDecide + ` xyz`), status: 400},
		{name: "decide two objects", path: D, body: raw(okDecide + okDecide), status: 400},
		{name: "decide trailing brace", path: D, body: raw(okDecide + `}`), status: 400},
		{name: "decide trailing bracket", path: D, body: raw(okDecide + `]`), status: 400},
		{name: "events malformed JSON", path: E, body: `{"events":[{"id":"e1",}]}`, status: 400},
		{name: "events trailing garbage", path: E, body: raw(string(ev(ema("ev-new-1"))) + `,`), status: 400},
		{name: "events trailing brace", path: E, body: raw(string(ev(ema("ev-new-1"))) + `}`), status: 400},
		{name: "enrol malformed JSON", path: P, body: `{"participant_id":`, status: 400},

		// Types.
		{name: "decision_point a number", path: D, body: raw(`{"decision_point":5,"time":"` + okTime + `"}`), status: 400, field: "decision_point"},
		{name: "time a number", path: D, body: `{"decision_point":"evening","time":1795000000}`, status: 400, field: "time"},
		{name: "context an array", path: D, body: raw(`{"decision_point":"evening","time":"` + okTime + `","context":[]}`), status: 400, field: "context"},
		{name: "events an object", path: E, body: `{"events":{}}`, status: 400, field: "events"},
		{name: "events a string", path: E, body: `{"events":"ema"}`, status: 400, field: "events"},
		{name: "participant_id a number", path: P, body: `{"participant_id":42}`, status: 400, field: "participant_id"},

		// Inside an event, the field is the event's path (events[i].name),
		// so that an app sending many events knows which one is wrong.
		{name: "event id a number", path: E, body: ev(`{"id":5,"type":"ema","time":"` + okTime + `","data":{"stress":5}}`), status: 400, field: "events[0].id"},
		{name: "second event type a number", path: E, body: ev(ema("ev-new-1") + `,{"id":"ev-new-2","type":7,"time":"` + okTime + `","data":{"stress":5}}`), status: 400, field: "events[1].type"},
		{name: "event unknown field", path: E, body: ev(`{"id":"ev-new-1","type":"ema","time":"` + okTime + `","data":{"stress":5},"mood":3}`), status: 400, field: "events[0].mood"},

		// Unknown fields.
		{name: "decide unknown field", path: D, body: raw(`{"decision_point":"evening","time":"` + okTime + `","urgent":true}`), status: 400, field: "urgent"},
		{name: "enrol unknown field", path: P, body: `{"participant_id":"p-new","email":"a@b.c"}`, status: 400, field: "email"},

		// Unknown study, participant, route targets.
		{name: "decide unknown study", path: decisionsPath("no-such-study", p), body: raw(okDecide), status: 404, field: "study"},
		{name: "events unknown study", path: eventsPath("no-such-study", p), body: ev(ema("ev-new-1")), status: 404, field: "study"},
		{name: "enrol unknown study", path: participantsPath("no-such-study"), body: `{"participant_id":"p-new"}`, status: 404, field: "study"},
		{name: "list unknown study", method: "GET", path: "/v1/studies/no-such-study/decisions", status: 404, field: "study"},
		{name: "decide unknown participant", path: decisionsPath(study, "p-nobody"), body: raw(okDecide), status: 404, field: "participant"},
		{name: "events unknown participant", path: eventsPath(study, "p-nobody"), body: ev(ema("ev-new-1")), status: 404, field: "participant"},
		{name: "get unknown participant", method: "GET", path: P + "/p-nobody", status: 404, field: "participant"},

		// Missing or invalid fields of a decision request.
		{name: "no decision_point", path: D, body: raw(`{"time":"` + okTime + `"}`), status: 422, field: "decision_point"},
		{name: "unknown decision_point", path: D, body: raw(`{"decision_point":"midnight","time":"` + okTime + `"}`), status: 422, field: "decision_point"},
		{name: "no time", path: D, body: `{"decision_point":"evening"}`, status: 422, field: "time"},
		{name: "time without T", path: D, body: `{"decision_point":"evening","time":"2026-11-21 14:00"}`, status: 422, field: "time"},
		{name: "time yesterday", path: D, body: `{"decision_point":"evening","time":"yesterday"}`, status: 422, field: "time"},
		{name: "time without zone", path: D, body: `{"decision_point":"evening","time":"2026-11-21T14:00:00"}`, status: 422, field: "time"},
		{name: "context nested object", path: D, body: raw(`{"decision_point":"evening","time":"` + okTime + `","context":{"location":{"lat":51.5}}}`), status: 422, field: "context.location"},
		{name: "context bad name", path: D, body: raw(`{"decision_point":"evening","time":"` + okTime + `","context":{"Driving":true}}`), status: 422, field: "context.Driving"},
		{name: "context free text", path: D, body: raw(`{"decision_point":"evening","time":"` + okTime + `","context":{"note":"` + strings.Repeat("z", 65) + `"}}`), status: 422, field: "context.note"},
		{name: "bad Idempotency-Key", path: D, body: raw(okDecide), header: map[string]string{"Idempotency-Key": "not a key!"}, status: 422, field: "Idempotency-Key"},
		{name: "long Idempotency-Key", path: D, body: raw(okDecide), header: map[string]string{"Idempotency-Key": strings.Repeat("k", 129)}, status: 422, field: "Idempotency-Key"},

		// Missing or invalid fields of events.
		{name: "no events", path: E, body: `{}`, status: 422, field: "events"},
		{name: "empty events", path: E, body: `{"events":[]}`, status: 422, field: "events"},
		{name: "event without id", path: E, body: ev(`{"type":"ema","time":"` + okTime + `","data":{"stress":5}}`), status: 422, field: "events[0].id"},
		{name: "event with bad id", path: E, body: ev(`{"id":"a b","type":"ema","time":"` + okTime + `","data":{"stress":5}}`), status: 422, field: "events[0].id"},
		{name: "event without time", path: E, body: ev(`{"id":"ev-new-1","type":"ema","data":{"stress":5}}`), status: 422, field: "events[0].time"},
		{name: "event time without T", path: E, body: ev(`{"id":"ev-new-1","type":"ema","time":"2026-11-21 14:00","data":{"stress":5}}`), status: 422, field: "events[0].time"},
		{name: "event time yesterday", path: E, body: ev(`{"id":"ev-new-1","type":"ema","time":"yesterday","data":{"stress":5}}`), status: 422, field: "events[0].time"},
		{name: "event time far future", path: E, body: ev(`{"id":"ev-new-1","type":"ema","time":"` + rfc(at(3, 0, 0)) + `","data":{"stress":5}}`), status: 422, field: "events[0].time"},
		{name: "event without type", path: E, body: ev(`{"id":"ev-new-1","time":"` + okTime + `","data":{"stress":5}}`), status: 422, field: "events[0].type"},
		{name: "unknown event type", path: E, body: ev(`{"id":"ev-new-1","type":"mood","time":"` + okTime + `","data":{"stress":5}}`), status: 422, field: "events[0].type"},
		{name: "event without data", path: E, body: ev(`{"id":"ev-new-1","type":"ema","time":"` + okTime + `"}`), status: 422, field: "events[0].data"},
		{name: "ema empty data", path: E, body: ev(`{"id":"ev-new-1","type":"ema","time":"` + okTime + `","data":{}}`), status: 422, field: "events[0].data"},
		{name: "ema bad variable name", path: E, body: ev(`{"id":"ev-new-1","type":"ema","time":"` + okTime + `","data":{"Stress":5}}`), status: 422, field: "events[0].data.Stress"},
		{name: "ema nested value", path: E, body: ev(`{"id":"ev-new-1","type":"ema","time":"` + okTime + `","data":{"stress":{"v":5}}}`), status: 422, field: "events[0].data.stress"},
		{name: "second event invalid", path: E, body: ev(ema("ev-new-1") + `,{"id":"ev-new-2","type":"nope","time":"` + okTime + `","data":{"stress":5}}`), status: 422, field: "events[1].type"},
		{name: "duplicate id in request", path: E, body: ev(ema("ev-new-1") + `,` + ema("ev-new-1")), status: 422, field: "events[1].id"},
		{name: "phq9 too few items", path: E, body: phq(`[0,0,0,0,0,0,0,0]`), status: 422, field: "events[0].data"},
		{name: "phq9 too many items", path: E, body: phq(`[0,0,0,0,0,0,0,0,0,0]`), status: 422, field: "events[0].data"},
		{name: "phq9 item above 3", path: E, body: phq(`[0,0,0,0,0,0,0,0,4]`), status: 422, field: "events[0].data"},
		{name: "phq9 negative item", path: E, body: phq(`[0,0,-1,0,0,0,0,0,0]`), status: 422, field: "events[0].data"},
		{name: "phq9 items as strings", path: E, body: phq(`["0","0","0","0","0","0","0","0","1"]`), status: 422, field: "events[0].data"},
		{name: "unknown instrument", path: E, body: ev(`{"id":"ev-phq","type":"assessment","time":"` + okTime + `","data":{"instrument":"phq10","items":[0,0,0,0,0,0,0,0,0]}}`), status: 422, field: "events[0].data"},
		{name: "engagement unknown decision", path: E, body: ev(`{"id":"ev-eng","type":"engagement","time":"` + okTime + `","data":{"decision_id":"01KAAAAAAAAAAAAAAAAAAAAAAA","status":"opened"}}`), status: 422, field: "events[0].data.decision_id"},
		{name: "engagement on a none decision", path: E, body: ev(`{"id":"ev-eng","type":"engagement","time":"` + okTime + `","data":{"decision_id":"` + noneID + `","status":"opened"}}`), status: 422, field: "events[0].data.decision_id"},
		{name: "engagement on another participant's decision", path: eventsPath(study, other), body: ev(`{"id":"ev-eng","type":"engagement","time":"` + okTime + `","data":{"decision_id":"` + noneID + `","status":"opened"}}`), status: 422, field: "events[0].data.decision_id"},
		{name: "engagement bad status", path: E, body: ev(`{"id":"ev-eng","type":"engagement","time":"` + okTime + `","data":{"decision_id":"` + noneID + `","status":"loved"}}`), status: 422, field: "events[0].data.status"},
		{name: "engagement rating out of range", path: E, body: ev(`{"id":"ev-eng","type":"engagement","time":"` + okTime + `","data":{"decision_id":"` + noneID + `","status":"rated","rating":11}}`), status: 422, field: "events[0].data.rating"},
		{name: "preference empty", path: E, body: ev(`{"id":"ev-pref","type":"preference","time":"` + okTime + `","data":{}}`), status: 422, field: "events[0].data"},
		{name: "preference bad snooze_until", path: E, body: ev(`{"id":"ev-pref","type":"preference","time":"` + okTime + `","data":{"snooze_until":"tomorrow"}}`), status: 422, field: "events[0].data.snooze_until"},
		{name: "preference bad quiet hours", path: E, body: ev(`{"id":"ev-pref","type":"preference","time":"` + okTime + `","data":{"quiet_hours":{"start":"25:00","end":"07:00"}}}`), status: 422, field: "events[0].data.quiet_hours.start"},

		// Enrolment.
		{name: "enrol without id", path: P, body: `{}`, status: 422, field: "participant_id"},
		{name: "enrol e-mail as id", path: P, body: `{"participant_id":"alice@example.com"}`, status: 422, field: "participant_id"},
		{name: "enrol bad timezone", path: P, body: `{"participant_id":"p-new","timezone":"Mars/Olympus_Mons"}`, status: 422, field: "timezone"},
		{name: "enrol undeclared stratum", path: P, body: `{"participant_id":"p-new","strata":{"site":"a"}}`, status: 422, field: "strata.site"},

		// Listing.
		{name: "list bad limit", method: "GET", path: "/v1/studies/" + study + "/decisions?limit=0", status: 422, field: "limit"},
		{name: "list bad cursor", method: "GET", path: "/v1/studies/" + study + "/decisions?cursor=%21%21", status: 422, field: "cursor"},
		{name: "list bad since", method: "GET", path: "/v1/studies/" + study + "/decisions?since=yesterday", status: 422, field: "since"},

		// Times no store or RFC 3339 expiry can hold (9999-12-31 was a 500).
		{name: "decide in year 9999", path: D, body: `{"decision_point":"evening","time":"9999-12-31T23:59:59Z"}`, status: 422, field: "time"},
		{name: "decide in year 1500", path: D, body: `{"decision_point":"evening","time":"1500-01-01T00:00:00Z"}`, status: 422, field: "time"},
		{name: "event in year 1500", path: E, body: ev(`{"id":"ev-old","type":"ema","time":"1500-01-01T00:00:00Z","data":{"stress":5}}`), status: 422, field: "events[0].time"},

		// Size and media type.
		{name: "events body over 1 MiB", path: E, body: raw(big), status: 413},
		{name: "decide body over 1 MiB", path: D, body: raw(bigDecide), status: 413},
		{name: "decide text/plain", path: D, body: raw(okDecide), header: map[string]string{"Content-Type": "text/plain"}, status: 415, field: "Content-Type"},
		{name: "events text/plain", path: E, body: ev(ema("ev-new-1")), header: map[string]string{"Content-Type": "text/plain; charset=utf-8"}, status: 415, field: "Content-Type"},
		{name: "enrol form", path: P, body: `participant_id=p-new`, header: map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, status: 415, field: "Content-Type"},
	}
}

// checkOnlySetupWritten: the store holds exactly what the setup wrote, and
// nothing else.
func checkOnlySetupWritten(t *testing.T, e *env, study, p, noneID string) {
	t.Helper()
	ctx := context.Background()
	recs := e.listDecisions(study, "")
	if len(recs) != 1 || recs[0].DecisionID != noneID {
		t.Errorf("store holds %d decisions, want only the setup's %s", len(recs), noneID)
	}
	evs, err := e.store.Events(ctx, study, p)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 || evs[0].ID != "ev-ok-1" {
		var ids []string
		for _, x := range evs {
			ids = append(ids, x.ID)
		}
		t.Errorf("store holds events %v, want only ev-ok-1", ids)
	}
	for _, s := range []string{stressMRT, moodMOST} {
		ps, err := e.store.Participants(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		want := 0
		if s == study {
			want = 2
		}
		if len(ps) != want {
			var ids []string
			for _, x := range ps {
				ids = append(ids, x.ID)
			}
			t.Errorf("study %s has participants %v, want %d", s, ids, want)
		}
	}
	if recs := e.listDecisions(moodMOST, ""); len(recs) != 0 {
		t.Errorf("mood-most holds %d decisions, want 0", len(recs))
	}
	// The participant's state is unchanged: the next decision sees no prompt
	// and the stress reported in setup.
	snap, err := e.store.Snapshot(ctx, study, p, "")
	if err != nil {
		t.Fatal(err)
	}
	if n := len(snap.State.EMA); n != 1 || snap.State.Assessments != nil || snap.State.Preferences.QuietHours != nil || len(snap.State.Engagement) != 0 {
		t.Errorf("state changed by refused requests: %+v", snap.State)
	}
}
