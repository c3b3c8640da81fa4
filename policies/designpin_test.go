package policies

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/jitai/jitai/experiments"
	"github.com/jitai/jitai/experiments/design"
	"github.com/jitai/jitai/interventions"
)

// betweenStudy is validStudy with k between-person factors c1..ck (levels
// [off, on]) and the given design section (none when empty), as the last
// key of study.yaml.
func betweenStudy(k int, designSection string) string {
	var b strings.Builder
	for i := 1; i <= k; i++ {
		fmt.Fprintf(&b, "  - name: c%d\n    type: between\n    levels: [\"off\", \"on\"]\n", i)
	}
	s := strings.Replace(validStudy, "crisis:", b.String()+"crisis:", 1)
	if designSection != "" {
		s += designSection + "\n"
	}
	return s
}

// writeStudy writes a study folder s1 with the given study.yaml and a
// trivial policy, and returns its path.
func writeStudy(t *testing.T, dir, studyYAML string) string {
	t.Helper()
	study := filepath.Join(dir, "s1")
	if err := os.MkdirAll(filepath.Join(study, "policy"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(study, "study.yaml"), []byte(studyYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(study, "policy", "p.rego"), []byte("package jitai.policy\n\ndecision := {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return study
}

func embedded(t *testing.T) *interventions.Catalogue {
	t.Helper()
	cat, err := interventions.Embedded()
	if err != nil {
		t.Fatal(err)
	}
	return cat
}

func mustPin(t *testing.T, s *Study) DesignPin {
	t.Helper()
	p, err := s.DesignPin()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// designRefusal returns the single design error of a refused load.
func designRefusal(t *testing.T, err error) *ConfigError {
	t.Helper()
	var ces ConfigErrors
	if !errors.As(err, &ces) || len(ces) != 1 {
		t.Fatalf("load error %v, want one ConfigError", err)
	}
	return ces[0]
}

// pastedDesign takes the YAML lines of a refusal (after its first line,
// indented by two spaces) as a user would paste them into study.yaml.
func pastedDesign(t *testing.T, msg string) string {
	t.Helper()
	_, block, ok := strings.Cut(msg, "\n")
	if !ok {
		t.Fatalf("no YAML in %q", msg)
	}
	var lines []string
	for _, l := range strings.Split(block, "\n") {
		if !strings.HasPrefix(l, "  ") {
			t.Fatalf("line %q of the YAML block is not indented", l)
		}
		lines = append(lines, strings.TrimPrefix(l, "  "))
	}
	return strings.Join(lines, "\n")
}

// The search budget on the load path is a count of search nodes: loading
// the same study twice gives the same result, a proven design or the same
// refusal, and the threshold is exact (the nodes the search needs prove it,
// one fewer does not), so no machine can load it differently.
func TestLoadStudyDesignSearchIsDeterministic(t *testing.T) {
	ctx := context.Background()
	cat := embedded(t)
	dir := writeStudy(t, t.TempDir(), betweenStudy(12, "design: {runs: 64}"))
	ref, err := design.MinimumAberration(12, 64, 0)
	if err != nil {
		t.Fatal(err)
	}
	need := ref.SearchNodes()
	t.Logf("12 factors in 64 runs: proven in %d search nodes", need)

	for _, budget := range []int64{1, need / 2, need - 1} {
		_, err1 := LoadStudy(ctx, dir, cat, LoadOptions{MaxDesignNodes: budget})
		_, err2 := LoadStudy(ctx, dir, cat, LoadOptions{MaxDesignNodes: budget})
		if err1 == nil || err2 == nil || err1.Error() != err2.Error() {
			t.Fatalf("budget %d: loads gave %v and %v, want the same refusal twice", budget, err1, err2)
		}
	}
	var pins []DesignPin
	for _, budget := range []int64{need, need, design.DefaultMaxNodes} {
		s, err := LoadStudy(ctx, dir, cat, LoadOptions{MaxDesignNodes: budget})
		if err != nil {
			t.Fatalf("budget %d: %v", budget, err)
		}
		pins = append(pins, mustPin(t, s))
	}
	for _, p := range pins[1:] {
		if !reflect.DeepEqual(p, pins[0]) {
			t.Errorf("pins differ: %+v and %+v", p, pins[0])
		}
	}
	if pins[0].Source != DesignSearch || !slices.Equal(pins[0].Generators, ref.Generators()) {
		t.Errorf("pin %+v, want the search's %v", pins[0], ref.Generators())
	}
}

// A design the search cannot prove within the budget is refused at
// study.yaml's design line with the YAML that pins the best design found;
// pasting it makes the study load with exactly that design.
func TestLoadStudyUnprovenDesignIsRefusedWithPin(t *testing.T) {
	ctx := context.Background()
	cat := embedded(t)
	cases := []struct {
		k, runs int
		budget  int64
	}{
		{12, 64, 100},                     // a tiny budget
		{30, 128, design.DefaultMaxNodes}, // LoadStudy's own budget
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%d-factors-%d-runs", c.k, c.runs), func(t *testing.T) {
			section := fmt.Sprintf("design: {runs: %d}", c.runs)
			studyYAML := betweenStudy(c.k, section)
			dir := writeStudy(t, t.TempDir(), studyYAML)
			_, err := LoadStudy(ctx, dir, cat, LoadOptions{MaxDesignNodes: c.budget})
			ce := designRefusal(t, err)
			best, derr := design.MinimumAberration(c.k, c.runs, c.budget)
			if derr != nil {
				t.Fatal(derr)
			}
			if best.ProvenMinimumAberration() {
				t.Fatalf("the case needs a design the budget cannot prove")
			}
			wantLine := strings.Count(studyYAML[:strings.Index(studyYAML, section)], "\n") + 1
			wantMsg := fmt.Sprintf("design: the minimum-aberration search for %d factors in %d runs could not be proven within the search budget (%d search nodes, the same on every machine); pin the design in study.yaml, replacing its design section",
				c.k, c.runs, c.budget)
			if ce.File != filepath.Join("s1", "study.yaml") || ce.Line != wantLine || !strings.HasPrefix(ce.Msg, wantMsg) {
				t.Errorf("refusal %s:%d: %s\nwant s1/study.yaml:%d: %s", ce.File, ce.Line, ce.Msg, wantLine, wantMsg)
			}
			if !strings.Contains(ce.Msg, "A=c1, B=c2, C=c3") {
				t.Errorf("refusal does not say which factor each letter is: %s", ce.Msg)
			}
			pasted := pastedDesign(t, ce.Msg)
			wantYAML := fmt.Sprintf("design:\n  runs: %d\n  generators: [\"%s\"]", c.runs, strings.Join(best.Generators(), `", "`))
			if pasted != wantYAML {
				t.Errorf("pasted YAML\n%s\nwant\n%s", pasted, wantYAML)
			}

			writeStudy(t, filepath.Dir(dir), strings.Replace(studyYAML, section, pasted, 1))
			s, err := LoadStudy(ctx, dir, cat)
			if err != nil {
				t.Fatalf("the pasted design does not load: %v", err)
			}
			if !slices.Equal(s.Design.Generators(), best.Generators()) || !slices.EqualFunc(s.Design.Rows(), best.Rows(), slices.Equal) {
				t.Errorf("loaded %v, want %v", s.Design.Generators(), best.Generators())
			}
			if p := mustPin(t, s); p.Source != DesignGenerators || p.Fingerprint != DesignFingerprint(best.Rows()) {
				t.Errorf("pin %+v", p)
			}
		})
	}
}

// A full factorial of more than 12 between-person factors is refused at
// load (the engine could not assign it), at the factors line.
func TestLoadStudyRefusesHugeFullFactorial(t *testing.T) {
	studyYAML := betweenStudy(13, "")
	dir := writeStudy(t, t.TempDir(), studyYAML)
	_, err := LoadStudy(context.Background(), dir, embedded(t))
	ce := designRefusal(t, err)
	wantLine := strings.Count(studyYAML[:strings.Index(studyYAML, "factors:")], "\n") + 1
	if ce.Line != wantLine || !strings.Contains(ce.Msg, "13 between-person factors make a full factorial of 8192 cells, more than 4096: add a fractional design") {
		t.Errorf("refusal %v", ce)
	}
}

// loadPin loads a study.yaml and returns its pin.
func loadPin(t *testing.T, studyYAML string) DesignPin {
	t.Helper()
	s, err := LoadStudy(context.Background(), writeStudy(t, t.TempDir(), studyYAML), embedded(t))
	if err != nil {
		t.Fatal(err)
	}
	return mustPin(t, s)
}

// The pin is stable JSON; decoding it gives the same pin back.
func TestDesignPinJSON(t *testing.T) {
	p := loadPin(t, betweenStudy(4, "design: {runs: 8}"))
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"version":1,"factors":[{"name":"c1","levels":["off","on"]},{"name":"c2","levels":["off","on"]},{"name":"c3","levels":["off","on"]},{"name":"c4","levels":["off","on"]}],"runs":8,"generators":["D=ABC"],"source":"search","fingerprint":"` +
		DesignFingerprint([][]int{{0, 0, 0, 0}, {1, 0, 0, 1}, {0, 1, 0, 1}, {1, 1, 0, 0}, {0, 0, 1, 1}, {1, 0, 1, 0}, {0, 1, 1, 0}, {1, 1, 1, 1}}) + `"}`
	if string(b) != want {
		t.Errorf("JSON\n%s\nwant\n%s", b, want)
	}
	// The fingerprint is the documented hash, so a stored pin stays valid.
	sum := sha256.Sum256([]byte("jitai design rows v1\n2 4\n0001\n1000\n"))
	if fp := DesignFingerprint([][]int{{0, 0, 0, 1}, {1, 0, 0, 0}}); fp != "sha256:"+hex.EncodeToString(sum[:]) {
		t.Errorf("fingerprint %s, want the SHA-256 of the documented text", fp)
	}
	back, err := ParseDesignPin(b)
	if err != nil || !reflect.DeepEqual(back, p) {
		t.Errorf("decoded %+v (%v), want %+v", back, err, p)
	}
	for _, bad := range []struct{ json, want string }{
		{strings.Replace(string(b), `"version":1`, `"version":2`, 1), "version 2; this jitai reads version 1"},
		{strings.Replace(string(b), `"runs":8`, `"runs":8,"extra":1`, 1), `unknown field "extra"`},
		{strings.Replace(string(b), `"fingerprint":"sha256:`, `"fingerprint":"`, 1), "damaged"},
	} {
		if _, err := ParseDesignPin([]byte(bad.json)); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("ParseDesignPin: error %v, want %q", err, bad.want)
		}
	}
}

// The full factorial's pin fingerprints the rows the engine assigns from.
func TestDesignPinFullFactorial(t *testing.T) {
	p := loadPin(t, betweenStudy(4, ""))
	if p.Runs != 16 || len(p.Generators) != 0 || p.Source != DesignFullFactorial || p.Fingerprint != DesignFingerprint(experiments.FullFactorial(4)) {
		t.Errorf("pin %+v", p)
	}
	// runs: 16 for 4 factors is the same design.
	if err := CheckDesignPin(p, loadPin(t, betweenStudy(4, "design: {runs: 16}"))); err != nil {
		t.Errorf("runs: 16 refused against the full factorial: %v", err)
	}
	none := loadPin(t, validStudy)
	if none.Runs != 1 || len(none.Factors) != 0 || none.Source != DesignFullFactorial {
		t.Errorf("pin without between-person factors %+v", none)
	}
}

// CheckDesignPin accepts the same design (however study.yaml writes it) and
// refuses any change, naming it.
func TestCheckDesignPin(t *testing.T) {
	pinned := loadPin(t, betweenStudy(4, "design: {runs: 8}"))
	same := []string{
		betweenStudy(4, "design: {runs: 8}"),
		betweenStudy(4, `design: {generators: ["D=ABC"]}`),
		betweenStudy(4, `design: {runs: 8, generators: [" D = ABC "]}`),
		betweenStudy(4, `design: {generators: ["7"]}`),
	}
	for _, y := range same {
		if err := CheckDesignPin(pinned, loadPin(t, y)); err != nil {
			t.Errorf("the same design refused: %v\n%s", err, y)
		}
	}
	renamed := strings.Replace(betweenStudy(4, "design: {runs: 8}"), "name: c2", "name: c2b", 1)
	relevelled := strings.Replace(betweenStudy(4, "design: {runs: 8}"), "name: c3\n    type: between\n    levels: [\"off\", \"on\"]", "name: c3\n    type: between\n    levels: [\"on\", \"off\"]", 1)
	changed := []struct {
		yaml string
		want []string
	}{
		{betweenStudy(4, `design: {generators: ["D=AB"]}`), []string{"generator of D (c4) is D=AB, pinned D=ABC"}},
		{betweenStudy(4, ""), []string{"runs: 16, pinned 8", "generator D=ABC was removed"}},
		{betweenStudy(5, `design: {runs: 8}`), []string{"between-person factor c5 (design factor E) was added", "generator of D (c4) is D=AB, pinned D=ABC", "generator E=AC (c5) was added"}},
		{betweenStudy(3, `design: {runs: 4}`), []string{"between-person factor c4 (design factor D) was removed", "runs: 4, pinned 8", "generator C=AB (c3) was added", "generator D=ABC was removed"}},
		{renamed, []string{"between-person factor 2 (design factor B) is c2b, pinned c2"}},
		{relevelled, []string{"factor c3 has levels [on, off], pinned [off, on]"}},
	}
	for _, c := range changed {
		err := CheckDesignPin(pinned, loadPin(t, c.yaml))
		var dc *DesignChangedError
		if !errors.As(err, &dc) {
			t.Errorf("change accepted (%v):\n%s", err, c.yaml)
			continue
		}
		if !slices.Equal(dc.Changes, c.want) {
			t.Errorf("changes %q, want %q", dc.Changes, c.want)
		}
		for _, part := range []string{
			"Changing the between-person design of a study with enrolled participants is refused",
			`c1 [off, on], c2 [off, on], c3 [off, on], c4 [off, on]; design: {runs: 8, generators: ["D=ABC"]}`,
			"start a new study with a new id",
		} {
			if !strings.Contains(err.Error(), part) {
				t.Errorf("error %q lacks %q", err, part)
			}
		}
	}
	// Rows built differently under the same description are refused too.
	odd := pinned
	odd.Fingerprint = DesignFingerprint(nil)
	if err := CheckDesignPin(odd, pinned); err == nil || !strings.Contains(err.Error(), "the design rows differ") {
		t.Errorf("a different fingerprint: %v", err)
	}
	// Study.VerifyDesignPin is CheckDesignPin against the loaded study.
	s, err := LoadStudy(context.Background(), writeStudy(t, t.TempDir(), betweenStudy(4, `design: {generators: ["D=AB"]}`)), embedded(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.VerifyDesignPin(pinned); err == nil || !strings.Contains(err.Error(), "generator of D (c4) is D=AB, pinned D=ABC") {
		t.Errorf("VerifyDesignPin: %v", err)
	}
	if err := s.VerifyDesignPin(mustPin(t, s)); err != nil {
		t.Errorf("VerifyDesignPin of its own pin: %v", err)
	}
}

// Every example study has a pin; mood-most's 2^4 full factorial is the
// engine's rows.
func TestExampleStudiesDesignPins(t *testing.T) {
	studies, err := LoadStudies(context.Background(), "examples", embedded(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range studies {
		p := mustPin(t, s)
		if err := s.VerifyDesignPin(p); err != nil {
			t.Errorf("%s: %v", s.Config.ID, err)
		}
		if s.Config.ID == "mood-most" && (p.Runs != 16 || p.Fingerprint != DesignFingerprint(experiments.FullFactorial(4))) {
			t.Errorf("mood-most pin %+v", p)
		}
	}
}
