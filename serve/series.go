package serve

import (
	"bytes"
	"encoding/json"
	"math"
	"os"
	"sort"
	"strconv"
	"sync"
)

// MetricsSource is what the server needs of a run's metrics: hotcb.metrics.jsonl, whose lines are
// hotcb's {"step": N, "metrics": {"loss": …, "lr": …}} with any other fields beside. A source is
// safe for concurrent use. NewMetricsSource makes the one the server uses.
type MetricsSource interface {
	// Poll reads what was appended to the file since the last call (nothing when the file does
	// not exist yet) and reports whether anything changed.
	Poll() bool
	// Names lists the series, sorted.
	Names() []string
	// Range returns the points of series name with from <= step <= to in step order, decimated
	// to at most max points (the first, the last, and each bucket's extremes), and how many
	// points the range holds before decimation. Non-finite values are NaN or ±Inf.
	Range(name string, from, to int64, max int) (steps []int64, values []float64, total int)
	// Last is the newest step read and the latest value of each series.
	Last() (step int64, values map[string]float64)
}

// NewMetricsSource opens the metrics file name of a run directory (through root, so it cannot
// lead out of it). It is a variable so that another reader can take its place.
var NewMetricsSource = func(root *os.Root, name string) MetricsSource {
	return newSeriesFile(root, name, metricsValues)
}

// MetricsFile is the name of the metrics file in a run directory.
const MetricsFile = "hotcb.metrics.jsonl"

// series is one named series, steps non-decreasing.
type series struct {
	steps  []int64
	vals   []float64
	hasNaN bool // a non-finite value was seen (Decimate then keeps one per bucket)
}

// add appends a point; a step lower than the last one means the run was resumed from an earlier
// checkpoint, and the points from that step on are dropped first (the newer write wins).
func (s *series) add(step int64, v float64) {
	if n := len(s.steps); n > 0 && step < s.steps[n-1] {
		i := sort.Search(n, func(i int) bool { return s.steps[i] >= step })
		s.steps, s.vals = s.steps[:i], s.vals[:i]
	}
	s.steps = append(s.steps, step)
	s.vals = append(s.vals, v)
	if math.IsNaN(v) || math.IsInf(v, 0) {
		s.hasNaN = true
	}
}

// valuesFunc emits the named values of one parsed line.
type valuesFunc func(rec map[string]json.RawMessage, emit func(name string, v float64))

// seriesFile is a JSONL file of numeric records tailed into series: the metrics file, the
// timing and system records. It is safe for concurrent use.
type seriesFile struct {
	mu       sync.RWMutex
	t        tail
	values   valuesFunc
	series   map[string]*series
	names    []string // sorted, rebuilt when a series is added
	lastStep int64
	last     map[string]float64
	lastRec  map[string]json.RawMessage // the newest record as read
	lines    int
	bad      int // lines that are not JSON objects with a step
}

func newSeriesFile(root *os.Root, name string, values valuesFunc) *seriesFile {
	return &seriesFile{t: tail{root: root, name: name}, values: values, series: map[string]*series{},
		last: map[string]float64{}, lastStep: -1}
}

func (f *seriesFile) Poll() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.t.poll(f.reset, f.line)
}

func (f *seriesFile) reset() {
	f.series, f.names, f.last, f.lastRec, f.lastStep, f.lines, f.bad = map[string]*series{}, nil, map[string]float64{}, nil, -1, 0, 0
}

func (f *seriesFile) line(l []byte) {
	rec, ok := parseRecord(l)
	if !ok {
		f.bad++
		return
	}
	step, ok := stepOf(rec)
	if !ok {
		f.bad++
		return
	}
	f.values(rec, func(name string, v float64) {
		s := f.series[name]
		if s == nil {
			s = &series{}
			f.series[name] = s
			f.names = nil
		}
		s.add(step, v)
		f.last[name] = v
	})
	f.lines++
	f.lastStep = step
	f.lastRec = rec
}

func (f *seriesFile) Names() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.names == nil {
		f.names = make([]string, 0, len(f.series))
		for n := range f.series {
			f.names = append(f.names, n)
		}
		sort.Strings(f.names)
	}
	return append([]string(nil), f.names...)
}

func (f *seriesFile) Range(name string, from, to int64, max int) ([]int64, []float64, int) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	s := f.series[name]
	if s == nil {
		return nil, nil, 0
	}
	lo := sort.Search(len(s.steps), func(i int) bool { return s.steps[i] >= from })
	hi := sort.Search(len(s.steps), func(i int) bool { return s.steps[i] > to })
	if lo >= hi {
		return nil, nil, 0
	}
	steps, vals := s.steps[lo:hi], s.vals[lo:hi]
	idx := Decimate(len(steps), max, s.hasNaN, func(i int) float64 { return vals[i] })
	steps2, vals2 := make([]int64, len(idx)), make([]float64, len(idx))
	for k, i := range idx {
		steps2[k], vals2[k] = steps[i], vals[i]
	}
	return steps2, vals2, hi - lo
}

func (f *seriesFile) Last() (int64, map[string]float64) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	m := make(map[string]float64, len(f.last))
	for k, v := range f.last {
		m[k] = v
	}
	return f.lastStep, m
}

// readErr is the last problem opening or reading the file (a missing file is none).
func (f *seriesFile) readErr() error {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.t.err
}

// lastRecord is the newest record as read (nil before the first).
func (f *seriesFile) lastRecord() map[string]json.RawMessage {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.lastRec
}

// parseRecord decodes one line as a JSON object. Python's json module writes NaN, Infinity and
// -Infinity bare, which is not JSON: a line that fails is tried again with those quoted.
func parseRecord(l []byte) (map[string]json.RawMessage, bool) {
	var rec map[string]json.RawMessage
	if json.Unmarshal(l, &rec) == nil && rec != nil {
		return rec, true
	}
	if !bytes.Contains(l, []byte("NaN")) && !bytes.Contains(l, []byte("Infinity")) {
		return nil, false
	}
	if json.Unmarshal(quoteNonFinite(l), &rec) == nil && rec != nil {
		return rec, true
	}
	return nil, false
}

// quoteNonFinite quotes the bare NaN, Infinity and -Infinity tokens outside strings.
func quoteNonFinite(l []byte) []byte {
	out := make([]byte, 0, len(l)+16)
	inStr := false
	for i := 0; i < len(l); i++ {
		c := l[i]
		if inStr {
			out = append(out, c)
			if c == '\\' && i+1 < len(l) {
				out = append(out, l[i+1])
				i++
			} else if c == '"' {
				inStr = false
			}
			continue
		}
		if c == '"' {
			inStr = true
			out = append(out, c)
			continue
		}
		matched := false
		for _, tok := range []string{"-Infinity", "Infinity", "NaN"} {
			if bytes.HasPrefix(l[i:], []byte(tok)) {
				out = append(append(append(out, '"'), tok...), '"')
				i += len(tok) - 1
				matched = true
				break
			}
		}
		if !matched {
			out = append(out, c)
		}
	}
	return out
}

// number reads a JSON value as a float: numbers, and the strings "NaN", "Infinity" and
// "-Infinity" (as quoteNonFinite leaves them, or as a writer spelled them).
func number(raw json.RawMessage) (float64, bool) {
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

func stepOf(rec map[string]json.RawMessage) (int64, bool) {
	v, ok := number(rec["step"])
	if !ok || math.IsNaN(v) || math.IsInf(v, 0) || v < 0 || v > 1e15 {
		return 0, false
	}
	return int64(v), true
}

// metricsValues reads a metrics line: the numbers under "metrics" (nested objects flattened with
// dots: {"val": {"acc": 0.9}} is val.acc). A line needs a step; one without "metrics" adds no
// values.
func metricsValues(rec map[string]json.RawMessage, emit func(string, float64)) {
	if m, ok := rec["metrics"]; ok {
		flatten("", m, emit, 0)
	}
}

// recordValues reads a timing or system record: every number in it, nested objects flattened
// with dots, except the step and bookkeeping fields.
func recordValues(rec map[string]json.RawMessage, emit func(string, float64)) {
	for k, v := range rec {
		if !skipField[k] {
			flatten(k, v, emit, 0)
		}
	}
}

var skipField = map[string]bool{"step": true, "steps": true, "time": true, "wall_time": true, "window": true, "id": true, "event": true}

func flatten(prefix string, raw json.RawMessage, emit func(string, float64), depth int) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || depth > 4 {
		return
	}
	if raw[0] == '{' {
		var m map[string]json.RawMessage
		if json.Unmarshal(raw, &m) != nil {
			return
		}
		for k, v := range m {
			name := k
			if prefix != "" {
				name = prefix + "." + k
			}
			flatten(name, v, emit, depth+1)
		}
		return
	}
	if prefix == "" {
		return
	}
	if v, ok := number(raw); ok {
		emit(prefix, v)
	}
}
