package storetest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jitai/jitai/engine/trial"
)

// Files reads the raw files in which a store keeps its data on disk, after
// doing what the store's documentation says makes an erasure reach the disk
// (for Redis: the AOF rewrite the erasure scheduled). It maps a file's name
// to its bytes.
type Files func(t *testing.T) map[string][]byte

// RunEraseLeavesNoBytes tests that an erasure leaves none of the
// participant's bytes on disk: a participant whose id and self-reports
// carry marker strings is erased (records removed, and records kept
// anonymised); then no file of the store contains the id or a marker, and
// the rest of the study's data is intact. open returns a fresh store and the
// reader of its files.
func RunEraseLeavesNoBytes(t *testing.T, open func(t *testing.T) (trial.Store, Files)) {
	t.Helper()
	for _, anonymise := range []bool{false, true} {
		t.Run(fmt.Sprintf("anonymise=%v", anonymise), func(t *testing.T) {
			s, files := open(t)
			defer s.Close()
			testEraseLeavesNoBytes(t, s, files, anonymise)
		})
	}
}

// The victim's id and the markers in their self-reports: strings that occur
// nowhere else, so any hit is a leftover of the erased participant.
const (
	victim     = "victim-q7Zr4wXk"
	markerNote = "MARKER-note-bluegiraffe-3f9d"
	markerWord = "MARKER-word-quietotter-81c2"
)

func testEraseLeavesNoBytes(t *testing.T, s trial.Store, files Files, anonymise bool) {
	keep := []string{"keep-1", "keep-2"}
	for i, p := range append([]string{victim}, keep...) {
		seedWithNotes(t, s, p, i)
	}
	needles := []string{victim, markerNote, markerWord}
	before := countHits(t, files(t), needles)
	for _, n := range needles {
		if before[n] == 0 {
			t.Fatalf("before erasure %q is in no file of the store: the test cannot see what it looks for (hits %v)", n, before)
		}
	}
	t.Logf("before erasure: %v", before)
	res, err := eraser(t, s).Erase(ctx(t), "s1", victim, anonymise)
	if err != nil {
		t.Fatalf("Erase: %v", err)
	}
	t.Logf("erasure answer: %+v", *res)
	after := countHits(t, files(t), needles)
	for _, n := range needles {
		if after[n] != 0 {
			t.Errorf("after erasure %q is still on disk: %v", n, after)
		}
	}
	// The rest of the study is intact.
	for _, p := range keep {
		evs, err := s.Events(ctx(t), "s1", p)
		if err != nil || len(evs) != 3 {
			t.Errorf("%s has %d events after another's erasure (%v), want 3", p, len(evs), err)
		}
		if recs := mustList(t, s, trial.DecisionQuery{Study: "s1", Participant: p, Limit: 10}); len(recs) != 2 {
			t.Errorf("%s has %d decision records after another's erasure, want 2", p, len(recs))
		}
	}
	want := 4
	if anonymise {
		want = 6
	}
	if all := mustList(t, s, trial.DecisionQuery{Study: "s1", Limit: 100}); len(all) != want {
		t.Errorf("%d records in the study after erasure, want %d", len(all), want)
	}
}

// seedWithNotes enrols p with three self-reports, two of them free-text
// notes with the markers, and two decisions whose inputs quote them.
func seedWithNotes(t *testing.T, s trial.Store, p string, n int) {
	t.Helper()
	mustEnroll(t, s, participant("s1", p, "a"))
	// A long note (a diary entry) spills over several database pages, so
	// that erasing it frees whole pages, not only space inside one.
	diary := strings.Repeat("slept badly, long day at work. ", 700)
	note, word := "felt fine today "+diary, "calm"
	if p == victim {
		note, word = "argued with my sister "+markerNote+" "+diary+markerNote, markerWord
	}
	notes := []trial.Event{
		emaEvent(fmt.Sprintf("e-%d-1", n), at(1), 4),
		noteEvent(fmt.Sprintf("e-%d-2", n), at(2), note),
		noteEvent(fmt.Sprintf("e-%d-3", n), at(3), word),
	}
	if _, err := s.AppendEvents(ctx(t), "s1", p, notes, applyEvents); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		id := fmt.Sprintf("dec-%d-%d", n, i)
		snap, err := s.Snapshot(ctx(t), "s1", p, "")
		if err != nil {
			t.Fatal(err)
		}
		rec := record("s1", p, id, at(10+i))
		input, _ := json.Marshal(map[string]any{"participant": p, "state": map[string]any{"note": note, "word": word}})
		rec.Input = input
		rec.Tailoring = map[string]any{"note": note}
		c := &trial.Commit{Record: rec, State: nextState(snap.State, id, at(10+i)), Delivery: delivery("s1", p, id, at(10+i))}
		if i == 0 {
			c.Idempotency = idem("k-"+p, id, at(10))
		}
		if err := s.CommitDecision(ctx(t), c); err != nil {
			t.Fatal(err)
		}
	}
}

// noteEvent is a free-text self-report.
func noteEvent(id string, tm time.Time, text string) trial.Event {
	ev := emaEvent(id, tm, 0)
	data, _ := json.Marshal(map[string]any{"item": "note", "value": 0, "text": text})
	ev.Data = data
	return ev
}

// countHits counts each needle's occurrences over all files, and logs them
// per file.
func countHits(t *testing.T, files map[string][]byte, needles []string) map[string]int {
	hits := map[string]int{}
	for name, b := range files {
		per := map[string]int{}
		for _, n := range needles {
			per[n] = bytes.Count(b, []byte(n))
			hits[n] += per[n]
		}
		t.Logf("%s (%d bytes): %v", name, len(b), per)
	}
	return hits
}
