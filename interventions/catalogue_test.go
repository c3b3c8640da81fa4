package interventions

import (
	"encoding/json"
	"io/fs"
	"maps"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"testing/fstest"
)

// wantDimensions are the dimensions every built-in intervention declares.
var wantDimensions = map[string][]string{
	"framing":  {"gain", "loss"},
	"reminder": {"off", "on"},
	"booster":  {"off", "on"},
	"dose":     {"low", "high"},
}

var timesOfDay = []string{"morning", "afternoon", "evening", "night", ""}

func embeddedCatalogue(t testing.TB) *Catalogue {
	t.Helper()
	c, err := Embedded()
	if err != nil {
		t.Fatalf("Embedded: %v", err)
	}
	return c
}

func TestEmbeddedCatalogue(t *testing.T) {
	c := embeddedCatalogue(t)
	if c.Len() < 24 {
		t.Fatalf("Len = %d, want at least 24", c.Len())
	}
	ids := c.IDs()
	if len(ids) != c.Len() || !slices.IsSorted(ids) {
		t.Errorf("IDs() = %v: want %d sorted ids", ids, c.Len())
	}
	techniqueUses := map[string]int{}
	targetUses := map[string]int{}
	titles := map[string]string{}
	for _, id := range ids {
		iv, ok := c.Get(id)
		if !ok {
			t.Fatalf("Get(%q) not found", id)
		}
		if iv.ID != id || iv.File != "catalogue/"+id+".yaml" {
			t.Errorf("%s: ID %q, File %q", id, iv.ID, iv.File)
		}
		if other, dup := titles[iv.Title]; dup {
			t.Errorf("%s and %s share the title %q", other, id, iv.Title)
		}
		titles[iv.Title] = id
		techniqueUses[iv.Technique]++
		for _, target := range iv.Targets {
			targetUses[target]++
		}
	}
	for _, technique := range techniques {
		if techniqueUses[technique] == 0 {
			t.Errorf("no intervention uses the technique %s", technique)
		}
	}
	for _, target := range targets {
		if targetUses[target] < 4 {
			t.Errorf("target %s is addressed by %d interventions, want at least 4", target, targetUses[target])
		}
	}
}

func TestEmbeddedDimensions(t *testing.T) {
	c := embeddedCatalogue(t)
	if got := c.Dimensions(); !reflect.DeepEqual(got, wantDimensions) {
		t.Errorf("Dimensions() = %v, want %v", got, wantDimensions)
	}
	for name, levels := range wantDimensions {
		if err := c.CheckDimension(name, levels); err != nil {
			t.Errorf("CheckDimension(%s): %v", name, err)
		}
	}
	// Dimensions returns a copy.
	c.Dimensions()["framing"][0] = "changed"
	if c.Dimensions()["framing"][0] != "gain" {
		t.Error("changing the result of Dimensions changed the catalogue")
	}
}

// allLevels returns every combination of levels of dims, including leaving
// each dimension out.
func allLevels(dims map[string][]string) []map[string]string {
	combos := []map[string]string{{}}
	for _, name := range slices.Sorted(maps.Keys(dims)) {
		var next []map[string]string
		for _, combo := range combos {
			next = append(next, combo)
			for _, level := range dims[name] {
				m := maps.Clone(combo)
				m[name] = level
				next = append(next, m)
			}
		}
		combos = next
	}
	return combos
}

// TestEmbeddedRendersCleanly renders every intervention for every
// combination of levels, time of day and target, and checks the text.
func TestEmbeddedRendersCleanly(t *testing.T) {
	c := embeddedCatalogue(t)
	combos := allLevels(c.Dimensions())
	if len(combos) != 81 {
		t.Fatalf("%d level combinations, want 3^4", len(combos))
	}
	// Words and patterns that must never appear in rendered content.
	banned := []string{
		"{", "}", "  ", " .", " ,", "..", "1 minutes",
		// American spellings.
		"color", "behavior", "favorite", "center", "realiz", "organiz", "practicing",
		// Diagnostic language.
		"diagnos", "disorder", "you have depression", "you have anxiety",
	}
	for _, id := range c.IDs() {
		iv, _ := c.Get(id)
		for _, levels := range combos {
			for _, tod := range timesOfDay {
				for _, target := range append([]string{""}, iv.Targets...) {
					r := iv.Render(levels, Vars{TimeOfDay: tod, Target: target})
					texts := append([]string{r.Body}, r.Steps...)
					for _, text := range texts {
						if text == "" || text != strings.TrimSpace(text) {
							t.Fatalf("%s %v %q %q: empty or padded text %q", id, levels, tod, target, text)
						}
						if !strings.ContainsAny(text[len(text)-1:], ".?!") {
							t.Errorf("%s %v: text does not end a sentence: %q", id, levels, text)
						}
						lower := strings.ToLower(text)
						for _, b := range banned {
							if strings.Contains(lower, b) {
								t.Fatalf("%s %v %q %q: %q contains %q", id, levels, tod, target, text, b)
							}
						}
					}
					if len(r.Steps) < 2 || r.DurationS <= 0 || r.ID != id || r.Title != iv.Title {
						t.Fatalf("%s %v: bad rendering %+v", id, levels, r)
					}
				}
			}
		}
	}
}

// TestEmbeddedVariantsDiffer checks that every randomised component really
// changes the content.
func TestEmbeddedVariantsDiffer(t *testing.T) {
	c := embeddedCatalogue(t)
	vars := Vars{TimeOfDay: "afternoon"}
	for _, id := range c.IDs() {
		iv, _ := c.Get(id)
		render := func(dim, level string) Rendered { return iv.Render(map[string]string{dim: level}, vars) }
		base := iv.Render(nil, vars)

		gain, loss := render("framing", "gain"), render("framing", "loss")
		if gain.Body == loss.Body || gain.Body == base.Body || loss.Body == base.Body {
			t.Errorf("%s: gain and loss framing do not change the body", id)
		}
		if !strings.HasSuffix(gain.Body, base.Body) || !strings.HasSuffix(loss.Body, base.Body) {
			t.Errorf("%s: framing should add a prefix to the body", id)
		}
		for _, dim := range []string{"reminder", "booster"} {
			off, on := render(dim, "off"), render(dim, "on")
			if off.Body != base.Body {
				t.Errorf("%s: %s off changes the body", id, dim)
			}
			if len(on.Body) <= len(off.Body) || !strings.HasPrefix(on.Body, base.Body) {
				t.Errorf("%s: %s on should add a suffix to the body", id, dim)
			}
		}
		if rem, boost := iv.Variants["reminder"]["on"].Suffix, iv.Variants["booster"]["on"].Suffix; rem == boost {
			t.Errorf("%s: reminder and booster add the same text", id)
		}

		low, high := render("dose", "low"), render("dose", "high")
		if len(high.Steps) <= len(low.Steps) {
			t.Errorf("%s: dose high has %d steps, low %d; high needs more", id, len(high.Steps), len(low.Steps))
		}
		if high.DurationS <= low.DurationS {
			t.Errorf("%s: dose high lasts %ds, low %ds; high needs longer", id, high.DurationS, low.DurationS)
		}
		if low.DurationS > base.DurationS || high.DurationS < base.DurationS {
			t.Errorf("%s: base duration %ds should lie between low %ds and high %ds", id, base.DurationS, low.DurationS, high.DurationS)
		}
	}
}

// copyFS copies the embedded catalogue into a MapFS under dir.
func copyFS(t *testing.T, dir string) fstest.MapFS {
	t.Helper()
	out := fstest.MapFS{}
	entries, err := fs.ReadDir(embedded, "catalogue")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		data, err := fs.ReadFile(embedded, "catalogue/"+e.Name())
		if err != nil {
			t.Fatal(err)
		}
		out[dir+"/"+e.Name()] = &fstest.MapFile{Data: data}
	}
	return out
}

func TestRevision(t *testing.T) {
	c1, c2 := embeddedCatalogue(t), embeddedCatalogue(t)
	rev := c1.Revision()
	if len(rev) != 64 || strings.Trim(rev, "0123456789abcdef") != "" {
		t.Fatalf("Revision() = %q, want 64 hex digits", rev)
	}
	if c2.Revision() != rev {
		t.Errorf("Revision differs between two loads: %s, %s", rev, c2.Revision())
	}

	load := func(fsys fs.FS) string {
		t.Helper()
		c, err := Load(fsys, "some/where")
		if err != nil {
			t.Fatalf("Load: %v", err)
		}
		return c.Revision()
	}
	if got := load(copyFS(t, "some/where")); got != rev {
		t.Errorf("the same files in another folder give revision %s, want %s", got, rev)
	}

	changes := map[string]func(fstest.MapFS){
		"comment added": func(m fstest.MapFS) {
			f := m["some/where/box-breathing.yaml"]
			f.Data = append(append([]byte(nil), f.Data...), "# reviewed\n"...)
		},
		"text changed": func(m fstest.MapFS) {
			f := m["some/where/zoom-out.yaml"]
			f.Data = []byte(strings.Replace(string(f.Data), "Zoom out", "Zoom right out", 1))
		},
		"dimensions reordered": func(m fstest.MapFS) {
			m["some/where/dimensions.yaml"].Data = []byte("reminder: [off, on]\nframing: [gain, loss]\nbooster: [off, on]\ndose: [low, high]\n")
		},
		"file added": func(m fstest.MapFS) {
			data := strings.ReplaceAll(string(m["some/where/zoom-out.yaml"].Data), "zoom-out", "zoom-out-copy")
			m["some/where/zoom-out-copy.yaml"] = &fstest.MapFile{Data: []byte(strings.Replace(data, "title: Zoom out", "title: Zoom out again", 1))}
		},
		"file removed": func(m fstest.MapFS) { delete(m, "some/where/zoom-out.yaml") },
	}
	seen := map[string]string{rev: "original"}
	for name, change := range changes {
		m := copyFS(t, "some/where")
		change(m)
		got := load(m)
		if prev, dup := seen[got]; dup {
			t.Errorf("%s: revision %s equals that of %s", name, got, prev)
		}
		seen[got] = name
	}
}

func TestSubset(t *testing.T) {
	c := embeddedCatalogue(t)

	whole, err := c.Subset(nil)
	if err != nil || whole.Len() != c.Len() || whole.Revision() != c.Revision() {
		t.Errorf("Subset(nil) = %v, %v; want the whole catalogue", whole, err)
	}
	all, err := c.Subset(c.IDs())
	if err != nil || all.Revision() != c.Revision() {
		t.Errorf("Subset(all ids): revision %s, err %v; want %s", all.Revision(), err, c.Revision())
	}

	sub, err := c.Subset([]string{"zoom-out", "box-breathing", "zoom-out"})
	if err != nil {
		t.Fatalf("Subset: %v", err)
	}
	if got := sub.IDs(); !slices.Equal(got, []string{"box-breathing", "zoom-out"}) {
		t.Errorf("subset IDs = %v", got)
	}
	if _, ok := sub.Get("how-sleep-works"); ok {
		t.Error("subset holds an intervention that was not asked for")
	}
	if len(sub.PolicyData()) != 2 {
		t.Errorf("subset PolicyData has %d entries, want 2", len(sub.PolicyData()))
	}
	if sub.Revision() == c.Revision() {
		t.Error("a subset has the revision of the whole catalogue")
	}
	again, _ := c.Subset([]string{"box-breathing", "zoom-out"})
	if again.Revision() != sub.Revision() {
		t.Error("the same subset in another order has another revision")
	}
	if err := sub.CheckDimension("dose", []string{"low", "high"}); err != nil {
		t.Errorf("subset CheckDimension: %v", err)
	}

	_, err = c.Subset([]string{"box-breathing", "nope", "nada"})
	if err == nil {
		t.Fatal("Subset with unknown ids succeeded")
	}
	for _, want := range []string{`"nope"`, `"nada"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Subset error %q does not name %s", err, want)
		}
	}
	if strings.Contains(err.Error(), `"box-breathing"`) {
		t.Errorf("Subset error %q names a known id as unknown", err)
	}
}

func TestCheckDimension(t *testing.T) {
	c, err := Load(catalogueFS(ptr(testDims), map[string]string{
		"full.yaml":    entry(t, "full"),
		"partial.yaml": entry(t, "partial", "  reminder:\n    off: {}\n    on:\n      suffix: \"Later.\"\n", ""),
	}), "cat")
	if err != nil {
		t.Fatal(err)
	}
	full, err := c.Subset([]string{"full"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		c       *Catalogue
		dim     string
		levels  []string
		wantErr string // empty: no error
	}{
		{"declared by all", c, "framing", []string{"gain", "loss"}, ""},
		{"missing in one intervention", c, "reminder", []string{"off", "on"}, `without a variant for every level of dimension "reminder": partial`},
		{"subset without the gap", full, "reminder", []string{"off", "on"}, ""},
		{"unknown dimension", c, "dose", []string{"low", "high"}, `no dimension "dose"; dimensions.yaml declares: framing, reminder`},
		{"levels in another order", c, "framing", []string{"loss", "gain"}, `has levels [gain, loss] in the intervention catalogue, not [loss, gain]`},
		{"too few levels", c, "framing", []string{"gain"}, `not [gain]`},
		{"too many levels", c, "framing", []string{"gain", "loss", "neutral"}, `not [gain, loss, neutral]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.c.CheckDimension(tt.dim, tt.levels)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Errorf("CheckDimension: %v", err)
			case tt.wantErr != "" && err == nil:
				t.Errorf("CheckDimension succeeded; want an error containing %q", tt.wantErr)
			case tt.wantErr != "" && !strings.Contains(err.Error(), tt.wantErr):
				t.Errorf("CheckDimension error %q does not contain %q", err, tt.wantErr)
			}
		})
	}
}

// checkJSONTypes fails unless v is made only of string, json.Number,
// float64, bool, []any and map[string]any.
func checkJSONTypes(t *testing.T, path string, v any) {
	t.Helper()
	switch v := v.(type) {
	case string, json.Number, float64, bool:
	case []any:
		if v == nil {
			t.Errorf("%s: nil list; want an empty one", path)
		}
		for i, x := range v {
			checkJSONTypes(t, path+"["+strconv.Itoa(i)+"]", x)
		}
	case map[string]any:
		for k, x := range v {
			checkJSONTypes(t, path+"."+k, x)
		}
	default:
		t.Errorf("%s: %T is not a JSON type", path, v)
	}
}

func TestPolicyData(t *testing.T) {
	c := embeddedCatalogue(t)
	data := c.PolicyData()
	if len(data) != c.Len() {
		t.Fatalf("PolicyData has %d entries, want %d", len(data), c.Len())
	}
	checkJSONTypes(t, "data", map[string]any(data))

	got := data["shoulder-and-jaw-release"]
	want := map[string]any{
		"title":             "Shoulder and jaw check",
		"technique":         "relaxation",
		"targets":           []any{"stress", "anxiety"},
		"duration_s":        json.Number("90"),
		"contraindications": []any{},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("PolicyData entry = %#v\nwant %#v", got, want)
	}
	if got := data["progressive-muscle-relaxation"].(map[string]any)["contraindications"]; !reflect.DeepEqual(got, []any{"in_public", "at_work"}) {
		t.Errorf("contraindications = %#v", got)
	}

	raw, err := json.Marshal(data)
	if err != nil {
		t.Fatalf("json.Marshal: %v", err)
	}
	if !strings.Contains(string(raw), `"duration_s":90`) {
		t.Errorf("duration_s is not a JSON number: %s", raw)
	}

	// Each call returns a fresh value.
	data["box-breathing"].(map[string]any)["title"] = "changed"
	if c.PolicyData()["box-breathing"].(map[string]any)["title"] != "Box breathing" {
		t.Error("changing PolicyData's result changed the catalogue")
	}
}
