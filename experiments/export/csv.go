package export

import (
	"bufio"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// timeLayout is RFC 3339 in UTC with microseconds when they are not zero.
const timeLayout = "2006-01-02T15:04:05.999999Z07:00"

// WriteCSV writes t as CSV: RFC 4180 quoting, a header row of column names,
// LF line ends, UTF-8. A missing value is the unquoted field NA, and an
// empty string the quoted field "" (so they differ: R's read.csv with
// na.strings = "NA" and pandas' read_csv with keep_default_na=False,
// na_values=["NA"] read them as NA and ""); a string that is NA is quoted.
// Numbers are written in full precision (the shortest text that reads
// back to the same float64); timestamps as RFC 3339 in UTC.
//
// Rows are appended to one reused line buffer with strconv's and time's
// Append functions, so writing allocates nothing per value.
func WriteCSV(w io.Writer, t *Table) error {
	bw := bufio.NewWriterSize(w, 64<<10)
	line := make([]byte, 0, 1024)
	for i, c := range t.Columns {
		if i > 0 {
			line = append(line, ',')
		}
		line = appendField(line, c.Name)
	}
	line = append(line, '\n')
	if _, err := bw.Write(line); err != nil {
		return fmt.Errorf("writing %s CSV: %w", t.Name, err)
	}
	for _, row := range t.Rows {
		line = line[:0]
		for i, v := range row {
			if i > 0 {
				line = append(line, ',')
			}
			line = appendValue(line, v)
		}
		line = append(line, '\n')
		if _, err := bw.Write(line); err != nil {
			return fmt.Errorf("writing %s CSV: %w", t.Name, err)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("writing %s CSV: %w", t.Name, err)
	}
	return nil
}

// appendValue appends a value as a CSV field.
func appendValue(b []byte, v any) []byte {
	switch x := v.(type) {
	case nil:
		return append(b, missingField...)
	case string:
		return appendField(b, x)
	case int64:
		return strconv.AppendInt(b, x, 10)
	case float64:
		return strconv.AppendFloat(b, x, 'g', -1, 64)
	case time.Time:
		return x.UTC().AppendFormat(b, timeLayout)
	}
	return appendField(b, fmt.Sprint(v))
}

// missingField is a missing value in CSV.
const missingField = "NA"

// appendField appends s as a CSV field, quoted when it must be (as
// encoding/csv does: a field holding a comma, quote, CR or LF, starting
// with a space, or the text \.; and the empty string and NA, which would
// read as missing), with its quotes doubled.
func appendField(b []byte, s string) []byte {
	if !needsQuotes(s) {
		return append(b, s...)
	}
	b = append(b, '"')
	for {
		i := strings.IndexByte(s, '"')
		if i < 0 {
			break
		}
		b = append(b, s[:i+1]...)
		b = append(b, '"')
		s = s[i+1:]
	}
	b = append(b, s...)
	return append(b, '"')
}

func needsQuotes(s string) bool {
	if s == "" || s == missingField || s == `\.` || strings.ContainsAny(s, ",\"\r\n") {
		return true
	}
	r, _ := utf8.DecodeRuneInString(s)
	return unicode.IsSpace(r)
}

// FormatValue is a value's text in CSV, before quoting: NA when missing.
func FormatValue(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	return string(appendValue(nil, v))
}
