package policies

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/jitai/jitai/interventions"
)

// seamPolicy errs on the IR for seamInput where topdown decides: topdown
// stops at the first body of override that succeeds, the plan tries both.
const seamPolicy = `package jitai.policy

decision := {"safety_reasons": ["override" | override], "candidates": [{"id": "box-breathing"}]}

override if input.context.override == true

override if to_number(input.context.level) > 5
`

var seamInput = ast.MustParseTerm(`{"context": {"override": true, "level": "high"}}`).Value

func TestEvaluatorKeyIsValidated(t *testing.T) {
	for _, ev := range []string{"ir", "topdown"} {
		cfg, err := ParseConfig("s/study.yaml", []byte(validStudy+"evaluator: "+ev+"\n"))
		if err != nil || cfg.Evaluator != ev {
			t.Errorf("evaluator: %s: %+v, %v", ev, cfg, err)
		}
	}
	cfg, err := ParseConfig("s/study.yaml", []byte(validStudy))
	if err != nil || cfg.Evaluator != "" {
		t.Errorf("no evaluator key: evaluator %q, %v; want it left to the loader", cfg.Evaluator, err)
	}
	_, err = ParseConfig("s/study.yaml", []byte(strings.Replace(validStudy, "timezone:", "evaluator: wasm\ntimezone:", 1)))
	if err == nil || !strings.Contains(err.Error(), `s/study.yaml:3: evaluator "wasm" must be ir`) {
		t.Errorf("evaluator: wasm: %v, want the key's line and the choices", err)
	}
}

// writeSeamStudy writes a study folder named id under root with the seam policy.
func writeSeamStudy(t *testing.T, root, id, extra string) {
	t.Helper()
	dir := filepath.Join(root, id)
	if err := os.MkdirAll(filepath.Join(dir, "policy"), 0o755); err != nil {
		t.Fatal(err)
	}
	yaml := strings.Replace(validStudy, "id: s1", "id: "+id, 1) + extra
	if err := os.WriteFile(filepath.Join(dir, "study.yaml"), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "policy", "p.rego"), []byte(seamPolicy), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestStudiesChooseTheirEvaluators: studies loaded in one process each run
// on the evaluator their study.yaml chooses, or else the loader's default,
// and evaluate side by side.
func TestStudiesChooseTheirEvaluators(t *testing.T) {
	cat, err := interventions.Embedded()
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	writeSeamStudy(t, root, "chooses-topdown", "evaluator: topdown\n")
	writeSeamStudy(t, root, "chooses-ir", "evaluator: ir\n")
	writeSeamStudy(t, root, "default", "")
	ctx := context.Background()
	for _, c := range []struct {
		opts []LoadOptions
		want map[string]string
	}{
		{nil, map[string]string{"chooses-topdown": EvaluatorTopdown, "chooses-ir": EvaluatorIR, "default": EvaluatorIR}},
		{[]LoadOptions{{Evaluator: EvaluatorTopdown}}, map[string]string{"chooses-topdown": EvaluatorTopdown, "chooses-ir": EvaluatorIR, "default": EvaluatorTopdown}},
		{[]LoadOptions{{Evaluator: EvaluatorTopdown}, {}}, map[string]string{"default": EvaluatorTopdown}},
	} {
		studies, err := LoadStudies(ctx, root, cat, c.opts...)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range studies {
			want, ok := c.want[s.Config.ID]
			if !ok {
				continue
			}
			if ev, why := s.Policy.Evaluator(); ev != want || why != nil {
				t.Errorf("options %+v: study %s runs on %s (%v), want %s", c.opts, s.Config.ID, ev, why, want)
			}
		}
	}

	// One IR and one topdown study, evaluating concurrently: the IR errs
	// on the seam input and hands it to topdown (FellBack); topdown
	// decides it directly.
	studies, err := LoadStudies(ctx, root, cat)
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]*Study{}
	for _, s := range studies {
		byID[s.Config.ID] = s
	}
	var wg sync.WaitGroup
	for _, c := range []struct {
		id       string
		fellBack bool
	}{{"chooses-ir", true}, {"chooses-topdown", false}, {"chooses-ir", true}, {"chooses-topdown", false}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				out, err := byID[c.id].Policy.Eval(ctx, seamInput)
				if err != nil || len(out.SafetyReasons) != 1 || out.FellBack() != c.fellBack {
					t.Errorf("%s: %+v, %v; want a safety decision with FellBack %v", c.id, out, err, c.fellBack)
					return
				}
			}
		}()
	}
	wg.Wait()
	if diff, handed := byID["chooses-ir"].Policy.CompareEvaluators(ctx, seamInput); diff != "" || !handed {
		t.Errorf("IR study: CompareEvaluators %q, handed %v; want agreement, handed to topdown", diff, handed)
	}
	if diff, handed := byID["chooses-topdown"].Policy.CompareEvaluators(ctx, seamInput); diff != "" || handed {
		t.Errorf("topdown study: CompareEvaluators %q, handed %v; want nothing to compare", diff, handed)
	}
}

func TestUnknownEvaluatorIsRefused(t *testing.T) {
	mods, err := ParseModules(map[string]string{"p.rego": seamPolicy})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Compile(context.Background(), mods, nil, CompileOptions{Evaluator: "wasm"}); err == nil || !strings.Contains(err.Error(), `"wasm": want ir`) {
		t.Errorf("Compile with evaluator wasm: %v, want the choices", err)
	}
	cat, err := interventions.Embedded()
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	writeSeamStudy(t, root, "s1", "")
	if _, err := LoadStudy(context.Background(), filepath.Join(root, "s1"), cat, LoadOptions{Evaluator: "wasm"}); err == nil || !strings.Contains(err.Error(), `"wasm": want ir`) {
		t.Errorf("LoadStudy with default evaluator wasm: %v, want the choices", err)
	}
}

// TestEvaluatorSaysWhyNotIR: a policy the IR cannot run is evaluated by
// topdown, and the report says why.
func TestEvaluatorSaysWhyNotIR(t *testing.T) {
	mods, err := ParseModules(map[string]string{"p.rego": `package jitai.policy

decision := {"candidates": [{"id": "a"} | flag with input.flag as true]}

flag if input.flag
`})
	if err != nil {
		t.Fatal(err)
	}
	p, err := Compile(context.Background(), mods, nil)
	if err != nil {
		t.Fatal(err)
	}
	ev, why := p.Evaluator()
	if ev != EvaluatorTopdown || why == nil || !strings.Contains(why.Error(), "`with`") {
		t.Fatalf("Evaluator: %s, %v; want topdown because of with", ev, why)
	}
	out, err := p.Eval(context.Background(), ast.NewObject())
	if err != nil || len(out.Candidates) != 1 || out.FellBack() {
		t.Errorf("Eval: %+v, %v; want topdown's decision", out, err)
	}
}

// stub is an Evaluator that returns out and err, counting its calls.
type stub struct {
	name  string
	out   *Output
	err   error
	calls int
}

func (s *stub) Name() string { return s.name }

func (s *stub) Eval(context.Context, ast.Value) (*Output, error) {
	s.calls++
	if s.out == nil {
		return nil, s.err
	}
	out := *s.out
	return &out, s.err
}

func TestFallbackDecorator(t *testing.T) {
	decided := &Output{Candidates: nil, SafetyReasons: []string{"s"}}
	failed := errors.New("eval_conflict_error")
	ctx := context.Background()

	t.Run("primary decides", func(t *testing.T) {
		p, s := &stub{name: "p", out: decided}, &stub{name: "s", out: decided}
		f := NewFallback(p, s)
		out, err := f.Eval(ctx, nil)
		if err != nil || out.FellBack() || s.calls != 0 || f.Name() != "p" {
			t.Errorf("%+v, %v, secondary called %d times, name %s", out, err, s.calls, f.Name())
		}
	})
	t.Run("primary fails", func(t *testing.T) {
		p, s := &stub{name: "p", err: failed}, &stub{name: "s", out: decided}
		out, err := NewFallback(p, s).Eval(ctx, nil)
		if err != nil || out == nil || !out.FellBack() || s.calls != 1 {
			t.Errorf("%+v, %v, secondary called %d times; want the secondary's decision, marked", out, err, s.calls)
		}
	})
	t.Run("both fail", func(t *testing.T) {
		second := errors.New("topdown: conflict")
		p, s := &stub{name: "p", err: failed}, &stub{name: "s", err: second}
		out, err := NewFallback(p, s).Eval(ctx, nil)
		if out != nil || !errors.Is(err, second) {
			t.Errorf("%+v, %v; want the secondary's error", out, err)
		}
	})
	t.Run("context ended", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		cancel()
		p, s := &stub{name: "p", err: failed}, &stub{name: "s", out: decided}
		out, err := NewFallback(p, s).Eval(cctx, nil)
		if out != nil || !errors.Is(err, failed) || s.calls != 0 {
			t.Errorf("%+v, %v, secondary called %d times; want the primary's error only", out, err, s.calls)
		}
	})
}
