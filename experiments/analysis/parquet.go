package analysis

import (
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/jitai/jitai/experiments/export"
)

// ReadFile reads a table from a CSV file or, when its name ends in
// .parquet, from a Parquet file as `jitai export --format parquet` writes
// it; only the named columns are loaded, as ReadCSV loads them. Parquet
// nulls are missing values.
func ReadFile(path string, numeric, text []string) (*Table, error) {
	if !strings.HasSuffix(strings.ToLower(path), ".parquet") {
		return ReadCSVFile(path, numeric, text)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	src, err := export.ReadParquet(f, st.Size())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	t := NewTable(path, len(src.Rows))
	for _, c := range src.Columns {
		t.addColumn(c.Name)
	}
	for _, col := range numeric {
		j := src.Index(col)
		if j < 0 {
			return nil, t.missingColumn(col)
		}
		v := make([]float64, len(src.Rows))
		for i, row := range src.Rows {
			switch x := row[j].(type) {
			case nil:
				v[i] = math.NaN()
			case int64:
				v[i] = float64(x)
			case float64:
				v[i] = x
			default:
				return nil, fmt.Errorf("%s: row %d: column %q is %s, not a number", path, i+1, col, src.Columns[j].Type)
			}
		}
		t.num[col] = v
	}
	for _, col := range text {
		j := src.Index(col)
		if j < 0 {
			return nil, t.missingColumn(col)
		}
		v := make([]string, len(src.Rows))
		for i, row := range src.Rows {
			switch x := row[j].(type) {
			case string:
				v[i] = x
			case int64:
				v[i] = strconv.FormatInt(x, 10)
			case float64:
				v[i] = strconv.FormatFloat(x, 'g', -1, 64)
			case time.Time:
				v[i] = x.Format(time.RFC3339Nano)
			}
		}
		t.text[col] = v
	}
	// Row i is the file's row i+1: error messages name "line" i+2 for CSV;
	// for Parquet they name the row number.
	t.lines = make([]int, len(src.Rows))
	for i := range t.lines {
		t.lines[i] = i + 1
	}
	return t, nil
}
