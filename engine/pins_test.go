package engine_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jitai/jitai/engine"
	"github.com/jitai/jitai/engine/store/sqlite"
	"github.com/jitai/jitai/engine/trial"
	"github.com/jitai/jitai/interventions"
	"github.com/jitai/jitai/policies"
)

func loadStudyDir(t *testing.T, dir string) *policies.Study {
	t.Helper()
	cat, err := interventions.Embedded()
	if err != nil {
		t.Fatal(err)
	}
	s, err := policies.LoadStudy(context.Background(), dir, cat)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

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
	full := loadStudyDir(t, copyStudy(t, "mood-most", ""))
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
	eng, err = engine.New(engine.Components{Store: store, Studies: []*policies.Study{loadStudyDir(t, copyStudy(t, "mood-most", ""))}, Now: now})
	if err != nil {
		t.Fatalf("restarting with the same design: %v", err)
	}
	p2, _, err := eng.Enroll(ctx, "mood-most", engine.EnrollRequest{ParticipantID: "p2", Strata: map[string]string{"site": "a"}})
	if err != nil || p2.Seq != p1.Seq+1 {
		t.Fatalf("second enrolment after the restart: seq %d, %v; want %d", p2.Seq, err, p1.Seq+1)
	}
	_ = eng.Close()

	// A half fraction of the same factors: refused, naming the change.
	half := loadStudyDir(t, copyStudy(t, "mood-most", "design:\n  runs: 8\n"))
	_, err = engine.New(engine.Components{Store: store, Studies: []*policies.Study{half}, Now: now})
	var changed *policies.DesignChangedError
	if !errors.As(err, &changed) || !strings.Contains(err.Error(), "mood-most") {
		t.Fatalf("an engine serving a changed design started: %v", err)
	}
	t.Logf("refused: %v", err)
}
