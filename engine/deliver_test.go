package engine_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jitai/jitai/engine"
	"github.com/jitai/jitai/engine/delivery"
	"github.com/jitai/jitai/engine/delivery/webhook"
	"github.com/jitai/jitai/engine/store/memstore"
	"github.com/jitai/jitai/engine/trial"
	"github.com/jitai/jitai/experiments/export"
	"github.com/jitai/jitai/policies"
	"github.com/jitai/jitai/policies/policytest"
)

// receiver is a local webhook receiver that verifies every request with the
// Standard Webhooks algorithm and records the deliveries by webhook-id. While
// down, it answers 503.
type receiver struct {
	t      *testing.T
	secret string
	now    func() time.Time
	mu     sync.Mutex
	down   bool
	got    map[string]int // webhook-id -> requests accepted
	events map[string]map[string]any
	bad    int
}

func newReceiver(t *testing.T, now func() time.Time) (*receiver, *httptest.Server) {
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	r := &receiver{t: t, secret: "whsec_" + base64.StdEncoding.EncodeToString(key), now: now,
		got: map[string]int{}, events: map[string]map[string]any{}}
	srv := httptest.NewServer(r)
	t.Cleanup(srv.Close)
	return r, srv
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.down {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	if err := webhook.Verify(r.secret, req.Header, body, r.now(), 5*time.Minute); err != nil {
		r.bad++
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var ev map[string]any
	if err := json.Unmarshal(body, &ev); err != nil || ev["specversion"] != "1.0" || ev["id"] != req.Header.Get("webhook-id") {
		r.bad++
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	id := req.Header.Get("webhook-id")
	r.got[id]++
	r.events[id] = ev
	w.WriteHeader(http.StatusNoContent)
}

func (r *receiver) setDown(down bool) {
	r.mu.Lock()
	r.down = down
	r.mu.Unlock()
}

// deliveringStudy is the clock study with a webhook delivery section.
func deliveringStudy(t *testing.T) *policies.Study {
	t.Helper()
	s := clockStudy(t)
	dir := t.TempDir()
	b, err := os.ReadFile(filepath.Join(s.Dir, "study.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	rego, err := os.ReadFile(filepath.Join(s.Dir, "policy", "p.rego"))
	if err != nil {
		t.Fatal(err)
	}
	yaml := string(b) + "\ndelivery:\n  channels: [webhook]\n  webhook:\n    url: http://127.0.0.1:1/unused\n    secret_env: TEST_WEBHOOK_SECRET\n"
	// No baseline: every point randomises, so some deliver.
	yaml = strings.Replace(yaml, "    randomise: false\n", "", 1)
	return policytest.WriteStudy(t, dir, yaml, string(rego))
}

// TestDeliveryThroughWebhook: the clock fires points, the deliver decisions
// go through the outbox to a Standard Webhooks receiver that verifies every
// signature; while the receiver is down the deliveries wait and arrive once
// it is back; past expiry they are expired; each arrives once, by its id.
func TestDeliveryThroughWebhook(t *testing.T) {
	ctx := context.Background()
	clk := &fakeClock{now: time.Date(2026, 3, 2, 6, 0, 0, 0, time.UTC)}
	rcv, srv := newReceiver(t, clk.Now)
	study := deliveringStudy(t)
	store := memstore.New()
	eng, err := engine.New(engine.Components{Store: store, Studies: []*policies.Study{study}, Now: clk.Now,
		Channels: func(s *policies.Study) ([]delivery.Channel, error) {
			ch, err := webhook.New(webhook.Config{URL: srv.URL, Secret: rcv.secret, Now: clk.Now})
			return []delivery.Channel{ch}, err
		}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 40 {
		id := "w" + string(rune('a'+i%26)) + string(rune('a'+i/26))
		if _, _, err := eng.Enroll(ctx, study.Config.ID, engine.EnrollRequest{ParticipantID: id, Timezone: "Europe/London"}); err != nil {
			t.Fatal(err)
		}
	}
	step := func(d time.Duration) {
		for end := clk.now.Add(d); clk.now.Before(end); clk.now = clk.now.Add(time.Minute) {
			fireAll(t, eng)
			for {
				n, err := eng.DeliverDue(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if n == 0 {
					break
				}
			}
		}
	}
	// 08:30 local (GMT): the receiver is down from 08:25 to 08:40.
	step(2*time.Hour + 25*time.Minute)
	rcv.setDown(true)
	step(15 * time.Minute)
	rcv.mu.Lock()
	during := len(rcv.got)
	rcv.mu.Unlock()
	if during != 0 {
		t.Fatalf("%d deliveries arrived while the receiver was down", during)
	}
	rcv.setDown(false)
	step(20 * time.Minute)
	recs, err := store.ListDecisions(ctx, trial.DecisionQuery{Study: study.Config.ID, Limit: 10000})
	if err != nil {
		t.Fatal(err)
	}
	delivered := 0
	for _, r := range recs {
		if r.Action != trial.ActionDeliver && r.Action != trial.ActionSafety {
			continue
		}
		delivered++
		d, err := eng.Delivery(ctx, study.Config.ID, r.Participant, r.ID)
		if err != nil {
			t.Fatalf("decision %s: no delivery log: %v", r.ID, err)
		}
		if d.Status != trial.DeliverySent || d.Attempts < 2 || d.SentAt.Before(d.QueuedAt) || d.ScheduledAt.IsZero() {
			t.Errorf("decision %s: delivery %+v, want sent after a retry", r.ID, d)
		}
		if n := rcv.got[r.ID]; n != 1 {
			t.Errorf("decision %s arrived %d times", r.ID, n)
		}
		if ev := rcv.events[r.ID]; ev != nil {
			data, _ := ev["data"].(map[string]any)
			if data["decision_id"] != r.ID || data["action"] != r.Action {
				t.Errorf("decision %s: CloudEvents data %v", r.ID, data)
			}
		}
	}
	t.Logf("%d deliver decisions at 08:30, all arrived once after the receiver came back", delivered)
	if delivered < 5 || len(rcv.got) != delivered || rcv.bad != 0 {
		t.Fatalf("%d deliver decisions, %d arrived, %d refused by the receiver", delivered, len(rcv.got), rcv.bad)
	}
	// The export carries each delivery log.
	ts, err := eng.Export(ctx, study.Config.ID, export.Options{})
	if err != nil {
		t.Fatal(err)
	}
	sentRows := 0
	for i := range ts.Decisions.Rows {
		action, status := ts.Decisions.Value(i, "action"), ts.Decisions.Value(i, "delivery_status")
		switch {
		case action == trial.ActionDeliver && status == trial.DeliverySent && ts.Decisions.Value(i, "delivery_channel") == "webhook":
			sentRows++
		case action != trial.ActionDeliver && action != trial.ActionSafety && status != nil:
			t.Errorf("export row %d: action %v with delivery status %v", i, action, status)
		}
	}
	if sentRows != delivered {
		t.Fatalf("the export has %d rows with delivery_status sent, want %d", sentRows, delivered)
	}
	// Expiry: down through the midday window (12:00-14:00) and the
	// decisions' 30 minutes.
	rcv.setDown(true)
	step(6 * time.Hour)
	dead, err := eng.DeadLetters(ctx, study.Config.ID, 1000)
	if err != nil {
		t.Fatal(err)
	}
	expired := 0
	for _, d := range dead {
		if d.Status != trial.DeliveryExpired || d.DecisionPoint != "midday" {
			t.Errorf("dead letter %+v", d)
		}
		expired++
	}
	t.Logf("%d deliveries expired while the receiver was down", expired)
	if expired == 0 {
		t.Fatal("no delivery expired while the receiver was down past the decisions' expiry")
	}
}
