package redisstore

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jitai/jitai/engine/trial"

	"github.com/jitai/jitai/engine/store/storetest"
)

// clockSeed gives participant p of s1 a device, a schedule entry, a queued
// and a failed delivery.
func clockSeed(t *testing.T, s *Store, p string, at time.Time) {
	t.Helper()
	ctx := t.Context()
	enrol(t, s, "s1", p)
	for i, status := range []string{trial.DeliveryQueued, trial.DeliveryFailed} {
		id := p + "-d" + string(rune('1'+i))
		dl := &trial.Delivery{ID: "dl-" + id, Study: "s1", Participant: p, DecisionID: id, Status: trial.DeliveryQueued, NextAttempt: at}
		if err := s.CommitDecision(ctx, &trial.Commit{Record: storetest.BenchRecord("s1", p, id, at), Delivery: dl}); err != nil {
			t.Fatal(err)
		}
		if status == trial.DeliveryFailed {
			dl.Status, dl.FailedAt = status, at
			if err := s.SaveDelivery(ctx, dl); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := s.PutDevice(ctx, "s1", p, &trial.Device{ID: "phone", Platform: "apns", Token: "secret-" + p}); err != nil {
		t.Fatal(err)
	}
	if err := s.Touch(ctx, "s1", p, at, at); err != nil {
		t.Fatal(err)
	}
}

// TestEraseLeavesNoClockTrace: after erasure, in both modes, no key names
// the participant and no schedule, outbox or dead-letter entry of their
// shard does, on a single server and on Cluster.
func TestEraseLeavesNoClockTrace(t *testing.T) {
	t.Parallel()
	c := startCluster(t)
	for _, url := range []struct{ name, url string }{{"Single", singleURL(t)}, {"Cluster", c.url()}} {
		for _, anonymise := range []bool{false, true} {
			t.Run(url.name+map[bool]string{false: "Remove", true: "Anonymise"}[anonymise], func(t *testing.T) {
				s := openAt(t, url.url, Options{})
				defer s.Close()
				ctx := t.Context()
				at := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
				const p = "participant-to-erase"
				clockSeed(t, s, p, at)
				clockSeed(t, s, "other", at)
				if keys, err := s.scanKeys(ctx, s.opts.KeyPrefix+"*"+p+"*"); err != nil || len(keys) < 3 {
					t.Fatalf("keys naming the participant before erasure: %v (%v)", keys, err)
				}
				if _, err := s.Erase(ctx, "s1", p, anonymise); err != nil {
					t.Fatal(err)
				}
				keys, err := s.scanKeys(ctx, s.opts.KeyPrefix+"*"+p+"*")
				if err != nil {
					t.Fatal(err)
				}
				if len(keys) != 0 {
					t.Errorf("keys naming the participant after erasure: %v", keys)
				}
				sk := s.clockShard("s1", p)
				for _, key := range []string{sk.due(), sk.outbox(), sk.dead()} {
					members, err := s.rdb.ZRange(ctx, key, 0, -1).Result()
					if err != nil {
						t.Fatal(err)
					}
					for _, m := range members {
						if strings.HasPrefix(m, p) {
							t.Errorf("%s still names the participant: %q", key, m)
						}
					}
				}
				if ok, err := s.rdb.HExists(ctx, sk.dueEntries(), p).Result(); err != nil || ok {
					t.Errorf("schedule entry left in %s (%v)", sk.dueEntries(), err)
				}
				// The other participant's are all there.
				ds, err := s.ClaimDeliveries(ctx, at, time.Minute, 10)
				if err != nil || len(ds) != 1 || ds[0].Participant != "other" {
					t.Errorf("claimable after erasure: %+v, %v", ds, err)
				}
				if _, err := s.ScheduleEntry(ctx, "s1", "other"); err != nil {
					t.Errorf("the other participant's schedule entry: %v", err)
				}
			})
		}
	}
}

// TestRequeueRepairsOutbox: a delivery committed without its outbox entry
// (the engine died between the commit script and the outbox write, which
// are in different slots) is made claimable by Requeue, once.
func TestRequeueRepairsOutbox(t *testing.T) {
	s := openAt(t, singleURL(t), Options{})
	defer s.Close()
	ctx := t.Context()
	at := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	enrol(t, s, "s1", "p1")
	dl := &trial.Delivery{ID: "dl-d1", Study: "s1", Participant: "p1", DecisionID: "d1", Status: trial.DeliveryQueued, NextAttempt: at}
	if err := s.CommitDecision(ctx, &trial.Commit{Record: storetest.BenchRecord("s1", "p1", "d1", at), Delivery: dl}); err != nil {
		t.Fatal(err)
	}
	if err := s.rdb.ZRem(ctx, s.clockShard("s1", "p1").outbox(), outboxMember("p1", "d1")).Err(); err != nil {
		t.Fatal(err)
	}
	if ds, err := s.ClaimDeliveries(ctx, at, time.Minute, 10); err != nil || len(ds) != 0 {
		t.Fatalf("claimed %+v (%v) without an outbox entry", ds, err)
	}
	for range 2 {
		if err := s.Requeue(ctx, "s1", "p1", "d1"); err != nil {
			t.Fatal(err)
		}
	}
	ds, err := s.ClaimDeliveries(ctx, at, time.Minute, 10)
	if err != nil || len(ds) != 1 || ds[0].ID != "dl-d1" || !ds[0].NextAttempt.Equal(at) {
		t.Fatalf("after Requeue claimed %+v, %v", ds, err)
	}
	// A claimed one keeps its lease.
	if err := s.Requeue(ctx, "s1", "p1", "d1"); err != nil {
		t.Fatal(err)
	}
	if ds, err := s.ClaimDeliveries(ctx, at, time.Minute, 10); err != nil || len(ds) != 0 {
		t.Fatalf("Requeue of a claimed delivery made it claimable: %+v, %v", ds, err)
	}
	// An outbox entry whose log is gone is dropped by the claim.
	if err := s.rdb.HDel(ctx, s.k.participant("s1", "p1").deliveries(), "d1").Err(); err != nil {
		t.Fatal(err)
	}
	if ds, err := s.ClaimDeliveries(ctx, at.Add(time.Hour), time.Minute, 10); err != nil || len(ds) != 0 {
		t.Fatalf("claimed %+v (%v) without a delivery log", ds, err)
	}
	if n, err := s.rdb.ZCard(ctx, s.clockShard("s1", "p1").outbox()).Result(); err != nil || n != 0 {
		t.Errorf("outbox entries left: %d (%v)", n, err)
	}
	if err := s.Requeue(ctx, "s1", "p1", "d1"); !errors.Is(err, trial.ErrNotFound) {
		t.Errorf("Requeue without a log: %v, want ErrNotFound", err)
	}
}

func TestClockKey(t *testing.T) {
	times := []time.Time{
		{},
		time.Unix(0, -1),
		time.Unix(0, 0),
		time.Date(2026, 3, 2, 9, 0, 0, 1, time.UTC),
		time.Date(2026, 3, 2, 9, 0, 0, 2, time.UTC),
		time.Date(2199, 12, 31, 23, 59, 59, 999999999, time.UTC),
	}
	for i, tm := range times {
		k := clockKey(tm, false)
		got, err := fromClockKey(k)
		if err != nil || !got.Equal(tm) || len(k) != clockKeyLen {
			t.Errorf("clockKey(%v) = %q decodes to %v, %v", tm, k, got, err)
		}
		if i > 0 && clockKey(times[i-1], false) >= k {
			t.Errorf("clockKey(%v) does not sort after clockKey(%v)", tm, times[i-1])
		}
	}
	if clockKey(time.Time{}, true) != "" {
		t.Error("the zero time is not empty where zero means none")
	}
}
