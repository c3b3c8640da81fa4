package engine_test

import (
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jitai/jitai/engine"
	"github.com/jitai/jitai/engine/store/sqlite"
	"github.com/jitai/jitai/engine/trial"
	"github.com/jitai/jitai/interventions"
	"github.com/jitai/jitai/policies"
	"github.com/jitai/jitai/policies/policytest"
)

// TestDesignPinnedAtFirstEnrolment: the first enrolment pins the study's
// between-person design in the store; an engine started later on the same
// store serves the same design, and one whose study.yaml changed the design
// is refused with the change named.
func TestDesignPinnedAtFirstEnrolment(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "jitai.db")
	store, err := sqlite.Open(path, sqlite.Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	now := func() time.Time { return time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC) }
	full := policytest.Load(t, copyStudy(t, "mood-most", ""))
	eng, err := engine.New(engine.Components{Store: store, Studies: []*policies.Study{full}, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := engine.PinnedDesign(ctx, store, "mood-most"); !errors.Is(err, trial.ErrNotFound) {
		t.Fatalf("a design is pinned before any enrolment: %v", err)
	}
	p1, _, err := eng.Enroll(ctx, "mood-most", engine.EnrollRequest{ParticipantID: "p1", Strata: map[string]string{"site": "a"}})
	if err != nil {
		t.Fatal(err)
	}
	pinned, err := engine.PinnedDesign(ctx, store, "mood-most")
	if err != nil {
		t.Fatalf("no design pinned after the first enrolment: %v", err)
	}
	want, _ := full.DesignPin()
	if pinned.Runs != 16 || pinned.Fingerprint != want.Fingerprint || len(pinned.Factors) != 4 {
		t.Fatalf("pinned %+v, want the 16-run full factorial %+v", pinned, want)
	}
	_ = eng.Close()

	// The same study again: served, and assignment goes on from the pin.
	eng, err = engine.New(engine.Components{Store: store, Studies: []*policies.Study{policytest.Load(t, copyStudy(t, "mood-most", ""))}, Now: now})
	if err != nil {
		t.Fatalf("restarting with the same design: %v", err)
	}
	p2, _, err := eng.Enroll(ctx, "mood-most", engine.EnrollRequest{ParticipantID: "p2", Strata: map[string]string{"site": "a"}})
	if err != nil || p2.Seq != p1.Seq+1 {
		t.Fatalf("second enrolment after the restart: seq %d, %v; want %d", p2.Seq, err, p1.Seq+1)
	}
	_ = eng.Close()

	// A half fraction of the same factors: refused, naming the change.
	half := policytest.Load(t, copyStudy(t, "mood-most", "design:\n  runs: 8\n"))
	_, err = engine.New(engine.Components{Store: store, Studies: []*policies.Study{half}, Now: now})
	var changed *policies.DesignChangedError
	if !errors.As(err, &changed) || !strings.Contains(err.Error(), "mood-most") {
		t.Fatalf("an engine serving a changed design started: %v", err)
	}
	t.Logf("refused: %v", err)
}

// TestPinnedDesignSurvivesRestartWithoutSearch: a study whose design was
// searched (runs without generators) restarts with a search budget far too
// small to find it again (one search node) and gets the same design from
// its pin; a study.yaml that changes the pinned design does not load.
func TestPinnedDesignSurvivesRestartWithoutSearch(t *testing.T) {
	ctx := context.Background()
	cat, err := interventions.Embedded()
	if err != nil {
		t.Fatal(err)
	}
	store, err := sqlite.Open(filepath.Join(t.TempDir(), "jitai.db"), sqlite.Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	searched := copyStudy(t, "mood-most", "design:\n  runs: 8\n")
	first, err := policies.LoadStudy(ctx, searched, cat)
	if err != nil {
		t.Fatal(err)
	}
	eng, err := engine.New(engine.Components{Store: store, Studies: []*policies.Study{first}})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := eng.Enroll(ctx, "mood-most", engine.EnrollRequest{ParticipantID: "p1", Strata: map[string]string{"site": "a"}}); err != nil {
		t.Fatal(err)
	}
	_ = eng.Close()

	tiny := policies.LoadOptions{MaxDesignNodes: 1}
	if _, err := policies.LoadStudy(ctx, searched, cat, tiny); err == nil || !strings.Contains(err.Error(), "could not be proven") {
		t.Fatalf("without its pin, one search node must not find the design: %v", err)
	}
	pinned := policies.LoadOptions{MaxDesignNodes: 1, PinnedDesign: engine.DesignPins(ctx, store)}
	again, err := policies.LoadStudy(ctx, searched, cat, pinned)
	if err != nil {
		t.Fatalf("restarting with the pinned design: %v", err)
	}
	if !slices.Equal(again.Design.Generators(), first.Design.Generators()) || !slices.EqualFunc(again.Design.Rows(), first.Design.Rows(), slices.Equal[[]int]) {
		t.Fatalf("after the restart: generators %v rows %v; first %v rows %v", again.Design.Generators(), again.Design.Rows(), first.Design.Generators(), first.Design.Rows())
	}
	eng, err = engine.New(engine.Components{Store: store, Studies: []*policies.Study{again}})
	if err != nil {
		t.Fatalf("serving the restarted study: %v", err)
	}
	if _, _, err := eng.Enroll(ctx, "mood-most", engine.EnrollRequest{ParticipantID: "p2", Strata: map[string]string{"site": "a"}}); err != nil {
		t.Fatal(err)
	}
	_ = eng.Close()

	for _, change := range []string{
		"design:\n  runs: 8\n  generators: [\"D=AB\"]\n", // another half fraction
		"design:\n  runs: 16\n",                          // the full factorial
	} {
		_, err := policies.LoadStudy(ctx, copyStudy(t, "mood-most", change), cat, pinned)
		if err == nil || !strings.Contains(err.Error(), "differs from the one participants were enrolled under") {
			t.Errorf("study.yaml with %q loaded over the pinned design: %v", change, err)
		}
	}
}
