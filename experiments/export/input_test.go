package export

import (
	"encoding/json"
	"os"
	"reflect"
	"testing"
)

// TestInputDecoderMatchesEncodingJSON: the fastjson decoder fills
// policyInput as encoding/json does from its tags, on a real stress-mrt
// policy input and on edge cases.
func TestInputDecoderMatchesEncodingJSON(t *testing.T) {
	real, err := os.ReadFile("testdata/policy-input.json")
	if err != nil {
		t.Fatal(err)
	}
	var dec inputDecoder
	for _, raw := range []string{
		string(real),
		`{}`, `null`,
		`{"participant":{"day_in_study":3},"context":{"loc":"home","n":0.1,"b":true,"l":[1,"a",false],"o":{"x":1},"z":null},
		  "derived":{"sleep":{"debt":1.25e2}},"state":{"ema":{"stress":{"value":7,"age_minutes":3}},"context":{"driving":{"value":false}},
		  "assessment":{"phq9":{"total":12},"gad7":{"total":null}}},"history":{"prompts_today":2,"decisions_today":5,"minutes_since_last_prompt":null}}`,
		`{"context":{"s":"caf\u00e9 \"q\""},"history":{"prompts_today":0.30000000000000004}}`,
	} {
		var want, got policyInput
		if err := json.Unmarshal([]byte(raw), &want); err != nil {
			t.Fatal(err)
		}
		if err := dec.decode([]byte(raw), &got); err != nil {
			t.Fatalf("%s: %v", raw, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%.60s...:\n got %+v\nwant %+v", raw, got, want)
		}
	}
	for _, bad := range []string{`{"participant":{"day_in_study":"3"}}`, `{"history":{"prompts_today":true}}`, `[1]`, `{"context":`} {
		var in policyInput
		if err := dec.decode([]byte(bad), &in); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}

// BenchmarkInputDecode decodes a real stress-mrt policy input with the
// export's decoder and, for comparison, with encoding/json.
func BenchmarkInputDecode(b *testing.B) {
	raw, err := os.ReadFile("testdata/policy-input.json")
	if err != nil {
		b.Fatal(err)
	}
	b.Run("fastjson", func(b *testing.B) {
		b.ReportAllocs()
		var dec inputDecoder
		for b.Loop() {
			var in policyInput
			if err := dec.decode(raw, &in); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var in policyInput
			if err := json.Unmarshal(raw, &in); err != nil {
				b.Fatal(err)
			}
		}
	})
}
