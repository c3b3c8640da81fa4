package export

import (
	"testing"
	"time"

	"github.com/jitai/jitai/engine/trial"
)

// TestLocalTime: local_time has one form whatever the season (the engine
// records Z in a UTC+0 winter and +01:00 in summer), and records without
// an offset take it from the participant's time zone.
func TestLocalTime(t *testing.T) {
	london, err := time.LoadLocation("Europe/London")
	if err != nil {
		t.Fatal(err)
	}
	winter := time.Date(2026, 3, 2, 8, 30, 0, 0, time.UTC)
	summer := time.Date(2026, 4, 6, 7, 30, 0, 0, time.UTC)
	for _, tc := range []struct {
		rec         trial.Record
		loc         *time.Location
		want, day   string
		hour        int
		wantMissing bool
	}{
		{rec: trial.Record{Time: winter, LocalTime: "2026-03-02T08:30:00Z"}, want: "2026-03-02T08:30:00+00:00", day: "Monday", hour: 8},
		{rec: trial.Record{Time: summer, LocalTime: "2026-04-06T08:30:00+01:00"}, want: "2026-04-06T08:30:00+01:00", day: "Monday", hour: 8},
		{rec: trial.Record{Time: summer, LocalTime: "2026-04-06T08:30:00"}, loc: london, want: "2026-04-06T08:30:00+01:00", day: "Monday", hour: 8},
		{rec: trial.Record{Time: winter.Add(15 * time.Hour), LocalTime: "2026-03-02T23:30:00"}, loc: london, want: "2026-03-02T23:30:00+00:00", day: "Monday", hour: 23},
		{rec: trial.Record{Time: winter, LocalTime: "2026-03-02T08:30:00"}, wantMissing: true},
	} {
		got := localTime(&tc.rec, tc.loc)
		if tc.wantMissing {
			if !got.IsZero() {
				t.Errorf("%s without a time zone: %v, want missing", tc.rec.LocalTime, got)
			}
			continue
		}
		if s := got.Format(localLayout); s != tc.want || got.Hour() != tc.hour || got.Weekday().String() != tc.day {
			t.Errorf("%s: %s hour %d %s, want %s hour %d %s", tc.rec.LocalTime, s, got.Hour(), got.Weekday(), tc.want, tc.hour, tc.day)
		}
	}
}
