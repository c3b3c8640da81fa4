package trial

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// EventConflictError is returned by States.AppendEvents when an event's id
// is already stored for the participant with different content (type, time
// or data); nothing of the batch is stored. An event sent again with the
// same content is a duplicate, not a conflict.
type EventConflictError struct {
	// ID is the event id.
	ID string
	// Field, when set, names the event's id in the caller's request (for
	// example "events[3].id"); stores leave it empty and the engine fills
	// it in.
	Field string
}

func (e *EventConflictError) Error() string {
	return fmt.Sprintf("event id %q was already stored with different content", e.ID)
}

// SameEventContent reports whether two events with the same id say the same
// thing: the same type, the same time to the microsecond and the same data
// as JSON, whatever its whitespace, object key order, string escapes or the
// spelling of its numbers (1, 1.0 and 1e0 are the same number). ReceivedAt
// is not compared. Stores use it to tell a duplicate from a conflict.
func SameEventContent(a, b *Event) bool {
	if a.Type != b.Type || !a.Time.Truncate(time.Microsecond).Equal(b.Time.Truncate(time.Microsecond)) {
		return false
	}
	if bytes.Equal(a.Data, b.Data) {
		return true
	}
	ca, errA := CanonicalJSON(a.Data)
	cb, errB := CanonicalJSON(b.Data)
	if errA != nil || errB != nil {
		return false
	}
	return bytes.Equal(ca, cb)
}

// CanonicalJSON re-encodes one JSON value in a canonical form: no
// insignificant whitespace, object keys sorted, strings escaped one way and
// numbers spelt one way (integers as written; other numbers as the shortest
// spelling of the nearest float64, integral ones without exponent up to
// 1e21). Two documents with the same canonical form mean the same to the
// engine, which reads numbers as float64.
func CanonicalJSON(raw []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, fmt.Errorf("canonical JSON: more than one value")
	}
	return json.Marshal(canonicalValue(v))
}

func canonicalValue(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = canonicalValue(e)
		}
	case []any:
		for i, e := range x {
			x[i] = canonicalValue(e)
		}
	case json.Number:
		return canonicalNumber(x)
	}
	return v
}

func canonicalNumber(n json.Number) json.Number {
	s := string(n)
	if !strings.ContainsAny(s, ".eE") {
		if s == "-0" {
			return "0"
		}
		return n
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return n // out of float64 range: compare as written
	}
	if f == 0 {
		return "0"
	}
	if f == math.Trunc(f) && math.Abs(f) < 1e21 {
		return json.Number(strconv.FormatFloat(f, 'f', -1, 64))
	}
	return json.Number(strconv.FormatFloat(f, 'g', -1, 64))
}
