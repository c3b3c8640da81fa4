package engine_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jitai/jitai/engine/trial"

	"github.com/jitai/jitai/engine"
	"github.com/jitai/jitai/engine/store/sqlite"
	"github.com/jitai/jitai/interventions"
	"github.com/jitai/jitai/policies"
	"github.com/jitai/jitai/policies/policytest"
)

// reloadStudyYAML is a study with no randomisation and no caps: every
// decision delivers, so the reason alone tells which policy made it.
const reloadStudyYAML = `id: swap
name: Reload test
timezone: Europe/London
seed: "swap-seed-0123456789"
decision_points:
  - {id: app, kind: app}
crisis:
  text: "Call 116 123."
`

// reloadPolicy is a policy whose every decision carries its version in the
// candidate's reason and in the tailoring.
func reloadPolicy(version string) string {
	return `package jitai.policy

decision := {
	"safety_reasons": [],
	"unavailable_reasons": [],
	"candidates": [{"id": "box-breathing", "weight": 1, "reason": "rev_` + version + `"}],
	"tailoring": {"version": "` + version + `"},
}
`
}

// brokenPolicy fails to compile (an impure call, line 4).
const brokenPolicy = `package jitai.policy

decision := {
	"safety_reasons": [x | x := time.now_ns()],
}
`

// gateStore holds Snapshot until released, so a test can swap versions
// while a decision is in flight.
type gateStore struct {
	trial.Store
	gate    chan struct{}
	entered chan struct{}
	armed   atomic.Bool
	commits atomic.Int64
}

func (g *gateStore) CommitDecision(ctx context.Context, c *trial.Commit) error {
	err := g.Store.CommitDecision(ctx, c)
	if err == nil {
		g.commits.Add(1)
	}
	return err
}

func (g *gateStore) Snapshot(ctx context.Context, study, participant, key string) (*trial.Snapshot, error) {
	if g.armed.CompareAndSwap(true, false) {
		g.entered <- struct{}{}
		<-g.gate
	}
	return g.Store.Snapshot(ctx, study, participant, key)
}

// reloadEnv is the swap study at version a, served by an engine over a
// gateStore from a studies folder of its own.
type reloadEnv struct {
	eng       *engine.Engine
	gs        *gateStore
	root, dir string // the studies folder, the swap study's folder
	revA      string // version a's revision
	clock     *testClock
}

func newReloadEnv(t *testing.T) *reloadEnv {
	t.Helper()
	root := t.TempDir()
	e := &reloadEnv{root: root, dir: filepath.Join(root, "swap")}
	e.revA = policytest.WriteFiles(t, e.dir, reloadStudyYAML, reloadPolicy("a"))
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "r.db"), sqlite.Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	studies, err := policies.LoadStudies(context.Background(), root, mustCatalogue(t))
	if err != nil {
		t.Fatal(err)
	}
	e.gs = &gateStore{Store: st, gate: make(chan struct{}), entered: make(chan struct{}, 1)}
	e.clock = newTestClock(decisionBase) // enrolment at decisionBase, before the decisions
	if e.eng, err = engine.New(engine.Components{Store: e.gs, Studies: studies, Now: e.clock.Now}); err != nil {
		t.Fatal(err)
	}
	return e
}

// enrol enrols participant p1 in the swap study.
func (e *reloadEnv) enrol(t *testing.T) {
	t.Helper()
	if _, _, err := e.eng.Enroll(context.Background(), "swap", engine.EnrollRequest{ParticipantID: "p1"}); err != nil {
		t.Fatal(err)
	}
}

var decisionBase = time.Date(2026, 11, 18, 12, 0, 0, 0, time.UTC)

// TestReloadSwapsAndKeepsLastGood: a new revision serves after a reload; an
// unchanged folder is "unchanged"; a broken version is refused with
// file:line, the last good one keeps serving, and the status shows the
// error until a later reload succeeds. Old revisions stay reachable.
func TestReloadSwapsAndKeepsLastGood(t *testing.T) {
	ctx := context.Background()
	e := newReloadEnv(t)
	e.enrol(t)
	eng, dir, revA := e.eng, e.dir, e.revA
	decide := func(i int) *trial.Record {
		t.Helper()
		at := decisionBase.Add(time.Duration(i) * time.Minute)
		e.clock.Set(at)
		ans, err := eng.Decide(ctx, "swap", "p1", engine.DecideRequest{DecisionPoint: "app", Time: at})
		if err != nil {
			t.Fatal(err)
		}
		return ans.Record
	}
	if rec := decide(0); rec.PolicyRevision != revA || rec.Reasons[0] != "rev_a" {
		t.Fatalf("before reload: revision %.12s reasons %v", rec.PolicyRevision, rec.Reasons)
	}

	a, err := eng.ReloadStudy(ctx, "swap")
	if err != nil || a.Outcome != engine.ReloadUnchanged {
		t.Fatalf("reload of unchanged files: %+v, %v", a, err)
	}

	revB := policytest.WriteFiles(t, dir, "", reloadPolicy("b"))
	a, err = eng.ReloadStudy(ctx, "swap")
	if err != nil || a.Outcome != engine.ReloadLoaded || a.Revision != revB || a.Previous != revA {
		t.Fatalf("reload to b: %+v, %v", a, err)
	}
	if rec := decide(1); rec.PolicyRevision != revB || rec.Reasons[0] != "rev_b" {
		t.Fatalf("after reload: revision %.12s reasons %v", rec.PolicyRevision, rec.Reasons)
	}

	policytest.WriteFiles(t, dir, "", brokenPolicy)
	a, err = eng.ReloadStudy(ctx, "swap")
	var re *engine.ReloadError
	if !errors.As(err, &re) || a.Outcome != engine.ReloadFailed || a.Revision != revB {
		t.Fatalf("reload to a broken policy: %+v, %v", a, err)
	}
	if len(a.Errors) == 0 || !strings.Contains(a.Errors[0], "swap/policy/p.rego:4: call to time.now_ns is not allowed") {
		t.Errorf("errors %q, want swap/policy/p.rego:4: call to time.now_ns ...", a.Errors)
	}
	if rec := decide(2); rec.PolicyRevision != revB || rec.Reasons[0] != "rev_b" {
		t.Fatalf("after a refused reload: revision %.12s reasons %v", rec.PolicyRevision, rec.Reasons)
	}
	st, ok := eng.ReloadStatus("swap")
	if !ok || st.Revision != revB || st.LastError == nil || st.LastError.Errors[0] != a.Errors[0] || st.LastAttempt.Outcome != engine.ReloadFailed {
		t.Fatalf("status after a refused reload: %+v", st)
	}
	if len(st.Revisions) != 2 || st.Revisions[0].Revision != revB || st.Revisions[1].Revision != revA || st.Revisions[1].RetiredAt == nil || st.Revisions[0].RetiredAt != nil {
		t.Errorf("revision history %+v", st.Revisions)
	}
	if len(st.Attempts) != 3 {
		t.Errorf("%d attempts kept, want 3", len(st.Attempts))
	}

	// Back to a: a revision seen before is loaded again; the error clears.
	policytest.WriteFiles(t, dir, "", reloadPolicy("a"))
	if a, err = eng.ReloadStudy(ctx, "swap"); err != nil || a.Revision != revA {
		t.Fatalf("reload back to a: %+v, %v", a, err)
	}
	if st, _ = eng.ReloadStatus("swap"); st.LastError != nil {
		t.Errorf("last error kept after a successful reload: %+v", st.LastError)
	}
	old, ok := eng.StudyAt("swap", revB)
	if !ok || old.Revision != revB {
		t.Fatalf("StudyAt(b): %v", ok)
	}
	if _, ok := eng.StudyAt("swap", "no-such-revision"); ok {
		t.Error("StudyAt found an unknown revision")
	}
}

// TestReloadRefusesExperimentChanges: the seed and the between-person
// design cannot change on a running study.
func TestReloadRefusesExperimentChanges(t *testing.T) {
	ctx := context.Background()
	e := newReloadEnv(t)
	eng, dir, revA := e.eng, e.dir, e.revA
	policytest.WriteFiles(t, dir, strings.Replace(reloadStudyYAML, "swap-seed-0123456789", "another-seed-42424242", 1), reloadPolicy("a"))
	a, err := eng.ReloadStudy(ctx, "swap")
	if err == nil || len(a.Errors) != 1 || !strings.Contains(a.Errors[0], "seed changed") {
		t.Fatalf("seed change: %+v, %v", a, err)
	}
	if rt, _ := eng.Study("swap"); rt.Revision != revA {
		t.Error("a refused reload changed the serving revision")
	}
	// Swap, given an already loaded study, makes the same checks.
	s := policytest.WriteStudy(t, dir, reloadStudyYAML+"strata: [site]\n", reloadPolicy("a"))
	if a, err = eng.Swap(s); err == nil || !strings.Contains(a.Errors[0], "strata changed") {
		t.Fatalf("strata change through Swap: %+v, %v", a, err)
	}
	s = policytest.WriteStudy(t, dir, reloadStudyYAML, reloadPolicy("b"))
	if a, err = eng.Swap(s); err != nil || a.Outcome != engine.ReloadLoaded {
		t.Fatalf("Swap of a new policy: %+v, %v", a, err)
	}
}

// TestInFlightDecisionFinishesOnItsVersion: a decision that started before
// a swap is made and recorded by the version it started with, and that
// version's retire hook runs only after the decision has finished.
func TestInFlightDecisionFinishesOnItsVersion(t *testing.T) {
	ctx := context.Background()
	e := newReloadEnv(t)
	e.enrol(t)
	eng, gs, dir, revA := e.eng, e.gs, e.dir, e.revA
	rtA, _ := eng.Study("swap")
	var retiredEarly atomic.Bool
	closed := make(chan struct{})
	rtA.OnRetire(func() error {
		if gs.commits.Load() == 0 {
			retiredEarly.Store(true) // the in-flight decision is not recorded yet
		}
		close(closed)
		return nil
	})
	gs.armed.Store(true)
	type result struct {
		rec *trial.Record
		err error
	}
	done := make(chan result, 1)
	go func() {
		ans, err := eng.Decide(ctx, "swap", "p1", engine.DecideRequest{DecisionPoint: "app", Time: decisionBase})
		var rec *trial.Record
		if ans != nil {
			rec = ans.Record
		}
		done <- result{rec, err}
	}()
	<-gs.entered // the decision holds version a and waits in the store
	revB := policytest.WriteFiles(t, dir, "", reloadPolicy("b"))
	if a, err := eng.ReloadStudy(ctx, "swap"); err != nil || a.Revision != revB {
		t.Fatalf("reload during a decision: %+v, %v", a, err)
	}
	select {
	case <-closed:
		t.Fatal("the old version was closed while a decision was using it")
	case <-time.After(50 * time.Millisecond):
	}
	close(gs.gate)
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.rec.PolicyRevision != revA || r.rec.Reasons[0] != "rev_a" || r.rec.Tailoring["version"] != "a" {
		t.Errorf("in-flight decision: revision %.12s reasons %v tailoring %v; want all of version a", r.rec.PolicyRevision, r.rec.Reasons, r.rec.Tailoring)
	}
	eng.WaitRetired()
	select {
	case <-closed:
	default:
		t.Fatal("the retired version was never closed")
	}
	if retiredEarly.Load() {
		t.Error("retire hook ran before the in-flight decision finished")
	}
}

// TestWatcherReloadsAddsAndKeepsRemoved: the watcher reloads a changed
// study once its files settle, loads a new study folder, and keeps serving
// a study whose folder went away.
func TestWatcherReloadsAddsAndKeepsRemoved(t *testing.T) {
	ctx := context.Background()
	e := newReloadEnv(t)
	eng, root, dir := e.eng, e.root, e.dir
	var mu sync.Mutex
	var attempts []*engine.ReloadAttempt
	w := engine.NewWatcher(eng, root, engine.WatchOptions{Interval: time.Hour, Debounce: time.Nanosecond, OnAttempt: func(a *engine.ReloadAttempt) {
		mu.Lock()
		attempts = append(attempts, a)
		mu.Unlock()
	}})
	w.Scan(ctx, false)
	if len(attempts) != 0 {
		t.Fatalf("reloads without a change: %+v", attempts)
	}
	revB := policytest.WriteFiles(t, dir, "", reloadPolicy("b"))
	w.Scan(ctx, false) // sees the change
	if len(attempts) != 0 {
		t.Fatal("reloaded before the change settled")
	}
	time.Sleep(time.Millisecond)
	w.Scan(ctx, false) // unchanged since: settled
	if len(attempts) != 1 || attempts[0].Outcome != engine.ReloadLoaded || attempts[0].Revision != revB {
		t.Fatalf("after the change settled: %+v", attempts)
	}
	// A new study folder is loaded.
	other := filepath.Join(root, "other")
	policytest.WriteFiles(t, other, strings.Replace(reloadStudyYAML, "id: swap", "id: other", 1), reloadPolicy("a"))
	w.Scan(ctx, false)
	time.Sleep(time.Millisecond)
	w.Scan(ctx, false)
	if _, ok := eng.Study("other"); !ok {
		t.Fatalf("new study not loaded: %+v", attempts)
	}
	// A removed folder keeps serving.
	if err := os.RemoveAll(other); err != nil {
		t.Fatal(err)
	}
	w.Scan(ctx, false)
	if _, ok := eng.Study("other"); !ok {
		t.Fatal("a study whose folder was removed stopped serving")
	}
	// Forced (SIGHUP): every study is reloaded, changed or not.
	n := len(attempts)
	w.Scan(ctx, true)
	if len(attempts) != n+1 || attempts[n].Outcome != engine.ReloadUnchanged {
		t.Fatalf("forced scan: %+v", attempts[n:])
	}
}

func mustCatalogue(t *testing.T) *interventions.Catalogue {
	t.Helper()
	cat, err := interventions.Embedded()
	if err != nil {
		t.Fatal(err)
	}
	return cat
}
