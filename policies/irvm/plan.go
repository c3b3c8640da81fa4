package irvm

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/ir"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage"
)

// target is the rego target name under which the planner's output is
// captured; it claims no other target, so the default (topdown) evaluation
// of every other query is untouched.
const target = "jitai-ir-capture"

type planSlot struct{ policy *ir.Policy }

type slotKey struct{}

// capture is a rego.TargetPlugin that only records the plan OPA's planner
// produced for the query being prepared.
type capture struct{}

func (capture) IsTarget(t string) bool { return t == target }

func (capture) PrepareForEval(ctx context.Context, p *ir.Policy, _ ...rego.PrepareOption) (rego.TargetPluginEval, error) {
	slot, ok := ctx.Value(slotKey{}).(*planSlot)
	if !ok {
		return nil, errors.New("irvm: plan capture used outside Plan")
	}
	slot.policy = p
	return refuseEval{}, nil
}

type refuseEval struct{}

func (refuseEval) Eval(context.Context, *rego.EvalContext, ast.Value) (ast.Value, error) {
	return nil, errors.New("irvm: the capture target does not evaluate; use irvm.Program")
}

var register sync.Once

// Plan runs OPA's planner on query over the compiled modules and returns
// the intermediate representation. comp must be a compiler of its own: the
// planner switches it to IR evaluation mode.
func Plan(ctx context.Context, query string, comp *ast.Compiler, store storage.Store) (*ir.Policy, error) {
	p, err := PlanWith(ctx, rego.Query(query), rego.Compiler(comp), rego.Store(store))
	if err != nil {
		return nil, fmt.Errorf("planning %s: %w", query, err)
	}
	return p, nil
}

// PlanWith plans the query that opts describe (modules, query, compiler...).
func PlanWith(ctx context.Context, opts ...func(*rego.Rego)) (p *ir.Policy, err error) {
	// The planner panics on states it considers impossible; a study load
	// or reload must get an error (and keep topdown), not crash.
	defer func() {
		if r := recover(); r != nil {
			p, err = nil, fmt.Errorf("irvm: the planner failed: %v", r)
		}
	}()
	register.Do(func() { rego.RegisterPlugin("rego.target."+target, capture{}) })
	slot := &planSlot{}
	_, err = rego.New(append(opts, rego.Target(target))...).PrepareForEval(context.WithValue(ctx, slotKey{}, slot))
	if err != nil {
		return nil, err
	}
	if slot.policy == nil {
		return nil, errors.New("irvm: the planner produced no plan")
	}
	return slot.policy, nil
}
