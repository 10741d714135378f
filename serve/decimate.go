package serve

import "math"

// Decimate picks at most max indices of a series of n points (max >= 4) whose values are
// val(i), in order, such that a line through them looks like the line through all n: the first
// and the last point, and in each of (max-2)/2 buckets of consecutive points its minimum and its
// maximum, so that no spike disappears. When the series has non-finite values (hasNaN), buckets
// are (max-2)/3 and each also keeps its first non-finite point, so a NaN loss stays visible as a
// gap. With n <= max every index is returned.
func Decimate(n, max int, hasNaN bool, val func(int) float64) []int {
	if max < 4 {
		max = 4
	}
	if n <= max {
		idx := make([]int, n)
		for i := range idx {
			idx[i] = i
		}
		return idx
	}
	per := 2
	if hasNaN {
		per = 3
	}
	buckets := (max - 2) / per
	inner := n - 2 // points 1 .. n-2 go into buckets
	out := make([]int, 0, max)
	out = append(out, 0)
	for b := 0; b < buckets; b++ {
		lo := 1 + b*inner/buckets
		hi := 1 + (b+1)*inner/buckets
		if lo >= hi {
			continue
		}
		imin, imax, inan := -1, -1, -1
		for i := lo; i < hi; i++ {
			v := val(i)
			if math.IsNaN(v) || math.IsInf(v, 0) {
				if inan < 0 {
					inan = i
				}
				continue
			}
			if imin < 0 || v < val(imin) {
				imin = i
			}
			if imax < 0 || v > val(imax) {
				imax = i
			}
		}
		out = appendSorted(out, imin, imax, inan)
	}
	return append(out, n-1)
}

// appendSorted appends the distinct non-negative indices among a, b and c in increasing order.
func appendSorted(out []int, a, b, c int) []int {
	xs := [3]int{a, b, c}
	for i := 1; i < 3; i++ {
		for j := i; j > 0 && xs[j] < xs[j-1]; j-- {
			xs[j], xs[j-1] = xs[j-1], xs[j]
		}
	}
	prev := -1
	for _, x := range xs {
		if x >= 0 && x != prev {
			out = append(out, x)
			prev = x
		}
	}
	return out
}
