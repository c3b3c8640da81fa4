package export

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
	"time"
)

type testRow struct {
	name  string
	score *float64
	at    time.Time
	raw   any
}

// TestRegistry checks that a column is one definition: its name, type
// (from its getter's Go type), Parquet type, codebook entry and value.
func TestRegistry(t *testing.T) {
	r := newRegistry[*testRow]("things")
	add(r, "name", about{desc: "The name.", missing: never}, func(x *testRow) (string, bool) { return x.name, true })
	add(r, "score", about{unit: "points", desc: "The score.", missing: "when not scored"}, func(x *testRow) (float64, bool) {
		if x.score == nil {
			return 0, false
		}
		return *x.score, true
	})
	add(r, "at", about{unit: "UTC", desc: "When.", missing: never}, func(x *testRow) (time.Time, bool) { return x.at, true })
	// A second column asking for a name already taken gets a suffix.
	if got := add(r, "name", about{desc: "Length of the name.", missing: never}, func(x *testRow) (int64, bool) { return int64(len(x.name)), true }); got != "name_2" {
		t.Errorf("second name column is %s, want name_2", got)
	}
	addAs(r, "flag", Integer, about{levels: []string{"0 = false", "1 = true"}, desc: "A flag.", missing: "when not given"}, func(x *testRow) any { return x.raw })

	want := []Column{
		{Name: "name", Table: "things", Type: String, ParquetType: parquetTypeName(String), Description: "The name.", Missing: never, RClass: "character", PandasDtype: "string"},
		{Name: "score", Table: "things", Type: Double, ParquetType: parquetTypeName(Double), Unit: "points", Description: "The score.", Missing: "when not scored", RClass: "numeric", PandasDtype: "float64"},
		{Name: "at", Table: "things", Type: Timestamp, ParquetType: parquetTypeName(Timestamp), Unit: "UTC", Description: "When.", Missing: never, RClass: "POSIXct", PandasDtype: "datetime64[ns, UTC]"},
		{Name: "name_2", Table: "things", Type: Integer, ParquetType: parquetTypeName(Integer), Description: "Length of the name.", Missing: never, RClass: "integer", PandasDtype: "Int64"},
		{Name: "flag", Table: "things", Type: Integer, ParquetType: parquetTypeName(Integer), Levels: []string{"0 = false", "1 = true"}, Description: "A flag.", Missing: "when not given", RClass: "integer", PandasDtype: "Int64"},
	}
	if got := r.columns(); !reflect.DeepEqual(got, want) {
		t.Errorf("columns\n got %+v\nwant %+v", got, want)
	}

	two := 2.5
	at := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	tab := r.table([]*testRow{{name: "a", score: &two, at: at, raw: true}, {name: "bc", at: at, raw: "text"}, {name: "", at: at, raw: false}, {name: "NA", at: at, raw: 2.0}})
	wantRows := [][]any{{"a", 2.5, at, int64(1), int64(1)}, {"bc", nil, at, int64(2), nil}, {"", nil, at, int64(0), int64(0)}, {"NA", nil, at, int64(2), int64(2)}}
	if tab.Name != "things" || !reflect.DeepEqual(tab.Rows, wantRows) {
		t.Errorf("table %s rows %v, want %v", tab.Name, tab.Rows, wantRows)
	}
	var b bytes.Buffer
	if err := WriteCSV(&b, tab); err != nil {
		t.Fatal(err)
	}
	// Missing is NA; the empty string and the string NA are quoted.
	if want := "name,score,at,name_2,flag\na,2.5,2026-03-02T09:00:00Z,1,1\nbc,NA,2026-03-02T09:00:00Z,2,NA\n\"\",NA,2026-03-02T09:00:00Z,0,0\n\"NA\",NA,2026-03-02T09:00:00Z,2,2\n"; b.String() != want {
		t.Errorf("CSV\n%s\nwant\n%s", b.String(), want)
	}
}

// TestParquetRefusesAValueOfAnotherType checks that the Parquet writer
// never bends a column's type to a value (nor silently drops the value).
func TestParquetRefusesAValueOfAnotherType(t *testing.T) {
	tab := &Table{Name: "t", Columns: []Column{{Name: "n", Type: Integer}}, Rows: [][]any{{int64(1)}, {2.5}}}
	err := WriteParquet(&bytes.Buffer{}, tab)
	if err == nil || !strings.Contains(err.Error(), "column n is integer, but row 2 holds a float64") {
		t.Errorf("error %v", err)
	}
}
