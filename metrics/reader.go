package metrics

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strconv"
	"syscall"

	"github.com/hotcb/hotcb/rundir"
)

// Record is one line of a metrics file.
type Record struct {
	Step     int64
	Epoch    float64 // 0 when the line has none (null)
	WallTime float64
	// Metrics are the line's values (never nil); a value that is not a number (null, a list)
	// is left out.
	Metrics map[string]float64
	// At gives, for a value carried past steps the stride skipped, the step it was reported at
	// ("metrics_at"); the other values are the line's Step's.
	At map[string]int64
	// Restart is set on a restart marker (see the package doc).
	Restart *Restart
}

// Restart is a restart marker's content.
type Restart struct {
	// PreviousLastStep is the last step in the file when the process started (-1 if it had no
	// line that parsed).
	PreviousLastStep int64
}

// StepOf is the step a value of the record was reported at.
func (r *Record) StepOf(name string) int64 {
	if s, ok := r.At[name]; ok {
		return s
	}
	return r.Step
}

// rawRecord is a line as JSON has it.
type rawRecord struct {
	Step     *int64                     `json:"step"`
	Epoch    *float64                   `json:"epoch"`
	WallTime *float64                   `json:"wall_time"`
	Metrics  map[string]json.RawMessage `json:"metrics"`
	At       map[string]int64           `json:"metrics_at"`
	Restart  *struct {
		PreviousLastStep *int64 `json:"previous_last_step"`
	} `json:"restart"`
}

// ParseLine parses one line (without its newline). A line without a step is an error; so is
// one that is not JSON, except that the bare NaN, Infinity and -Infinity Python writes are
// read as numbers.
func ParseLine(line []byte) (Record, error) { return parseLine(line, nil) }

// parseLine is ParseLine, with the metric names interned in intern (when not nil).
func parseLine(line []byte, intern map[string]string) (Record, error) {
	sc := scanner{b: line, intern: intern}
	var r Record
	if sc.record(&r) {
		if r.Metrics == nil {
			r.Metrics = map[string]float64{}
		}
		return r, nil
	}
	return parseJSON(line)
}

// parseJSON is ParseLine through encoding/json.
func parseJSON(line []byte) (Record, error) {
	var raw rawRecord
	err := json.Unmarshal(line, &raw)
	if err != nil && (bytes.Contains(line, []byte("NaN")) || bytes.Contains(line, []byte("Infinity"))) {
		if fixed, ok := quoteNonFinite(line); ok {
			raw = rawRecord{}
			err = json.Unmarshal(fixed, &raw)
		}
	}
	if err != nil {
		return Record{}, err
	}
	if raw.Step == nil {
		return Record{}, errors.New("no step")
	}
	r := Record{Step: *raw.Step, Metrics: make(map[string]float64, len(raw.Metrics)), At: raw.At}
	if raw.Epoch != nil {
		r.Epoch = *raw.Epoch
	}
	if raw.WallTime != nil {
		r.WallTime = *raw.WallTime
	}
	for k, v := range raw.Metrics {
		if f, ok := number(v); ok {
			r.Metrics[k] = f
		}
	}
	if raw.Restart != nil {
		r.Restart = &Restart{PreviousLastStep: -1}
		if raw.Restart.PreviousLastStep != nil {
			r.Restart.PreviousLastStep = *raw.Restart.PreviousLastStep
		}
	}
	return r, nil
}

// number reads a JSON number, or one of the strings "NaN", "Infinity", "-Infinity".
func number(v json.RawMessage) (float64, bool) {
	if len(v) == 0 {
		return 0, false
	}
	if v[0] == '"' {
		var s string
		if json.Unmarshal(v, &s) != nil {
			return 0, false
		}
		switch s {
		case "NaN":
			return math.NaN(), true
		case "Infinity":
			return math.Inf(1), true
		case "-Infinity":
			return math.Inf(-1), true
		}
		return 0, false
	}
	f, err := strconv.ParseFloat(string(v), 64)
	return f, err == nil
}

// quoteNonFinite quotes the bare NaN, Infinity and -Infinity tokens outside strings.
func quoteNonFinite(line []byte) ([]byte, bool) {
	var out []byte
	changed := false
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

// maxLine bounds one line; a longer one is skipped.
const maxLine = 16 << 20

// Read reads a metrics file: its records in file order with restart markers applied (see
// Effective), those at a step after sinceStep (-1: all). Lines that do not parse are skipped,
// and so is an unterminated last line (a torn one, or one being written). A file that does
// not exist is no records and no error.
func Read(path string, sinceStep int64) ([]Record, error) {
	f, err := openRead(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	recs, _, err := readLines(bufio.NewReaderSize(f, 64<<10), -1, nil)
	if err != nil {
		return nil, err
	}
	recs = Effective(recs)
	if sinceStep < 0 {
		return recs, nil
	}
	out := recs[:0]
	for _, r := range recs {
		if r.Step > sinceStep {
			out = append(out, r)
		}
	}
	return out, nil
}

func openRead(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|rundir.NoFollow, 0)
	if errors.Is(err, syscall.ELOOP) {
		return nil, fmt.Errorf("%s is a symbolic link; the metrics stream is read only as a regular file", path)
	}
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err == nil && !st.Mode().IsRegular() {
		err = fmt.Errorf("%s is not a regular file (mode %v)", path, st.Mode())
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// readLines parses the complete lines of r, up to about limit bytes (negative: all), appending
// to recs; consumed is the bytes of the complete lines read.
func readLines(r *bufio.Reader, limit int64, recs []Record) (_ []Record, consumed int64, err error) {
	var pending int64 // bytes of the line being read
	var line []byte   // a line longer than r's buffer, gathered
	long := false     // inside a line longer than maxLine: skipped
	intern := map[string]string{}
	for limit < 0 || consumed < limit {
		chunk, err := r.ReadSlice('\n')
		pending += int64(len(chunk))
		if errors.Is(err, bufio.ErrBufferFull) {
			if !long {
				line = append(line, chunk...)
				if len(line) > maxLine {
					long, line = true, line[:0]
				}
			}
			continue
		}
		if err != nil { // io.EOF: an unterminated last line stays unread
			if errors.Is(err, io.EOF) {
				err = nil
			}
			return recs, consumed, err
		}
		consumed += pending
		pending = 0
		if long {
			long = false
			continue
		}
		if len(line) > 0 {
			chunk = append(line, chunk...)
		}
		if len(chunk) > maxLine {
			line = line[:0]
			continue
		}
		if rec, perr := parseLine(bytes.TrimSpace(chunk), intern); perr == nil {
			recs = append(recs, rec)
		}
		line = line[:0]
	}
	return recs, consumed, nil
}

// Effective applies the restart markers of recs, in file order: a marker at step S removes
// the records before it at a step ≥ S (markers included). The markers stay, so that a chart
// can show them. It reuses recs' array.
func Effective(recs []Record) []Record {
	out := recs[:0]
	for _, r := range recs {
		if r.Restart != nil {
			kept := out[:0]
			for _, o := range out {
				if o.Step < r.Step {
					kept = append(kept, o)
				}
			}
			out = kept
		}
		out = append(out, r)
	}
	return out
}

// Tail follows a metrics file as it grows: each Poll returns the records appended since the
// previous one. It is not safe for concurrent use.
type Tail struct {
	path string
	off  int64
	info os.FileInfo // the file read from, to notice a replaced file
	max  int64
}

// NewTail follows path from its beginning.
func NewTail(path string) *Tail { return &Tail{path: path, max: 16 << 20} }

// Poll returns the complete lines appended since the last Poll, as records (restart markers
// included, not applied: a marker at step S means that points at steps ≥ S already shown are
// superseded). reset is true when the file was replaced or truncated since the last Poll: recs
// then start from its beginning, and what was read before is void. At most 16 MiB of the file
// is read per Poll. A file that does not exist yet is no records.
func (t *Tail) Poll() (recs []Record, reset bool, err error) {
	f, err := openRead(t.path)
	if errors.Is(err, os.ErrNotExist) {
		reset = t.info != nil
		t.info, t.off = nil, 0
		return nil, reset, nil
	}
	if err != nil {
		return nil, false, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, false, err
	}
	if t.info != nil && (!os.SameFile(t.info, st) || st.Size() < t.off) {
		reset, t.off = true, 0
	}
	t.info = st
	if st.Size() == t.off {
		return nil, reset, nil
	}
	if _, err := f.Seek(t.off, io.SeekStart); err != nil {
		return nil, reset, err
	}
	recs, n, err := readLines(bufio.NewReaderSize(f, 64<<10), t.max, nil)
	t.off += n
	return recs, reset, err
}

// Point is a point of a Series: the mean of Values consecutive values, their least and
// greatest, at the step of the last of them.
type Point struct {
	Step     int64
	Value    float64 // the mean (NaN if one of them is NaN)
	Min, Max float64 // NaN values left out; NaN when all are
	N        int
}

// Series is one metric's values over recs, at most maxPoints points (0: no limit): the values
// are taken at the steps they were reported at (Record.StepOf), restart markers applied, and
// when there are more than maxPoints, consecutive values are merged into maxPoints points of
// (nearly) equal counts, each the mean, min and max of its values at its last step.
func Series(recs []Record, name string, maxPoints int) []Point {
	for i := range recs {
		if recs[i].Restart != nil {
			recs = Effective(append([]Record(nil), recs...))
			break
		}
	}
	var pts []Point
	for i := range recs {
		if v, ok := recs[i].Metrics[name]; ok {
			pts = append(pts, Point{Step: recs[i].StepOf(name), Value: v, Min: v, Max: v, N: 1})
		}
	}
	if maxPoints <= 0 || len(pts) <= maxPoints {
		return pts
	}
	out := make([]Point, 0, maxPoints)
	for b := range maxPoints {
		lo, hi := b*len(pts)/maxPoints, (b+1)*len(pts)/maxPoints
		out = append(out, merge(pts[lo:hi]))
	}
	return out
}

func merge(ps []Point) Point {
	m := Point{Step: ps[len(ps)-1].Step, Min: math.NaN(), Max: math.NaN(), N: len(ps)}
	sum := 0.0
	for _, p := range ps {
		sum += p.Value
		if !math.IsNaN(p.Value) {
			if math.IsNaN(m.Min) || p.Value < m.Min {
				m.Min = p.Value
			}
			if math.IsNaN(m.Max) || p.Value > m.Max {
				m.Max = p.Value
			}
		}
	}
	m.Value = sum / float64(len(ps))
	return m
}

// Names are the metric names in recs, sorted.
func Names(recs []Record) []string {
	seen := map[string]bool{}
	var out []string
	for i := range recs {
		for k := range recs[i].Metrics {
			if !seen[k] {
				seen[k] = true
				out = append(out, k)
			}
		}
	}
	sort.Strings(out)
	return out
}
