package atentable

import (
	"sort"
	"strings"
	"testing"
)

func TestNamesAndCount(t *testing.T) {
	names := Names()
	if !sort.StringsAreSorted(names) {
		t.Fatal("Names is not sorted")
	}
	c := Count(Ops[:])
	if c.Overloads != len(Ops) || c.Names != len(names) || c.Public > c.Names || c.Public == 0 {
		t.Fatalf("Count = %+v with %d ops and %d names", c, len(Ops), len(names))
	}
	private := 0
	for _, n := range names {
		if strings.HasPrefix(n, "_") {
			private++
		}
	}
	if c.Names-c.Public != private {
		t.Fatalf("Count = %+v, %d private names", c, private)
	}
	if got := Count(nil); got != (Counts{}) {
		t.Fatalf("Count(nil) = %+v", got)
	}
}

func TestSuggest(t *testing.T) {
	for _, tc := range []struct {
		name string
		want string // the first suggestion
	}{
		{"trill", "tril"},
		{"TRIL", "tril"},
		{"rleu", "relu"}, // a swap is one edit
		{"matmull", "matmul"},
		{"softmx", "softmax"},
	} {
		got := Suggest(tc.name, 3)
		if len(got) == 0 || got[0] != tc.want {
			t.Errorf("Suggest(%q) = %v, want %s first", tc.name, got, tc.want)
		}
		if len(got) > 3 {
			t.Errorf("Suggest(%q) = %v: more than 3", tc.name, got)
		}
	}
	if got := Suggest("zzzzqqqq", 3); len(got) != 0 {
		t.Errorf("Suggest(zzzzqqqq) = %v", got)
	}
}

func TestEditDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		d    int
	}{
		{"", "", 0}, {"a", "", 1}, {"abc", "abc", 0}, {"abc", "acb", 1}, {"kitten", "sitting", 3},
		{"tril", "trill", 1}, {"ab", "ba", 1},
	} {
		if got := editDistance(tc.a, tc.b, 10); got != tc.d {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.d)
		}
	}
	if got := editDistance("abcdef", "uvwxyz", 2); got != 3 {
		t.Errorf("past the limit: %d, want 3", got)
	}
}
