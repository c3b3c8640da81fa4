package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	pb "github.com/jitai/jitai/plugins/proto"
)

func TestAlertsWebhookRetryAndDeduplication(t *testing.T) {
	var fail atomic.Bool
	var posted atomic.Int32
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var a Alert
		if err := json.NewDecoder(r.Body).Decode(&a); err != nil || a.DecisionID != "d1" {
			t.Errorf("webhook body: %v %+v", err, a)
		}
		if fail.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		posted.Add(1)
	}))
	defer hook.Close()
	dir := t.TempDir()
	configure := func() *notifier {
		n := &notifier{}
		cfg := fmt.Sprintf(`{"webhook": %q}`, hook.URL)
		if _, err := n.Configure(context.Background(), &pb.ConfigureRequest{ConfigJson: []byte(cfg), DataDir: dir}); err != nil {
			t.Fatal(err)
		}
		return n
	}
	n := configure()
	req := &pb.NotifyRequest{Id: "d1/clinician", Decision: &pb.Decision{Study: "s", Participant: "p1", DecisionId: "d1"}, Action: "safety", Reasons: []string{"risk_flag"}, Attempt: 1}
	fail.Store(true)
	if _, err := n.Notify(context.Background(), req); err == nil {
		t.Fatal("a refused webhook was acknowledged")
	}
	fail.Store(false)
	req.Attempt = 2
	if _, err := n.Notify(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	// Redelivered after a restart of the plugin: acknowledged, not repeated.
	req.Attempt = 3
	if _, err := configure().Notify(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(dir, "alerts.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	lines := 0
	for sc := bufio.NewScanner(f); sc.Scan(); lines++ {
		var a Alert
		if err := json.Unmarshal(sc.Bytes(), &a); err != nil || a.ID != "d1/clinician" || a.Attempt != 2 || a.Reasons[0] != "risk_flag" {
			t.Errorf("alert line %s: %v", sc.Text(), err)
		}
	}
	if lines != 1 || posted.Load() != 1 {
		t.Errorf("%d alert lines and %d posts, want 1 and 1", lines, posted.Load())
	}
}
