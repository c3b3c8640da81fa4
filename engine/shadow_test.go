package engine_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jitai/jitai/engine"
	"github.com/jitai/jitai/engine/store/memstore"
	"github.com/jitai/jitai/engine/trial"
	"github.com/jitai/jitai/policies"
	"github.com/jitai/jitai/policies/policytest"
)

// copyStudyEdited copies an example study folder (study.yaml, policy/,
// scenarios/) to a new folder and applies edit to its study.yaml.
func copyStudyEdited(t *testing.T, from, to string, edit func(string) string) {
	t.Helper()
	for _, pat := range []string{"study.yaml", "policy/*.rego", "scenarios/*"} {
		files, err := filepath.Glob(filepath.Join(from, pat))
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			rel, _ := filepath.Rel(from, f)
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if rel == "study.yaml" && edit != nil {
				b = []byte(edit(string(b)))
			}
			dst := filepath.Join(to, rel)
			if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(dst, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// earlierQuiet starts the study's quiet hours two hours earlier (20:00).
func earlierQuiet(s string) string {
	if !strings.Contains(s, `start: "22:00"`) {
		panic("the example study's quiet hours no longer start at 22:00")
	}
	return strings.Replace(s, `start: "22:00"`, `start: "20:00"`, 1)
}

// shadowRun makes 1,000 live decisions for 50 participants in five time
// zones, at times spread over the day, with driving context on some; with
// a candidate shadowed when candidate is set. It returns each answer and
// the records the store holds, and the engine.
func shadowRun(t *testing.T, studyDir, candidate string) ([][]byte, []*trial.Record, *engine.Engine) {
	t.Helper()
	ctx := context.Background()
	study := policytest.Load(t, studyDir)
	clk := newTestClock(time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC))
	eng, err := engine.New(engine.Components{Store: memstore.New(), Studies: []*policies.Study{study}, Now: clk.Now,
		Rand: rand.NewChaCha8([32]byte{7})})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = eng.Close() })
	if candidate != "" {
		if _, err := eng.ShadowCandidate(ctx, candidate, candidate); err != nil {
			t.Fatal(err)
		}
	}
	zones := []string{"Europe/London", "America/New_York", "Asia/Tokyo", "Australia/Sydney", "America/Los_Angeles"}
	for i := range 50 {
		if _, _, err := eng.Enroll(ctx, study.Config.ID, engine.EnrollRequest{ParticipantID: fmt.Sprintf("p%02d", i), Timezone: zones[i%len(zones)]}); err != nil {
			t.Fatal(err)
		}
	}
	var answers [][]byte
	at := clk.Now().Add(time.Hour)
	for i := range 1000 {
		at = at.Add(37 * time.Minute)
		clk.Set(at)
		req := engine.DecideRequest{DecisionPoint: "on_demand", Time: at}
		if i%7 == 0 {
			req.Context = map[string]any{"driving": true}
		}
		ans, err := eng.Decide(ctx, study.Config.ID, fmt.Sprintf("p%02d", i%50), req)
		if err != nil {
			t.Fatalf("decision %d: %v", i, err)
		}
		answers = append(answers, ans.Body)
	}
	recs, err := eng.ListDecisions(ctx, trial.DecisionQuery{Study: study.Config.ID, Limit: 5000})
	if err != nil {
		t.Fatal(err)
	}
	return answers, recs, eng
}

// TestShadowQuietHoursEarlier: 1,000 live decisions run with a candidate
// whose quiet hours start two hours earlier. The shadow names exactly the
// decisions made between 20:00 and 22:00 local time (computed here from
// each decision's time and its participant's zone), and the participants'
// answers and records are byte-identical to a run without the shadow.
func TestShadowQuietHoursEarlier(t *testing.T) {
	ctx := context.Background()
	tmp := t.TempDir()
	serving, cand := filepath.Join(tmp, "stress-mrt"), filepath.Join(tmp, "stress-mrt", engine.ShadowFolder)
	copyStudyEdited(t, "../policies/examples/stress-mrt", serving, nil)
	copyStudyEdited(t, "../policies/examples/stress-mrt", cand, earlierQuiet)

	plainAnswers, plainRecs, _ := shadowRun(t, serving, "")
	answers, recs, eng := shadowRun(t, serving, cand)
	if len(recs) != 1000 || len(plainRecs) != 1000 {
		t.Fatalf("%d and %d records, want 1000 each", len(recs), len(plainRecs))
	}
	for i := range answers {
		if !bytes.Equal(answers[i], plainAnswers[i]) {
			t.Fatalf("answer %d differs with the shadow:\n%s\nwithout:\n%s", i, answers[i], plainAnswers[i])
		}
	}
	for i := range recs {
		// The measured latency is wall time: it differs between any two runs.
		a, b := *recs[i], *plainRecs[i]
		a.LatencyMicros, b.LatencyMicros = 0, 0
		x, _ := json.Marshal(a)
		y, _ := json.Marshal(b)
		if !bytes.Equal(x, y) {
			t.Fatalf("record %d differs with the shadow:\n%s\nwithout:\n%s", i, x, y)
		}
	}

	if err := eng.FlushShadow(ctx, "stress-mrt"); err != nil {
		t.Fatal(err)
	}
	rep, err := eng.Shadow("stress-mrt")
	if err != nil {
		t.Fatal(err)
	}
	var want, got []string
	zone := map[string]string{}
	for i := range 50 {
		zone[fmt.Sprintf("p%02d", i)] = []string{"Europe/London", "America/New_York", "Asia/Tokyo", "Australia/Sydney", "America/Los_Angeles"}[i%5]
	}
	inWindow := 0
	for _, r := range recs {
		loc, err := time.LoadLocation(zone[r.Participant])
		if err != nil {
			t.Fatal(err)
		}
		if h := r.Time.In(loc).Hour(); h >= 20 && h < 22 {
			inWindow++
			if r.Action != trial.ActionSafety {
				want = append(want, r.ID)
			}
		}
	}
	for _, d := range rep.Diffs {
		got = append(got, d.DecisionID)
		if !slices.Contains(d.Changes, "reasons") {
			t.Errorf("decision %s changes %v, want its reasons", d.DecisionID, d.Changes)
		}
	}
	slices.Sort(want)
	slices.Sort(got)
	if len(want) < 50 {
		t.Fatalf("only %d decisions fall between 20:00 and 22:00 local: the run does not test the window", len(want))
	}
	if !slices.Equal(got, want) {
		t.Fatalf("the shadow names %d decisions, the window holds %d (of %d in it)", len(got), len(want), inWindow)
	}
	if rep.Decisions != 1000 || rep.Changed != len(want) || rep.Dropped != 0 || rep.Failed != 0 {
		t.Fatalf("report: %d decisions, %d changed, %d dropped, %d failed; want 1000, %d, 0, 0", rep.Decisions, rep.Changed, rep.Dropped, rep.Failed, len(want))
	}
	// Every changed decision gains quiet_hours; an available decision that
	// becomes unavailable also loses its other reasons. Nothing else is
	// added.
	for r, n := range rep.ByReason {
		if (r == "+quiet_hours" && n != len(want)) || (r != "+quiet_hours" && !strings.HasPrefix(r, "-")) {
			t.Fatalf("by reason %v, want +quiet_hours x %d and only reasons removed besides", rep.ByReason, len(want))
		}
	}
	if rep.ByRule["unavailable"] == 0 || rep.ByPoint["on_demand"] != len(want) {
		t.Fatalf("by rule %v, by point %v", rep.ByRule, rep.ByPoint)
	}
	t.Logf("%d of 1000 decisions between 20:00 and 22:00 local; the shadow named %d; transitions %v", inWindow, len(got), rep.Transitions)
}

// TestShadowPromoteAndDrop: a posted candidate with a bad file name or a
// policy that does not compile is refused naming the file; a valid one is
// shadowed, and promoting it makes it serve (its quiet hours now apply to
// live decisions) and ends the shadow.
func TestShadowPromoteAndDrop(t *testing.T) {
	ctx := context.Background()
	tmp := t.TempDir()
	dir := filepath.Join(tmp, "stress-mrt")
	copyStudyEdited(t, "../policies/examples/stress-mrt", dir, nil)
	study := policytest.Load(t, dir)
	clk := newTestClock(time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC))
	eng, err := engine.New(engine.Components{Store: memstore.New(), Studies: []*policies.Study{study}, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer eng.Close()
	files := map[string][]byte{}
	for _, name := range []string{"study.yaml", "policy/policy.rego"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		files[name] = b
	}
	files["study.yaml"] = []byte(earlierQuiet(string(files["study.yaml"])))

	var ce *engine.CandidateError
	bad := map[string][]byte{"study.yaml": files["study.yaml"], "../../etc/passwd": []byte("x")}
	if _, err := eng.PostCandidate(ctx, "stress-mrt", bad); !errors.As(err, &ce) || ce.Field != `files["../../etc/passwd"]` {
		t.Fatalf("a path outside the study: %v", err)
	}
	broken := map[string][]byte{"study.yaml": files["study.yaml"], "policy/policy.rego": []byte("package jitai.policy\n\ndecision := {\n")}
	if _, err := eng.PostCandidate(ctx, "stress-mrt", broken); !errors.As(err, &ce) || !strings.Contains(strings.Join(ce.Errors, "\n"), "policy.rego") {
		t.Fatalf("a policy that does not parse: %v", err)
	}
	if _, err := eng.Shadow("stress-mrt"); !errors.Is(err, engine.ErrNoShadow) {
		t.Fatalf("a refused candidate is shadowed: %v", err)
	}
	rep, err := eng.PostCandidate(ctx, "stress-mrt", files)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Source != "posted" || rep.CandidateRevision == study.Revision {
		t.Fatalf("report %+v", rep)
	}
	if _, _, err := eng.Enroll(ctx, "stress-mrt", engine.EnrollRequest{ParticipantID: "p1", Timezone: "UTC"}); err != nil {
		t.Fatal(err)
	}
	decideAt := func(h int) *trial.Record {
		t.Helper()
		at := time.Date(2026, 3, 3+h/24, h%24, 30, 0, 0, time.UTC)
		clk.Set(at)
		ans, err := eng.Decide(ctx, "stress-mrt", "p1", engine.DecideRequest{DecisionPoint: "on_demand", Time: at})
		if err != nil {
			t.Fatal(err)
		}
		return ans.Record
	}
	if r := decideAt(20); slices.Contains(r.UnavailableReasons, "quiet_hours") {
		t.Fatalf("20:30 is quiet before the promotion: %v", r.UnavailableReasons)
	}
	if err := eng.FlushShadow(ctx, "stress-mrt"); err != nil {
		t.Fatal(err)
	}
	if rep, _ := eng.Shadow("stress-mrt"); rep.Changed != 1 {
		t.Fatalf("the shadow found %d changes for a decision at 20:30, want 1", rep.Changed)
	}
	if _, err := eng.PromoteShadow(ctx, "stress-mrt"); err != nil {
		t.Fatal(err)
	}
	if _, err := eng.Shadow("stress-mrt"); !errors.Is(err, engine.ErrNoShadow) {
		t.Fatalf("the shadow goes on after the promotion: %v", err)
	}
	if r := decideAt(44); !slices.Contains(r.UnavailableReasons, "quiet_hours") {
		t.Fatalf("20:30 is not quiet after the promotion: %v", r.UnavailableReasons)
	}
	b, _ := os.ReadFile(filepath.Join(dir, "study.yaml"))
	if !strings.Contains(string(b), `start: "20:00"`) {
		t.Fatal("the promoted study.yaml is not in the study folder")
	}
	if err := eng.DropShadow("stress-mrt"); !errors.Is(err, engine.ErrNoShadow) {
		t.Fatalf("dropping no shadow: %v", err)
	}
}
