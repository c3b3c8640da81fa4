package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jitai/jitai/engine/trial"

	"github.com/redis/go-redis/v9"

	"github.com/jitai/jitai/engine/store/storetest"
)

// commitN enrols people participants of study and commits per decisions
// for each; it returns the decision ids in commit order.
func commitN(t testing.TB, s *Store, study string, people, per int) []string {
	t.Helper()
	ctx := context.Background()
	base := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	var ids []string
	for i := range people {
		p := fmt.Sprintf("p%04d", i)
		enrol(t, s, study, p)
		for j := range per {
			id := fmt.Sprintf("d-%s-%d", p, j)
			err := s.CommitDecision(ctx, &trial.Commit{
				Record:      storetest.BenchRecord(study, p, id, base.Add(time.Duration(j)*time.Hour+time.Duration(i)*time.Second)),
				State:       &trial.State{Version: int64(j + 1)},
				Idempotency: &trial.IdempotencyEntry{Key: "k-" + id, DecisionID: id, Response: []byte(`{}`)},
			})
			if err != nil {
				t.Fatalf("CommitDecision(%s): %v", id, err)
			}
			ids = append(ids, id)
		}
	}
	return ids
}

// drain reads the log through group/consumer until it returns nothing,
// acknowledging each batch if ack; it returns the decision ids in the
// order read and fails on a duplicate.
func drain(t testing.TB, s *Store, study, group, consumer string, max int, ack bool) []string {
	t.Helper()
	ctx := context.Background()
	var ids []string
	seen := map[string]bool{}
	for range 10000 {
		entries, err := s.ReadLog(ctx, study, group, consumer, max)
		if err != nil {
			t.Fatalf("ReadLog: %v", err)
		}
		if len(entries) > max {
			t.Fatalf("ReadLog(max %d) returned %d entries", max, len(entries))
		}
		if len(entries) == 0 {
			return ids
		}
		for _, e := range entries {
			if seen[e.DecisionID] {
				t.Fatalf("decision %s delivered twice", e.DecisionID)
			}
			seen[e.DecisionID] = true
			ids = append(ids, e.DecisionID)
		}
		if !ack {
			return ids
		}
		if err := s.Ack(ctx, entries); err != nil {
			t.Fatalf("Ack: %v", err)
		}
	}
	t.Fatal("ReadLog never ran dry")
	return nil
}

func sorted(ids []string) []string {
	c := slices.Clone(ids)
	slices.Sort(c)
	return c
}

// TestLogEveryCommit checks that every committed decision is in the log
// exactly once, that failed commits (conflict, replay, unknown
// participant) leave no entry, and that the log delivers each record as
// committed, in log order per shard; on a single server and on a cluster.
func TestLogEveryCommit(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		url  func(t *testing.T) string
	}{
		{"Single", func(t *testing.T) string { return singleURL(t) }},
		{"Cluster", func(t *testing.T) string { return startCluster(t).url() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := openAt(t, tc.url(t), Options{})
			defer s.Close()
			ctx := t.Context()
			ids := commitN(t, s, "s1", 40, 3)

			// Failed commits: a stale version, a used idempotency key, an
			// unknown participant.
			now := time.Date(2026, 3, 3, 9, 0, 0, 0, time.UTC)
			for _, c := range []struct {
				commit *trial.Commit
				want   error
			}{
				{&trial.Commit{Record: storetest.BenchRecord("s1", "p0000", "bad-1", now), State: &trial.State{Version: 2}}, trial.ErrConflict},
				{&trial.Commit{Record: storetest.BenchRecord("s1", "p0001", "bad-2", now), State: &trial.State{Version: 4},
					Idempotency: &trial.IdempotencyEntry{Key: "k-d-p0001-0", DecisionID: "bad-2"}}, trial.ErrIdempotencyReplay},
				{&trial.Commit{Record: storetest.BenchRecord("s1", "nobody", "bad-3", now)}, trial.ErrNotFound},
			} {
				if err := s.CommitDecision(ctx, c.commit); !errors.Is(err, c.want) {
					t.Fatalf("commit %s: %v, want %v", c.commit.Record.ID, err, c.want)
				}
			}
			// A commit resent after its reply was lost appends nothing.
			rec := storetest.BenchRecord("s1", "p0002", "d-p0002-1", time.Date(2026, 3, 2, 10, 0, 2, 0, time.UTC))
			if err := s.CommitDecision(ctx, &trial.Commit{Record: rec}); err != nil {
				t.Fatalf("resent commit: %v", err)
			}

			if n, err := s.LogLen(ctx, "s1"); err != nil || n != int64(len(ids)) {
				t.Fatalf("LogLen = %d, %v; want %d (one per committed decision)", n, err, len(ids))
			}
			recs, err := s.ListDecisions(ctx, trial.DecisionQuery{Study: "s1"})
			if err != nil || len(recs) != len(ids) {
				t.Fatalf("ListDecisions = %d, %v; want %d", len(recs), err, len(ids))
			}

			var entries []LogEntry
			for {
				batch, err := s.ReadLog(ctx, "s1", "export", "c1", 7)
				if err != nil {
					t.Fatal(err)
				}
				if len(batch) == 0 {
					break
				}
				entries = append(entries, batch...)
				if err := s.Ack(ctx, batch); err != nil {
					t.Fatal(err)
				}
			}
			var got []string
			lastPerShard := map[int]string{}
			for _, e := range entries {
				got = append(got, e.DecisionID)
				if want := shardOf(e.Participant, s.opts.LogShards); e.Shard != want {
					t.Errorf("entry of %s in shard %d, want %d", e.Participant, e.Shard, want)
				}
				if last, ok := lastPerShard[e.Shard]; ok {
					lm, ls, _ := parseEntryID(last)
					m, q, _ := parseEntryID(e.ID)
					if m < lm || m == lm && q <= ls {
						t.Errorf("shard %d: entry %s after %s", e.Shard, e.ID, last)
					}
				}
				lastPerShard[e.Shard] = e.ID
				r, err := e.Decode()
				if err != nil || r.ID != e.DecisionID || r.Participant != e.Participant {
					t.Fatalf("entry %s: record %+v, %v", e.ID, r, err)
				}
			}
			if !slices.Equal(sorted(got), sorted(ids)) {
				t.Fatalf("the log delivered %d decisions, want the %d committed ones:\ngot  %v\nwant %v", len(got), len(ids), sorted(got), sorted(ids))
			}
			// The records as committed.
			want, _ := json.Marshal(recs[0])
			for _, e := range entries {
				if e.DecisionID == recs[0].ID && string(e.Record) != string(want) {
					t.Errorf("record of %s:\n%s\nwant\n%s", e.DecisionID, e.Record, want)
				}
			}
			if more := drain(t, s, "s1", "export", "c1", 100, true); len(more) != 0 {
				t.Fatalf("after everything was acknowledged, ReadLog returned %v", more)
			}
			// Decision finds records through the sharded index.
			for _, id := range []string{ids[0], ids[len(ids)-1]} {
				if r, err := s.Decision(ctx, "s1", id); err != nil || r.ID != id {
					t.Fatalf("Decision(%s) = %v, %v", id, r, err)
				}
			}
		})
	}
}

// TestLogShards checks that participants spread over the shards, that the
// shard function is stable, and that a store with another number of
// shards on the same keys is refused.
func TestLogShards(t *testing.T) {
	t.Parallel()
	// The shard function must never change (golden values).
	for _, c := range []struct {
		p    string
		want int
	}{{"", 5}, {"p0001", 12}, {"participant-42", 15}} {
		if got := shardOf(c.p, 16); got != c.want {
			t.Errorf("shardOf(%q, 16) = %d, want %d", c.p, got, c.want)
		}
	}
	counts := make([]int, 16)
	for i := range 16000 {
		counts[shardOf(fmt.Sprintf("p%05d", i), 16)]++
	}
	for n, c := range counts {
		if c < 800 || c > 1200 {
			t.Errorf("shard %d has %d of 16000 participants, want about 1000", n, c)
		}
	}

	url := singleURL(t)
	s := openAt(t, url, Options{LogShards: 8})
	defer s.Close()
	ctx := t.Context()
	commitN(t, s, "s1", 200, 1)
	used := 0
	for n := range 8 {
		l, err := s.rdb.XLen(ctx, s.k.shard("s1", n).log()).Result()
		if err != nil {
			t.Fatal(err)
		}
		if l > 0 {
			used++
		}
		if l > 50 {
			t.Errorf("shard %d holds %d of 200 decisions", n, l)
		}
	}
	if used != 8 {
		t.Errorf("%d of 8 shards used", used)
	}
	if _, err := Open(ctx, url, Options{KeyPrefix: s.opts.KeyPrefix, LogShards: 16}, nil); err == nil {
		t.Fatal("Open with another log_shards on the same keys succeeded")
	}
	s2, err := Open(ctx, url, Options{KeyPrefix: s.opts.KeyPrefix, LogShards: 8}, nil)
	if err != nil {
		t.Fatalf("Open with the same log_shards: %v", err)
	}
	s2.Close()
}

// TestLogCrashRepair checks that a decision committed without its log
// entry (the engine died between the two writes) is appended by Reindex,
// exactly once, and then delivered once.
func TestLogCrashRepair(t *testing.T) {
	t.Parallel()
	s := openAt(t, singleURL(t), Options{})
	defer s.Close()
	ctx := t.Context()
	ids := commitN(t, s, "s1", 5, 2)
	if got := drain(t, s, "s1", "export", "c1", 100, true); len(got) != len(ids) {
		t.Fatalf("read %d, want %d", len(got), len(ids))
	}
	// The crash: p0003's next decision is committed, its log entry never
	// written.
	s.testSkipIndex = func(rec *trial.Record) bool { return rec.ID == "lost" }
	enrol(t, s, "s1", "p0003")
	err := s.CommitDecision(ctx, &trial.Commit{Record: storetest.BenchRecord("s1", "p0003", "lost", time.Date(2026, 3, 4, 9, 0, 0, 0, time.UTC)), State: &trial.State{Version: 3}})
	if err != nil {
		t.Fatal(err)
	}
	if got := drain(t, s, "s1", "export", "c1", 100, true); len(got) != 0 {
		t.Fatalf("read %v before the repair, want nothing (the entry was never written)", got)
	}
	before, _ := s.LogLen(ctx, "s1")
	for i := range 3 {
		if _, err := s.Reindex(ctx, "s1"); err != nil {
			t.Fatal(err)
		}
		if n, _ := s.LogLen(ctx, "s1"); n != before+1 {
			t.Fatalf("after Reindex %d the log has %d entries, want %d (the lost one added once)", i+1, n, before+1)
		}
	}
	if got := drain(t, s, "s1", "export", "c1", 100, true); !slices.Equal(got, []string{"lost"}) {
		t.Fatalf("after the repair the log delivered %v, want [lost]", got)
	}
	// A second group that starts now gets everything, once.
	if got := drain(t, s, "s1", "audit", "c1", 3, true); len(got) != len(ids)+1 {
		t.Fatalf("a new group read %d decisions, want %d", len(got), len(ids)+1)
	}
}

// TestLogConsumerGroups checks acknowledgement, re-delivery of what was
// not acknowledged, and that Trim removes only what every group has
// acknowledged.
func TestLogConsumerGroups(t *testing.T) {
	t.Parallel()
	s := openAt(t, singleURL(t), Options{})
	defer s.Close()
	ctx := t.Context()
	ids := commitN(t, s, "s1", 30, 2)
	total := int64(len(ids))

	// Unacknowledged entries come again, to the same consumer, first.
	first, err := s.ReadLog(ctx, "s1", "export", "c1", 10)
	if err != nil || len(first) != 10 {
		t.Fatalf("ReadLog = %d, %v", len(first), err)
	}
	again, err := s.ReadLog(ctx, "s1", "export", "c1", 10)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(sorted(entryIDs(again)), sorted(entryIDs(first))) {
		t.Fatalf("re-read without ack gave %v, want the same %v", entryIDs(again), entryIDs(first))
	}
	if n, _ := s.LogPending(ctx, "s1", "export", "c1"); n != 10 {
		t.Fatalf("LogPending = %d, want 10", n)
	}
	// More pending than asked for: max of them, the rest next time.
	part, err := s.ReadLog(ctx, "s1", "export", "c1", 3)
	if err != nil || len(part) != 3 {
		t.Fatalf("ReadLog(max 3) with 10 pending = %d, %v", len(part), err)
	}
	for _, e := range part {
		if !slices.Contains(entryIDs(first), e.DecisionID) {
			t.Fatalf("ReadLog(max 3) returned %s, not one of the pending ones", e.DecisionID)
		}
	}
	// Another consumer of the group does not get c1's pending entries.
	other := drain(t, s, "s1", "export", "c2", 100, true)
	if len(other) != len(ids)-10 {
		t.Fatalf("c2 read %d, want %d", len(other), len(ids)-10)
	}
	for _, id := range other {
		if slices.Contains(entryIDs(first), id) {
			t.Fatalf("c2 got %s, pending for c1", id)
		}
	}
	// Nothing is trimmed while c1's entries are pending... below them.
	trimmed, err := s.Trim(ctx, "s1", "export")
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := s.LogLen(ctx, "s1"); n+trimmed != total {
		t.Fatalf("LogLen %d + trimmed %d != %d", n, trimmed, total)
	}
	if err := s.Ack(ctx, first); err != nil {
		t.Fatal(err)
	}
	if got := drain(t, s, "s1", "export", "c1", 100, true); len(got) != 0 {
		t.Fatalf("after ack, c1 read %v", got)
	}
	if _, err := s.Trim(ctx, "s1", "export"); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.LogLen(ctx, "s1"); n != 0 {
		t.Fatalf("with the only group done, LogLen = %d after Trim, want 0", n)
	}

	// Two groups, one lagging: Trim keeps what the lagging one has not
	// acknowledged (pending or not yet delivered).
	more := commitMore(t, s, "s1", 40)
	if got := drain(t, s, "s1", "export", "c1", 7, true); len(got) != len(more) {
		t.Fatalf("export read %d, want %d", len(got), len(more))
	}
	// A second group that has acknowledged nothing: nothing is trimmed.
	if err := s.ensureGroups(ctx, "s1", "audit"); err != nil {
		t.Fatal(err)
	}
	if trimmed, err := s.Trim(ctx, "s1", "export"); err != nil || trimmed != 0 {
		t.Fatalf("Trim with a group that has read nothing = %d, %v; want 0", trimmed, err)
	}
	if n, _ := s.LogLen(ctx, "s1"); n != int64(len(more)) {
		t.Fatalf("LogLen %d after Trim, want %d", n, len(more))
	}
	// The lagging group acknowledges part of the log (A) and has more
	// delivered but not acknowledged (B): only A goes, which every group
	// has acknowledged; B and what was never delivered to it stay.
	a, err := s.ReadLog(ctx, "s1", "audit", "a1", 15)
	if err != nil || len(a) != 15 {
		t.Fatalf("ReadLog = %d, %v", len(a), err)
	}
	if err := s.Ack(ctx, a); err != nil {
		t.Fatal(err)
	}
	b, err := s.ReadLog(ctx, "s1", "audit", "a1", 15)
	if err != nil || len(b) != 15 {
		t.Fatalf("ReadLog = %d, %v", len(b), err)
	}
	streamIDs := func() map[string]bool {
		ids := map[string]bool{}
		for n := range s.opts.LogShards {
			msgs, err := s.rdb.XRange(ctx, s.k.shard("s1", n).log(), "-", "+").Result()
			if err != nil {
				t.Fatal(err)
			}
			for _, m := range msgs {
				ids[fmt.Sprint(n, "/", m.ID)] = true
			}
		}
		return ids
	}
	all := streamIDs()
	trimmed, err = s.Trim(ctx, "s1", "export")
	if err != nil || trimmed != int64(len(a)) {
		t.Fatalf("Trim = %d, %v; want %d (what both groups acknowledged)", trimmed, err, len(a))
	}
	kept := streamIDs()
	acked := map[string]bool{}
	for _, e := range a {
		acked[fmt.Sprint(e.Shard, "/", e.ID)] = true
	}
	for id := range all {
		if !acked[id] && !kept[id] {
			t.Errorf("Trim removed %s, which the lagging group has not acknowledged", id)
		}
	}
	// The lagging group gets everything else (B again first).
	rest := drain(t, s, "s1", "audit", "a1", 1000, true)
	if got := append(entryIDs(a), rest...); !slices.Equal(sorted(got), sorted(more)) {
		t.Fatalf("the lagging group read %d decisions, want the %d committed", len(got), len(more))
	}
	for _, id := range entryIDs(b) {
		if !slices.Contains(rest, id) {
			t.Errorf("%s, not acknowledged, was not delivered again", id)
		}
	}
	if _, err := s.Trim(ctx, "s1", "export"); err != nil {
		t.Fatal(err)
	}
	if n, _ := s.LogLen(ctx, "s1"); n != 0 {
		t.Fatalf("with both groups done, LogLen = %d after Trim, want 0", n)
	}
	if _, err := s.Trim(ctx, "s1", "nosuchgroup"); err == nil {
		t.Fatal("Trim of a group that does not exist succeeded")
	}
}

// commitMore commits one more decision for each of n new participants.
func commitMore(t testing.TB, s *Store, study string, n int) []string {
	t.Helper()
	var ids []string
	now := time.Date(2026, 3, 5, 9, 0, 0, 0, time.UTC)
	for i := range n {
		p := fmt.Sprintf("q%04d", i)
		enrol(t, s, study, p)
		id := "d-" + p
		if err := s.CommitDecision(context.Background(), &trial.Commit{Record: storetest.BenchRecord(study, p, id, now.Add(time.Duration(i)*time.Second))}); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	return ids
}

func entryIDs(es []LogEntry) []string {
	var ids []string
	for _, e := range es {
		ids = append(ids, e.DecisionID)
	}
	return ids
}

// TestLogUncommittedEntries checks entries whose commit has not happened:
// one whose commit comes within the grace period is held (with what
// follows it in its shard) and then delivered; one whose commit never
// comes is given up after the grace period, dropped, and its late commit
// refused. The grace period runs on a clock the test moves.
func TestLogUncommittedEntries(t *testing.T) {
	t.Parallel()
	const grace = time.Minute
	clk := newTestClock()
	s := openAt(t, singleURL(t), Options{LogGrace: grace, Now: clk.Now})
	defer s.Close()
	ctx := t.Context()
	at := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	enrol(t, s, "s1", "p1")
	// Another participant in another shard.
	other := "x"
	for i := 0; shardOf(other, s.opts.LogShards) == shardOf("p1", s.opts.LogShards); i++ {
		other = fmt.Sprintf("x%d", i)
	}
	enrol(t, s, "s1", other)

	// A commit in flight: its index and log entry are written, the commit
	// not yet.
	inflight := storetest.BenchRecord("s1", "p1", "inflight", at)
	if err := s.eval(ctx, s.indexCall("s1", "p1", "inflight", timeKey(at)))[0].Err(); err != nil {
		t.Fatal(err)
	}
	// A later decision of p1 (same shard) and one of the other participant.
	for _, r := range []*trial.Record{storetest.BenchRecord("s1", "p1", "after", at.Add(time.Minute)), storetest.BenchRecord("s1", other, "elsewhere", at)} {
		if err := s.CommitDecision(ctx, &trial.Commit{Record: r}); err != nil {
			t.Fatal(err)
		}
	}
	if got := drain(t, s, "s1", "export", "c1", 10, true); !slices.Equal(got, []string{"elsewhere"}) {
		t.Fatalf("read %v while a commit is in flight, want [elsewhere] (p1's shard held)", got)
	}
	// The commit arrives.
	if err := s.CommitDecision(ctx, &trial.Commit{Record: inflight}); err != nil {
		t.Fatal(err)
	}
	if got := drain(t, s, "s1", "export", "c1", 10, true); !slices.Equal(got, []string{"inflight", "after"}) {
		t.Fatalf("read %v after the commit, want [inflight after]", got)
	}

	// A client that died after writing the log entry: the commit never
	// comes.
	ghost := storetest.BenchRecord("s1", "p1", "ghost", at.Add(2*time.Minute))
	if err := s.eval(ctx, s.indexCall("s1", "p1", "ghost", timeKey(ghost.Time)))[0].Err(); err != nil {
		t.Fatal(err)
	}
	if err := s.CommitDecision(ctx, &trial.Commit{Record: storetest.BenchRecord("s1", "p1", "later", at.Add(3*time.Minute))}); err != nil {
		t.Fatal(err)
	}
	if got := drain(t, s, "s1", "export", "c1", 10, true); len(got) != 0 {
		t.Fatalf("read %v within the grace period, want nothing", got)
	}
	// The entries were written after the clock was read, so an hour on it
	// is past the grace period of each (unless the test ran for an hour).
	clk.Advance(time.Hour)
	if got := drain(t, s, "s1", "export", "c1", 10, true); !slices.Equal(got, []string{"later"}) {
		t.Fatalf("read %v after the grace period, want [later] (ghost given up)", got)
	}
	// The late commit is refused, and nothing of it is left.
	err := s.CommitDecision(ctx, &trial.Commit{Record: ghost})
	if !errors.Is(err, trial.ErrUnavailable) {
		t.Fatalf("late commit of a given-up decision: %v, want ErrUnavailable", err)
	}
	if _, err := s.Decision(ctx, "s1", "ghost"); !errors.Is(err, trial.ErrNotFound) {
		t.Fatalf("Decision(ghost) = %v", err)
	}
	recs, _ := s.ListDecisions(ctx, trial.DecisionQuery{Study: "s1", Participant: "p1"})
	if len(recs) != 3 {
		t.Fatalf("p1 has %d records, want 3", len(recs))
	}
	if n, _ := s.rdb.ZCard(ctx, s.k.shard("s1", shardOf("p1", s.opts.LogShards)).recordsByTime()).Result(); n != 3 {
		t.Fatalf("p1's index shard has %d entries, want 3", n)
	}
	if n, _ := s.LogPending(ctx, "s1", "export", "c1"); n != 0 {
		t.Fatalf("%d entries left pending", n)
	}
	if n, _ := s.LogLen(ctx, "s1"); n != 4 {
		t.Fatalf("LogLen = %d, want 4 (nothing of ghost)", n)
	}
}

// TestLogStaleCopy checks that an entry read just before a failed commit
// removed it, whose decision was then logged again and committed, is
// dropped rather than delivered twice.
func TestLogStaleCopy(t *testing.T) {
	t.Parallel()
	s := openAt(t, singleURL(t), Options{})
	defer s.Close()
	ctx := t.Context()
	enrol(t, s, "s1", "p1")
	at := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	n := shardOf("p1", s.opts.LogShards)
	sk := s.k.shard("s1", n)
	// Attempt 1: logged, then its commit failed and was unindexed, after a
	// reader had read the entry's fields.
	index := s.indexCall("s1", "p1", "d1", timeKey(at))
	if err := s.eval(ctx, index)[0].Err(); err != nil {
		t.Fatal(err)
	}
	msgs, err := s.rdb.XRange(ctx, sk.log(), "-", "+").Result()
	if err != nil || len(msgs) != 1 {
		t.Fatalf("XRANGE = %v, %v", msgs, err)
	}
	s.unindex(ctx, index)
	// Attempt 2 with the same decision id: logged again and committed.
	if err := s.CommitDecision(ctx, &trial.Commit{Record: storetest.BenchRecord("s1", "p1", "d1", at)}); err != nil {
		t.Fatal(err)
	}
	if err := s.ensureGroups(ctx, "s1", "export"); err != nil {
		t.Fatal(err)
	}
	batches := make([][]redis.XMessage, s.opts.LogShards)
	batches[n] = msgs
	out, err := s.settle(ctx, "s1", "export", batches)
	if err != nil || len(out) != 0 {
		t.Fatalf("settle of the stale copy = %v, %v; want nothing", out, err)
	}
	if got := drain(t, s, "s1", "export", "c1", 10, true); !slices.Equal(got, []string{"d1"}) {
		t.Fatalf("read %v, want [d1] once", got)
	}
}

// TestLogConcurrent commits from several goroutines while a reader drains
// the log: every decision is delivered exactly once.
func TestLogConcurrent(t *testing.T) {
	t.Parallel()
	s := openAt(t, singleURL(t), Options{})
	defer s.Close()
	ctx := t.Context()
	const writers, per = 8, 150
	for w := range writers {
		enrol(t, s, "s1", fmt.Sprintf("w%d", w))
	}
	var wg sync.WaitGroup
	done := make(chan struct{})
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p := fmt.Sprintf("w%d", w)
			at := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
			for i := range per {
				id := fmt.Sprintf("%s-%d", p, i)
				if err := s.CommitDecision(ctx, &trial.Commit{Record: storetest.BenchRecord("s1", p, id, at.Add(time.Duration(i)*time.Second)), State: &trial.State{Version: int64(i + 1)}}); err != nil {
					t.Errorf("CommitDecision: %v", err)
					return
				}
			}
		}()
	}
	go func() { wg.Wait(); close(done) }()
	seen := map[string]int{}
	finished := false
	for !finished {
		select {
		case <-done:
			finished = true
		default:
		}
		for _, id := range drain(t, s, "s1", "export", "c1", 50, true) {
			seen[id]++
		}
	}
	for _, id := range drain(t, s, "s1", "export", "c1", 50, true) {
		seen[id]++
	}
	if len(seen) != writers*per {
		t.Fatalf("read %d distinct decisions, want %d", len(seen), writers*per)
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("%s read %d times", id, n)
		}
	}
}
