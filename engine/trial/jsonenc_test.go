package trial

import (
	"encoding/json"
	"testing"
)

// AppendJSON must give exactly encoding/json's bytes, so hashes of inputs
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
		got, err := AppendJSON(nil, d)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("AppendJSON:\n got %s\nwant %s", got, want)
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

// appendRawMessage must give what encoding/json gives for a RawMessage
// field (compacted, HTML-escaped) or fail where it fails; its quick path
// must never accept what encoding/json would change.
func FuzzAppendRawMessage(f *testing.F) {
	for _, s := range []string{`{}`, `[]`, `null`, `{"a":1,"b":[true,false,null,"x"]}`, " { \"a\" : 1 }\n", `{"h":"<&>"}`,
		"\"\u2028\"", `"\u2028"`, `"\"\\\/\b\f\n\r\t\u00e9"`, `[0,-0,0.5,1E+2,1e-2,01,1.,-,1e]`, "\"bad\xffutf8\"", `{"a":}`, `{} x`, ``,
		`"ctl` + "\x01" + `"`, `{"a":1,}`, `[1,]`, `tru`, `nul`, `{"a" 1}`, `"\x"`, `"\u12"`, `[[[[[[[[[[]]]]]]]]]]`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, m []byte) {
		want, wantErr := json.Marshal(json.RawMessage(m))
		got, err := appendRawMessage([]byte("x"), m)
		if (err != nil) != (wantErr != nil) {
			t.Fatalf("appendRawMessage(%q): error %v, encoding/json's %v", m, err, wantErr)
		}
		if err == nil && string(got) != "x"+string(want) {
			t.Fatalf("appendRawMessage(%q) = %s, want x%s", m, got, want)
		}
	})
}

func FuzzValidNumber(f *testing.F) {
	for _, s := range []string{"0", "-0", "12.50", "1e21", "1E+2", "01", "1.", ".5", "-", "1e", "1e+", "+1", "0x1", " 1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if s == "" {
			return // encoding/json writes the zero Number as 0
		}
		_, err := json.Marshal(json.Number(s))
		if got := validNumber(s); got != (err == nil) {
			t.Fatalf("validNumber(%q) = %v, encoding/json's error %v", s, got, err)
		}
	})
}
