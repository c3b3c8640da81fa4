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
	"github.com/jitai/jitai/interventions"
	"github.com/jitai/jitai/policies"
)

// slowRule makes the stress-mrt policy loop for a very long time (4e8
// iterations) on every decision. It is pure Rego: nothing in the purity
// rules stops a policy from being slow, so the engine must cut it off.
const slowRule = `
slow_count := count([1 |
	some x in numbers.range(1, 20000)
	some y in numbers.range(1, 20000)
])

safety contains "never" if slow_count < 0
`

// slowStudy writes a copy of stress-mrt whose policy loops and loads it.
func slowStudy(t *testing.T) *policies.Study {
	t.Helper()
	src := filepath.Join(examples, stressMRT)
	dir := filepath.Join(t.TempDir(), stressMRT)
	if err := os.MkdirAll(filepath.Join(dir, "policy"), 0o755); err != nil {
		t.Fatal(err)
	}
	yaml, err := os.ReadFile(filepath.Join(src, "study.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	rego, err := os.ReadFile(filepath.Join(src, "policy", "policy.rego"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "study.yaml"), yaml, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "policy", "policy.rego"), append(rego, slowRule...), 0o644); err != nil {
		t.Fatal(err)
	}
	cat, err := interventions.Embedded()
	if err != nil {
		t.Fatal(err)
	}
	s, err := policies.LoadStudy(context.Background(), dir, cat)
	if err != nil {
		t.Fatalf("loading the looping study (it must pass the purity rules): %v", err)
	}
	return s
}

// TestPolicyTimeout: a policy that loops is cut off at the policy timeout;
// the decision is answered 503 policy-timeout (nothing recorded) within
// about the timeout, and the server keeps serving other requests meanwhile
// and afterwards.
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
	p := checkProblem(t, slow, http.StatusServiceUnavailable, "")
	if p.Type != "urn:jitai:problem:policy-timeout" || !strings.Contains(p.Detail, "timed out") {
		t.Errorf("problem %+v, want type policy-timeout with a detail saying the policy timed out", p)
	}
	if took > timeout+2*time.Second {
		t.Errorf("the decision took %s; the policy timeout is %s", took, timeout)
	}
	t.Logf("looping policy cut off after %s (timeout %s): %s", took, timeout, p.Detail)

	// Nothing was recorded, and the server still serves.
	if got := e.listDecisions(stressMRT, "p-slow-1"); len(got) != 0 {
		t.Errorf("%d decisions recorded for a timed-out policy", len(got))
	}
	e.do(req{Method: http.MethodGet, Path: "/readyz"}).expect(t, http.StatusOK)
}
