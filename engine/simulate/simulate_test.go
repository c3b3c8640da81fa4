package simulate

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jitai/jitai/engine/decision"

	"github.com/jitai/jitai/engine/trial"

	"github.com/jitai/jitai/engine"
	"github.com/jitai/jitai/engine/api"
	"github.com/jitai/jitai/interventions"
	"github.com/jitai/jitai/policies"
)

func loadExample(t testing.TB, name string) *policies.Study {
	t.Helper()
	cat, err := interventions.Embedded()
	if err != nil {
		t.Fatal(err)
	}
	s, err := policies.LoadStudy(context.Background(), filepath.Join("..", "..", "policies", "examples", name), cat)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// scheduledPoints counts the study's scheduled decision points: the
// simulator decides each of them every day, and an app-requested point
// (the examples' on_demand) on about half the days.
func scheduledPoints(s *policies.Study) int {
	n := 0
	for _, dp := range s.Config.DecisionPoints {
		if dp.Kind == "scheduled" {
			n++
		}
	}
	return n
}

// scheduledLines counts the records of scheduled points among JSONL
// records (their trigger; the policy input holds one too).
func scheduledLines(t testing.TB, jsonl []byte) int {
	t.Helper()
	n := 0
	for _, line := range bytes.Split(bytes.TrimSpace(jsonl), []byte("\n")) {
		var rec struct {
			Trigger string `json:"trigger"`
		}
		if err := json.Unmarshal(line, &rec); err != nil {
			t.Fatal(err)
		}
		if rec.Trigger == trial.TriggerScheduled {
			n++
		}
	}
	return n
}

// simulateTo runs a simulation and writes its report into a temporary
// folder, which it returns with the report.
func simulateTo(t *testing.T, o Options) (string, *Report) {
	t.Helper()
	ctx := context.Background()
	run, err := Simulate(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	ps, err := run.Store.Participants(ctx, o.Study.Config.ID)
	if err != nil {
		t.Fatal(err)
	}
	r := Build(run, ps)
	dir := t.TempDir()
	if err := Write(ctx, dir, run, r); err != nil {
		t.Fatal(err)
	}
	return dir, r
}

func read(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// latency is the one field of a record measured on the wall clock.
var latency = regexp.MustCompile(`"latency_us":\d+`)

// TestDeterministic: the same seed gives the same report and the same
// decision records (but for their measured latency), whatever the number
// of workers; another seed gives another run.
func TestDeterministic(t *testing.T) {
	st := loadExample(t, "stress-mrt")
	base := Options{Study: st, Cohort: DefaultCohort(), Participants: 12, Days: 5, Seed: 42}
	one, two, other := base, base, base
	one.Workers, two.Workers, other.Workers = 1, 4, 4
	other.Seed = 43
	d1, _ := simulateTo(t, one)
	d2, _ := simulateTo(t, two)
	d3, _ := simulateTo(t, other)
	for _, f := range []string{"report.json", "participant_days.csv", "factors.csv", "availability.csv", "hours.csv", "report.html"} {
		if !bytes.Equal(read(t, filepath.Join(d1, f)), read(t, filepath.Join(d2, f))) {
			t.Errorf("%s differs between two runs with seed 42", f)
		}
	}
	j1 := latency.ReplaceAll(read(t, filepath.Join(d1, "decisions.jsonl")), nil)
	j2 := latency.ReplaceAll(read(t, filepath.Join(d2, "decisions.jsonl")), nil)
	if !bytes.Equal(j1, j2) {
		t.Error("decisions.jsonl differs between two runs with seed 42 (beyond latency_us)")
	}
	if bytes.Equal(read(t, filepath.Join(d1, "report.json")), read(t, filepath.Join(d3, "report.json"))) {
		t.Error("seeds 42 and 43 gave the same report")
	}
}

// TestReportStressMRT checks the report of a modest stress-mrt run against
// the decision records themselves.
func TestReportStressMRT(t *testing.T) {
	st := loadExample(t, "stress-mrt")
	c := DefaultCohort()
	c.Effects.Stress = -1.5 // large, so that a small run shows it
	dir, r := simulateTo(t, Options{Study: st, Cohort: c, Participants: 30, Days: 14, Seed: 7})

	// Every record is in decisions.jsonl, and the caps hold per local day.
	loc, _ := time.LoadLocation(st.Config.Timezone)
	f, err := os.Open(filepath.Join(dir, "decisions.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	perDay := map[string]int{}
	n, scheduled, app, deliveries := 0, 0, 0, 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	var prev time.Time
	for sc.Scan() {
		var rec trial.Record
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("line %d: %v", n+1, err)
		}
		n++
		if rec.Study != "stress-mrt" || rec.ID == "" || rec.PolicyRevision != st.Revision || len(rec.Input) == 0 {
			t.Fatalf("line %d is not a complete record: %s", n, sc.Bytes()[:min(200, len(sc.Bytes()))])
		}
		if rec.Time.Before(prev) {
			t.Fatalf("line %d: records are not in time order", n)
		}
		prev = rec.Time
		switch rec.Trigger {
		case trial.TriggerScheduled:
			scheduled++
		case trial.TriggerApp:
			app++
		default:
			t.Errorf("line %d: trigger %q", n, rec.Trigger)
		}
		if rec.Action == trial.ActionDeliver {
			deliveries++
			perDay[rec.Participant+" "+rec.Time.In(loc).Format(time.DateOnly)]++
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if want := 30 * 14 * scheduledPoints(st); scheduled != want || app == 0 || r.Totals.Decisions != n {
		t.Errorf("%d records (%d scheduled, %d app), report says %d decisions; want %d scheduled and some app decisions", n, scheduled, app, r.Totals.Decisions, want)
	}
	if deliveries != r.Totals.Deliver {
		t.Errorf("%d deliveries in the records, %d in the report", deliveries, r.Totals.Deliver)
	}
	most := 0
	for _, k := range perDay {
		most = max(most, k)
	}
	if most > st.Config.Burden.MaxPerDay || r.Deliveries.Max != most || r.Deliveries.DaysOverCap != 0 {
		t.Errorf("max deliveries in a day: records %d, report %d (cap %d, %d days over)", most, r.Deliveries.Max, st.Config.Burden.MaxPerDay, r.Deliveries.DaysOverCap)
	}
	hist := 0
	for k, days := range r.Deliveries.Histogram {
		hist += k * days
	}
	if hist != deliveries {
		t.Errorf("the histogram holds %d deliveries, the records %d", hist, deliveries)
	}

	// Realised randomisation rates are near the intended probabilities.
	if len(r.Factors) != 2 {
		t.Fatalf("factors %+v", r.Factors)
	}
	for _, fr := range r.Factors {
		f, _ := st.Config.Factor(fr.Name)
		if abs(fr.Intended-f.Probability) > 1e-9 {
			t.Errorf("%s: intended %v, the study fixes %v", fr.Name, fr.Intended, f.Probability)
		}
		if fr.Randomised < 1000 || abs(fr.Realised-fr.Intended) > 0.04 || !fr.OK {
			t.Errorf("%s: realised %.4f over %d, intended %.4f", fr.Name, fr.Realised, fr.Randomised, fr.Intended)
		}
	}
	if r.Availability.Rate <= 0.5 || r.Availability.Rate >= 1 || len(r.Availability.Reasons) == 0 {
		t.Errorf("availability %.3f, reasons %v", r.Availability.Rate, r.Availability.Reasons)
	}
	// The built-in effect shows.
	if len(r.Effects) == 0 || r.Effects[0].Factor != "prompt" || r.Effects[0].Estimate > -1 || r.Effects[0].Estimate < -2 {
		t.Errorf("effect of prompt %+v, true -1.5", r.Effects)
	}
	if r.Power.Kind != "mrt" || r.Power.Error != "" || r.Power.N < 1 || r.Power.PowerAtN <= 0 || len(r.Power.Assumptions) == 0 {
		t.Errorf("power %+v", r.Power)
	}
	// Missing outcomes can only make the study need more participants (the
	// powers compare up to rounding: with this large effect both are 1).
	if r.Power.ObservedShare <= 0 || r.Power.ObservedShare >= 1 || r.Power.NMissing < r.Power.N || r.Power.PowerAtNMissing > r.Power.PowerAtN+1e-12 {
		t.Errorf("power with missing outcomes %+v", r.Power)
	}

	// The HTML stands alone.
	page := string(read(t, filepath.Join(dir, "report.html")))
	for _, bad := range []string{"<script", "http:", "https:", "src=", "@import", "url("} {
		if strings.Contains(page, bad) {
			t.Errorf("report.html contains %q", bad)
		}
	}
	for _, want := range []string{"<svg", "Deliveries per participant-day", "Availability", "Safety", "Randomisation", "Sample size and power"} {
		if !strings.Contains(page, want) {
			t.Errorf("report.html lacks %q", want)
		}
	}
}

// TestReportMoodMOST: a between-person factorial study reports cell
// balance and factorial power.
func TestReportMoodMOST(t *testing.T) {
	st := loadExample(t, "mood-most")
	c := DefaultCohort()
	c.Strata = map[string][]string{"site": {"leeds", "york", "hull"}}
	c.Effects.Components = map[string]Effect{"dose": {Mood: 1}}
	_, r := simulateTo(t, Options{Study: st, Cohort: c, Participants: 40, Days: 4, Seed: 3})
	if r.Cells == nil || len(r.Cells.Strata) != 3 || r.Cells.MaxSpread > 1 {
		t.Fatalf("cell balance %+v", r.Cells)
	}
	total := 0
	for _, s := range r.Cells.Strata {
		for _, n := range s.Counts {
			total += n
		}
	}
	if total != 40 {
		t.Errorf("cells hold %d participants, want 40", total)
	}
	if len(r.Factors) != 0 {
		t.Errorf("mood-most has no within-person factors, report has %+v", r.Factors)
	}
	if r.Power.Kind != "factorial" || r.Power.Error != "" || r.Power.N < 1 || !strings.Contains(r.Power.Effect, "dose") {
		t.Errorf("power %+v", r.Power)
	}
	if r.Deliveries.Max > st.Config.Burden.MaxPerDay {
		t.Errorf("max %d deliveries a day, cap %d", r.Deliveries.Max, st.Config.Burden.MaxPerDay)
	}
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

// TestDisengagement: participants who drift away and opt out show up as
// opted_out unavailability and in the engagement summary; with nobody
// drifting away there is none.
func TestDisengagement(t *testing.T) {
	st := loadExample(t, "stress-mrt")
	c := DefaultCohort()
	c.Disengagement = Disengagement{Fraction: 1, FromDay: 0, Factor: 0, OptOut: 1}
	_, r := simulateTo(t, Options{Study: st, Cohort: c, Participants: 10, Days: 6, Seed: 5})
	if r.Engagement.Disengaged != 10 || r.Engagement.OptedOut != 10 {
		t.Errorf("engagement %+v, want all 10 disengaged and opted out", r.Engagement)
	}
	opted := 0
	for _, rc := range r.Availability.Reasons {
		if rc.Reason == decision.ReasonOptedOut {
			opted = rc.Count
		}
	}
	if opted == 0 {
		t.Errorf("no opted_out decisions: %+v", r.Availability.Reasons)
	}
	for _, d := range r.Daily {
		if d.ReportRate < 0 || d.ReportRate > 1 || d.OpenRate < 0 || d.OpenRate > 1 {
			t.Errorf("day %+v: rates outside [0, 1]", d)
		}
	}
	c.Disengagement.Fraction = 0
	_, r = simulateTo(t, Options{Study: st, Cohort: c, Participants: 10, Days: 6, Seed: 5})
	for _, rc := range r.Availability.Reasons {
		if rc.Reason == decision.ReasonOptedOut {
			t.Errorf("%d opted_out decisions with nobody disengaging", rc.Count)
		}
	}
}

// TestCancelled: a cancelled run stops with the context's error, and bad
// options are refused.
func TestCancelled(t *testing.T) {
	st := loadExample(t, "stress-mrt")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Simulate(ctx, Options{Study: st, Cohort: DefaultCohort(), Participants: 4, Days: 30, Seed: 1}); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled run: %v", err)
	}
	if _, err := Simulate(context.Background(), Options{Study: st, Cohort: DefaultCohort(), Participants: 0, Days: 3}); err == nil {
		t.Error("no participants: no error")
	}
}

// TestDecisionsMatchAPI: each line of decisions.jsonl is byte for byte what
// GET /v1/studies/{study}/decisions/{id} answers for that decision.
func TestDecisionsMatchAPI(t *testing.T) {
	st := loadExample(t, "stress-mrt")
	o := Options{Study: st, Cohort: DefaultCohort(), Participants: 3, Days: 2, Seed: 8}
	run, err := Simulate(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := writeDecisions(context.Background(), &buf, run); err != nil {
		t.Fatal(err)
	}
	eng, err := engine.New(engine.Components{Store: run.Store, Studies: []*policies.Study{st}})
	if err != nil {
		t.Fatal(err)
	}
	srv := api.New(eng, nil, api.Options{})
	lines := bytes.SplitAfter(buf.Bytes(), []byte("\n"))
	lines = lines[:len(lines)-1]
	if n := scheduledLines(t, buf.Bytes()); n != 3*2*scheduledPoints(st) || len(lines) < n {
		t.Fatalf("%d lines, %d of scheduled points", len(lines), n)
	}
	for _, line := range lines {
		var rec struct {
			ID string `json:"decision_id"`
		}
		if err := json.Unmarshal(line, &rec); err != nil {
			t.Fatal(err)
		}
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, httptest.NewRequest("GET", "/v1/studies/stress-mrt/decisions/"+rec.ID, nil))
		if w.Code != 200 || !bytes.Equal(w.Body.Bytes(), line) {
			t.Fatalf("GET %s: %d\n%s\nfile:\n%s", rec.ID, w.Code, w.Body.Bytes(), line)
		}
	}
}

// TestProgress: progress is reported once per participant-day, up to the
// total.
func TestProgress(t *testing.T) {
	st := loadExample(t, "mood-most")
	var mu sync.Mutex
	calls, last := 0, 0
	o := Options{Study: st, Cohort: DefaultCohort(), Participants: 5, Days: 3, Seed: 2, Workers: 3, Progress: func(done, total int) {
		mu.Lock()
		defer mu.Unlock()
		calls++
		last = max(last, done)
		if total != 15 {
			t.Errorf("total %d, want 15", total)
		}
	}}
	if _, err := Simulate(context.Background(), o); err != nil {
		t.Fatal(err)
	}
	if calls != 15 || last != 15 {
		t.Errorf("%d progress calls reaching %d, want 15 and 15", calls, last)
	}
}
