package host_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jitai/jitai/engine/decision"
	"github.com/jitai/jitai/policies/policytest"

	"github.com/jitai/jitai/engine/trial"

	"github.com/jitai/jitai/engine"
	"github.com/jitai/jitai/plugins/host"
	"github.com/jitai/jitai/policies"
)

// gatePolicy makes availability and tailoring depend on input.derived.gate.
const gatePolicy = `package jitai.policy

blocked contains "enricher_blocks" if input.derived.gate.block == true

default gate_level := "none"

gate_level := input.derived.gate.level if input.derived.gate.level

decision := {
	"safety_reasons": [],
	"unavailable_reasons": [r | some r in blocked],
	"candidates": [{"id": id, "weight": 1} | some id in data.jitai.by_target.stress],
	"tailoring": {"gate_level": gate_level},
}
`

func TestEnricherValuesReachThePolicy(t *testing.T) {
	exe, sum := testPlugin(t)
	root := t.TempDir()
	blocking := policytest.WriteStudy(t, filepath.Join(root, "gate-block"), studyYAML("gate-block", "plugins:\n"+pluginYAML("gate", "enricher", exe, sum,
		`config: {derived: {block: true, level: 3}}`)), gatePolicy)
	open := policytest.WriteStudy(t, filepath.Join(root, "gate-open"), studyYAML("gate-open", "plugins:\n"+pluginYAML("gate", "enricher", exe, sum,
		`config: {derived: {block: false, level: 7}, version: "gate/2.1"}`)), gatePolicy)
	r := newRig(t, host.Options{}, blocking, open)
	at := time.Date(2026, 11, 2, 12, 0, 0, 0, time.UTC)
	for _, s := range []string{"gate-block", "gate-open"} {
		r.enroll(t, s, "p1")
	}

	rec := r.decide(t, "gate-block", "p1", at, nil)
	if rec.Action != trial.ActionNone || !contains(rec.Reasons, "enricher_blocks") {
		t.Fatalf("blocking enricher: action %s, reasons %v; want none for enricher_blocks", rec.Action, rec.Reasons)
	}
	if rec.Tailoring["gate_level"] != json.Number("3") && rec.Tailoring["gate_level"] != float64(3) {
		t.Errorf("tailoring %v, want gate_level 3 from the enricher", rec.Tailoring)
	}
	var in struct {
		Derived map[string]map[string]any `json:"derived"`
	}
	if err := json.Unmarshal(rec.Input, &in); err != nil {
		t.Fatal(err)
	}
	if in.Derived["gate"]["block"] != true {
		t.Errorf("recorded input's derived = %v, want gate.block true", in.Derived)
	}
	if len(rec.Plugins) != 1 || rec.Plugins[0].Name != "gate" || rec.Plugins[0].Version != "test/1" || rec.Plugins[0].Fallback != "" {
		t.Errorf("record plugins %+v, want gate test/1 without fallback", rec.Plugins)
	}

	rec = r.decide(t, "gate-open", "p1", at, nil)
	if rec.Action != trial.ActionDeliver {
		t.Fatalf("open enricher: action %s, reasons %v; want deliver", rec.Action, rec.Reasons)
	}
	if rec.Tailoring["gate_level"] != json.Number("7") && rec.Tailoring["gate_level"] != float64(7) {
		t.Errorf("tailoring %v, want gate_level 7", rec.Tailoring)
	}
	if rec.Plugins[0].Version != "gate/2.1" {
		t.Errorf("version %q, want gate/2.1", rec.Plugins[0].Version)
	}
}

// banditStudy has a delivery factor whose probability a plugin gives.
func banditStudy(id, exe, sum, pluginExtra string) string {
	return studyYAML(id, `delivery_factor: prompt
factors:
  - name: prompt
    type: within
    levels: [none, deliver]
    probability: 0.5
    bounds: [0.1, 0.8]
    probability_source: plugin
    plugin: bandit
outcomes:
  - {name: stress_90m, event: ema, variable: stress, from: 30m, to: 90m}
plugins:
`+pluginYAML("bandit", "probability", exe, sum, "outcome: stress_90m\n"+pluginExtra))
}

const deliverPolicy = `package jitai.policy

decision := {
	"safety_reasons": [],
	"unavailable_reasons": [],
	"candidates": [{"id": id, "weight": 1} | some id in data.jitai.by_target.stress],
}
`

func TestBanditProbabilitiesDriveRandomisation(t *testing.T) {
	exe, sum := testPlugin(t)
	root := t.TempDir()
	hi := policytest.WriteStudy(t, filepath.Join(root, "bandit-hi"), banditStudy("bandit-hi", exe, sum, "config: {probability: 0.97}"), deliverPolicy)
	lo := policytest.WriteStudy(t, filepath.Join(root, "bandit-lo"), banditStudy("bandit-lo", exe, sum, "config: {probability: 0.15}"), deliverPolicy)
	r := newRig(t, host.Options{}, hi, lo)
	base := time.Date(2026, 11, 2, 8, 0, 0, 0, time.UTC)
	const n = 300
	for _, tc := range []struct {
		study           string
		value, used     float64
		minRate, maxRat float64
	}{
		{"bandit-hi", 0.97, 0.8, 0.72, 0.88}, // clipped to the upper bound
		{"bandit-lo", 0.15, 0.15, 0.09, 0.22},
	} {
		r.enroll(t, tc.study, "p1", "p2", "p3")
		treated := 0
		for i := 0; i < n; i++ {
			rec := r.decide(t, tc.study, []string{"p1", "p2", "p3"}[i%3], base.Add(time.Duration(i)*time.Minute), nil)
			fd := rec.Factors[0]
			if fd.Plugin == nil || fd.Plugin.Value == nil || *fd.Plugin.Value != tc.value || fd.Plugin.Fallback != "" || fd.Plugin.Version != "test/1" {
				t.Fatalf("%s: factor draw plugin %+v, want value %v from test/1", tc.study, fd.Plugin, tc.value)
			}
			if *fd.Probability != tc.used || fd.Proposed == nil || *fd.Proposed != tc.value || fd.Source != policies.SourcePlugin {
				t.Fatalf("%s: probability %v proposed %v source %q; want %v (clipped) from %v", tc.study, *fd.Probability, fd.Proposed, fd.Source, tc.used, tc.value)
			}
			if want := *fd.Draw < tc.used; (fd.Level == 1) != want {
				t.Fatalf("%s: level %d with draw %v and probability %v", tc.study, fd.Level, *fd.Draw, tc.used)
			}
			if fd.Level == 1 {
				treated++
				if rec.Action != trial.ActionDeliver {
					t.Fatalf("treated but action %s", rec.Action)
				}
			}
		}
		rate := float64(treated) / n
		if rate < tc.minRate || rate > tc.maxRat {
			t.Errorf("%s: treated %.3f of decisions; with probability %v expected within [%v, %v]", tc.study, rate, tc.used, tc.minRate, tc.maxRat)
		}
		t.Logf("%s: provider %v, used %v, treated %.3f", tc.study, tc.value, tc.used, rate)
	}

	// Outcomes reach the provider: a stress report 45 minutes after p1's
	// first decision in bandit-lo falls in that decision's window.
	first := base
	ev := trial.Event{ID: "ema-1", Type: trial.EventEMA, Time: first.Add(45 * time.Minute), Data: json.RawMessage(`{"stress": 4}`)}
	if _, _, err := r.eng.Ingest(context.Background(), "bandit-lo", "p1", []trial.Event{ev}); err != nil {
		t.Fatal(err)
	}
	outcomes := filepath.Join(r.data, "plugins", "bandit-lo", "bandit", "outcomes.jsonl")
	// p1 decided at minutes 0, 3, 6, ...: those from 0 to 15 (window 30-90
	// minutes before the report at 45) get the report, one call each.
	// Closing the engine waits for the reports in flight, so the file is
	// complete then, however long the reports took.
	r.Close()
	lines := readJSONL(t, outcomes)
	if len(lines) != 6 {
		t.Errorf("%d outcome reports, want 6 (p1's decisions 0-15 minutes before the report's window end)", len(lines))
	}
	for _, l := range lines {
		if l["outcome"] != "stress_90m" || l["value"] != float64(4) || l["factor"] != "prompt" {
			t.Errorf("outcome report %v", l)
		}
	}
}

// TestCrashedPluginIsRestartedWhileDecisionsFallBack: decisions go on
// while a crashed plugin is down, falling back to the factor's
// probability, and use the plugin again once it is restarted. The test
// keeps the plugin down until decisions have fallen back, by putting
// another executable in its place (the host verifies the checksum before
// every restart, and keeps trying), rather than hoping decisions come
// within the restart backoff.
func TestCrashedPluginIsRestartedWhileDecisionsFallBack(t *testing.T) {
	built, sum := testPlugin(t)
	exe, raw := copyPlugin(t, built)
	s := policytest.WriteStudy(t, filepath.Join(t.TempDir(), "crash"), banditStudy("crash", exe, sum, "config: {probability: 0.7}"), deliverPolicy)
	r := newRig(t, host.Options{MinBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond, CheckInterval: 20 * time.Millisecond}, s)
	ids := []string{"a", "b", "c", "d"}
	r.enroll(t, "crash", ids...)
	firstPID := r.set("crash").PID("bandit")
	if firstPID == 0 {
		t.Fatal("plugin not running")
	}

	var (
		mu                      sync.Mutex
		fromPlugin, fellBack    int
		afterRestart, failed    int
		reasons                 = map[string]int{}
		killed, restarted, stop atomic.Bool
		seq                     atomic.Int64
	)
	base := time.Date(2026, 11, 2, 8, 0, 0, 0, time.UTC)
	var wg sync.WaitGroup
	for _, id := range ids {
		wg.Go(func() {
			for !stop.Load() {
				at := base.Add(time.Duration(seq.Add(1)) * time.Second)
				ans, err := r.eng.Decide(context.Background(), "crash", id, engine.DecideRequest{DecisionPoint: "app", Time: at})
				mu.Lock()
				if err != nil {
					failed++
					mu.Unlock()
					t.Errorf("decision failed: %v", err)
					return
				}
				fd := ans.Record.Factors[0]
				switch {
				case fd.Plugin.Fallback != "":
					fellBack++
					reasons[fd.Plugin.Reason]++
					if *fd.Probability != 0.5 || !strings.HasPrefix(fd.Source, "fixed") {
						t.Errorf("fallback probability %v source %q, want the factor's 0.5", *fd.Probability, fd.Source)
					}
				case *fd.Probability == 0.7:
					fromPlugin++
					if restarted.Load() {
						afterRestart++
					}
				default:
					t.Errorf("probability %v from the plugin, want 0.7", *fd.Probability)
				}
				mu.Unlock()
			}
		})
	}
	// Let decisions run on the plugin, kill it mid-load and keep it down
	// until decisions have fallen back, let it restart, then let decisions
	// run on the new process.
	waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return fromPlugin >= 20 })
	replaceFile(t, exe, append(slices.Clone(raw), 0)) // not the pinned executable
	if err := syscall.Kill(firstPID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed.Store(true)
	waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return reasons[trial.PluginUnavailable] >= 20 })
	replaceFile(t, exe, raw) // the pinned executable is back
	waitFor(t, func() bool {
		pid := r.set("crash").PID("bandit")
		return pid != 0 && pid != firstPID
	})
	restarted.Store(true)
	waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return afterRestart >= 20 })
	stop.Store(true)
	wg.Wait()

	t.Logf("from plugin %d (after restart %d), fallback %d %v, failed %d", fromPlugin, afterRestart, fellBack, reasons, failed)
	if failed != 0 {
		t.Errorf("%d decisions failed; a crashed plugin must never fail a decision", failed)
	}
	if fellBack == 0 || reasons[trial.PluginUnavailable] == 0 {
		t.Errorf("no decision fell back while the plugin was down (fallback reasons %v)", reasons)
	}
	if afterRestart < 20 {
		t.Errorf("%d decisions with plugin values after the restart", afterRestart)
	}
}

// TestSlowPluginCostsAtMostItsDeadline: a plugin that does not answer
// costs a decision its deadline, not its own time. The plugin sleeps two
// minutes before it answers, so however slow the machine the deadline
// comes first; a decision that waited for the plugin would take those
// two minutes, far more than the deadline plus the margin allowed for a
// loaded machine.
func TestSlowPluginCostsAtMostItsDeadline(t *testing.T) {
	exe, sum := testPlugin(t)
	root := t.TempDir()
	const deadline, margin = 150 * time.Millisecond, 30 * time.Second
	s := policytest.WriteStudy(t, filepath.Join(root, "slow"), banditStudy("slow", exe, sum, "timeout: 150ms\nconfig: {probability: 0.7, sleep: 2m}"), deliverPolicy)
	r := newRig(t, host.Options{}, s)
	r.enroll(t, "slow", "p1")
	base := time.Date(2026, 11, 2, 8, 0, 0, 0, time.UTC)
	for i := 0; i < 3; i++ {
		start := time.Now()
		rec := r.decide(t, "slow", "p1", base.Add(time.Duration(i)*time.Minute), nil)
		took := time.Since(start)
		fd := rec.Factors[0]
		if fd.Plugin.Fallback != policies.FallbackDefaultProbability || fd.Plugin.Reason != trial.PluginTimeout || *fd.Probability != 0.5 {
			t.Fatalf("plugin %+v probability %v; want the default 0.5 after a timeout", fd.Plugin, *fd.Probability)
		}
		if took > deadline+margin {
			t.Errorf("decision took %s with a %s plugin deadline", took, deadline)
		}
		if fd.Plugin.LatencyMicros < deadline.Microseconds() {
			t.Errorf("recorded plugin latency %dµs is below the deadline: did the call really wait?", fd.Plugin.LatencyMicros)
		}
		t.Logf("decision %d took %s (plugin call %dµs)", i, took, fd.Plugin.LatencyMicros)
	}

	// A slow enricher: its answer would block the decision; omitted, the
	// decision goes ahead within the deadline.
	gate := policytest.WriteStudy(t, filepath.Join(root, "slow-gate"), studyYAML("slow-gate", "plugins:\n"+pluginYAML("gate", "enricher", exe, sum,
		"timeout: 150ms\nconfig: {derived: {block: true}, sleep: 2m}")), gatePolicy)
	r = newRig(t, host.Options{}, gate)
	r.enroll(t, "slow-gate", "p1")
	start := time.Now()
	rec := r.decide(t, "slow-gate", "p1", base, nil)
	if took := time.Since(start); took > deadline+margin {
		t.Errorf("decision took %s with a %s enricher deadline", took, deadline)
	}
	if rec.Action != trial.ActionDeliver || rec.Plugins[0].Fallback != policies.FallbackOmit || rec.Plugins[0].Reason != trial.PluginTimeout {
		t.Errorf("action %s, enricher %+v; want deliver with the enricher omitted after a timeout", rec.Action, rec.Plugins[0])
	}
}

func TestChecksumMismatchIsRefused(t *testing.T) {
	exe, sum := testPlugin(t)
	wrong := "sha256:" + strings.Repeat("ab", 32)
	s := policytest.WriteStudy(t, filepath.Join(t.TempDir(), "pinned"), banditStudy("pinned", exe, wrong, ""), deliverPolicy)
	_, err := host.Start(s, host.Options{DataDir: t.TempDir()})
	if err == nil {
		t.Fatal("a plugin whose checksum does not match was started")
	}
	msg := err.Error()
	for _, want := range []string{"checksum mismatch", exe, "expects " + wrong, "is " + sum, "plugin bandit", "refusing to run it"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q does not say %q", msg, want)
		}
	}

	// Through the engine, the study is refused.
	_, err = engineWith(t, s)
	if err == nil || !strings.Contains(err.Error(), "checksum mismatch") {
		t.Errorf("engine.New: %v, want a checksum mismatch", err)
	}

	// A checksum file in sha256sum format pins it too.
	dir := t.TempDir()
	sums := filepath.Join(dir, "SHA256SUMS")
	if err := os.WriteFile(sums, []byte(strings.TrimPrefix(sum, "sha256:")+"  "+filepath.Base(exe)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	yaml := strings.Replace(banditStudy("sums", exe, "x", ""), "checksum: x", "checksum_file: "+sums, 1)
	s = policytest.WriteStudy(t, filepath.Join(t.TempDir(), "sums"), yaml, deliverPolicy)
	set, err := host.Start(s, host.Options{DataDir: t.TempDir()})
	if err != nil {
		t.Fatalf("checksum_file: %v", err)
	}
	_ = set.Close()
}

func engineWith(t *testing.T, s *policies.Study) (*engine.Engine, error) {
	return engine.New(engine.Components{Store: nilStore{}, Studies: []*policies.Study{s}, Plugins: host.Factory(host.Options{DataDir: t.TempDir()})})
}

// nilStore is a store for an engine that never decides.
type nilStore struct{ trial.Store }

const safetyPolicy = `package jitai.policy

decision := {
	"safety_reasons": [r | r := "risk_flag"; input.context.risk == true],
	"unavailable_reasons": [],
	"candidates": [{"id": id, "weight": 1} | some id in data.jitai.by_target.stress],
}
`

func notifierStudy(id, exe, sum, extra string) string {
	return studyYAML(id, "plugins:\n"+pluginYAML("alerts", "notifier", exe, sum, "retry: {attempts: 3, backoff: 20ms, max_backoff: 40ms}\n"+extra))
}

// TestNotifierRetriesThenDeadLetters: a notifier that keeps failing gets
// its attempts and then the dead-letter file; one that fails twice
// delivers at the third attempt; one that does not answer (it would take
// two minutes, past its one-minute deadline) holds up no decision.
func TestNotifierRetriesThenDeadLetters(t *testing.T) {
	exe, sum := testPlugin(t)
	root := t.TempDir()
	failing := policytest.WriteStudy(t, filepath.Join(root, "alerts-down"), notifierStudy("alerts-down", exe, sum, "config: {fail_notify: -1}"), safetyPolicy)
	flaky := policytest.WriteStudy(t, filepath.Join(root, "alerts-flaky"), notifierStudy("alerts-flaky", exe, sum, "config: {fail_notify: 2}"), safetyPolicy)
	stuck := policytest.WriteStudy(t, filepath.Join(root, "alerts-stuck"), notifierStudy("alerts-stuck", exe, sum, "timeout: 1m\nconfig: {notify_sleep: 2m}"), safetyPolicy)
	r := newRig(t, host.Options{}, failing, flaky, stuck)
	at := time.Date(2026, 11, 2, 12, 0, 0, 0, time.UTC)
	ids := map[string]string{}
	for _, s := range []string{"alerts-down", "alerts-flaky", "alerts-stuck"} {
		r.enroll(t, s, "p1")
		start := time.Now()
		rec := r.decide(t, s, "p1", at, map[string]any{"risk": true})
		if rec.Action != trial.ActionSafety {
			t.Fatalf("action %s, want safety", rec.Action)
		}
		// Far below the stuck notifier's minute; the margin is for a
		// loaded machine.
		if took := time.Since(start); took > testTimeout {
			t.Errorf("%s: a safety decision took %s: notifying must not hold it up", s, took)
		}
		ids[s] = rec.ID
		// Not a safety decision: not notified.
		r.decide(t, s, "p1", at.Add(time.Minute), nil)
	}

	dead := filepath.Join(r.data, "plugins", "alerts-down", "alerts.outbox", "dead-letter.jsonl")
	got := filepath.Join(r.data, "plugins", "alerts-flaky", "alerts", "notified.jsonl")
	waitFor(t, func() bool { return len(readJSONL(t, dead)) > 0 && len(readJSONL(t, got)) > 0 })
	// Closed, the outboxes write nothing more: what the files hold now is
	// all there will be.
	r.Close()
	lines := readJSONL(t, dead)
	if len(lines) != 1 {
		t.Fatalf("%d dead letters, want 1", len(lines))
	}
	n := lines[0]["notification"].(map[string]any)
	if n["decision"].(map[string]any)["decision_id"] != ids["alerts-down"] || n["action"] != "safety" || lines[0]["attempts"] != float64(3) {
		t.Errorf("dead letter %v, want decision %s after 3 attempts", lines[0], ids["alerts-down"])
	}
	if spooled, _ := filepath.Glob(filepath.Join(r.data, "plugins", "alerts-down", "alerts.outbox", "spool", "*")); len(spooled) != 0 {
		t.Errorf("spool still holds %v after dead-lettering", spooled)
	}

	lines = readJSONL(t, got)
	d := lines[0]["decision"].(map[string]any)
	if len(lines) != 1 || d["decision_id"] != ids["alerts-flaky"] || lines[0]["attempt"] != float64(3) || lines[0]["action"] != "safety" {
		t.Errorf("notified %v, want decision %s delivered at attempt 3", lines, ids["alerts-flaky"])
	}
	if _, err := os.Stat(filepath.Join(r.data, "plugins", "alerts-flaky", "alerts.outbox", "dead-letter.jsonl")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a notification delivered at the third attempt was dead-lettered (%v)", err)
	}
	if stuck := readJSONL(t, filepath.Join(r.data, "plugins", "alerts-stuck", "alerts", "notified.jsonl")); len(stuck) != 0 {
		t.Errorf("the stuck notifier recorded %v; its calls were to be cut off", stuck)
	}
}

func TestPendingNotificationsSurviveARestart(t *testing.T) {
	exe, sum := testPlugin(t)
	data := t.TempDir()
	// First run: the notifier fails and the next attempt is an hour away.
	down := policytest.WriteStudy(t, filepath.Join(t.TempDir(), "alerts"), studyYAML("alerts", "plugins:\n"+pluginYAML("alerts", "notifier", exe, sum,
		"retry: {attempts: 5, backoff: 1h, max_backoff: 1h}\nconfig: {fail_notify: -1}")), safetyPolicy)
	seen := newCalls()
	set, err := host.Start(down, host.Options{DataDir: data, Observer: seen})
	if err != nil {
		t.Fatal(err)
	}
	note := engine.Notification{ID: "d-1/alerts", Decision: decision.PluginDecision{Study: "alerts", Participant: "p1", DecisionID: "d-1", Time: time.Now()}, Action: "safety", Reasons: []string{"risk_flag"}}
	set.Notifier("alerts").Notify(note)
	spool := filepath.Join(data, "alerts", "alerts.outbox", "spool", "*.json")
	// The first attempt fails (Close lets the outbox record it).
	waitFor(t, func() bool { return seen.count("notify", trial.PluginError) == 1 })
	if err := set.Close(); err != nil {
		t.Fatal(err)
	}
	if m, _ := filepath.Glob(spool); len(m) != 1 {
		t.Fatalf("spool after close: %v, want the pending notification", m)
	}

	// Second run, notifier working: the spooled notification is delivered.
	up := policytest.WriteStudy(t, filepath.Join(t.TempDir(), "alerts"), studyYAML("alerts", "plugins:\n"+pluginYAML("alerts", "notifier", exe, sum, "config: {fail_notify: 0}")), safetyPolicy)
	set, err = host.Start(up, host.Options{DataDir: data})
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	var lines []map[string]any
	waitFor(t, func() bool {
		lines = readJSONL(t, filepath.Join(data, "alerts", "alerts", "notified.jsonl"))
		return len(lines) > 0
	})
	if lines[0]["id"] != "d-1/alerts" || lines[0]["attempt"].(float64) < 2 {
		t.Errorf("delivered %v, want d-1/alerts on a later attempt", lines[0])
	}
}

// waitFor polls cond until it holds, failing t after a minute: long
// enough for a loaded machine, so only something that never happens fails.
func waitFor(t testing.TB, cond func() bool) {
	t.Helper()
	const limit = time.Minute
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s", limit)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func readJSONL(t testing.TB, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			continue // a line being written
		}
		out = append(out, m)
	}
	return out
}

// TestNotificationsHandedOverOnReload: a hot reload starts the new study
// version's plugins before it retires the old; a safety decision made on
// the old version as it is retired is spooled and delivered by the new.
func TestNotificationsHandedOverOnReload(t *testing.T) {
	exe, sum := testPlugin(t)
	data := t.TempDir()
	opts := host.Options{DataDir: data, OutboxRescan: 50 * time.Millisecond}
	yaml := studyYAML("alerts", "plugins:\n"+pluginYAML("alerts", "notifier", exe, sum, "config: {fail_notify: 0}"))
	old, err := host.Start(policytest.WriteStudy(t, filepath.Join(t.TempDir(), "alerts"), yaml, safetyPolicy), opts)
	if err != nil {
		t.Fatal(err)
	}
	next, err := host.Start(policytest.WriteStudy(t, filepath.Join(t.TempDir(), "alerts"), yaml, safetyPolicy), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer next.Close()
	retiring := old.Notifier("alerts")
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
	retiring.Notify(engine.Notification{ID: "d-9/alerts", Decision: decision.PluginDecision{Study: "alerts", Participant: "p1", DecisionID: "d-9", Time: time.Now()}, Action: "safety"})
	var lines []map[string]any
	waitFor(t, func() bool {
		lines = readJSONL(t, filepath.Join(data, "alerts", "alerts", "notified.jsonl"))
		return len(lines) > 0
	})
	if len(lines) != 1 || lines[0]["id"] != "d-9/alerts" {
		t.Errorf("delivered %v, want d-9/alerts once", lines)
	}
}

// TestPluginsDoNotInheritTheEngineEnvironment: the engine's environment
// holds secrets (store URLs, tokens); a plugin gets PATH and little else.
func TestPluginsDoNotInheritTheEngineEnvironment(t *testing.T) {
	t.Setenv("JITAI_TEST_SECRET", "s3cret")
	exe, sum := testPlugin(t)
	root := t.TempDir()
	echo := func(name string) map[string]any {
		id := "env-" + strings.ToLower(strings.ReplaceAll(name, "_", "-"))
		s := policytest.WriteStudy(t, filepath.Join(root, id), studyYAML(id, "plugins:\n"+pluginYAML("gate", "enricher", exe, sum, "config: {echo_env: "+name+"}")), gatePolicy)
		set, err := host.Start(s, host.Options{DataDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		defer set.Close()
		out, err := set.Enricher("gate").Enrich(context.Background(), decision.PluginDecision{}, []byte(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	if got := echo("JITAI_TEST_SECRET"); got["set"] != false {
		t.Errorf("the plugin sees JITAI_TEST_SECRET: %v", got)
	}
	if got := echo("PATH"); got["set"] != true {
		t.Errorf("the plugin has no PATH: %v", got)
	}
}

// TestReplacedExecutableIsNotRestarted: the checksum is verified again
// before every restart, so a plugin whose file was swapped while it ran
// stays down (and decisions fall back) instead of running the new file.
func TestReplacedExecutableIsNotRestarted(t *testing.T) {
	built, sum := testPlugin(t)
	exe, raw := copyPlugin(t, built)
	s := policytest.WriteStudy(t, filepath.Join(t.TempDir(), "swap"), banditStudy("swap", exe, sum, "config: {probability: 0.7}"), deliverPolicy)
	seen := newCalls()
	r := newRig(t, host.Options{MinBackoff: 20 * time.Millisecond, CheckInterval: 10 * time.Millisecond, Observer: seen}, s)
	r.enroll(t, "swap", "p1")
	pid := r.set("swap").PID("bandit")
	// Still a working plugin executable, but not the pinned one.
	replaceFile(t, exe, append(slices.Clone(raw), 0))
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return seen.count("restart", "") >= 3 }) // restart attempts
	if n := seen.count("restart", trial.PluginOK); n != 0 {
		t.Fatalf("%d restarts of a replaced executable succeeded", n)
	}
	if got := r.set("swap").PID("bandit"); got != 0 {
		t.Fatalf("a replaced executable was started (pid %d)", got)
	}
	rec := r.decide(t, "swap", "p1", time.Date(2026, 11, 2, 8, 0, 0, 0, time.UTC), nil)
	if fd := rec.Factors[0]; fd.Plugin.Reason != trial.PluginUnavailable || *fd.Probability != 0.5 {
		t.Errorf("plugin %+v probability %v, want the fallback 0.5 while the plugin is refused", fd.Plugin, *fd.Probability)
	}
}

// copyPlugin copies a built plugin executable to a folder of the test's
// own, where the test may replace it; it returns the copy's path and the
// executable's bytes.
func copyPlugin(t *testing.T, built string) (string, []byte) {
	t.Helper()
	raw, err := os.ReadFile(built)
	if err != nil {
		t.Fatal(err)
	}
	exe := filepath.Join(t.TempDir(), filepath.Base(built))
	if err := os.WriteFile(exe, raw, 0o755); err != nil {
		t.Fatal(err)
	}
	return exe, raw
}

// replaceFile puts an executable with content raw at path by a rename (a
// running executable cannot be written).
func replaceFile(t *testing.T, path string, raw []byte) {
	t.Helper()
	if err := os.WriteFile(path+".new", raw, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(path+".new", path); err != nil {
		t.Fatal(err)
	}
}
