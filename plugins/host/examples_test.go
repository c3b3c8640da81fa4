package host_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/jitai/jitai/engine"
	"github.com/jitai/jitai/engine/api"
	"github.com/jitai/jitai/engine/trial"
	"github.com/jitai/jitai/plugins/host"
	"github.com/jitai/jitai/policies/policytest"
)

const exampleStudy = "../examples/stress-mrt-plugins"

// TestExampleStudyRegoTests loads the example plugin study as committed
// (no plugin needs to be built for that) and runs its Rego tests.
func TestExampleStudyRegoTests(t *testing.T) {
	policytest.RunRegoTests(t, policytest.Load(t, exampleStudy), 20)
}

// exampleLayout builds the example plugins and lays the example study out
// as in the repository after make plugins: <root>/bin/plugins holds the
// executables and SHA256SUMS, <root>/plugins/examples/<study> the study, so
// that the study's relative paths and checksum_file work unchanged. The
// plugins' deadlines become testTimeout: the tests are not about deadlines
// and must not depend on how fast a loaded machine answers.
func exampleLayout(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	bin := filepath.Join(root, "bin", "plugins")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	var sums strings.Builder
	for _, name := range []string{"sleepdebt", "thompson", "alertfile"} {
		built := buildPlugin(t, "plugins/examples/"+name)
		raw, err := os.ReadFile(built)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(bin, name), raw, 0o755); err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&sums, "%s  %s\n", strings.TrimPrefix(sha256File(t, built), "sha256:"), name)
	}
	if err := os.WriteFile(filepath.Join(bin, "SHA256SUMS"), []byte(sums.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "plugins", "examples", "stress-mrt-plugins")
	for _, f := range []string{"study.yaml", "policy/policy.rego", "policy/policy_test.rego"} {
		raw, err := os.ReadFile(filepath.Join(exampleStudy, f))
		if err != nil {
			t.Fatal(err)
		}
		if f == "study.yaml" {
			raw = widenTimeouts(t, raw)
		}
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), raw, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// onDemand is the example study's app-requested point (the app's "I need
// support now" button), which the app may ask for at any time; each
// scheduled point has one decision a day, made by the trial clock at its
// instant.
const onDemand = "on_demand"

// widenTimeouts sets every plugin's timeout in a study.yaml to
// testTimeout.
func widenTimeouts(t *testing.T, yaml []byte) []byte {
	t.Helper()
	re := regexp.MustCompile(`(?m)^(\s+timeout:) \S+$`)
	if n := len(re.FindAll(yaml, -1)); n != 3 {
		t.Fatalf("the example study has %d plugin timeouts, want 3 (one per plugin)", n)
	}
	return re.ReplaceAll(yaml, []byte("${1} "+testTimeout.String()))
}

// TestExampleStudyWithItsPlugins runs the example study with the example
// plugins: the sleep-debt enricher tailors evening decisions, the Thompson
// sampler learns from stress reports that a prompt helps and raises the
// delivery probability (clipped by the engine), keeps what it learned
// across a restart, and a safety decision reaches the clinician alerts file.
func TestExampleStudyWithItsPlugins(t *testing.T) {
	dir := exampleLayout(t)
	// Load it by a relative path, as jitai serve --studies plugins/examples
	// does from the repository's root: plugin paths resolve against the
	// study's folder, not the plugin's working folder.
	t.Chdir(filepath.Dir(filepath.Dir(filepath.Dir(dir))))
	dir = filepath.Join("plugins", "examples", "stress-mrt-plugins")
	study := policytest.Load(t, dir)
	data := t.TempDir()
	seen := newCalls()
	r := newRigAt(t, data, host.Options{Observer: seen}, study)
	const sid = "stress-mrt-plugins"
	r.enroll(t, sid, "p1", "p2")
	ctx := context.Background()
	day0 := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC) // London is on UTC in November
	ev, reports := 0, 0
	ingest := func(p string, at time.Time, data string) {
		ev++
		e := trial.Event{ID: fmt.Sprintf("e%d", ev), Type: trial.EventEMA, Time: at, Data: json.RawMessage(data)}
		if _, _, err := r.eng.Ingest(ctx, sid, p, []trial.Event{e}); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(data, "stress") {
			reports++ // in the window of exactly one decision
		}
	}
	// Outcome reports go to the provider asynchronously: wait for them
	// before each decision, so that what the provider has learned by then
	// does not depend on the machine's speed.
	reported := func() {
		t.Helper()
		waitFor(t, func() bool { return seen.count("outcome", "") >= reports })
		if n, ok := seen.count("outcome", ""), seen.count("outcome", trial.PluginOK); n != reports || ok != n {
			t.Fatalf("%d outcome reports to the provider (%d ok), want %d, all ok", n, ok, reports)
		}
	}
	var first, last *trial.FactorDraw
	var evening *trial.Record
	for d := 0; d < 8; d++ {
		day := day0.AddDate(0, 0, d)
		for _, p := range []string{"p1", "p2"} {
			ingest(p, day.Add(7*time.Hour), `{"sleep_hours": 5}`) // 3 hours short each night
		}
		for _, dp := range study.Config.DecisionPoints {
			if dp.Kind != "scheduled" {
				continue
			}
			minute, _ := trial.ParseClock(dp.Time)
			at := day.Add(time.Duration(minute) * time.Minute)
			for _, p := range []string{"p1", "p2"} {
				reported()
				// The app asks for support (the app point on_demand) at
				// each scheduled point's time of day.
				ans, err := r.eng.Decide(ctx, sid, p, engine.DecideRequest{DecisionPoint: onDemand, Time: at})
				if err != nil {
					t.Fatal(err)
				}
				rec := ans.Record
				if len(rec.Plugins) != 1 || rec.Plugins[0].Version != "sleepdebt/1.0.0" || rec.Plugins[0].Fallback != "" {
					t.Fatalf("enricher call %+v", rec.Plugins)
				}
				if d == 4 && dp.ID == "evening" {
					evening = rec
				}
				if !rec.Randomised {
					continue
				}
				fd := rec.Factors[0]
				if fd.Plugin == nil || fd.Plugin.Version != "thompson-beta-bernoulli/1.0.0" || fd.Plugin.Fallback != "" {
					t.Fatalf("provider call %+v", fd.Plugin)
				}
				if first == nil {
					first = &fd
				}
				last = &fd
				// A prompt helps: stress 2 after one, 6 without.
				stress := 6
				if fd.Level == 1 {
					stress = 2
				}
				ingest(p, at.Add(45*time.Minute), fmt.Sprintf(`{"stress": %d}`, stress))
			}
		}
	}
	if evening == nil || evening.Tailoring["need"] != "sleep" || evening.Tailoring["sleep_debt_hours"] == nil {
		t.Errorf("day 4 evening tailoring %v, want need sleep with the enricher's debt", evening.Tailoring)
	}
	if *first.Plugin.Value != 0.5 || *first.Probability != 0.5 {
		t.Errorf("first probability %v (provider %v), want 0.5 from the flat prior", *first.Probability, *first.Plugin.Value)
	}
	if *last.Plugin.Value < 0.85 || *last.Probability != 0.8 || *last.Proposed != *last.Plugin.Value {
		t.Errorf("after learning: provider %v, used %v; want the provider near its own 0.9 clip and the engine at the bound 0.8", *last.Plugin.Value, *last.Probability)
	}

	// A safety decision alerts the clinician.
	ans, err := r.eng.Decide(ctx, sid, "p1", engine.DecideRequest{DecisionPoint: onDemand, Time: day0.AddDate(0, 0, 9).Add(9 * time.Hour), Context: map[string]any{"risk": true}})
	if err != nil || ans.Record.Action != trial.ActionSafety {
		t.Fatalf("safety decision: %v %+v", err, ans)
	}
	alerts := filepath.Join(data, "plugins", sid, "clinician", "alerts.jsonl")
	var lines []map[string]any
	waitFor(t, func() bool { lines = readJSONL(t, alerts); return len(lines) > 0 })
	if lines[0]["decision_id"] != ans.Record.ID || lines[0]["reasons"].([]any)[0] != "risk_flag" {
		t.Errorf("alert %v", lines[0])
	}

	// The bandit's posterior survives a restart of the engine and plugins.
	learned := *last.Plugin.Value
	r.Close()
	r = newRigAt(t, data, host.Options{}, policytest.Load(t, dir))
	var fd *trial.FactorDraw
	for _, dp := range study.Config.DecisionPoints {
		if dp.Kind != "scheduled" {
			continue
		}
		minute, _ := trial.ParseClock(dp.Time)
		ans, err := r.eng.Decide(ctx, sid, "p2", engine.DecideRequest{DecisionPoint: onDemand, Time: day0.AddDate(0, 0, 10).Add(time.Duration(minute) * time.Minute)})
		if err != nil {
			t.Fatal(err)
		}
		if ans.Record.Randomised {
			fd = &ans.Record.Factors[0]
			break
		}
	}
	if fd == nil {
		t.Fatal("no randomised decision after the restart")
	}
	if *fd.Plugin.Value < learned-0.05 {
		t.Errorf("after a restart the provider says %v; it had learned %v", *fd.Plugin.Value, learned)
	}
	t.Logf("provider: %v at first, %v after learning, %v after a restart", *first.Plugin.Value, learned, *fd.Plugin.Value)
}

// TestErasureReachesTheExamplePlugins: erasing a participant (DELETE
// /v1/studies/{study}/participants/{p}) removes their sleep history from the sleepdebt plugin
// and their alerts from the alertfile plugin, and keeps everyone else's.
func TestErasureReachesTheExamplePlugins(t *testing.T) {
	dir := exampleLayout(t)
	data := t.TempDir()
	r := newRigAt(t, data, host.Options{}, policytest.Load(t, dir))
	const sid = "stress-mrt-plugins"
	r.enroll(t, sid, "p1", "p2")
	ctx := context.Background()
	day := time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)
	for i, p := range []string{"p1", "p2"} {
		e := trial.Event{ID: fmt.Sprintf("e%d", i), Type: trial.EventEMA, Time: day.Add(7 * time.Hour), Data: json.RawMessage(`{"sleep_hours": 5}`)}
		if _, _, err := r.eng.Ingest(ctx, sid, p, []trial.Event{e}); err != nil {
			t.Fatal(err)
		}
		if _, err := r.eng.Decide(ctx, sid, p, engine.DecideRequest{DecisionPoint: onDemand, Time: day.Add(8*time.Hour + 30*time.Minute)}); err != nil {
			t.Fatal(err)
		}
		ans, err := r.eng.Decide(ctx, sid, p, engine.DecideRequest{DecisionPoint: onDemand, Time: day.Add(11*time.Hour + 30*time.Minute), Context: map[string]any{"risk": true}})
		if err != nil || ans.Record.Action != trial.ActionSafety {
			t.Fatalf("safety decision: %v %+v", err, ans)
		}
	}
	alerts := filepath.Join(data, "plugins", sid, "clinician", "alerts.jsonl")
	waitFor(t, func() bool { return len(readJSONL(t, alerts)) == 2 })
	state := filepath.Join(data, "plugins", sid, "sleep", "sleepdebt-state.json")
	nights := func() map[string]any {
		raw, err := os.ReadFile(state)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		return m
	}
	if m := nights(); m["p1"] == nil || m["p2"] == nil {
		t.Fatalf("sleep history before erasure: %v", m)
	}

	srv := httptest.NewServer(api.New(r.eng, zap.NewNop(), api.Options{}))
	defer srv.Close()
	if code := deleteParticipant(t, srv.URL, sid, "p1"); code != http.StatusOK {
		t.Fatalf("DELETE participant: %d", code)
	}
	if m := nights(); m["p1"] != nil || m["p2"] == nil {
		t.Errorf("sleep history after erasing p1: %v", m)
	}
	lines := readJSONL(t, alerts)
	if len(lines) != 1 || lines[0]["participant_id"] != "p2" {
		t.Errorf("alerts after erasing p1: %v, want p2's only", lines)
	}
}

func deleteParticipant(t *testing.T, base, study, participant string) int {
	t.Helper()
	req, err := http.NewRequest(http.MethodDelete, base+"/v1/studies/"+study+"/participants/"+participant, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
