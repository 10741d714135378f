package metrics

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/bits"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/hotcb/hotcb/rundir"
)

// File is the metrics stream's name in a run directory.
const File = "hotcb.metrics.jsonl"

// Defaults of Options.
const (
	DefaultFull          = 10000
	DefaultFlushLines    = 256
	DefaultFlushInterval = 500 * time.Millisecond
	DefaultMaxBuffer     = 4 << 20
)

// Options tune a Writer; the zero value is the defaults.
type Options struct {
	// Full is how many steps are written at full rate before the stride starts doubling (see
	// the package doc); negative: every step, always. Default DefaultFull.
	Full int64
	// FlushLines wakes the writing goroutine when this many lines wait (default 256).
	FlushLines int
	// FlushInterval is how often waiting lines are written at the latest (default 500 ms).
	FlushInterval time.Duration
	// MaxBuffer bounds the bytes waiting to be written (default 4 MiB): while the file cannot
	// be written (a full disk), further lines are dropped and counted, not queued.
	MaxBuffer int
	// Log receives a line when writing fails (the first time, then at the 10th, 100th, …
	// dropped line) and when it works again.
	Log func(string)
}

func (o *Options) defaults() {
	if o.Full == 0 {
		o.Full = DefaultFull
	}
	if o.FlushLines <= 0 {
		o.FlushLines = DefaultFlushLines
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = DefaultFlushInterval
	}
	if o.MaxBuffer <= 0 {
		o.MaxBuffer = DefaultMaxBuffer
	}
}

// Stats are a Writer's counters.
type Stats struct {
	Lines     int64  // lines appended (the restart marker included)
	Decimated int64  // steps the stride skipped
	Dropped   int64  // lines lost: the buffer was full, or a write failed
	LastStep  int64  // step of the last line appended (-1: none yet)
	Err       string // the last write error, "" once writing works again
}

// Writer appends a run's metrics lines to its file (see the package doc). Write and Close are
// called by one goroutine at a time (the training loop's); Flush and Stats from any.
type Writer struct {
	path string
	o    Options
	f    *os.File

	mu       sync.Mutex // guards what follows, down to wmu
	buf      []byte     // whole lines waiting to be written
	waiting  int        // lines in buf
	stats    Stats
	reported int64 // Dropped at the last log line
	failing  bool

	wmu     sync.Mutex // serialises writes to f
	spare   []byte     // the other buffer, swapped with buf at each flush
	partial bool       // f ends with a line a failed write cut short

	// The calling goroutine's.
	line      []byte // the line being formatted
	previous  int64  // the last step in the file when it was opened (-1: none)
	reopened  bool   // the file had content: the first Write writes a restart marker
	started   bool
	carry     Entry   // values of skipped steps not yet written
	carryAt   []int64 // carry's steps
	lastStep  int64
	lastEpoch float64
	lastWall  float64

	kick   chan struct{}
	stop   chan struct{}
	done   chan struct{}
	closed bool
}

// Open opens (creating it 0600, with its directory 0700) the metrics file at path for
// appending, and starts the goroutine that writes it. A torn last line — a killed writer's —
// is ended with a newline first. A symbolic link at path is refused.
func Open(path string, o Options) (*Writer, error) {
	o.defaults()
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_APPEND|rundir.NoFollow, 0o600)
	if errors.Is(err, syscall.ELOOP) {
		return nil, fmt.Errorf("%s is a symbolic link; the metrics stream is written only as a regular file", path)
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
	w := &Writer{path: path, o: o, f: f, previous: -1, lastStep: -1,
		kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	w.stats.LastStep = -1
	if st.Size() > 0 {
		w.reopened = true
		last, torn, err := lastLine(f, st.Size())
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("reading the end of %s: %w", path, err)
		}
		w.previous = last
		if torn {
			if _, err := f.Write([]byte{'\n'}); err != nil {
				f.Close()
				return nil, fmt.Errorf("ending the torn last line of %s: %w", path, err)
			}
		}
	}
	go w.run()
	return w, nil
}

// Path is the file's path.
func (w *Writer) Path() string { return w.path }

// Due reports whether step is written at full rate or on the stride (see the package doc).
func (w *Writer) Due(step int64) bool { return Due(step, w.o.Full) }

// Due is the decimation rule for a Full of full: step is written when it is a multiple of
// 2^floor(log2(step/full + 1)). A negative full (or a negative step) is always due.
func Due(step, full int64) bool {
	if full < 0 || step < full {
		return true
	}
	j := bits.Len64(uint64(step/full+1)) - 1
	return step&(int64(1)<<j-1) == 0
}

// Wants reports whether Write would write e: it is Due or marked Keep.
func (w *Writer) Wants(e *Entry) bool { return e.Keep || w.Due(e.Step) }

// Write appends e's line to the buffer if w Wants it, and reports whether it did; the values
// of a step it skips go into the next line written (with "metrics_at"). The first Write on a
// file that had content writes a restart marker first. Write never blocks on the file.
func (w *Writer) Write(e *Entry) bool {
	if w.closed {
		return false
	}
	if !w.started {
		w.started = true
		if w.reopened {
			w.marker(e)
		}
	}
	w.lastStep, w.lastEpoch, w.lastWall = e.Step, e.Epoch, e.WallTime
	if !w.Wants(e) {
		for i, n := range e.names {
			j := w.carry.set(n, e.values[i], i)
			if j == len(w.carryAt) {
				w.carryAt = append(w.carryAt, e.Step)
			} else {
				w.carryAt[j] = e.Step
			}
		}
		w.mu.Lock()
		w.stats.Decimated++
		w.mu.Unlock()
		return false
	}
	w.format(e)
	w.carry.Reset(0)
	w.carryAt = w.carryAt[:0]
	w.push(e.Step)
	return true
}

// format puts e's line, with the carried values e does not have, in w.line.
func (w *Writer) format(e *Entry) {
	b := w.head(w.line[:0], e.Step, e.Epoch, e.WallTime)
	n := 0
	for i, name := range e.names {
		b = metric(b, n, name, e.values[i])
		n++
	}
	carried := false
	for i, name := range w.carry.names {
		if e.index(name, i) < 0 {
			b = metric(b, n, name, w.carry.values[i])
			n++
			carried = true
		}
	}
	b = append(b, '}')
	if carried {
		b = append(b, `, "metrics_at": {`...)
		n = 0
		for i, name := range w.carry.names {
			if e.index(name, i) < 0 {
				if n > 0 {
					b = append(b, ", "...)
				}
				b = appendString(b, name)
				b = append(b, ": "...)
				b = appendInt(b, w.carryAt[i])
				n++
			}
		}
		b = append(b, '}')
	}
	w.line = append(b, '}', '\n')
}

// head starts a line: step, epoch, wall_time and the opening of metrics.
func (w *Writer) head(b []byte, step int64, epoch, wall float64) []byte {
	if wall == 0 {
		wall = float64(time.Now().UnixMicro()) / 1e6
	}
	b = append(b, `{"step": `...)
	b = appendInt(b, step)
	b = append(b, `, "epoch": `...)
	if math.IsNaN(epoch) || math.IsInf(epoch, 0) {
		epoch = 0
	}
	b = appendInt(b, int64(math.Floor(epoch)))
	b = append(b, `, "wall_time": `...)
	b = appendPyFloat(b, wall)
	return append(b, `, "metrics": {`...)
}

func metric(b []byte, n int, name string, v float64) []byte {
	if n > 0 {
		b = append(b, ", "...)
	}
	b = appendString(b, name)
	b = append(b, ": "...)
	return appendPyFloat(b, v)
}

func appendInt(b []byte, v int64) []byte {
	var s [20]byte
	i := len(s)
	u := uint64(v)
	if v < 0 {
		u = uint64(-v)
	}
	for {
		i--
		s[i] = byte('0' + u%10)
		u /= 10
		if u == 0 {
			break
		}
	}
	if v < 0 {
		b = append(b, '-')
	}
	return append(b, s[i:]...)
}

// marker writes the restart marker before e, the first entry of this process.
func (w *Writer) marker(e *Entry) {
	b := w.head(w.line[:0], e.Step, e.Epoch, e.WallTime)
	b = append(b, `}, "restart": {`...)
	if w.previous >= 0 {
		b = append(b, `"previous_last_step": `...)
		b = appendInt(b, w.previous)
	}
	w.line = append(b, '}', '}', '\n')
	w.push(e.Step)
}

// push moves w.line into the buffer (or drops it when the buffer is full).
func (w *Writer) push(step int64) {
	w.mu.Lock()
	if len(w.buf)+len(w.line) > w.o.MaxBuffer {
		w.stats.Dropped++
		w.logDropped(nil)
		w.mu.Unlock()
		return
	}
	w.buf = append(w.buf, w.line...)
	w.waiting++
	w.stats.Lines++
	w.stats.LastStep = step
	kick := w.waiting >= w.o.FlushLines
	w.mu.Unlock()
	if kick {
		select {
		case w.kick <- struct{}{}:
		default:
		}
	}
}

// logDropped logs the first lines dropped, then at 10, 100 … times as many (w.mu held).
func (w *Writer) logDropped(err error) {
	w.failing = true
	if w.o.Log == nil || (w.reported > 0 && w.stats.Dropped < 10*w.reported) {
		return
	}
	w.reported = w.stats.Dropped
	why := "the buffer is full"
	if err != nil {
		why = err.Error()
	} else if w.stats.Err != "" {
		why += " (" + w.stats.Err + ")"
	}
	w.o.Log(fmt.Sprintf("metrics: cannot write %s: %s (%d lines lost so far; training goes on)", w.path, why, w.stats.Dropped))
}

// run writes the buffer every FlushInterval, or when FlushLines lines wait.
func (w *Writer) run() {
	defer close(w.done)
	t := time.NewTicker(w.o.FlushInterval)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-t.C:
		case <-w.kick:
		}
		w.Flush()
	}
}

// Flush writes the lines waiting, in one write(2).
func (w *Writer) Flush() error {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	w.mu.Lock()
	data, lines := w.buf, w.waiting
	w.buf, w.waiting = w.spare[:0], 0
	w.mu.Unlock()
	w.spare = data[:0]
	if len(data) == 0 || w.f == nil {
		return nil
	}
	if w.partial { // end the cut line so that it costs only itself
		if _, err := w.f.Write([]byte{'\n'}); err != nil {
			return w.failed(err, lines)
		}
		w.partial = false
	}
	n, err := w.f.Write(data)
	if err != nil {
		if n > 0 && n < len(data) {
			w.partial = data[n-1] != '\n'
		}
		return w.failed(err, bytes.Count(data[n:], []byte{'\n'}))
	}
	w.mu.Lock()
	if w.failing {
		w.failing = false
		if w.o.Log != nil {
			w.o.Log(fmt.Sprintf("metrics: writing %s works again (%d lines lost)", w.path, w.stats.Dropped))
		}
	}
	w.stats.Err = ""
	w.mu.Unlock()
	return nil
}

func (w *Writer) failed(err error, lost int) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.stats.Err = err.Error()
	if lost > 0 {
		w.stats.Dropped += int64(lost)
		w.logDropped(err)
	}
	return err
}

// Stats returns the counters.
func (w *Writer) Stats() Stats {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.stats
}

// Close writes a last line with the values of skipped steps not written yet (at the last step
// written, with "metrics_at"), flushes and closes the file. Later Writes write nothing.
func (w *Writer) Close() error {
	if w.closed {
		return nil
	}
	if len(w.carry.names) > 0 {
		var e Entry
		e.Reset(w.lastStep)
		e.Epoch, e.WallTime, e.Keep = w.lastEpoch, w.lastWall, true
		w.Write(&e)
	}
	w.closed = true
	close(w.stop)
	<-w.done
	err := w.Flush()
	w.wmu.Lock()
	if cerr := w.f.Close(); cerr != nil && err == nil {
		err = cerr
	}
	w.f = nil
	w.wmu.Unlock()
	return err
}

// tailChunk is how much of the file's end lastLine reads at a time, and maxTailScan how far
// back it looks for a line that parses.
const (
	tailChunk   = 64 << 10
	maxTailScan = 4 << 20
)

// lastLine returns the step of the last line of f that parses as a metrics line (-1 if none
// within maxTailScan of the end), and whether f ends without a newline.
func lastLine(f *os.File, size int64) (step int64, torn bool, err error) {
	var last [1]byte
	if _, err := f.ReadAt(last[:], size-1); err != nil {
		return -1, false, err
	}
	torn = last[0] != '\n'
	end := size
	var tail []byte // the first piece of the chunk read before: the start of a line may be cut
	for first := true; end > 0 && size-end < maxTailScan; first = false {
		start := max(0, end-tailChunk)
		chunk := make([]byte, end-start, end-start+int64(len(tail)))
		if _, err := f.ReadAt(chunk, start); err != nil && !errors.Is(err, io.EOF) {
			return -1, torn, err
		}
		lines := bytes.Split(append(chunk, tail...), []byte{'\n'})
		last := len(lines) - 1
		if first {
			last-- // the torn line, or the empty piece after the final newline
		}
		firstWhole := 1
		if start == 0 {
			firstWhole = 0
		}
		for i := last; i >= firstWhole; i-- {
			var l struct {
				Step *int64 `json:"step"`
			}
			if json.Unmarshal(lines[i], &l) == nil && l.Step != nil {
				return *l.Step, torn, nil
			}
		}
		tail = lines[0]
		end = start
	}
	return -1, torn, nil
}
