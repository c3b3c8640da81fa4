package irvm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/bundle"
	"github.com/open-policy-agent/opa/v1/compile"
	"github.com/open-policy-agent/opa/v1/ir"
)

// ResultVar is the variable an entrypoint plan binds the entrypoint's value
// to: each of its results is {"result": value}.
const ResultVar = "result"

// Plan plans one entrypoint (a slash path under data, such as
// "jitai/policy/decision") over the modules with OPA's public compile API
// (the plan target) and returns the plan. caps limits the built-ins the
// modules may call (nil: all of this OPA's). The modules are not changed.
//
// The plan reads base documents (data that is not a rule) from the data
// given to Program.Eval at evaluation time; the modules alone decide the
// plan.
func Plan(ctx context.Context, entrypoint string, modules map[string]*ast.Module, caps *ast.Capabilities) (p *ir.Policy, err error) {
	// The planner panics on states it considers impossible; a study load
	// or reload must get an error (and keep topdown), not crash.
	defer func() {
		if r := recover(); r != nil {
			p, err = nil, fmt.Errorf("irvm: planning %s: the planner failed: %v", entrypoint, r)
		}
	}()
	b := &bundle.Bundle{}
	b.SetRegoVersion(ast.RegoV1)
	b.Manifest.Init()
	for _, path := range slices.Sorted(maps.Keys(modules)) {
		// Building formats the bundle's modules: give it copies.
		b.Modules = append(b.Modules, bundle.ModuleFile{URL: path, Path: path, Parsed: modules[path].Copy()})
	}
	c := compile.New().
		WithTarget(compile.TargetPlan).
		WithEntrypoints(entrypoint).
		// Plan the entrypoint only, not also the rules that depend on it:
		// Load runs one plan.
		WithPruneUnused(true).
		WithRegoVersion(ast.RegoV1).
		WithBundle(b)
	if caps != nil {
		c = c.WithCapabilities(caps)
	}
	if err := c.Build(ctx); err != nil {
		return nil, fmt.Errorf("irvm: planning %s: %w", entrypoint, err)
	}
	for _, pm := range c.Bundle().PlanModules {
		if pm.Path != bundle.PlanFile {
			continue
		}
		var policy ir.Policy
		if err := json.Unmarshal(pm.Raw, &policy); err != nil {
			return nil, fmt.Errorf("irvm: reading the plan of %s: %w", entrypoint, err)
		}
		return &policy, nil
	}
	return nil, errors.New("irvm: planning " + entrypoint + ": the compiler produced no plan")
}
