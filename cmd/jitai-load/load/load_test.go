package load

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	var lats []time.Duration
	for i := 100; i >= 1; i-- {
		lats = append(lats, time.Duration(i)*time.Millisecond)
	}
	l := Summarise(lats)
	for name, c := range map[string][2]time.Duration{
		"p50": {l.P50, 50 * time.Millisecond}, "p90": {l.P90, 90 * time.Millisecond}, "p99": {l.P99, 99 * time.Millisecond},
		"p99.9": {l.P999, 100 * time.Millisecond}, "max": {l.Max, 100 * time.Millisecond}, "mean": {l.Mean, 50500 * time.Microsecond},
	} {
		if c[0] != c[1] {
			t.Errorf("%s = %s, want %s", name, c[0], c[1])
		}
	}
	if got := Percentile([]time.Duration{7}, 99); got != 7 {
		t.Errorf("p99 of one value = %s", got)
	}
	if got := Summarise(nil); got != (Latency{}) {
		t.Errorf("summary of nothing = %+v", got)
	}
}

// fakeAPI answers the routes the generator uses and records what it got.
type fakeAPI struct {
	mu        sync.Mutex
	enrolled  map[string]int
	keys      map[string]int
	times     []time.Time
	points    map[string]int
	decisions int
	skew      time.Duration // the fake server's clock is this far ahead
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.skew != 0 {
		w.Header().Set("Date", time.Now().Add(f.skew).UTC().Format(http.TimeFormat))
	}
	switch {
	case r.Method == "GET" && r.URL.Path == "/v1/studies/s1":
		_, _ = io.WriteString(w, `{"id":"s1","timezone":"Europe/London","decision_points":[{"id":"morning","time":"08:30","kind":"scheduled"},{"id":"evening","time":"20:30","kind":"scheduled"},{"id":"app","kind":"app"}]}`)
	case r.Method == "GET" && r.URL.Path == "/v1/studies/s2":
		_, _ = io.WriteString(w, `{"id":"s2","timezone":"Europe/London","decision_points":[{"id":"morning","time":"08:30","kind":"scheduled"}]}`)
	case r.Method == "POST" && r.URL.Path == "/v1/studies/s1/participants":
		var req struct {
			ID string `json:"participant_id"`
		}
		_ = json.NewDecoder(r.Body).Decode(&req)
		f.enrolled[req.ID]++
		if f.enrolled[req.ID] == 1 {
			w.WriteHeader(http.StatusCreated)
		}
		_, _ = io.WriteString(w, `{}`)
	case r.Method == "POST" && strings.HasSuffix(r.URL.Path, "/decisions"):
		var req struct {
			DecisionPoint string `json:"decision_point"`
			Time          string `json:"time"`
		}
		_ = json.NewDecoder(r.Body).Decode(&req)
		at, err := time.Parse(time.RFC3339, req.Time)
		if err != nil || r.Header.Get("Idempotency-Key") == "" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		f.keys[r.Header.Get("Idempotency-Key")]++
		f.times = append(f.times, at)
		f.points[req.DecisionPoint]++
		f.decisions++
		if f.decisions%10 == 0 {
			w.Header().Set("Content-Type", "application/problem+json")
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, `{"action":"none","reasons":["quiet_hours"]}`)
	default:
		w.WriteHeader(http.StatusNotFound)
	}
}

func TestRunAgainstFake(t *testing.T) {
	f := &fakeAPI{enrolled: map[string]int{}, keys: map[string]int{}, points: map[string]int{}}
	srv := httptest.NewServer(f)
	defer srv.Close()
	var observed sync.Map
	cfg := Config{URLs: []string{srv.URL + "/"}, Study: "s1", Participants: 25, Concurrency: 4, Requests: 400, Enrol: true, Days: 3, Seed: 1,
		Start:   time.Date(2026, 11, 16, 0, 0, 0, 0, time.UTC),
		Observe: func(s *Sample) { observed.Store(s.Key, s.Status) }}
	res, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if res.Enrolled != 25 || len(f.enrolled) != 25 {
		t.Errorf("enrolled %d (%d distinct), want 25", res.Enrolled, len(f.enrolled))
	}
	if res.Requests != 400 || f.decisions != 400 || len(f.keys) != 400 {
		t.Errorf("%d requests, the server saw %d with %d distinct keys; want exactly 400", res.Requests, f.decisions, len(f.keys))
	}
	if res.OK != 360 || res.Status[503] != 40 || res.Errors != 40 {
		t.Errorf("ok %d, 503 %d, errors %d; want 360, 40, 40", res.OK, res.Status[503], res.Errors)
	}
	if res.Actions["none"] != 360 || res.Reasons["quiet_hours"] != 360 {
		t.Errorf("actions %v reasons %v", res.Actions, res.Reasons)
	}
	n := 0
	observed.Range(func(_, _ any) bool { n++; return true })
	if n != 400 {
		t.Errorf("Observe saw %d requests", n)
	}
	london, _ := time.LoadLocation("Europe/London")
	first := time.Date(2026, 11, 16, 0, 0, 0, 0, london)
	end := first.AddDate(0, 0, 3)
	for _, at := range f.times {
		if at.Before(first) || !at.Before(end) {
			t.Errorf("decision time %s outside the 3 days from %s", at, first)
		}
	}
	// Every request asks for the study's app point, at times around every
	// point's time of day or anywhere in the day.
	if f.points["app"] != 400 || len(f.points) != 1 || res.DecisionPoint != "app" {
		t.Errorf("decision points asked for: %v (result says %q), want app only", f.points, res.DecisionPoint)
	}
	hours := map[int]int{}
	for _, at := range f.times {
		hours[at.In(london).Hour()]++
	}
	if hours[8] == 0 || hours[20] == 0 || len(hours) < 6 {
		t.Errorf("decision times by hour %v: want some around 08:30 and 20:30 and others spread over the day", hours)
	}
	if res.Latency.P50 <= 0 || res.Latency.P50 > res.Latency.P99 || res.Latency.P99 > res.Latency.Max {
		t.Errorf("latency %+v", res.Latency)
	}
	if _, err := json.Marshal(res); err != nil {
		t.Error(err)
	}
	var b strings.Builder
	res.Table(&b)
	if !strings.Contains(b.String(), "status 503   40") {
		t.Errorf("table:\n%s", b.String())
	}
}

// TestRunDecisionPoint: a load asks for the decision point named, and does
// not start when the study lacks it or, asked for no point, has no app point.
func TestRunDecisionPoint(t *testing.T) {
	f := &fakeAPI{enrolled: map[string]int{}, keys: map[string]int{}, points: map[string]int{}}
	srv := httptest.NewServer(f)
	defer srv.Close()
	res, err := Run(context.Background(), Config{URLs: []string{srv.URL}, Study: "s1", DecisionPoint: "evening", Participants: 5, Concurrency: 2, Requests: 50, Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if f.points["evening"] != 50 || len(f.points) != 1 || res.DecisionPoint != "evening" {
		t.Errorf("decision points asked for: %v (result says %q), want evening only", f.points, res.DecisionPoint)
	}
	if _, err := Run(context.Background(), Config{URLs: []string{srv.URL}, Study: "s1", DecisionPoint: "noon", Requests: 1}); err == nil || !strings.Contains(err.Error(), `no decision point "noon"`) {
		t.Errorf("an unknown decision point: %v", err)
	}
	if _, err := Run(context.Background(), Config{URLs: []string{srv.URL}, Study: "s2", Requests: 1}); err == nil || !strings.Contains(err.Error(), "no app-requested decision point") {
		t.Errorf("a study without an app point: %v", err)
	}
	if f.decisions != 50 {
		t.Errorf("%d decision requests, want the 50 of the first run", f.decisions)
	}
}

func TestRunNeedsAnEnd(t *testing.T) {
	if _, err := Run(context.Background(), Config{URLs: []string{"http://127.0.0.1:1"}}); err == nil {
		t.Error("a run without duration or number of requests started")
	}
	if _, err := Run(context.Background(), Config{URLs: []string{"ftp://x"}, Requests: 1}); err == nil {
		t.Error("a run with a non-HTTP URL started")
	}
}

// TestRunAtServerNow: without Start, every time is the server's clock (from
// its Date header, here three hours ahead of this machine's) moved up to a
// minute ahead, within the default 5-minute clock skew.
func TestRunAtServerNow(t *testing.T) {
	f := &fakeAPI{enrolled: map[string]int{}, keys: map[string]int{}, points: map[string]int{}, skew: 3 * time.Hour}
	srv := httptest.NewServer(f)
	defer srv.Close()
	before := time.Now().Add(f.skew).Truncate(time.Second)
	res, err := Run(context.Background(), Config{URLs: []string{srv.URL}, Study: "s1", Participants: 5, Concurrency: 2, Requests: 50, Enrol: true, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	after := time.Now().Add(f.skew)
	if res.Requests != 50 || res.Days != 0 || len(f.times) != 50 {
		t.Fatalf("%d requests (days %d), the server saw %d", res.Requests, res.Days, len(f.times))
	}
	for _, at := range f.times {
		// Ahead of the server's clock when sent, by at most a minute and
		// the second the Date header rounds away.
		if at.Before(before) || at.After(after.Add(62*time.Second)) {
			t.Errorf("decision time %s not within a minute after the server's clock (%s to %s)", at, before, after)
		}
	}
}
