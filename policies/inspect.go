package policies

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// Package is the document of the policy package: every rule's value.
const Package = "data.jitai.policy"

// Inspector looks inside a compiled policy for replay and explain: the
// value of every rule, and which rule bodies succeeded for an input. It is
// slower than Eval (it compiles the policy again, once, and traces) and is
// meant for tools, not for the decision path.
type Inspector struct {
	policy *Policy
	pkg    rego.PreparedEvalQuery
	// rules maps a rule's source position (file:row:col) to the rule as
	// written (the compiled rules are rewritten).
	rules map[string]ruleSource
	// names are the package's rule names (not functions).
	names map[string]bool
}

type ruleSource struct {
	rule   *ast.Rule
	name   string
	isElse bool
}

// NewInspector prepares an Inspector for a compiled policy.
func NewInspector(ctx context.Context, p *Policy) (*Inspector, error) {
	comp := ast.NewCompiler().WithCapabilities(pureCapabilities()).WithDefaultRegoVersion(ast.RegoV1)
	comp.Compile(p.modules)
	if comp.Failed() {
		return nil, astErrors("policy", comp.Errors)
	}
	// Values stay AST values (no conversion of the catalogue to Go for
	// every decision a replay compares).
	asAST := rego.GenerateJSON(func(t *ast.Term, _ *rego.EvalContext) (any, error) { return t.Value, nil })
	pq, err := rego.New(rego.Query(Package), rego.Compiler(comp), rego.Store(p.store), asAST).PrepareForEval(ctx)
	if err != nil {
		return nil, fmt.Errorf("preparing %s: %w", Package, err)
	}
	in := &Inspector{policy: p, pkg: pq, rules: map[string]ruleSource{}, names: map[string]bool{}}
	for _, m := range p.modules {
		for _, r := range m.Rules {
			name := r.Head.Ref().String()
			if len(r.Head.Args) == 0 && m.Package.Path.String() == Package {
				in.names[r.Head.Ref()[0].Value.String()] = true
			}
			for e := r; e != nil; e = e.Else {
				in.rules[posKey(e.Location)] = ruleSource{rule: e, name: name, isElse: e != r}
			}
		}
	}
	return in, nil
}

func posKey(l *ast.Location) string {
	if l == nil {
		return ""
	}
	return fmt.Sprintf("%s:%d:%d", l.File, l.Row, l.Col)
}

// Rules evaluates every rule of the policy package on input and returns
// their values by rule name (JSON-like Go values; sets become arrays).
// Undefined rules are absent; functions are not rules here.
func (in *Inspector) Rules(ctx context.Context, input ast.Value) (map[string]any, error) {
	obj, err := in.RuleValues(ctx, input)
	if err != nil {
		return nil, err
	}
	v, err := ast.JSON(obj)
	if err != nil {
		return nil, fmt.Errorf("converting the values of %s: %w", Package, err)
	}
	m, _ := v.(map[string]any)
	if m == nil {
		m = map[string]any{}
	}
	return m, nil
}

// RuleValues is Rules as AST values: an object from rule name to value.
func (in *Inspector) RuleValues(ctx context.Context, input ast.Value) (ast.Object, error) {
	rs, err := in.pkg.Eval(ctx, rego.EvalParsedInput(input))
	if err != nil {
		return nil, fmt.Errorf("evaluating %s: %w", Package, err)
	}
	if len(rs) == 0 || len(rs[0].Expressions) == 0 {
		return ast.NewObject(), nil
	}
	obj, ok := rs[0].Expressions[0].Value.(ast.Object)
	if !ok {
		return ast.NewObject(), nil
	}
	return obj, nil
}

// ChangedRuleValues lists, by name, the rules whose values differ between two
// policies on the same input (defined in one and not the other included).
func ChangedRuleValues(ctx context.Context, old, cur *Inspector, input ast.Value) ([]string, error) {
	return ChangedRuleValuesOn(ctx, old, input, cur, input)
}

// ChangedRuleValuesOn is ChangedRuleValues with an input of its own for
// each policy: a new study.yaml changes the input's study settings.
func ChangedRuleValuesOn(ctx context.Context, old *Inspector, oldInput ast.Value, cur *Inspector, curInput ast.Value) ([]string, error) {
	a, err := old.RuleValues(ctx, oldInput)
	if err != nil {
		return nil, fmt.Errorf("old policy: %w", err)
	}
	b, err := cur.RuleValues(ctx, curInput)
	if err != nil {
		return nil, fmt.Errorf("new policy: %w", err)
	}
	var out []string
	b.Foreach(func(k, v *ast.Term) {
		if w := a.Get(k); w == nil || v.Value.Compare(w.Value) != 0 {
			out = append(out, ruleKey(k))
		}
	})
	a.Foreach(func(k, _ *ast.Term) {
		if b.Get(k) == nil {
			out = append(out, ruleKey(k))
		}
	})
	sort.Strings(out)
	return out, nil
}

func ruleKey(k *ast.Term) string {
	if s, ok := k.Value.(ast.String); ok {
		return string(s)
	}
	return k.String()
}

// FiredRule is a rule body of the policy that succeeded for an input.
type FiredRule struct {
	// Name is the rule's name (its reference in the package).
	Name string `json:"rule"`
	// Head is the rule's head as written, shortened: "unavailable contains
	// \"quiet_hours\"", "need := \"stress\"", "late_night".
	Head string `json:"head"`
	// Key is the ground element a "contains" rule adds ("quiet_hours").
	Key any `json:"key,omitempty"`
	// File and Line locate the rule (its else branch, for an else).
	File string `json:"file"`
	Line int    `json:"line"`
	// Else says the rule is an else branch.
	Else bool `json:"else,omitempty"`
	// Default says the rule is the default value.
	Default bool `json:"default,omitempty"`
	// Constant says the rule has no body: its value is fixed in the source.
	Constant bool `json:"constant,omitempty"`
	// Reads are the input references in the rule (body and head), as
	// written (a ref with variables is cut before the first one;
	// object.get(input, path, _) counts as a read of that path).
	Reads []string `json:"reads,omitempty"`
	// Uses are the references to other rules of the package, cut the same
	// way ("recent_ema.stress").
	Uses []string `json:"uses,omitempty"`
}

// Fired evaluates the decision on input with tracing and returns the
// rules (not functions) of the policy whose bodies succeeded, in source
// order. Rules that were never needed are not evaluated and not listed.
func (in *Inspector) Fired(ctx context.Context, input ast.Value) ([]FiredRule, error) {
	tr := &exitTracer{seen: map[string]bool{}}
	if _, err := in.policy.query.Eval(ctx, rego.EvalParsedInput(input), rego.EvalQueryTracer(tr)); err != nil {
		return nil, fmt.Errorf("evaluating policy: %w", err)
	}
	var out []FiredRule
	for key := range tr.seen {
		src, ok := in.rules[key]
		if !ok || len(src.rule.Head.Args) > 0 {
			continue // a function, or a rule the compiler generated
		}
		out = append(out, describeRule(src, in.names))
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].File != out[j].File {
			return out[i].File < out[j].File
		}
		return out[i].Line < out[j].Line
	})
	return out, nil
}

// exitTracer records the source positions of rules whose bodies succeeded.
type exitTracer struct{ seen map[string]bool }

func (t *exitTracer) Enabled() bool { return true }

func (t *exitTracer) Config() topdown.TraceConfig { return topdown.TraceConfig{} }

func (t *exitTracer) TraceEvent(ev topdown.Event) {
	if ev.Op != topdown.ExitOp {
		return
	}
	if r, ok := ev.Node.(*ast.Rule); ok {
		t.seen[posKey(r.Location)] = true
	}
}

func describeRule(src ruleSource, names map[string]bool) FiredRule {
	r := src.rule
	f := FiredRule{Name: src.name, Default: r.Default, Else: src.isElse}
	if r.Location != nil {
		f.File, f.Line = r.Location.File, r.Location.Row
	}
	h := r.Head
	switch {
	case h.Key != nil && h.Value == nil:
		f.Head = src.name + " contains " + h.Key.String()
		if ast.IsScalar(h.Key.Value) {
			if v, err := ast.JSON(h.Key.Value); err == nil {
				f.Key = v
			}
		}
	case h.Value != nil && h.Value.Equal(ast.BooleanTerm(true)):
		f.Head = src.name
	case h.Value != nil && ast.IsScalar(h.Value.Value):
		f.Head = src.name + " := " + h.Value.String()
	default:
		f.Head = src.name
	}
	nodes := []any{r.Body}
	if h.Key != nil {
		nodes = append(nodes, h.Key)
	}
	if h.Value != nil {
		nodes = append(nodes, h.Value)
	}
	f.Reads, f.Uses = refReads(nodes, names)
	f.Uses = slices.DeleteFunc(f.Uses, func(u string) bool { return u == src.name })
	f.Constant = len(f.Reads) == 0 && len(f.Uses) == 0 && len(r.Body) == 1 && r.Body[0].Equal(ast.NewExpr(ast.BooleanTerm(true)))
	return f
}

// InputReads lists the input references a rule body reads, as written,
// sorted and without repeats: input.x.y, cut before the first variable;
// object.get(input.x, "y", d) and object.get(input, ["x", "y"], d) count as
// input.x.y.
func InputReads(body ast.Body) []string {
	reads, _ := refReads([]any{body}, nil)
	return reads
}

// refReads lists the input references and the references to the named
// rules in nodes.
func refReads(nodes []any, rules map[string]bool) (reads, uses []string) {
	set, used := map[string]bool{}, map[string]bool{}
	var vis *ast.GenericVisitor
	vis = ast.NewGenericVisitor(func(x any) bool {
		switch v := x.(type) {
		case ast.Call:
			if len(v) == 4 && v[0].String() == "object.get" {
				if ref, ok := v[1].Value.(ast.Ref); ok && ref.HasPrefix(ast.InputRootRef) {
					if full, ok := extendRef(groundPrefix(ref), v[2]); ok {
						set[full.String()] = true
						vis.Walk(v[3])
						return true
					}
				}
			}
		case ast.Ref:
			if v.HasPrefix(ast.InputRootRef) {
				set[groundPrefix(v).String()] = true
			} else if head, ok := v[0].Value.(ast.Var); ok && rules[string(head)] {
				used[groundPrefix(v).String()] = true
			}
			for _, t := range v[1:] {
				vis.Walk(t) // the head is done; variables in brackets may be rules
			}
			return true
		case *ast.Term:
			// A rule used as a bare name (count(favour)) is a Var term.
			if name, ok := v.Value.(ast.Var); ok && rules[string(name)] {
				used[string(name)] = true
			}
		}
		return false
	})
	for _, n := range nodes {
		vis.Walk(n)
	}
	return slices.Sorted(maps.Keys(set)), slices.Sorted(maps.Keys(used))
}

func groundPrefix(ref ast.Ref) ast.Ref {
	for i := 1; i < len(ref); i++ {
		if !ref[i].IsGround() {
			return ref[:i]
		}
	}
	return ref
}

// extendRef appends a ground object.get path (a string or an array of
// strings) to ref.
func extendRef(ref ast.Ref, p *ast.Term) (ast.Ref, bool) {
	out := ref.Copy()
	switch v := p.Value.(type) {
	case ast.String:
		return append(out, ast.StringTerm(string(v))), true
	case *ast.Array:
		ok := true
		v.Foreach(func(t *ast.Term) {
			if s, isStr := t.Value.(ast.String); isStr {
				out = append(out, ast.StringTerm(string(s)))
			} else {
				ok = false
			}
		})
		return out, ok
	}
	return nil, false
}

// RuleChange is a rule whose source differs between two policies.
type RuleChange struct {
	Rule   string `json:"rule"`
	Change string `json:"change"` // added | removed | changed
	// File and Line locate the rule's first definition in the new policy
	// (in the old one for a removed rule).
	File string `json:"file"`
	Line int    `json:"line"`
}

// ChangedRules compares the rules of two policies by name (all
// definitions, else branches and defaults of a name together, ignoring
// positions and comments) and lists those added, removed or changed, by
// name.
func ChangedRules(old, cur *Policy) []RuleChange {
	a, b := ruleTexts(old), ruleTexts(cur)
	var out []RuleChange
	for name, nb := range b {
		na, ok := a[name]
		switch {
		case !ok:
			out = append(out, RuleChange{Rule: name, Change: "added", File: nb.file, Line: nb.line})
		case na.text != nb.text:
			out = append(out, RuleChange{Rule: name, Change: "changed", File: nb.file, Line: nb.line})
		}
	}
	for name, na := range a {
		if _, ok := b[name]; !ok {
			out = append(out, RuleChange{Rule: name, Change: "removed", File: na.file, Line: na.line})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Rule < out[j].Rule })
	return out
}

type ruleText struct {
	text string
	file string
	line int
}

func ruleTexts(p *Policy) map[string]ruleText {
	texts := map[string][]string{}
	first := map[string]*ast.Location{}
	for _, m := range p.modules {
		pkg := strings.TrimPrefix(m.Package.Path.String(), "data.")
		for _, r := range m.Rules {
			name := r.Head.Ref().String()
			if pkg != "jitai.policy" {
				name = pkg + "." + name
			}
			texts[name] = append(texts[name], r.String())
			if l := first[name]; l == nil || (r.Location != nil && (r.Location.File < l.File || r.Location.File == l.File && r.Location.Row < l.Row)) {
				first[name] = r.Location
			}
		}
	}
	out := make(map[string]ruleText, len(texts))
	for name, ts := range texts {
		sort.Strings(ts)
		rt := ruleText{text: strings.Join(ts, "\n")}
		if l := first[name]; l != nil {
			rt.file, rt.line = l.File, l.Row
		}
		out[name] = rt
	}
	return out
}
