package api_test

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/jitai/jitai/experiments"
	"github.com/jitai/jitai/policies"
)

// TestRandomisationIntegrity runs a small micro-randomised trial through the
// API and audits every record: the draws are reproducible from the study
// seed, the levels follow from them, unavailable points are never
// randomised, the delivery and framing rates match the design, and the
// burden caps hold.
func TestRandomisationIntegrity(t *testing.T) {
	if testing.Short() {
		t.Skip("a few thousand decisions")
	}
	e := newEnv(t, quietLogs, anyTime) // participants in parallel, each at its own time
	const study = stressMRT
	st := e.study(study)
	seed := readStudyYAML(t, study).Seed
	if seed == "" || seed != st.Config.Seed {
		t.Fatalf("seed in study.yaml %q, loaded %q", seed, st.Config.Seed)
	}
	promptF, ok1 := st.Config.Factor("prompt")
	framingF, ok2 := st.Config.Factor("framing")
	if !ok1 || !ok2 {
		t.Fatalf("stress-mrt must declare within-person factors prompt and framing")
	}
	maxPerDay := st.Config.Burden.MaxPerDay
	minGap := time.Duration(st.Config.Burden.MinMinutesBetween) * time.Minute
	if maxPerDay != 4 || minGap != 90*time.Minute {
		t.Fatalf("stress-mrt burden %+v, the test assumes 4 a day and 90 minutes", st.Config.Burden)
	}

	const participants, days = 200, 3
	// Each day: the five scheduled points at their instants, an
	// app-requested point an hour after late_morning (so that the 90-minute
	// gap bites after a delivery at 11:30) and one in quiet hours. Some
	// participants drive at 17:30.
	slots := []integritySlot{
		{"morning", 8, 30}, {"late_morning", 11, 30}, {"on_demand", 12, 30},
		{"afternoon", 14, 30}, {"early_evening", 17, 30}, {"evening", 20, 30}, {"on_demand", 23, 15},
	}
	ids := make([]string, participants)
	for i := range ids {
		ids[i] = fmt.Sprintf("mrt-%03d", i)
		e.enrol(study, ids[i])
	}
	answered := map[string]integrityAnswer{}
	for day := range days {
		integrityDay(t, e, study, ids, slots, day, answered)
	}
	want := 0
	for day := range days {
		for pi := range participants {
			want += len(slots)
			if (pi+day)%3 != 0 {
				want--
			}
		}
	}
	if len(answered) != want {
		t.Fatalf("%d distinct decision ids answered, want %d", len(answered), want)
	}

	recs := e.listDecisions(study, "")
	if len(recs) != want {
		t.Errorf("the listing has %d records, %d decisions were answered", len(recs), want)
	}
	tally := &integrityTally{
		drawer: experiments.NewDrawer(seed), revision: st.Revision,
		factors:    []policies.Factor{*promptF, *framingF},
		deliveries: map[string][]time.Time{},
	}
	seen := map[string]bool{}
	for i := range recs {
		rec := &recs[i]
		if seen[rec.DecisionID] {
			t.Errorf("record %s listed twice", rec.DecisionID)
			continue
		}
		seen[rec.DecisionID] = true
		a, ok := answered[rec.DecisionID]
		if !ok {
			t.Errorf("record %s was never answered", rec.DecisionID)
			continue
		}
		tally.check(t, rec, a)
	}
	t.Logf("%d records, %d available, %d delivered, %d loss framing; unavailable: %d daily cap, %d min gap, %d quiet hours, %d driving",
		len(recs), tally.available, tally.delivered, tally.loss, tally.dailyCapHits, tally.minGapHits, tally.quiet, tally.driving)

	if tally.available < 2000 {
		t.Fatalf("only %d available points; the rate checks need at least 2000", tally.available)
	}
	checkRate(t, "prompt=deliver", tally.delivered, tally.available, promptF.Probability)
	checkRate(t, "framing=loss", tally.loss, tally.available, framingF.Probability)
	if tally.dailyCapHits == 0 || tally.minGapHits == 0 || tally.quiet == 0 || tally.driving == 0 {
		t.Errorf("every kind of unavailability should occur: daily cap %d, min gap %d, quiet hours %d, driving %d", tally.dailyCapHits, tally.minGapHits, tally.quiet, tally.driving)
	}
	checkBurden(t, tally.deliveries, maxPerDay, minGap)
}

type integritySlot struct {
	dp     string
	hh, mm int
}

type integrityAnswer struct {
	id, participant, action string
	reasons                 []string
}

// integrityDay makes one day's decisions: the clock is at the start of the
// day; decisions come in time order per participant, participants in
// parallel.
func integrityDay(t *testing.T, e *env, study string, ids []string, slots []integritySlot, day int, answered map[string]integrityAnswer) {
	t.Helper()
	const workers = 8
	var mu sync.Mutex
	e.clock.Set(at(day, 8, 0))
	work := make(chan int)
	var wg sync.WaitGroup
	errc := make(chan error, workers)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for pi := range work {
				p := ids[pi]
				for _, s := range slots {
					if s.hh == 23 && (pi+day)%3 != 0 {
						continue // quiet hours: a third of the participant-days suffice
					}
					when := at(day, s.hh, s.mm)
					body := map[string]any{"decision_point": s.dp, "time": rfc(when)}
					if s.hh == 17 && (pi+day)%5 == 0 {
						body["context"] = map[string]any{"driving": true}
					}
					r, err := e.try(req{Method: "POST", Path: decisionsPath(study, p), Body: body})
					if err == nil && r.Status != http.StatusOK {
						err = fmt.Errorf("status %d: %s", r.Status, r.Body)
					}
					var d decisionDoc
					if err == nil {
						err = json.Unmarshal(r.Body, &d)
					}
					if err != nil {
						errc <- fmt.Errorf("%s at %s: %w", p, when, err)
						for range work {
						}
						return
					}
					mu.Lock()
					answered[d.DecisionID] = integrityAnswer{d.DecisionID, p, d.Action, d.Reasons}
					mu.Unlock()
				}
			}
		}()
	}
	for pi := range ids {
		work <- pi
	}
	close(work)
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
}

// integrityTally checks records against their answers and the study, and
// counts what the rate checks need.
type integrityTally struct {
	drawer                                   *experiments.Drawer
	revision                                 string
	factors                                  []policies.Factor // prompt, framing
	available, delivered, loss               int
	dailyCapHits, minGapHits, quiet, driving int
	deliveries                               map[string][]time.Time
}

func (c *integrityTally) check(t *testing.T, rec *recordDoc, a integrityAnswer) {
	t.Helper()
	if rec.ParticipantID != a.participant || rec.Action != a.action || !slices.Equal(rec.Reasons, a.reasons) {
		t.Errorf("record %s: %s %s %v; answered %s %s %v", rec.DecisionID, rec.ParticipantID, rec.Action, rec.Reasons, a.participant, a.action, a.reasons)
	}
	if rec.PolicyRevision != c.revision {
		t.Errorf("record %s: policy_revision %q, want %q", rec.DecisionID, rec.PolicyRevision, c.revision)
	}
	if rec.Available == nil {
		t.Errorf("record %s has no available field", rec.DecisionID)
		return
	}
	if !*rec.Available {
		c.unavailable(t, rec)
		return
	}
	c.available++
	if !rec.Randomised || len(rec.UnavailableReasons) != 0 {
		t.Errorf("available record %s: randomised %v unavailable_reasons %v", rec.DecisionID, rec.Randomised, rec.UnavailableReasons)
	}
	var levels [2]int
	for j, f := range c.factors {
		levels[j] = c.level(t, rec, f)
	}
	if levels[1] == 1 {
		c.loss++
	}
	switch {
	case levels[0] == 1 && rec.Action == "deliver":
		c.delivered++
		c.deliveries[rec.ParticipantID] = append(c.deliveries[rec.ParticipantID], rec.Time)
		if rec.Option == nil || rec.Intervention == nil || rec.Option.ID != rec.Intervention.ID {
			t.Errorf("delivery %s: option %+v intervention %+v", rec.DecisionID, rec.Option, rec.Intervention)
		} else if u := c.drawer.Uniform(rec.ParticipantID, rec.DecisionID, "_option"); u != rec.Option.Draw {
			t.Errorf("delivery %s: option draw %v, re-derived %v", rec.DecisionID, rec.Option.Draw, u)
		}
	case levels[0] == 0 && rec.Action == "none":
		if !slices.Equal(rec.Reasons, []string{"randomised_no_prompt"}) || rec.Option != nil {
			t.Errorf("record %s: prompt drawn none, reasons %v option %+v", rec.DecisionID, rec.Reasons, rec.Option)
		}
	default:
		t.Errorf("record %s: prompt level %d but action %s", rec.DecisionID, levels[0], rec.Action)
	}
}

// unavailable checks an unavailable record and counts its reasons.
func (c *integrityTally) unavailable(t *testing.T, rec *recordDoc) {
	t.Helper()
	if rec.Action != "none" || rec.Randomised || rec.Option != nil || len(rec.UnavailableReasons) == 0 || !slices.Equal(rec.Reasons, rec.UnavailableReasons) {
		t.Errorf("unavailable record %s: action %s randomised %v option %+v reasons %v unavailable_reasons %v",
			rec.DecisionID, rec.Action, rec.Randomised, rec.Option, rec.Reasons, rec.UnavailableReasons)
	}
	for _, f := range rec.Factors {
		if f.Draw != nil || f.Probability != nil {
			t.Errorf("unavailable record %s draws %s", rec.DecisionID, f.Name)
		}
	}
	for _, r := range rec.UnavailableReasons {
		switch r {
		case "burden_daily_cap", "max_prompts_today":
			c.dailyCapHits++
		case "burden_min_gap", "min_gap":
			c.minGapHits++
		case "quiet_hours":
			c.quiet++
		case "driving":
			c.driving++
		}
	}
}

// level checks a factor's logged probability, draw and level against the
// keyed draw and returns the level.
func (c *integrityTally) level(t *testing.T, rec *recordDoc, f policies.Factor) int {
	t.Helper()
	fd := rec.factor(f.Name)
	if fd == nil || fd.Probability == nil || fd.Draw == nil || fd.Level == nil {
		t.Errorf("record %s: factor %s lacks probability, draw or level: %+v", rec.DecisionID, f.Name, fd)
		return 0
	}
	if *fd.Probability != f.Probability {
		t.Errorf("record %s: factor %s probability %v, want the fixed %v", rec.DecisionID, f.Name, *fd.Probability, f.Probability)
	}
	u := c.drawer.Uniform(rec.ParticipantID, rec.DecisionID, f.Name)
	if u != *fd.Draw {
		t.Errorf("record %s: factor %s draw %v, re-derived %v", rec.DecisionID, f.Name, *fd.Draw, u)
	}
	lvl := 0
	if u < *fd.Probability {
		lvl = 1
	}
	if *fd.Level != lvl {
		t.Errorf("record %s: factor %s level %d, but draw %v vs probability %v gives %d", rec.DecisionID, f.Name, *fd.Level, u, *fd.Probability, lvl)
	}
	return lvl
}

// checkBurden checks the burden caps on the delivered record times.
func checkBurden(t *testing.T, deliveries map[string][]time.Time, maxPerDay int, minGap time.Duration) {
	t.Helper()
	for p, ts := range deliveries {
		sort.Slice(ts, func(i, j int) bool { return ts[i].Before(ts[j]) })
		perDay := map[string]int{}
		for i, ts1 := range ts {
			d := ts1.In(london).Format(time.DateOnly)
			perDay[d]++
			if perDay[d] > maxPerDay {
				t.Errorf("participant %s: %d deliveries on %s, cap %d", p, perDay[d], d, maxPerDay)
			}
			if i > 0 && ts1.Sub(ts[i-1]) < minGap {
				t.Errorf("participant %s: deliveries at %s and %s, less than %s apart", p, ts[i-1], ts1, minGap)
			}
		}
	}
}

// checkRate checks that k successes in n trials fit probability p within 4
// standard errors.
func checkRate(t *testing.T, what string, k, n int, p float64) {
	t.Helper()
	rate := float64(k) / float64(n)
	se := math.Sqrt(p * (1 - p) / float64(n))
	if math.Abs(rate-p) > 4*se {
		t.Errorf("%s: observed %.4f (%d/%d), design %.2f, |diff| > 4 SE (%.4f)", what, rate, k, n, p, 4*se)
	} else {
		t.Logf("%s: observed %.4f (%d/%d), design %.2f, SE %.4f", what, rate, k, n, p, se)
	}
}
