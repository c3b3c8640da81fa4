package export

import (
	"archive/zip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Format is a file format of the tables.
type Format string

// Formats.
const (
	CSV     Format = "csv"
	Parquet Format = "parquet"
)

// ParseFormat parses a format name (csv or parquet, any case).
func ParseFormat(s string) (Format, error) {
	switch f := Format(strings.ToLower(strings.TrimSpace(s))); f {
	case CSV, Parquet:
		return f, nil
	}
	return "", fmt.Errorf("format %q: use csv or parquet", s)
}

// ContentType is the media type of the format.
func (f Format) ContentType() string {
	if f == Parquet {
		return "application/vnd.apache.parquet"
	}
	return "text/csv; charset=utf-8"
}

// Ext is the file extension of the format, with its dot.
func (f Format) Ext() string { return "." + string(f) }

// Write writes the named table (decisions, participants or engagement) in
// format f.
func (ts *Tables) Write(w io.Writer, table string, f Format) error {
	t := ts.Table(table)
	if t == nil {
		return fmt.Errorf("no table %q: use decisions, participants or engagement", table)
	}
	if f == Parquet {
		return WriteParquet(w, t)
	}
	return WriteCSV(w, t)
}

// Paths are the files of an export written to out.
type Paths struct {
	Decisions    string `json:"decisions"`
	Participants string `json:"participants"`
	Engagement   string `json:"engagement"`
	CodebookMD   string `json:"codebook_md"`
	CodebookJSON string `json:"codebook_json"`
}

// PathsFor returns where WriteFiles puts an export to out: the decisions
// table at out, the participants table at out less its extension plus
// "_participants" and the format's extension, the engagement table likewise
// with "_engagement", and the codebook at
// out + ".codebook.md" and out + ".codebook.json".
func PathsFor(out string, f Format) Paths {
	base := strings.TrimSuffix(out, filepath.Ext(out))
	return Paths{
		Decisions:    out,
		Participants: base + "_participants" + f.Ext(),
		Engagement:   base + "_engagement" + f.Ext(),
		CodebookMD:   out + ".codebook.md",
		CodebookJSON: out + ".codebook.json",
	}
}

// WriteFiles writes the tables in format f and the codebook (Markdown and
// JSON) next to out (see PathsFor). Each file is written to a temporary
// file in the same folder and renamed into place, so a failed export never
// leaves a partial file.
func WriteFiles(ts *Tables, f Format, out string) (Paths, error) {
	p := PathsFor(out, f)
	files := map[string]string{DecisionsTable: filepath.Base(p.Decisions), ParticipantsTable: filepath.Base(p.Participants), EngagementTable: filepath.Base(p.Engagement)}
	cb := ts.Codebook(f, files)
	steps := []struct {
		path  string
		write func(io.Writer) error
	}{
		{p.Decisions, func(w io.Writer) error { return ts.Write(w, DecisionsTable, f) }},
		{p.Participants, func(w io.Writer) error { return ts.Write(w, ParticipantsTable, f) }},
		{p.Engagement, func(w io.Writer) error { return ts.Write(w, EngagementTable, f) }},
		{p.CodebookMD, cb.WriteMarkdown},
		{p.CodebookJSON, cb.WriteJSON},
	}
	for _, s := range steps {
		if err := writeAtomic(s.path, s.write); err != nil {
			return p, err
		}
	}
	return p, nil
}

func writeAtomic(path string, write func(io.Writer) error) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if err = write(tmp); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err = os.Chmod(tmp.Name(), 0o640); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// ArchiveTable is the table name that asks for every table and the codebook
// in one zip archive (GET .../export?table=all).
const ArchiveTable = "all"

// WriteArchive writes every table in format f and the codebook (Markdown
// and JSON, naming the tables' files) as one zip archive, its files named
// prefix_decisions.csv, prefix_participants.csv, prefix_engagement.csv,
// prefix_codebook.md and prefix_codebook.json (or .parquet). The entries
// carry a fixed time, so the same tables give the same bytes.
func WriteArchive(w io.Writer, ts *Tables, f Format, prefix string) error {
	files := map[string]string{}
	for _, t := range []string{DecisionsTable, ParticipantsTable, EngagementTable} {
		files[t] = prefix + "_" + t + f.Ext()
	}
	cb := ts.Codebook(f, files)
	zw := zip.NewWriter(w)
	entries := []struct {
		name  string
		write func(io.Writer) error
	}{
		{files[DecisionsTable], func(w io.Writer) error { return ts.Write(w, DecisionsTable, f) }},
		{files[ParticipantsTable], func(w io.Writer) error { return ts.Write(w, ParticipantsTable, f) }},
		{files[EngagementTable], func(w io.Writer) error { return ts.Write(w, EngagementTable, f) }},
		{prefix + "_codebook.md", cb.WriteMarkdown},
		{prefix + "_codebook.json", cb.WriteJSON},
	}
	for _, e := range entries {
		fw, err := zw.CreateHeader(&zip.FileHeader{Name: e.name, Method: zip.Deflate, Modified: archiveTime})
		if err != nil {
			return err
		}
		if err := e.write(fw); err != nil {
			return fmt.Errorf("%s: %w", e.name, err)
		}
	}
	return zw.Close()
}

// archiveTime is the time of every archive entry (the zip format's epoch).
var archiveTime = time.Date(1980, 1, 1, 0, 0, 0, 0, time.UTC)
