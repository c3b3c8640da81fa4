package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jitai/jitai/engine"
	"github.com/jitai/jitai/engine/store/sqlite"
	"github.com/jitai/jitai/interventions"
	"github.com/jitai/jitai/policies"
)

func TestAssignmentsReport(t *testing.T) {
	ctx := context.Background()
	data := t.TempDir()
	cat, err := interventions.Embedded()
	if err != nil {
		t.Fatal(err)
	}
	studies, err := policies.LoadStudies(ctx, "../../policies/examples", cat)
	if err != nil {
		t.Fatal(err)
	}
	store, err := sqlite.Open(filepath.Join(data, "jitai.db"), sqlite.Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	eng, err := engine.New(engine.Components{Store: store, Studies: studies})
	if err != nil {
		t.Fatal(err)
	}
	// 40 in site a, 23 in site b: 16 cells, so cells differ by at most one.
	for i := 0; i < 63; i++ {
		site := "a"
		if i%3 == 2 {
			site = "b"
		}
		if _, _, err := eng.Enroll(ctx, "mood-most", engine.EnrollRequest{ParticipantID: fmt.Sprintf("m%03d", i), Strata: map[string]string{"site": site}}); err != nil {
			t.Fatal(err)
		}
	}
	// The report reads beside the running writer.
	var out, errb bytes.Buffer
	args := []string{"assignments", "--study", "mood-most", "--studies", "../../policies/examples", "--data", data, "--json"}
	if code := run(args, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s %s", code, out.String(), errb.String())
	}
	var rep balanceReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Cells != 16 || len(rep.Strata) != 2 || !rep.Balanced || len(rep.Mismatches) != 0 {
		t.Fatalf("report %+v", rep)
	}
	total := 0
	for _, sb := range rep.Strata {
		total += sb.Participants
		if sb.MaxDiff > 1 {
			t.Errorf("stratum %s cells differ by %d", sb.Stratum, sb.MaxDiff)
		}
		// Each two-level factor is split as evenly as the cells.
		for f, lv := range sb.Levels {
			var n []int
			for _, c := range lv {
				n = append(n, c)
			}
			if len(n) == 2 && (n[0]-n[1] > 8 || n[1]-n[0] > 8) {
				t.Errorf("stratum %s factor %s levels %v", sb.Stratum, f, lv)
			}
		}
	}
	if total != 63 {
		t.Fatalf("%d participants in the report", total)
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}

	// Tamper with one stored assignment: the report must catch it.
	db, err := sql.Open("sqlite", filepath.Join(data, "jitai.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE participants SET doc = json_set(doc, '$.design_row', (json_extract(doc, '$.design_row') + 1) % 16) WHERE study = 'mood-most' AND id = 'm007'`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	out.Reset()
	args = args[:len(args)-1] // text output
	if code := run(args, &out, &errb); code != 1 || !strings.Contains(out.String(), "MISMATCH") || !strings.Contains(out.String(), "m007") {
		t.Fatalf("tampered store: exit %d\n%s", code, out.String())
	}
}
