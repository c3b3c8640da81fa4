package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/jitai/jitai/engine/schedule"
)

// TestClockKillMidBurst: the embedded store's engine is SIGKILLed while the
// trial clock is writing the records of a burst of scheduled points, and
// restarted over the same data once some of those points' windows have
// closed. Two studies share the point's instant: kill-short's window (20s)
// has closed at the restart, kill-long's (10m) has not. Afterwards every
// (participant, point) has exactly one record under its point key; a point
// still inside its window at the restart is decided, one past it and not
// decided before the kill is recorded missed; every decision delivered
// before the kill is in the store; every deliver decision reaches the
// receiver at least once (or, in kill-short, expired in the outbox while the
// engine was down), and an id arrives more than once only across the kill.
//
// Nothing here depends on how fast the burst is: points are classified by
// their window's end against the restart instant the test observes, and a
// burst that ends before the kill lands just leaves nothing to miss.
func TestClockKillMidBurst(t *testing.T) {
	t.Parallel() // waits for wall-clock minutes: overlaps with the other clock test
	const perStudy = 1000
	jitaiBinary(t) // built before the clock starts counting
	hc := newHTTPClient()
	defer hc.CloseIdleConnections()
	ids := make([]string, perStudy)
	for i := range ids {
		ids[i] = fmt.Sprintf("k%04d", i)
	}
	// The point is the next whole minute at least margin ahead (enrolment
	// takes a second or two). If enrolment runs past it, the test starts
	// over on fresh data with twice the margin rather than failing.
	var (
		hook        *hookReceiver
		studies     string
		data        string
		env         []string
		srv         *server
		at          time.Time
		short, long clockStudy
	)
	for margin := 25 * time.Second; ; margin *= 2 {
		start := time.Now()
		at = wholeMinuteAfter(start, margin)
		short = clockStudy{ID: "kill-short", Points: []time.Time{at}, TTL: 20 * time.Second}
		long = clockStudy{ID: "kill-long", Points: []time.Time{at}, TTL: 10 * time.Minute}
		hook = newHookReceiver(t)
		studies, data = t.TempDir(), t.TempDir()
		for _, s := range []clockStudy{short, long} {
			writeClockStudy(t, studies, s, hook.url("first"))
		}
		env = []string{clockSecretEnv + "=" + hook.secret}
		srv = startServerEnv(t, data, env, "--studies", studies)
		late := ""
		for _, s := range []clockStudy{short, long} {
			for _, e := range enrolParallel(t, hc, []string{srv.base}, s.ID, ids, 16) {
				if !e.enrolledAt.Before(at) && late == "" {
					late = fmt.Sprintf("%s/%s enrolled at %s", s.ID, e.id, e.enrolledAt.Format(time.TimeOnly))
				}
			}
		}
		if late == "" {
			t.Logf("enrolled %d participants in %s; the point is at %s", 2*perStudy, time.Since(start).Round(time.Millisecond), at.Format(time.TimeOnly))
			break
		}
		if margin > 5*time.Minute {
			t.Fatalf("enrolment ran past the point again with a margin of %s (%s)", margin, late)
		}
		t.Logf("enrolment ran past the point at %s (%s): starting over with a margin of %s", at.Format(time.TimeOnly), late, 2*margin)
		_ = srv.cmd.Process.Kill()
		srv.wait(10 * time.Second)
	}

	// Kill as soon as the burst shows: the first delivery arrives after the
	// clock's first batch is committed.
	sleepUntil(at)
	if !waitUntil(at.Add(2*time.Minute), 2*time.Millisecond, func() bool { return hook.arrived.Load() > 0 }) {
		t.Fatalf("no delivery within 2 minutes of the point")
	}
	if err := srv.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	killedAt := time.Now()
	if !srv.wait(10 * time.Second) {
		t.Fatal("the killed engine did not exit")
	}
	t.Logf("SIGKILL %s after the point, %d deliveries received by then", killedAt.Sub(at).Round(time.Millisecond), hook.distinct())

	// Down until kill-short's window has closed, then restart. The
	// restarted engine posts to another path, so that each arrival says
	// which run sent it.
	sleepUntil(at.Add(short.TTL + time.Second))
	for _, s := range []clockStudy{short, long} {
		writeClockStudy(t, studies, s, hook.url("restart"))
	}
	restartAt := time.Now()
	srv2 := startServerEnv(t, data, env, "--studies", studies)

	want := map[killPoint]bool{}
	for _, s := range []clockStudy{short, long} {
		for _, p := range ids {
			want[killPoint{s.ID, p, "p1", at.Format(time.DateOnly)}] = true
		}
	}
	ttl := map[string]time.Duration{short.ID: short.TTL, long.ID: long.TTL}
	var recs map[string][]clockRecord
	complete := func() bool {
		recs = map[string][]clockRecord{}
		n := 0
		for _, s := range []clockStudy{short, long} {
			r, err := listStudy(hc, srv2.base, s.ID)
			if err != nil {
				t.Logf("listing %s: %v", s.ID, err)
				return false
			}
			recs[s.ID] = r
			n += len(r)
		}
		if n < len(want) {
			return false
		}
		got := hook.snapshot()
		for _, s := range []clockStudy{short, long} {
			for _, r := range recs[s.ID] {
				if (r.Action != "deliver" && r.Action != "safety") || len(got[r.DecisionID]) > 0 {
					continue
				}
				if r.ExpiresAt.After(time.Now()) {
					return false // not delivered yet
				}
				if deliveryStatus(t, hc, srv2.base, r) == "queued" {
					return false // expired, but not marked so yet
				}
			}
		}
		return true
	}
	if !waitUntil(time.Now().Add(5*time.Minute), 250*time.Millisecond, complete) {
		t.Fatalf("not every point recorded and delivered within 5 minutes of the restart: %d + %d records of %d points, %d ids received",
			len(recs[short.ID]), len(recs[long.ID]), len(want), hook.distinct())
	}
	got := hook.snapshot()

	// One record per point, under the point's key, classified by its window.
	stored, decidedBefore, decidedAfter, missed, lastRecorded := checkKillRecords(t, recs, want, ttl, at, restartAt, short, long)

	// Deliveries: what the killed engine delivered is stored; every deliver
	// decision arrived, or (kill-short) expired while the engine was down.
	beforeKill, delivering, expired, dupIDs := checkKillDeliveries(t, hc, srv2.base, got, stored, restartAt)
	if bad := hook.rejected(); len(bad) > 0 {
		t.Errorf("%d webhook requests failed verification, e.g. %s", len(bad), bad[0])
	}
	t.Logf("records: %d decided before the kill, %d decided after the restart, %d missed; %d deliver decisions: %d ids received (%d before the kill), %d expired in the outbox while down; %d ids arrived more than once (%d duplicate arrivals)",
		decidedBefore, decidedAfter, missed, delivering, len(got), beforeKill, expired, dupIDs, duplicates(got))
	t.Logf("last record %s after the point, last delivery %s after the point (restart %s after it)",
		lastRecorded.Sub(at).Round(time.Millisecond), hook.lastArrival().Sub(at).Round(time.Millisecond), restartAt.Sub(at).Round(time.Millisecond))
	srv2.stop()
}

// deliveryStatus is the status of a decision's delivery log.
// killPoint is one scheduled point of the kill test.
type killPoint struct{ study, participant, point, date string }

// checkKillRecords checks one record per point, under the point's key,
// classified by its window against the restart: missed only if its window
// had closed by then, decided after the restart only inside it.
func checkKillRecords(t *testing.T, recs map[string][]clockRecord, want map[killPoint]bool, ttl map[string]time.Duration, at, restartAt time.Time, short, long clockStudy) (stored map[string]clockRecord, decidedBefore, decidedAfter, missed int, lastRecorded time.Time) {
	t.Helper()
	stored = map[string]clockRecord{}
	seen := map[killPoint]string{}
	for _, s := range []clockStudy{short, long} {
		for _, r := range recs[s.ID] {
			stored[r.DecisionID] = r
			k := killPoint{s.ID, r.ParticipantID, r.DecisionPoint, r.ScheduledAt.UTC().Format(time.DateOnly)}
			if !want[k] {
				t.Errorf("%s: record %s for %v, which is no scheduled point of the test", s.ID, r.DecisionID, k)
				continue
			}
			if prev, dup := seen[k]; dup {
				t.Errorf("%s: point %v has two records: %s and %s", s.ID, k, prev, r.DecisionID)
				continue
			}
			seen[k] = r.DecisionID
			if key := schedule.PointKey(s.ID, r.ParticipantID, r.DecisionPoint, k.date); r.IdempotencyKey != key {
				t.Errorf("%s: record %s has key %q, want the point key %q", s.ID, r.DecisionID, r.IdempotencyKey, key)
			}
			if r.Trigger != "scheduled" || !r.ScheduledAt.Equal(at) {
				t.Errorf("%s: record %s: trigger %q scheduled at %s, want scheduled at %s", s.ID, r.DecisionID, r.Trigger, r.ScheduledAt, at)
			}
			end := r.ScheduledAt.Add(ttl[s.ID])
			if r.RecordedAt.After(lastRecorded) {
				lastRecorded = r.RecordedAt
			}
			switch {
			case r.missed():
				missed++
				if r.Action != "none" {
					t.Errorf("%s: missed record %s has action %s", s.ID, r.DecisionID, r.Action)
				}
				if end.After(restartAt) {
					t.Errorf("%s: record %s is missed, but its window (until %s) was open at the restart (%s)", s.ID, r.DecisionID, end, restartAt)
				}
				if r.RecordedAt.Before(end) {
					t.Errorf("%s: record %s recorded missed at %s, inside its window (until %s)", s.ID, r.DecisionID, r.RecordedAt, end)
				}
			case r.RecordedAt.Before(restartAt): // by the killed engine
				decidedBefore++
			default:
				decidedAfter++
				if !end.After(restartAt) {
					t.Errorf("%s: record %s decided at %s after the restart, past its window (until %s)", s.ID, r.DecisionID, r.RecordedAt, end)
				}
			}
			if !r.missed() && !r.RecordedAt.Before(end) {
				t.Errorf("%s: record %s decided at %s, past its window (until %s)", s.ID, r.DecisionID, r.RecordedAt, end)
			}
		}
	}
	for k := range want {
		if _, ok := seen[k]; !ok {
			t.Errorf("point %v has no record", k)
		}
	}
	return stored, decidedBefore, decidedAfter, missed, lastRecorded
}

// checkKillDeliveries checks that every webhook id is a stored deliver or
// safety decision, that every such decision arrived or expired while the
// engine was down, and that an id arrived twice only across the kill.
func checkKillDeliveries(t *testing.T, hc *http.Client, base string, got map[string][]arrival, stored map[string]clockRecord, restartAt time.Time) (beforeKill, delivering, expired, dupIDs int) {
	t.Helper()
	for id, arrivals := range got {
		if r, ok := stored[id]; !ok || (r.Action != "deliver" && r.Action != "safety") {
			t.Errorf("webhook id %s (from %s) is no deliver/safety decision in the store (%+v)", id, arrivals[0].from, r)
		}
		if slices.ContainsFunc(arrivals, func(a arrival) bool { return a.from == "first" }) {
			beforeKill++
		}
	}
	for id, r := range stored {
		if r.Action != "deliver" && r.Action != "safety" {
			continue
		}
		delivering++
		if len(got[id]) > 0 {
			continue
		}
		st := deliveryStatus(t, hc, base, r)
		if st != "expired" || r.ExpiresAt.After(restartAt) {
			t.Errorf("%s: deliver decision %s never reached the receiver: delivery %s, expires %s, restart %s", r.ParticipantID, id, st, r.ExpiresAt, restartAt)
			continue
		}
		expired++
	}
	for id, arrivals := range got {
		if len(arrivals) > 1 {
			// At least once: sent by the killed engine, which died before
			// it stored the outcome, and again after the restart.
			dupIDs++
			if len(arrivals) != 2 || arrivals[0].from != "first" || arrivals[1].from != "restart" {
				t.Errorf("webhook id %s arrived %d times, not once before and once after the kill: %v", id, len(arrivals), arrivals)
			}
		}
	}
	return beforeKill, delivering, expired, dupIDs
}

func deliveryStatus(t *testing.T, hc *http.Client, base string, r clockRecord) string {
	t.Helper()
	res, err := do(hc, "GET", base+"/v1/studies/"+r.Study+"/decisions/"+r.DecisionID+"/delivery", nil, "")
	if err != nil || res.status != http.StatusOK {
		return fmt.Sprintf("unknown (%v %d %.200s)", err, res.status, res.body)
	}
	var d struct {
		Status string `json:"status"`
	}
	if err := json.Unmarshal(res.body, &d); err != nil {
		return "unreadable"
	}
	return d.Status
}
