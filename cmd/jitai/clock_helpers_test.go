package main

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jitai/jitai/engine/delivery/webhook"
)

// The clock tests run the real binary with the trial clock on, over study
// folders they write: copies of stress-mrt's policy with decision points at
// the next whole minutes of the wall clock (UTC), and a webhook delivery
// channel pointing at a receiver in the test process.

// clockSecretEnv names the environment variable that holds the webhook
// secret (delivery.webhook.secret_env). startServer passes the test's
// environment on, so t.Setenv reaches the engines.
const clockSecretEnv = "CLOCKTEST_WEBHOOK_SECRET"

// clockStudy is a study written for a clock test.
type clockStudy struct {
	ID     string
	Points []time.Time // whole minutes, UTC
	TTL    time.Duration
}

// writeClockStudy writes study s into studiesDir: stress-mrt's policy, time
// zone UTC, one scheduled point per time in s.Points, no quiet hours and no
// burden caps (every participant is available), a prompt factor with
// probability 1 (every available point delivers) and delivery by webhook to
// hookURL.
func writeClockStudy(t *testing.T, studiesDir string, s clockStudy, hookURL string) {
	t.Helper()
	dir := filepath.Join(studiesDir, s.ID)
	if err := os.MkdirAll(filepath.Join(dir, "policy"), 0o755); err != nil {
		t.Fatal(err)
	}
	rego, err := os.ReadFile("../../policies/examples/stress-mrt/policy/policy.rego")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "policy", "policy.rego"), rego, 0o644); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "id: %s\nname: Clock test %s\ntimezone: UTC\nseed: clock-test-%s\ndecision_points:\n", s.ID, s.ID, s.ID)
	for i, at := range s.Points {
		if at.Second() != 0 || at.Nanosecond() != 0 {
			t.Fatalf("point %s is not a whole minute", at)
		}
		fmt.Fprintf(&b, "  - id: p%d\n    time: %q\n", i+1, at.UTC().Format("15:04"))
	}
	fmt.Fprintf(&b, `decision_ttl: %s
delivery_factor: prompt
factors:
  - name: prompt
    type: within
    levels: [none, deliver]
    probability: 1
    bounds: [1, 1]
    probability_source: fixed
delivery:
  channels: [webhook]
  webhook:
    url: %s
    secret_env: %s
crisis:
  title: Help
  text: Call the emergency services if you are in danger.
  contacts:
    - name: Emergency services
      phone: "999"
`, s.TTL, hookURL, clockSecretEnv)
	if err := os.WriteFile(filepath.Join(dir, "study.yaml"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// wholeMinuteAfter is the first whole minute at or after t+margin (UTC).
func wholeMinuteAfter(t time.Time, margin time.Duration) time.Time {
	m := t.Add(margin).UTC().Truncate(time.Minute)
	if m.Before(t.Add(margin)) {
		m = m.Add(time.Minute)
	}
	return m
}

// hookReceiver is a Standard Webhooks receiver: it verifies every request
// with webhook.Verify and keeps the arrivals of each webhook-id. Each
// engine posts to its own path (/hook/NAME), so an arrival says which
// engine sent it.
type hookReceiver struct {
	secret string
	srv    *httptest.Server

	mu      sync.Mutex
	got     map[string][]arrival // webhook-id -> its verified arrivals
	last    time.Time            // the latest arrival
	bad     []string             // requests that failed verification
	arrived atomic.Int64         // verified arrivals, duplicates included
}

func newHookReceiver(t *testing.T) *hookReceiver {
	t.Helper()
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	h := &hookReceiver{secret: "whsec_" + base64.StdEncoding.EncodeToString(key),
		got: map[string][]arrival{}}
	h.srv = httptest.NewServer(h)
	t.Cleanup(h.srv.Close)
	return h
}

// arrival is one verified request: when, and from which engine's URL.
type arrival struct {
	at   time.Time
	from string
}

// url is the webhook URL for the engine called name.
func (h *hookReceiver) url(name string) string { return h.srv.URL + "/hook/" + name }

func (h *hookReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(r.Body)
	now := time.Now()
	if err == nil {
		err = webhook.Verify(h.secret, r.Header, body, now, 5*time.Minute)
	}
	id := r.Header.Get("webhook-id")
	if err == nil {
		var ev struct {
			ID          string `json:"id"`
			SpecVersion string `json:"specversion"`
		}
		if jerr := json.Unmarshal(body, &ev); jerr != nil || ev.SpecVersion != "1.0" || ev.ID != id {
			err = fmt.Errorf("not a CloudEvent whose id is the webhook-id (%v): %.200s", jerr, body)
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if err != nil {
		h.bad = append(h.bad, fmt.Sprintf("%s: %v", id, err))
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	h.got[id] = append(h.got[id], arrival{at: now, from: strings.TrimPrefix(r.URL.Path, "/hook/")})
	h.last = now
	h.arrived.Add(1)
	w.WriteHeader(http.StatusNoContent)
}

// snapshot returns a copy of the arrivals per webhook-id.
func (h *hookReceiver) snapshot() map[string][]arrival {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make(map[string][]arrival, len(h.got))
	for k, v := range h.got {
		out[k] = append([]arrival(nil), v...)
	}
	return out
}

func (h *hookReceiver) distinct() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.got)
}

func (h *hookReceiver) lastArrival() time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.last
}

func (h *hookReceiver) rejected() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.bad...)
}

// duplicates is how many arrivals repeated an id already received.
func duplicates(got map[string][]arrival) int {
	n := 0
	for _, a := range got {
		n += len(a) - 1
	}
	return n
}

// clockRecord is a listed decision record, as much as the clock tests need.
type clockRecord struct {
	DecisionID         string    `json:"decision_id"`
	Study              string    `json:"study"`
	ParticipantID      string    `json:"participant_id"`
	DecisionPoint      string    `json:"decision_point"`
	Trigger            string    `json:"trigger"`
	ScheduledAt        time.Time `json:"scheduled_at"`
	Time               time.Time `json:"time"`
	RecordedAt         time.Time `json:"recorded_at"`
	ExpiresAt          time.Time `json:"expires_at"`
	Action             string    `json:"action"`
	UnavailableReasons []string  `json:"unavailable_reasons"`
	IdempotencyKey     string    `json:"idempotency_key"`
}

// missed reports whether the record is a missed point's.
func (r *clockRecord) missed() bool {
	return len(r.UnavailableReasons) == 1 && r.UnavailableReasons[0] == "engine_unavailable"
}

// listStudy lists every decision of a study through base (pages of 1000).
func listStudy(hc *http.Client, base, studyID string) ([]clockRecord, error) {
	var out []clockRecord
	cursor := ""
	for page := 0; page < 100000; page++ {
		q := url.Values{"limit": {"1000"}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		r, err := do(hc, "GET", base+"/v1/studies/"+studyID+"/decisions?"+q.Encode(), nil, "")
		if err != nil {
			return nil, err
		}
		if r.status != http.StatusOK {
			return nil, fmt.Errorf("listing decisions: status %d: %.300s", r.status, r.body)
		}
		var doc struct {
			Decisions  []clockRecord `json:"decisions"`
			NextCursor string        `json:"next_cursor"`
		}
		if err := json.Unmarshal(r.body, &doc); err != nil {
			return nil, fmt.Errorf("listing decisions: %w", err)
		}
		out = append(out, doc.Decisions...)
		if doc.NextCursor == "" {
			return out, nil
		}
		cursor = doc.NextCursor
	}
	return nil, fmt.Errorf("listing does not end")
}

// enrolled is one participant's enrolment as answered.
type enrolled struct {
	id         string
	enrolledAt time.Time
}

// enrolParallel enrols ids in studyID through the engines (round robin),
// with workers concurrent requests, and returns the enrolments.
func enrolParallel(t *testing.T, hc *http.Client, bases []string, studyID string, ids []string, workers int) []enrolled {
	t.Helper()
	out := make([]enrolled, len(ids))
	work := make(chan int)
	var wg sync.WaitGroup
	var failed atomic.Int64
	for range workers {
		wg.Go(func() {
			for i := range work {
				base := bases[i%len(bases)]
				r, err := do(hc, "POST", base+"/v1/studies/"+studyID+"/participants", []byte(`{"participant_id":"`+ids[i]+`"}`), "")
				if err == nil && r.status != http.StatusCreated {
					err = fmt.Errorf("status %d: %.300s", r.status, r.body)
				}
				var doc struct {
					EnrolledAt time.Time `json:"enrolled_at"`
				}
				if err == nil {
					err = json.Unmarshal(r.body, &doc)
				}
				if err != nil {
					if failed.Add(1) <= 5 {
						t.Errorf("enrolling %s: %v", ids[i], err)
					}
					continue
				}
				out[i] = enrolled{id: ids[i], enrolledAt: doc.EnrolledAt}
			}
		})
	}
	for i := range ids {
		work <- i
	}
	close(work)
	wg.Wait()
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d enrolments failed", n)
	}
	return out
}

// waitUntil polls cond every interval until it holds or the deadline
// passes; it returns whether cond held.
func waitUntil(deadline time.Time, interval time.Duration, cond func() bool) bool {
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(interval)
	}
}

// sleepUntil waits for the wall clock to reach at (the tests' scheduled
// points are wall-clock instants).
func sleepUntil(at time.Time) {
	if d := time.Until(at); d > 0 {
		time.Sleep(d)
	}
}
