package engine_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jitai/jitai/engine"
	"github.com/jitai/jitai/engine/store/memstore"
	"github.com/jitai/jitai/engine/trial"
	"github.com/jitai/jitai/policies"
	"github.com/jitai/jitai/policies/policytest"
)

// timeEngine is an engine on a test clock at t0 with participant p1
// enrolled at t0.
func timeEngine(t *testing.T, skew time.Duration, t0 time.Time) (*engine.Engine, *testClock, *memstore.Store) {
	t.Helper()
	study := policytest.WriteStudy(t, filepath.Join(t.TempDir(), "budget"), budgetStudy, budgetPolicy)
	st := memstore.New()
	clk := newTestClock(t0)
	eng, err := engine.New(engine.Components{Store: st, Studies: []*policies.Study{study}, Now: clk.Now, MaxClockSkew: skew})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := eng.Enroll(context.Background(), "budget", engine.EnrollRequest{ParticipantID: "p1"}); err != nil {
		t.Fatal(err)
	}
	return eng, clk, st
}

// wantTimeError checks that err is an input error naming time whose
// reason says why.
func wantTimeError(t *testing.T, err error, why string) {
	t.Helper()
	var ie *trial.InputError
	if !errors.As(err, &ie) || ie.Field != "time" || !strings.Contains(ie.Error(), why) {
		t.Errorf("error %v, want an input error naming time saying %q", err, why)
	}
}

// TestDecideTimeChecks: by default a decision time more than 5 minutes from
// the engine's clock, either way, is refused naming time; so is a time
// before the participant's enrolment (the enrolment time itself is fine).
// A negative MaxClockSkew turns the skew check off, not the enrolment one.
func TestDecideTimeChecks(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2026, 11, 2, 12, 0, 0, 0, time.UTC)
	eng, clk, _ := timeEngine(t, 0, t0)
	decide := func(at time.Time) error {
		_, err := eng.Decide(ctx, "budget", "p1", engine.DecideRequest{DecisionPoint: "app", Time: at, Context: map[string]any{"stress": 3.0}})
		return err
	}
	clk.Set(t0.Add(time.Hour))
	wantTimeError(t, decide(t0.Add(time.Hour+5*time.Minute+time.Second)), "more than 5m0s from the server's clock (2026-11-02T13:00:00Z)")
	wantTimeError(t, decide(t0.Add(time.Hour-5*time.Minute-time.Second)), "more than 5m0s from the server's clock")
	for _, at := range []time.Time{t0.Add(time.Hour + 5*time.Minute), t0.Add(time.Hour - 5*time.Minute)} {
		if err := decide(at); err != nil {
			t.Errorf("a decision exactly 5 minutes from the clock: %v", err)
		}
	}

	clk.Set(t0)
	wantTimeError(t, decide(t0.Add(-time.Minute)), "time 2026-11-02T11:59:00Z is before the participant's enrolment at 2026-11-02T12:00:00Z")
	if err := decide(t0); err != nil {
		t.Errorf("a decision at the enrolment time: %v", err)
	}

	off, clk, _ := timeEngine(t, -1, t0)
	clk.Set(t0.Add(30 * 24 * time.Hour))
	if _, err := off.Decide(ctx, "budget", "p1", engine.DecideRequest{DecisionPoint: "app", Time: t0.Add(time.Hour)}); err != nil {
		t.Errorf("skew check off: a decision a month from the clock: %v", err)
	}
	_, err := off.Decide(ctx, "budget", "p1", engine.DecideRequest{DecisionPoint: "app", Time: t0.Add(-time.Hour)})
	wantTimeError(t, err, "before the participant's enrolment")
}

// TestSamePointAndTimeIsOneDecision: asked twice at the same point and
// time without an idempotency key, the engine answers the first decision
// again (Replayed) rather than randomising twice; another context at the
// same point and time is an idempotency mismatch; another time is a new
// decision.
func TestSamePointAndTimeIsOneDecision(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2026, 11, 2, 12, 0, 0, 0, time.UTC)
	eng, clk, st := timeEngine(t, 0, t0)
	at := t0.Add(2 * time.Minute)
	clk.Set(at)
	req := engine.DecideRequest{DecisionPoint: "app", Time: at, Context: map[string]any{"stress": 7.0}}
	first, err := eng.Decide(ctx, "budget", "p1", req)
	if err != nil {
		t.Fatal(err)
	}
	again, err := eng.Decide(ctx, "budget", "p1", req)
	if err != nil {
		t.Fatal(err)
	}
	if first.Replayed || !again.Replayed || string(first.Body) != string(again.Body) {
		t.Errorf("asked twice: replayed %v then %v, same body %v; want a fresh decision, then it replayed", first.Replayed, again.Replayed, string(first.Body) == string(again.Body))
	}
	other := req
	other.Context = map[string]any{"stress": 1.0}
	if _, err := eng.Decide(ctx, "budget", "p1", other); !errors.Is(err, engine.ErrIdempotencyMismatch) {
		t.Errorf("another context at the same point and time: %v, want ErrIdempotencyMismatch", err)
	}
	later := req
	later.Time = at.Add(time.Second)
	next, err := eng.Decide(ctx, "budget", "p1", later)
	if err != nil || next.Replayed || next.Record.ID == first.Record.ID {
		t.Errorf("a second later: %v, replayed %v; want a new decision", err, next != nil && next.Replayed)
	}
	recs, err := st.ListDecisions(ctx, trial.DecisionQuery{Study: "budget", Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 {
		t.Errorf("%d records, want 2", len(recs))
	}
	for _, r := range recs {
		if !strings.HasPrefix(r.IdempotencyKey, "t:") || !trial.ValidID(r.IdempotencyKey) {
			t.Errorf("record %s has idempotency key %q, want the derived t:... key", r.ID, r.IdempotencyKey)
		}
	}
}

// TestNoDerivedKeys: with NoDerivedKeys (the simulator), a request without
// an idempotency key is decided afresh each time and leaves no key.
func TestNoDerivedKeys(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2026, 11, 2, 12, 0, 0, 0, time.UTC)
	study := policytest.WriteStudy(t, filepath.Join(t.TempDir(), "budget"), budgetStudy, budgetPolicy)
	st := memstore.New()
	eng, err := engine.New(engine.Components{Store: st, Studies: []*policies.Study{study}, Now: func() time.Time { return t0 }, NoDerivedKeys: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := eng.Enroll(ctx, "budget", engine.EnrollRequest{ParticipantID: "p1"}); err != nil {
		t.Fatal(err)
	}
	req := engine.DecideRequest{DecisionPoint: "app", Time: t0, Context: map[string]any{"stress": 7.0}}
	for range 2 {
		ans, err := eng.Decide(ctx, "budget", "p1", req)
		if err != nil {
			t.Fatal(err)
		}
		if ans.Replayed || ans.Record.IdempotencyKey != "" {
			t.Errorf("replayed %v, key %q; want a fresh decision without a key", ans.Replayed, ans.Record.IdempotencyKey)
		}
	}
	if recs, _ := st.ListDecisions(ctx, trial.DecisionQuery{Study: "budget", Limit: 10}); len(recs) != 2 {
		t.Errorf("%d records, want 2", len(recs))
	}
}

// TestScheduledPointTimeChecks: an app's request for a scheduled point is
// refused, naming time, at a time before the participant's enrolment; its
// decision is the point's one record, keyed by the point (schedule.PointKey),
// never by the derived key of point and time.
func TestScheduledPointTimeChecks(t *testing.T) {
	ctx := context.Background()
	study := clockStudy(t)
	day := func(d, h, m int) time.Time { return time.Date(2026, 3, 2+d, h, m, 0, 0, time.UTC) } // Monday
	clk := newTestClock(day(0, 9, 0))
	eng, err := engine.New(engine.Components{Store: memstore.New(), Studies: []*policies.Study{study}, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := eng.Enroll(ctx, study.Config.ID, engine.EnrollRequest{ParticipantID: "a", Timezone: "Europe/London"}); err != nil {
		t.Fatal(err)
	}
	ask := func(at time.Time) (*engine.Answer, error) {
		clk.Set(at)
		return eng.Decide(ctx, study.Config.ID, "a", engine.DecideRequest{DecisionPoint: "morning", Time: at})
	}
	_, err = ask(day(0, 8, 35))
	wantTimeError(t, err, "before the participant's enrolment at 2026-03-02T09:00:00Z")
	first, err := ask(day(1, 8, 35))
	if err != nil {
		t.Fatal(err)
	}
	if first.Record == nil || strings.HasPrefix(first.Record.IdempotencyKey, "t:") || first.Record.IdempotencyKey == "" {
		t.Fatalf("the scheduled point's record: %+v, want it keyed by the point", first.Record)
	}
	again, err := ask(day(1, 8, 40))
	if err != nil || !again.Replayed || string(again.Body) != string(first.Body) {
		t.Fatalf("asked again in the window: %v, replayed %v; want the point's one decision", err, again != nil && again.Replayed)
	}
}
