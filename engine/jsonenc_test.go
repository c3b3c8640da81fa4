package engine

import (
	"encoding/json"
	"testing"
)

// appendJSON must give exactly encoding/json's bytes, so hashes of inputs
// stay comparable whatever encoder wrote them.
func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	docs := []any{
		map[string]any{"b": 1, "a": []any{true, false, nil, "x"}, "c": map[string]any{"z": 1.5, "y": int64(-3)}},
		map[string]any{"s": "quote\" slash\\ nl\n tab\t cr\r ctl\x01 <tag>&amp; \u2028 é 😀 bad\xffutf8"},
		map[string]any{"n": json.Number("12.50"), "f": 0.1, "big": 1e21, "small": 1e-7, "neg": -0.5},
		[]any{},
		map[string]any{},
	}
	for _, d := range docs {
		want, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		got, err := appendJSON(nil, d)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("appendJSON:\n got %s\nwant %s", got, want)
		}
	}
}

func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "plain", "a\"b", "\x00\x1f", "<>&", "\u2028\u2029", "\xff\xfe", "é😀"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := appendString(nil, s); string(got) != string(want) {
			t.Fatalf("appendString(%q) = %s, want %s", s, got, want)
		}
	})
}
