package design

// wordLengthPattern returns A_0..A_k for the columns cols (distinct, nonzero,
// bitmasks over q base factors): A_j is the number of j-subsets whose XOR is
// zero, i.e. the number of words of length j in the defining relation.
//
// It counts, for every column value v, the j-subsets summing to v, adding one
// column at a time: O(k^2 2^q). The counts are at most C(63, 31) < 2^63.
func wordLengthPattern(cols []uint32, q int) []int64 {
	k, n := len(cols), 1<<q
	c := make([][]int64, k+1)
	for j := range c {
		c[j] = make([]int64, n)
	}
	c[0][0] = 1
	for i, y := range cols {
		for j := i + 1; j >= 1; j-- {
			cj, cp := c[j], c[j-1]
			for v := range cj {
				cj[v] += cp[v^int(y)]
			}
		}
	}
	a := make([]int64, k+1)
	for j := range a {
		a[j] = c[j][0]
	}
	return a
}

// lexCompare compares word-length patterns (or any count vectors) of equal
// length lexicographically: -1, 0 or 1.
func lexCompare(a, b []int64) int {
	for i := range a {
		if a[i] != b[i] {
			if a[i] < b[i] {
				return -1
			}
			return 1
		}
	}
	return 0
}

// lexCompareCols compares sorted column lists lexicographically.
func lexCompareCols(a, b []uint32) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			if a[i] < b[i] {
				return -1
			}
			return 1
		}
	}
	return len(a) - len(b)
}
