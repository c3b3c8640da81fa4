package export_test

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jitai/jitai/experiments/export"
)

// TestCodebookReadersInRAndPandas exports the fixture trial to CSV, then
// runs the codebook's own R snippet (read.csv with its colClasses) under
// Rscript and its pandas snippet (read_csv with its dtype mapping) under
// python3, and checks for every column of both tables: the class or dtype
// the codebook names, as many missing values and as many empty strings as
// the export holds (a missing value and an empty string stay apart), and
// the sum of a numeric column. In CI (CI set) a missing Rscript or pandas
// fails the test (.ci/run installs r-base-core and python3-pandas);
// elsewhere it skips, saying what to install.
func TestCodebookReadersInRAndPandas(t *testing.T) {
	rscript := findReader(t, "Rscript (Debian: apt-get install r-base-core)", []string{"Rscript"}, "-e", "invisible(0)")
	python := findReader(t, "python3 with pandas (Debian: apt-get install python3-pandas)", []string{os.Getenv("JITAI_PYTHON"), "python3", "/usr/bin/python3"}, "-c", "import pandas")

	f := newFixture(t)
	ts, err := export.Build(context.Background(), f.store, f.studies[stressMRT], export.Options{Now: func() time.Time { return f.end }})
	if err != nil {
		t.Fatal(err)
	}
	checkFixtureHasMissingAndEmpty(t, ts)
	dir := t.TempDir()
	paths, err := export.WriteFiles(ts, export.CSV, filepath.Join(dir, "stress.csv"))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(paths.CodebookJSON)
	if err != nil {
		t.Fatal(err)
	}
	var cb export.Codebook
	if err := json.Unmarshal(raw, &cb); err != nil {
		t.Fatal(err)
	}

	var rCode, pyCode strings.Builder
	for _, tb := range cb.Tables {
		rCode.WriteString(tb.R)
		rCode.WriteString("for (col in names(" + tb.Name + ")) {\n  x <- " + tb.Name + "[[col]]\n" +
			"  cat(\"" + tb.Name + "\", col, class(x)[1], sum(is.na(x)), if (is.character(x)) sum(x == \"\", na.rm = TRUE) else 0,\n" +
			"      if (is.numeric(x)) format(sum(as.numeric(x), na.rm = TRUE), digits = 17) else 0, sep = \"|\")\n  cat(\"\\n\")\n}\n")
		pyCode.WriteString(tb.Pandas)
		pyCode.WriteString("for col in " + tb.Name + ".columns:\n    x = " + tb.Name + "[col]\n" +
			"    empty = int((x == \"\").sum()) if str(x.dtype) == \"string\" else 0\n" +
			"    total = repr(float(x.sum())) if str(x.dtype) in (\"Int64\", \"float64\") else \"0\"\n" +
			"    print(\"|\".join([\"" + tb.Name + "\", col, str(x.dtype), str(int(x.isna().sum())), str(empty), total]))\n")
	}
	for _, run := range []struct {
		name, tool, flag, code string
		want                   func(export.Column) string
	}{
		{"R", rscript, "-e", rCode.String(), func(c export.Column) string { return rClasses[c.Type] }},
		{"pandas", python, "-c", pyCode.String(), func(c export.Column) string { return pandasDtypes[c.Type] }},
	} {
		t.Run(run.name, func(t *testing.T) {
			cmd := exec.Command(run.tool, run.flag, run.code)
			cmd.Dir = dir
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("%s: %v\n%s\ncode:\n%s", run.tool, err, stderr.String(), run.code)
			}
			checkReaderOutput(t, ts, string(out), run.want)
		})
	}
}

// rClasses and pandasDtypes are the classes and dtypes each column type
// must have once read.
var (
	rClasses     = map[export.Type]string{export.Integer: "integer", export.Double: "numeric", export.String: "character", export.Timestamp: "POSIXct"}
	pandasDtypes = map[export.Type]string{export.Integer: "Int64", export.Double: "float64", export.String: "string", export.Timestamp: "datetime64[ns, UTC]"}
)

// findReader is the first of the candidates that runs with the probe
// arguments; it fails the test in CI, and skips it elsewhere, if none does.
func findReader(t *testing.T, what string, candidates []string, probe ...string) string {
	t.Helper()
	for _, c := range candidates {
		if c == "" {
			continue
		}
		path, err := exec.LookPath(c)
		if err != nil {
			continue
		}
		if exec.Command(path, probe...).Run() == nil {
			return path
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%s is needed to check the codebook's readers (CI is set, so the test does not skip)", what)
	}
	t.Skipf("skipped: %s is not installed", what)
	return ""
}

// checkFixtureHasMissingAndEmpty makes sure the export holds what the
// test is about: missing values of each type (a missing control value:
// the _label and _prob of a factor on rows not randomised) and empty
// strings (unavailable_reasons of available rows).
func checkFixtureHasMissingAndEmpty(t *testing.T, ts *export.Tables) {
	t.Helper()
	missing := map[export.Type]bool{}
	empty := false
	for _, d := range []*export.Table{ts.Decisions, ts.Participants, ts.Engagement} {
		for _, row := range d.Rows {
			for j, v := range row {
				switch {
				case v == nil:
					missing[d.Columns[j].Type] = true
				case v == "":
					empty = true
				}
			}
		}
	}
	for _, typ := range []export.Type{export.Integer, export.Double, export.String, export.Timestamp} {
		if !missing[typ] {
			t.Errorf("the fixture's export has no missing %s value", typ)
		}
	}
	if !empty {
		t.Error("the fixture's export has no empty string")
	}
}

// checkReaderOutput checks the lines table|column|class|NAs|empty|sum the
// reader printed against the tables.
func checkReaderOutput(t *testing.T, ts *export.Tables, out string, want func(export.Column) string) {
	t.Helper()
	seen := 0
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Split(line, "|")
		if len(f) != 6 {
			t.Fatalf("unexpected output line %q", line)
		}
		tb := ts.Table(f[0])
		j := -1
		if tb != nil {
			j = tb.Index(f[1])
		}
		if j < 0 {
			t.Errorf("the reader made a column %s.%s that the export does not have", f[0], f[1])
			continue
		}
		seen++
		c := tb.Columns[j]
		nas, empties, sum := 0, 0, 0.0
		for _, row := range tb.Rows {
			switch v := row[j].(type) {
			case nil:
				nas++
			case string:
				if v == "" {
					empties++
				}
			case int64:
				sum += float64(v)
			case float64:
				sum += v
			}
		}
		if f[2] != want(c) || c.RClass != rClasses[c.Type] || c.PandasDtype != pandasDtypes[c.Type] {
			t.Errorf("%s.%s (%s) reads as %s, want %s (the codebook says R %s, pandas %s)", f[0], c.Name, c.Type, f[2], want(c), c.RClass, c.PandasDtype)
		}
		if f[3] != strconv.Itoa(nas) || f[4] != strconv.Itoa(empties) {
			t.Errorf("%s.%s: %s missing and %s empty strings read, the export has %d and %d", f[0], c.Name, f[3], f[4], nas, empties)
		}
		if c.Type == export.Integer || c.Type == export.Double {
			got, err := strconv.ParseFloat(f[5], 64)
			if err != nil || math.Abs(got-sum) > 1e-9*math.Max(1, math.Abs(sum)) {
				t.Errorf("%s.%s: sum %s read, the export's is %v", f[0], c.Name, f[5], sum)
			}
		}
	}
	if want := len(ts.Decisions.Columns) + len(ts.Participants.Columns) + len(ts.Engagement.Columns); seen != want {
		t.Errorf("the reader printed %d columns, the export has %d", seen, want)
	}
}
