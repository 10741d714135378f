package metrics

import (
	"math"
	"strconv"
	"unicode/utf8"
)

// appendPyFloat appends v as Python's repr writes a float (what json.dumps writes): the
// shortest digits that read back as v, in positional notation when the decimal exponent is in
// (-4, 16] — with ".0" on whole numbers — and as d.ddde±XX otherwise. Non-finite values are
// written as the JSON strings "NaN", "Infinity" and "-Infinity".
func appendPyFloat(b []byte, v float64) []byte {
	switch {
	case math.IsNaN(v):
		return append(b, `"NaN"`...)
	case math.IsInf(v, 1):
		return append(b, `"Infinity"`...)
	case math.IsInf(v, -1):
		return append(b, `"-Infinity"`...)
	}
	if math.Signbit(v) {
		b = append(b, '-')
		v = -v
	}
	// Shortest round-trip digits: d.ddde±XX, in a scratch array on the stack.
	var scratch [32]byte
	e := strconv.AppendFloat(scratch[:0], v, 'e', -1, 64)
	mant, exp := e, 0
	for i := len(e) - 1; i >= 0; i-- {
		if e[i] == 'e' {
			mant = e[:i]
			neg := e[i+1] == '-'
			for _, c := range e[i+2:] {
				exp = 10*exp + int(c-'0')
			}
			if neg {
				exp = -exp
			}
			break
		}
	}
	var digits [24]byte
	nd := 0
	for _, c := range mant {
		if c != '.' {
			digits[nd] = c
			nd++
		}
	}
	decpt := exp + 1 // v = 0.d1d2… × 10^decpt
	if decpt <= -4 || decpt > 16 {
		b = append(b, digits[0])
		if nd > 1 {
			b = append(b, '.')
			b = append(b, digits[1:nd]...)
		}
		b = append(b, 'e')
		if exp < 0 {
			b = append(b, '-')
			exp = -exp
		} else {
			b = append(b, '+')
		}
		if exp < 10 {
			b = append(b, '0')
		}
		return strconv.AppendInt(b, int64(exp), 10)
	}
	switch {
	case decpt <= 0:
		b = append(b, '0', '.')
		for range -decpt {
			b = append(b, '0')
		}
		b = append(b, digits[:nd]...)
	case decpt >= nd:
		b = append(b, digits[:nd]...)
		for range decpt - nd {
			b = append(b, '0')
		}
		b = append(b, '.', '0')
	default:
		b = append(b, digits[:decpt]...)
		b = append(b, '.')
		b = append(b, digits[decpt:nd]...)
	}
	return b
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string the way json.dumps(ensure_ascii=False) writes it:
// quotes, backslashes and control characters escaped, everything else as is. Invalid UTF-8
// becomes U+FFFD.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c == '\b':
				b = append(b, '\\', 'b')
			case c == '\f':
				b = append(b, '\\', 'f')
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, "\ufffd"...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}
