package analysis

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Plain helpers for front ends such as the jitai analyze command, which
// parses the flags and calls WCLS, EMEE and Factorial.

// splitList splits a comma-separated list, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// ParseLincomb reads a linear combination of coefficients, "1,1".
func ParseLincomb(s string) ([]float64, error) {
	var v []float64
	for _, p := range strings.Split(s, ",") {
		f, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil {
			return nil, fmt.Errorf("%q is not a comma-separated list of numbers", s)
		}
		v = append(v, f)
	}
	return v, nil
}

// ReadCSVFile reads the CSV file at path with ReadCSV.
func ReadCSVFile(path string, numeric, text []string) (*Table, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ReadCSV(f, path, numeric, text)
}

// ParseLevels reads "a=low:high,b=off:on" into factor -> {low, high}.
func ParseLevels(s string) (map[string][2]string, error) {
	out := map[string][2]string{}
	for _, item := range splitList(s) {
		f, lv, ok := strings.Cut(item, "=")
		low, high, ok2 := strings.Cut(lv, ":")
		f, low, high = strings.TrimSpace(f), strings.TrimSpace(low), strings.TrimSpace(high)
		if !ok || !ok2 || f == "" || low == "" || high == "" || strings.Contains(high, ":") {
			return nil, fmt.Errorf("--levels: %q should look like factor=low:high", item)
		}
		if _, dup := out[f]; dup {
			return nil, fmt.Errorf("--levels: factor %q is given twice", f)
		}
		out[f] = [2]string{low, high}
	}
	return out, nil
}

// ParseInteractions reads "a:b,d:e" into the factors of each interaction.
func ParseInteractions(s string) [][]string {
	var out [][]string
	for _, item := range splitList(s) {
		var parts []string
		for _, p := range strings.Split(item, ":") {
			parts = append(parts, strings.TrimSpace(p))
		}
		out = append(out, parts)
	}
	return out
}
