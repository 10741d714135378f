package pyjson

import (
	"bytes"
	"math"
	"strconv"
)

// QuoteNonFinite quotes the bare NaN, Infinity and -Infinity tokens outside strings — what
// Python's json module writes for non-finite floats and encoding/json refuses — so that the line
// decodes; Number reads the quoted tokens back. changed reports whether there was any.
func QuoteNonFinite(line []byte) (out []byte, changed bool) {
	out = make([]byte, 0, len(line)+16)
	inStr, esc := false, false
	for i := 0; i < len(line); i++ {
		c := line[i]
		if inStr {
			out = append(out, c)
			switch {
			case esc:
				esc = false
			case c == '\\':
				esc = true
			case c == '"':
				inStr = false
			}
			continue
		}
		if c == '"' {
			inStr = true
		}
		tok := ""
		for _, t := range []string{"-Infinity", "Infinity", "NaN"} {
			if bytes.HasPrefix(line[i:], []byte(t)) {
				tok = t
				break
			}
		}
		if tok == "" {
			out = append(out, c)
			continue
		}
		out = append(append(append(out, '"'), tok...), '"')
		i += len(tok) - 1
		changed = true
	}
	return out, changed
}

// Number reads a JSON value as a float: a number (one too large for a float64 is ±Inf), or one
// of the strings "NaN", "Infinity" and "-Infinity" (as QuoteNonFinite leaves them, or as a
// writer spelled them; "nan", "inf" and "-inf" too). Anything else is not a number.
func Number(raw []byte) (float64, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 {
		return 0, false
	}
	switch raw[0] {
	case '"':
		switch string(raw) {
		case `"NaN"`, `"nan"`:
			return math.NaN(), true
		case `"Infinity"`, `"inf"`:
			return math.Inf(1), true
		case `"-Infinity"`, `"-inf"`:
			return math.Inf(-1), true
		}
		return 0, false
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		v, err := strconv.ParseFloat(string(raw), 64)
		if err != nil && !math.IsInf(v, 0) {
			return 0, false
		}
		return v, true
	}
	return 0, false
}
