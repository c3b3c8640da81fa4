package export_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jitai/jitai/engine/trial"

	"github.com/jitai/jitai/engine/api"
	"github.com/jitai/jitai/experiments/export"
	"github.com/jitai/jitai/policies"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// TestExport runs the fixture trial once and checks its export.
func TestExport(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	build := func(t *testing.T, study string, now time.Time) *export.Tables {
		t.Helper()
		ts, err := export.Build(ctx, f.store, f.studies[study], export.Options{Now: func() time.Time { return now }})
		if err != nil {
			t.Fatalf("Build(%s): %v", study, err)
		}
		return ts
	}
	stress := build(t, stressMRT, f.end)
	mood := build(t, moodMOST, f.end)
	x := &exportEnv{f: f, ctx: ctx, build: build, stress: stress, mood: mood}

	t.Run("rows in participant-then-time order, every record once", x.rowsInParticipantThenTimeOrderEveryRecordOnce)

	t.Run("factor levels, probabilities and draws equal the records", x.factorLevelsProbabilitiesAndDrawsEqualTheRecords)

	t.Run("the fixture covers the cases", x.theFixtureCoversTheCases)

	t.Run("proximal outcomes are joined from their windows", x.proximalOutcomesAreJoinedFromTheirWindows)

	t.Run("outcomes whose window is still open are missing", x.outcomesWhoseWindowIsStillOpenAreMissing)

	t.Run("policy input columns", x.policyInputColumns)

	t.Run("participants table", x.participantsTable)

	t.Run("every value has its column's type", func(t *testing.T) { checkValueTypes(t, stress, mood) })

	t.Run("CSV golden files", x.csvGoldenFiles)

	t.Run("CSV reads back as RFC 4180 with NA missing values", x.csvReadsBackAsRfc4180WithEmptyMissingValues)

	t.Run("local time, hour and weekday", x.localTimeHourAndWeekday)

	t.Run("engagement table: one row per delivered decision", x.engagementOneRowPerDeliveredDecision)

	t.Run("Parquet reads back equal to the table", x.parquetReadsBackEqualToTheTable)

	t.Run("codebook lists every column of both tables", x.codebookListsEveryColumnOfBothTables)

	t.Run("WriteFiles", x.writefiles)

	t.Run("API", x.api)
}

// exportEnv is what the subtests of TestExport share.
type exportEnv struct {
	f      *fixture
	ctx    context.Context
	build  func(t *testing.T, study string, now time.Time) *export.Tables
	stress *export.Tables
	mood   *export.Tables
}

// rowsInParticipantThenTimeOrderEveryRecordOnce: rows in participant-then-time order, every record once.
func (x *exportEnv) rowsInParticipantThenTimeOrderEveryRecordOnce(t *testing.T) {
	f, ctx, stress, mood := x.f, x.ctx, x.stress, x.mood
	for _, tc := range []struct {
		study string
		ts    *export.Tables
	}{{stressMRT, stress}, {moodMOST, mood}} {
		recs, err := f.store.ListDecisions(ctx, trial.DecisionQuery{Study: tc.study})
		if err != nil {
			t.Fatal(err)
		}
		d := tc.ts.Decisions
		if len(d.Rows) != len(recs) {
			t.Fatalf("%s: %d rows, %d records", tc.study, len(d.Rows), len(recs))
		}
		seen := map[string]int{}
		for i := range d.Rows {
			seen[d.Value(i, "decision_id").(string)]++
		}
		for _, r := range recs {
			if seen[r.ID] != 1 {
				t.Errorf("%s: record %s appears %d times", tc.study, r.ID, seen[r.ID])
			}
		}
		// Participants in enrolment order, contiguous, times ascending,
		// decision_index 1..n.
		var order []string
		for i := range d.Rows {
			p := d.Value(i, "participant_id").(string)
			if len(order) == 0 || order[len(order)-1] != p {
				if slices.Contains(order, p) {
					t.Fatalf("%s: rows of %s are not contiguous (row %d)", tc.study, p, i)
				}
				order = append(order, p)
				if got := d.Value(i, "decision_index"); got != int64(1) {
					t.Fatalf("%s: first row of %s has decision_index %v", tc.study, p, got)
				}
				continue
			}
			prev, cur := d.Value(i-1, "time").(time.Time), d.Value(i, "time").(time.Time)
			if cur.Before(prev) || (cur.Equal(prev) && d.Value(i, "decision_id").(string) < d.Value(i-1, "decision_id").(string)) {
				t.Errorf("%s: row %d is before row %d", tc.study, i, i-1)
			}
			if d.Value(i, "decision_index").(int64) != d.Value(i-1, "decision_index").(int64)+1 {
				t.Errorf("%s: row %d: decision_index does not count up", tc.study, i)
			}
		}
		if !slices.Equal(order, f.order[tc.study]) {
			t.Errorf("%s: participant order %v, enrolment order %v", tc.study, order, f.order[tc.study])
		}
		var porder []string
		for i := range tc.ts.Participants.Rows {
			porder = append(porder, tc.ts.Participants.Value(i, "participant_id").(string))
		}
		if !slices.Equal(porder, f.order[tc.study]) {
			t.Errorf("%s: participants table order %v, enrolment order %v", tc.study, porder, f.order[tc.study])
		}
	}
}

// factorLevelsProbabilitiesAndDrawsEqualTheRecords: factor levels, probabilities and draws equal the records.
func (x *exportEnv) factorLevelsProbabilitiesAndDrawsEqualTheRecords(t *testing.T) {
	f, ctx, stress, mood := x.f, x.ctx, x.stress, x.mood
	for _, tc := range []struct {
		study string
		ts    *export.Tables
	}{{stressMRT, stress}, {moodMOST, mood}} {
		cfg := f.studies[tc.study].Config
		d := tc.ts.Decisions
		for i := range d.Rows {
			id := d.Value(i, "decision_id").(string)
			rec, err := f.store.Decision(ctx, tc.study, id)
			if err != nil {
				t.Fatal(err)
			}
			if got := d.Value(i, "available"); got != b2i(rec.Available) {
				t.Errorf("%s: available %v, record %v", id, got, rec.Available)
			}
			if got := d.Value(i, "action"); got != rec.Action {
				t.Errorf("%s: action %v, record %v", id, got, rec.Action)
			}
			if got := d.Value(i, "unavailable_reasons"); got != strings.Join(rec.UnavailableReasons, ";") {
				t.Errorf("%s: unavailable_reasons %q, record %v", id, got, rec.UnavailableReasons)
			}
			for _, fac := range cfg.Factors {
				var fd *trial.FactorDraw
				for k := range rec.Factors {
					if rec.Factors[k].Name == fac.Name {
						fd = &rec.Factors[k]
					}
				}
				lvl, lab, prob, draw := d.Value(i, fac.Name), d.Value(i, fac.Name+"_label"), d.Value(i, fac.Name+"_prob"), d.Value(i, fac.Name+"_draw")
				if fd == nil {
					if fac.Type != policies.Within || rec.Available {
						t.Fatalf("%s: record has no draw of %s", id, fac.Name)
					}
					if lvl != int64(0) || lab != nil || prob != nil || draw != nil {
						t.Errorf("%s: unrandomised %s exported as %v %v %v %v", id, fac.Name, lvl, lab, prob, draw)
					}
					continue
				}
				if lvl != int64(fd.Level) || lab != fd.Label {
					t.Errorf("%s: %s level %v %v, record %d %s", id, fac.Name, lvl, lab, fd.Level, fd.Label)
				}
				if fac.Type == policies.Between {
					if prob != nil || draw != nil {
						t.Errorf("%s: between-person %s has prob %v draw %v", id, fac.Name, prob, draw)
					}
					continue
				}
				if prob != *fd.Probability || draw != *fd.Draw {
					t.Errorf("%s: %s prob %v draw %v, record %v %v", id, fac.Name, prob, draw, *fd.Probability, *fd.Draw)
				}
				if p := prob.(float64); p < fac.Bounds[0] || p > fac.Bounds[1] {
					t.Errorf("%s: %s prob %v outside the bounds %v", id, fac.Name, p, fac.Bounds)
				}
			}
		}
	}
}

// theFixtureCoversTheCases: the fixture covers the cases.
func (x *exportEnv) theFixtureCoversTheCases(t *testing.T) {
	stress := x.stress
	d := stress.Decisions
	count := map[string]int{}
	for i := range d.Rows {
		count["action="+d.Value(i, "action").(string)]++
		if r := d.Value(i, "unavailable_reasons").(string); r != "" {
			count["unavailable="+r]++
		}
		if d.Value(i, "opened_1h") == int64(1) {
			count["opened"]++
		}
		if d.Value(i, "stress_90m") == nil {
			count["stress missing"]++
		}
	}
	for _, k := range []string{"action=deliver", "action=none", "action=safety", "unavailable=driving", "opened", "stress missing"} {
		if count[k] == 0 {
			t.Errorf("the fixture has no decision with %s (counts %v)", k, count)
		}
	}
}

// proximalOutcomesAreJoinedFromTheirWindows: proximal outcomes are joined from their windows.
func (x *exportEnv) proximalOutcomesAreJoinedFromTheirWindows(t *testing.T) {
	f, stress, mood := x.f, x.stress, x.mood
	check := func(ts *export.Tables, cont, bin string, wantCont func(want) any, wantBin func(want) int64) {
		d := ts.Decisions
		for i := range d.Rows {
			id := d.Value(i, "decision_id").(string)
			w, ok := f.want[id]
			if !ok {
				t.Fatalf("no expectation for decision %s", id)
			}
			if got := d.Value(i, cont); got != wantCont(w) {
				t.Errorf("%s %s: %s = %v, want %v", d.Value(i, "participant_id"), d.Value(i, "local_time"), cont, got, wantCont(w))
			}
			if got := d.Value(i, bin); got != wantBin(w) {
				t.Errorf("%s %s: %s = %v, want %v", d.Value(i, "participant_id"), d.Value(i, "local_time"), bin, got, wantBin(w))
			}
		}
	}
	check(stress, "stress_90m", "opened_1h", func(w want) any { return w.stress }, func(w want) int64 { return w.opened })
	check(mood, "mood_3h", "completed_2h", func(w want) any { return w.mood }, func(w want) int64 { return w.done })
}

// outcomesWhoseWindowIsStillOpenAreMissing: outcomes whose window is still open are missing.
func (x *exportEnv) outcomesWhoseWindowIsStillOpenAreMissing(t *testing.T) {
	build, stress := x.build, x.stress
	// Right after the last decision of the stress trial: the last
	// decisions' windows (to 90 minutes, 1 hour) are open.
	last := time.Time{}
	for i := range stress.Decisions.Rows {
		if tm := stress.Decisions.Value(i, "time").(time.Time); tm.After(last) {
			last = tm
		}
	}
	early := build(t, stressMRT, last.Add(time.Minute))
	d := early.Decisions
	n := 0
	for i := range d.Rows {
		if d.Value(i, "time").(time.Time).Equal(last) {
			n++
			if d.Value(i, "stress_90m") != nil || d.Value(i, "opened_1h") != nil {
				t.Errorf("open window exported as %v / %v", d.Value(i, "stress_90m"), d.Value(i, "opened_1h"))
			}
		}
	}
	if n == 0 {
		t.Fatal("no decision at the last time")
	}
}

// policyInputColumns: policy input columns.
func (x *exportEnv) policyInputColumns(t *testing.T) {
	f, ctx, stress := x.f, x.ctx, x.stress
	d := stress.Decisions
	for _, c := range []struct {
		name string
		typ  export.Type
	}{{"prompts_today", export.Integer}, {"minutes_since_last_prompt", export.Integer}, {"ema_stress", export.Double}, {"ema_mood", export.Double}, {"ctx_location", export.String}, {"ctx_driving", export.Integer}, {"ctxev_driving", export.Integer}, {"assess_phq9_total", export.Integer}, {"tailoring_need", export.String}, {"tailoring_favour", export.String}} {
		j := d.Index(c.name)
		if j < 0 {
			t.Errorf("no column %s", c.name)
			continue
		}
		if d.Columns[j].Type != c.typ {
			t.Errorf("column %s is %s, want %s", c.name, d.Columns[j].Type, c.typ)
		}
	}
	for i := range d.Rows {
		rec, err := f.store.Decision(ctx, stressMRT, d.Value(i, "decision_id").(string))
		if err != nil {
			t.Fatal(err)
		}
		var in struct {
			State struct {
				EMA map[string]struct{ Value any } `json:"ema"`
			} `json:"state"`
			History struct {
				PromptsToday int `json:"prompts_today"`
			} `json:"history"`
		}
		if err := json.Unmarshal(rec.Input, &in); err != nil {
			t.Fatal(err)
		}
		if got := d.Value(i, "prompts_today"); got != int64(in.History.PromptsToday) {
			t.Errorf("prompts_today %v, input %d", got, in.History.PromptsToday)
		}
		var wantStress any
		if o, ok := in.State.EMA["stress"]; ok {
			wantStress = o.Value
		}
		if got := d.Value(i, "ema_stress"); got != wantStress {
			t.Errorf("ema_stress %v, input %v", got, wantStress)
		}
		if got := d.Value(i, "tailoring_need"); rec.Tailoring["need"] != nil && got != rec.Tailoring["need"] {
			t.Errorf("tailoring_need %v, record %v", got, rec.Tailoring["need"])
		}
	}
	// The first decision of a participant follows no prompt.
	if d.Value(0, "minutes_since_last_prompt") != nil {
		t.Errorf("minutes_since_last_prompt of a first decision is %v, want missing", d.Value(0, "minutes_since_last_prompt"))
	}
}

// participantsTable: participants table.
func (x *exportEnv) participantsTable(t *testing.T) {
	f, ctx, stress, mood := x.f, x.ctx, x.stress, x.mood
	p := stress.Participants
	if got := p.Value(0, "phq9_total_first"); got != int64(11) {
		t.Errorf("p-ana phq9_total_first %v, want 11", got)
	}
	if got := p.Value(0, "phq9_total_last"); got != int64(5) {
		t.Errorf("p-ana phq9_total_last %v, want 5", got)
	}
	if got := p.Value(0, "phq9_time_last"); got != at(2, 21, 0).UTC() {
		t.Errorf("p-ana phq9_time_last %v", got)
	}
	if got := p.Value(1, "gad7_total_last"); got != int64(4) {
		t.Errorf("p-ben gad7_total_last %v, want 4", got)
	}
	if got := p.Value(1, "phq9_total_last"); got != nil {
		t.Errorf("p-ben phq9_total_last %v, want missing", got)
	}
	if got := p.Value(2, "n_safety"); got == int64(0) {
		t.Error("p-cy has no safety decisions")
	}
	m := mood.Participants
	for i := range m.Rows {
		id := m.Value(i, "participant_id").(string)
		pp, err := f.store.Participant(ctx, moodMOST, id)
		if err != nil {
			t.Fatal(err)
		}
		if m.Value(i, "site") != pp.Strata["site"] || m.Value(i, "stratum") != pp.Stratum {
			t.Errorf("%s: site %v stratum %v, enrolment %v", id, m.Value(i, "site"), m.Value(i, "stratum"), pp.Strata)
		}
		for _, fac := range f.studies[moodMOST].Config.FactorsOf(policies.Between) {
			if m.Value(i, fac.Name+"_label") != pp.Assignment[fac.Name] {
				t.Errorf("%s: %s %v, assignment %v", id, fac.Name, m.Value(i, fac.Name+"_label"), pp.Assignment)
			}
		}
	}
}

// csvGoldenFiles: CSV golden files.
func (x *exportEnv) csvGoldenFiles(t *testing.T) {
	stress, mood := x.stress, x.mood
	for _, tc := range []struct {
		name string
		ts   *export.Tables
	}{{stressMRT, stress}, {moodMOST, mood}} {
		for _, table := range []string{export.DecisionsTable, export.ParticipantsTable, export.EngagementTable} {
			var buf bytes.Buffer
			if err := tc.ts.Write(&buf, table, export.CSV); err != nil {
				t.Fatal(err)
			}
			golden(t, filepath.Join("testdata", tc.name+"_"+table+".csv"), buf.Bytes())
		}
		var md bytes.Buffer
		if err := tc.ts.Codebook(export.CSV, nil).WriteMarkdown(&md); err != nil {
			t.Fatal(err)
		}
		golden(t, filepath.Join("testdata", tc.name+".codebook.md"), md.Bytes())
	}
}

// csvReadsBackAsRfc4180WithEmptyMissingValues: CSV reads back as RFC 4180 with empty missing values.
func (x *exportEnv) csvReadsBackAsRfc4180WithEmptyMissingValues(t *testing.T) {
	stress := x.stress
	var buf bytes.Buffer
	if err := stress.Write(&buf, export.DecisionsTable, export.CSV); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	d := stress.Decisions
	if len(recs) != len(d.Rows)+1 {
		t.Fatalf("%d CSV records for %d rows", len(recs), len(d.Rows))
	}
	for j, c := range d.Columns {
		if recs[0][j] != c.Name {
			t.Fatalf("header %d is %q, want %q", j, recs[0][j], c.Name)
		}
	}
	for i, row := range d.Rows {
		for j, v := range row {
			if got := recs[i+1][j]; got != export.FormatValue(v) || (v == nil && got != "NA") {
				t.Fatalf("row %d column %s: %q, want %q", i, d.Columns[j].Name, got, export.FormatValue(v))
			}
		}
	}
}

// parquetReadsBackEqualToTheTable: Parquet reads back equal to the table.
func (x *exportEnv) parquetReadsBackEqualToTheTable(t *testing.T) {
	stress, mood := x.stress, x.mood
	for _, ts := range []*export.Tables{stress, mood} {
		for _, table := range []string{export.DecisionsTable, export.ParticipantsTable} {
			var buf bytes.Buffer
			if err := ts.Write(&buf, table, export.Parquet); err != nil {
				t.Fatal(err)
			}
			got, err := export.ReadParquet(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
			if err != nil {
				t.Fatal(err)
			}
			want := ts.Table(table)
			if got.Name != want.Name || len(got.Columns) != len(want.Columns) {
				t.Fatalf("%s %s: read %q with %d columns, wrote %d", ts.Study, table, got.Name, len(got.Columns), len(want.Columns))
			}
			for j, c := range want.Columns {
				if got.Columns[j].Name != c.Name || got.Columns[j].Type != c.Type {
					t.Errorf("%s %s column %d: read %s %s, wrote %s %s", ts.Study, table, j, got.Columns[j].Name, got.Columns[j].Type, c.Name, c.Type)
				}
			}
			if len(got.Rows) != len(want.Rows) {
				t.Fatalf("%s %s: read %d rows, wrote %d", ts.Study, table, len(got.Rows), len(want.Rows))
			}
			for i := range want.Rows {
				if !reflect.DeepEqual(got.Rows[i], want.Rows[i]) {
					t.Fatalf("%s %s row %d:\nread  %v\nwrote %v", ts.Study, table, i, got.Rows[i], want.Rows[i])
				}
			}
			// And so the same CSV.
			var a, b bytes.Buffer
			_ = export.WriteCSV(&a, got)
			_ = export.WriteCSV(&b, want)
			if !bytes.Equal(a.Bytes(), b.Bytes()) {
				t.Errorf("%s %s: Parquet read back gives another CSV", ts.Study, table)
			}
		}
	}
}

// codebookListsEveryColumnOfBothTables: codebook lists every column of both tables.
func (x *exportEnv) codebookListsEveryColumnOfBothTables(t *testing.T) {
	stress, mood := x.stress, x.mood
	for _, ts := range []*export.Tables{stress, mood} {
		var js, md bytes.Buffer
		cb := ts.Codebook(export.Parquet, nil)
		if err := cb.WriteJSON(&js); err != nil {
			t.Fatal(err)
		}
		if err := cb.WriteMarkdown(&md); err != nil {
			t.Fatal(err)
		}
		var back export.Codebook
		if err := json.Unmarshal(js.Bytes(), &back); err != nil {
			t.Fatal(err)
		}
		if len(back.Tables) != 3 {
			t.Fatalf("codebook has %d tables", len(back.Tables))
		}
		for k, table := range []*export.Table{ts.Decisions, ts.Participants, ts.Engagement} {
			cbt := back.Tables[k]
			if cbt.Name != table.Name || cbt.Rows != len(table.Rows) || len(cbt.Columns) != len(table.Columns) {
				t.Fatalf("codebook table %s: %d rows %d columns; table %d rows %d columns", cbt.Name, cbt.Rows, len(cbt.Columns), len(table.Rows), len(table.Columns))
			}
			for j, c := range table.Columns {
				e := cbt.Columns[j]
				if e.Name != c.Name || e.Table != table.Name || e.Type != c.Type || e.Description == "" || e.Missing == "" || e.ParquetType == "" {
					t.Errorf("codebook entry %+v for column %s", e, c.Name)
				}
				if !strings.Contains(md.String(), "| `"+c.Name+"` |") {
					t.Errorf("Markdown codebook lacks %s.%s", table.Name, c.Name)
				}
			}
		}
	}
}

// writefiles: WriteFiles.
func (x *exportEnv) writefiles(t *testing.T) {
	stress, mood := x.stress, x.mood
	dir := t.TempDir()
	if keep := os.Getenv("JITAI_EXPORT_TEST_OUT"); keep != "" {
		// Keep the fixture's files to open them in other readers.
		for _, fm := range []export.Format{export.CSV, export.Parquet} {
			if _, err := export.WriteFiles(mood, fm, filepath.Join(keep, moodMOST+fm.Ext())); err != nil {
				t.Fatal(err)
			}
		}
		dir = keep
	}
	for _, fm := range []export.Format{export.CSV, export.Parquet} {
		out := filepath.Join(dir, "stress"+fm.Ext())
		p, err := export.WriteFiles(stress, fm, out)
		if err != nil {
			t.Fatal(err)
		}
		want := export.Paths{Decisions: out, Participants: filepath.Join(dir, "stress_participants"+fm.Ext()), Engagement: filepath.Join(dir, "stress_engagement"+fm.Ext()), CodebookMD: out + ".codebook.md", CodebookJSON: out + ".codebook.json"}
		if p != want {
			t.Errorf("paths %+v, want %+v", p, want)
		}
		for _, f := range []string{p.Decisions, p.Participants, p.Engagement, p.CodebookMD, p.CodebookJSON} {
			if st, err := os.Stat(f); err != nil || st.Size() == 0 {
				t.Errorf("%s: %v", f, err)
			}
		}
	}
	left, _ := filepath.Glob(filepath.Join(dir, ".*.tmp"))
	if len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

// api: API.
func (x *exportEnv) api(t *testing.T) {
	f, stress := x.f, x.stress
	srv := httptest.NewServer(api.New(f.eng, nil, api.Options{}))
	defer srv.Close()
	get := func(path string) (*http.Response, []byte) {
		t.Helper()
		res, err := srv.Client().Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		return res, body
	}
	// The server's clock is the real one: the fixture is in the past,
	// so every window is closed, as in the export at f.end.
	for _, tc := range []struct {
		query, table, ctype string
		format              export.Format
	}{
		{"", export.DecisionsTable, "text/csv; charset=utf-8", export.CSV},
		{"?format=csv&table=participants", export.ParticipantsTable, "text/csv; charset=utf-8", export.CSV},
		{"?format=parquet", export.DecisionsTable, "application/vnd.apache.parquet", export.Parquet},
		{"?format=PARQUET&table=participants", export.ParticipantsTable, "application/vnd.apache.parquet", export.Parquet},
	} {
		res, body := get("/v1/studies/stress-mrt/export" + tc.query)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %s", tc.query, res.StatusCode, body)
		}
		if ct := res.Header.Get("Content-Type"); ct != tc.ctype {
			t.Errorf("%s: Content-Type %q", tc.query, ct)
		}
		wantCD := `attachment; filename="stress-mrt_` + tc.table + tc.format.Ext() + `"`
		if cd := res.Header.Get("Content-Disposition"); cd != wantCD {
			t.Errorf("%s: Content-Disposition %q, want %q", tc.query, cd, wantCD)
		}
		var want bytes.Buffer
		if err := stress.Write(&want, tc.table, tc.format); err != nil {
			t.Fatal(err)
		}
		if tc.format == export.CSV && !bytes.Equal(body, want.Bytes()) {
			t.Errorf("%s: the API's CSV differs from Build's", tc.query)
		}
		if tc.format == export.Parquet {
			got, err := export.ReadParquet(bytes.NewReader(body), int64(len(body)))
			if err != nil {
				t.Fatalf("%s: %v", tc.query, err)
			}
			var a, b bytes.Buffer
			_ = export.WriteCSV(&a, got)
			_ = export.WriteCSV(&b, stress.Table(tc.table))
			if !bytes.Equal(a.Bytes(), b.Bytes()) {
				t.Errorf("%s: the API's Parquet differs from Build's table", tc.query)
			}
		}
	}
	res, body := get("/v1/studies/stress-mrt/export?table=codebook")
	var cb export.Codebook
	if res.StatusCode != http.StatusOK || json.Unmarshal(body, &cb) != nil || len(cb.Tables) != 3 {
		t.Errorf("codebook: %d %s", res.StatusCode, body)
	}
	for _, tc := range []struct {
		path  string
		code  int
		field string
	}{
		{"/v1/studies/stress-mrt/export?format=xlsx", http.StatusUnprocessableEntity, "format"},
		{"/v1/studies/stress-mrt/export?table=events", http.StatusUnprocessableEntity, "table"},
		{"/v1/studies/nope/export", http.StatusNotFound, "study"},
	} {
		res, body := get(tc.path)
		var p api.Problem
		if res.StatusCode != tc.code || res.Header.Get("Content-Type") != "application/problem+json" || json.Unmarshal(body, &p) != nil || p.Field != tc.field {
			t.Errorf("%s: %d %s %s", tc.path, res.StatusCode, res.Header.Get("Content-Type"), body)
		}
	}
}

// An export slower than the request timeout is a clear 503, not a store outage.
func TestExportAPITimeout(t *testing.T) {
	f := newFixture(t)
	srv := httptest.NewServer(api.New(f.eng, nil, api.Options{RequestTimeout: time.Nanosecond}))
	defer srv.Close()
	res, err := srv.Client().Get(srv.URL + "/v1/studies/stress-mrt/export")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var p api.Problem
	if err := json.NewDecoder(res.Body).Decode(&p); err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != http.StatusServiceUnavailable || p.Type != "urn:jitai:problem:export-timeout" || !strings.Contains(p.Detail, "jitai export --study stress-mrt") {
		t.Errorf("%d %+v", res.StatusCode, p)
	}
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

// golden compares got with the file, or rewrites it with -update.
func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		gl, wl := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
		for i := 0; i < len(gl) && i < len(wl); i++ {
			if gl[i] != wl[i] {
				t.Fatalf("%s differs at line %d:\ngot  %s\nwant %s\n(run go test -update if the change is intended)", path, i+1, gl[i], wl[i])
			}
		}
		t.Fatalf("%s differs in length: %d lines, want %d (run go test -update if the change is intended)", path, len(gl), len(wl))
	}
}

// checkValueTypes checks that every value of the tables is missing or of
// the Go type of its column's type: a column's type never bends to the
// values.
func checkValueTypes(t *testing.T, tss ...*export.Tables) {
	t.Helper()
	goType := map[export.Type]reflect.Type{export.Integer: reflect.TypeFor[int64](), export.Double: reflect.TypeFor[float64](),
		export.String: reflect.TypeFor[string](), export.Timestamp: reflect.TypeFor[time.Time]()}
	for _, ts := range tss {
		for _, table := range []*export.Table{ts.Decisions, ts.Participants} {
			for i, row := range table.Rows {
				if len(row) != len(table.Columns) {
					t.Fatalf("%s %s row %d has %d values for %d columns", ts.Study, table.Name, i, len(row), len(table.Columns))
				}
				for j, v := range row {
					if c := table.Columns[j]; v != nil && reflect.TypeOf(v) != goType[c.Type] {
						t.Errorf("%s %s row %d: %s is %s but holds a %T", ts.Study, table.Name, i, c.Name, c.Type, v)
					}
				}
			}
		}
	}
}

// localTimeHourAndWeekday: local_time is RFC 3339 with a numeric offset
// (never Z), the decision time in the participant's time zone, and
// local_hour and weekday are read from it.
func (x *exportEnv) localTimeHourAndWeekday(t *testing.T) {
	form := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?[+-]\d\d:\d\d$`)
	for _, ts := range []*export.Tables{x.stress, x.mood} {
		d := ts.Decisions
		zones := map[string]string{}
		for i := range ts.Participants.Rows {
			zones[ts.Participants.Value(i, "participant_id").(string)] = ts.Participants.Value(i, "timezone").(string)
		}
		for i := range d.Rows {
			lt, _ := d.Value(i, "local_time").(string)
			if !form.MatchString(lt) {
				t.Fatalf("%s row %d: local_time %q is not RFC 3339 with a numeric offset", ts.Study, i, lt)
			}
			loc, err := time.LoadLocation(zones[d.Value(i, "participant_id").(string)])
			if err != nil {
				t.Fatal(err)
			}
			want := d.Value(i, "time").(time.Time).In(loc)
			if got, err := time.Parse(time.RFC3339, lt); err != nil || !got.Equal(want) || got.Format("-07:00") != want.Format("-07:00") {
				t.Errorf("%s row %d: local_time %s, want the decision time %s in %s", ts.Study, i, lt, want.Format(time.RFC3339), loc)
			}
			if h, wd := d.Value(i, "local_hour"), d.Value(i, "weekday"); h != int64(want.Hour()) || wd != want.Weekday().String() {
				t.Errorf("%s row %d: local_hour %v, weekday %v; want %d, %s", ts.Study, i, h, wd, want.Hour(), want.Weekday())
			}
		}
	}
}

// engagementOneRowPerDeliveredDecision: the engagement table has a row for
// each decision with action deliver, in the decisions table's order, and a
// decision opened within the hour (opened_1h = 1) is opened there, no
// later than an hour after the decision.
func (x *exportEnv) engagementOneRowPerDeliveredDecision(t *testing.T) {
	d, e := x.stress.Decisions, x.stress.Engagement
	var want []string
	opened1h := map[string]bool{}
	for i := range d.Rows {
		if d.Value(i, "action") == trial.ActionDeliver {
			id := d.Value(i, "decision_id").(string)
			want = append(want, id)
			opened1h[id] = d.Value(i, "opened_1h") == int64(1)
		}
	}
	var got []string
	sawOpened := false
	for i := range e.Rows {
		id := e.Value(i, "decision_id").(string)
		got = append(got, id)
		if !opened1h[id] {
			continue
		}
		sawOpened = true
		at, _ := e.Value(i, "opened_at").(time.Time)
		if e.Value(i, "opened") != int64(1) || at.After(e.Value(i, "time").(time.Time).Add(time.Hour)) {
			t.Errorf("decision %s: opened_1h = 1, but opened %v at %v", id, e.Value(i, "opened"), e.Value(i, "opened_at"))
		}
	}
	if !slices.Equal(got, want) || len(want) == 0 || !sawOpened {
		t.Errorf("engagement rows %v, want the delivered decisions %v (with one opened within the hour)", got, want)
	}
}
