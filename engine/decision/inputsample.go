package decision

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/jitai/jitai/policies"
)

// InputSampler makes random policy inputs shaped by the documented input schema:
// fields present or missing, mostly of their documented type but sometimes
// not, and strings and keys drawn from the policy's own string literals, so
// that the policy's branches are actually taken. With a data dictionary
// (Declare), the declared variables are drawn from their type, range and
// levels: bounds, every level, and now and then missing.
type InputSampler struct {
	r     *rand.Rand
	words []string
	// dense: every map of named entries (state.ema, context, ...) gets an
	// entry for every identifier the policy names, so that rules that read
	// several variables at once fire together (SampleDense).
	dense bool
	// declared: the data dictionary's variables by the input path of the
	// object that holds them ("state.ema", "context", "derived.sleep", ...);
	// observed: whether that object's entries are {value, time,
	// age_minutes}; totals: assessment variables by instrument.
	declared map[string][]*policies.Variable
	observed map[string]bool
	totals   map[string]*policies.Variable
}

// Declare makes the sampler draw the variables of a study's data
// dictionary from their declared type, range and levels wherever the
// input holds them: input.state.ema, input.context, input.state.context,
// input.state.assessment.<instrument>.total and input.derived.<plugin>.
func (g *InputSampler) Declare(vars []policies.Variable) *InputSampler {
	g.declared = map[string][]*policies.Variable{}
	g.observed = map[string]bool{"state.ema": true, "state.context": true}
	g.totals = map[string]*policies.Variable{}
	for i := range vars {
		v := &vars[i]
		switch v.Source {
		case policies.SourceEMA:
			g.declared["state.ema"] = append(g.declared["state.ema"], v)
		case policies.SourceContext:
			g.declared["state.context"] = append(g.declared["state.context"], v)
			g.declared["context"] = append(g.declared["context"], v)
		case policies.SourceAssessment:
			g.totals[v.Name] = v
		case policies.SourceDerived:
			g.declared["derived."+v.Plugin] = append(g.declared["derived."+v.Plugin], v)
		}
	}
	return g
}

func NewInputSampler(seed uint64, mods map[string]*ast.Module) *InputSampler {
	seen := map[string]bool{}
	words := []string{"22:00", "08:00", "07:30", "23:59", "00:00", "24:00", "9:00", "", "home", "x"}
	for _, m := range mods {
		ast.WalkTerms(m, func(t *ast.Term) bool {
			if s, ok := t.Value.(ast.String); ok && len(s) < 40 && !seen[string(s)] {
				seen[string(s)] = true
				words = append(words, string(s))
			}
			return false
		})
	}
	sort.Strings(words)
	return &InputSampler{r: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), words: words}
}

func (g *InputSampler) word() string { return g.words[g.r.IntN(len(g.words))] }

func (g *InputSampler) number() any {
	switch g.r.IntN(4) {
	case 0:
		return []int{-1, 0, 1, 2, 3, 4, 7, 8, 10, 14, 15, 30, 31, 89, 90, 91, 359, 360, 1199, 1200, 1259, 1260, 1439, 1440, 1441}[g.r.IntN(25)]
	case 1:
		return g.r.IntN(11)
	case 2:
		return json.Number(fmt.Sprintf("%.2f", g.r.Float64()*12-1))
	}
	return g.r.IntN(1500)
}

func (g *InputSampler) scalar() any {
	switch g.r.IntN(5) {
	case 0:
		return g.word()
	case 1:
		return g.r.IntN(2) == 0
	case 2:
		return nil
	}
	return g.number()
}

func (g *InputSampler) value(f *policies.InputField, path string) any {
	if g.r.IntN(12) == 0 { // the wrong type now and then
		return g.scalar()
	}
	if inst, ok := strings.CutPrefix(path, "state.assessment."); ok && strings.HasSuffix(inst, ".total") {
		if v := g.totals[strings.TrimSuffix(inst, ".total")]; v != nil {
			return g.draw(v)
		}
	}
	switch f.Type {
	case policies.FieldString:
		return g.word()
	case policies.FieldNumber:
		return g.number()
	case policies.FieldBool:
		return g.r.IntN(3) > 0
	case policies.FieldArray:
		n := g.r.IntN(5)
		out := make([]any, n)
		for i := range out {
			if g.r.IntN(4) == 0 {
				out[i] = g.scalar()
			} else {
				out[i] = g.word()
			}
		}
		return out
	case policies.FieldObject:
		out := map[string]any{}
		// In key order: the same seed gives the same inputs.
		keys := make([]string, 0, len(f.Fields))
		for k := range f.Fields {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if g.r.IntN(5) > 0 {
				out[k] = g.value(f.Fields[k], join(path, k))
			}
		}
		if f.Each != nil && g.dense {
			for _, w := range g.words {
				if identRe.MatchString(w) {
					out[w] = g.value(f.Each, join(path, w))
				}
			}
		} else if f.Each != nil {
			for range g.r.IntN(6) {
				w := g.word()
				out[w] = g.value(f.Each, join(path, w))
			}
		}
		if f.Each != nil {
			g.declaredEntries(out, f.Each, path)
		}
		return out
	}
	return g.scalar()
}

func join(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}

// declaredEntries sets the entries of the declared variables an object of
// named entries at path holds (and, at input.derived, an object for each
// plugin with declared variables): each drawn from its declaration, missing
// one time in four (one in ten when dense).
func (g *InputSampler) declaredEntries(out map[string]any, each *policies.InputField, path string) {
	if path == "derived" {
		// In name order: the same seed gives the same inputs.
		var plugins []string
		for p := range g.declared {
			if name, ok := strings.CutPrefix(p, "derived."); ok {
				plugins = append(plugins, name)
			}
		}
		sort.Strings(plugins)
		for _, name := range plugins {
			out[name] = g.value(each, "derived."+name)
		}
		return
	}
	missing := 4
	if g.dense {
		missing = 10
	}
	for _, v := range g.declared[path] {
		if g.r.IntN(missing) == 0 {
			delete(out, v.Name)
			continue
		}
		if !g.observed[path] {
			out[v.Name] = g.draw(v)
			continue
		}
		o, ok := g.value(each, join(path, v.Name)).(map[string]any)
		if !ok {
			o = map[string]any{}
		}
		o["value"] = g.draw(v)
		out[v.Name] = o
	}
}

// draw is a value of a declared variable: for numbers, the bounds, the
// midpoint or any value within them; a boolean; any of a category's
// levels; and now and then a value of another type (a record made before
// the dictionary, a decision request's context, which is not checked).
func (g *InputSampler) draw(v *policies.Variable) any {
	if g.r.IntN(12) == 0 {
		return g.scalar()
	}
	switch v.Type {
	case policies.TypeBoolean:
		return g.r.IntN(2) == 0
	case policies.TypeCategory:
		return v.Levels[g.r.IntN(len(v.Levels))]
	}
	if v.Min == nil && v.Max == nil {
		x := g.number()
		if _, whole := x.(int); !whole && v.Type == policies.TypeInteger {
			return g.r.IntN(11)
		}
		return x
	}
	lo, hi := -1000.0, 1000.0
	if v.Min != nil {
		lo = *v.Min
	}
	if v.Max != nil {
		hi = *v.Max
	}
	if v.Min == nil {
		lo = min(hi-10, 0)
	}
	if v.Max == nil {
		hi = max(lo+10, 0)
	}
	var x float64
	switch g.r.IntN(4) {
	case 0:
		x = lo
	case 1:
		x = hi
	case 2:
		x = lo + (hi-lo)/2
	default:
		x = lo + g.r.Float64()*(hi-lo)
	}
	if v.Type == policies.TypeInteger {
		x = math.Ceil(x)
		if x > hi {
			x = math.Floor(hi)
		}
	}
	return json.Number(strconv.FormatFloat(x, 'f', -1, 64))
}

var identRe = regexp.MustCompile(`^[a-z][a-z0-9_]{0,39}$`)

// SampleDense is Sample with every map of named entries filled with an
// entry for each identifier the policy's modules name: the inputs on which
// the most rules fire at once, where conflicting definitions show.
func (g *InputSampler) SampleDense(schema *policies.InputField) map[string]any {
	g.dense = true
	defer func() { g.dense = false }()
	return g.Sample(schema)
}

// Sample returns one random input document shaped by schema.
func (g *InputSampler) Sample(schema *policies.InputField) map[string]any {
	for {
		if m, ok := g.value(schema, "").(map[string]any); ok {
			return m
		}
	}
}
