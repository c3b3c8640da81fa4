package main

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/jitai/jitai/experiments/design"
)

// runDesign runs `jitai design ARGS...`.
func runDesign(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = run(append([]string{"design"}, args...), &out, &errb)
	return code, out.String(), errb.String()
}

// The text report, against golden files (go test -run Design -update
// rewrites them).
func TestDesignCLIText(t *testing.T) {
	tests := []struct {
		golden string
		args   []string
	}{
		{"ma_7_factors_16_runs", []string{"--factors", "7", "--runs", "16"}},
		{"ma_4_factors_8_runs", []string{"--factors", "4", "--runs", "8"}},
		{"ma_9_factors_32_runs", []string{"--factors", "9", "--runs", "32"}},
		{"resolution_V_5_factors", []string{"--factors", "5", "--resolution", "V"}},
		{"generators_6_2_2", []string{"--factors", "6", "--runs", "16", "--generators", "E=AB,F=ACD"}},
		{"full_factorial_3", []string{"--factors", "3", "--runs", "8"}},
		{"ma_12_factors_64_runs", []string{"--factors", "12", "--runs", "64"}},
	}
	for _, tt := range tests {
		code, out, errOut := runDesign(tt.args...)
		if code != 0 {
			t.Fatalf("%v: exit %d: %s", tt.args, code, errOut)
		}
		goldenFile(t, filepath.Join("testdata", "design", "golden", tt.golden+".txt"), out)
	}
}

func TestDesignCLIJSON(t *testing.T) {
	code, out, errOut := runDesign("--factors", "7", "--runs", "16", "--json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(out), &raw); err != nil {
		t.Fatal(err)
	}
	var keys []string
	for k := range raw {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	want := []string{"aliases", "clear_2fis", "defining_relation", "factors", "generators", "matrix", "proven_minimum_aberration", "resolution", "runs", "wlp"}
	if !slices.Equal(keys, want) {
		t.Errorf("keys %v, want %v", keys, want)
	}
	if !strings.HasPrefix(out, `{"factors":7,"runs":16,"resolution":4,"generators":["E=ABC","F=ABD","G=ACD"],"wlp":[0,7],"defining_relation":["ABCE","ABDF","ACDG","AEFG","BCFG","BDEG","CDEF"],"aliases":["AB=CE=DF","AC=BE=DG","AD=BF=CG","AE=BC=FG","AF=BD=EG","AG=CD=EF","BG=CF=DE"],"clear_2fis":[],"matrix":[[-1,-1,-1,-1,-1,-1,-1],[1,-1,-1,-1,1,1,1],`) {
		t.Errorf("JSON:\n%s", out)
	}
	var r design.Report
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatal(err)
	}
	// The library's tests compare this design with FrF2's.
	d, err := design.Options{}.MinimumAberration(7, 16)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.EqualFunc(r.Matrix, d.Report().Matrix, slices.Equal) {
		t.Errorf("JSON matrix differs from the library's design")
	}
	if !r.ProvenMinimumAberration {
		t.Errorf("not proven")
	}

	code, out, _ = runDesign("--factors", "3", "--runs", "8", "--json")
	if code != 0 || !strings.HasPrefix(out, `{"factors":3,"runs":8,"resolution":null,"generators":[],"wlp":[],"defining_relation":[],"aliases":[],"clear_2fis":["AB","AC","BC"],`) {
		t.Errorf("full factorial JSON (exit %d):\n%s", code, out)
	}
}

func TestDesignCLINotProven(t *testing.T) {
	code, out, errOut := runDesign("--factors", "30", "--runs", "128", "--budget", "1ms")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, "\nNOT proven minimum aberration: the search stopped at its time budget (1ms); this is the best design found\n") {
		t.Errorf("no not-proven line:\n%s", out)
	}
	code, out, _ = runDesign("--factors", "30", "--runs", "128", "--budget", "1ms", "--json")
	if code != 0 || !strings.Contains(out, `"proven_minimum_aberration":false`) {
		t.Errorf("JSON (exit %d) does not say not proven", code)
	}
}

// A search cut by --max-nodes is not proven, and the report says how to pin
// the design it found; the same flags give the same output every time.
func TestDesignCLIMaxNodes(t *testing.T) {
	args := []string{"--factors", "30", "--runs", "128", "--max-nodes", "1000"}
	code, out, errOut := runDesign(args...)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if !strings.Contains(out, "\nNOT proven minimum aberration: the search stopped at its node budget (1000 nodes); this is the best design found\n") {
		t.Errorf("no not-proven line:\n%s", out)
	}
	d, err := design.MinimumAberration(30, 128, 1000)
	if err != nil {
		t.Fatal(err)
	}
	pin := "\nTo use this design in a study, pin it in study.yaml (A, B, C, ... are the between-person factors in declaration order):\n" +
		"  design:\n    runs: 128\n    generators: [\"" + strings.Join(d.Generators(), `", "`) + "\"]\n"
	if !strings.Contains(out, pin) {
		t.Errorf("no pin block %q in:\n%s", pin, out)
	}
	if _, again, _ := runDesign(args...); again != out {
		t.Errorf("a second run printed something else")
	}
}

func TestDesignCLIErrors(t *testing.T) {
	tests := []struct {
		args []string
		msg  string
	}{
		{[]string{"--factors", "6", "--runs", "24"}, "--runs: 24 is not a power of 2"},
		{[]string{"--factors", "4", "--runs", "32"}, "--runs: 32 runs exceed the full factorial in 4 factors (16 runs)"},
		{[]string{"--factors", "9", "--runs", "8"}, "--runs: 9 factors need at least 16 runs"},
		{[]string{"--factors", "6", "--runs", "16", "--resolution", "4"}, "--runs and --resolution: give one of them"},
		{[]string{"--runs", "16"}, "--factors is required"},
		{[]string{"--factors", "6"}, "give --runs N or --resolution R"},
		{[]string{"--factors", "70", "--runs", "128"}, "--factors: 70 factors: want 1 to 63"},
		{[]string{"--factors", "40", "--resolution", "8"}, "--resolution: resolution VIII is not reachable for 40 factors in at most 4096 runs"},
		{[]string{"--factors", "5", "--resolution", "2"}, "--resolution: 2 is below III"},
		{[]string{"--factors", "5", "--resolution", "high"}, `"high" is not a resolution`},
		{[]string{"--factors", "6", "--runs", "16", "--generators", "E=ABX,F=ABD"}, `--generators: "E=ABX": unknown factor "X" (base factors are ABCD)`},
		{[]string{"--factors", "6", "--runs", "16", "--generators", "E=ABC,D=ABD"}, `--generators: "D=ABD": D is a base factor`},
		{[]string{"--factors", "6", "--runs", "16", "--generators", "E=ABC,F=ABC"}, "--generators: E and F have the same generator ABC"},
		{[]string{"--factors", "6", "--runs", "16", "--generators", "E=ABC"}, "--generators: 1 generators given; 6 factors in 16 runs need 2"},
		{[]string{"--factors", "6", "--runs", "16", "--generators", "E=ABC,F=B"}, "at least two base factors"},
		{[]string{"--factors", "6", "--generators", "E=AB,F=ACD", "--resolution", "4"}, "--resolution: the generators give resolution III, below IV"},
		{[]string{"--factors", "6", "--runs", "16", "--budget", "-1s"}, "--budget: -1s is not a positive duration"},
		{[]string{"--factors", "6", "--runs", "16", "--max-nodes", "0"}, "--max-nodes: 0 is not a positive number of search nodes"},
		{[]string{"--factors", "6", "--runs", "16", "extra"}, `unexpected argument "extra"`},
	}
	for _, tt := range tests {
		code, out, errOut := runDesign(tt.args...)
		if code != 2 {
			t.Errorf("%v: exit %d, want 2", tt.args, code)
		}
		if out != "" {
			t.Errorf("%v: wrote to stdout: %s", tt.args, out)
		}
		if !strings.Contains(errOut, tt.msg) {
			t.Errorf("%v: stderr %q, want %q", tt.args, errOut, tt.msg)
		}
	}
	if code, _, _ := runDesign("-h"); code != 0 {
		t.Errorf("-h: exit %d", code)
	}
}
