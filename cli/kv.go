package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/big"
	"regexp"
	"strings"

	"github.com/hotcb/hotcb/params"
)

// decimal is what counts as a float on the command line: digits with a point and/or an exponent.
// (strconv.ParseFloat alone would also take "inf", "nan", hex floats and underscores.)
var decimal = regexp.MustCompile(`^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$`)

// ParseValue turns the text after "=" into a value the way hotcb's CLI does: true/false (any
// case) are booleans, integers are integers, decimals and exponents (3e-4) are floats, text
// starting with { or [ that is valid JSON is that object or array, and anything else — including
// "" — is a string. Surrounding spaces are trimmed. The value is in the form every source gives
// callbacks (params.Normalize): an integer is an int64 (a uint64 above math.MaxInt64, so that a
// 64-bit seed stays exact), any other number a float64, also inside objects and arrays. A number
// that overflows a float64 (1e999) is an error: JSON has no infinity.
func ParseValue(v string) (any, error) {
	v = strings.TrimSpace(v)
	switch strings.ToLower(v) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	if strings.HasPrefix(v, "{") || strings.HasPrefix(v, "[") {
		x, ok := parseJSON(v)
		if !ok {
			return v, nil // as hotcb: text that is not valid JSON stays a string
		}
		n, err := params.Normalize(x)
		if err != nil {
			return nil, err
		}
		return n, nil
	}
	if !decimal.MatchString(v) {
		return v, nil
	}
	if !strings.ContainsAny(v, ".eE") {
		var b big.Int // JSON's spelling of the integer: no "+", no leading 0
		b.SetString(v, 10)
		v = b.String()
	}
	n, err := params.Normalize(json.Number(v))
	if err != nil {
		return nil, fmt.Errorf("%s is out of range for a float64", v)
	}
	return n, nil
}

// parseJSON decodes one JSON object or array that fills s; numbers stay exact (json.Number)
// until ParseValue normalizes them.
func parseJSON(s string) (any, bool) {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var x any
	if err := dec.Decode(&x); err != nil || strings.TrimSpace(s[dec.InputOffset():]) != "" {
		return nil, false
	}
	switch x.(type) {
	case map[string]any, []any:
		return x, true
	}
	return nil, false
}

// ParseKV parses key=value pairs into a params map; a later key overrides an earlier one, as in
// hotcb. Every pair must contain "=" and a non-empty key.
func ParseKV(pairs []string) (map[string]any, error) {
	out := make(map[string]any, len(pairs))
	for _, p := range pairs {
		k, v, ok := strings.Cut(p, "=")
		if !ok {
			return nil, usageErr(fmt.Sprintf("expected key=value, got %q", p),
				`write each value as key=value, e.g. every=50 lr=3e-4 name=run1 layers='["fc1","fc2"]'`)
		}
		if k == "" {
			return nil, usageErr(fmt.Sprintf("%q has no key before the =", p), "write key=value, e.g. every=50")
		}
		x, err := ParseValue(v)
		if err != nil {
			return nil, usageErr(fmt.Sprintf("%s: %v", k, err), "JSON numbers must be finite; quote the value to pass it as text")
		}
		out[k] = x
	}
	return out, nil
}

// formatKV shows params compactly for messages: keys sorted, values as JSON.
func formatKV(m map[string]any) string {
	b, err := json.Marshal(m)
	if err != nil {
		return fmt.Sprint(m)
	}
	return string(bytes.TrimSpace(b))
}
