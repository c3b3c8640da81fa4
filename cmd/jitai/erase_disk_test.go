package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestEraseLeavesNoBytesOnDisk: the real server on the embedded store. A
// participant whose self-reports carry marker strings is erased over the
// API; after a clean shutdown no file of the data folder (the database,
// its write-ahead log, the audit log, anything else) and no line of the
// server's log holds the participant's id or a marker, while another
// participant's data is still there.
func TestEraseLeavesNoBytesOnDisk(t *testing.T) {
	data := t.TempDir()
	srv := startServer(t, data)
	hc := newHTTPClient()
	const gone, kept, marker = "erase-me-7731", "keep-me-4410", "MARKER-SELFREPORT-5521"
	base := srv.base + "/v1/studies/" + study + "/participants"
	for _, p := range []string{gone, kept} {
		if r, err := do(hc, "POST", base, []byte(`{"participant_id":"`+p+`","timezone":"Europe/London"}`), ""); err != nil || r.status != 201 {
			t.Fatalf("enrol %s: %v %d %s", p, err, r.status, r.body)
		}
		now := time.Now().UTC().Format(time.RFC3339Nano)
		events := `{"events":[{"id":"e1","type":"context","time":"` + now + `","data":{"note":"` + marker + `-` + p + `"}},` +
			`{"id":"e2","type":"ema","time":"` + now + `","data":{"stress":7,"mood":3}}]}`
		if r, err := do(hc, "POST", base+"/"+p+"/events", []byte(events), ""); err != nil || r.status != 202 {
			t.Fatalf("events of %s: %v %d %s", p, err, r.status, r.body)
		}
		for i, later := range []time.Duration{time.Minute, 3 * time.Hour} {
			at := time.Now().UTC().Add(later).Format(time.RFC3339)
			body := `{"decision_point":"on_demand","time":"` + at + `","context":{"driving":false}}`
			if r, err := do(hc, "POST", base+"/"+p+"/decisions", []byte(body), p+"-k"+string(rune('0'+i))); err != nil || r.status != 200 {
				t.Fatalf("decision of %s: %v %d %s", p, err, r.status, r.body)
			}
		}
	}
	r, err := do(hc, "DELETE", base+"/"+gone, nil, "")
	if err != nil || r.status != 200 {
		t.Fatalf("erase: %v %d %s", err, r.status, r.body)
	}
	if r, _ := do(hc, "GET", base+"/"+gone, nil, ""); r.status != 404 {
		t.Fatalf("the erased participant still answers %d", r.status)
	}
	// While the server runs (the write-ahead log is there), then after a
	// clean shutdown.
	checkNoBytes(t, data, []string{gone, marker + "-" + gone}, kept)
	srv.stop()
	checkNoBytes(t, data, []string{gone, marker + "-" + gone}, kept)
	logs := srv.logs.String()
	for _, s := range []string{gone, marker} {
		if strings.Contains(logs, s) {
			t.Errorf("the server log names %q", s)
		}
	}
}

// checkNoBytes fails when a file below dir holds one of erased, or when
// jitai.db no longer holds kept.
func checkNoBytes(t *testing.T, dir string, erased []string, kept string) {
	t.Helper()
	keptHits := 0
	var files []string
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files = append(files, fmt.Sprintf("%s (%d bytes)", filepath.Base(path), len(b)))
		for _, s := range erased {
			if n := bytes.Count(b, []byte(s)); n > 0 {
				t.Errorf("%s holds %q %d times after the erasure", filepath.Base(path), s, n)
			}
		}
		if filepath.Base(path) == "jitai.db" {
			keptHits += bytes.Count(b, []byte(kept))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if keptHits == 0 {
		t.Fatalf("the participant not erased is gone from jitai.db too (files %v)", files)
	}
	t.Logf("files checked: %v", files)
}
