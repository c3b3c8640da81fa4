package export_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"testing/cryptotest"
	"time"

	"github.com/jitai/jitai/engine/trial"

	"go.uber.org/zap"

	"github.com/jitai/jitai/engine"
	"github.com/jitai/jitai/engine/store/sqlite"
	"github.com/jitai/jitai/interventions"
	"github.com/jitai/jitai/policies"
)

const (
	examples  = "../../policies/examples"
	stressMRT = "stress-mrt"
	moodMOST  = "mood-most"
)

var london = func() *time.Location {
	l, err := time.LoadLocation("Europe/London")
	if err != nil {
		panic(err)
	}
	return l
}()

// day0 is the fixture's first study day: a Monday in March, when
// Europe/London is UTC+0, safely in the past so that exports made with the
// real clock see every outcome window closed.
var day0 = time.Date(2026, time.March, 2, 0, 0, 0, 0, london)

func at(day, hh, mm int) time.Time {
	return time.Date(day0.Year(), day0.Month(), day0.Day()+day, hh, mm, 0, 0, london)
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

var (
	studiesOnce sync.Once
	studiesVal  []*policies.Study
	studiesErr  error
)

func loadStudies(t testing.TB) map[string]*policies.Study {
	t.Helper()
	studiesOnce.Do(func() {
		cat, err := interventions.Embedded()
		if err != nil {
			studiesErr = err
			return
		}
		studiesVal, studiesErr = policies.LoadStudies(context.Background(), examples, cat)
	})
	if studiesErr != nil {
		t.Fatalf("loading the example studies: %v", studiesErr)
	}
	m := map[string]*policies.Study{}
	for _, s := range studiesVal {
		m[s.Config.ID] = s
	}
	return m
}

// want is what the fixture arranged for one decision's outcomes.
type want struct {
	stress any // stress-mrt stress_90m: float64 or nil (missing)
	opened int64
	mood   any   // mood-most mood_3h: float64 or nil
	done   int64 // mood-most completed_2h
}

// fixture is a small trial run through the real engine on a real SQLite
// store: participants of both example studies, EMA, context, engagement and
// assessment events, and decisions at the scheduled points.
type fixture struct {
	store   *sqlite.Store
	eng     *engine.Engine
	clock   *clock
	studies map[string]*policies.Study
	want    map[string]want // by decision id
	order   map[string][]string
	end     time.Time // after every event and outcome window
	lastDec time.Time
}

// newFixture builds the fixture. Decision ids, and so every draw, come from
// crypto/rand, which is made deterministic for the test: the export is then
// the same on every run.
func newFixture(t *testing.T) *fixture {
	t.Helper()
	cryptotest.SetGlobalRandom(t, 20260302)
	studies := loadStudies(t)
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "jitai.db"), sqlite.Options{}, zap.NewNop())
	if err != nil {
		t.Fatalf("opening sqlite store: %v", err)
	}
	t.Cleanup(func() { _ = st.Close() })
	clk := &clock{t: at(0, 7, 0)}
	var list []*policies.Study
	for _, s := range studies {
		list = append(list, s)
	}
	eng, err := engine.New(engine.Components{Store: st, Studies: list, Now: clk.Now})
	if err != nil {
		t.Fatalf("engine.New: %v", err)
	}
	f := &fixture{store: st, eng: eng, clock: clk, studies: studies, want: map[string]want{}, order: map[string][]string{}}
	f.stressTrial(t)
	f.moodTrial(t)
	return f
}

func (f *fixture) enroll(t *testing.T, study, id string, strata map[string]string, when time.Time) {
	t.Helper()
	f.clock.Set(when)
	if _, _, err := f.eng.Enroll(context.Background(), study, engine.EnrollRequest{ParticipantID: id, Strata: strata}); err != nil {
		t.Fatalf("enrolling %s in %s: %v", id, study, err)
	}
	f.order[study] = append(f.order[study], id)
}

var evSeq int

func (f *fixture) ingest(t *testing.T, study, p, typ string, when time.Time, data any) {
	t.Helper()
	raw, err := json.Marshal(data)
	if err != nil {
		t.Fatal(err)
	}
	evSeq++
	f.clock.Set(when)
	ev := trial.Event{ID: fmt.Sprintf("ev-%05d", evSeq), Type: typ, Time: when, Data: raw}
	if _, _, err := f.eng.Ingest(context.Background(), study, p, []trial.Event{ev}); err != nil {
		t.Fatalf("ingesting %s event for %s at %s: %v", typ, p, when, err)
	}
}

func (f *fixture) decide(t *testing.T, study, p, point string, when time.Time, ctx map[string]any) *trial.Record {
	t.Helper()
	f.clock.Set(when)
	ans, err := f.eng.Decide(context.Background(), study, p, engine.DecideRequest{DecisionPoint: point, Time: when, Context: ctx})
	if err != nil {
		t.Fatalf("decision for %s at %s: %v", p, when, err)
	}
	if when.After(f.lastDec) {
		f.lastDec = when
	}
	return ans.Record
}

var stressPoints = []struct {
	id     string
	hh, mm int
}{{"morning", 8, 30}, {"late_morning", 11, 30}, {"afternoon", 14, 30}, {"early_evening", 17, 30}, {"evening", 20, 30}}

// stressTrial: three participants, three days of five decision points.
// Each decision gets one of five outcome scenarios (k % 5) for the stress
// report 30-90 minutes later, and each delivered prompt one of three
// engagement scenarios for "opened within 1 hour".
func (f *fixture) stressTrial(t *testing.T) {
	ps := []string{"p-ana", "p-ben", "p-cy"}
	for i, p := range ps {
		f.enroll(t, stressMRT, p, nil, at(0, 7, i))
	}
	f.ingest(t, stressMRT, "p-ana", trial.EventAssessment, at(0, 7, 30), map[string]any{"instrument": "phq9", "items": []int{2, 2, 1, 1, 2, 1, 1, 1, 0}})
	f.ingest(t, stressMRT, "p-ben", trial.EventAssessment, at(0, 7, 31), map[string]any{"instrument": "gad7", "items": []int{2, 2, 2, 1, 1, 1, 1}})
	k := 0
	for day := 0; day < 3; day++ {
		for _, p := range ps {
			// A morning self-report feeds the policy's tailoring.
			f.ingest(t, stressMRT, p, trial.EventEMA, at(day, 8, 5), map[string]any{"stress": float64(3 + (k % 6)), "mood": float64(5 + day), "energy": 6})
			if p == "p-ben" && day == 1 {
				// Reported driving: unavailable for 30 minutes (the 11:30 point).
				f.ingest(t, stressMRT, p, trial.EventContext, at(day, 11, 20), map[string]any{"driving": true})
			}
			if p == "p-cy" && day == 1 {
				// PHQ-9 with item 9 > 0: safety decisions from then on.
				f.ingest(t, stressMRT, p, trial.EventAssessment, at(day, 12, 0), map[string]any{"instrument": "phq9", "items": []int{3, 3, 2, 2, 2, 2, 2, 2, 1}})
			}
			for _, dp := range stressPoints {
				tm := at(day, dp.hh, dp.mm)
				var ctx map[string]any
				if k%2 == 0 {
					ctx = map[string]any{"location": []string{"home", "work", "public"}[k%3], "driving": false}
				}
				rec := f.decide(t, stressMRT, p, dp.id, tm, ctx)
				w := want{}
				v := float64(k%10) + 0.5
				switch k % 5 {
				case 0: // two inside the window: the earlier counts
					f.ingest(t, stressMRT, p, trial.EventEMA, tm.Add(80*time.Minute), map[string]any{"stress": 1.0})
					f.ingest(t, stressMRT, p, trial.EventEMA, tm.Add(45*time.Minute), map[string]any{"stress": v})
					w.stress = v
				case 1: // just after the window: excluded
					f.ingest(t, stressMRT, p, trial.EventEMA, tm.Add(91*time.Minute), map[string]any{"stress": v})
				case 2: // one before the window, one on its start: the start counts
					f.ingest(t, stressMRT, p, trial.EventEMA, tm.Add(29*time.Minute), map[string]any{"stress": 9.0})
					f.ingest(t, stressMRT, p, trial.EventEMA, tm.Add(30*time.Minute), map[string]any{"stress": v})
					w.stress = v
				case 3: // no report, but another variable in the window: missing
					f.ingest(t, stressMRT, p, trial.EventEMA, tm.Add(40*time.Minute), map[string]any{"mood": 4.0})
				case 4: // one on the window's end: it counts
					f.ingest(t, stressMRT, p, trial.EventEMA, tm.Add(90*time.Minute), map[string]any{"stress": v})
					w.stress = v
				}
				if rec.Action == trial.ActionDeliver {
					f.ingest(t, stressMRT, p, trial.EventEngagement, tm.Add(time.Minute), map[string]any{"decision_id": rec.ID, "status": "delivered"})
					switch k % 3 {
					case 0:
						f.ingest(t, stressMRT, p, trial.EventEngagement, tm.Add(10*time.Minute), map[string]any{"decision_id": rec.ID, "status": "opened"})
						w.opened = 1
					case 1: // opened too late
						f.ingest(t, stressMRT, p, trial.EventEngagement, tm.Add(61*time.Minute), map[string]any{"decision_id": rec.ID, "status": "opened"})
					}
				}
				f.want[rec.ID] = w
				k++
			}
		}
	}
	f.ingest(t, stressMRT, "p-ana", trial.EventAssessment, at(2, 21, 0), map[string]any{"instrument": "phq9", "items": []int{1, 1, 0, 1, 1, 0, 1, 0, 0}})
	f.ingest(t, stressMRT, "p-ben", trial.EventAssessment, at(2, 21, 5), map[string]any{"instrument": "gad7", "items": []int{1, 1, 1, 0, 0, 1, 0}})
	f.end = at(4, 0, 0)
}

// moodTrial: four participants of the MOST study in two sites, two days of
// three decision points; mood is reported 2 hours after some decisions and
// some deliveries are completed within 2 hours.
func (f *fixture) moodTrial(t *testing.T) {
	ps := []struct{ id, site string }{{"m-01", "north"}, {"m-02", "south"}, {"m-03", "north"}, {"m-04", "south"}}
	for i, p := range ps {
		f.enroll(t, moodMOST, p.id, map[string]string{"site": p.site}, at(0, 6, i))
	}
	points := []struct {
		id     string
		hh, mm int
	}{{"morning", 9, 0}, {"midday", 13, 0}, {"evening", 19, 0}}
	k := 0
	for day := 0; day < 2; day++ {
		for _, p := range ps {
			for _, dp := range points {
				tm := at(day, dp.hh, dp.mm)
				rec := f.decide(t, moodMOST, p.id, dp.id, tm, nil)
				w := want{}
				if k%2 == 0 {
					v := float64(3 + k%7)
					f.ingest(t, moodMOST, p.id, trial.EventEMA, tm.Add(2*time.Hour), map[string]any{"mood": v})
					w.mood = v
				} else {
					// 3h01m: just outside the 1h-3h window.
					f.ingest(t, moodMOST, p.id, trial.EventEMA, tm.Add(3*time.Hour+time.Minute), map[string]any{"mood": 8.0})
				}
				if rec.Action == trial.ActionDeliver && k%3 != 2 {
					f.ingest(t, moodMOST, p.id, trial.EventEngagement, tm.Add(30*time.Minute), map[string]any{"decision_id": rec.ID, "status": "completed"})
					w.done = 1
				}
				f.want[rec.ID] = w
				k++
			}
		}
	}
	f.ingest(t, moodMOST, "m-01", trial.EventAssessment, at(1, 21, 0), map[string]any{"instrument": "phq9", "items": []int{1, 1, 1, 1, 1, 1, 1, 1, 0}})
}
