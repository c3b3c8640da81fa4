package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jitai/jitai/engine/trial"
)

// fullRecord is a listed decision record, as much of it as the checks need.
type fullRecord struct {
	DecisionID         string    `json:"decision_id"`
	ParticipantID      string    `json:"participant_id"`
	DecisionPoint      string    `json:"decision_point"`
	Time               time.Time `json:"time"`
	Action             string    `json:"action"`
	Available          bool      `json:"available"`
	UnavailableReasons []string  `json:"unavailable_reasons"`
	IdempotencyKey     string    `json:"idempotency_key"`
	// Randomised and Factors: the draws (for the health checks).
	Randomised bool               `json:"randomised"`
	Factors    []trial.FactorDraw `json:"factors"`
}

// listRecords lists every decision of the study through base, following
// next_cursor with small pages (so that paging is exercised).
func listRecords(t *testing.T, hc *http.Client, base string, pageSize int) []fullRecord {
	t.Helper()
	var out []fullRecord
	cursor := ""
	for page := 0; page < 100000; page++ {
		q := url.Values{"limit": {fmt.Sprint(pageSize)}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		r, err := do(hc, "GET", base+"/v1/studies/"+study+"/decisions?"+q.Encode(), nil, "")
		if err != nil || r.status != http.StatusOK {
			t.Fatalf("listing decisions through %s: %v %d %.300s", base, err, r.status, r.body)
		}
		var doc struct {
			Decisions  []fullRecord `json:"decisions"`
			NextCursor string       `json:"next_cursor"`
		}
		if err := json.Unmarshal(r.body, &doc); err != nil {
			t.Fatalf("listing: %v", err)
		}
		out = append(out, doc.Decisions...)
		if doc.NextCursor == "" {
			return out
		}
		cursor = doc.NextCursor
	}
	t.Fatal("listing does not end")
	return nil
}

// attempt is one sending of a decision request to one engine.
type attempt struct {
	engine   int
	status   int
	body     []byte
	replayed bool
	err      error
}

// logical is one decision request (one Idempotency-Key), possibly sent
// several times to either engine.
type logical struct {
	participant string
	key         string
	when        time.Time
	body        []byte

	mu       sync.Mutex
	attempts []attempt
}

func (l *logical) add(a attempt) {
	l.mu.Lock()
	l.attempts = append(l.attempts, a)
	l.mu.Unlock()
}

// answer is the first 200 answer of l, if any.
func (l *logical) answer() ([]byte, bool) {
	for _, a := range l.attempts {
		if a.err == nil && a.status == http.StatusOK {
			return a.body, true
		}
	}
	return nil, false
}

var londonTZ = func() *time.Location {
	loc, err := time.LoadLocation("Europe/London")
	if err != nil {
		panic(err)
	}
	return loc
}()

// localDay is the participant-local (Europe/London) date of t.
func localDay(t time.Time) string { return t.In(londonTZ).Format(time.DateOnly) }

func hasReason(reasons []string, r string) bool { return slices.Contains(reasons, r) }

// TestRedisTwoEnginesShareParticipants runs two `jitai serve --store redis`
// processes on one private Redis and hammers them concurrently for the same
// participants: 8 workers per engine; every participant has several
// requests (distinct Idempotency-Keys) for the app point on_demand at each
// of many decision times of the same local days, each sent to a random engine, half of them sent to
// both engines at once, and every answered one retried on both engines
// afterwards. Each participant's decision times only move forward (a time
// is started once every request at the previous time has been answered),
// so the burden caps must hold exactly whatever order the engines commit
// in. It then checks, through both engines' API and directly in Redis:
// the caps hold and bite exactly when they should, each key has one record
// and the same answer bytes from both engines, every answered decision is
// listed exactly once and nothing is recorded that was not answered.
func TestRedisTwoEnginesShareParticipants(t *testing.T) {
	rp := startRedis(t, false)
	engines := []*server{
		startRedisEngine(t, rp),
		startRedisEngine(t, rp),
	}
	hc := newHTTPClient()
	defer hc.CloseIdleConnections()

	ids := make([]string, 20)
	for i := range ids {
		ids[i] = fmt.Sprintf("twin-%02d", i)
	}
	enrolOnBoth(t, hc, engines, ids)
	if t.Failed() {
		t.FailNow()
	}

	// Decision times: three local days, 14 times a day from 07:30 (quiet
	// hours) to 22:30 (quiet hours), some under 90 minutes apart, more
	// available times than the daily cap of 4 allows.
	slotsOfDay := [][2]int{{7, 30}, {8, 30}, {9, 15}, {10, 0}, {11, 30}, {12, 30}, {13, 0}, {14, 30}, {15, 30}, {16, 0}, {17, 30}, {19, 0}, {20, 30}, {22, 30}}
	var slots []time.Time
	day0 := laterDay(londonTZ)
	for day := range 3 {
		for _, s := range slotsOfDay {
			slots = append(slots, time.Date(day0.Year(), day0.Month(), day0.Day()+day, s[0], s[1], 0, 0, londonTZ))
		}
	}
	const perSlot = 4 // distinct requests per participant at each time

	sems := []chan struct{}{make(chan struct{}, 8), make(chan struct{}, 8)} // 8 workers per engine
	send := func(l *logical, e int) {
		sems[e] <- struct{}{}
		r, err := do(hc, "POST", engines[e].base+"/v1/studies/"+study+"/participants/"+l.participant+"/decisions", l.body, l.key)
		<-sems[e]
		l.add(attempt{engine: e, status: r.status, body: r.body, replayed: r.header.Get("Idempotent-Replayed") == "true", err: err})
	}

	start := time.Now()
	var all []*logical
	var wg sync.WaitGroup
	var allMu sync.Mutex
	for pi, p := range ids {
		wg.Go(func() {
			rng := mrand.New(mrand.NewPCG(uint64(pi), 7))
			for si, when := range slots {
				var swg sync.WaitGroup
				for k := range perSlot {
					l := &logical{
						participant: p,
						key:         fmt.Sprintf("%s-s%02d-%d", p, si, k),
						when:        when,
						body:        fmt.Appendf(nil, `{"decision_point":%q,"time":%q}`, onDemand, when.UTC().Format(time.RFC3339)),
					}
					allMu.Lock()
					all = append(all, l)
					allMu.Unlock()
					e := rng.IntN(2)
					swg.Go(func() { send(l, e) })
					if rng.IntN(2) == 0 { // the same key to the other engine at the same time
						swg.Go(func() { send(l, 1-e) })
					}
				}
				swg.Wait()
			}
		})
	}
	wg.Wait()
	hammered := time.Since(start)

	// Retry every answered key on both engines.
	work := make(chan func())
	var rwg sync.WaitGroup
	for range 16 {
		rwg.Go(func() {
			for f := range work {
				f()
			}
		})
	}
	for _, l := range all {
		if _, ok := l.answer(); ok {
			for e := range engines {
				work <- func() { send(l, e) }
			}
		}
	}
	close(work)
	rwg.Wait()

	sends, errored := 0, 0
	for _, l := range all {
		sends += len(l.attempts)
		for _, a := range l.attempts {
			if a.err != nil || a.status != http.StatusOK {
				errored++
				if errored <= 10 {
					t.Errorf("request %s to engine %d: %v %d %.300s", l.key, a.engine, a.err, a.status, a.body)
				}
			}
		}
	}
	t.Logf("%d decision requests (%d keys) in %s, then retries: %d sends in all, %d not answered 200", len(all), len(all), hammered.Round(time.Millisecond), sends, errored)

	// Same answer bytes for every sending of a key, from both engines; one
	// of them decided, the others replayed.
	answerOf := map[string]string{} // key -> decision id answered
	for _, l := range all {
		first, ok := l.answer()
		if !ok {
			continue
		}
		var d struct {
			DecisionID string `json:"decision_id"`
		}
		if err := json.Unmarshal(first, &d); err != nil || d.DecisionID == "" {
			t.Errorf("%s: answer without decision_id: %s", l.key, first)
			continue
		}
		answerOf[l.key] = d.DecisionID
		fresh := 0
		engineSaw := [2]bool{}
		for _, a := range l.attempts {
			if a.err != nil || a.status != http.StatusOK {
				continue
			}
			engineSaw[a.engine] = true
			if !a.replayed {
				fresh++
			}
			if !bytes.Equal(a.body, first) {
				t.Errorf("%s: engine %d answered different bytes:\n%s\n%s", l.key, a.engine, first, a.body)
			}
		}
		if fresh != 1 {
			t.Errorf("%s: %d answers were fresh decisions (not Idempotent-Replayed), want exactly 1", l.key, fresh)
		}
		if !engineSaw[0] || !engineSaw[1] {
			t.Errorf("%s: not answered by both engines", l.key)
		}
	}

	recs, keys := checkListedRecords(t, hc, engines, all, answerOf)
	checkRedisRecords(t, rp, ids, recs, keys, answerOf)
	checkBurden(t, recs, 4, 90*time.Minute)
}

// enrolOnBoth enrols every participant on both engines at once: one
// enrolment each, the same enrolment from both.
func enrolOnBoth(t *testing.T, hc *http.Client, engines []*server, ids []string) {
	t.Helper()
	type enrolled struct {
		status int
		doc    string
	}
	enrolments := make([][2]enrolled, len(ids))
	var wg sync.WaitGroup
	for i, p := range ids {
		for e := range engines {
			wg.Go(func() {
				r, err := do(hc, "POST", engines[e].base+"/v1/studies/"+study+"/participants", []byte(`{"participant_id":"`+p+`"}`), "")
				if err != nil {
					t.Errorf("enrolling %s on engine %d: %v", p, e, err)
					return
				}
				var doc map[string]any
				_ = json.Unmarshal(r.body, &doc)
				delete(doc, "status") // same enrolment, whichever engine answers
				norm, _ := json.Marshal(doc)
				enrolments[i][e] = enrolled{r.status, string(norm)}
			})
		}
	}
	wg.Wait()
	for i, p := range ids {
		a, b := enrolments[i][0], enrolments[i][1]
		created := 0
		for _, x := range []enrolled{a, b} {
			switch x.status {
			case http.StatusCreated:
				created++
			case http.StatusOK:
			default:
				t.Errorf("enrolling %s: status %d", p, x.status)
			}
		}
		if created != 1 {
			t.Errorf("enrolling %s on both engines at once: %d answers said created, want exactly 1", p, created)
		}
		if a.doc != b.doc {
			t.Errorf("enrolling %s: the engines answered different enrolments:\n%s\n%s", p, a.doc, b.doc)
		}
	}
}

// checkListedRecords: both engines list the same records, one per answered
// key, each as answered. It returns the records and the keys sent.
func checkListedRecords(t *testing.T, hc *http.Client, engines []*server, all []*logical, answerOf map[string]string) ([]fullRecord, map[string]*logical) {
	t.Helper()
	recs := listRecords(t, hc, engines[0].base, 97)
	recs1 := listRecords(t, hc, engines[1].base, 250)
	if len(recs) != len(recs1) {
		t.Errorf("engine 0 lists %d decisions, engine 1 %d", len(recs), len(recs1))
	} else {
		for i := range recs {
			if recs[i].DecisionID != recs1[i].DecisionID {
				t.Errorf("listing differs between the engines at %d: %s vs %s", i, recs[i].DecisionID, recs1[i].DecisionID)
				break
			}
		}
	}
	byID := map[string]fullRecord{}
	byKey := map[string][]fullRecord{}
	for _, r := range recs {
		if _, dup := byID[r.DecisionID]; dup {
			t.Errorf("decision %s listed twice", r.DecisionID)
		}
		byID[r.DecisionID] = r
		byKey[r.IdempotencyKey] = append(byKey[r.IdempotencyKey], r)
	}
	keys := map[string]*logical{}
	for _, l := range all {
		keys[l.key] = l
	}
	for key, rs := range byKey {
		l, ok := keys[key]
		switch {
		case !ok:
			t.Errorf("decision %s has idempotency key %q, which was never sent", rs[0].DecisionID, key)
		case len(rs) != 1:
			t.Errorf("idempotency key %s has %d records, want 1", key, len(rs))
		default:
			if id, answered := answerOf[key]; !answered {
				if !slices.ContainsFunc(l.attempts, func(a attempt) bool { return a.err != nil || a.status != http.StatusOK }) {
					t.Errorf("decision %s (key %s) is recorded but no request for it failed and none was answered", rs[0].DecisionID, key)
				}
			} else if id != rs[0].DecisionID {
				t.Errorf("key %s: answered decision %s, recorded %s", key, id, rs[0].DecisionID)
			}
		}
	}
	for key, id := range answerOf {
		r, ok := byID[id]
		if !ok {
			t.Errorf("answered decision %s (key %s) is not listed", id, key)
			continue
		}
		if l := keys[key]; r.ParticipantID != l.participant || !r.Time.Equal(l.when) {
			t.Errorf("decision %s: recorded for %s at %s, asked for %s at %s", id, r.ParticipantID, r.Time, l.participant, l.when)
		}
	}
	if len(recs) != len(answerOf) {
		t.Errorf("%d decisions recorded, %d keys answered", len(recs), len(answerOf))
	}

	return recs, keys
}

// checkRedisRecords looks directly in Redis: each participant's records,
// their time index and one idempotency entry per key, naming the answered
// decision with the answered bytes.
func checkRedisRecords(t *testing.T, rp *redisProc, ids []string, recs []fullRecord, keys map[string]*logical, answerOf map[string]string) {
	t.Helper()
	ctx := context.Background()
	rdb := rp.client()
	perParticipant := map[string]int{}
	for _, r := range recs {
		perParticipant[r.ParticipantID]++
	}
	for _, p := range ids {
		pk := participantKey(p)
		nrec, err1 := rdb.HLen(ctx, pk+":d").Result()
		ntime, err2 := rdb.ZCard(ctx, pk+":dt").Result()
		if err1 != nil || err2 != nil {
			t.Fatalf("reading %s: %v %v", pk, err1, err2)
		}
		if int(nrec) != perParticipant[p] || int(ntime) != perParticipant[p] {
			t.Errorf("%s: %d records and %d time index entries in Redis, %d listed", p, nrec, ntime, perParticipant[p])
		}
		var idemKeys []string
		iter := rdb.Scan(ctx, 0, pk+":i:*", 1000).Iterator()
		for iter.Next(ctx) {
			idemKeys = append(idemKeys, iter.Val())
		}
		if err := iter.Err(); err != nil {
			t.Fatal(err)
		}
		if len(idemKeys) != perParticipant[p] {
			t.Errorf("%s: %d idempotency entries in Redis, %d records", p, len(idemKeys), perParticipant[p])
		}
		for _, k := range idemKeys {
			doc, err := rdb.Get(ctx, k).Bytes()
			if err != nil {
				t.Fatal(err)
			}
			var entry struct {
				Key        string `json:"key"`
				DecisionID string `json:"decision_id"`
				Response   []byte `json:"response"`
			}
			if err := json.Unmarshal(doc, &entry); err != nil {
				t.Fatalf("%s: %v", k, err)
			}
			l := keys[entry.Key]
			body, ok := []byte(nil), false
			if l != nil {
				body, ok = l.answer()
			}
			switch {
			case l == nil || !strings.HasSuffix(k, ":i:"+entry.Key):
				t.Errorf("idempotency entry %s names key %q", k, entry.Key)
			case ok && (entry.DecisionID != answerOf[entry.Key] || !bytes.Equal(entry.Response, body)):
				t.Errorf("idempotency entry of %s: decision %s, answered %s (bytes equal: %v)", entry.Key, entry.DecisionID, answerOf[entry.Key], bytes.Equal(entry.Response, body))
			}
		}
	}
}

// checkBurden checks the burden caps on records whose participant's
// decision times only moved forward (all requests at one time were
// answered before any at a later time was sent): at most maxPerDay
// deliveries per participant-local day and none under minGap after
// another; and the caps bite exactly when they should: a record is capped
// (burden_daily_cap, burden_min_gap) if and only if the deliveries before
// it say so. Deliveries at the same time as the record may have been
// committed before or after it, so they can justify a cap but are not
// required to.
func checkBurden(t *testing.T, recs []fullRecord, maxPerDay int, minGap time.Duration) {
	t.Helper()
	byP := map[string][]fullRecord{}
	for _, r := range recs {
		byP[r.ParticipantID] = append(byP[r.ParticipantID], r)
	}
	var delivered, dailyCapped, gapCapped, quiet int
	for p, rs := range byP {
		sort.SliceStable(rs, func(i, j int) bool { return rs[i].Time.Before(rs[j].Time) })
		var deliveries []fullRecord
		perDay := map[string]int{}
		for _, r := range rs {
			if r.Action == "deliver" {
				deliveries = append(deliveries, r)
				perDay[localDay(r.Time)]++
			}
		}
		for day, n := range perDay {
			if n > maxPerDay {
				t.Errorf("%s: %d deliveries on %s, cap %d", p, n, day, maxPerDay)
			}
		}
		for i := 1; i < len(deliveries); i++ {
			if gap := deliveries[i].Time.Sub(deliveries[i-1].Time); gap < minGap {
				t.Errorf("%s: deliveries %s at %s and %s at %s are %s apart, minimum %s", p,
					deliveries[i-1].DecisionID, deliveries[i-1].Time.Format(time.RFC3339), deliveries[i].DecisionID, deliveries[i].Time.Format(time.RFC3339), gap, minGap)
			}
		}
		delivered += len(deliveries)
		for _, r := range rs {
			day := localDay(r.Time)
			beforeToday, atSameTime := 0, 0
			var lastBefore time.Time
			for _, d := range deliveries {
				if d.DecisionID == r.DecisionID {
					continue
				}
				switch {
				case d.Time.Before(r.Time):
					if localDay(d.Time) == day {
						beforeToday++
					}
					lastBefore = d.Time
				case d.Time.Equal(r.Time):
					atSameTime++
				}
			}
			daily := hasReason(r.UnavailableReasons, "burden_daily_cap")
			gap := hasReason(r.UnavailableReasons, "burden_min_gap")
			if hasReason(r.UnavailableReasons, "quiet_hours") {
				quiet++
			}
			if daily {
				dailyCapped++
				if beforeToday+atSameTime < maxPerDay {
					t.Errorf("%s: decision %s at %s was capped (burden_daily_cap) after only %d deliveries that day", p, r.DecisionID, r.Time.Format(time.RFC3339), beforeToday+atSameTime)
				}
			} else if beforeToday >= maxPerDay {
				t.Errorf("%s: decision %s at %s was not capped (burden_daily_cap) after %d deliveries that day: %v", p, r.DecisionID, r.Time.Format(time.RFC3339), beforeToday, r.UnavailableReasons)
			}
			recent := !lastBefore.IsZero() && r.Time.Sub(lastBefore) < minGap
			if gap {
				gapCapped++
				if !recent && atSameTime == 0 {
					t.Errorf("%s: decision %s at %s was capped (burden_min_gap) without a delivery in the %s before it", p, r.DecisionID, r.Time.Format(time.RFC3339), minGap)
				}
			} else if recent {
				t.Errorf("%s: decision %s at %s was not capped (burden_min_gap) %s after a delivery: %v", p, r.DecisionID, r.Time.Format(time.RFC3339), r.Time.Sub(lastBefore), r.UnavailableReasons)
			}
			if r.Action == "deliver" && (daily || gap || !r.Available) {
				t.Errorf("%s: decision %s delivered although unavailable: %v", p, r.DecisionID, r.UnavailableReasons)
			}
		}
	}
	t.Logf("%d decisions: %d delivered, %d capped by the daily cap, %d by the minimum gap, %d in quiet hours", len(recs), delivered, dailyCapped, gapCapped, quiet)
	if dailyCapped == 0 || gapCapped == 0 || delivered == 0 {
		t.Errorf("the load did not make the caps bite (daily %d, gap %d, delivered %d): the test checks nothing", dailyCapped, gapCapped, delivered)
	}
}

// TestRedisBurdenCapsOutOfOrder: a decision whose time is earlier than a
// delivery already recorded for the participant (a late request, or two
// near-simultaneous requests committed in the other order, here on two
// engines) must still respect the burden caps: no two deliveries under 90
// minutes apart, at most 4 on a local day. (This once failed: the caps
// only counted deliveries before the decision time.)
func TestRedisBurdenCapsOutOfOrder(t *testing.T) {
	rp := startRedis(t, false)
	engines := []*server{startRedisEngine(t, rp), startRedisEngine(t, rp)}
	hc := newHTTPClient()
	defer hc.CloseIdleConnections()
	const p = "late-00"
	enrolAll(t, hc, engines[0].base, []string{p})

	// decideUntilDelivered asks for decisions at when on engine e, with a
	// new key each time, until one delivers or the answer is not available.
	n := 0
	decideUntilDelivered := func(e int, when time.Time) (string, []string) {
		for range 40 {
			n++
			body := fmt.Appendf(nil, `{"decision_point":%q,"time":%q}`, onDemand, when.UTC().Format(time.RFC3339))
			r, err := do(hc, "POST", engines[e].base+"/v1/studies/"+study+"/participants/"+p+"/decisions", body, fmt.Sprintf("late-%d", n))
			if err != nil || r.status != http.StatusOK {
				t.Fatalf("decision at %s: %v %d %.300s", when, err, r.status, r.body)
			}
			var d struct {
				Action  string   `json:"action"`
				Reasons []string `json:"reasons"`
			}
			_ = json.Unmarshal(r.body, &d)
			if d.Action == "deliver" || !slices.Contains(d.Reasons, "randomised_no_prompt") {
				return d.Action, d.Reasons
			}
		}
		t.Fatalf("no delivery at %s in 40 randomised decisions", when)
		return "", nil
	}
	day := laterDay(londonTZ)
	eleven := time.Date(day.Year(), day.Month(), day.Day(), 11, 0, 0, 0, londonTZ)
	if action, reasons := decideUntilDelivered(0, eleven); action != "deliver" {
		t.Fatalf("first decision at 11:00: %s %v", action, reasons)
	}
	// A request for 10:00, answered after the 11:00 delivery: 60 minutes
	// from it, so burden_min_gap must make it unavailable.
	ten := eleven.Add(-time.Hour)
	if action, reasons := decideUntilDelivered(1, ten); action == "deliver" {
		t.Errorf("a decision at 10:00 delivered although a delivery at 11:00 was recorded (60 minutes apart, minimum 90)")
	} else if !slices.Contains(reasons, "burden_min_gap") {
		t.Errorf("a decision at 10:00 after a delivery at 11:00: %s %v, want burden_min_gap", action, reasons)
	}
	checkBurdenCaps(t, listRecords(t, hc, engines[0].base, 100), 4, 90*time.Minute)
}

// checkBurdenCaps checks only the caps themselves: at most maxPerDay
// deliveries per participant-local day and none under minGap apart.
func checkBurdenCaps(t *testing.T, recs []fullRecord, maxPerDay int, minGap time.Duration) {
	t.Helper()
	byP := map[string][]time.Time{}
	for _, r := range recs {
		if r.Action == "deliver" {
			byP[r.ParticipantID] = append(byP[r.ParticipantID], r.Time)
		}
	}
	for p, ts := range byP {
		slices.SortFunc(ts, func(a, b time.Time) int { return a.Compare(b) })
		perDay := map[string]int{}
		for i, ts1 := range ts {
			perDay[localDay(ts1)]++
			if i > 0 && ts1.Sub(ts[i-1]) < minGap {
				t.Errorf("%s: deliveries at %s and %s, %s apart (minimum %s)", p, ts[i-1].Format(time.RFC3339), ts1.Format(time.RFC3339), ts1.Sub(ts[i-1]), minGap)
			}
		}
		for day, n := range perDay {
			if n > maxPerDay {
				t.Errorf("%s: %d deliveries on %s (cap %d)", p, n, day, maxPerDay)
			}
		}
	}
}
