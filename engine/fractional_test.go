package engine_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jitai/jitai/engine"
	"github.com/jitai/jitai/engine/store/sqlite"
	"github.com/jitai/jitai/interventions"
	"github.com/jitai/jitai/policies"
)

// copyStudy copies an example study into a temp folder, appending extra
// lines to its study.yaml.
func copyStudy(t *testing.T, name, extra string) string {
	t.Helper()
	src := filepath.Join("../policies/examples", name)
	dst := filepath.Join(t.TempDir(), name)
	if err := os.CopyFS(dst, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(filepath.Join(dst, "study.yaml"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString("\n" + extra + "\n"); err != nil {
		t.Fatal(err)
	}
	return dst
}

// A study may assign its between-person factors by a fractional design:
// enrolment then uses exactly the design's rows, in balanced blocks.
func TestFractionalBetweenDesign(t *testing.T) {
	ctx := context.Background()
	cat, err := interventions.Embedded()
	if err != nil {
		t.Fatal(err)
	}
	study, err := policies.LoadStudy(ctx, copyStudy(t, "mood-most", "design: {runs: 8}"), cat)
	if err != nil {
		t.Fatal(err)
	}
	if study.Design == nil || study.Design.Runs() != 8 || strings.Join(study.Design.Generators(), ",") != "D=ABC" || study.Design.Resolution() != 4 {
		t.Fatalf("design %v", study.Design)
	}
	store, err := sqlite.Open(filepath.Join(t.TempDir(), "f.db"), sqlite.Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	eng, err := engine.New(engine.Components{Store: store, Studies: []*policies.Study{study}})
	if err != nil {
		t.Fatal(err)
	}
	rt, _ := eng.Study("mood-most")
	allowed := map[string]bool{}
	for _, row := range study.Design.Rows() {
		allowed[fmt.Sprint(row)] = true
	}
	counts := map[string]int{}
	for i := 0; i < 24; i++ {
		p, _, err := eng.Enroll(ctx, "mood-most", engine.EnrollRequest{ParticipantID: fmt.Sprintf("f%02d", i), Strata: map[string]string{"site": "a"}})
		if err != nil {
			t.Fatal(err)
		}
		var row []int
		for _, f := range rt.BetweenFactors() {
			level := 0
			if p.Assignment[f.Name] == f.Levels[1] {
				level = 1
			}
			row = append(row, level)
		}
		key := fmt.Sprint(row)
		if !allowed[key] {
			t.Fatalf("participant %s got %v, which is not a row of the 2^(4-1) design", p.ID, row)
		}
		counts[key]++
	}
	if len(counts) != 8 {
		t.Fatalf("%d distinct cells used, want the design's 8", len(counts))
	}
	for cell, n := range counts {
		if n != 3 {
			t.Errorf("cell %s has %d participants, want 3 (24 enrolments in blocks of 8)", cell, n)
		}
	}

	for _, bad := range []struct{ extra, want string }{
		{"design: {runs: 6}", "runs 6 must be a power of two"},
		{"design: {generators: [\"D=ABX\"]}", "design:"},
		{"design: {runs: 4, generators: [\"D=ABC\"]}", "not the 4 in runs"},
	} {
		_, err := policies.LoadStudy(ctx, copyStudy(t, "mood-most", bad.extra), cat)
		if err == nil || !strings.Contains(err.Error(), bad.want) || !strings.Contains(err.Error(), "study.yaml:") {
			t.Errorf("%s: error %v, want one with study.yaml:line and %q", bad.extra, err, bad.want)
		}
	}
}
