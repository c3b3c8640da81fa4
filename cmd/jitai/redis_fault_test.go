package main

import (
	"context"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	loadgen "github.com/jitai/jitai/cmd/jitai-load/load"
)

// TestRedisFaultStopStart runs a decision load against one `jitai serve
// --store redis` on a private Redis with the append-only file fsynced on
// every write, stops redis-server in the middle (SIGTERM: a clean shutdown;
// SIGKILL: a crash), keeps the load running for 2 s, restarts redis-server
// on the same port and directory and checks that
//   - the engine stays reachable: every request gets an HTTP answer;
//   - every answer is 200 or a clear error: 503 application/problem+json
//     with Retry-After;
//   - /readyz is 200 before, 503 during the outage and 200 after it;
//   - the same engine process serves 200 again within 5 s of Redis' return
//     (the recovery time is logged) and answers only 200 from then on;
//   - every 200 answer has its record (listed after the recovery), no key
//     has two records, and a record without a 200 answer belongs to a
//     request answered 503 (its commit was applied, its reply lost);
//     retrying a 503 request replays that record if there is one and makes
//     a new decision if not;
//   - the outage and the recovery are logged once, not per request.
func TestRedisFaultStopStart(t *testing.T) {
	for _, v := range []struct {
		name string
		sig  syscall.Signal
	}{{"SIGTERM", syscall.SIGTERM}, {"SIGKILL", syscall.SIGKILL}} {
		t.Run(v.name, func(t *testing.T) { redisFault(t, v.sig) })
	}
}

type probe struct {
	at, done time.Time
	status   int
}

func redisFault(t *testing.T, sig syscall.Signal) {
	rp := startRedis(t, true)
	eng := startRedisEngine(t, rp)
	hc := newHTTPClient()
	defer hc.CloseIdleConnections()
	const participants = 40
	ids := make([]string, participants)
	for i := range ids {
		ids[i] = fmt.Sprintf("fault-%02d", i)
	}
	enrolAll(t, hc, eng.base, ids)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// /readyz, every 50 ms.
	var probeMu sync.Mutex
	var probes []probe
	pollDone := make(chan struct{})
	go func() {
		defer close(pollDone)
		for ctx.Err() == nil {
			at := time.Now()
			st := readyStatus(context.Background(), eng.base)
			probeMu.Lock()
			probes = append(probes, probe{at, time.Now(), st})
			probeMu.Unlock()
			time.Sleep(50 * time.Millisecond)
		}
	}()

	var mu sync.Mutex
	var samples []*loadgen.Sample
	resc := make(chan *loadgen.Result, 1)
	errc := make(chan error, 1)
	go func() {
		res, err := loadgen.Run(ctx, loadgen.Config{
			URLs: []string{eng.base}, Study: study, Participants: participants, ParticipantPrefix: "fault-",
			Concurrency: 8, Duration: 2 * time.Minute, Days: 5, StartTomorrow: true, Seed: 42, Client: hc,
			Observe: func(s *loadgen.Sample) {
				mu.Lock()
				samples = append(samples, s)
				mu.Unlock()
			},
		})
		resc <- res
		errc <- err
	}()
	answered := func(since time.Time) (ok, failed int) {
		mu.Lock()
		defer mu.Unlock()
		for _, s := range samples {
			if s.Sent.Before(since) {
				continue
			}
			if s.Err == nil && s.Status == http.StatusOK {
				ok++
			} else {
				failed++
			}
		}
		return ok, failed
	}

	time.Sleep(1500 * time.Millisecond)
	if ok, _ := answered(time.Time{}); ok < 50 {
		t.Fatalf("only %d decisions answered before stopping Redis; the test needs load", ok)
	}
	stopAt := time.Now()
	rp.stop(sig)
	downAt := time.Now()
	time.Sleep(2 * time.Second)
	restartAt := time.Now()
	rp.start()
	upAt := time.Now()

	// Wait for the first 200 answered after Redis' return.
	var recovered time.Time
	for deadline := upAt.Add(10 * time.Second); time.Now().Before(deadline) && recovered.IsZero(); {
		time.Sleep(20 * time.Millisecond)
		mu.Lock()
		for _, s := range samples {
			done := s.Sent.Add(s.Latency)
			if s.Err == nil && s.Status == http.StatusOK && done.After(upAt) && (recovered.IsZero() || done.Before(recovered)) {
				recovered = done
			}
		}
		mu.Unlock()
	}
	if recovered.IsZero() {
		t.Errorf("no decision answered 200 within 10 s of Redis' return")
		recovered = upAt.Add(10 * time.Second)
	}
	time.Sleep(1500 * time.Millisecond) // and then some more load
	cancel()
	res, err := <-resc, <-errc
	if err != nil {
		t.Fatalf("load: %v", err)
	}
	<-pollDone
	select {
	case <-eng.done:
		t.Fatalf("the engine exited during the outage: %v", eng.err)
	default:
	}
	recovery := recovered.Sub(upAt)
	var readyAgain time.Time
	probeMu.Lock()
	for _, p := range probes {
		if p.at.After(upAt) && p.status == http.StatusOK {
			readyAgain = p.at
			break
		}
	}
	probeMu.Unlock()
	t.Logf("%s: redis stopped in %s, down %s (of which restarting and loading the AOF %s); engine served 200 again %s after redis answered (readyz 200 after %s); load: %d requests, %d answered 200, statuses %v, transport errors %v",
		sig, downAt.Sub(stopAt).Round(time.Millisecond), upAt.Sub(downAt).Round(time.Millisecond), upAt.Sub(restartAt).Round(time.Millisecond), recovery.Round(time.Millisecond),
		readyAgain.Sub(upAt).Round(time.Millisecond), res.Requests, res.OK, res.Status, res.Transport)
	if recovery > 5*time.Second {
		t.Errorf("the engine served 200 again %s after Redis' return, want within 5 s", recovery)
	}

	okBySent, unavailable := classifyFaultAnswers(t, samples, stopAt, upAt)

	probeMu.Lock()
	checkReadyzProbes(t, probes, stopAt, downAt, restartAt)
	probeMu.Unlock()
	if st := readyStatus(context.Background(), eng.base); st != http.StatusOK {
		t.Errorf("/readyz answers %d after the recovery, want 200", st)
	}

	checkFaultRecords(t, hc, eng.base, okBySent, unavailable)

	checkLoggedOnce(t, eng.logs.String())
}

// classifyFaultAnswers: every answer is a 200 or a clear 503, some 503s
// came while Redis was down and none 5 s after its return. It returns the
// 200 answers by key and the 503 answers.
func classifyFaultAnswers(t *testing.T, samples []*loadgen.Sample, stopAt, upAt time.Time) (map[string]*loadgen.Sample, []*loadgen.Sample) {
	t.Helper()
	var unavailable []*loadgen.Sample
	okBySent := map[string]*loadgen.Sample{}
	var during, afterRecovery int
	for _, s := range samples {
		switch {
		case s.Err != nil:
			t.Errorf("request %s (sent %s after the stop) got no HTTP answer: %v; the engine must stay reachable", s.Key, s.Sent.Sub(stopAt).Round(time.Millisecond), s.Err)
		case s.Status == http.StatusOK:
			okBySent[s.Key] = s
		case s.Status == http.StatusServiceUnavailable:
			unavailable = append(unavailable, s)
			if err := clearUnavailable(s); err != nil {
				t.Errorf("request %s: 503 is not a clear error: %v", s.Key, err)
			}
			if s.Sent.After(stopAt.Add(-time.Second)) && s.Sent.Before(upAt) {
				during++
			}
			if s.Sent.After(upAt.Add(5 * time.Second)) {
				afterRecovery++
			}
		default:
			t.Errorf("request %s: status %d: %.300s", s.Key, s.Status, s.Response)
		}
	}
	if during == 0 {
		t.Errorf("no request was answered 503 while Redis was down: the outage was not exercised")
	}
	if afterRecovery > 0 {
		t.Errorf("%d requests sent more than 5 s after Redis' return were still answered 503", afterRecovery)
	}

	return okBySent, unavailable
}

// checkReadyzProbes: /readyz answered 200 before the stop and 503 (never
// unreachable) while Redis was down (probes sent after it had exited and
// answered before it was started again).
func checkReadyzProbes(t *testing.T, probes []probe, stopAt, downAt, restartAt time.Time) {
	t.Helper()
	var before, down, downReady, unreachable int
	for _, p := range probes {
		switch {
		case p.status == 0:
			unreachable++
		case p.done.Before(stopAt) && p.status != http.StatusOK:
			t.Errorf("/readyz answered %d before Redis was stopped", p.status)
		case p.done.Before(stopAt):
			before++
		case p.at.After(downAt) && p.done.Before(restartAt):
			down++
			if p.status != http.StatusServiceUnavailable {
				downReady++
				t.Logf("/readyz probe sent %s after Redis was down answered %d", p.at.Sub(downAt).Round(time.Millisecond), p.status)
			}
		}
	}
	if unreachable > 0 {
		t.Errorf("/readyz got no answer %d times", unreachable)
	}
	if before == 0 || down == 0 {
		t.Errorf("/readyz was probed %d times before and %d times during the outage", before, down)
	}
	if downReady > 0 {
		t.Errorf("/readyz did not answer 503 %d of %d times while Redis was down", downReady, down)
	}
}

// checkFaultRecords: every 200 answer has its record; a record without one
// belongs to a request answered 503; retrying each 503 request gives the
// recorded decision if there is one, else a new one.
func checkFaultRecords(t *testing.T, hc *http.Client, base string, okBySent map[string]*loadgen.Sample, unavailable []*loadgen.Sample) {
	t.Helper()
	recs := listRecords(t, hc, base, 500)
	byKey := map[string]fullRecord{}
	for _, r := range recs {
		if prev, dup := byKey[r.IdempotencyKey]; dup {
			t.Errorf("key %s has two records: %s and %s", r.IdempotencyKey, prev.DecisionID, r.DecisionID)
		}
		byKey[r.IdempotencyKey] = r
	}
	lost := 0
	for key, s := range okBySent {
		var d struct {
			DecisionID string `json:"decision_id"`
		}
		_ = json.Unmarshal(s.Response, &d)
		r, ok := byKey[key]
		if !ok || r.DecisionID != d.DecisionID || r.ParticipantID != s.Participant {
			lost++
			if lost <= 10 {
				t.Errorf("answered decision %s (key %s) has no record after the recovery (found %+v)", d.DecisionID, key, r)
			}
		}
	}
	failedKeys := map[string]*loadgen.Sample{}
	for _, s := range unavailable {
		failedKeys[s.Key] = s
	}
	ambiguous := 0
	for key, r := range byKey {
		if _, ok := okBySent[key]; ok {
			continue
		}
		if _, ok := failedKeys[key]; ok {
			ambiguous++
			continue
		}
		t.Errorf("decision %s (key %q) is recorded but its request was neither answered nor failed", r.DecisionID, key)
	}
	t.Logf("%d decisions recorded; %d answers 200 (%d without a record), %d answers 503 (%d of them recorded: commit applied, reply lost)",
		len(recs), len(okBySent), lost, len(unavailable), ambiguous)

	// Retrying each 503 request: the recorded decision if there is one, else a new one.
	for _, s := range unavailable {
		r, err := do(hc, "POST", s.URL+"/v1/studies/"+study+"/participants/"+s.Participant+"/decisions", s.Body, s.Key)
		if err != nil || r.status != http.StatusOK {
			t.Errorf("retrying %s after the recovery: %v %d %.300s", s.Key, err, r.status, r.body)
			continue
		}
		replayed := r.header.Get("Idempotent-Replayed") == "true"
		rec, recorded := byKey[s.Key]
		switch {
		case recorded && (!replayed || !strings.Contains(string(r.body), rec.DecisionID)):
			t.Errorf("retrying %s: recorded as %s, but the retry answered (replayed %v) %.300s", s.Key, rec.DecisionID, replayed, r.body)
		case !recorded && replayed:
			t.Errorf("retrying %s: replayed, but nothing was recorded for it", s.Key)
		}
	}

}

// checkLoggedOnce: the outage and the recovery are logged once (per state
// change), not per request.
func checkLoggedOnce(t *testing.T, logs string) {
	t.Helper()
	for msg, want := range map[string][2]int{
		`"msg":"redis unreachable`:      {1, 2},
		`"msg":"redis reachable again`:  {1, 2},
		`"msg":"store unavailable"`:     {1, 2},
		`"msg":"store available again"`: {1, 2},
	} {
		if n := strings.Count(logs, msg); n < want[0] || n > want[1] {
			t.Errorf("the engine logged %s %d times during one outage, want %d to %d", msg, n, want[0], want[1])
		}
	}
}

// clearUnavailable checks that a 503 is problem+json with status 503 and a
// Retry-After of whole seconds.
func clearUnavailable(s *loadgen.Sample) error {
	mt, _, _ := mime.ParseMediaType(s.Header.Get("Content-Type"))
	if mt != "application/problem+json" {
		return fmt.Errorf("Content-Type %q", s.Header.Get("Content-Type"))
	}
	if n, err := strconv.Atoi(s.Header.Get("Retry-After")); err != nil || n < 1 {
		return fmt.Errorf("Retry-After %q", s.Header.Get("Retry-After"))
	}
	var p struct {
		Type   string `json:"type"`
		Title  string `json:"title"`
		Status int    `json:"status"`
	}
	if err := json.Unmarshal(s.Response, &p); err != nil || p.Status != http.StatusServiceUnavailable || p.Type == "" || p.Title == "" {
		return fmt.Errorf("body %.300s", s.Response)
	}
	return nil
}
