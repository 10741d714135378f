package params

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
)

// ErrUnknownKey matches (errors.Is) the *Error of a key no field answers to.
var ErrUnknownKey = errors.New("params: unknown key")

// Error is one parameter Decode could not take.
type Error struct {
	// Key is the parameter's path as given: "every", "thresholds.loss" for a map entry or a
	// nested struct's field, "layers.2" for a list element; empty for the value given to Float,
	// Int or Bool, whose caller knows its name.
	Key string
	// Value is the value given (for a rule, the value after conversion).
	Value any
	// Want describes what the field accepts: "an integer", "an integer from -128 to 127
	// (int8)", ">= 1", "one of sum, mean". Empty for an unknown key.
	Want string
	// Rule is the tag rule that failed ("min=1", "oneof=a|b"); empty when the value could not
	// be converted at all.
	Rule string
	// Valid lists the keys accepted where Key was found; it is non-nil only for an unknown key.
	Valid []string
}

func (e *Error) Error() string {
	if e.Valid != nil {
		var b strings.Builder
		fmt.Fprintf(&b, "param %q: unknown key", e.Key)
		if s := suggest(lastSegment(e.Key), e.Valid); s != "" {
			fmt.Fprintf(&b, " (did you mean %q?)", s)
		}
		if len(e.Valid) == 0 {
			b.WriteString("; there are no keys here")
		} else {
			fmt.Fprintf(&b, "; valid keys: %s", strings.Join(e.Valid, ", "))
		}
		return b.String()
	}
	want := e.Want
	if e.Rule != "" {
		want = fmt.Sprintf("%s (%s)", e.Want, e.Rule)
	}
	if e.Key == "" { // a single value (Float, Int, Bool): the caller names it
		return fmt.Sprintf("want %s, got %s", want, show(e.Value))
	}
	return fmt.Sprintf("param %q: want %s, got %s", e.Key, want, show(e.Value))
}

// Unwrap makes errors.Is(err, ErrUnknownKey) true for an unknown key.
func (e *Error) Unwrap() error {
	if e.Valid != nil {
		return ErrUnknownKey
	}
	return nil
}

// Errors returns every *Error in err (as Decode returns it: one error, or several joined).
func Errors(err error) []*Error {
	var out []*Error
	var walk func(error)
	walk = func(err error) {
		if e, ok := err.(*Error); ok {
			out = append(out, e)
			return
		}
		switch u := err.(type) {
		case interface{ Unwrap() []error }:
			for _, x := range u.Unwrap() {
				walk(x)
			}
		case interface{ Unwrap() error }:
			if x := u.Unwrap(); x != nil {
				walk(x)
			}
		}
	}
	if err != nil {
		walk(err)
	}
	return out
}

// show prints a given value for a message, shortened to stay on one line.
func show(v any) string {
	var s string
	switch x := v.(type) {
	case nil:
		return "null"
	case json.Number:
		s = string(x)
	case float64:
		s = strconv.FormatFloat(x, 'g', -1, 64)
	case float32:
		s = strconv.FormatFloat(float64(x), 'g', -1, 32)
	default:
		if rv := reflect.ValueOf(v); rv.Kind() == reflect.String {
			s = strconv.Quote(rv.String())
		} else {
			s = fmt.Sprintf("%v", v)
		}
	}
	const max = 80
	if r := []rune(s); len(r) > max {
		s = string(r[:max-1]) + "…"
	}
	return s
}

func lastSegment(key string) string {
	if i := strings.LastIndexByte(key, '.'); i >= 0 {
		return key[i+1:]
	}
	return key
}

// suggest returns the valid key closest to key, if it is close enough to be a typo.
func suggest(key string, valid []string) string {
	n := normalize(key)
	best, bestD := "", -1
	for _, v := range valid {
		d := distance(n, normalize(v))
		if bestD < 0 || d < bestD {
			best, bestD = v, d
		}
	}
	if bestD < 0 || bestD > 2 || bestD*2 > len([]rune(n)) {
		return ""
	}
	return best
}

// distance is the Levenshtein distance between a and b, in runes.
func distance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}
