package trial

import (
	"encoding/json"
	"testing"
	"time"
)

func TestSameEventContent(t *testing.T) {
	t0 := time.Date(2026, 11, 21, 14, 5, 0, 123456000, time.UTC)
	base := Event{ID: "e1", Type: EventEMA, Time: t0, Data: json.RawMessage(`{"stress":4,"mood":"ok","x":[1,2.5]}`)}
	cases := []struct {
		name string
		edit func(e *Event)
		same bool
	}{
		{"Identical", func(e *Event) {}, true},
		{"Whitespace and key order", func(e *Event) { e.Data = json.RawMessage(` { "x" : [1, 2.5], "mood":"ok", "stress": 4 } `) }, true},
		{"Number spelling", func(e *Event) { e.Data = json.RawMessage(`{"stress":4.0,"mood":"\u006fk","x":[1e0,25e-1]}`) }, true},
		{"Other zone, same instant", func(e *Event) { e.Time = t0.In(time.FixedZone("X", 3600)) }, true},
		{"Nanoseconds below the microsecond", func(e *Event) { e.Time = t0.Add(500) }, true},
		{"ReceivedAt differs", func(e *Event) { e.ReceivedAt = t0.Add(time.Hour) }, true},
		{"Other value", func(e *Event) { e.Data = json.RawMessage(`{"stress":5,"mood":"ok","x":[1,2.5]}`) }, false},
		{"Extra key", func(e *Event) { e.Data = json.RawMessage(`{"stress":4,"mood":"ok","x":[1,2.5],"y":1}`) }, false},
		{"Array order", func(e *Event) { e.Data = json.RawMessage(`{"stress":4,"mood":"ok","x":[2.5,1]}`) }, false},
		{"Other type", func(e *Event) { e.Type = EventContext }, false},
		{"Other time", func(e *Event) { e.Time = t0.Add(time.Microsecond) }, false},
		{"Invalid JSON", func(e *Event) { e.Data = json.RawMessage(`{"stress":`) }, false},
	}
	for _, c := range cases {
		ev := base
		c.edit(&ev)
		if got := SameEventContent(&base, &ev); got != c.same {
			t.Errorf("%s: SameEventContent = %v, want %v", c.name, got, c.same)
		}
	}
}

func TestCanonicalNumbers(t *testing.T) {
	for in, want := range map[string]string{
		`1`: `1`, `1.0`: `1`, `1e2`: `100`, `-0`: `0`, `-0.0`: `0`, `0.5`: `0.5`, `5e-1`: `0.5`,
		`12345678901234567890`: `12345678901234567890`, `1e400`: `1e400`, `1e21`: `1e+21`,
	} {
		got, err := CanonicalJSON([]byte(in))
		if err != nil || string(got) != want {
			t.Errorf("CanonicalJSON(%s) = %s, %v; want %s", in, got, err, want)
		}
	}
}
