package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/jitai/jitai/engine/trial"
)

// TestSimulateCommand runs `jitai simulate` end to end on a small cohort
// read from a cohort.yaml and checks what it writes.
func TestSimulateCommand(t *testing.T) {
	dir := t.TempDir()
	cohort := filepath.Join(dir, "cohort.yaml")
	if err := os.WriteFile(cohort, []byte("engagement:\n  open: 0.8\neffects:\n  stress: -1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "report")
	var stdout, stderr bytes.Buffer
	args := []string{"simulate", "--study-dir", "../../policies/examples/stress-mrt", "--participants", "6", "--days", "3", "--seed", "9",
		"--cohort", cohort, "--out", out, "--start", "2026-06-01"}
	if code := run(args, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d\n%s%s", code, stdout.String(), stderr.String())
	}
	if !strings.Contains(stdout.String(), "study stress-mrt: 6 participants x 3 days from 2026-06-01") {
		t.Errorf("summary:\n%s", stdout.String())
	}
	// Not a terminal: no progress bar.
	if strings.Contains(stderr.String(), "participant-days  ") || strings.Contains(stderr.String(), "\r") {
		t.Errorf("progress drawn on a non-terminal: %q", stderr.String())
	}
	for _, f := range []string{"report.html", "report.json", "participant_days.csv", "factors.csv", "availability.csv", "hours.csv", "decisions.jsonl"} {
		if st, err := os.Stat(filepath.Join(out, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
	var rep struct {
		Run struct {
			Cohort struct {
				Engagement struct {
					Open float64 `json:"open"`
				} `json:"engagement"`
			} `json:"cohort"`
		} `json:"run"`
		Totals struct {
			Decisions int `json:"decisions"`
		} `json:"totals"`
		Availability struct {
			ByDecisionPoint []struct {
				ID        string `json:"id"`
				Decisions int    `json:"decisions"`
			} `json:"by_decision_point"`
		} `json:"availability"`
	}
	b, _ := os.ReadFile(filepath.Join(out, "report.json"))
	if err := json.Unmarshal(b, &rep); err != nil {
		t.Fatal(err)
	}
	// Each of the 5 scheduled points every day; the app point on_demand on
	// some days.
	scheduled, all := 0, 0
	for _, dp := range rep.Availability.ByDecisionPoint {
		if dp.ID != onDemand {
			scheduled += dp.Decisions
		}
		all += dp.Decisions
	}
	if rep.Run.Cohort.Engagement.Open != 0.8 || scheduled != 6*3*5 || rep.Totals.Decisions != all {
		t.Errorf("report.json: cohort open %v, %d decisions, %d of scheduled points", rep.Run.Cohort.Engagement.Open, rep.Totals.Decisions, scheduled)
	}
}

func TestSimulateCommandErrors(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "cohort.yaml")
	if err := os.WriteFile(bad, []byte("phone:\n  in_use: 2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no study", []string{"--out", dir}, 2, "--study-dir and --out are required"},
		{"bad date", []string{"--study-dir", "../../policies/examples/stress-mrt", "--out", dir, "--start", "03/02/2026"}, 2, "--start"},
		{"bad cohort", []string{"--study-dir", "../../policies/examples/stress-mrt", "--out", dir, "--cohort", bad}, 1, bad + ":2: phone.in_use: 2 is not a probability"},
		{"no such study", []string{"--study-dir", filepath.Join(dir, "nope"), "--out", dir}, 1, "nope"},
		{"zero days", []string{"--study-dir", "../../policies/examples/stress-mrt", "--out", dir, "--days", "0"}, 2, "at least 1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(append([]string{"simulate"}, c.args...), &stdout, &stderr)
			if code != c.code || !strings.Contains(stderr.String(), c.want) {
				t.Errorf("exit %d (want %d), stderr %q lacks %q", code, c.code, stderr.String(), c.want)
			}
		})
	}
}

// TestSimulateCommandSpill: the command spills its records into the report
// folder and removes the spill file when done; decisions.jsonl holds every
// decision in (time, id) order.
func TestSimulateCommandSpill(t *testing.T) {
	out := filepath.Join(t.TempDir(), "report")
	var stdout, stderr bytes.Buffer
	args := []string{"simulate", "--study-dir", "../../policies/examples/stress-mrt", "--participants", "7", "--days", "4", "--seed", "3", "--out", out}
	if code := run(args, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d\n%s%s", code, stdout.String(), stderr.String())
	}
	entries, err := os.ReadDir(out)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := "availability.csv decisions.jsonl factors.csv hours.csv participant_days.csv report.html report.json"; strings.Join(names, " ") != want {
		t.Errorf("report folder holds %v, want %s", names, want)
	}
	b, err := os.ReadFile(filepath.Join(out, "decisions.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.Split(bytes.TrimSuffix(b, []byte("\n")), []byte("\n"))
	if n := scheduledRecords(t, b); n != 7*4*5 || len(lines) < n {
		t.Fatalf("%d records, %d of scheduled points, want %d", len(lines), n, 7*4*5)
	}
	var prevTime, prevID string
	for i, l := range lines {
		var rec struct {
			ID   string `json:"decision_id"`
			Time string `json:"time"`
		}
		if err := json.Unmarshal(l, &rec); err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		// The simulated times are whole seconds in UTC, so the text orders them.
		if i > 0 && (rec.Time < prevTime || rec.Time == prevTime && rec.ID <= prevID) {
			t.Fatalf("line %d (%s %s) is not after line %d (%s %s)", i+1, rec.Time, rec.ID, i, prevTime, prevID)
		}
		prevTime, prevID = rec.Time, rec.ID
	}
}

// scheduledRecords counts the records of scheduled points in a
// decisions.jsonl (the simulator decides each of them every day, and the
// app point on_demand on about half the days).
func scheduledRecords(t *testing.T, jsonl []byte) int {
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

// TestSimulateEvaluatorsRecordTheSameTrial: a whole simulated trial of each
// example study, run once with the planned-IR evaluator and once with
// topdown (JITAI_EVALUATOR), records byte-identical decisions, but for
// latency_us, the measured wall time of each decision.
var latencyRe = regexp.MustCompile(`"latency_us":[0-9]+`)

func TestSimulateEvaluatorsRecordTheSameTrial(t *testing.T) {
	for _, study := range []string{"stress-mrt", "mood-most"} {
		t.Run(study, func(t *testing.T) {
			var files [2][]byte
			var deliveries int
			for i, ev := range []string{"ir", "topdown"} {
				t.Setenv("JITAI_EVALUATOR", ev)
				out := filepath.Join(t.TempDir(), ev)
				var stdout, stderr bytes.Buffer
				args := []string{"simulate", "--study-dir", "../../policies/examples/" + study, "--participants", "40", "--days", "14", "--seed", "3",
					"--out", out, "--start", "2026-06-01"}
				if code := run(args, &stdout, &stderr); code != 0 {
					t.Fatalf("%s: exit %d\n%s%s", ev, code, stdout.String(), stderr.String())
				}
				b, err := os.ReadFile(filepath.Join(out, "decisions.jsonl"))
				if err != nil {
					t.Fatal(err)
				}
				files[i] = latencyRe.ReplaceAll(b, []byte(`"latency_us":0`))
				deliveries = strings.Count(string(b), `"action":"deliver"`)
			}
			if !bytes.Equal(files[0], files[1]) {
				t.Fatalf("the evaluators recorded different trials (%d and %d bytes)", len(files[0]), len(files[1]))
			}
			if n := scheduledRecords(t, files[0]); n == 0 || n%(40*14) != 0 || deliveries == 0 {
				t.Fatalf("%d decisions of scheduled points, %d deliveries: the trial did not run", n, deliveries)
			}
		})
	}
}
