package api_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jitai/jitai/engine/trial"
	"github.com/jitai/jitai/policies/policytest"

	"go.uber.org/zap"

	"github.com/jitai/jitai/engine"
	"github.com/jitai/jitai/engine/api"
	"github.com/jitai/jitai/engine/store/sqlite"
	"github.com/jitai/jitai/interventions"
	"github.com/jitai/jitai/policies"
)

const swapStudyYAML = `id: swap
name: Reload under load
timezone: Europe/London
seed: "swap-seed-0123456789"
decision_points:
  - {id: app, kind: app}
crisis:
  text: "Call 116 123."
`

// swapPolicy carries its version in the reason and the tailoring of every
// decision, so a record shows which version made it.
func swapPolicy(version string) string {
	return `package jitai.policy

decision := {
	"safety_reasons": [],
	"unavailable_reasons": [],
	"candidates": [{"id": "box-breathing", "weight": 1, "reason": "rev_` + version + `"}],
	"tailoring": {"version": "` + version + `"},
}
`
}

// swapBroken does not compile: line 4 calls time.now_ns.
const swapBroken = `package jitai.policy

decision := {
	"safety_reasons": [x | x := time.now_ns()],
}
`

// swapRevision is the revision the swap study loads as with version's
// policy.
func swapRevision(t testing.TB, version string) string {
	t.Helper()
	return policytest.WriteFiles(t, t.TempDir(), swapStudyYAML, swapPolicy(version))
}

// newSwapEnv serves the swap study from a temporary folder, with the
// folder watcher running as jitai serve runs it.
func newSwapEnv(t *testing.T) (*env, string) {
	t.Helper()
	root := t.TempDir()
	dir := filepath.Join(root, "swap")
	policytest.WriteFiles(t, dir, swapStudyYAML, swapPolicy("a"))
	cat, err := interventions.Embedded()
	if err != nil {
		t.Fatal(err)
	}
	studies, err := policies.LoadStudies(context.Background(), root, cat)
	if err != nil {
		t.Fatal(err)
	}
	log := zap.NewNop()
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "jitai.db"), sqlite.Options{}, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	// Clients decide in parallel, each at its own times after the
	// enrolments (at the clock): the skew check is off.
	clk := &clock{t: at(0, 8, 0)}
	eng, err := engine.New(engine.Components{Store: st, Studies: studies, Logger: log, Now: clk.Now, MaxClockSkew: -1})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w := engine.NewWatcher(eng, root, engine.WatchOptions{Interval: 5 * time.Millisecond, Debounce: -1})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); w.Run(ctx) }()
	t.Cleanup(func() { cancel(); wg.Wait(); eng.WaitRetired() })
	srv := httptest.NewServer(api.New(eng, log, api.Options{}))
	t.Cleanup(srv.Close)
	tr := srv.Client().Transport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	t.Cleanup(tr.CloseIdleConnections)
	e := &env{t: t, srv: srv, hc: &http.Client{Transport: tr, Timeout: 30 * time.Second}, store: st, eng: eng, clock: clk,
		studies: map[string]*policies.Study{"swap": studies[0]}}
	return e, dir
}

type studyDoc struct {
	Revision string `json:"policy_revision"`
	Reload   struct {
		Revision  string `json:"policy_revision"`
		LastError *struct {
			Errors []string `json:"errors"`
		} `json:"last_error"`
		Revisions []struct {
			Revision string `json:"policy_revision"`
		} `json:"revisions"`
	} `json:"reload"`
}

// TestReloadUnderLoad fires decisions from many clients while the policy
// file changes between two versions and a broken one, each change reloaded
// both by the folder watcher and through POST /v1/studies/swap/reload. No
// request may fail; every record names one of the two good revisions and
// its content (reason, tailoring) is that revision's: no decision mixes
// versions. The broken version never serves, is answered 422 with its
// file:line, and GET /v1/studies/swap shows it as last_error.
func TestReloadUnderLoad(t *testing.T) {
	e, dir := newSwapEnv(t)
	revs := map[string]string{swapRevision(t, "a"): "a", swapRevision(t, "b"): "b"}
	const clients = 16
	for i := range clients {
		e.enrol("swap", fmt.Sprintf("p%02d", i))
	}
	stop := make(chan struct{})
	var sent, failed atomic.Int64
	var failures sync.Map
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := fmt.Sprintf("p%02d", i)
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				res, err := e.try(req{Method: "POST", Path: decisionsPath("swap", p),
					Body: map[string]any{"decision_point": "app", "time": rfc(at(0, 9, 0).Add(time.Duration(n) * time.Minute))}})
				sent.Add(1)
				if err != nil || res.Status != http.StatusOK {
					failed.Add(1)
					failures.Store(fmt.Sprintf("%s/%d", p, n), fmt.Sprint(res.Status, " ", err, " ", string(res.Body)))
				}
			}
		}()
	}

	// Each version serves until the clients have had answers from it:
	// waiting for answers rather than for a fixed time makes the load span
	// every version however slow the machine. Up to one request per client
	// was sent before the last change, so twice that many answers include
	// at least one per client sent after it.
	waitAnswered := func() {
		t.Helper()
		want := sent.Load() + 2*clients
		deadline := time.Now().Add(time.Minute)
		for sent.Load() < want {
			if time.Now().After(deadline) {
				t.Fatalf("%d decisions answered in a minute, want %d", sent.Load(), want)
			}
			time.Sleep(time.Millisecond)
		}
	}
	sequence := []string{"b", "broken", "a", "b", "broken", "broken", "a", "b", "a", "broken", "b", "a"}
	good := "a"
	var took []float64
	for _, v := range sequence {
		waitAnswered()
		src := swapBroken
		if v != "broken" {
			src = swapPolicy(v)
		}
		policytest.WriteFiles(t, dir, "", src)
		res := e.do(req{Method: "POST", Path: "/v1/studies/swap/reload"})
		var doc studyDoc
		e.do(req{Method: "GET", Path: "/v1/studies/swap"}).expect(t, 200).decode(t, &doc)
		if v == "broken" {
			p := checkProblem(t, res, http.StatusUnprocessableEntity, "")
			if !strings.Contains(p.Type, "reload-refused") {
				t.Errorf("refused reload: problem type %q", p.Type)
			}
			if !strings.Contains(string(res.Body), "swap/policy/p.rego:4: call to time.now_ns is not allowed") {
				t.Errorf("refused reload does not name the error with file:line: %s", res.Body)
			}
			if revs[doc.Revision] != good || doc.Reload.LastError == nil || !strings.Contains(strings.Join(doc.Reload.LastError.Errors, "\n"), "p.rego:4") {
				t.Errorf("after the broken version: serving %q (want %s), last_error %+v", revs[doc.Revision], good, doc.Reload.LastError)
			}
			continue
		}
		var a engine.ReloadAttempt
		res.expect(t, http.StatusOK).decode(t, &a)
		if revs[a.Revision] != v || (a.Outcome != engine.ReloadLoaded && a.Outcome != engine.ReloadUnchanged) {
			t.Errorf("reload to %s: %+v", v, a)
		}
		good = v
		if revs[doc.Revision] != v || doc.Reload.LastError != nil {
			t.Errorf("after reloading %s: GET serves %q, last_error %+v", v, revs[doc.Revision], doc.Reload.LastError)
		}
	}
	waitAnswered()
	close(stop)
	wg.Wait()

	if failed.Load() > 0 {
		failures.Range(func(k, v any) bool { t.Errorf("request %s failed: %s", k, v); return true })
		t.Fatalf("%d of %d decision requests failed during reloads", failed.Load(), sent.Load())
	}
	recs, err := e.store.ListDecisions(t.Context(), trial.DecisionQuery{Study: "swap", Limit: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(recs)) != sent.Load() {
		t.Fatalf("%d records for %d answered decisions", len(recs), sent.Load())
	}
	byVersion := map[string]int{}
	for _, r := range recs {
		v, ok := revs[r.PolicyRevision]
		if !ok {
			t.Fatalf("record %s names revision %q, which is neither good version", r.ID, r.PolicyRevision)
		}
		if r.Action != trial.ActionDeliver || len(r.Reasons) != 1 || r.Reasons[0] != "rev_"+v || r.Tailoring["version"] != v {
			t.Fatalf("record %s of revision %s (version %s) has action %s reasons %v tailoring %v: a mixed decision", r.ID, r.PolicyRevision[:12], v, r.Action, r.Reasons, r.Tailoring)
		}
		byVersion[v]++
	}
	if byVersion["a"] == 0 || byVersion["b"] == 0 {
		t.Errorf("decisions by version %v: the load did not span the reloads", byVersion)
	}
	st, _ := e.eng.ReloadStatus("swap")
	for _, a := range st.Attempts {
		if a.Outcome == engine.ReloadLoaded {
			took = append(took, a.TookMillis)
		}
	}
	if len(took) == 0 {
		t.Fatal("no successful reload recorded")
	}
	sort.Float64s(took)
	t.Logf("%d decisions from %d clients during %d policy changes (%d broken), none failed; by version %v; reload (load+compile+swap) ms: median %.1f, max %.1f",
		sent.Load(), clients, len(sequence), strings.Count(strings.Join(sequence, " "), "broken"), byVersion, took[len(took)/2], slices.Max(took))

	var doc studyDoc
	e.do(req{Method: "GET", Path: "/v1/studies/swap"}).expect(t, 200).decode(t, &doc)
	seen := map[string]bool{}
	for _, r := range doc.Reload.Revisions {
		seen[revs[r.Revision]] = true
	}
	if !seen["a"] || !seen["b"] || seen[""] {
		t.Errorf("revision history %+v: want versions a and b only", doc.Reload.Revisions)
	}
}
