package export

import (
	"strconv"
	"strings"
)

// How R and pandas read a table's CSV file with every column of its type,
// generated from the columns into the codebook (r and pandas of each
// table; r_class and pandas_dtype of each column). Both take NA, and only
// NA, as missing, so that an empty string ("") stays an empty string.
// Integer columns become R integer and pandas' nullable Int64 (a missing
// value does not turn them into doubles); timestamps are read as text and
// converted, as neither reader parses RFC 3339 with a colClasses or dtype.

// Layout of CSV timestamps for R's as.POSIXct (%OS reads the microseconds).
const rTimeFormat = "%Y-%m-%dT%H:%M:%OSZ"

// rClass is a column's R class after the codebook's R snippet ran.
func rClass(t Type) string {
	switch t {
	case Integer:
		return "integer"
	case Double:
		return "numeric"
	case Timestamp:
		return "POSIXct"
	}
	return "character"
}

// pandasDtype is a column's pandas dtype after the codebook's pandas
// snippet ran.
func pandasDtype(t Type) string {
	switch t {
	case Integer:
		return "Int64"
	case Double:
		return "float64"
	case Timestamp:
		return "datetime64[ns, UTC]"
	}
	return "string"
}

// readAs is the class or dtype a column is read as: the final one, or
// text for a timestamp, converted afterwards.
func readAs(c Column, final, text string) string {
	if c.Type == Timestamp {
		return text
	}
	return final
}

// timestampNames are the quoted names of the timestamp columns.
func timestampNames(cols []Column) []string {
	var ts []string
	for _, c := range cols {
		if c.Type == Timestamp {
			ts = append(ts, strconv.Quote(c.Name))
		}
	}
	return ts
}

// rSnippet is R code that reads the table's CSV file into a data frame
// named after the table.
func rSnippet(table, file string, cols []Column) string {
	var b strings.Builder
	b.WriteString(table + " <- read.csv(" + strconv.Quote(file) + ", na.strings = \"NA\", encoding = \"UTF-8\", check.names = FALSE,\n  colClasses = c(\n")
	for i, c := range cols {
		b.WriteString("    " + strconv.Quote(c.Name) + " = " + strconv.Quote(readAs(c, c.RClass, "character")))
		if i < len(cols)-1 {
			b.WriteString(",")
		}
		b.WriteString("\n")
	}
	b.WriteString("  ))\n")
	if ts := timestampNames(cols); len(ts) > 0 {
		b.WriteString("for (col in c(" + strings.Join(ts, ", ") + ")) {\n")
		b.WriteString("  " + table + "[[col]] <- as.POSIXct(" + table + "[[col]], tz = \"UTC\", format = " + strconv.Quote(rTimeFormat) + ")\n}\n")
	}
	return b.String()
}

// pandasSnippet is Python code that reads the table's CSV file into a
// pandas DataFrame named after the table.
func pandasSnippet(table, file string, cols []Column) string {
	var b strings.Builder
	b.WriteString("import pandas as pd\n\n")
	b.WriteString(table + " = pd.read_csv(\n    " + strconv.Quote(file) + ",\n    keep_default_na=False,\n    na_values=[\"NA\"],\n    dtype={\n")
	for _, c := range cols {
		b.WriteString("        " + strconv.Quote(c.Name) + ": " + strconv.Quote(readAs(c, c.PandasDtype, "string")) + ",\n")
	}
	b.WriteString("    },\n)\n")
	if ts := timestampNames(cols); len(ts) > 0 {
		// pandas 2 needs format="ISO8601" for times with and without
		// microseconds in one column; pandas 1 reads them without it.
		b.WriteString("iso = {\"format\": \"ISO8601\"} if int(pd.__version__.split(\".\")[0]) >= 2 else {}\n")
		b.WriteString("for col in [" + strings.Join(ts, ", ") + "]:\n")
		b.WriteString("    " + table + "[col] = pd.to_datetime(" + table + "[col], utc=True, **iso)\n")
	}
	return b.String()
}
