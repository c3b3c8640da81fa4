package export

import (
	"bufio"
	"encoding/csv"
	"fmt"
	"io"
	"strconv"
	"time"
)

// timeLayout is RFC 3339 in UTC with microseconds when they are not zero.
const timeLayout = "2006-01-02T15:04:05.999999Z07:00"

// WriteCSV writes t as CSV: RFC 4180 quoting, a header row of column names,
// LF line ends, UTF-8. Missing values are empty fields; numbers are written
// in full precision (the shortest text that reads back to the same
// float64); timestamps as RFC 3339 in UTC.
func WriteCSV(w io.Writer, t *Table) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	cw := csv.NewWriter(bw)
	header := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		header[i] = c.Name
	}
	if err := cw.Write(header); err != nil {
		return fmt.Errorf("writing %s CSV: %w", t.Name, err)
	}
	rec := make([]string, len(t.Columns))
	for _, row := range t.Rows {
		for i, v := range row {
			rec[i] = FormatValue(v)
		}
		if err := cw.Write(rec); err != nil {
			return fmt.Errorf("writing %s CSV: %w", t.Name, err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("writing %s CSV: %w", t.Name, err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("writing %s CSV: %w", t.Name, err)
	}
	return nil
}

// FormatValue is a value as written to CSV: "" when missing.
func FormatValue(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		return fmtFloat(x)
	case time.Time:
		return x.UTC().Format(timeLayout)
	}
	return fmt.Sprint(v)
}
