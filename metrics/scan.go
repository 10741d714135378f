package metrics

import (
	"math"
	"strconv"
)

// scanner parses a metrics line without encoding/json: the keys of hotcb's record and ours, any
// other key skipped. It gives up (ok false) on anything it does not expect — an escaped key, a
// malformed value — and ParseLine then uses encoding/json, so it only ever makes the common
// case faster. Metric names are interned across the lines a scanner reads.
type scanner struct {
	b      []byte
	i      int
	intern map[string]string
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) eat(c byte) bool {
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == c {
		s.i++
		return true
	}
	return false
}

// key reads a string without escapes.
func (s *scanner) key() ([]byte, bool) {
	s.ws()
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return nil, false
	}
	start := s.i + 1
	for j := start; j < len(s.b); j++ {
		switch c := s.b[j]; {
		case c == '"':
			s.i = j + 1
			return s.b[start:j], true
		case c == '\\' || c < 0x20:
			return nil, false
		}
	}
	return nil, false
}

func (s *scanner) name(b []byte) string {
	if n, ok := s.intern[string(b)]; ok {
		return n
	}
	n := string(b)
	if s.intern != nil && len(s.intern) < 4096 {
		s.intern[n] = n
	}
	return n
}

// token is the bytes of a number or literal.
func (s *scanner) token() []byte {
	s.ws()
	start := s.i
	for s.i < len(s.b) {
		switch c := s.b[s.i]; {
		case c == ',' || c == '}' || c == ']' || c == ' ' || c == '\t' || c == '\n' || c == '\r':
			return s.b[start:s.i]
		default:
			s.i++
		}
	}
	return s.b[start:s.i]
}

// number reads a number, a null (ok with null true), or — in metrics — the bare and quoted
// non-finite values Python and hotcb-go write. Other strings are skipped (ok, null true).
func (s *scanner) number() (v float64, null, ok bool) {
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == '"' {
		b, ok := s.key()
		if !ok {
			return 0, false, false
		}
		if v, ok := nonFinite(b); ok {
			return v, false, true
		}
		return 0, true, true
	}
	if s.i < len(s.b) && (s.b[s.i] == '[' || s.b[s.i] == '{') {
		return 0, true, s.skip()
	}
	t := s.token()
	switch string(t) {
	case "null", "true", "false":
		return 0, true, true
	}
	if v, ok := nonFinite(t); ok {
		return v, false, true
	}
	f, err := strconv.ParseFloat(string(t), 64)
	return f, false, err == nil && len(t) > 0
}

func nonFinite(b []byte) (float64, bool) {
	switch string(b) {
	case "NaN":
		return math.NaN(), true
	case "Infinity":
		return math.Inf(1), true
	case "-Infinity":
		return math.Inf(-1), true
	}
	return 0, false
}

func (s *scanner) integer() (int64, bool) {
	t := s.token()
	n, err := strconv.ParseInt(string(t), 10, 64)
	return n, err == nil
}

// maxDepth bounds the nesting skip follows; deeper lines go to encoding/json.
const maxDepth = 32

// skip passes over any value, nested ones included.
func (s *scanner) skip() bool { return s.skipDepth(0) }

func (s *scanner) skipDepth(depth int) bool {
	s.ws()
	if s.i >= len(s.b) || depth > maxDepth {
		return false
	}
	switch s.b[s.i] {
	case '"':
		for j := s.i + 1; j < len(s.b); j++ {
			switch s.b[j] {
			case '\\':
				j++
			case '"':
				s.i = j + 1
				return true
			}
		}
		return false
	case '{':
		return s.object(func([]byte) bool { return s.skipDepth(depth + 1) })
	case '[':
		s.i++
		if s.eat(']') {
			return true
		}
		for {
			if !s.skipDepth(depth + 1) {
				return false
			}
			if !s.eat(',') {
				return s.eat(']')
			}
		}
	}
	return len(s.token()) > 0
}

// object calls f for each key of an object, f reading the value.
func (s *scanner) object(f func(k []byte) bool) bool {
	if !s.eat('{') {
		return false
	}
	if s.eat('}') {
		return true
	}
	for {
		k, ok := s.key()
		if !ok || !s.eat(':') || !f(k) {
			return false
		}
		if s.eat(',') {
			continue
		}
		return s.eat('}')
	}
}

// record parses the whole line.
func (s *scanner) record(r *Record) bool {
	hasStep := false
	ok := s.object(func(k []byte) bool {
		switch string(k) {
		case "step":
			n, ok := s.integer()
			r.Step, hasStep = n, ok
			return ok
		case "epoch", "wall_time":
			v, _, ok := s.number()
			if string(k) == "epoch" {
				r.Epoch = v
			} else {
				r.WallTime = v
			}
			return ok
		case "metrics":
			r.Metrics = map[string]float64{}
			return s.object(func(k []byte) bool {
				name := s.name(k)
				v, null, ok := s.number()
				if ok && !null {
					r.Metrics[name] = v
				}
				return ok
			})
		case "metrics_at":
			r.At = map[string]int64{}
			return s.object(func(k []byte) bool {
				n, ok := s.integer()
				r.At[s.name(k)] = n
				return ok
			})
		case "restart":
			r.Restart = &Restart{PreviousLastStep: -1}
			return s.object(func(k []byte) bool {
				if string(k) != "previous_last_step" {
					return s.skip()
				}
				n, ok := s.integer()
				r.Restart.PreviousLastStep = n
				return ok
			})
		}
		return s.skip()
	})
	s.ws()
	return ok && hasStep && s.i == len(s.b)
}
