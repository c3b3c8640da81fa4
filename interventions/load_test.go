package interventions

import (
	"errors"
	"io/fs"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
)

// testDims is the dimensions.yaml of the small test catalogues.
const testDims = "framing: [gain, loss]\nreminder: [off, on]\n"

// testEntry is a valid intervention; the comments give the line numbers the
// cases below refer to.
const testEntry = `id: ID
title: Test entry
technique: grounding
targets: [stress, low_mood]
duration_s: 90
body: "Base body for {target}."
steps:
  - "Step one."
  - "Step two takes {minutes} min."
variants:
  framing:
    gain:
      prefix: "Gain this {time_of_day}."
    loss:
      prefix: "Loss."
  reminder:
    off: {}
    on:
      suffix: "Later."
`

// entry returns testEntry with the given id and the replacements old, new,
// old, new... applied; each old must occur.
func entry(t *testing.T, id string, replacements ...string) string {
	t.Helper()
	s := strings.Replace(testEntry, "ID", id, 1)
	for i := 0; i+1 < len(replacements); i += 2 {
		if !strings.Contains(s, replacements[i]) {
			t.Fatalf("test entry has no %q", replacements[i])
		}
		s = strings.Replace(s, replacements[i], replacements[i+1], 1)
	}
	return s
}

// catalogueFS builds a file system with the given files under cat/; a nil
// dims leaves dimensions.yaml out.
func catalogueFS(dims *string, files map[string]string) fstest.MapFS {
	fsys := fstest.MapFS{}
	if dims != nil {
		fsys["cat/dimensions.yaml"] = &fstest.MapFile{Data: []byte(*dims)}
	}
	for name, data := range files {
		fsys["cat/"+name] = &fstest.MapFile{Data: []byte(data)}
	}
	return fsys
}

func ptr(s string) *string { return &s }

func TestLoadValid(t *testing.T) {
	c, err := Load(catalogueFS(ptr(testDims), map[string]string{
		"alpha.yaml":   entry(t, "alpha"),
		"beta.yaml":    entry(t, "beta", "  reminder:\n    off: {}\n    on:\n      suffix: \"Later.\"\n", ""),
		"README.md":    "not a catalogue file",
		"sub/x.yaml":   "ignored: sub-folders are not read",
		"notes.txt":    "ignored",
		"gamma.yaml":   entry(t, "gamma", "duration_s: 90", "duration_s: 90\ncontraindications: [in_public]"),
		"delta.yaml":   entry(t, "delta", "body: \"Base body for {target}.\"", "body: >\n  A folded body\n  over two lines."),
		"epsilon.yaml": entry(t, "epsilon", "targets: [stress, low_mood]", "targets:\n  - sleep"),
	}), "cat")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if got, want := strings.Join(c.IDs(), ","), "alpha,beta,delta,epsilon,gamma"; got != want {
		t.Errorf("IDs = %s, want %s", got, want)
	}
	iv, ok := c.Get("alpha")
	if !ok {
		t.Fatal("Get(alpha) not found")
	}
	if iv.File != "cat/alpha.yaml" || iv.Title != "Test entry" || iv.DurationS != 90 || len(iv.Steps) != 2 {
		t.Errorf("alpha = %+v", iv)
	}
	if iv.Contraindications == nil {
		t.Error("Contraindications is nil; want an empty list when none are given")
	}
	if got := iv.Variants["framing"]["loss"].Prefix; got != "Loss." {
		t.Errorf("alpha framing/loss prefix = %q", got)
	}
	if beta, _ := c.Get("beta"); len(beta.Variants) != 1 {
		t.Errorf("beta declares %d dimensions, want 1", len(beta.Variants))
	}
	if delta, _ := c.Get("delta"); delta.Body != "A folded body over two lines." {
		t.Errorf("delta body = %q", delta.Body)
	}
	if _, ok := c.Get("missing"); ok {
		t.Error("Get(missing) found something")
	}
}

func TestLoadErrors(t *testing.T) {
	for _, tt := range append(entryErrorCases(t), fileErrorCases(t)...) {
		t.Run(tt.name, func(t *testing.T) {
			dims := tt.dims
			if dims == nil {
				dims = ptr(testDims)
			}
			c, err := Load(catalogueFS(dims, tt.files), "cat")
			if err == nil {
				t.Fatalf("Load succeeded with %d interventions; want errors", c.Len())
			}
			var errs LoadErrors
			if !errors.As(err, &errs) {
				t.Fatalf("Load error is %T (%v); want LoadErrors", err, err)
			}
			if len(errs) != len(tt.want) {
				t.Fatalf("got %d errors, want %d:\n%v", len(errs), len(tt.want), err)
			}
			for i, want := range tt.want {
				if got := errs[i].Error(); !strings.HasPrefix(got, want) {
					t.Errorf("error %d:\n got %s\nwant %s...", i, got, want)
				}
			}
		})
	}
}

// loadErrorCase is a catalogue that must fail to load.
type loadErrorCase struct {
	name  string
	dims  *string // nil: no dimensions.yaml
	files map[string]string
	// want is "file:line: fragment" for every expected error, in order.
	want []string
}

// entryErrorCases are catalogues with a wrong intervention entry.
func entryErrorCases(t *testing.T) []loadErrorCase {
	return []loadErrorCase{
		{
			name: "duplicate id",
			files: map[string]string{
				"a.yaml": entry(t, "b"),
				"b.yaml": entry(t, "b"),
			},
			want: []string{
				`cat/a.yaml:1: id "b" does not match the file name "a.yaml"`,
				`cat/b.yaml:1: duplicate id "b": already used by cat/a.yaml`,
			},
		},
		{
			name:  "unknown technique",
			files: map[string]string{"x.yaml": entry(t, "x", "technique: grounding", "technique: hypnosis")},
			want:  []string{`cat/x.yaml:3: unknown technique "hypnosis"; use one of: relaxation, grounding`},
		},
		{
			name:  "missing level",
			files: map[string]string{"x.yaml": entry(t, "x", "    loss:\n      prefix: \"Loss.\"\n", "")},
			want:  []string{`cat/x.yaml:11: dimension "framing" has no variant for level "loss"`},
		},
		{
			name:  "unknown template variable in a step",
			files: map[string]string{"x.yaml": entry(t, "x", "{minutes} min", "{minutez} min")},
			want:  []string{`cat/x.yaml:9: unknown template variable "minutez" in steps[1]`},
		},
		{
			name:  "unknown template variable in a variant",
			files: map[string]string{"x.yaml": entry(t, "x", "Loss.", "Loss {name}.")},
			want:  []string{`cat/x.yaml:15: unknown template variable "name" in variants.framing.loss.prefix`},
		},
		{
			name:  "unclosed and stray braces",
			files: map[string]string{"x.yaml": entry(t, "x", "Base body for {target}.", "Base } body for {target.")},
			want: []string{
				`cat/x.yaml:6: unmatched "}" in body`,
				`cat/x.yaml:6: unclosed "{" in body`,
			},
		},
		{
			name:  "unknown key",
			files: map[string]string{"x.yaml": entry(t, "x") + "colour: blue\n"},
			want:  []string{`cat/x.yaml:20: unknown key "colour"; allowed keys are: id, title`},
		},
		{
			name:  "unknown key in a variant",
			files: map[string]string{"x.yaml": entry(t, "x", "prefix: \"Loss.\"", "preffix: \"Loss.\"")},
			want:  []string{`cat/x.yaml:15: unknown key "preffix"; allowed keys are: prefix, body, suffix, steps, duration_s`},
		},
		{
			name:  "bad YAML: unclosed flow list",
			files: map[string]string{"x.yaml": entry(t, "x", "targets: [stress, low_mood]", "targets: [stress, low_mood")},
			want:  []string{`cat/x.yaml:4: invalid YAML: did not find expected ',' or ']'`},
		},
		{
			name:  "bad YAML: tab indentation",
			files: map[string]string{"x.yaml": entry(t, "x", "  - \"Step one.\"", "\t- \"Step one.\"")},
			want:  []string{`cat/x.yaml:8: invalid YAML: found character that cannot start any token`},
		},
		{
			name:  "bad YAML on the first line",
			files: map[string]string{"x.yaml": "id: x: y\n"},
			want:  []string{`cat/x.yaml:1: invalid YAML: mapping values are not allowed`},
		},
		{
			name:  "type error stops the file's checks",
			files: map[string]string{"x.yaml": entry(t, "x", "duration_s: 90", "duration_s: ninety", "technique: grounding", "technique: nope")},
			want:  []string{"cat/x.yaml:5: cannot unmarshal !!str `ninety` into int"},
		},
		{
			name:  "duplicate key",
			files: map[string]string{"x.yaml": entry(t, "x", "title: Test entry", "title: Test entry\ntitle: Again")},
			want:  []string{`cat/x.yaml:3: mapping key "title" already defined at line 2`},
		},
		{
			name:  "unknown dimension and level",
			files: map[string]string{"x.yaml": entry(t, "x", "    on:\n", "    maybe: {}\n    on:\n") + "  dose:\n    low: {}\n"},
			want: []string{
				`cat/x.yaml:18: unknown level "maybe" for dimension "reminder"; its levels are: off, on`,
				`cat/x.yaml:21: unknown dimension "dose"; dimensions.yaml declares: framing, reminder`,
			},
		},
		{
			name: "variant duration and steps",
			files: map[string]string{"x.yaml": entry(t, "x",
				"    off: {}\n", "    off:\n      duration_s: 0\n      steps: [\"Only one.\"]\n")},
			want: []string{
				`cat/x.yaml:18: variants.reminder.off.duration_s must be a positive number of seconds when set`,
				`cat/x.yaml:19: variants.reminder.off.steps must list at least 2 steps when set`,
			},
		},
	}
}

// fileErrorCases are catalogues with missing fields, bad values or a
// broken file.
func fileErrorCases(t *testing.T) []loadErrorCase {
	noVariants := func(s string) string { return s[:strings.Index(s, "variants:")] }
	return []loadErrorCase{
		{
			name:  "missing required fields",
			files: map[string]string{"x.yaml": "# nothing but an id\nid: x\n"},
			want: []string{
				`cat/x.yaml:2: title is required`,
				`cat/x.yaml:2: technique is required`,
				`cat/x.yaml:2: targets must list at least one of`,
				`cat/x.yaml:2: duration_s must be a positive number of seconds`,
				`cat/x.yaml:2: body is required`,
				`cat/x.yaml:2: steps must list at least 2 steps`,
			},
		},
		{
			name:  "missing id",
			files: map[string]string{"x.yaml": entry(t, "x", "id: x\n", "")},
			want:  []string{`cat/x.yaml:1: id is required; use the file name without .yaml ("x")`},
		},
		{
			name:  "bad id",
			files: map[string]string{"Box_Breathing.yaml": entry(t, "Box_Breathing")},
			want:  []string{`cat/Box_Breathing.yaml:1: id "Box_Breathing" must use only lower-case letters, digits and single hyphens`},
		},
		{
			name: "vocabularies",
			files: map[string]string{"x.yaml": entry(t, "x",
				"targets: [stress, low_mood]", "targets: [stress, boredom, stress]",
				"duration_s: 90", "duration_s: 90\ncontraindications:\n  - in_public\n  - raining")},
			want: []string{
				`cat/x.yaml:4: unknown targets value "boredom"`,
				`cat/x.yaml:4: targets lists "stress" twice`,
				`cat/x.yaml:8: unknown contraindications value "raining"; use any of: acute_risk, in_public`,
			},
		},
		{
			name:  "too few steps, empty step, braces in title",
			files: map[string]string{"x.yaml": entry(t, "x", "  - \"Step one.\"\n", "", "Step two takes {minutes} min.", "  ", "Test entry", "Test {entry}")},
			want: []string{
				`cat/x.yaml:2: title must not contain { or }`,
				`cat/x.yaml:7: steps must list at least 2 steps`,
				`cat/x.yaml:8: steps[0] is empty`,
			},
		},
		{
			name:  "every problem of a file is reported",
			files: map[string]string{"x.yaml": entry(t, "x", "technique: grounding", "technique: hypnosis", "Step one.", "Step {one}.") + "extra: 1\n"},
			want: []string{
				`cat/x.yaml:3: unknown technique "hypnosis"`,
				`cat/x.yaml:8: unknown template variable "one" in steps[0]`,
				`cat/x.yaml:20: unknown key "extra"`,
			},
		},
		{
			name:  "empty file",
			files: map[string]string{"x.yaml": ""},
			want:  []string{`cat/x.yaml: file is empty`},
		},
		{
			name:  "not a mapping",
			files: map[string]string{"x.yaml": "- a\n- b\n"},
			want:  []string{`cat/x.yaml:1: expected a mapping with the keys id, title`},
		},
		{
			name:  "two documents",
			files: map[string]string{"x.yaml": entry(t, "x") + "---\nid: y\n"},
			want:  []string{`cat/x.yaml:20: only one YAML document per file`},
		},
		{
			name:  "yml extension",
			files: map[string]string{"x.yaml": entry(t, "x"), "y.yml": entry(t, "y")},
			want:  []string{`cat/y.yml: catalogue files must end in .yaml`},
		},
		{
			name:  "no interventions",
			files: map[string]string{},
			want:  []string{`cat: no intervention files (*.yaml) found`},
		},
		{
			name:  "empty dimensions.yaml",
			dims:  ptr(""),
			files: map[string]string{"x.yaml": noVariants(entry(t, "x"))},
			want:  []string{`cat/dimensions.yaml: file is empty`},
		},
		{
			name:  "bad dimensions.yaml",
			dims:  ptr("framing: [gain, gain]\nReminder: [off, on]\ndose: [low]\ndose: [low, high]\nbooster: off\nlength: [Short, long]\n"),
			files: map[string]string{"x.yaml": noVariants(entry(t, "x"))},
			want: []string{
				`cat/dimensions.yaml:1: dimension "framing": level "gain" is listed twice`,
				`cat/dimensions.yaml:2: dimension name "Reminder" must start with a lower-case letter`,
				`cat/dimensions.yaml:3: dimension "dose" needs at least two levels`,
				`cat/dimensions.yaml:4: dimension "dose" is declared twice`,
				`cat/dimensions.yaml:5: dimension "booster": expected a list of levels`,
				`cat/dimensions.yaml:6: dimension "length": level "Short" must use only lower-case letters`,
			},
		},
	}
}

func TestLoadMissingDimensionsFile(t *testing.T) {
	_, err := Load(catalogueFS(nil, map[string]string{"x.yaml": entry(t, "x")}), "cat")
	var errs LoadErrors
	if !errors.As(err, &errs) {
		t.Fatalf("Load error = %v; want LoadErrors", err)
	}
	// Without dimensions the variants cannot be checked either.
	if !strings.HasPrefix(errs[0].Error(), "cat/dimensions.yaml: cannot read the dimensions file") {
		t.Errorf("first error = %v", errs[0])
	}
	if !strings.Contains(err.Error(), `cat/x.yaml:11: unknown dimension "framing"`) {
		t.Errorf("errors = %v; want the unknown dimensions reported too", err)
	}
}

func TestLoadMissingFolder(t *testing.T) {
	_, err := Load(fstest.MapFS{}, "nowhere")
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Load error = %v; want one wrapping fs.ErrNotExist", err)
	}
	var errs LoadErrors
	if errors.As(err, &errs) {
		t.Errorf("a missing folder should not be a LoadErrors: %v", err)
	}
}

func TestLoadErrorFormat(t *testing.T) {
	errs := LoadErrors{
		{File: "cat/a.yaml", Line: 3, Msg: "first"},
		{File: "cat/b.yaml", Msg: "second"},
	}
	if got, want := errs.Error(), "cat/a.yaml:3: first\ncat/b.yaml: second"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestLoadErrorsAreSorted(t *testing.T) {
	files := map[string]string{}
	for i := 9; i >= 0; i-- {
		id := "e" + strconv.Itoa(i)
		files[id+".yaml"] = entry(t, id, "technique: grounding", "technique: nope", "Step one.", "{bad}")
	}
	_, err := Load(catalogueFS(ptr(testDims), files), "cat")
	var errs LoadErrors
	if !errors.As(err, &errs) || len(errs) != 20 {
		t.Fatalf("got %v; want 20 errors", err)
	}
	for i := 1; i < len(errs); i++ {
		a, b := errs[i-1], errs[i]
		if a.File > b.File || a.File == b.File && a.Line > b.Line {
			t.Fatalf("errors out of order: %v before %v", a, b)
		}
	}
}
