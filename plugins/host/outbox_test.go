package host_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jitai/jitai/engine/decision"
	"github.com/jitai/jitai/policies/policytest"

	"go.uber.org/zap"

	"github.com/jitai/jitai/engine"
	"github.com/jitai/jitai/engine/api"
	"github.com/jitai/jitai/plugins/host"
	"github.com/jitai/jitai/plugins/internal/filelock"
)

// spoolNotification writes a pending notification into an outbox's spool
// as an earlier run would have left it: unclaimed (owner "") or claimed by
// the outbox owner.
func spoolNotification(t *testing.T, outbox, owner, id, participant string, attempts int) {
	t.Helper()
	sum := sha256.Sum256([]byte(id))
	name := hex.EncodeToString(sum[:16]) + ".json"
	if owner != "" {
		name = hex.EncodeToString(sum[:16]) + "." + owner + ".json"
	}
	pd := map[string]any{
		"notification": engine.Notification{ID: id, Decision: decision.PluginDecision{Study: "alerts", Participant: participant, DecisionID: strings.TrimSuffix(id, "/alerts"), Time: time.Now()}, Action: "safety"},
		"attempts":     attempts,
		"enqueued":     time.Now().UTC(),
	}
	raw, err := json.Marshal(pd)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(outbox, "spool"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(outbox, "spool", name), raw, 0o600); err != nil {
		t.Fatal(err)
	}
}

// deliveries counts the test notifier's deliveries per notification id.
func deliveries(t *testing.T, notified string) map[string]int {
	t.Helper()
	n := map[string]int{}
	for _, l := range readJSONL(t, notified) {
		n[l["id"].(string)]++
	}
	return n
}

// TestReloadDeliversEachPendingNotificationOnce: a hot reload starts the
// new study version's outbox while the old one is still delivering the
// same spool. Each pending notification must be delivered by one of them,
// not by both; what the old one has not delivered when it is closed is
// handed over to the new one.
func TestReloadDeliversEachPendingNotificationOnce(t *testing.T) {
	exe, sum := testPlugin(t)
	data := t.TempDir()
	outbox := filepath.Join(data, "alerts", "alerts.outbox")
	const n = 12
	for i := range n {
		spoolNotification(t, outbox, "", fmt.Sprintf("d-%d/alerts", i), "p1", 1)
	}
	opts := host.Options{DataDir: data, OutboxRescan: 50 * time.Millisecond}
	yaml := studyYAML("alerts", "plugins:\n"+pluginYAML("alerts", "notifier", exe, sum, "config: {fail_notify: 0, notify_sleep: 40ms}"))
	old, err := host.Start(policytest.WriteStudy(t, filepath.Join(t.TempDir(), "alerts"), yaml, safetyPolicy), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Close()
	next, err := host.Start(policytest.WriteStudy(t, filepath.Join(t.TempDir(), "alerts"), yaml, safetyPolicy), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer next.Close()
	notified := filepath.Join(data, "alerts", "alerts", "notified.jsonl")
	waitFor(t, func() bool { return len(deliveries(t, notified)) >= n/3 })
	if err := old.Close(); err != nil { // retired: hands over what it has left
		t.Fatal(err)
	}
	waitFor(t, func() bool { return len(deliveries(t, notified)) == n })
	// Closed, the outbox delivers nothing more: what the file holds now is
	// all there will be.
	if err := next.Close(); err != nil {
		t.Fatal(err)
	}
	got := deliveries(t, notified)
	extra := 0
	for id, k := range got {
		extra += k - 1
		if k > 1 {
			t.Logf("%s delivered %d times", id, k)
		}
	}
	// A delivery in flight when the old outbox closes can be cut off after
	// the notifier acted (at least once): at most one repeat.
	if len(got) != n || extra > 1 {
		t.Errorf("%d notifications delivered %d extra times; want all %d, each once (one repeat at most)", len(got), extra, n)
	}
	if left, _ := filepath.Glob(filepath.Join(outbox, "spool", "*")); len(left) != 0 {
		t.Errorf("spool after every delivery: %v", left)
	}
}

// TestClaimsOfACrashedOutboxAreTakenOver: a spool file claimed by an
// outbox whose process died (its lock is free) is delivered at the next
// start; one claimed by a live outbox is left alone until it lets go.
func TestClaimsOfACrashedOutboxAreTakenOver(t *testing.T) {
	exe, sum := testPlugin(t)
	data := t.TempDir()
	outbox := filepath.Join(data, "alerts", "alerts.outbox")
	spoolNotification(t, outbox, "0123456789abcdef", "d-crashed/alerts", "p1", 2)
	spoolNotification(t, outbox, "fedcba9876543210", "d-held/alerts", "p2", 0)
	if err := os.MkdirAll(filepath.Join(outbox, "owners"), 0o700); err != nil {
		t.Fatal(err)
	}
	live, err := filelock.TryLock(filepath.Join(outbox, "owners", "fedcba9876543210.lock"))
	if err != nil {
		t.Fatal(err)
	}
	defer live.Unlock()
	opts := host.Options{DataDir: data, OutboxRescan: 50 * time.Millisecond}
	set, err := host.Start(policytest.WriteStudy(t, filepath.Join(t.TempDir(), "alerts"), studyYAML("alerts", "plugins:\n"+pluginYAML("alerts", "notifier", exe, sum, "config: {fail_notify: 0}")), safetyPolicy), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	notified := filepath.Join(data, "alerts", "alerts", "notified.jsonl")
	waitFor(t, func() bool { return deliveries(t, notified)["d-crashed/alerts"] == 1 })
	time.Sleep(300 * time.Millisecond) // several rescans
	if got := deliveries(t, notified); got["d-held/alerts"] != 0 {
		t.Fatalf("a notification claimed by a live outbox was delivered: %v", got)
	}
	if lines := readJSONL(t, notified); lines[0]["attempt"] != float64(3) {
		t.Errorf("taken-over notification delivered at attempt %v, want 3 (its count goes on)", lines[0]["attempt"])
	}
	live.Unlock() // its holder dies
	waitFor(t, func() bool { return deliveries(t, notified)["d-held/alerts"] == 1 })
}

// TestErasureRemovesParticipantNotifications: erasing a participant
// removes their pending notifications (also one an outbox holds in memory
// between attempts) and their dead letters, old format included, and keeps
// everyone else's.
func TestErasureRemovesParticipantNotifications(t *testing.T) {
	exe, sum := testPlugin(t)
	data := t.TempDir()
	outbox := filepath.Join(data, "alerts", "alerts.outbox")
	if err := os.MkdirAll(outbox, 0o700); err != nil {
		t.Fatal(err)
	}
	// Dead letters as written before PluginDecision had JSON tags, and now.
	old := `{"notification":{"ID":"d-0/alerts","Decision":{"Study":"alerts","Participant":"p1","DecisionID":"d-0","DecisionPoint":"app","Time":"2026-11-02T12:00:00Z"},"Action":"safety","Reasons":null,"Intervention":""},"attempts":8,"last_error":"error: down","enqueued":"2026-11-02T12:00:00Z","dead_at":"2026-11-02T13:00:00Z"}` + "\n" +
		`{"notification":{"ID":"d-00/alerts","Decision":{"Study":"alerts","Participant":"p2","DecisionID":"d-00","DecisionPoint":"app","Time":"2026-11-02T12:00:00Z"},"Action":"safety","Reasons":null,"Intervention":""},"attempts":8,"last_error":"error: down","enqueued":"2026-11-02T12:00:00Z","dead_at":"2026-11-02T13:00:00Z"}` + "\n"
	deadLetter := filepath.Join(outbox, "dead-letter.jsonl")
	if err := os.WriteFile(deadLetter, []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	seen := newCalls()
	opts := host.Options{DataDir: data, Observer: seen}
	yaml := studyYAML("alerts", "plugins:\n"+pluginYAML("alerts", "notifier", exe, sum, "retry: {attempts: 3, backoff: 1s, max_backoff: 1s}\nconfig: {fail_notify: -1}"))
	set, err := host.Start(policytest.WriteStudy(t, filepath.Join(t.TempDir(), "alerts"), yaml, safetyPolicy), opts)
	if err != nil {
		t.Fatal(err)
	}
	defer set.Close()
	// The outbox waits after its first attempt until all three
	// notifications are queued, so their first attempts come before any
	// retry; and again after its fourth, so that the erasure comes when
	// each has failed its first attempt and is held between attempts, and
	// none has had its last, however slowly the machine runs.
	first, fourth := seen.hold(t, "notify", 1), seen.hold(t, "notify", 4)
	for i, p := range []string{"p1", "p2", "p1"} {
		set.Notifier("alerts").Notify(engine.Notification{ID: fmt.Sprintf("d-%d/alerts", i+1), Decision: decision.PluginDecision{Study: "alerts", Participant: p, DecisionID: fmt.Sprintf("d-%d", i+1), Time: time.Now()}, Action: "safety"})
	}
	first()
	waitFor(t, func() bool { return seen.count("notify", "") == 4 })
	spool := filepath.Join(outbox, "spool", "*.json")
	if m, _ := filepath.Glob(spool); len(m) != 3 {
		t.Fatalf("spool before erasure: %v, want the three notifications", m)
	}
	if err := set.EraseParticipant(context.Background(), "alerts", "p1"); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(spool)
	for _, f := range files {
		raw, _ := os.ReadFile(f)
		if strings.Contains(string(raw), `"p1"`) {
			t.Errorf("spool file %s still names the erased participant", filepath.Base(f))
		}
	}
	if len(files) != 1 {
		t.Errorf("spool after erasure: %d files, want p2's one", len(files))
	}
	// p2's notification fails its last attempt and is dead-lettered; p1's,
	// held in memory by the outbox between attempts, must not be. Closed,
	// the outbox writes nothing more, so the file is then all there is.
	fourth()
	waitFor(t, func() bool { return len(readJSONL(t, deadLetter)) == 2 })
	if err := set.Close(); err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(deadLetter)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(raw), `"p1"`) {
		t.Errorf("dead-letter file names the erased participant:\n%s", raw)
	}
	var ids []string
	for _, line := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
		var dl host.DeadLetter // reads both formats
		if err := json.Unmarshal([]byte(line), &dl); err != nil {
			t.Fatal(err)
		}
		if dl.Notification.Decision.Participant != "p2" {
			t.Errorf("dead letter %s: participant %q", dl.Notification.ID, dl.Notification.Decision.Participant)
		}
		ids = append(ids, dl.Notification.ID)
	}
	if strings.Join(ids, " ") != "d-00/alerts d-2/alerts" {
		t.Errorf("dead letters %v, want p2's old d-00 and d-2", ids)
	}
	// The notifier plugin was asked to erase too.
	erased := readJSONL(t, filepath.Join(data, "alerts", "alerts", "erased.jsonl"))
	if len(erased) != 1 || erased[0]["participant"] != "p1" {
		t.Errorf("plugin erasures %v, want one for p1", erased)
	}
}

// TestFailedPluginErasureCanBeRepeated: DELETE participant answers 503 when
// a plugin cannot erase; a repeat finds the store's part done (404) but
// erases the plugins' part.
func TestFailedPluginErasureCanBeRepeated(t *testing.T) {
	exe, sum := testPlugin(t)
	study := policytest.WriteStudy(t, filepath.Join(t.TempDir(), "alerts"), studyYAML("alerts", "plugins:\n"+pluginYAML("alerts", "notifier", exe, sum, "config: {fail_erase: 1}")), safetyPolicy)
	r := newRig(t, host.Options{}, study)
	r.enroll(t, "alerts", "p1")
	srv := httptest.NewServer(api.New(r.eng, zap.NewNop(), api.Options{}))
	defer srv.Close()
	if code := deleteParticipant(t, srv.URL, "alerts", "p1"); code != http.StatusServiceUnavailable {
		t.Fatalf("DELETE with a failing plugin eraser: %d, want 503", code)
	}
	erased := filepath.Join(r.data, "plugins", "alerts", "alerts", "erased.jsonl")
	if got := readJSONL(t, erased); len(got) != 0 {
		t.Fatalf("erasures recorded %v after a failure", got)
	}
	if code := deleteParticipant(t, srv.URL, "alerts", "p1"); code != http.StatusNotFound {
		t.Fatalf("repeated DELETE: %d, want 404 (the store's part is done)", code)
	}
	if got := readJSONL(t, erased); len(got) != 1 || got[0]["participant"] != "p1" {
		t.Errorf("erasures %v after the repeat, want p1's", got)
	}
}
