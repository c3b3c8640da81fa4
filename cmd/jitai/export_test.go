package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jitai/jitai/engine"
	"github.com/jitai/jitai/engine/store/redisstore"
	"github.com/jitai/jitai/engine/store/sqlite"
	"github.com/jitai/jitai/engine/trial"
	"github.com/jitai/jitai/experiments/export"
	"github.com/jitai/jitai/interventions"
	"github.com/jitai/jitai/policies"
)

const exampleStudies = "../../policies/examples"

// exportData makes a data folder whose store holds a few stress-mrt
// decisions made by the real engine.
func exportData(t *testing.T) string {
	t.Helper()
	ctx := context.Background()
	cat, err := interventions.Embedded()
	if err != nil {
		t.Fatal(err)
	}
	studies, err := policies.LoadStudies(ctx, exampleStudies, cat)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	st, err := sqlite.Open(filepath.Join(dir, "jitai.db"), sqlite.Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)
	eng, err := engine.New(engine.Components{Store: st, Studies: studies, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"p1", "p2"} {
		now = time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC) // enrolled before the decisions
		if _, _, err := eng.Enroll(ctx, "stress-mrt", engine.EnrollRequest{ParticipantID: p}); err != nil {
			t.Fatal(err)
		}
		for i, dp := range []string{"morning", "late_morning", "afternoon"} {
			tm := time.Date(2026, 3, 2, 8+3*i, 30, 0, 0, time.UTC)
			now = tm // the app asks on time
			if _, err := eng.Decide(ctx, "stress-mrt", p, engine.DecideRequest{DecisionPoint: dp, Time: tm}); err != nil {
				t.Fatal(err)
			}
			ev := trial.Event{ID: p + dp, Type: trial.EventEMA, Time: tm.Add(40 * time.Minute), Data: json.RawMessage(`{"stress": 4}`)}
			if _, _, err := eng.Ingest(ctx, "stress-mrt", p, []trial.Event{ev}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

func runExportArgs(args ...string) (int, string, string) {
	return runExportWith(redisstore.Options{}, args...)
}

// runExportWith runs `jitai export ARGS...` with the given Redis store
// options.
func runExportWith(redis redisstore.Options, args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	code := executeWith(deps{redis: redis}, append([]string{"export"}, args...), strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}

func TestExportCommand(t *testing.T) {
	data := exportData(t)
	outDir := t.TempDir()

	t.Run("csv", func(t *testing.T) {
		out := filepath.Join(outDir, "stress.csv")
		code, stdout, stderr := runExportArgs("--study", "stress-mrt", "--out", out, "--data", data, "--studies", exampleStudies)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		if !strings.Contains(stdout, "6 rows") {
			t.Errorf("stdout: %s", stdout)
		}
		f, err := os.Open(out)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		recs, err := csv.NewReader(f).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) != 7 || recs[0][0] != "participant_id" || recs[1][0] != "p1" || recs[6][0] != "p2" {
			t.Errorf("decisions CSV: %v", recs)
		}
		for _, p := range []string{filepath.Join(outDir, "stress_participants.csv"), filepath.Join(outDir, "stress_engagement.csv"), out + ".codebook.md", out + ".codebook.json"} {
			if _, err := os.Stat(p); err != nil {
				t.Error(err)
			}
		}
	})

	t.Run("parquet from the extension", func(t *testing.T) {
		out := filepath.Join(outDir, "stress.parquet")
		code, _, stderr := runExportArgs("--study", "stress-mrt", "--out", out, "--data", data, "--studies", exampleStudies)
		if code != 0 {
			t.Fatalf("exit %d: %s", code, stderr)
		}
		for _, p := range []string{out, filepath.Join(outDir, "stress_participants.parquet")} {
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			tab, err := export.ReadParquet(bytes.NewReader(b), int64(len(b)))
			if err != nil {
				t.Fatalf("%s: %v", p, err)
			}
			if len(tab.Rows) == 0 {
				t.Errorf("%s: no rows", p)
			}
		}
	})

	t.Run("errors", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			args []string
			code int
			want string
		}{
			{"no study", []string{"--out", "x.csv"}, 2, "--study and --out are required"},
			{"bad format", []string{"--study", "stress-mrt", "--out", "x.csv", "--format", "xlsx"}, 2, `format "xlsx": use csv or parquet`},
			{"unknown study", []string{"--study", "nope", "--out", filepath.Join(outDir, "x.csv"), "--data", data, "--studies", exampleStudies}, 1, `no study "nope"`},
			{"no store", []string{"--study", "stress-mrt", "--out", filepath.Join(outDir, "x.csv"), "--data", t.TempDir(), "--studies", exampleStudies}, 1, "no store at"},
			{"no out folder", []string{"--study", "stress-mrt", "--out", filepath.Join(outDir, "missing", "x.csv"), "--data", data, "--studies", exampleStudies}, 1, "does not exist"},
		} {
			code, _, stderr := runExportArgs(tc.args...)
			if code != tc.code || !strings.Contains(stderr, tc.want) {
				t.Errorf("%s: exit %d, stderr %q; want exit %d and %q", tc.name, code, stderr, tc.code, tc.want)
			}
		}
	})

	t.Run("beside a running server", func(t *testing.T) {
		st, err := sqlite.Open(filepath.Join(data, "jitai.db"), sqlite.Options{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		code, _, stderr := runExportArgs("--study", "stress-mrt", "--out", filepath.Join(outDir, "y.csv"), "--data", data, "--studies", exampleStudies)
		if code != 0 {
			t.Fatalf("exit %d, stderr %q", code, stderr)
		}
		a, _ := os.ReadFile(filepath.Join(outDir, "y.csv"))
		b, _ := os.ReadFile(filepath.Join(outDir, "stress.csv"))
		if len(a) == 0 || !bytes.Equal(a, b) {
			t.Errorf("export beside a server differs from the export before it (%d vs %d bytes)", len(a), len(b))
		}
	})
}
