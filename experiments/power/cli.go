package power

// Plain helpers for front ends such as the jitai power command, which
// parses the flags and calls MRT, MRTBinary and Factorial.

// PerDecision expands one-a-day values to one per decision point; values
// already one per decision point are returned as they are.
func PerDecision(v []float64, days, perDay int) []float64 {
	return perDecision(v, days, perDay)
}

// Linspace is R's seq(from, to, length.out = n).
func Linspace(from, to float64, n int) []float64 {
	return linspace(from, to, n)
}

// linspace is R's seq(from, to, length.out = n).
func linspace(from, to float64, n int) []float64 {
	out := make([]float64, n)
	if n == 1 {
		out[0] = from
		return out
	}
	for i := range out {
		out[i] = from + (to-from)*float64(i)/float64(n-1)
	}
	return out
}
