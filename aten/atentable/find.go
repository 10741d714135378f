package atentable

import (
	"sort"
	"strings"
	"sync"
)

var (
	namesOnce sync.Once
	names     []string
)

// Names are the distinct schema names of Ops ("add", "add_", "tril"), sorted.
func Names() []string {
	namesOnce.Do(func() {
		seen := map[string]bool{}
		for _, o := range Ops {
			if !seen[o.Name] {
				seen[o.Name] = true
				names = append(names, o.Name)
			}
		}
		sort.Strings(names)
	})
	return names
}

// Counts are the table's totals: overloads (len(Ops)), distinct op names, and the public ones
// among them (no leading underscore), as aten/COVERAGE.md counts them.
type Counts struct {
	Overloads int `json:"overloads"`
	Names     int `json:"op_names"`
	Public    int `json:"public_op_names"`
}

// Count totals ops (Ops, or a subset of it).
func Count(ops []Op) Counts {
	c := Counts{Overloads: len(ops)}
	seen := map[string]bool{}
	for _, o := range ops {
		if seen[o.Name] {
			continue
		}
		seen[o.Name] = true
		c.Names++
		if !strings.HasPrefix(o.Name, "_") {
			c.Public++
		}
	}
	return c
}

// Suggest returns up to max op names of the table close to name (a schema name without
// namespace or overload, such as "trill"), closest first: those within a small edit distance,
// ignoring case (a swap of two neighbours counts as one edit).
func Suggest(name string, max int) []string {
	name = strings.ToLower(name)
	limit := 1 + len(name)/6
	type cand struct {
		name string
		dist int
	}
	var cs []cand
	for _, n := range Names() {
		if d := editDistance(name, strings.ToLower(n), limit); d <= limit {
			cs = append(cs, cand{n, d})
		}
	}
	sort.SliceStable(cs, func(i, j int) bool { return cs[i].dist < cs[j].dist })
	var out []string
	for _, c := range cs {
		if len(out) == max {
			break
		}
		out = append(out, c.name)
	}
	return out
}

// editDistance is the optimal-string-alignment distance of a and b (bytes: insertions,
// deletions, substitutions and swaps of neighbours), or limit+1 once it must exceed limit.
func editDistance(a, b string, limit int) int {
	if d := len(a) - len(b); d > limit || -d > limit {
		return limit + 1
	}
	prev2 := make([]int, len(b)+1) // row i-2
	prev := make([]int, len(b)+1)  // row i-1
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		best := cur[0]
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
			best = min(best, cur[j])
		}
		if best > limit {
			return limit + 1
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}
