package api_test

import (
	"bytes"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestDecisionTimeChecks: the app's time must be within the clock skew
// (default 5 minutes) of the server's clock and not before the
// participant's enrolment; both are 422 problems naming time.
func TestDecisionTimeChecks(t *testing.T) {
	e := newEnv(t)
	const study, p = stressMRT, "p-time-01"
	dp := appPoint(e.study(study)) // on_demand: a scheduled point is decided at its instant
	e.clock.Set(at(0, 8, 0))
	e.enrol(study, p)
	post := func(when time.Time) response {
		return e.do(req{Method: "POST", Path: decisionsPath(study, p), Body: map[string]any{"decision_point": dp, "time": rfc(when)}})
	}

	e.clock.Set(at(0, 10, 0))
	for _, when := range []time.Time{at(0, 10, 6), at(0, 9, 54)} {
		pr := checkProblem(t, post(when), http.StatusUnprocessableEntity, "time")
		if !strings.Contains(pr.Detail, "is more than 5m0s from the server's clock ("+rfc(at(0, 10, 0))+")") {
			t.Errorf("a time 6 minutes from the clock: detail %q", pr.Detail)
		}
	}

	e.clock.Set(at(0, 8, 0))
	pr := checkProblem(t, post(at(0, 7, 58)), http.StatusUnprocessableEntity, "time")
	if !strings.Contains(pr.Detail, "time "+rfc(at(0, 7, 58))+" is before the participant's enrolment at "+rfc(at(0, 8, 0))) {
		t.Errorf("a time before the enrolment: detail %q", pr.Detail)
	}
	if recs := e.listDecisions(study, p); len(recs) != 0 {
		t.Errorf("%d records after refused times, want none", len(recs))
	}
	post(at(0, 8, 0)).expect(t, http.StatusOK) // at the enrolment itself
}

// TestSamePointAndTimeWithoutKey: asked twice at the same app decision
// point and time without an Idempotency-Key, the server answers the same
// decision (marked Idempotent-Replayed) instead of randomising twice.
func TestSamePointAndTimeWithoutKey(t *testing.T) {
	e := newEnv(t)
	const study, p = stressMRT, "p-twice-01"
	e.enrol(study, p)
	when := at(0, 14, 30)
	e.clock.Set(when)
	body := map[string]any{"decision_point": "on_demand", "time": rfc(when), "context": map[string]any{"location": "home"}}
	send := func(b any) response {
		return e.do(req{Method: "POST", Path: decisionsPath(study, p), Body: b})
	}
	r1 := send(body).expect(t, http.StatusOK)
	r2 := send(body).expect(t, http.StatusOK)
	var d1, d2 decisionDoc
	r1.decode(t, &d1)
	r2.decode(t, &d2)
	if d1.DecisionID == "" || d1.DecisionID != d2.DecisionID || !bytes.Equal(r1.Body, r2.Body) {
		t.Errorf("asked twice: decisions %s and %s, want the same", d1.DecisionID, d2.DecisionID)
	}
	if r1.Header.Get("Idempotent-Replayed") != "" || r2.Header.Get("Idempotent-Replayed") != "true" {
		t.Errorf("Idempotent-Replayed %q then %q, want none then true", r1.Header.Get("Idempotent-Replayed"), r2.Header.Get("Idempotent-Replayed"))
	}
	// Another context at the same point and time is not the same request.
	other := map[string]any{"decision_point": "on_demand", "time": rfc(when), "context": map[string]any{"location": "work"}}
	checkProblem(t, send(other), http.StatusUnprocessableEntity, "Idempotency-Key")
	// Another point at the same time is another decision (afternoon, the
	// scheduled point at 14:30: its one decision, keyed by the point).
	var d3 decisionDoc
	send(map[string]any{"decision_point": "afternoon", "time": rfc(when)}).expect(t, http.StatusOK).decode(t, &d3)
	if d3.DecisionID == d1.DecisionID {
		t.Errorf("another point at the same time answered the same decision")
	}
	if recs := e.listDecisions(study, p); len(recs) != 2 {
		t.Errorf("%d records, want 2", len(recs))
	}
}
