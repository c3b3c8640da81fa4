package policies

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/jitai/jitai/experiments/design"
	"github.com/jitai/jitai/interventions"
)

// Study is a loaded, validated study: its configuration, compiled policy and
// the part of the catalogue it uses.
type Study struct {
	Dir       string
	Config    *Config
	Policy    *Policy
	Catalogue *interventions.Catalogue
	// Revision is the sha256 of study.yaml and the non-test policy files.
	Revision string
	// Design holds the between-person design rows (level indices, one
	// column per between-person factor in declaration order); nil for the
	// full factorial.
	Design *design.Design
	// Location is the study's default time zone.
	Location *time.Location
	// PolicyFiles and TestFiles hold the policy's sources by path
	// (tests are *_test.rego).
	PolicyFiles map[string]string
	TestFiles   map[string]string
	// LoadedAt is when this revision was loaded.
	LoadedAt time.Time
	// pinnedSource is the Source of the pin the design was taken from
	// (LoadOptions.PinnedDesign); "" when it was built from study.yaml.
	pinnedSource string
	// pinChecked: the design was checked against the pin the loader's
	// PinnedDesign returned (none, or an equal one).
	pinChecked bool
}

// PinChecked reports whether the study's between-person design was checked
// at load against the design pinned for it (LoadOptions.PinnedDesign), so
// that a caller need not read and compare the pin again.
func (s *Study) PinChecked() bool { return s.pinChecked }

// LoadStudy reads, validates and compiles the study in dir. Every problem is
// reported as file:line: reason, with paths relative to the study's parent.
//
// Nothing it does depends on the clock or the machine: a design asked for by
// run size is searched with design.DefaultMaxNodes search nodes (or
// LoadOptions.MaxDesignNodes), and a study
// whose minimum-aberration design the search cannot prove within them is
// refused with the generators to pin in study.yaml. opts choose for a
// study.yaml that does not (see LoadOptions).
func LoadStudy(ctx context.Context, dir string, catalogue *interventions.Catalogue, opts ...LoadOptions) (*Study, error) {
	o := loadOptions(opts)
	maxNodes := o.MaxDesignNodes
	if maxNodes <= 0 {
		maxNodes = design.DefaultMaxNodes
	}
	name := filepath.Base(dir)
	rel := func(p string) string { return filepath.Join(name, p) }
	raw, err := os.ReadFile(filepath.Join(dir, "study.yaml"))
	if err != nil {
		return nil, fmt.Errorf("%s: reading study: %w", rel("study.yaml"), err)
	}
	cfg, err := ParseConfig(rel("study.yaml"), raw)
	if err != nil {
		return nil, err
	}
	bundle := map[string][]byte{"study.yaml": raw}
	policyFiles := map[string]string{}
	testFiles := map[string]string{}
	paths, err := filepath.Glob(filepath.Join(dir, "policy", "*.rego"))
	if err != nil {
		return nil, err
	}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		r := rel(filepath.Join("policy", filepath.Base(p)))
		if strings.HasSuffix(p, "_test.rego") {
			testFiles[r] = string(b)
			continue
		}
		policyFiles[r] = string(b)
		bundle[filepath.ToSlash(filepath.Join("policy", filepath.Base(p)))] = b
	}
	if len(policyFiles) == 0 {
		return nil, ConfigErrors{{File: rel("policy"), Msg: "no policy: put the study's Rego in policy/*.rego"}}
	}
	var errs ConfigErrors
	cat, err := catalogue.Subset(cfg.Interventions.Include)
	if err != nil {
		errs = append(errs, &ConfigError{File: rel("study.yaml"), Msg: "interventions.include: " + err.Error()})
	} else {
		for _, f := range cfg.Factors {
			if !f.Content {
				continue
			}
			if err := cat.CheckDimension(f.Name, f.Levels); err != nil {
				errs = append(errs, &ConfigError{File: rel("study.yaml"), Msg: fmt.Sprintf("factor %s is content: %v", f.Name, err)})
			}
		}
	}
	pinned, err := pinnedDesignOf(cfg, o)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", rel("study.yaml"), err)
	}
	dsg, err := buildDesign(cfg, maxNodes, pinned)
	if err != nil {
		key := "design"
		if cfg.Design == nil {
			key = "factors"
		}
		errs = append(errs, &ConfigError{File: rel("study.yaml"), Line: topLevelLine(raw, key), Msg: key + ": " + err.Error()})
	}
	mods, err := ParseModules(policyFiles)
	if err != nil {
		errs = append(errs, asConfigErrors(err)...)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	pol, err := Compile(ctx, mods, PolicyData(cat), o.compileOptions(cfg))
	if err != nil {
		return nil, err
	}
	loc, _ := time.LoadLocation(cfg.Timezone) // validated in ParseConfig
	study := &Study{
		Dir:         dir,
		Config:      cfg,
		Policy:      pol,
		Catalogue:   cat,
		Revision:    Revision(bundle),
		Design:      dsg,
		Location:    loc,
		PolicyFiles: policyFiles,
		TestFiles:   testFiles,
		LoadedAt:    time.Now().UTC(),
	}
	study.pinChecked = o.PinnedDesign != nil
	if pinned != nil {
		study.pinnedSource = pinned.Source
		if err := study.VerifyDesignPin(*pinned); err != nil {
			return nil, ConfigErrors{{File: rel("study.yaml"), Line: topLevelLine(raw, "factors"), Msg: err.Error()}}
		}
	}
	return study, nil
}

// pinnedDesignOf asks the loader's options for the design pinned for the
// study (nil when none is, or the study has no between-person factors).
func pinnedDesignOf(cfg *Config, o LoadOptions) (*DesignPin, error) {
	if o.PinnedDesign == nil || len(cfg.FactorsOf(Between)) == 0 {
		return nil, nil
	}
	pin, err := o.PinnedDesign(cfg.ID)
	if err != nil {
		return nil, fmt.Errorf("reading the study's pinned design: %w", err)
	}
	return pin, nil
}

// PolicyData is what a study's policy sees under data.jitai: the catalogue
// and indexes of it by target and technique (sorted id lists), so that a
// policy can select candidates without scanning the catalogue each time.
func PolicyData(cat *interventions.Catalogue) map[string]any {
	byTarget := map[string][]string{}
	byTechnique := map[string][]string{}
	for _, id := range cat.IDs() {
		iv, _ := cat.Get(id)
		for _, t := range iv.Targets {
			byTarget[t] = append(byTarget[t], id)
		}
		byTechnique[iv.Technique] = append(byTechnique[iv.Technique], id)
	}
	toAny := func(m map[string][]string) map[string]any {
		out := make(map[string]any, len(m))
		for k, ids := range m {
			list := make([]any, len(ids))
			for i, id := range ids {
				list[i] = id
			}
			out[k] = list
		}
		return out
	}
	return map[string]any{
		"catalogue":    cat.PolicyData(),
		"by_target":    toAny(byTarget),
		"by_technique": toAny(byTechnique),
	}
}

// buildDesign builds the configured fractional design (nil for the full
// factorial). Runs without generators asks for the minimum-aberration
// design, searched within maxNodes search nodes; a design the search cannot
// prove is refused with the generators that pin the best one found.
func buildDesign(cfg *Config, maxNodes int64, pinned *DesignPin) (*design.Design, error) {
	between := cfg.FactorsOf(Between)
	k := len(between)
	if cfg.Design == nil {
		if k > maxFullFactorialFactors {
			return nil, fmt.Errorf("%d between-person factors make a full factorial of %d cells, more than %d: add a fractional design (design: {runs: N}) or use fewer between-person factors",
				k, uint64(1)<<k, 1<<maxFullFactorialFactors)
		}
		return nil, nil
	}
	if len(cfg.Design.Generators) > 0 {
		d, err := design.FromGenerators(k, cfg.Design.Generators)
		if err != nil {
			return nil, err
		}
		if cfg.Design.Runs != 0 && d.Runs() != cfg.Design.Runs {
			return nil, fmt.Errorf("the generators give %d runs, not the %d in runs", d.Runs(), cfg.Design.Runs)
		}
		return d, nil
	}
	if pinned != nil && pinned.Runs == cfg.Design.Runs && len(pinned.Factors) == k && len(pinned.Generators) > 0 {
		// The design the search found and proved when the study's first
		// participant enrolled: not searched again (the caller verifies
		// the pin against the study).
		return design.FromGenerators(k, pinned.Generators)
	}
	d, err := design.Options{MaxNodes: maxNodes}.MinimumAberration(k, cfg.Design.Runs)
	if err != nil {
		return nil, err
	}
	if !d.ProvenMinimumAberration() {
		letters := make([]string, k)
		for i, name := range d.Names() {
			letters[i] = name + "=" + between[i].Name
		}
		return nil, fmt.Errorf("the minimum-aberration search for %d factors in %d runs could not be proven within the search budget (%d search nodes, the same on every machine); "+
			"pin the design in study.yaml, replacing its design section with the best design found (resolution %s; %s):\n%s",
			k, d.Runs(), maxNodes, design.Roman(d.Resolution()), strings.Join(letters, ", "), indentLines(d.StudyYAML(), "  "))
	}
	return d, nil
}

// maxFullFactorialFactors is the most between-person factors a full
// factorial may have (design.MaxRuns cells).
const maxFullFactorialFactors = 12

// indentLines prefixes every line of s with prefix and drops the final
// newline.
func indentLines(s, prefix string) string {
	lines := strings.Split(strings.TrimSuffix(s, "\n"), "\n")
	return prefix + strings.Join(lines, "\n"+prefix)
}

// topLevelLine is the line of a top-level key in study.yaml (0 if absent).
func topLevelLine(raw []byte, key string) int {
	for i, line := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(line, key+":") {
			return i + 1
		}
	}
	return 0
}

func asConfigErrors(err error) ConfigErrors {
	var ce ConfigErrors
	if errors.As(err, &ce) {
		return ce
	}
	return ConfigErrors{{Msg: err.Error()}}
}

// LoadStudies loads every study folder (a folder holding study.yaml) directly
// under root. It fails on the first study that does not load, naming it, and
// on two studies with the same id. opts are as for LoadStudy.
func LoadStudies(ctx context.Context, root string, catalogue *interventions.Catalogue, opts ...LoadOptions) ([]*Study, error) {
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil, fmt.Errorf("reading studies folder: %w", err)
	}
	var out []*Study
	ids := map[string]string{}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		dir := filepath.Join(root, e.Name())
		if _, err := os.Stat(filepath.Join(dir, "study.yaml")); err != nil {
			continue
		}
		s, err := LoadStudy(ctx, dir, catalogue, opts...)
		if err != nil {
			return nil, fmt.Errorf("study %s refused:\n%w", dir, err)
		}
		if prev, dup := ids[s.Config.ID]; dup {
			return nil, fmt.Errorf("study id %q is used by both %s and %s", s.Config.ID, prev, dir)
		}
		ids[s.Config.ID] = dir
		out = append(out, s)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no study found under %s: a study is a folder with study.yaml and policy/*.rego", root)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Config.ID < out[j].Config.ID })
	return out, nil
}
