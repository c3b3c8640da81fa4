package decision

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"regexp"
	"sort"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/jitai/jitai/policies"
)

// InputSampler makes random policy inputs shaped by the documented input schema:
// fields present or missing, mostly of their documented type but sometimes
// not, and strings and keys drawn from the policy's own string literals, so
// that the policy's branches are actually taken.
type InputSampler struct {
	r     *rand.Rand
	words []string
	// dense: every map of named entries (state.ema, context, ...) gets an
	// entry for every identifier the policy names, so that rules that read
	// several variables at once fire together (SampleDense).
	dense bool
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

func (g *InputSampler) value(f *policies.InputField) any {
	if g.r.IntN(12) == 0 { // the wrong type now and then
		return g.scalar()
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
				out[k] = g.value(f.Fields[k])
			}
		}
		if f.Each != nil && g.dense {
			for _, w := range g.words {
				if identRe.MatchString(w) {
					out[w] = g.value(f.Each)
				}
			}
		} else if f.Each != nil {
			for range g.r.IntN(6) {
				out[g.word()] = g.value(f.Each)
			}
		}
		return out
	}
	return g.scalar()
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
		if m, ok := g.value(schema).(map[string]any); ok {
			return m
		}
	}
}
