package trial_test

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/jitai/jitai/engine/trial"

	"github.com/jitai/jitai/engine/store/storetest"
)

// Record.AppendJSON and State.AppendJSON must give exactly encoding/json's
// bytes: every reader (export, replay, API) decodes what the stores wrote,
// and stores written before them hold encoding/json's output. Random
// documents fill every exported field by reflection, so a field added to
// the types and forgotten in the encoders fails here.
func TestRecordJSONMatchesEncodingJSON(t *testing.T) {
	now := time.Date(2026, 3, 2, 9, 0, 0, 123456789, time.UTC)
	records := []*trial.Record{{}, storetest.BenchRecord("s1", "p1", "d1", now)}
	states := []*trial.State{{}, storetest.BenchState(3, now)}
	for seed := range uint64(3000) {
		f := filler{rng: rand.New(rand.NewPCG(seed, 1))}
		r, st := &trial.Record{}, &trial.State{}
		f.fill(reflect.ValueOf(r).Elem(), 0)
		f.fill(reflect.ValueOf(st).Elem(), 0)
		records = append(records, r)
		states = append(states, st)
	}
	for i, r := range records {
		want, err := json.Marshal(r)
		if err != nil {
			t.Fatalf("record %d: json.Marshal: %v", i, err)
		}
		got, err := r.AppendJSON([]byte("prefix"))
		if err != nil {
			t.Fatalf("record %d: AppendJSON: %v", i, err)
		}
		if string(got) != "prefix"+string(want) {
			t.Fatalf("record %d:\n got %s\nwant prefix%s", i, got, want)
		}
	}
	for i, st := range states {
		want, err := json.Marshal(st)
		if err != nil {
			t.Fatalf("state %d: json.Marshal: %v", i, err)
		}
		got, err := st.AppendJSON(nil)
		if err != nil {
			t.Fatalf("state %d: AppendJSON: %v", i, err)
		}
		if string(got) != string(want) {
			t.Fatalf("state %d:\n got %s\nwant %s", i, got, want)
		}
	}
}

// What encoding/json refuses, the encoders refuse too.
func TestRecordJSONErrors(t *testing.T) {
	nan, inf := math.NaN(), math.Inf(-1)
	now := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	cases := map[string]*trial.Record{
		"NaN probability":   {Factors: []trial.FactorDraw{{Probability: &nan}}, Input: json.RawMessage(`{}`)},
		"infinite weight":   {Option: &trial.OptionDraw{Draw: inf}, Input: json.RawMessage(`{}`)},
		"year 10000":        {Time: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), Input: json.RawMessage(`{}`)},
		"invalid input":     {Time: now, Input: json.RawMessage(`{"a":}`)},
		"empty input":       {Time: now, Input: json.RawMessage{}},
		"trailing garbage":  {Time: now, Input: json.RawMessage(`{} x`)},
		"invalid number":    {Time: now, Tailoring: map[string]any{"x": json.Number("1.")}, Input: json.RawMessage(`{}`)},
		"NaN in tailoring":  {Time: now, Tailoring: map[string]any{"x": nan}, Input: json.RawMessage(`{}`)},
		"unsupported value": {Time: now, Tailoring: map[string]any{"x": make(chan int)}, Input: json.RawMessage(`{}`)},
	}
	for name, r := range cases {
		if _, err := json.Marshal(r); err == nil {
			t.Fatalf("%s: json.Marshal accepted it; the case tests nothing", name)
		}
		if b, err := r.AppendJSON(nil); err == nil {
			t.Errorf("%s: AppendJSON = %s, want an error", name, b)
		}
	}
	st := &trial.State{Decisions: []time.Time{time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC)}}
	if b, err := st.AppendJSON(nil); err == nil {
		t.Errorf("State.AppendJSON of year -1 = %s, want an error", b)
	}
}

func BenchmarkRecordJSON(b *testing.B) {
	now := time.Date(2026, 3, 2, 9, 0, 0, 123456789, time.UTC)
	r, st := storetest.BenchRecord("s1", "p1", "01JD0000000000000000000000", now), storetest.BenchState(3, now)
	b.Run("Record/encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(r); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Record/AppendJSON", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := r.AppendJSON(nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Record/AppendJSON-reused", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			var err error
			if buf, err = r.AppendJSON(buf[:0]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("State/encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := json.Marshal(st); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("State/AppendJSON", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := st.AppendJSON(nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("State/AppendJSON-reused", func(b *testing.B) {
		b.ReportAllocs()
		var buf []byte
		for b.Loop() {
			var err error
			if buf, err = st.AppendJSON(buf[:0]); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// filler sets every exported field of a value to random, JSON-awkward
// content: escapes, HTML characters, invalid UTF-8, exponent floats, times
// in other zones, nil and empty slices and maps, raw messages with spaces.
type filler struct{ rng *rand.Rand }

var (
	fillStrings = []string{"", "a", "stress_high", "quote\" slash\\ nl\n tab\t", "<b>&amp;</b>", "\u2028\u2029", "é 😀", "bad\xffutf8", "ctl\x01\x1f", "01JD7X3"}
	fillFloats  = []float64{0, math.Copysign(0, -1), 1, -0.5, 0.1, 2.0 / 3, 1e-7, 1e-6, 123456789, 1e20, 1e21, 1.5e300, -4.9e-324, 0.4137792315}
	fillRaw     = []json.RawMessage{nil, json.RawMessage(`{}`), json.RawMessage(`[]`), json.RawMessage(`null`), json.RawMessage(`{"a":1,"b":[true,false,null,"x"],"c":{"d":-1.5e-7}}`),
		json.RawMessage(" { \"a\" : [ 1 , 2 ] }\n"), json.RawMessage(`{"html":"<&>"}`), json.RawMessage(`"\u2028 raw: ` + "\u2028" + `"`), json.RawMessage(`{"esc":"\"\\\/\b\f\n\r\t\u00e9\uD83D\uDE00"}`),
		json.RawMessage(`[0,-0,0.5,10,1E+2,1e-2]`), json.RawMessage("\"bad\xffutf8\""), json.RawMessage(`{"now":"2026-03-02T09:00:00Z","state":{"ema":{"stress":{"v":7,"t":"2026-03-02T08:11:00Z"}}}}`)}
	fillZones = []*time.Location{time.UTC, time.FixedZone("", 5*3600+1800), time.FixedZone("X", -8*3600), time.Local}
)

func (f *filler) fill(v reflect.Value, depth int) {
	switch v.Type() {
	case reflect.TypeFor[time.Time]():
		if f.rng.IntN(5) == 0 {
			return // the zero time
		}
		t := time.Unix(f.rng.Int64N(4e9), f.rng.Int64N(1e9)*int64(f.rng.IntN(2))).In(fillZones[f.rng.IntN(len(fillZones))])
		v.Set(reflect.ValueOf(t))
		return
	case reflect.TypeFor[json.RawMessage]():
		v.Set(reflect.ValueOf(fillRaw[f.rng.IntN(len(fillRaw))]))
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(fillStrings[f.rng.IntN(len(fillStrings))])
	case reflect.Bool:
		v.SetBool(f.rng.IntN(2) == 0)
	case reflect.Int, reflect.Int64:
		v.SetInt(f.rng.Int64N(2e6) - 1e6)
	case reflect.Float64:
		v.SetFloat(fillFloats[f.rng.IntN(len(fillFloats))])
	case reflect.Pointer:
		if f.rng.IntN(3) > 0 {
			v.Set(reflect.New(v.Type().Elem()))
			f.fill(v.Elem(), depth+1)
		}
	case reflect.Slice:
		switch n := f.rng.IntN(5); n {
		case 0: // nil
		default:
			v.Set(reflect.MakeSlice(v.Type(), n-1, n-1))
			for i := range n - 1 {
				f.fill(v.Index(i), depth+1)
			}
		}
	case reflect.Map:
		if n := f.rng.IntN(5); n > 0 {
			v.Set(reflect.MakeMap(v.Type()))
			for range n - 1 {
				k := reflect.New(v.Type().Key()).Elem()
				f.fill(k, depth+1)
				e := reflect.New(v.Type().Elem()).Elem()
				f.fill(e, depth+1)
				v.SetMapIndex(k, e)
			}
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				f.fill(v.Field(i), depth+1)
			}
		}
	case reflect.Interface:
		if x := f.anyValue(depth); x != nil {
			v.Set(reflect.ValueOf(x))
		}
	default:
		panic("filler: no rule for " + v.Type().String())
	}
}

// anyValue is a value as policies and events produce them (and a few the
// standard encoder has to handle).
func (f *filler) anyValue(depth int) any {
	n := 12
	if depth > 6 {
		n = 8 // no more containers
	}
	switch f.rng.IntN(n) {
	case 0:
		return nil
	case 1:
		return fillStrings[f.rng.IntN(len(fillStrings))]
	case 2:
		return fillFloats[f.rng.IntN(len(fillFloats))]
	case 3:
		return f.rng.IntN(2) == 0
	case 4:
		return []json.Number{"0", "12.50", "-3", "1e21", ""}[f.rng.IntN(5)]
	case 5:
		return int(f.rng.Int64N(1000) - 500)
	case 6:
		return int64(f.rng.Int64N(1 << 40))
	case 7:
		return []string{"x", "<y>"}
	case 8, 9:
		m := map[string]any{}
		for range f.rng.IntN(4) {
			m[fillStrings[f.rng.IntN(len(fillStrings))]] = f.anyValue(depth + 1)
		}
		return m
	default:
		l := []any{}
		for range f.rng.IntN(4) {
			l = append(l, f.anyValue(depth+1))
		}
		return l
	}
}
