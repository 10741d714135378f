package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"regexp"
	"strconv"
	"strings"
)

// decimal is what counts as a float on the command line: digits with a point and/or an exponent.
// (strconv.ParseFloat alone would also take "inf", "nan", hex floats and underscores.)
var decimal = regexp.MustCompile(`^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$`)

// ParseValue turns the text after "=" into a JSON value the way hotcb's CLI does: true/false
// (any case) are booleans, integers stay integers (json.Number beyond int64, so they stay exact),
// decimals and exponents (3e-4) are floats, text starting with { or [ that is valid JSON is that
// object or array, and anything else — including "" — is a string. Surrounding spaces are
// trimmed. A float that overflows (1e999) is an error: JSON has no infinity.
func ParseValue(v string) (any, error) {
	v = strings.TrimSpace(v)
	switch strings.ToLower(v) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	if strings.HasPrefix(v, "{") || strings.HasPrefix(v, "[") {
		if x, ok := parseJSON(v); ok {
			return x, nil
		}
		return v, nil // as hotcb: text that is not valid JSON stays a string
	}
	if !decimal.MatchString(v) {
		return v, nil
	}
	if !strings.ContainsAny(v, ".eE") {
		if i, err := strconv.ParseInt(v, 10, 64); err == nil {
			return i, nil
		}
		var b big.Int // an integer beyond int64, kept exact in JSON's spelling (no "+", no leading 0)
		b.SetString(v, 10)
		return json.Number(b.String()), nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsInf(f, 0) {
		return nil, fmt.Errorf("%s is out of range for a float64", v)
	}
	return f, nil
}

// parseJSON decodes one JSON object or array that fills s; numbers stay exact (json.Number).
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
