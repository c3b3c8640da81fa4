package api_test

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"testing"
)

// TestExportArchive: table=all answers one zip archive with every table
// and the codebook (Markdown and JSON); each table in it is byte for byte
// the table the API gives alone, the codebook names the archive's files,
// and the same data give the same archive.
func TestExportArchive(t *testing.T) {
	e := newEnv(t, quietLogs)
	const study = "stress-mrt"
	for _, p := range []string{"a1", "a2"} {
		e.enrol(study, p)
	}
	for _, p := range []string{"a1", "a2"} {
		for h := 9; h < 15; h += 2 {
			e.decide(study, p, "on_demand", at(0, h, 30), nil)
		}
	}
	base := "/v1/studies/" + study + "/export?format=csv"
	get := func(q string) []byte {
		t.Helper()
		r := e.do(req{Method: "GET", Path: base + q})
		if r.Status != http.StatusOK {
			t.Fatalf("GET %s: %d %s", q, r.Status, r.Body)
		}
		return r.Body
	}
	archive := get("&table=all")
	if !bytes.Equal(archive, get("&table=all")) {
		t.Fatal("two archives of the same data differ")
	}
	zr, err := zip.NewReader(bytes.NewReader(archive), int64(len(archive)))
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	var names []string
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		files[f.Name] = b
		names = append(names, f.Name)
	}
	want := []string{study + "_decisions.csv", study + "_participants.csv", study + "_engagement.csv", study + "_codebook.md", study + "_codebook.json"}
	if !slices.Equal(names, want) {
		t.Fatalf("archive holds %v, want %v", names, want)
	}
	for _, table := range []string{"decisions", "participants", "engagement"} {
		if !bytes.Equal(files[study+"_"+table+".csv"], get("&table="+table)) {
			t.Errorf("the archive's %s table differs from the API's", table)
		}
	}
	var cb struct {
		Tables []struct {
			File string `json:"file"`
		} `json:"tables"`
	}
	if err := json.Unmarshal(files[study+"_codebook.json"], &cb); err != nil {
		t.Fatal(err)
	}
	var named []string
	for _, tb := range cb.Tables {
		named = append(named, tb.File)
	}
	if !slices.Contains(named, study+"_decisions.csv") || !slices.Contains(named, study+"_engagement.csv") {
		t.Fatalf("the codebook names %v", named)
	}
	if r := e.do(req{Method: "GET", Path: base + "&table=everything"}); r.Status != http.StatusUnprocessableEntity {
		t.Fatalf("an unknown table: %d", r.Status)
	}
}
