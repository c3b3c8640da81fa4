package export

import (
	"testing"
	"time"

	"github.com/jitai/jitai/engine/trial"
)

// TestEngagementTable: one row per delivered decision, each status's
// flag with the time of its first event, and the latest rating.
func TestEngagementTable(t *testing.T) {
	t0 := time.Date(2026, 3, 2, 8, 30, 0, 0, time.UTC)
	mins := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	four, two := 4.0, 2.0
	d := &decision{participant: "p", id: "d1", point: "morning", time: t0, option: &trial.OptionDraw{ID: "breathing"}}
	row := newEngagementRow(d, []engEvent{
		{t: mins(1), status: "delivered"},
		{t: mins(5), status: "opened"},
		{t: mins(7), status: "opened"},
		{t: mins(9), status: "rated", rating: &two},
		{t: mins(12), status: "completed", rating: &four},
	})
	none := newEngagementRow(&decision{participant: "p", id: "d2", point: "evening", time: mins(600)}, nil)
	tab := engagementTable().table([]*engagementRow{row, none})
	want := map[string][2]any{
		"decision_id": {"d1", "d2"}, "intervention_id": {"breathing", nil},
		"delivered": {int64(1), int64(0)}, "delivered_at": {mins(1), nil},
		"opened": {int64(1), int64(0)}, "opened_at": {mins(5), nil},
		"completed": {int64(1), int64(0)}, "completed_at": {mins(12), nil},
		"dismissed": {int64(0), int64(0)}, "dismissed_at": {nil, nil},
		"rating": {4.0, nil}, "rated_at": {mins(12), nil},
	}
	for name, w := range want {
		for i := range 2 {
			if got := tab.Value(i, name); got != w[i] {
				t.Errorf("row %d %s = %v, want %v", i, name, got, w[i])
			}
		}
	}
	if tab.Index("dismissed_at") < 0 || len(tab.Rows) != 2 {
		t.Fatalf("columns %v, %d rows", tab.Columns, len(tab.Rows))
	}
}
