package policies

import (
	"context"
	"fmt"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage"

	"github.com/jitai/jitai/policies/irvm"
)

// Evaluator names the Rego evaluators.
const (
	EvaluatorIR      = "ir"      // OPA's plan of the policy, run by irvm (the default)
	EvaluatorTopdown = "topdown" // OPA's topdown evaluator
)

// CheckEvaluator returns nil when name is an evaluator's name
// (EvaluatorIR or EvaluatorTopdown) and otherwise an error naming the choices.
func CheckEvaluator(name string) error {
	switch name {
	case EvaluatorIR, EvaluatorTopdown:
		return nil
	}
	return fmt.Errorf("unknown policy evaluator %q: want %s (OPA's planned IR, the default) or %s (OPA's topdown evaluator)", name, EvaluatorIR, EvaluatorTopdown)
}

// Evaluator evaluates a compiled policy's decision document
// (data.jitai.policy.decision) on an input and decodes it. Implementations
// are safe for concurrent use.
type Evaluator interface {
	// Name is the evaluator that makes the decisions: EvaluatorIR or
	// EvaluatorTopdown.
	Name() string
	// Eval evaluates the decision on input.
	Eval(ctx context.Context, input ast.Value) (*Output, error)
}

// CompileOptions are the choices Compile makes for one policy.
type CompileOptions struct {
	// Evaluator is EvaluatorIR (also when empty) or EvaluatorTopdown. With
	// EvaluatorIR, a policy OPA cannot plan or irvm cannot run is evaluated
	// by topdown, and Policy.Evaluator says why.
	Evaluator string
	// SafetyRule names the rule of package jitai.policy that holds the
	// safety reasons (default "safety"): when the decision cannot be
	// evaluated, it is asked alone (Policy.Safety).
	SafetyRule string
}

// LoadOptions are the loader's choices for studies whose study.yaml does
// not make them.
type LoadOptions struct {
	// Evaluator is the evaluator of a study without an evaluator key in
	// study.yaml: EvaluatorIR (also when empty) or EvaluatorTopdown.
	Evaluator string
	// MaxDesignNodes bounds the minimum-aberration search of a design asked
	// for by run size (0: design.DefaultMaxNodes). It counts search nodes,
	// never time, so a study loads the same on any machine.
	MaxDesignNodes int64
	// PinnedDesign returns the design pinned for a study at its first
	// enrolment (nil when none is). A searched design is then taken from
	// the pin instead of searched again, and every design is verified
	// against the pin: a change is refused.
	PinnedDesign func(study string) (*DesignPin, error)
}

// loadOptions merges the options given to a loader: a later non-empty
// field wins.
func loadOptions(opts []LoadOptions) LoadOptions {
	var o LoadOptions
	for _, x := range opts {
		if x.Evaluator != "" {
			o.Evaluator = x.Evaluator
		}
		if x.MaxDesignNodes > 0 {
			o.MaxDesignNodes = x.MaxDesignNodes
		}
		if x.PinnedDesign != nil {
			o.PinnedDesign = x.PinnedDesign
		}
	}
	return o
}

// compileOptions is what Compile compiles cfg's policy with: the
// evaluator study.yaml chooses, or else the loader's.
func (o LoadOptions) compileOptions(cfg *Config) CompileOptions {
	ev := o.Evaluator
	if cfg.Evaluator != "" {
		ev = cfg.Evaluator
	}
	return CompileOptions{Evaluator: ev, SafetyRule: cfg.OnPolicyError.SafetyRule}
}

// topdownEvaluator evaluates with OPA's topdown evaluator.
type topdownEvaluator struct{ query rego.PreparedEvalQuery }

func (*topdownEvaluator) Name() string { return EvaluatorTopdown }

func (e *topdownEvaluator) Eval(ctx context.Context, input ast.Value) (*Output, error) {
	rs, err := e.query.Eval(ctx, rego.EvalParsedInput(input))
	if err != nil {
		return nil, fmt.Errorf("evaluating policy: %w", err)
	}
	if len(rs) == 0 || len(rs[0].Expressions) == 0 {
		return nil, errNoDecision
	}
	return DecodeOutput(rs[0].Expressions[0].Value)
}

// irEvaluator runs OPA's plan of the decision with irvm, on the data the
// topdown evaluator reads from its store.
type irEvaluator struct {
	prog *irvm.Program
	data ast.Value
}

// entrypoint is Query as a compile entrypoint.
const entrypoint = "jitai/policy/decision"

// newIREvaluator plans the decision with OPA's compile API and loads the
// plan; it fails when OPA cannot plan the policy or irvm cannot run the
// plan.
func newIREvaluator(ctx context.Context, mods map[string]*ast.Module, store storage.Store) (*irEvaluator, error) {
	plan, err := irvm.Plan(ctx, entrypoint, mods, pureCapabilities())
	if err != nil {
		return nil, err
	}
	prog, err := irvm.Load(plan, pureCapabilities())
	if err != nil {
		return nil, err
	}
	txn, err := store.NewTransaction(ctx)
	if err != nil {
		return nil, err
	}
	defer store.Abort(ctx, txn)
	raw, err := store.Read(ctx, txn, storage.RootPath)
	if err != nil {
		return nil, err
	}
	data, ok := raw.(ast.Value)
	if !ok {
		if data, err = ast.InterfaceToValue(raw); err != nil {
			return nil, err
		}
	}
	return &irEvaluator{prog: prog, data: data}, nil
}

func (*irEvaluator) Name() string { return EvaluatorIR }

func (e *irEvaluator) Eval(ctx context.Context, input ast.Value) (*Output, error) {
	vals, err := e.prog.Eval(ctx, input, e.data, irvm.Options{})
	if err != nil {
		return nil, fmt.Errorf("evaluating policy: %w", err)
	}
	if len(vals) == 0 {
		return nil, errNoDecision
	}
	doc, err := ast.JSON(vals[0])
	if err != nil {
		return nil, fmt.Errorf("evaluating policy: %w", err)
	}
	return DecodeOutput(doc)
}

// fallback is the decorator NewFallback returns.
type fallback struct{ primary, secondary Evaluator }

// NewFallback returns an Evaluator that evaluates with primary and, where
// primary fails while ctx is still live, gives secondary the last word;
// the Output secondary makes then reports FellBack. A failure because ctx
// ended (a deadline, a cancellation) is returned as it is. The Evaluator is
// named after primary.
//
// The planned IR falls back on topdown: where a built-in fails or rules
// conflict, which rule bodies an evaluator tries first can decide between
// an error and a decision, and topdown's order (early exit, indexing) is
// not the plan's.
func NewFallback(primary, secondary Evaluator) Evaluator {
	return &fallback{primary: primary, secondary: secondary}
}

func (f *fallback) Name() string { return f.primary.Name() }

func (f *fallback) Eval(ctx context.Context, input ast.Value) (*Output, error) {
	out, err := f.primary.Eval(ctx, input)
	if err == nil || ctx.Err() != nil {
		return out, err
	}
	out, err = f.secondary.Eval(ctx, input)
	if out != nil {
		out.fellBack = true
	}
	return out, err
}
