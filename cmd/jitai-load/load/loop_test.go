package load

import (
	"context"
	"encoding/json"
	mrand "math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestLoopRequests: with a request bound, every request number from 1 to
// the bound is issued exactly once, spread over the workers.
func TestLoopRequests(t *testing.T) {
	var mu sync.Mutex
	var seen []int64
	workers := map[int]bool{}
	Loop(context.Background(), LoopConfig{Workers: 4, Requests: 200, Seed: 7}, func(_ context.Context, i int, _ *mrand.Rand, n int64) {
		time.Sleep(time.Millisecond)
		mu.Lock()
		seen = append(seen, n)
		workers[i] = true
		mu.Unlock()
	})
	slices.Sort(seen)
	if len(seen) != 200 {
		t.Fatalf("%d requests, want 200", len(seen))
	}
	for i, n := range seen {
		if n != int64(i+1) {
			t.Fatalf("requests %v: want 1 to 200 once each", seen)
		}
	}
	if len(workers) != 4 {
		t.Errorf("workers used: %v", workers)
	}
}

// TestLoopDuration: a duration bound ends the loop.
func TestLoopDuration(t *testing.T) {
	el := Loop(context.Background(), LoopConfig{Workers: 2, Duration: 50 * time.Millisecond}, func(context.Context, int, *mrand.Rand, int64) {
		time.Sleep(time.Millisecond)
	})
	if el < 50*time.Millisecond || el > 2*time.Second {
		t.Errorf("ran %s", el)
	}
}

// TestGenerator: requests name one of the participants and a decision
// point (the one asked for, else the one drawn), at a time within the days
// given.
func TestGenerator(t *testing.T) {
	ids := ParticipantIDs("p-", 12)
	if ids[0] != "p-00" || ids[11] != "p-11" {
		t.Fatalf("ids %v", ids)
	}
	day0 := time.Date(2026, time.November, 16, 0, 0, 0, 0, time.UTC)
	points := []DecisionPoint{{ID: "morning", Time: "08:00", Kind: "scheduled"}, {ID: "evening", Time: "20:30", Kind: "scheduled"}, {ID: "app", Kind: "app"}}
	g := NewGenerator(ids, points[:2], "", day0, 3)
	rng := mrand.New(mrand.NewPCG(1, 2))
	for range 500 {
		p, body := g.Request(rng)
		var req struct {
			DecisionPoint string    `json:"decision_point"`
			Time          time.Time `json:"time"`
		}
		if err := json.Unmarshal(body, &req); err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		if !slices.Contains(ids, p) || (req.DecisionPoint != "morning" && req.DecisionPoint != "evening") {
			t.Fatalf("participant %q, body %s", p, body)
		}
		if req.Time.Before(day0) || !req.Time.Before(day0.AddDate(0, 0, 3)) {
			t.Fatalf("time %s outside the 3 days", req.Time)
		}
	}
	ask, err := PointToAsk(points, "")
	if err != nil || ask != "app" {
		t.Fatalf("point to ask: %q %v, want the app point", ask, err)
	}
	g = NewGenerator(ids, points, ask, day0, 3)
	for range 100 {
		_, body := g.Request(rng)
		if !strings.Contains(string(body), `"decision_point":"app"`) {
			t.Fatalf("asked for app, body %s", body)
		}
	}
}
