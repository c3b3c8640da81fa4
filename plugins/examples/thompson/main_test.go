package main

import (
	"context"
	"fmt"
	"math"
	"sync"
	"testing"

	pb "github.com/jitai/jitai/plugins/proto"
)

func TestProbBetter(t *testing.T) {
	cases := []struct {
		x, y arm
		want float64
	}{
		{arm{1, 1}, arm{1, 1}, 0.5},
		{arm{7, 3}, arm{7, 3}, 0.5},
		// X ~ Beta(2,1), Y ~ Beta(1,2): the integral of 2x(1-(1-x)^2) over [0,1] is 5/6.
		{arm{2, 1}, arm{1, 2}, 5.0 / 6},
		{arm{1, 2}, arm{2, 1}, 1.0 / 6},
		// X ~ Beta(1,1), Y ~ Beta(2,1): the integral of x^2 is 1/3.
		{arm{1, 1}, arm{2, 1}, 1.0 / 3},
	}
	for _, c := range cases {
		if got := probBetter(c.x, c.y); math.Abs(got-c.want) > 1e-4 {
			t.Errorf("P(%v > %v) = %.6f, want %.6f", c.x, c.y, got, c.want)
		}
	}
}

func configure(t *testing.T, dir string) *bandit {
	t.Helper()
	b := &bandit{}
	_, err := b.Configure(context.Background(), &pb.ConfigureRequest{ConfigJson: []byte(`{"reward": {"below": 5}, "min": 0.05, "max": 0.95}`), DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func prob(t *testing.T, b *bandit) float64 {
	t.Helper()
	r, err := b.Probability(context.Background(), &pb.ProbabilityRequest{Factor: "prompt"})
	if err != nil {
		t.Fatal(err)
	}
	return r.Probability
}

func TestLearnsDeduplicatesAndPersists(t *testing.T) {
	dir := t.TempDir()
	b := configure(t, dir)
	if p := prob(t, b); math.Abs(p-0.5) > 1e-4 {
		t.Fatalf("prior probability %v, want 0.5", p)
	}
	report := func(id string, level int32, value float64) {
		if _, err := b.Outcome(context.Background(), &pb.OutcomeRequest{Decision: &pb.Decision{DecisionId: id}, Factor: "prompt", Level: level, Value: value}); err != nil {
			t.Fatal(err)
		}
	}
	report("d1", 1, 2) // success under level 1
	report("d1", 1, 9) // a second report for the same decision: ignored
	report("d2", 0, 8) // failure under level 0
	// Beta(2,1) against Beta(1,2): 5/6.
	if p := prob(t, b); math.Abs(p-5.0/6) > 1e-4 {
		t.Fatalf("probability %v after one success and one failure, want 5/6", p)
	}
	if a := b.st.Arms["prompt"]; a[1] != (arm{2, 1}) || a[0] != (arm{1, 2}) {
		t.Fatalf("arms %v", a)
	}
	for i := 0; i < 30; i++ {
		report("s"+string(rune('a'+i)), 1, 1)
	}
	if p := prob(t, b); p != 0.95 {
		t.Fatalf("probability %v, want the clip 0.95", p)
	}
	// A restarted plugin reads the posterior back.
	again := configure(t, dir)
	if a, b := again.st.Arms["prompt"], b.st.Arms["prompt"]; a != b {
		t.Fatalf("restored arms %v, want %v", a, b)
	}
	report2 := &pb.OutcomeRequest{Decision: &pb.Decision{DecisionId: "d1"}, Factor: "prompt", Level: 1, Value: 9}
	if _, err := again.Outcome(context.Background(), report2); err != nil {
		t.Fatal(err)
	}
	if again.st.Arms["prompt"][1].Beta != 1 {
		t.Errorf("a report for a decision counted before the restart was counted again")
	}
}

// TestTwoProcessesShareTheStateFile: during a hot reload two processes of
// the plugin (the old and the new study version's) learn at once on the
// same data folder; neither may overwrite what the other learned, and an
// outcome counted by one is not counted again by the other.
func TestTwoProcessesShareTheStateFile(t *testing.T) {
	dir := t.TempDir()
	old, next := configure(t, dir), configure(t, dir)
	report := func(b *bandit, id string, level int32, value float64) {
		t.Helper()
		if _, err := b.Outcome(context.Background(), &pb.OutcomeRequest{Decision: &pb.Decision{DecisionId: id}, Factor: "prompt", Level: level, Value: value}); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			b := old
			if i%2 == 1 {
				b = next
			}
			report(b, fmt.Sprintf("d%d", i), int32(i%2), 2)
		})
	}
	wg.Wait()
	report(next, "d0", 0, 2) // counted by the other process already
	report(old, "d1", 1, 2)
	restarted := configure(t, dir)
	n := restarted.st.N["prompt"]
	if n != [2]int{20, 20} {
		t.Errorf("observations per level after a restart %v, want [20 20]: one process overwrote the other's learning or an outcome counted twice", n)
	}
	if a := restarted.st.Arms["prompt"]; a[0] != (arm{21, 1}) || a[1] != (arm{21, 1}) {
		t.Errorf("arms %v, want Beta(21,1) for both levels", a)
	}
}
