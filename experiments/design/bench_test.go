package design

import (
	"testing"
)

func benchmarkSearch(b *testing.B, k, runs int) {
	b.ReportAllocs()
	for b.Loop() {
		d, err := MinimumAberration(k, runs, -1)
		if err != nil {
			b.Fatal(err)
		}
		if !d.ProvenMinimumAberration() {
			b.Fatal("not proven")
		}
	}
}

// BenchmarkSearch12in64 is the benchmark: 12 factors in 64 runs.
func BenchmarkSearch12in64(b *testing.B) { benchmarkSearch(b, 12, 64) }

// BenchmarkSearch11in128: 128 runs with 4 added factors.
func BenchmarkSearch11in128(b *testing.B) { benchmarkSearch(b, 11, 128) }

// BenchmarkSearch21in64 is the slowest 64-run search (direct branch and
// bound).
func BenchmarkSearch21in64(b *testing.B) { benchmarkSearch(b, 21, 64) }

// BenchmarkSearch32in64: the maximal even design.
func BenchmarkSearch32in64(b *testing.B) { benchmarkSearch(b, 32, 64) }

// BenchmarkSearch40in64 goes through the complement search.
func BenchmarkSearch40in64(b *testing.B) { benchmarkSearch(b, 40, 64) }

// BenchmarkSearch14in128: 128 runs with 7 added factors (beyond the range
// promised to be exact, proven here all the same).
func BenchmarkSearch14in128(b *testing.B) { benchmarkSearch(b, 14, 128) }

// BenchmarkReport: the analysis of a design (defining relation, aliases,
// clear 2FIs, matrix) for 2^(20-14) in 64 runs.
func BenchmarkReport(b *testing.B) {
	d, err := MinimumAberration(20, 64, 0)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		d.wlp = nil
		_ = d.Report()
	}
}
