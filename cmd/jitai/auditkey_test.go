package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jitai/jitai/engine/auth"
)

// TestAuditPseudonymAcrossRestarts: jitai serve with tokens names a
// withdrawn participant in the audit log by a keyed pseudonym, not the
// unkeyed SHA-256 of study and id, and the same one after a restart over
// the same data (the key is kept in the store).
func TestAuditPseudonymAcrossRestarts(t *testing.T) {
	data := t.TempDir()
	admin, _, err := auth.Create(filepath.Join(data, tokenFileName), "admin", auth.RoleAdmin, nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	hc := newHTTPClient()
	send := func(srv *server, method, path, body string) int {
		t.Helper()
		req, _ := http.NewRequest(method, srv.base+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+admin)
		if body != "" {
			req.Header.Set("Content-Type", "application/json")
		}
		res, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	const p = "p-0001"
	for run := range 2 {
		srv := startServer(t, data, "--auth", "token")
		if run == 0 {
			if st := send(srv, "POST", "/v1/studies/stress-mrt/participants", `{"participant_id":"`+p+`","timezone":"Europe/London"}`); st != http.StatusCreated {
				t.Fatalf("enrol: %d", st)
			}
		}
		if st := send(srv, "POST", "/v1/studies/stress-mrt/participants/"+p+"/withdraw", ""); st != http.StatusOK {
			t.Fatalf("withdraw (run %d): %d", run, st)
		}
		srv.stop()
	}
	f, err := os.Open(filepath.Join(data, auditFileName))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var names []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e auth.AuditEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("audit line %q: %v", sc.Text(), err)
		}
		if e.Action == "withdraw" {
			name, _ := e.Detail["participant_pseudonym"].(string)
			names = append(names, name)
		}
	}
	if len(names) != 2 {
		t.Fatalf("%d withdraw entries, want 2: %q", len(names), names)
	}
	unkeyed := sha256.Sum256([]byte("stress-mrt\x00" + p))
	if len(names[0]) != 64 || names[0] == hex.EncodeToString(unkeyed[:]) || strings.Contains(names[0], p) {
		t.Errorf("pseudonym %q is not a keyed hash", names[0])
	}
	if names[0] != names[1] {
		t.Errorf("the pseudonym changed across a restart: %q, %q", names[0], names[1])
	}
}
