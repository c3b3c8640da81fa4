package api_test

import (
	"strings"
	"testing"
)

// TestHostileInputLimits: every limit on untrusted input answers a 4xx
// problem naming the field (the body-size and events-per-request limits
// are in TestBadInputWritesNothing).
func TestHostileInputLimits(t *testing.T) {
	e := newEnv(t, quietLogs)
	const study = stressMRT
	const p = "p-limits-01"
	e.clock.Set(at(0, 7, 30)) // enrolled at okTime, the time of the requests
	e.enrol(study, p)
	D := decisionsPath(study, p)
	E := eventsPath(study, p)
	P := participantsPath(study)
	okTime := rfc(at(0, 7, 30))
	decide := func(ctx string) raw {
		return raw(`{"decision_point":"morning","time":"` + okTime + `","context":` + ctx + `}`)
	}
	event := func(typ, data string) raw {
		return raw(`{"events":[{"id":"ev-l-1","type":"` + typ + `","time":"` + okTime + `","data":` + data + `}]}`)
	}
	deep := strings.Repeat("[", 17) + strings.Repeat("]", 17)
	cases := []struct {
		name   string
		path   string
		body   raw
		status int
		field  string
	}{
		{"nesting in context", D, decide(`{"x":` + deep + `}`), 400, "context"},
		{"nesting in events", E, raw(`{"events":` + deep + `}`), 400, "events"},
		{"nesting at the top", P, raw(deep), 400, ""},
		{"nesting in a string is not nesting", P, raw(`{"participant_id":"p-[[[[[[[[[[[[[[[[[[[[[[[[[[","x":1}`), 400, "x"},
		{"context number too big", D, decide(`{"steps":1e10}`), 422, "context.steps"},
		{"context number overflows", D, decide(`{"steps":1e999}`), 422, "context.steps"},
		{"context string too long", D, decide(`{"place":"` + strings.Repeat("x", 65) + `"}`), 422, "context.place"},
		{"decision point too long", D, raw(`{"decision_point":"` + strings.Repeat("m", 65) + `","time":"` + okTime + `"}`), 422, "decision_point"},
		{"ema number too big", E, event("ema", `{"stress":-2e9}`), 422, "events[0].data.stress"},
		{"ema string too long", E, event("ema", `{"note":"`+strings.Repeat("x", 4097)+`"}`), 422, "events[0].data.note"},
		{"event type too long", E, event(strings.Repeat("t", 65), `{"a":1}`), 422, "events[0].type"},
		{"rating out of range", E, event("engagement", `{"decision_id":"d-1","status":"rated","rating":11}`), 422, "events[0].data.rating"},
		{"decision id too long", E, event("engagement", `{"decision_id":"`+strings.Repeat("d", 129)+`","status":"opened"}`), 422, "events[0].data.decision_id"},
		{"snooze minutes out of range", E, event("preference", `{"snooze_minutes":43201}`), 422, "events[0].data.snooze_minutes"},
		{"snooze minutes negative", E, event("preference", `{"snooze_minutes":-1}`), 422, "events[0].data.snooze_minutes"},
		{"instrument too long", E, event("assessment", `{"instrument":"`+strings.Repeat("i", 65)+`","items":[]}`), 422, "events[0].data.instrument"},
		{"participant id too long", P, raw(`{"participant_id":"` + strings.Repeat("p", 129) + `"}`), 422, "participant_id"},
		{"time zone too long", P, raw(`{"participant_id":"p-l-2","timezone":"` + strings.Repeat("Z", 65) + `"}`), 422, "timezone"},
		{"stratum value too long", P, raw(`{"participant_id":"p-l-3","strata":{"site":"` + strings.Repeat("s", 65) + `"}}`), 422, "strata.site"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.do(req{Method: "POST", Path: c.path, Body: c.body})
			checkProblem(t, r, c.status, c.field)
			if len(r.Body) > 2048 {
				t.Errorf("problem is %d bytes: it echoes the hostile input", len(r.Body))
			}
		})
	}
	// The legitimate limits still pass: 16 levels, 64-character context
	// strings, 4096-byte event strings.
	ok := e.do(req{Method: "POST", Path: E, Body: event("ema", `{"note":"`+strings.Repeat("x", 4096)+`","count":1e9}`)})
	ok.expect(t, 202)
}

// TestCheckDepthNamesTopLevelMember: the too-deep problem names the member
// of the top-level object under which the nesting went too deep, and
// nothing when the body is not an object.
func TestCheckDepthNamesTopLevelMember(t *testing.T) {
	e := newEnv(t, quietLogs)
	deep := strings.Repeat("[", 20) + strings.Repeat("]", 20)
	for _, c := range []struct {
		body  string
		field string
	}{
		{`{"participant_id":"p-1","strata":{"a":` + deep + `}}`, "strata"},
		{`{"participant_id":"p-\"1\\\\","timezone":` + deep + `}`, "timezone"},
		{`["participant_id",` + deep + `]`, ""},
	} {
		r := e.do(req{Method: "POST", Path: participantsPath(stressMRT), Body: raw(c.body)})
		p := checkProblem(t, r, 400, c.field)
		if p.Type != "urn:jitai:problem:too-deep" || p.Field != c.field {
			t.Errorf("%s: problem %+v, want too-deep naming %q", c.body, p, c.field)
		}
	}
}
