package policies

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/jitai/jitai/interventions"
)

// Field types of the documented policy input.
const (
	FieldString = "string"
	FieldNumber = "number"
	FieldBool   = "bool"
	FieldObject = "object"
	FieldArray  = "array"
	// FieldAny is a value of any shape (e.g. context the app sends):
	// deeper paths are not checked.
	FieldAny = "any"
)

// InputField is one node of the documented policy input (docs/policy.md):
// its type, its named fields, or, for an object keyed by names the study
// chooses (state.ema.<var>), the shape of every entry.
type InputField struct {
	Type   string
	Fields map[string]*InputField
	// Each is the shape of every entry of an object keyed by name.
	Each *InputField
}

// Lookup resolves a path below f. It returns "" when the path is
// documented, or why it is not.
func (f *InputField) Lookup(path []string) string {
	cur := f
	for i, k := range path {
		switch {
		case cur.Type == FieldAny:
			return ""
		case cur.Fields != nil && cur.Fields[k] != nil:
			cur = cur.Fields[k]
		case cur.Each != nil:
			cur = cur.Each
		case cur.Type == FieldObject:
			known := make([]string, 0, len(cur.Fields))
			for name := range cur.Fields {
				known = append(known, name)
			}
			sort.Strings(known)
			return fmt.Sprintf("%s has no field %q (fields: %s)", joinPath(path[:i]), k, strings.Join(known, ", "))
		default:
			return fmt.Sprintf("%s is a %s; it has no field %q", joinPath(path[:i]), cur.Type, k)
		}
	}
	return ""
}

func joinPath(p []string) string { return strings.Join(append([]string{"input"}, p...), ".") }

// InputRef is a static path into the input that a policy reads.
type InputRef struct {
	Path []string
	File string
	Line int
}

// InputRefs lists the input paths the modules read: refs input.a.b[...]
// up to their first non-constant part, and object.get(input..., key or
// [keys], default).
func InputRefs(mods map[string]*ast.Module) []InputRef {
	var out []InputRef
	add := func(path []string, loc *ast.Location) {
		if len(path) == 0 {
			return
		}
		r := InputRef{Path: path}
		if loc != nil {
			r.File, r.Line = loc.File, loc.Row
		}
		out = append(out, r)
	}
	for _, m := range mods {
		ast.WalkTerms(m, func(t *ast.Term) bool {
			switch v := t.Value.(type) {
			case ast.Ref:
				if p, ok := inputPath(v); ok {
					add(p, t.Location)
				}
			case ast.Call:
				if len(v) == 4 && v[0].String() == "object.get" {
					base, ok := inputBase(v[1])
					if !ok {
						return false
					}
					if p, ok := objectGetPath(base, v[2]); ok {
						add(p, v[2].Location)
					}
				}
			}
			return false
		})
		ast.WalkExprs(m, func(e *ast.Expr) bool {
			if !e.IsCall() || e.Operator().String() != "object.get" {
				return false
			}
			ops := e.Operands()
			if len(ops) < 3 {
				return false
			}
			base, ok := inputBase(ops[0])
			if !ok {
				return false
			}
			if p, ok := objectGetPath(base, ops[1]); ok {
				add(p, ops[1].Location)
			}
			return false
		})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].File != out[j].File {
			return out[i].File < out[j].File
		}
		return out[i].Line < out[j].Line
	})
	return out
}

// inputPath is the constant path of a ref rooted at input.
func inputPath(r ast.Ref) ([]string, bool) {
	if len(r) == 0 || !r[0].Equal(ast.InputRootDocument) {
		return nil, false
	}
	var p []string
	for _, t := range r[1:] {
		s, ok := t.Value.(ast.String)
		if !ok {
			break
		}
		p = append(p, string(s))
	}
	return p, true
}

// inputBase is the path of a term that is input or a constant ref into it.
func inputBase(t *ast.Term) ([]string, bool) {
	switch v := t.Value.(type) {
	case ast.Var:
		if ast.Var("input").Equal(v) {
			return []string{}, true
		}
	case ast.Ref:
		p, ok := inputPath(v)
		if ok && len(p) == len(v)-1 {
			return p, true
		}
	}
	return nil, false
}

// CheckInputRefs reports every input path the modules read that is not in
// the documented input.
func CheckInputRefs(mods map[string]*ast.Module, schema *InputField) ConfigErrors {
	var errs ConfigErrors
	seen := map[string]bool{}
	for _, r := range InputRefs(mods) {
		why := schema.Lookup(r.Path)
		if why == "" {
			continue
		}
		key := fmt.Sprintf("%s:%d:%s", r.File, r.Line, why)
		if seen[key] {
			continue
		}
		seen[key] = true
		errs = append(errs, &ConfigError{File: r.File, Line: r.Line,
			Msg: fmt.Sprintf("%s is not in the policy input: %s (docs/policy.md lists the input)", joinPath(r.Path), why)})
	}
	return errs
}

// CheckDictionaryRefs reports, for a study with a data dictionary, every
// input path the modules read that names a variable the dictionary does
// not declare: input.state.ema.<name>, input.context.<name>,
// input.state.context.<name>, input.state.assessment.<instrument> and
// input.derived.<plugin>.<name>. Each is a warning (undeclared values are
// kept, but the export types them by the data and nothing checks them),
// except an EMA or context variable under unknown_variables: refuse, which
// can never be reported: a problem.
func CheckDictionaryRefs(mods map[string]*ast.Module, cfg *Config) ConfigErrors {
	if len(cfg.Variables) == 0 {
		return nil
	}
	var errs ConfigErrors
	for _, r := range InputRefs(mods) {
		source, plugin, name := dictionaryRef(r.Path)
		if name == "" {
			continue
		}
		if _, ok := cfg.declared(source, plugin, name); ok {
			continue
		}
		what := fmt.Sprintf("%s variable %q", source, name)
		if source == SourceDerived {
			what = fmt.Sprintf("derived variable %q of plugin %s", name, plugin)
		}
		e := &ConfigError{File: r.File, Line: r.Line, Warning: true,
			Msg: fmt.Sprintf("%s reads %s, which the data dictionary does not declare: add it to study.yaml variables (docs/study.md)", joinPath(r.Path), what)}
		if cfg.UnknownVariables == UnknownRefuse && (source == SourceEMA || source == SourceContext) {
			e.Warning = false
			e.Msg += "; with unknown_variables: refuse the app can never report it"
		}
		errs = append(errs, e)
	}
	return errs
}

// dictionaryRef is the variable an input path names: its source, plugin
// (derived only) and name; name is "" for a path that names none.
func dictionaryRef(p []string) (source, plugin, name string) {
	switch {
	case len(p) >= 3 && p[0] == "state" && p[1] == "ema":
		return SourceEMA, "", p[2]
	case len(p) >= 3 && p[0] == "state" && p[1] == "context":
		return SourceContext, "", p[2]
	case len(p) >= 2 && p[0] == "context":
		return SourceContext, "", p[1]
	case len(p) >= 3 && p[0] == "state" && p[1] == "assessment":
		return SourceAssessment, "", p[2]
	case len(p) >= 3 && p[0] == "derived":
		return SourceDerived, p[1], p[2]
	}
	return "", "", ""
}

// CatalogueRefs lists the intervention ids the modules name as string
// literals where an id is expected: the id of a candidate object literal
// ({"id": "..."}) and keys of data.jitai.catalogue.
func CatalogueRefs(mods map[string]*ast.Module) []InputRef {
	var out []InputRef
	catalogue := ast.MustParseRef("data.jitai.catalogue")
	for _, m := range mods {
		ast.WalkTerms(m, func(t *ast.Term) bool {
			switch v := t.Value.(type) {
			case ast.Object:
				if id := v.Get(ast.StringTerm("id")); id != nil {
					if s, ok := id.Value.(ast.String); ok {
						r := InputRef{Path: []string{string(s)}}
						if id.Location != nil {
							r.File, r.Line = id.Location.File, id.Location.Row
						}
						out = append(out, r)
					}
				}
			case ast.Ref:
				if len(v) > len(catalogue) && v.HasPrefix(catalogue) {
					if s, ok := v[len(catalogue)].Value.(ast.String); ok {
						r := InputRef{Path: []string{string(s)}}
						if t.Location != nil {
							r.File, r.Line = t.Location.File, t.Location.Row
						}
						out = append(out, r)
					}
				}
			}
			return false
		})
	}
	return out
}

// CheckCatalogueRefs reports every intervention id the modules name that
// is not in the study's catalogue.
func CheckCatalogueRefs(mods map[string]*ast.Module, cat *interventions.Catalogue) ConfigErrors {
	var errs ConfigErrors
	for _, r := range CatalogueRefs(mods) {
		if _, ok := cat.Get(r.Path[0]); ok {
			continue
		}
		errs = append(errs, &ConfigError{File: r.File, Line: r.Line,
			Msg: fmt.Sprintf("intervention %q is not in the study's catalogue (interventions.include in study.yaml, or interventions/catalogue)", r.Path[0])})
	}
	return errs
}

// CheckStudy checks a study folder as thoroughly as it can and reports
// every problem it finds, with file:line: study.yaml, the catalogue
// selection, the Rego (syntax, purity, compilation), the input paths the
// policy reads against schema, and the intervention ids it names. The
// study is returned when it loads; opts are as for LoadStudy.
func CheckStudy(ctx context.Context, dir string, catalogue *interventions.Catalogue, schema *InputField, opts ...LoadOptions) (*Study, ConfigErrors) {
	name := filepath.Base(dir)
	rel := func(p string) string { return filepath.Join(name, p) }
	var errs ConfigErrors
	var cfg *Config
	raw, err := os.ReadFile(filepath.Join(dir, "study.yaml"))
	if err != nil {
		errs = append(errs, &ConfigError{File: rel("study.yaml"), Msg: "reading study: " + err.Error()})
	} else if cfg, err = ParseConfig(rel("study.yaml"), raw); err != nil {
		errs = append(errs, asConfigErrors(err)...)
	}
	cat := catalogue
	if cfg != nil {
		if sub, err := catalogue.Subset(cfg.Interventions.Include); err == nil {
			cat = sub
		}
	}
	files := map[string]string{}
	paths, _ := filepath.Glob(filepath.Join(dir, "policy", "*.rego"))
	for _, p := range paths {
		if strings.HasSuffix(p, "_test.rego") {
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			errs = append(errs, &ConfigError{File: rel(filepath.Join("policy", filepath.Base(p))), Msg: err.Error()})
			continue
		}
		files[rel(filepath.Join("policy", filepath.Base(p)))] = string(b)
	}
	if len(files) == 0 {
		errs = append(errs, &ConfigError{File: rel("policy"), Msg: "no policy: put the study's Rego in policy/*.rego"})
	}
	// Parse each file on its own, so that one file's syntax error does not
	// hide another's problems.
	mods := map[string]*ast.Module{}
	for p, src := range files {
		m, err := ParseModules(map[string]string{p: src})
		if err != nil {
			errs = append(errs, asConfigErrors(err)...)
			// A file that parses but calls impure built-ins is still
			// checked below.
			if pm, perr := ast.ParseModuleWithOpts(p, src, ast.ParserOptions{RegoVersion: ast.RegoV1}); perr == nil {
				mods[p] = pm
			}
			continue
		}
		mods[p] = m[p]
	}
	if len(mods) > 0 {
		if schema != nil {
			errs = append(errs, CheckInputRefs(mods, schema)...)
		}
		if cfg != nil {
			errs = append(errs, CheckDictionaryRefs(mods, cfg)...)
		}
		errs = append(errs, CheckCatalogueRefs(mods, cat)...)
		if len(mods) == len(files) {
			comp := ast.NewCompiler().WithCapabilities(pureCapabilities()).WithDefaultRegoVersion(ast.RegoV1).SetErrorLimit(0)
			copies := make(map[string]*ast.Module, len(mods))
			for p, m := range mods {
				copies[p] = m.Copy()
			}
			comp.Compile(copies)
			if comp.Failed() {
				// An impure call is already reported at its line; the
				// compiler's "undefined function" for it would repeat it.
				at := map[string]bool{}
				for _, e := range errs {
					at[fmt.Sprintf("%s:%d", e.File, e.Line)] = true
				}
				for _, e := range astErrors("policy", comp.Errors) {
					if !at[fmt.Sprintf("%s:%d", e.File, e.Line)] {
						errs = append(errs, e)
					}
				}
			} else if !definesDecision(mods) {
				errs = append(errs, &ConfigError{File: rel("policy"), Msg: "no rule `decision` in package jitai.policy: every study policy must define data.jitai.policy.decision"})
			}
		}
	}
	var s *Study
	if len(errs) == 0 || cfg != nil {
		// The loader's own checks (catalogue selection, content factors,
		// design) on top.
		st, err := LoadStudy(ctx, dir, catalogue, opts...)
		if err != nil {
			errs = append(errs, asConfigErrors(err)...)
		} else {
			s = st
		}
	}
	return s, dedupe(errs)
}

// dedupe drops repeated problems and sorts them by file and line.
func dedupe(errs ConfigErrors) ConfigErrors {
	seen := map[string]bool{}
	var out ConfigErrors
	for _, e := range errs {
		k := e.Error()
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, e)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].File != out[j].File {
			return out[i].File < out[j].File
		}
		return out[i].Line < out[j].Line
	})
	return out
}

// objectGetPath is the input path that object.get(base, key, ...) reads:
// base and the key (a string, or the leading strings of an array of keys).
func objectGetPath(base []string, key *ast.Term) ([]string, bool) {
	switch k := key.Value.(type) {
	case ast.String:
		return append(base, string(k)), true
	case *ast.Array:
		p := base
		for i := 0; i < k.Len(); i++ {
			s, ok := k.Elem(i).Value.(ast.String)
			if !ok {
				break
			}
			p = append(p, string(s))
		}
		return p, true
	}
	return nil, false
}
