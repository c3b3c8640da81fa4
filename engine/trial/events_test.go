package trial

import (
	"encoding/json"
	"testing"
	"time"
)

// TestQuietHoursNullClears: a preference event with quiet_hours null is
// valid on its own and clears the quiet hours set before it; an event
// without quiet_hours leaves them.
func TestQuietHoursNullClears(t *testing.T) {
	t0 := time.Date(2026, time.November, 16, 8, 0, 0, 0, time.UTC)
	pref := func(id string, at time.Time, data string) *Event {
		return &Event{ID: id, Type: EventPreference, Time: at, Data: json.RawMessage(data)}
	}
	st := &State{}
	set := pref("set", t0, `{"quiet_hours":{"start":"22:00","end":"07:00"}}`)
	other := pref("other", t0.Add(time.Minute), `{"opt_out":false}`)
	clear := pref("clear", t0.Add(time.Hour), `{"quiet_hours":null}`)
	for _, ev := range []*Event{set, other, clear} {
		if err := ValidateEvent("events[0]", ev, t0.Add(2*time.Hour)); err != nil {
			t.Fatalf("%s: %v", ev.Data, err)
		}
	}
	ApplyEvent(st, set)
	ApplyEvent(st, other)
	if q := st.Preferences.QuietHours; q == nil || q.Start != "22:00" || q.End != "07:00" {
		t.Fatalf("quiet hours after setting them and an opt_out event: %+v, want 22:00-07:00", q)
	}
	ApplyEvent(st, clear)
	if q := st.Preferences.QuietHours; q != nil {
		t.Errorf("quiet hours after quiet_hours null: %+v, want none", q)
	}
	if !st.Preferences.QuietSetAt.Equal(clear.Time) {
		t.Errorf("quiet hours set at %v, want %v", st.Preferences.QuietSetAt, clear.Time)
	}
}
