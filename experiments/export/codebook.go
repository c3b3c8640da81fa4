package export

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
)

// Codebook describes every column of an export.
type Codebook struct {
	Study           string          `json:"study"`
	StudyName       string          `json:"study_name"`
	GeneratedAt     string          `json:"generated_at"`
	PolicyRevisions []string        `json:"policy_revisions"`
	Format          string          `json:"format,omitempty"`
	Conventions     []string        `json:"conventions"`
	Tables          []CodebookTable `json:"tables"`
}

// CodebookTable is one table of the codebook.
type CodebookTable struct {
	Name        string   `json:"name"`
	File        string   `json:"file,omitempty"`
	Description string   `json:"description"`
	Rows        int      `json:"rows"`
	Columns     []Column `json:"columns"`
	// R and Pandas read the table's CSV file with every column of its
	// type (see readers.go).
	R      string `json:"r"`
	Pandas string `json:"pandas"`
}

var tableDescriptions = map[string]string{
	DecisionsTable: "One row per (participant, decision point): participants in enrolment order, each participant's decisions in time order (ties by decision id), so a participant's rows are contiguous. " +
		"Columns: the decision, each factor's level, label, probability and draw (study.yaml order), each proximal outcome (study.yaml order), then the policy's input: history, ema_*, ctx_*, ctxev_*, assess_*, tailoring_* (each group sorted by name; the groups hold the variables seen in any record).",
	EngagementTable:   "One row per delivered decision (action deliver), in the order of the decisions table: whether the app reported it delivered, opened, completed or dismissed (engagement events that refer to the decision, at any time before the export), when it first did, and the participant's rating. Join to the decisions table by decision_id.",
	ParticipantsTable: "One row per participant in enrolment order: enrolment, stratum, between-person factor levels, counts of decisions and distal outcomes from assessments (first and last PHQ-9 / GAD-7 total, with their times).",
}

var conventions = []string{
	"Missing values are the unquoted field NA in CSV and nulls in Parquet; they are never written as 0. An empty string is the quoted field \"\" in CSV, so it differs from a missing value; a string that is NA is quoted (\"NA\"), but R and pandas read it as missing too. " +
		"Read the CSV with R's read.csv(na.strings = \"NA\", colClasses = ...) or pandas' read_csv(keep_default_na=False, na_values=[\"NA\"], dtype=...): each table's section gives both, generated from its columns' r_class and pandas_dtype.",
	"0/1 columns (availability, levels, flags) are integers: 1 means the level or state named in the column's levels.",
	"Times are RFC 3339 in UTC in CSV (microseconds when not zero) and TIMESTAMP(MICROS, UTC) in Parquet; local_time is RFC 3339 with the participant's numeric offset (+00:00, never Z), local_hour and weekday are read from it.",
	"Numbers are written in full precision: the shortest decimal text that reads back to the same double.",
	"Lists (reasons, tailoring lists) are joined with ';'.",
	"MRTAnalysis (wcls, emee): id = participant_id, treatment = a within-person factor's 0/1 column, rand_prob = its _prob column, availability = available; rows of a participant are contiguous and in time order. " +
		"MRTAnalysis computes a weight on every row, so first fill the _prob of unavailable rows (their weight is 0 whatever the value; in R: d$prompt_prob[d$available == 0] <- 0.5) and drop or fill rows whose outcome is missing.",
}

// Codebook returns the codebook of the tables. files maps a table name to
// its file name (optional); format names the file format (optional).
func (ts *Tables) Codebook(format Format, files map[string]string) *Codebook {
	cb := &Codebook{
		Study:           ts.Study,
		StudyName:       ts.StudyName,
		GeneratedAt:     ts.GeneratedAt.UTC().Format(time.RFC3339),
		PolicyRevisions: ts.PolicyRevisions,
		Format:          string(format),
		Conventions:     conventions,
	}
	if cb.PolicyRevisions == nil {
		cb.PolicyRevisions = []string{}
	}
	for _, t := range []*Table{ts.Decisions, ts.Participants, ts.Engagement} {
		desc := tableDescriptions[t.Name]
		if t.Name == DecisionsTable && ts.pluginNote != "" {
			desc += " " + ts.pluginNote
		}
		file := files[t.Name]
		csvFile := file
		if format != CSV || csvFile == "" {
			csvFile = t.Name + ".csv"
		}
		cb.Tables = append(cb.Tables, CodebookTable{Name: t.Name, File: file, Description: desc, Rows: len(t.Rows), Columns: t.Columns,
			R: rSnippet(t.Name, csvFile, t.Columns), Pandas: pandasSnippet(t.Name, csvFile, t.Columns)})
	}
	return cb
}

// WriteJSON writes the codebook as indented JSON.
func (cb *Codebook) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(cb); err != nil {
		return fmt.Errorf("writing codebook JSON: %w", err)
	}
	return nil
}

// WriteMarkdown writes the codebook as a Markdown document.
func (cb *Codebook) WriteMarkdown(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "# Codebook: %s\n\n", cb.Study)
	if cb.StudyName != "" {
		fmt.Fprintf(&b, "%s.\n\n", strings.TrimSuffix(cb.StudyName, "."))
	}
	fmt.Fprintf(&b, "- Exported at: %s\n", cb.GeneratedAt)
	if cb.Format != "" {
		fmt.Fprintf(&b, "- Format: %s\n", cb.Format)
	}
	fmt.Fprintf(&b, "- Policy revisions: %s\n\n", listOrNone(cb.PolicyRevisions))
	b.WriteString("## Conventions\n\n")
	for _, c := range cb.Conventions {
		fmt.Fprintf(&b, "- %s\n", c)
	}
	for _, t := range cb.Tables {
		fmt.Fprintf(&b, "\n## Table `%s`\n\n", t.Name)
		if t.File != "" {
			fmt.Fprintf(&b, "File: `%s`. ", t.File)
		}
		fmt.Fprintf(&b, "%d rows, %d columns.\n\n%s\n\n", t.Rows, len(t.Columns), t.Description)
		b.WriteString("| # | column | type | R class | pandas dtype | unit / levels | description | missing when |\n")
		b.WriteString("|---|---|---|---|---|---|---|---|\n")
		for i, c := range t.Columns {
			ul := c.Unit
			if r := c.Variable.describeRange(); r != "" {
				if ul != "" {
					ul += "; "
				}
				ul += r
			}
			if len(c.Levels) > 0 {
				if ul != "" {
					ul += "; "
				}
				ul += strings.Join(c.Levels, ", ")
			}
			fmt.Fprintf(&b, "| %d | `%s` | %s | %s | %s | %s | %s | %s |\n", i+1, c.Name, c.Type, c.RClass, c.PandasDtype, cell(ul), cell(c.Description), cell(c.Missing))
		}
		fmt.Fprintf(&b, "\nReading the CSV in R:\n\n```r\n%s```\n\nIn Python with pandas:\n\n```python\n%s```\n", t.R, t.Pandas)
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return fmt.Errorf("writing codebook Markdown: %w", err)
	}
	return nil
}

// describeRange is a declared number's or integer's range in words, e.g.
// "range 0 to 10" or "at least 0"; "" if none is declared (or v is nil).
func (v *Variable) describeRange() string {
	switch {
	case v == nil:
		return ""
	case v.Min != nil && v.Max != nil:
		return fmt.Sprintf("range %s to %s", fmtFloat(*v.Min), fmtFloat(*v.Max))
	case v.Min != nil:
		return "at least " + fmtFloat(*v.Min)
	case v.Max != nil:
		return "at most " + fmtFloat(*v.Max)
	}
	return ""
}

func listOrNone(l []string) string {
	if len(l) == 0 {
		return "(none: no decisions)"
	}
	return "`" + strings.Join(l, "`, `") + "`"
}

// cell escapes text for a Markdown table cell.
func cell(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	return strings.ReplaceAll(s, "\n", " ")
}
