package power

import "testing"

func BenchmarkNoncentralFSurvival(b *testing.B) {
	b.ReportAllocs()
	f := NoncentralF{D1: 3, D2: 40, Lambda: 12.116357604398448}
	for b.Loop() {
		f.Survival(2.8387453980206427)
	}
}

func BenchmarkNoncentralFSurvivalLargeLambda(b *testing.B) {
	b.ReportAllocs()
	f := NoncentralF{D1: 2, D2: 500, Lambda: 2000}
	for b.Loop() {
		f.Survival(3)
	}
}

func BenchmarkMRTSampleSize(b *testing.B) {
	b.ReportAllocs()
	spec := MRTSpec{
		Days: 42, DecisionsPerDay: 5, RandProb: []float64{0.4},
		Effect:       Trend{Shape: Quadratic, Mean: 0.1, Initial: 0, ChangeDay: 28},
		Availability: Trend{Shape: Quadratic, Mean: 0.5, Initial: 0.7, ChangeDay: 42},
	}
	for b.Loop() {
		if _, err := MRT(spec); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMRTBinarySampleSize(b *testing.B) {
	b.ReportAllocs()
	spec := linearExample(0.8, 0)
	for b.Loop() {
		if _, err := MRTBinary(spec); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFactorialSampleSize(b *testing.B) {
	b.ReportAllocs()
	spec := FactorialSpec{Factors: 5, Order: 2, EffectKind: RawMain, Effect: 3, SD: 10, Power: 0.8}
	for b.Loop() {
		if _, err := Factorial(spec); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkFactorialDetectable(b *testing.B) {
	b.ReportAllocs()
	spec := FactorialSpec{Factors: 5, Order: 2, SD: 10, N: 300, Power: 0.8}
	for b.Loop() {
		if _, err := Factorial(spec); err != nil {
			b.Fatal(err)
		}
	}
}
