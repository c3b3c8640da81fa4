// Package policies loads studies: their study.yaml, their Rego policy bundle
// (compiled once into a prepared query, checked for purity) and the
// intervention catalogue they use.
package policies

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/jitai/jitai/engine/trial"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
)

// Query is the document every study policy must define.
const Query = "data.jitai.policy.decision"

// impure lists the built-ins a policy may not call: their results depend on
// the world or the clock, so a decision made with them could not be replayed.
var impure = []string{"http.send", "time.now_ns", "opa.runtime", "rand.", "uuid.", "net."}

func isImpure(name string) bool {
	for _, p := range impure {
		if name == p || (strings.HasSuffix(p, ".") && strings.HasPrefix(name, p)) {
			return true
		}
	}
	return false
}

// pureCapabilities is this OPA's capabilities without the impure built-ins,
// so that even a call the AST check missed fails to compile.
func pureCapabilities() *ast.Capabilities {
	caps := ast.CapabilitiesForThisVersion()
	kept := caps.Builtins[:0]
	for _, b := range caps.Builtins {
		if !isImpure(b.Name) {
			kept = append(kept, b)
		}
	}
	caps.Builtins = kept
	return caps
}

// PolicyError is a problem in a policy file with its position.
type PolicyError = ConfigError

// Policy is a study's compiled policy.
type Policy struct {
	query   rego.PreparedEvalQuery
	modules map[string]*ast.Module
	store   storage.Store

	// eval makes the decisions: topdown, or the planned IR decorated with
	// topdown as its fallback.
	eval    Evaluator
	topdown *topdownEvaluator
	// irErr says why topdown evaluates although the IR was chosen: OPA
	// could not plan the policy or irvm cannot run the plan.
	irErr error
	// open evaluates data.jitai.policy.open (nil when the policy has no
	// such rule): the event points an arriving event opens.
	open *rego.PreparedEvalQuery
	// safety evaluates the safety rule alone (nil without one), for a
	// decision whose policy failed.
	safety *rego.PreparedEvalQuery
}

// Output is the policy's decision document (see docs/policy.md).
type Output struct {
	SafetyReasons      []string           `json:"safety_reasons"`
	UnavailableReasons []string           `json:"unavailable_reasons"`
	Candidates         []trial.Candidate  `json:"candidates"`
	Probabilities      map[string]float64 `json:"probabilities,omitempty"`
	Conditions         []string           `json:"conditions,omitempty"`
	Tailoring          map[string]any     `json:"tailoring,omitempty"`

	fellBack bool // made by topdown after the planned IR failed
}

// FellBack reports whether this decision document was made by topdown
// because the planned IR could not make it.
func (o *Output) FellBack() bool { return o.fellBack }

// ParseModules parses Rego sources (path -> text) and refuses impure calls.
// Paths appear in errors as given.
func ParseModules(files map[string]string) (map[string]*ast.Module, error) {
	mods := make(map[string]*ast.Module, len(files))
	var errs ConfigErrors
	paths := slices.Sorted(maps.Keys(files))
	for _, path := range paths {
		m, err := ast.ParseModuleWithOpts(path, files[path], ast.ParserOptions{RegoVersion: ast.RegoV1})
		if err != nil {
			errs = append(errs, astErrors(path, err)...)
			continue
		}
		errs = append(errs, purityErrors(path, m)...)
		mods[path] = m
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return mods, nil
}

func purityErrors(path string, m *ast.Module) ConfigErrors {
	var errs ConfigErrors
	report := func(name string, loc *ast.Location) {
		line := 0
		if loc != nil {
			line = loc.Row
		}
		errs = append(errs, &ConfigError{File: path, Line: line,
			Msg: fmt.Sprintf("call to %s is not allowed: a policy must be pure so that every decision can be replayed (use input.now for the time)", name)})
	}
	ast.WalkExprs(m, func(e *ast.Expr) bool {
		if e.IsCall() {
			if name := e.Operator().String(); isImpure(name) {
				report(name, e.Location)
			}
		}
		return false
	})
	ast.WalkTerms(m, func(t *ast.Term) bool {
		if c, ok := t.Value.(ast.Call); ok && len(c) > 0 {
			if name := c[0].String(); isImpure(name) {
				report(name, t.Location)
			}
		}
		return false
	})
	if !IsTestFile(path) {
		errs = append(errs, testDataErrors(path, m)...)
	}
	return errs
}

// IsTestFile reports whether a policy path is a Rego test file
// (*_test.rego): the engine never compiles it into the live policy.
func IsTestFile(path string) bool { return strings.HasSuffix(path, "_test.rego") }

// testDataErrors refuses, in a file of the live policy, any reference to
// TestStudyData (directly or through an import): only the Rego tests get
// it, so a policy reading it would pass its tests and find nothing live.
func testDataErrors(path string, m *ast.Module) ConfigErrors {
	want := ast.MustParseRef(TestStudyData)
	aliases := map[ast.Var]ast.Ref{}
	for _, imp := range m.Imports {
		if r, ok := imp.Path.Value.(ast.Ref); ok {
			aliases[imp.Name()] = r
		}
	}
	var errs ConfigErrors
	ast.WalkRefs(m, func(r ast.Ref) bool {
		full := r
		if v, ok := r[0].Value.(ast.Var); ok {
			if base, ok := aliases[v]; ok {
				full = base.Concat(r[1:])
			}
		}
		if full.HasPrefix(want) {
			line := 0
			if r[0].Location != nil {
				line = r[0].Location.Row
			}
			errs = append(errs, &ConfigError{File: path, Line: line,
				Msg: fmt.Sprintf("%s is only for the Rego tests (policy/*_test.rego), not set for live decisions: the policy reads the study's settings from input.study", TestStudyData)})
		}
		return false
	})
	return errs
}

func astErrors(path string, err error) ConfigErrors {
	var aerrs ast.Errors
	if !errors.As(err, &aerrs) {
		return ConfigErrors{{File: path, Msg: err.Error()}}
	}
	out := make(ConfigErrors, 0, len(aerrs))
	for _, e := range aerrs {
		ce := &ConfigError{File: path, Msg: e.Message}
		if e.Location != nil {
			ce.Line = e.Location.Row
			if e.Location.File != "" {
				ce.File = e.Location.File
			}
		}
		out = append(out, ce)
	}
	return out
}

// Compile compiles policy modules with data (exposed to the policy as
// data.jitai.<key>) into a prepared query for Query and, unless opts choose
// topdown, into OPA's plan of it. Options given more than once: the last
// non-empty field wins.
func Compile(ctx context.Context, mods map[string]*ast.Module, data map[string]any, opts ...CompileOptions) (*Policy, error) {
	ev, safetyRule := EvaluatorIR, "safety"
	for _, o := range opts {
		if o.Evaluator != "" {
			ev = o.Evaluator
		}
		if o.SafetyRule != "" {
			safetyRule = o.SafetyRule
		}
	}
	if err := CheckEvaluator(ev); err != nil {
		return nil, err
	}
	comp := ast.NewCompiler().WithCapabilities(pureCapabilities()).WithDefaultRegoVersion(ast.RegoV1)
	comp.Compile(mods)
	if comp.Failed() {
		return nil, astErrors("policy", comp.Errors)
	}
	if !definesDecision(mods) {
		return nil, ConfigErrors{{File: "policy", Msg: "no rule `decision` in package jitai.policy: every study policy must define data.jitai.policy.decision"}}
	}
	// Keep the data as AST values: otherwise every evaluation converts the
	// catalogue from Go values again.
	store := inmem.NewFromObjectWithOpts(map[string]any{"jitai": data},
		inmem.OptRoundTripOnWrite(true), inmem.OptReturnASTValuesOnRead(true))
	pq, err := rego.New(
		rego.Query(Query),
		rego.Compiler(comp),
		rego.Store(store),
		rego.StrictBuiltinErrors(true),
	).PrepareForEval(ctx)
	if err != nil {
		return nil, fmt.Errorf("preparing %s: %w", Query, err)
	}
	td := &topdownEvaluator{query: pq}
	p := &Policy{query: pq, modules: mods, store: store, eval: td, topdown: td}
	if definesRule(mods, "open") {
		oq, err := rego.New(rego.Query(OpenQuery), rego.Compiler(comp), rego.Store(store), rego.StrictBuiltinErrors(true)).PrepareForEval(ctx)
		if err != nil {
			return nil, fmt.Errorf("preparing %s: %w", OpenQuery, err)
		}
		p.open = &oq
	}
	if definesRule(mods, safetyRule) {
		q := "data.jitai.policy." + safetyRule
		sq, err := rego.New(rego.Query(q), rego.Compiler(comp), rego.Store(store), rego.StrictBuiltinErrors(true)).PrepareForEval(ctx)
		if err != nil {
			return nil, fmt.Errorf("preparing %s: %w", q, err)
		}
		p.safety = &sq
	}
	if ev == EvaluatorIR {
		ir, err := newIREvaluator(ctx, mods, store)
		if err != nil {
			p.irErr = err
		} else {
			p.eval = NewFallback(ir, td)
		}
	}
	return p, nil
}

// Evaluator reports which evaluator runs this policy (EvaluatorIR or
// EvaluatorTopdown) and, if it is topdown although the IR was chosen, why.
func (p *Policy) Evaluator() (string, error) {
	return p.eval.Name(), p.irErr
}

func definesDecision(mods map[string]*ast.Module) bool { return definesRule(mods, "decision") }

// definesRule reports whether package jitai.policy defines the rule name.
func definesRule(mods map[string]*ast.Module, name string) bool {
	want := ast.MustParseRef("data.jitai.policy")
	for _, m := range mods {
		if !m.Package.Path.Equal(want) {
			continue
		}
		for _, r := range m.Rules {
			if r.Head.Ref().String() == name {
				return true
			}
		}
	}
	return false
}

// ErrNoSafetyRule: the policy has no safety rule to evaluate alone.
var ErrNoSafetyRule = errors.New("the policy has no safety rule (on_policy_error.safety_rule) to evaluate alone")

// Safety evaluates the policy's safety rule alone (a set of reasons), for
// a decision whose policy failed: it tells whether the participant needs
// the crisis signposting even so.
func (p *Policy) Safety(ctx context.Context, input ast.Value) ([]string, error) {
	if p.safety == nil {
		return nil, ErrNoSafetyRule
	}
	rs, err := p.safety.Eval(ctx, rego.EvalParsedInput(input))
	if err != nil {
		return nil, err
	}
	if len(rs) == 0 || len(rs[0].Expressions) == 0 {
		return nil, nil // undefined: no reason
	}
	reasons, err := stringList(map[string]any{"safety": rs[0].Expressions[0].Value}, "safety")
	if err != nil {
		return nil, fmt.Errorf("the safety rule must be a set of reasons: %w", err)
	}
	slices.Sort(reasons)
	return slices.Compact(reasons), nil
}

// OpenQuery is the query of the event points an event opens: a set of
// decision point ids (`open contains "stress_spike" if { ... }`).
const OpenQuery = "data.jitai.policy.open"

// Opens reports whether the policy has an open rule.
func (p *Policy) Opens() bool { return p.open != nil }

// Open evaluates the policy's open rule on an event's input document and
// returns the ids it names, sorted; none when the policy has no open rule.
func (p *Policy) Open(ctx context.Context, input ast.Value) ([]string, error) {
	if p.open == nil {
		return nil, nil
	}
	rs, err := p.open.Eval(ctx, rego.EvalParsedInput(input))
	if err != nil {
		return nil, err
	}
	if len(rs) == 0 || len(rs[0].Expressions) == 0 {
		return nil, nil
	}
	ids, err := stringList(map[string]any{"open": rs[0].Expressions[0].Value}, "open")
	if err != nil {
		return nil, fmt.Errorf("open must be a set of decision point ids: %w", err)
	}
	slices.Sort(ids)
	return slices.Compact(ids), nil
}

// Eval evaluates the policy on an input document and decodes its output,
// with the evaluator Compile chose (see Evaluator).
func (p *Policy) Eval(ctx context.Context, input ast.Value) (*Output, error) {
	return p.eval.Eval(ctx, input)
}

// CompareEvaluators evaluates input with the IR evaluator and with topdown
// and describes any difference in the decoded decision or in whether
// evaluation failed; "" when they agree (or when IR is not in use).
// handed reports that the IR failed on input and topdown made the decision.
func (p *Policy) CompareEvaluators(ctx context.Context, input ast.Value) (diff string, handed bool) {
	if p.eval.Name() != EvaluatorIR {
		return "", false
	}
	ir, irErr := p.eval.Eval(ctx, input)
	handed = ir != nil && ir.FellBack()
	td, tdErr := p.topdown.Eval(ctx, input)
	if (irErr == nil) != (tdErr == nil) {
		return fmt.Sprintf("ir error %v, topdown error %v", irErr, tdErr), handed
	}
	a, _ := json.Marshal(ir)
	b, _ := json.Marshal(td)
	if string(a) != string(b) {
		return fmt.Sprintf("ir %s, topdown %s", a, b), handed
	}
	return "", handed
}

var errNoDecision = errors.New("policy produced no decision document (data.jitai.policy.decision is undefined for this input)")

// EvalTopdown evaluates the policy with OPA's topdown evaluator whatever
// evaluator is chosen (for differential checks).
func (p *Policy) EvalTopdown(ctx context.Context, input ast.Value) (*Output, error) {
	return p.topdown.Eval(ctx, input)
}

// PreparedQuery returns the compiled query, for benchmarks and tools.
func (p *Policy) PreparedQuery() rego.PreparedEvalQuery { return p.query }

// Modules returns the compiled modules by path.
func (p *Policy) Modules() map[string]*ast.Module { return p.modules }

// Store returns the data store the policy was compiled with.
func (p *Policy) Store() storage.Store { return p.store }

// DecodeOutput checks and converts the policy's raw decision document.
func DecodeOutput(v any) (*Output, error) {
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("decision must be an object, got %T", v)
	}
	out := &Output{}
	var err error
	if out.SafetyReasons, err = stringList(obj, "safety_reasons"); err != nil {
		return nil, err
	}
	if out.UnavailableReasons, err = stringList(obj, "unavailable_reasons"); err != nil {
		return nil, err
	}
	if out.Conditions, err = stringList(obj, "conditions"); err != nil {
		return nil, err
	}
	if av, ok := obj["available"]; ok {
		b, isBool := av.(bool)
		if !isBool {
			return nil, errors.New("decision.available must be a boolean")
		}
		if !b && len(out.UnavailableReasons) == 0 {
			out.UnavailableReasons = []string{"policy_unavailable"}
		}
	}
	if raw, ok := obj["candidates"]; ok {
		list, ok := raw.([]any)
		if !ok {
			return nil, fmt.Errorf("decision.candidates must be an array, got %T", raw)
		}
		for i, c := range list {
			co, ok := c.(map[string]any)
			if !ok {
				return nil, fmt.Errorf("decision.candidates[%d] must be an object with id and weight", i)
			}
			id, _ := co["id"].(string)
			if id == "" {
				return nil, fmt.Errorf("decision.candidates[%d].id must be a non-empty string", i)
			}
			w := 1.0
			if wv, ok := co["weight"]; ok {
				if w, ok = number(wv); !ok || w <= 0 {
					return nil, fmt.Errorf("decision.candidates[%d].weight must be a positive number", i)
				}
			}
			reason, _ := co["reason"].(string)
			out.Candidates = append(out.Candidates, trial.Candidate{ID: id, Weight: w, Reason: reason})
		}
		// Sets come back in a canonical order already; sort anyway so that
		// the choice never depends on evaluation order.
		sort.SliceStable(out.Candidates, func(i, j int) bool { return out.Candidates[i].ID < out.Candidates[j].ID })
	}
	if raw, ok := obj["probabilities"]; ok {
		m, ok := raw.(map[string]any)
		if !ok {
			return nil, errors.New("decision.probabilities must be an object {factor: p}")
		}
		out.Probabilities = make(map[string]float64, len(m))
		for k, pv := range m {
			p, ok := number(pv)
			if !ok || p < 0 || p > 1 {
				return nil, fmt.Errorf("decision.probabilities.%s must be a number in [0, 1]", k)
			}
			out.Probabilities[k] = p
		}
	}
	if raw, ok := obj["tailoring"]; ok {
		m, ok := raw.(map[string]any)
		if !ok {
			return nil, errors.New("decision.tailoring must be an object")
		}
		if len(m) > 0 {
			out.Tailoring = m
		}
	}
	return out, nil
}

func stringList(obj map[string]any, key string) ([]string, error) {
	raw, ok := obj[key]
	if !ok {
		return nil, nil
	}
	list, ok := raw.([]any)
	if !ok {
		return nil, fmt.Errorf("decision.%s must be an array of strings, got %T", key, raw)
	}
	out := make([]string, 0, len(list))
	for i, v := range list {
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("decision.%s[%d] must be a string", key, i)
		}
		out = append(out, s)
	}
	sort.Strings(out)
	return out, nil
}

func number(v any) (float64, bool) {
	switch n := v.(type) {
	case json.Number:
		f, err := n.Float64()
		return f, err == nil
	case float64:
		return n, true
	case int:
		return float64(n), true
	case int64:
		return float64(n), true
	}
	return 0, false
}

// Revision is the hex sha256 of a bundle: every (path, content) pair in path
// order, each length-prefixed.
func Revision(files map[string][]byte) string {
	h := sha256.New()
	var n [8]byte
	for _, p := range slices.Sorted(maps.Keys(files)) {
		binary.BigEndian.PutUint64(n[:], uint64(len(p)))
		h.Write(n[:])
		h.Write([]byte(p))
		binary.BigEndian.PutUint64(n[:], uint64(len(files[p])))
		h.Write(n[:])
		h.Write(files[p])
	}
	return hex.EncodeToString(h.Sum(nil))
}
