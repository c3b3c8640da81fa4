package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// studyRevision reads the serving revision of a study from the server.
func studyRevision(t *testing.T, s *server, study string) (string, string) {
	t.Helper()
	r, err := do(newHTTPClient(), "GET", s.base+"/v1/studies/"+study, nil, "")
	if err != nil || r.status != 200 {
		t.Fatalf("GET study: %v %d %s", err, r.status, r.body)
	}
	var doc struct {
		Revision string `json:"policy_revision"`
		Reload   struct {
			LastError *struct {
				Errors []string `json:"errors"`
			} `json:"last_error"`
		} `json:"reload"`
	}
	if err := json.Unmarshal(r.body, &doc); err != nil {
		t.Fatal(err)
	}
	lastErr := ""
	if doc.Reload.LastError != nil && len(doc.Reload.LastError.Errors) > 0 {
		lastErr = doc.Reload.LastError.Errors[0]
	}
	return doc.Revision, lastErr
}

// waitFor polls cond for up to 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func appendLine(t *testing.T, path, line string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, []byte(line+"\n")...), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// TestServeWatchesStudies: jitai serve reloads a study whose policy file
// changes, keeps the last good version when the change is broken (and
// says so in GET /v1/studies/{study}).
func TestServeWatchesStudies(t *testing.T) {
	dir := copyStudy(t, "stress-mrt", func(_, text string) (string, bool) { return text, true })
	s := startServer(t, t.TempDir(), "--studies", filepath.Dir(dir), "--watch-interval", "50ms")
	defer s.stop()
	r0, _ := studyRevision(t, s, "stress-mrt")
	policy := filepath.Join(dir, "policy", "policy.rego")
	appendLine(t, policy, "# a comment: a new revision")
	var r1 string
	waitFor(t, "the watcher to reload the changed policy", func() bool { r1, _ = studyRevision(t, s, "stress-mrt"); return r1 != r0 })
	appendLine(t, policy, "broken if {")
	var lastErr string
	waitFor(t, "the broken version to be refused", func() bool { _, lastErr = studyRevision(t, s, "stress-mrt"); return lastErr != "" })
	if r, _ := studyRevision(t, s, "stress-mrt"); r != r1 {
		t.Errorf("a broken version changed the serving revision")
	}
	if want := "stress-mrt/policy/policy.rego:"; len(lastErr) < len(want) || lastErr[:len(want)] != want {
		t.Errorf("last error %q does not name the file and line", lastErr)
	}
}

// TestServeReloadsOnSIGHUP: with watching off, a change is picked up only
// on SIGHUP.
func TestServeReloadsOnSIGHUP(t *testing.T) {
	dir := copyStudy(t, "stress-mrt", func(_, text string) (string, bool) { return text, true })
	s := startServer(t, t.TempDir(), "--studies", filepath.Dir(dir), "--watch-interval", "off")
	defer s.stop()
	r0, _ := studyRevision(t, s, "stress-mrt")
	appendLine(t, filepath.Join(dir, "policy", "policy.rego"), "# a comment: a new revision")
	time.Sleep(300 * time.Millisecond)
	if r, _ := studyRevision(t, s, "stress-mrt"); r != r0 {
		t.Fatal("reloaded without SIGHUP while watching is off")
	}
	if err := s.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "SIGHUP to reload the study", func() bool { r, _ := studyRevision(t, s, "stress-mrt"); return r != r0 })
}

// TestReloadRefusesAVersionThatFailsItsTests: the exact change a designer
// made (a second definition of need that conflicts with the first) passes
// parsing and compilation, but the study's own Rego tests fail on it: the
// reload refuses it, names the failing test, and the last good version
// keeps serving.
func TestReloadRefusesAVersionThatFailsItsTests(t *testing.T) {
	dir := copyStudy(t, "stress-mrt", func(_, text string) (string, bool) { return text, true })
	s := startServer(t, t.TempDir(), "--studies", filepath.Dir(dir), "--watch-interval", "50ms")
	defer s.stop()
	r0, _ := studyRevision(t, s, "stress-mrt")
	appendLine(t, filepath.Join(dir, "policy", "policy.rego"), `need := "low_mood" if input.state.ema.mood.value <= 4`)
	var lastErr string
	waitFor(t, "the conflicting version to be refused", func() bool { _, lastErr = studyRevision(t, s, "stress-mrt"); return lastErr != "" })
	if r, _ := studyRevision(t, s, "stress-mrt"); r != r0 {
		t.Errorf("a version that fails its own tests replaced the serving revision")
	}
	if !strings.Contains(lastErr, "policy_test.rego:") || !strings.Contains(lastErr, "eval_conflict_error") {
		t.Errorf("last error %q does not name the failing test and the conflict", lastErr)
	}
}
