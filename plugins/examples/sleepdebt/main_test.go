package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	pb "github.com/jitai/jitai/plugins/proto"
)

func enrich(t *testing.T, e *enricher, who, date string, hours float64, reported string) map[string]any {
	t.Helper()
	in := fmt.Sprintf(`{"local": {"date": %q, "timezone": "Europe/London"}, "state": {"ema": {"sleep_hours": {"value": %v, "time": %q}}}}`, date, hours, reported)
	resp, err := e.Enrich(context.Background(), &pb.EnrichRequest{Decision: &pb.Decision{Participant: who}, InputJson: []byte(in)})
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	if err := json.Unmarshal(resp.DerivedJson, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestSleepDebt(t *testing.T) {
	dir := t.TempDir()
	e := &enricher{}
	if _, err := e.Configure(context.Background(), &pb.ConfigureRequest{ConfigJson: []byte(`{"nights": 3}`), DataDir: dir}); err != nil {
		t.Fatal(err)
	}
	// Nights of 6, 5 and 7.5 hours (need 8): debt 2 + 3 + 0.5.
	enrich(t, e, "p1", "2026-11-02", 6, "2026-11-02T07:00:00Z")
	enrich(t, e, "p1", "2026-11-03", 5, "2026-11-03T07:00:00Z")
	out := enrich(t, e, "p1", "2026-11-04", 7.5, "2026-11-04T07:00:00Z")
	if out["debt_hours"] != 5.5 || out["nights"] != float64(3) || out["short_sleep"] != true || out["last_night_hours"] != 7.5 {
		t.Fatalf("derived %v", out)
	}
	// Another participant is separate; the same report twice counts once.
	enrich(t, e, "p2", "2026-11-04", 7, "2026-11-04T07:00:00Z")
	out = enrich(t, e, "p2", "2026-11-04", 7, "2026-11-04T07:00:00Z")
	if out["debt_hours"] != float64(1) || out["nights"] != float64(1) || out["short_sleep"] != false {
		t.Fatalf("p2 derived %v", out)
	}
	// Four days later the window (3 nights) has moved on: p1's first
	// nights drop out; the history survives a restart.
	e2 := &enricher{}
	if _, err := e2.Configure(context.Background(), &pb.ConfigureRequest{ConfigJson: []byte(`{"nights": 3}`), DataDir: dir}); err != nil {
		t.Fatal(err)
	}
	out = enrich(t, e2, "p1", "2026-11-05", 8, "2026-11-05T07:00:00Z")
	if out["debt_hours"] != 3.5 || out["nights"] != float64(3) {
		t.Fatalf("after a restart, derived %v, want nights 3-5: debt 3 + 0.5 + 0", out)
	}
}

func TestEraseDeletesOneParticipantsHistory(t *testing.T) {
	dir := t.TempDir()
	e := &enricher{}
	if _, err := e.Configure(context.Background(), &pb.ConfigureRequest{ConfigJson: []byte(`{}`), DataDir: dir}); err != nil {
		t.Fatal(err)
	}
	enrich(t, e, "p1", "2026-11-02", 6, "2026-11-02T07:00:00Z")
	enrich(t, e, "p2", "2026-11-02", 5, "2026-11-02T07:00:00Z")
	for range 2 { // repeating an erasure succeeds
		if _, err := e.Erase(context.Background(), &pb.EraseRequest{Participant: "p1"}); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := os.ReadFile(filepath.Join(dir, "sleepdebt-state.json"))
	if err != nil {
		t.Fatal(err)
	}
	var nights map[string]map[string]float64
	if err := json.Unmarshal(raw, &nights); err != nil {
		t.Fatal(err)
	}
	if _, ok := nights["p1"]; ok || len(nights["p2"]) != 1 {
		t.Errorf("state file after erasing p1: %s", raw)
	}
	if out := enrich(t, e, "p1", "2026-11-03", 7, "2026-11-01T07:00:00Z"); out["nights"] != float64(1) {
		t.Errorf("p1's nights after erasure and one new report: %v, want 1", out["nights"])
	}
}
