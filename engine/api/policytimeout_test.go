package api_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/jitai/jitai/engine"
	"github.com/jitai/jitai/engine/api"
	"github.com/jitai/jitai/engine/store/sqlite"
	"github.com/jitai/jitai/engine/trial"
	"github.com/jitai/jitai/policies"
	"github.com/jitai/jitai/policies/policytest"
)

// slowRule makes the stress-mrt policy loop on every decision through
// 10^12 combinations, which takes hours on any machine, without allocating
// as it goes. It is pure Rego: nothing in the purity rules stops a policy
// from being slow, so the engine must cut it off. However slow the machine
// running the test, the policy cannot finish before the policy timeout.
const slowRule = `
slow if {
	some x in numbers.range(1, 10000)
	some y in numbers.range(1, 10000)
	some z in numbers.range(1, 10000)
	x + y + z < 0
}

safety contains "never" if slow
`

// slowStudy writes a copy of stress-mrt whose policy loops and loads it.
func slowStudy(t *testing.T) *policies.Study {
	t.Helper()
	src := filepath.Join(examples, stressMRT)
	yaml, err := os.ReadFile(filepath.Join(src, "study.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	rego, err := os.ReadFile(filepath.Join(src, "policy", "policy.rego"))
	if err != nil {
		t.Fatal(err)
	}
	return policytest.WriteStudy(t, filepath.Join(t.TempDir(), stressMRT), string(yaml), string(rego)+slowRule)
}

// TestPolicyTimeout: a policy that loops is cut off at the policy timeout;
// the phone gets the study's fail-safe answer (200, never a 500 or 503):
// here the loop is in the safety rule itself, so safety cannot be known and
// the participant gets the crisis signposting (safety_unknown), recorded
// with the problem for designers. It comes soon after the timeout, not
// when the policy would end, and the server keeps serving other requests
// meanwhile and afterwards.
func TestPolicyTimeout(t *testing.T) {
	const timeout = 300 * time.Millisecond
	study := slowStudy(t)
	st, err := sqlite.Open(filepath.Join(t.TempDir(), "jitai.db"), sqlite.Options{Durability: "process"}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	clk := &clock{t: at(0, 8, 0)}
	eng, err := engine.New(engine.Components{Store: st, Studies: []*policies.Study{study}, Now: clk.Now, PolicyTimeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api.New(eng, zap.NewNop(), api.Options{}))
	t.Cleanup(srv.Close)
	e := &env{t: t, srv: srv, hc: srv.Client(), store: st, eng: eng, clock: clk,
		studies: map[string]*policies.Study{stressMRT: study}}

	e.enrol(stressMRT, "p-slow-1")
	clk.Set(at(0, 8, 30)) // the time of the slow decision
	var wg sync.WaitGroup
	var slow response
	var took time.Duration
	wg.Add(1)
	go func() {
		defer wg.Done()
		start := time.Now()
		slow, err = e.try(req{Method: http.MethodPost, Path: decisionsPath(stressMRT, "p-slow-1"),
			Body: map[string]any{"decision_point": "morning", "time": rfc(at(0, 8, 30))}})
		took = time.Since(start)
	}()
	// While the policy loops, the server answers other requests.
	time.Sleep(timeout / 3)
	e.do(req{Method: http.MethodGet, Path: "/healthz"}).expect(t, http.StatusOK)
	e.enrol(stressMRT, "p-slow-2")
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	var ans struct {
		Action      string         `json:"action"`
		Reasons     []string       `json:"reasons"`
		Signposting map[string]any `json:"signposting"`
	}
	slow.expect(t, http.StatusOK).decode(t, &ans)
	if ans.Action != "safety" || strings.Join(ans.Reasons, ",") != "safety_unknown,policy_error" || ans.Signposting == nil {
		t.Errorf("answer %+v, want the signposting with reasons safety_unknown, policy_error", ans)
	}
	if strings.Contains(string(slow.Body), "timed out") || strings.Contains(string(slow.Body), ".rego") {
		t.Errorf("the phone's answer carries internals: %s", slow.Body)
	}
	// Cut off, the decision ends soon after the timeout (twice: the safety
	// rule is asked alone too); not cut off, it would take hours. The
	// margin is for a loaded machine.
	if took > 2*timeout+30*time.Second {
		t.Errorf("the decision took %s; the policy timeout is %s", took, timeout)
	}
	t.Logf("looping policy cut off after %s (timeout %s)", took, timeout)

	// The fail-safe decision is recorded with the problem; the server
	// still serves.
	got, err := st.ListDecisions(context.Background(), trial.DecisionQuery{Study: stressMRT, Participant: "p-slow-1", Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].PolicyError == nil || got[0].PolicyError.Kind != "timeout" || got[0].PolicyError.Safety != "unknown" || got[0].Randomised {
		t.Fatalf("records %+v, want one fail-safe record of a timeout, not randomised", got)
	}
	e.do(req{Method: http.MethodGet, Path: "/readyz"}).expect(t, http.StatusOK)
}
