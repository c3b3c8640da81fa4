package simulate

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestSpillOrder: records spilled by several participants, interleaved,
// with equal times committed out of id order and chunks of several
// records, come back in (time, id) order across participants, each with
// its bytes.
func TestSpillOrder(t *testing.T) {
	dir := t.TempDir()
	sp, err := newSpill(dir, 3)
	if err != nil {
		t.Fatal(err)
	}
	type rec struct {
		at  time.Time
		id  string
		doc []byte
	}
	var all []rec
	r := rand.New(rand.NewPCG(1, 2))
	base := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	steps := make([]time.Time, len(sp.people))
	for n := range 300 {
		i := r.IntN(len(sp.people))
		if r.IntN(3) > 0 { // else the same time again
			// Often the time of another participant's record.
			base = base.Add(time.Duration(r.IntN(2)) * time.Second)
			steps[i] = base
		}
		id := fmt.Sprintf("%08x", r.Uint32())
		// Some large documents, so that buffers fill and chunks interleave.
		doc := []byte(fmt.Sprintf(`{"n":%d,"pad":%q}`, n, strings.Repeat("x", r.IntN(2)*r.IntN(200_000))))
		sp.people[i].add(steps[i], id, doc)
		all = append(all, rec{steps[i], id, doc})
	}
	for _, p := range sp.people {
		if err := p.finish(); err != nil {
			t.Fatal(err)
		}
		if len(p.chunks) < 2 {
			t.Errorf("a participant has %d chunks; the test wants several", len(p.chunks))
		}
	}
	var got bytes.Buffer
	if err := sp.writeTo(&got); err != nil {
		t.Fatal(err)
	}
	slices.SortStableFunc(all, func(a, b rec) int {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		return strings.Compare(a.id, b.id)
	})
	var want bytes.Buffer
	for _, r := range all {
		want.Write(r.doc)
		want.WriteByte('\n')
	}
	if !bytes.Equal(got.Bytes(), want.Bytes()) {
		t.Fatalf("merged spill differs from the records sorted by (time, id): %d bytes, want %d", got.Len(), want.Len())
	}
	name := sp.f.Name()
	if err := sp.close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(name); !os.IsNotExist(err) {
		t.Errorf("spill file left behind: %v", err)
	}

	// A record earlier than one already committed is refused.
	sp, err = newSpill(dir, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.close()
	sp.people[0].add(base, "b", []byte("{}"))
	sp.people[0].add(base.Add(-time.Second), "a", []byte("{}"))
	if err := sp.people[0].finish(); err == nil {
		t.Error("an out-of-order record was accepted")
	}
}

// TestSpillMatchesStore: a spilling run whose store also keeps every
// record writes decisions.jsonl byte for byte as the store does.
func TestSpillMatchesStore(t *testing.T) {
	ctx := context.Background()
	for _, name := range []string{"stress-mrt", "mood-most"} {
		st := loadExample(t, name)
		o := Options{Study: st, Cohort: DefaultCohort(), Participants: 9, Days: 4, Seed: 6, Workers: 3, SpillDir: t.TempDir(), keepRecords: true}
		run, err := Simulate(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		var spilled, stored bytes.Buffer
		if err := writeDecisions(ctx, &spilled, run); err != nil {
			t.Fatal(err)
		}
		if err := run.Store.WriteJSONL(ctx, st.Config.ID, &stored); err != nil {
			t.Fatal(err)
		}
		if n := bytes.Count(stored.Bytes(), []byte("\n")); n < 9*4*2 || !bytes.Equal(spilled.Bytes(), stored.Bytes()) {
			t.Errorf("%s: the spilled decisions.jsonl differs from the store's (%d records)", name, n)
		}
		if err := run.Close(); err != nil {
			t.Fatal(err)
		}
		if left, _ := filepath.Glob(filepath.Join(o.SpillDir, "*")); len(left) != 0 {
			t.Errorf("%s: left behind %v", name, left)
		}
		if err := writeDecisions(ctx, &spilled, run); err == nil {
			t.Errorf("%s: decisions written after Close", name)
		}
	}
}

// TestSpilledRun: a run that spills its records and keeps only recent ones
// in the store, as `jitai simulate` runs, writes the same report and the
// same decisions.jsonl (but for the measured latency) as one that keeps
// every record.
func TestSpilledRun(t *testing.T) {
	st := loadExample(t, "stress-mrt")
	o := Options{Study: st, Cohort: DefaultCohort(), Participants: 10, Days: 12, Seed: 42, Workers: 2}
	kept, _ := simulateTo(t, o)
	o.SpillDir = t.TempDir()
	spilled, _ := simulateTo(t, o)
	for _, f := range []string{"report.json", "participant_days.csv", "factors.csv", "availability.csv", "hours.csv", "report.html"} {
		if !bytes.Equal(read(t, filepath.Join(kept, f)), read(t, filepath.Join(spilled, f))) {
			t.Errorf("%s differs between the spilled and the kept run", f)
		}
	}
	j1 := read(t, filepath.Join(kept, "decisions.jsonl"))
	j2 := read(t, filepath.Join(spilled, "decisions.jsonl"))
	if n, s := bytes.Count(j2, []byte("\n")), scheduledLines(t, j2); s != 10*12*scheduledPoints(st) || n < s {
		t.Errorf("spilled decisions.jsonl has %d lines, %d of scheduled points", n, s)
	}
	if !bytes.Equal(latency.ReplaceAll(j1, nil), latency.ReplaceAll(j2, nil)) {
		t.Error("decisions.jsonl differs between the spilled and the kept run (beyond latency_us)")
	}
}
