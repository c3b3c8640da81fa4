package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jitai/jitai/engine/trial"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
	"go.uber.org/zap/zaptest/observer"

	"github.com/jitai/jitai/engine/store/storetest"
)

// openAt opens a store with a fresh key prefix on the server(s) url names;
// the keys are deleted when t ends. The caller closes the store.
func openAt(t *testing.T, url string, opts Options) *Store {
	t.Helper()
	if opts.KeyPrefix == "" {
		opts.KeyPrefix = uniquePrefix(strings.ReplaceAll(t.Name(), "/", "."))
	}
	s, err := Open(t.Context(), url, opts, zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	prefix := opts.KeyPrefix
	t.Cleanup(func() { deleteKeys(t, url, prefix) })
	return s
}

// runConformance runs the store conformance suite against url; reopening
// is a new client over the same keys.
func runConformance(t *testing.T, url string, opts Options) {
	open := func(t *testing.T) trial.Store { return openAt(t, url, opts) }
	reopen := func(t *testing.T, old trial.Store) trial.Store {
		opts := old.(*Store).opts
		if err := old.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		s, err := Open(t.Context(), url, opts, zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)))
		if err != nil {
			t.Fatalf("reopening: %v", err)
		}
		return s
	}
	storetest.Run(t, open, reopen)
}

func TestConformance(t *testing.T) {
	t.Run("Single", func(t *testing.T) {
		t.Parallel()
		runConformance(t, singleURL(t), Options{})
	})
	t.Run("SingleNoCache", func(t *testing.T) {
		t.Parallel()
		runConformance(t, singleURL(t), Options{CacheParticipants: -1})
	})
	t.Run("Cluster", func(t *testing.T) {
		t.Parallel()
		c := startCluster(t)
		runConformance(t, c.url(), Options{})
	})
}

// testClock is a clock a test moves by hand (Options.Now): the test
// advances it past a lease or a grace period instead of sleeping through
// it. It starts at the real time it was made, so that it agrees with the
// times the Redis server stamps on stream entries.
type testClock struct{ ns atomic.Int64 }

func newTestClock() *testClock {
	c := &testClock{}
	c.ns.Store(time.Now().UnixNano())
	return c
}

func (c *testClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *testClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// enrol enrols one participant in stratum "a".
func enrol(t testing.TB, s *Store, study, id string) *trial.Participant {
	t.Helper()
	p := &trial.Participant{Study: study, ID: id, Stratum: "a", Status: trial.StatusActive, EnrolledAt: time.Now().UTC()}
	got, _, err := s.Enroll(context.Background(), p, func(int64) error { return nil })
	if err != nil {
		t.Fatalf("Enroll(%s): %v", id, err)
	}
	return got
}

// TestHashTags checks on a real cluster that every key one participant's
// operations write carries that participant's hash tag, so it lives in
// their slot, and that the study-level keys live in the study's slot.
func TestHashTags(t *testing.T) {
	t.Parallel()
	c := startCluster(t)
	s := openAt(t, c.url(), Options{})
	defer s.Close()
	ctx := t.Context()
	now := time.Date(2026, 3, 2, 9, 0, 0, 123456000, time.UTC)

	// Ids with the characters that matter for tags.
	type pid struct{ study, id string }
	people := []pid{{"s1", "p1"}, {"s1", "p:2{x}"}, {"s:2", "p1"}}
	for _, p := range people {
		enrol(t, s, p.study, p.id)
		ev := trial.Event{ID: "e1", Type: trial.EventEMA, Time: now, Data: json.RawMessage(`{"item":"stress","value":3}`), ReceivedAt: now}
		if _, err := s.AppendEvents(ctx, p.study, p.id, []trial.Event{ev}, func(*trial.State, []trial.Event) error { return nil }); err != nil {
			t.Fatal(err)
		}
		id := "d-" + p.study + "-" + p.id
		err := s.CommitDecision(ctx, &trial.Commit{
			Record:      storetest.BenchRecord(p.study, p.id, id, now),
			State:       &trial.State{Version: 2},
			Idempotency: &trial.IdempotencyEntry{Key: "k{1}", DecisionID: id, Response: []byte(`{}`)},
			Delivery:    &trial.Delivery{ID: "dl-" + id, Study: p.study, Participant: p.id, DecisionID: id, Status: trial.DeliveryQueued, NextAttempt: now},
		})
		if err != nil {
			t.Fatal(err)
		}
		// The trial clock's keys: a device, a schedule entry, a dead letter.
		if err := s.PutDevice(ctx, p.study, p.id, &trial.Device{ID: "d{1}", Platform: "fcm", Token: "t"}); err != nil {
			t.Fatal(err)
		}
		if err := s.Touch(ctx, p.study, p.id, now, now); err != nil {
			t.Fatal(err)
		}
		failed := &trial.Delivery{ID: "dl-" + id, Study: p.study, Participant: p.id, DecisionID: id, Status: trial.DeliveryFailed, FailedAt: now}
		id2 := id + "-2"
		if err := s.CommitDecision(ctx, &trial.Commit{Record: storetest.BenchRecord(p.study, p.id, id2, now), Delivery: &trial.Delivery{ID: "dl-" + id2, Study: p.study, Participant: p.id, DecisionID: id2, Status: trial.DeliveryQueued}}); err != nil {
			t.Fatal(err)
		}
		failed.ID, failed.DecisionID = "dl-"+id2, id2
		if err := s.SaveDelivery(ctx, failed); err != nil {
			t.Fatal(err)
		}
	}
	// A failed assign leaves a given-back number; a stale reservation.
	_, _, err := s.Enroll(ctx, &trial.Participant{Study: "s1", ID: "p3", Stratum: "b"}, func(int64) error { return errors.New("no") })
	if err == nil {
		t.Fatal("Enroll with failing assign succeeded")
	}
	sk := s.k.study("s1")
	if err := s.eval(ctx, call{s.sc.reserve, []string{sk.seq(), sk.reservations(), sk.freeSeqs(), sk.participants()}, []any{"p4", "a", "tok", 60000}})[0].Err(); err != nil {
		t.Fatal(err)
	}

	rdb := s.rdb
	slot := func(key string) int64 {
		n, err := rdb.ClusterKeySlot(ctx, key).Result()
		if err != nil {
			t.Fatalf("CLUSTER KEYSLOT %s: %v", key, err)
		}
		return n
	}
	var keys []string
	for _, n := range c.nodes {
		nc := nodeClient(n.addr())
		ks, err := nc.Keys(ctx, s.opts.KeyPrefix+"*").Result()
		nc.Close()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, ks...)
	}
	participantKinds, studyKinds, shardKinds := map[string]bool{}, map[string]bool{}, map[string]bool{}
	for _, key := range keys {
		if key == s.k.meta() || key == s.k.studies() {
			continue // settings of the key prefix and the clock's study registry, in any slot
		}
		rest := strings.TrimPrefix(key, s.opts.KeyPrefix)
		tag, kind, ok := strings.Cut(strings.TrimPrefix(rest, "{"), "}:")
		if !ok || !strings.HasPrefix(rest, "{") {
			t.Errorf("key %q has no hash tag right after the prefix", key)
			continue
		}
		if i := strings.Index(kind, ":"); i >= 0 {
			kind = kind[:i+1] // i:KEY -> i:
		}
		if slot(key) != slot("{"+tag+"}") {
			t.Errorf("key %q is not in the slot of its tag {%s}", key, tag)
		}
		if study, shard, ok := strings.Cut(tag, "#"); ok {
			shardKinds[kind] = true
			n, err := strconv.Atoi(shard)
			if err != nil || n < 0 || n >= s.opts.LogShards || study != "s1" && study != esc("s:2") {
				t.Errorf("key %q: tag %q names no study log shard", key, tag)
			}
		} else if strings.Contains(tag, ":") {
			participantKinds[kind] = true
			// The tag is exactly the participant's.
			found := false
			for _, p := range people {
				if tag == esc(p.study)+":"+esc(p.id) {
					found = true
				}
			}
			if !found {
				t.Errorf("key %q: tag %q names no participant", key, tag)
			}
		} else {
			studyKinds[kind] = true
			if tag != "s1" && tag != esc("s:2") {
				t.Errorf("key %q: tag %q names no study", key, tag)
			}
		}
	}
	for _, kind := range []string{"p", "i:", "eid", "ev", "d", "dt", "o", "dv"} {
		if !participantKinds[kind] {
			t.Errorf("no participant key of kind %q among %v", kind, keys)
		}
	}
	for _, kind := range []string{"pdoc", "pord", "ord", "seq", "free", "res"} {
		if !studyKinds[kind] {
			t.Errorf("no study key of kind %q among %v", kind, keys)
		}
	}
	for _, kind := range []string{"dt", "di", "log", "due", "duec", "outq", "dead"} {
		if !shardKinds[kind] {
			t.Errorf("no log shard key of kind %q among %v", kind, keys)
		}
	}
	// The participant keys are what the participant's key helpers name.
	pk := s.k.participant("s1", "p:2{x}")
	for _, key := range []string{pk.doc(), pk.idem("k{1}"), pk.eventIDs(), pk.events(), pk.records(), pk.recordsByTime(), pk.deliveries(), pk.devices()} {
		if !slices.Contains(keys, key) {
			t.Errorf("key %q missing", key)
		}
		if slot(key) != slot(pk.doc()) {
			t.Errorf("key %q is not in the slot of %q", key, pk.doc())
		}
	}
}

func TestEscape(t *testing.T) {
	k := keys{prefix: "x:"}
	cases := []struct{ study, id, want string }{
		{"s1", "p1", "x:{s1:p1}:p"},
		{"a:b", "c", "x:{a%3Ab:c}:p"},
		{"a", "b:c", "x:{a:b%3Ac}:p"},
		{"s", "p{1}%", "x:{s:p%7B1%7D%25}:p"},
	}
	seen := map[string]bool{}
	for _, c := range cases {
		got := k.participant(c.study, c.id).doc()
		if got != c.want {
			t.Errorf("participant(%q, %q) = %q, want %q", c.study, c.id, got, c.want)
		}
		if seen[got] {
			t.Errorf("%q named twice", got)
		}
		seen[got] = true
	}
	if got := k.study("a:b{").seq(); got != "x:{a%3Ab%7B}:seq" {
		t.Errorf("study key %q", got)
	}
}

func TestTimeKeyOrder(t *testing.T) {
	base := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	times := []time.Time{
		{}, time.Date(1600, 1, 1, 0, 0, 0, 0, time.UTC), time.Unix(-1, 0), time.Unix(0, -1), time.Unix(0, 0), time.Unix(0, 1),
		base, base.Add(time.Nanosecond), base.Add(time.Microsecond), time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	for i := 1; i < len(times); i++ {
		a, b := timeKey(times[i-1]), timeKey(times[i])
		clamped := i == 1 // the zero time and 1600 are both before the int64 range
		if len(a) != timeKeyLen || a > b || a == b && !clamped {
			t.Errorf("timeKey(%v) = %s, timeKey(%v) = %s: out of order", times[i-1], a, times[i], b)
		}
	}
}

// TestEnrollLease checks the crash story of enrolment: a reservation left
// by a crashed enrolment makes a retry of the same participant wait until
// its lease expires and then reuse its number, and a number reserved by a
// crashed enrolment of another participant is given back to the next one.
// The leases run on a clock the test moves, so nothing depends on how fast
// the machine is.
func TestEnrollLease(t *testing.T) {
	t.Parallel()
	url := singleURL(t)
	const lease = time.Minute
	clk := newTestClock()
	s := openAt(t, url, Options{EnrollLease: lease, Now: clk.Now})
	defer s.Close()
	ctx := t.Context()
	sk := s.k.study("s1")
	reserve := func(id, tok string) int64 {
		t.Helper()
		res, err := s.eval(ctx, call{s.sc.reserve, []string{sk.seq(), sk.reservations(), sk.freeSeqs(), sk.participants()}, []any{id, "a", tok, lease.Milliseconds(), clk.Now().UnixMilli()}})[0].Slice()
		if err != nil || res[0] != "reserved" {
			t.Fatalf("reserve(%s) = %v, %v", id, res, err)
		}
		return res[1].(int64)
	}
	// "Crashed" enrolments of p1 (seq 0) and p2 (seq 1).
	if seq := reserve("p1", "crashed-1"); seq != 0 {
		t.Fatalf("seq %d, want 0", seq)
	}
	if seq := reserve("p2", "crashed-2"); seq != 1 {
		t.Fatalf("seq %d, want 1", seq)
	}
	// Retrying p1 waits while the lease lasts: it is still waiting when its
	// context ends, without having assigned anything.
	waitsForLease(t, s, &trial.Participant{Study: "s1", ID: "p1", Stratum: "a"})
	// Once the lease has expired, it takes its number.
	clk.Advance(lease + time.Second)
	if p1 := enrol(t, s, "s1", "p1"); p1.Seq != 0 {
		t.Errorf("p1 seq %d, want 0 (its reserved number)", p1.Seq)
	}
	// p2 never comes back: its expired number goes to the next enrolment.
	if p3 := enrol(t, s, "s1", "p3"); p3.Seq != 1 {
		t.Errorf("p3 seq %d, want 1 (p2's expired number)", p3.Seq)
	}
	if p4 := enrol(t, s, "s1", "p4"); p4.Seq != 2 {
		t.Errorf("p4 seq %d, want 2", p4.Seq)
	}
	if n, _ := s.rdb.HLen(ctx, sk.reservations()).Result(); n != 0 {
		t.Errorf("%d reservations left", n)
	}

	// An enrolment that outlives its lease (here: an assign that waits
	// until the test has moved the clock past the lease) loses its number
	// to the next enrolment and starts over with a new one; no two
	// participants share a number.
	assigned, resume := make(chan int64, 2), make(chan struct{})
	slowDone := make(chan *trial.Participant, 1)
	go func() {
		p := &trial.Participant{Study: "s2", ID: "slow", Stratum: "a"}
		calls := 0
		got, _, err := s.Enroll(ctx, p, func(seq int64) error {
			assigned <- seq
			if calls++; calls == 1 {
				<-resume
			}
			return nil
		})
		if err != nil {
			t.Errorf("slow Enroll: %v", err)
		}
		slowDone <- got
	}()
	first := <-assigned
	clk.Advance(lease + time.Second)
	fast := enrol(t, s, "s2", "fast")
	close(resume)
	slow := <-slowDone
	second := <-assigned
	if first != 0 || fast.Seq != 0 || slow == nil || slow.Seq != 1 || second != 1 {
		t.Fatalf("fast seq %d, slow %+v, slow's assign calls %d then %d; want 0, seq 1 and 0 then 1", fast.Seq, slow, first, second)
	}
}

// waitsForLease checks that enrolling p waits for a live reservation of
// another caller: given a deadline, Enroll returns the deadline's error
// from that wait, without calling assign. The deadline grows until the
// wait is reached, so a slow machine makes the check slower, not wrong.
func waitsForLease(t *testing.T, s *Store, p *trial.Participant) {
	t.Helper()
	for wait := 100 * time.Millisecond; ; wait *= 2 {
		ctx, cancel := context.WithTimeout(t.Context(), wait)
		_, _, err := s.Enroll(ctx, p, func(int64) error {
			t.Errorf("Enroll of %s assigned a number under another caller's live reservation", p.ID)
			return nil
		})
		cancel()
		switch {
		case err == nil:
			t.Fatalf("Enroll of %s returned while another caller's reservation was live", p.ID)
		case errors.Is(err, context.DeadlineExceeded) && strings.Contains(err.Error(), "waiting for a concurrent enrolment"):
			return
		case !errors.Is(err, context.DeadlineExceeded):
			t.Fatalf("Enroll of %s under a live reservation: %v, want it to wait", p.ID, err)
		case wait > time.Minute:
			t.Fatalf("Enroll of %s never reached the wait for the reservation: %v", p.ID, err)
		}
	}
}

// TestInterruptedEnrolment checks that a participant registered but not yet
// copied to their own hash (a crash between the two) is repaired by the
// next access.
func TestInterruptedEnrolment(t *testing.T) {
	t.Parallel()
	url := singleURL(t)
	s := openAt(t, url, Options{})
	defer s.Close()
	ctx := t.Context()
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	for i, access := range []func(id string) error{
		func(id string) error { _, err := s.Snapshot(ctx, "s1", id, ""); return err },
		func(id string) error { _, err := s.Participant(ctx, "s1", id); return err },
		func(id string) error {
			return s.CommitDecision(ctx, &trial.Commit{Record: storetest.BenchRecord("s1", id, "d-"+id, now), State: &trial.State{Version: 1}})
		},
		func(id string) error {
			_, err := s.AppendEvents(ctx, "s1", id, []trial.Event{{ID: "e1", Type: trial.EventEMA, Time: now, Data: json.RawMessage(`{}`)}}, nil)
			return err
		},
		func(id string) error {
			_, created, err := s.Enroll(ctx, &trial.Participant{Study: "s1", ID: id}, nil)
			if created {
				return errors.New("created again")
			}
			return err
		},
	} {
		id := fmt.Sprintf("p%d", i)
		want := enrol(t, s, "s1", id)
		if err := s.rdb.HDel(ctx, s.k.participant("s1", id).doc(), "p").Err(); err != nil {
			t.Fatal(err)
		}
		if err := access(id); err != nil {
			t.Fatalf("access %d after an interrupted enrolment: %v", i, err)
		}
		got, err := s.Participant(ctx, "s1", id)
		if err != nil || got.Seq != want.Seq {
			t.Fatalf("participant after repair = %+v, %v", got, err)
		}
	}
}

// TestCommitResent checks that a commit script run twice (the client
// resending after a lost reply) reports success and changes nothing more.
func TestCommitResent(t *testing.T) {
	t.Parallel()
	s := openAt(t, singleURL(t), Options{})
	defer s.Close()
	ctx := t.Context()
	enrol(t, s, "s1", "p1")
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	c := &trial.Commit{
		Record:      storetest.BenchRecord("s1", "p1", "d1", now),
		State:       &trial.State{Version: 1},
		Idempotency: &trial.IdempotencyEntry{Key: "k1", DecisionID: "d1", Response: []byte(`{}`)},
	}
	for i := range 2 {
		if err := s.CommitDecision(ctx, c); err != nil {
			t.Fatalf("commit %d: %v", i, err)
		}
	}
	snap, err := s.Snapshot(ctx, "s1", "p1", "k1")
	if err != nil || snap.State.Version != 1 || snap.Replay == nil {
		t.Fatalf("Snapshot = %+v, %v", snap, err)
	}
	other := *c.Record
	other.Action = trial.ActionNone
	err = s.CommitDecision(ctx, &trial.Commit{Record: &other})
	if err == nil || !strings.Contains(err.Error(), "already stored") {
		t.Fatalf("commit of another record under a used id: %v", err)
	}

	// An append resent after it was applied reports success too.
	pk := s.k.participant("s1", "p1")
	args := []any{"1", `{"version":2}`, "2", "tok", "e1", timeKey(now) + "e1\x00{}"}
	for i := range 2 {
		res, err := s.eval(ctx, call{s.sc.append, []string{pk.doc(), pk.eventIDs(), pk.events()}, args})[0].Text()
		if err != nil || res != "ok" {
			t.Fatalf("append %d = %q, %v", i, res, err)
		}
	}
}

// TestReindex checks that a decision whose study-wide index and log write
// failed is still committed, that the failure is logged, and that Reindex
// puts the index entry back and appends the decision to the log, once.
func TestReindex(t *testing.T) {
	t.Parallel()
	url := singleURL(t)
	prefix := uniquePrefix("TestReindex")
	t.Cleanup(func() { deleteKeys(t, url, prefix) })
	core, logs := observer.New(zap.ErrorLevel)
	s, err := Open(t.Context(), url, Options{KeyPrefix: prefix}, zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := t.Context()
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	sk := s.k.shard("s1", shardOf("p2", s.opts.LogShards))
	for _, p := range []string{"p1", "p2"} {
		enrol(t, s, "s1", p)
		for i := range 3 {
			if p == "p2" && i == 1 {
				// Make the index write fail (WRONGTYPE) while the commit
				// succeeds.
				if err := s.rdb.Set(ctx, sk.recordsByTime(), "not a sorted set", 0).Err(); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.CommitDecision(ctx, &trial.Commit{Record: storetest.BenchRecord("s1", p, fmt.Sprintf("d-%s-%d", p, i), now.Add(time.Duration(i)*time.Minute))}); err != nil {
				t.Fatalf("CommitDecision with a failing index write: %v", err)
			}
			if p == "p2" && i == 1 {
				if err := s.rdb.Rename(ctx, sk.recordsByTime(), sk.base+":broken").Err(); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if n := logs.FilterMessageSnippet("Reindex").Len(); n != 1 {
		t.Fatalf("%d errors logged about the index, want 1", n)
	}
	if _, err := s.Decision(ctx, "s1", "d-p2-1"); !errors.Is(err, trial.ErrNotFound) {
		t.Fatalf("Decision without its index entry: %v, want ErrNotFound", err)
	}
	recs, err := s.ListDecisions(ctx, trial.DecisionQuery{Study: "s1", Participant: "p2"})
	if err != nil || len(recs) != 3 {
		t.Fatalf("the participant's listing has %d records, %v; want all 3", len(recs), err)
	}
	if n, err := s.LogLen(ctx, "s1"); err != nil || n != 5 {
		t.Fatalf("LogLen before Reindex = %d, %v; want 5", n, err)
	}
	for range 2 {
		n, err := s.Reindex(ctx, "s1")
		if err != nil || n != 6 {
			t.Fatalf("Reindex = %d, %v; want 6", n, err)
		}
		if n, err := s.LogLen(ctx, "s1"); err != nil || n != 6 {
			t.Fatalf("LogLen after Reindex = %d, %v; want 6", n, err)
		}
	}
	recs, err = s.ListDecisions(ctx, trial.DecisionQuery{Study: "s1"})
	if err != nil || len(recs) != 6 {
		t.Fatalf("ListDecisions after Reindex = %d, %v", len(recs), err)
	}
	if _, err := s.Decision(ctx, "s1", "d-p2-1"); err != nil {
		t.Fatalf("Decision after Reindex: %v", err)
	}
}

// TestDanglingIndexEntries checks that the study-wide listing skips index
// entries whose commit never happened and still fills its pages.
func TestDanglingIndexEntries(t *testing.T) {
	t.Parallel()
	s := openAt(t, singleURL(t), Options{})
	defer s.Close()
	ctx := t.Context()
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	enrol(t, s, "s1", "p1")
	var want []string
	for i := range 6 {
		id := fmt.Sprintf("d%d", i)
		at := now.Add(time.Duration(i) * time.Minute)
		if i%2 == 0 {
			// Indexed by a client that crashed before its commit.
			if err := s.eval(ctx, s.indexCall("s1", "p1", id, timeKey(at)))[0].Err(); err != nil {
				t.Fatal(err)
			}
			continue
		}
		want = append(want, id)
		if err := s.CommitDecision(ctx, &trial.Commit{Record: storetest.BenchRecord("s1", "p1", id, at)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, limit := range []int{0, 1, 2, 3} {
		var got []string
		q := trial.DecisionQuery{Study: "s1", Limit: limit}
		for range 10 {
			page, err := s.ListDecisions(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range page {
				got = append(got, r.ID)
			}
			if limit == 0 || len(page) < limit {
				break
			}
			q.AfterTime, q.AfterID = page[len(page)-1].Time, page[len(page)-1].ID
		}
		if !slices.Equal(got, want) {
			t.Errorf("limit %d: listed %v, want %v", limit, got, want)
		}
	}
	if _, err := s.Decision(ctx, "s1", "d0"); !errors.Is(err, trial.ErrNotFound) {
		t.Errorf("Decision of an uncommitted indexed id: %v", err)
	}
}

// TestSentinel runs the conformance suite through Sentinel: a private
// master and one sentinel monitoring it, reached by a redis+sentinel URL.
func TestSentinel(t *testing.T) {
	t.Parallel()
	master := startServer(t, nil)
	sentinel := startServer(t, func(port int, dir string) []string {
		conf := filepath.Join(dir, "sentinel.conf")
		body := fmt.Sprintf("port %d\nbind 127.0.0.1\nsentinel monitor jitai 127.0.0.1 %d 1\n", port, master.port)
		if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		// The config file must come first; the sentinel rewrites it.
		return []string{conf, "--sentinel"}
	})
	runConformance(t, "redis+sentinel://"+sentinel.addr()+"/jitai/0", Options{})
}

// TestLargeListings checks listings longer than one page.
func TestLargeListings(t *testing.T) {
	t.Parallel()
	s := openAt(t, singleURL(t), Options{})
	defer s.Close()
	ctx := t.Context()
	base := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

	const people = participantsPage + 20
	for i := range people {
		enrol(t, s, "s1", fmt.Sprintf("p%04d", people-i)) // ids in reverse of enrolment order
	}
	all, err := s.Participants(ctx, "s1")
	if err != nil || len(all) != people {
		t.Fatalf("Participants = %d, %v; want %d", len(all), err, people)
	}
	for i, p := range all {
		if want := fmt.Sprintf("p%04d", people-i); p.ID != want {
			t.Fatalf("participant %d is %s, want %s (enrolment order)", i, p.ID, want)
		}
	}

	const events = eventsPage + 100
	var evs []trial.Event
	for i := range events {
		evs = append(evs, trial.Event{ID: fmt.Sprintf("e%04d", i), Type: trial.EventEMA, Time: base.Add(-time.Duration(i) * time.Second), Data: json.RawMessage(`{}`)})
	}
	if n, err := s.AppendEvents(ctx, "s1", "p0001", evs, nil); err != nil || n != events {
		t.Fatalf("AppendEvents = %d, %v", n, err)
	}
	got, err := s.Events(ctx, "s1", "p0001")
	if err != nil || len(got) != events {
		t.Fatalf("Events = %d, %v; want %d", len(got), err, events)
	}
	for i := 1; i < len(got); i++ {
		if !got[i-1].Time.Before(got[i].Time) {
			t.Fatalf("events out of order at %d", i)
		}
	}

	const records = listPage + 30
	for i := range records {
		p := []string{"p0001", "p0002"}[i%2]
		if err := s.CommitDecision(ctx, &trial.Commit{Record: storetest.BenchRecord("s1", p, fmt.Sprintf("d%04d", i), base.Add(time.Duration(i)*time.Second))}); err != nil {
			t.Fatal(err)
		}
	}
	for _, q := range []trial.DecisionQuery{{Study: "s1"}, {Study: "s1", Limit: listPage + 10}, {Study: "s1", Participant: "p0001"}} {
		recs, err := s.ListDecisions(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		want := records
		if q.Limit > 0 {
			want = q.Limit
		} else if q.Participant != "" {
			want = records / 2
		}
		if len(recs) != want {
			t.Fatalf("ListDecisions(%+v) = %d records, want %d", q, len(recs), want)
		}
		for i := 1; i < len(recs); i++ {
			if !recs[i-1].Time.Before(recs[i].Time) {
				t.Fatalf("records out of order at %d", i)
			}
		}
	}
}
