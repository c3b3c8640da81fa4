package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jitai/jitai/engine/decision"

	"github.com/jitai/jitai/engine"
	"github.com/jitai/jitai/engine/api"
	"github.com/jitai/jitai/engine/store/sqlite"
	"github.com/jitai/jitai/engine/trial"
	"github.com/jitai/jitai/interventions"
	"github.com/jitai/jitai/policies"
)

const stressDir = "../../policies/examples/stress-mrt"

// onDemand is the example studies' app-requested point (the app's "I need
// support now" button): the app may ask for it at any time.
const onDemand = "on_demand"

// replayTrial is a seeded stress-mrt trial run through the real engine
// once per test binary: its data folder and its decisions as JSONL.
type replayTrial struct {
	data    string          // data folder (jitai.db)
	jsonl   string          // decisions.jsonl
	records []*trial.Record // in the file's order
	lines   [][]byte
}

var (
	trialOnce sync.Once
	shared    *replayTrial
	trialErr  error
)

// simulatedTrial runs (once) 16 participants for 14 days, 5 decisions a day
// at jittered times around the scheduled points (so that some fall either
// side of 20:00) and some repeated soon after, with self-reports, some
// driving, a few risk answers (safety) and snoozes. The app asks for them
// at the app point on_demand: a scheduled point has one decision a day, at
// its own instant.
func simulatedTrial(t testing.TB) *replayTrial {
	t.Helper()
	trialOnce.Do(func() { shared, trialErr = runTrial(filepath.Join(binDir, "replay-trial"), 16, 14) })
	if trialErr != nil {
		t.Fatal(trialErr)
	}
	return shared
}

func runTrial(dir string, participants, days int) (*replayTrial, error) {
	ctx := context.Background()
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o755); err != nil {
		return nil, err
	}
	cat, err := interventions.Embedded()
	if err != nil {
		return nil, err
	}
	study, err := policies.LoadStudy(ctx, stressDir, cat)
	if err != nil {
		return nil, err
	}
	store, err := sqlite.Open(filepath.Join(data, "jitai.db"), sqlite.Options{}, nil)
	if err != nil {
		return nil, err
	}
	start := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC) // London is on UTC in November
	now := start
	eng, err := engine.New(engine.Components{Store: store, Studies: []*policies.Study{study}, Now: func() time.Time { return now },
		Rand: rand.NewChaCha8([32]byte{'r', 'e', 'p', 'l', 'a', 'y'})})
	if err != nil {
		return nil, err
	}
	rng := rand.New(rand.NewPCG(3, 5))
	for i := 0; i < participants; i++ {
		if _, _, err := eng.Enroll(ctx, "stress-mrt", engine.EnrollRequest{ParticipantID: fmt.Sprintf("sim-%02d", i)}); err != nil {
			return nil, err
		}
	}
	for d := 0; d < days; d++ {
		day := start.AddDate(0, 0, d)
		for _, dp := range study.Config.DecisionPoints {
			if dp.Kind != "scheduled" {
				continue
			}
			minute, _ := trial.ParseClock(dp.Time)
			for i := 0; i < participants; i++ {
				pid := fmt.Sprintf("sim-%02d", i)
				at := day.Add(time.Duration(minute-45+rng.IntN(91)) * time.Minute)
				var evs []trial.Event
				if rng.Float64() < 0.7 {
					ema := map[string]any{"stress": rng.IntN(11), "mood": rng.IntN(11), "energy": rng.IntN(11)}
					if rng.Float64() < 0.01 {
						ema["risk"] = 1
					}
					raw, _ := json.Marshal(ema)
					evs = append(evs, trial.Event{ID: fmt.Sprintf("ema-%d-%s", d, dp.ID), Type: trial.EventEMA, Time: at.Add(-10 * time.Minute), Data: raw})
				}
				if rng.Float64() < 0.05 {
					evs = append(evs, trial.Event{ID: fmt.Sprintf("ctx-%d-%s", d, dp.ID), Type: trial.EventContext, Time: at.Add(-5 * time.Minute), Data: json.RawMessage(`{"driving":true}`)})
				}
				if rng.Float64() < 0.02 {
					evs = append(evs, trial.Event{ID: fmt.Sprintf("snz-%d-%s", d, dp.ID), Type: trial.EventPreference, Time: at.Add(-5 * time.Minute), Data: json.RawMessage(`{"snooze_minutes":60}`)})
				}
				now = at
				if len(evs) > 0 {
					if _, _, err := eng.Ingest(ctx, "stress-mrt", pid, evs); err != nil {
						return nil, fmt.Errorf("ingest: %w", err)
					}
				}
				if _, err := eng.Decide(ctx, "stress-mrt", pid, engine.DecideRequest{DecisionPoint: onDemand, Time: at}); err != nil {
					return nil, fmt.Errorf("decide: %w", err)
				}
				if rng.Float64() < 0.15 {
					// The app asks again soon after: the minimum gap applies.
					now = at.Add(time.Duration(20+rng.IntN(40)) * time.Minute)
					if _, err := eng.Decide(ctx, "stress-mrt", pid, engine.DecideRequest{DecisionPoint: onDemand, Time: now}); err != nil {
						return nil, fmt.Errorf("decide: %w", err)
					}
				}
			}
		}
	}
	tr := &replayTrial{data: data, jsonl: filepath.Join(dir, "decisions.jsonl")}
	q := trial.DecisionQuery{Study: "stress-mrt", Limit: 500}
	var buf bytes.Buffer
	for {
		recs, err := store.ListDecisions(ctx, q)
		if err != nil {
			return nil, err
		}
		for _, r := range recs {
			line, err := json.Marshal(r)
			if err != nil {
				return nil, err
			}
			buf.Write(line)
			buf.WriteByte('\n')
			tr.records = append(tr.records, r)
			tr.lines = append(tr.lines, line)
		}
		if len(recs) < q.Limit {
			break
		}
		q.AfterTime, q.AfterID = recs[len(recs)-1].Time, recs[len(recs)-1].ID
	}
	if err := store.Close(); err != nil {
		return nil, err
	}
	if err := os.WriteFile(tr.jsonl, buf.Bytes(), 0o644); err != nil {
		return nil, err
	}
	return tr, nil
}

func runCLI(t *testing.T, stdin []byte, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	code = execute(args, bytes.NewReader(stdin), &o, &e)
	return code, o.String(), e.String()
}

func replayJSON(t *testing.T, stdout string) *replayReport {
	t.Helper()
	var rep replayReport
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("replay --format json: %v\n%s", err, stdout)
	}
	return &rep
}

// TestReplayReproducesSimulatedTrial: every decision of a simulated trial
// replayed with its own policy comes out exactly as logged.
func TestReplayReproducesSimulatedTrial(t *testing.T) {
	tr := simulatedTrial(t)
	code, out, errOut := runCLI(t, nil, "replay", "--study-dir", stressDir, "--decisions", tr.jsonl, "--format", "json")
	if code != replayOK {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	rep := replayJSON(t, out)
	if rep.Decisions != len(tr.records) || rep.Reproduced != len(tr.records) || len(rep.Differ) != 0 {
		t.Fatalf("%d decisions, %d reproduced, %d differ; want all %d reproduced", rep.Decisions, rep.Reproduced, len(rep.Differ), len(tr.records))
	}
	// The trial has every kind of decision, so all of the pipeline is checked.
	kinds := map[string]int{}
	for _, r := range tr.records {
		kinds[r.Action]++
		for _, reason := range r.Reasons {
			kinds[r.Action+":"+reason]++
		}
	}
	for _, k := range []string{"deliver", "safety", "none:randomised_no_prompt", "none:burden_min_gap", "none:burden_daily_cap", "none:quiet_hours", "none:driving", "none:snoozed"} {
		if kinds[k] == 0 {
			t.Errorf("the simulated trial has no %s decision: %v", k, kinds)
		}
	}
	t.Logf("%d decisions reproduced (%v): %s", rep.Decisions, kinds, strings.TrimSpace(errOut))
}

// TestReplayFromServer pages through the server's decision listing.
func TestReplayFromServer(t *testing.T) {
	tr := simulatedTrial(t)
	st, err := sqlite.OpenReadOnly(filepath.Join(tr.data, "jitai.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	cat, _ := interventions.Embedded()
	study, err := policies.LoadStudy(context.Background(), stressDir, cat)
	if err != nil {
		t.Fatal(err)
	}
	eng, err := engine.New(engine.Components{Store: st, Studies: []*policies.Study{study}})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(api.New(eng, nil, api.Options{}))
	defer hs.Close()
	code, out, errOut := runCLI(t, nil, "replay", "--study-dir", stressDir, "--from-server", hs.URL, "--format", "json")
	if code != replayOK {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	if rep := replayJSON(t, out); rep.Reproduced != len(tr.records) || len(tr.records) <= 1000 {
		t.Fatalf("%d of %d reproduced from the server (more than one page of 1000 wanted)", rep.Reproduced, len(tr.records))
	}
	// explain reads one decision from the server.
	id := tr.records[len(tr.records)-1].ID
	code, out, errOut = runCLI(t, nil, "explain", id, "--study-dir", stressDir, "--from-server", hs.URL)
	if code != 0 || !strings.HasPrefix(out, "Decision "+id+" for participant ") {
		t.Fatalf("explain --from-server: exit %d\n%s%s", code, out, errOut)
	}
	code, _, errOut = runCLI(t, nil, "explain", "01NOSUCH", "--study-dir", stressDir, "--from-server", hs.URL)
	if code != 2 || !strings.Contains(errOut, "404 Not Found") {
		t.Errorf("explain --from-server of an unknown id: exit %d: %s", code, errOut)
	}
}

// quietHoursPolicy writes a copy of stress-mrt whose quiet-hours rule
// starts two hours earlier than the configured quiet hours.
func quietHoursPolicy(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "stress-mrt")
	if err := os.MkdirAll(filepath.Join(dir, "policy"), 0o755); err != nil {
		t.Fatal(err)
	}
	yaml, err := os.ReadFile(filepath.Join(stressDir, "study.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	rego, err := os.ReadFile(filepath.Join(stressDir, "policy", "policy.rego"))
	if err != nil {
		t.Fatal(err)
	}
	old := "unavailable contains \"quiet_hours\" if {\n\t[start, end] := quiet_span\n"
	repl := "unavailable contains \"quiet_hours\" if {\n\t[configured, end] := quiet_span\n\tstart := (configured + 1320) % 1440 # two hours earlier\n"
	if !bytes.Contains(rego, []byte(old)) {
		t.Fatalf("the stress-mrt quiet-hours rule no longer reads %q: update this test", old)
	}
	rego = bytes.Replace(rego, []byte(old), []byte(repl), 1)
	if err := os.WriteFile(filepath.Join(dir, "study.yaml"), yaml, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "policy", "policy.rego"), rego, 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestReplayQuietHoursChange: with quiet hours starting at 20:00 instead of
// 22:00, exactly the decisions between 20:00 and 22:00 local time change
// (safety decisions pre-empt availability and do not), and the report
// names the quiet-hours rule.
func TestReplayQuietHoursChange(t *testing.T) {
	tr := simulatedTrial(t)
	code, out, errOut := runCLI(t, nil, "replay", "--study-dir", stressDir, "--decisions", tr.jsonl, "--policy", quietHoursPolicy(t), "--format", "json", "--examples", "100000")
	if code != replayOK {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	rep := replayJSON(t, out)
	var want []string
	for _, r := range tr.records {
		lt, err := time.Parse(time.RFC3339, r.LocalTime)
		if err != nil {
			t.Fatal(err)
		}
		if m := lt.Hour()*60 + lt.Minute(); m >= 20*60 && m < 22*60 && r.Action != trial.ActionSafety {
			want = append(want, r.ID)
		}
	}
	var got []string
	for _, c := range rep.Examples {
		got = append(got, c.DecisionID)
		if !slices.Contains(c.NewReasons, "quiet_hours") {
			t.Errorf("%s changed without quiet_hours: %v -> %v", c.DecisionID, c.OldReasons, c.NewReasons)
		}
	}
	sort.Strings(want)
	sort.Strings(got)
	if len(want) < 20 {
		t.Fatalf("only %d decisions between 20:00 and 22:00: the trial does not test this", len(want))
	}
	if !slices.Equal(got, want) || rep.Changed != len(want) {
		t.Fatalf("changed decisions (%d, report says %d) are not exactly the %d between 20:00 and 22:00:\ngot  %v\nwant %v", len(got), rep.Changed, len(want), got, want)
	}
	if rep.Reproduced != len(tr.records) {
		t.Errorf("%d of %d reproduced with the old policy", rep.Reproduced, len(tr.records))
	}
	if len(rep.RuleSources) != 1 || rep.RuleSources[0].Rule != "unavailable" || rep.RuleSources[0].Change != "changed" {
		t.Errorf("rules whose source changed: %+v, want unavailable", rep.RuleSources)
	}
	if rep.RuleValues["unavailable"] != len(want) {
		t.Errorf("rule unavailable changed value in %d decisions, want %d (%v)", rep.RuleValues["unavailable"], len(want), rep.RuleValues)
	}
	t.Logf("%d of %d decisions change", rep.Changed, rep.Decisions)
}

// TestReplayReportsTampering: a changed draw, a changed action or a changed
// input in the log is a difference (exit 1) naming the file and line; a
// record of another revision is not checkable (exit 3); a broken line is
// an input error naming file and line (exit 2).
func TestReplayReportsTampering(t *testing.T) {
	tr := simulatedTrial(t)
	dir := t.TempDir()
	write := func(name string, lines [][]byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, append(bytes.Join(lines, []byte("\n")), '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	edit := func(i int, f func(m map[string]any)) []byte {
		var m map[string]any
		if err := json.Unmarshal(tr.lines[i], &m); err != nil {
			t.Fatal(err)
		}
		f(m)
		b, _ := json.Marshal(m)
		return b
	}
	find := func(pred func(*trial.Record) bool) int {
		for i, r := range tr.records {
			if pred(r) {
				return i
			}
		}
		t.Fatal("no such record in the trial")
		return -1
	}
	delivered := find(func(r *trial.Record) bool { return r.Action == trial.ActionDeliver })
	unavailable := find(func(r *trial.Record) bool { return !r.Available && r.Action == trial.ActionNone })
	lines := slices.Clone(tr.lines)
	lines[delivered] = edit(delivered, func(m map[string]any) {
		for _, f := range m["factors"].([]any) {
			if fm := f.(map[string]any); fm["name"] == "prompt" {
				fm["draw"] = 0.99
			}
		}
	})
	lines[unavailable] = edit(unavailable, func(m map[string]any) { m["action"] = "deliver" })
	p := write("tampered.jsonl", lines)
	code, out, errOut := runCLI(t, nil, "replay", "--study-dir", stressDir, "--decisions", p)
	if code != replayDiffers {
		t.Fatalf("exit %d, want %d\n%s\n%s", code, replayDiffers, out, errOut)
	}
	for _, want := range []string{
		fmt.Sprintf("tampered.jsonl:%d: decision %s", delivered+1, tr.records[delivered].ID),
		"factors.prompt.draw: 0.99 -> ",
		fmt.Sprintf("tampered.jsonl:%d: decision %s", unavailable+1, tr.records[unavailable].ID),
		`action: "deliver" -> "none"`,
		fmt.Sprintf("%d of %d reproduced exactly, 2 differ", len(tr.records)-2, len(tr.records)),
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}

	// An input changed after the fact no longer matches its hash.
	lines = slices.Clone(tr.lines)
	lines[0] = edit(0, func(m map[string]any) {
		in := m["input"].(map[string]any)
		in["local"].(map[string]any)["hour"] = 3
	})
	code, out, _ = runCLI(t, nil, "replay", "--study-dir", stressDir, "--decisions", write("input.jsonl", lines))
	if code != replayDiffers || !strings.Contains(out, "input.jsonl:1: decision "+tr.records[0].ID) || !strings.Contains(out, "input_hash") {
		t.Errorf("changed input: exit %d\n%s", code, out)
	}

	// Another revision cannot be checked.
	lines = slices.Clone(tr.lines)
	lines[3] = edit(3, func(m map[string]any) { m["policy_revision"] = "0123456789abcdef" })
	code, out, _ = runCLI(t, nil, "replay", "--study-dir", stressDir, "--decisions", write("rev.jsonl", lines))
	if code != replayNotCheckable || !strings.Contains(out, "policy 0123456789ab") || !strings.Contains(out, ": 1 decisions") {
		t.Errorf("other revision: exit %d, want %d\n%s", code, replayNotCheckable, out)
	}

	// A log of another study, or an empty one, is an input error.
	lines = [][]byte{edit(0, func(m map[string]any) { m["study"] = "mood-most" })}
	code, _, errOut = runCLI(t, nil, "replay", "--study-dir", stressDir, "--decisions", write("other.jsonl", lines))
	if code != replayUsage || !strings.Contains(errOut, "none of the 1 decisions read is of study stress-mrt (the first is of study mood-most)") {
		t.Errorf("other study: exit %d: %s", code, errOut)
	}
	code, _, errOut = runCLI(t, []byte("\n"), "replay", "--study-dir", stressDir, "--decisions", "-")
	if code != replayUsage || !strings.Contains(errOut, "no decisions to replay") {
		t.Errorf("empty log: exit %d: %s", code, errOut)
	}

	// A broken line names the file and line.
	lines = slices.Clone(tr.lines[:5])
	lines[2] = []byte(`{"decision_id": "x", "study": `)
	code, _, errOut = runCLI(t, nil, "replay", "--study-dir", stressDir, "--decisions", write("broken.jsonl", lines))
	if code != replayUsage || !strings.Contains(errOut, "broken.jsonl:3: not a JSON decision record") {
		t.Errorf("broken line: exit %d: %s", code, errOut)
	}
}

// TestReplayGolden pins the text reports: a reproduction of 3 decisions
// read from stdin and a comparison with the quiet-hours policy.
func TestReplayGolden(t *testing.T) {
	tr := simulatedTrial(t)
	// Decisions around 20:00 of the first day, read from stdin.
	var pick [][]byte
	for i, r := range tr.records {
		if strings.HasPrefix(r.LocalTime, "2026-11-02T2") || strings.HasPrefix(r.LocalTime, "2026-11-02T19") {
			pick = append(pick, tr.lines[i])
		}
	}
	stdin := append(bytes.Join(pick, []byte("\n")), '\n')
	code, out, errOut := runCLI(t, stdin, "replay", "--study-dir", stressDir, "--decisions", "-")
	if code != replayOK {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	golden(t, "replay_reproduce.txt", out)
	code, out, errOut = runCLI(t, stdin, "replay", "--study-dir", stressDir, "--decisions", "-", "--policy", quietHoursPolicy(t), "--examples", "3")
	if code != replayOK {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	golden(t, "replay_quiet_hours.txt", out)
}

// TestReplayUsage: flag errors exit 2 with a message.
func TestReplayUsage(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"replay"}, "give --study-dir DIR and one of --decisions FILE or --from-server URL"},
		{[]string{"replay", "--study-dir", stressDir, "--decisions", "x", "--from-server", "http://x"}, "one of --decisions"},
		{[]string{"replay", "--study-dir", "/nonexistent", "--decisions", "x"}, "--study-dir /nonexistent: no study.yaml there"},
		{[]string{"replay", "--study-dir", stressDir, "--decisions", "/nonexistent.jsonl"}, "opening the decisions"},
		{[]string{"replay", "--study-dir", stressDir, "--decisions", "x", "--format", "xml"}, "--format \"xml\""},
	} {
		code, _, errOut := runCLI(t, nil, tc.args...)
		if code != replayUsage || !strings.Contains(errOut, tc.want) {
			t.Errorf("%v: exit %d, stderr %q; want 2 and %q", tc.args, code, errOut, tc.want)
		}
	}
}

// TestExplainGolden pins the explanation of a delivered decision (with
// contraindicated candidates), an unavailable one (policy and engine
// reasons), a safety one, one where the delivery factor drew no prompt, and
// one made with another policy revision than the study folder's.
func TestExplainGolden(t *testing.T) {
	tr := simulatedTrial(t)
	cases := []struct {
		name string
		pred func(*trial.Record) bool
	}{
		{"deliver", func(r *trial.Record) bool { return r.Action == trial.ActionDeliver && len(r.Contraindicated) > 0 }},
		{"unavailable", func(r *trial.Record) bool { return slices.Contains(r.Reasons, "burden_min_gap") }},
		{"safety", func(r *trial.Record) bool { return r.Action == trial.ActionSafety }},
		{"no_prompt", func(r *trial.Record) bool { return slices.Contains(r.Reasons, decision.ReasonRandomisedNoPrompt) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			i := slices.IndexFunc(tr.records, tc.pred)
			if i < 0 {
				t.Fatal("no such decision in the trial")
			}
			id := tr.records[i].ID
			code, out, errOut := runCLI(t, nil, "explain", id, "--study-dir", stressDir, "--data", tr.data)
			if code != 0 {
				t.Fatalf("exit %d\n%s%s", code, out, errOut)
			}
			golden(t, "explain_"+tc.name+".txt", out)
			// The same decision from the JSONL file, as JSON.
			code, js, errOut := runCLI(t, nil, "explain", "--study-dir", stressDir, "--decisions", tr.jsonl, "--format", "json", id)
			if code != 0 {
				t.Fatalf("exit %d\n%s", code, errOut)
			}
			var ex decision.Explanation
			if err := json.Unmarshal([]byte(js), &ex); err != nil {
				t.Fatal(err)
			}
			if ex.DecisionID != id || !ex.PolicyEvaluated || ex.Reproduced == nil || !*ex.Reproduced || len(ex.Rules) == 0 || len(ex.Summary) < 3 {
				t.Errorf("JSON explanation: %s", js)
			}
		})
	}
	t.Run("other_revision", func(t *testing.T) {
		id := tr.records[slices.IndexFunc(tr.records, cases[1].pred)].ID
		code, out, errOut := runCLI(t, nil, "explain", id, "--study-dir", quietHoursPolicy(t), "--decisions", tr.jsonl)
		if code != 0 {
			t.Fatalf("exit %d\n%s%s", code, out, errOut)
		}
		golden(t, "explain_other_revision.txt", out)
		if strings.Contains(out, "Rules that fired") {
			t.Error("explained with another revision's rules")
		}
	})
	t.Run("errors", func(t *testing.T) {
		code, _, errOut := runCLI(t, nil, "explain", "01NOSUCHDECISION", "--study-dir", stressDir, "--data", tr.data)
		if code != 2 || !strings.Contains(errOut, "no decision 01NOSUCHDECISION of study stress-mrt") {
			t.Errorf("unknown id: exit %d: %s", code, errOut)
		}
		code, _, errOut = runCLI(t, nil, "explain", "--study-dir", stressDir, "--data", tr.data)
		if code != 2 || !strings.Contains(errOut, "give DECISION_ID") {
			t.Errorf("no id: exit %d: %s", code, errOut)
		}
	})
}

// BenchmarkReplay replays the simulated trial's log with its own policy.
func BenchmarkReplay(b *testing.B) {
	tr := simulatedTrial(b)
	b.ReportAllocs()
	ctx := context.Background()
	var secs float64
	for b.Loop() {
		rep, err := replay(ctx, replayParams{studyDir: stressDir}, decisionSource{file: tr.jsonl})
		if err != nil || rep.Reproduced != len(tr.records) {
			b.Fatal(err)
		}
		secs += rep.Seconds
	}
	// The replay loop only, without loading the study.
	b.ReportMetric(float64(len(tr.records)*b.N)/secs, "decisions/s")
}

// TestReplaySeedChange: a study.yaml with another seed changes exactly the
// randomised decisions (their draws), not the unavailable or safety ones,
// and the report warns about it.
func TestReplaySeedChange(t *testing.T) {
	tr := simulatedTrial(t)
	dir := filepath.Join(t.TempDir(), "stress-mrt")
	writeStudyCopy(t, dir, func(yaml []byte) []byte { return bytes.Replace(yaml, []byte("\nseed: "), []byte("\nseed: other-"), 1) })
	code, out, errOut := runCLI(t, nil, "replay", "--study-dir", stressDir, "--decisions", tr.jsonl, "--policy", dir, "--format", "json", "--examples", "100000")
	if code != replayOK {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	rep := replayJSON(t, out)
	want := 0
	for _, r := range tr.records {
		if r.Randomised {
			want++
		}
	}
	for _, c := range rep.Examples {
		if c.OldAction == trial.ActionSafety || slices.ContainsFunc(c.Differences, func(d decision.Difference) bool {
			return d.Field == "available" || d.Field == "unavailable_reasons"
		}) {
			t.Errorf("%s: a seed changed more than draws: %v", c.DecisionID, c.Differences)
		}
	}
	// Every randomised decision's draws change; it counts as changed only
	// when a level or the option does (the participant gets something
	// else), and as cosmetic otherwise.
	if rep.Changed+rep.Cosmetic != want || rep.Changed == 0 || rep.Cosmetic == 0 || len(rep.Warnings) != 1 || !strings.Contains(rep.Warnings[0], "another seed") {
		t.Errorf("%d decisions changed and %d cosmetic, want the %d randomised between them; warnings %q", rep.Changed, rep.Cosmetic, want, rep.Warnings)
	}
	for _, c := range rep.Examples {
		if !slices.ContainsFunc(c.Differences, func(d decision.Difference) bool {
			return strings.HasSuffix(d.Field, ".level") || d.Field == "option" || d.Field == "intervention.id"
		}) {
			t.Errorf("%s counted as changed without a level or option change: %v", c.DecisionID, c.Differences)
		}
	}
	if len(rep.RuleSources) != 0 || len(rep.RuleValues) != 0 {
		t.Errorf("no rule changed, but the report says %v %v", rep.RuleSources, rep.RuleValues)
	}
}

// BenchmarkExplain explains a delivered stress-mrt decision.
func BenchmarkExplain(b *testing.B) {
	tr := simulatedTrial(b)
	cat, _ := interventions.Embedded()
	study, err := policies.LoadStudy(context.Background(), stressDir, cat)
	if err != nil {
		b.Fatal(err)
	}
	rt, err := decision.NewRuntime(study)
	if err != nil {
		b.Fatal(err)
	}
	rec := tr.records[slices.IndexFunc(tr.records, func(r *trial.Record) bool { return r.Action == trial.ActionDeliver })]
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decision.Explain(context.Background(), rt, rec); err != nil {
			b.Fatal(err)
		}
	}
}

// TestReplayStudyYAMLChange: --policy applies the new version's study.yaml,
// not only its Rego. Quiet hours starting two hours earlier in study.yaml
// alone change exactly the decisions made between 20:00 and 22:00 local
// (safety decisions and participants with quiet hours of their own
// excepted), computed here from the records; another study id needs --as.
func TestReplayStudyYAMLChange(t *testing.T) {
	tr := simulatedTrial(t)
	dir := filepath.Join(t.TempDir(), "stress-mrt-v2")
	yaml := writeStudyCopy(t, dir, func(yaml []byte) []byte {
		if !bytes.Contains(yaml, []byte(`start: "22:00"`)) {
			t.Fatal("the example's quiet hours no longer start at 22:00")
		}
		return bytes.Replace(yaml, []byte(`start: "22:00"`), []byte(`start: "20:00"`), 1)
	})
	code, out, errOut := runCLI(t, nil, "replay", "--study-dir", stressDir, "--decisions", tr.jsonl, "--policy", dir, "--format", "json", "--examples", "100000")
	if code != replayOK {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	rep := replayJSON(t, out)
	var want, got []string
	for _, r := range tr.records {
		if decision.IsMissed(r) || r.Action == trial.ActionSafety {
			continue
		}
		lt, err := time.Parse(time.RFC3339, r.LocalTime)
		if err != nil {
			t.Fatal(err)
		}
		var in struct {
			State struct {
				Preferences map[string]any `json:"preferences"`
			} `json:"state"`
		}
		if err := json.Unmarshal(r.Input, &in); err != nil {
			t.Fatal(err)
		}
		if _, own := in.State.Preferences["quiet_hours"]; !own && lt.Hour() >= 20 && lt.Hour() < 22 {
			want = append(want, r.ID)
		}
	}
	for _, c := range rep.Examples {
		got = append(got, c.DecisionID)
	}
	slices.Sort(want)
	slices.Sort(got)
	if len(want) == 0 || !slices.Equal(got, want) {
		t.Fatalf("replay names %d decisions as changed, %d fall between 20:00 and 22:00 local", len(got), len(want))
	}
	if rep.Changed != len(want) || !slices.ContainsFunc(rep.Warnings, func(w string) bool { return strings.Contains(w, "quiet hours") }) {
		t.Fatalf("changed %d, warnings %q", rep.Changed, rep.Warnings)
	}

	renamed := bytes.Replace(yaml, []byte("\nid: stress-mrt"), []byte("\nid: stress-mrt-v2"), 1)
	if bytes.Equal(renamed, yaml) {
		t.Fatal("the example's id line moved")
	}
	if err := os.WriteFile(filepath.Join(dir, "study.yaml"), renamed, 0o644); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = runCLI(t, nil, "replay", "--study-dir", stressDir, "--decisions", tr.jsonl, "--policy", dir)
	if code != replayUsage || !strings.Contains(errOut, "--as") {
		t.Fatalf("another study id without --as: exit %d: %s", code, errOut)
	}
	code, out, errOut = runCLI(t, nil, "replay", "--study-dir", stressDir, "--decisions", tr.jsonl, "--policy", dir, "--as", "--format", "json")
	if code != replayOK {
		t.Fatalf("--as: exit %d\n%s", code, errOut)
	}
	if as := replayJSON(t, out); as.Changed != len(want) {
		t.Fatalf("--as: %d decisions change, want the same %d (input.study.id is no rule's business)", as.Changed, len(want))
	}
}

// writeStudyCopy copies the stress-mrt example to dir with its study.yaml
// edited; it returns the edited study.yaml.
func writeStudyCopy(t *testing.T, dir string, edit func([]byte) []byte) []byte {
	t.Helper()
	if err := os.CopyFS(dir, os.DirFS(stressDir)); err != nil {
		t.Fatal(err)
	}
	yaml, err := os.ReadFile(filepath.Join(dir, "study.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	yaml = edit(yaml)
	if err := os.WriteFile(filepath.Join(dir, "study.yaml"), yaml, 0o644); err != nil {
		t.Fatal(err)
	}
	return yaml
}
