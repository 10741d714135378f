package harness

import (
	"fmt"
	"slices"
	"strings"
)

// Stats summarises repeated measurements.
type Stats struct {
	Median float64 `json:"median"`
	Min    float64 `json:"min"`
	Max    float64 `json:"max"`
	N      int     `json:"n"`
}

// Summarize returns the median (the mean of the middle two for an even count), minimum and
// maximum of xs; the zero Stats for none.
func Summarize(xs []float64) Stats {
	if len(xs) == 0 {
		return Stats{}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	med := s[n/2]
	if n%2 == 0 {
		med = (s[n/2-1] + s[n/2]) / 2
	}
	return Stats{Median: med, Min: s[0], Max: s[n-1], N: n}
}

// UnitScale is the factor from seconds to the unit's time part: "ns/op" → 1e9, "ms/step" →
// 1e3 ("us" and "µs" → 1e6, "s" → 1).
func UnitScale(unit string) (float64, error) {
	head, _, _ := strings.Cut(unit, "/")
	switch head {
	case "ns":
		return 1e9, nil
	case "us", "µs":
		return 1e6, nil
	case "ms":
		return 1e3, nil
	case "s":
		return 1, nil
	}
	return 0, fmt.Errorf("harness: unknown time unit in %q", unit)
}
