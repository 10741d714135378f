package controller

import (
	"fmt"
	"time"

	"github.com/hotcb/hotcb/ops"
)

// CommandReader reads hotcb.commands.jsonl for a control loop: it tails the file, parses each
// new line into an op, and reports bad lines without letting garbage flood the log or stall the
// loop. The standalone controller and the kernel both read commands through it.
type CommandReader struct {
	t   *Tailer
	bad badLines
}

// Command is one op read from the commands file, and the line it came from.
type Command struct {
	Op ops.Op
	At Resume
}

// NewCommandReader reads the commands file at path.
func NewCommandReader(path string) *CommandReader {
	return &CommandReader{t: NewTailer(path), bad: badLines{window: 10 * time.Second, burst: 10, now: time.Now}}
}

// Tailer is the reader's tailer (to position it before the first poll, or read its offsets).
func (r *CommandReader) Tailer() *Tailer { return r.t }

// Poll returns the ops of the lines appended since the last poll, and the position after the
// last line it consumed, good or bad (zero when none). Problems and bad lines go to log: the
// first ten in any ten seconds with their reason, the rest as a count. more says a budget cut
// the poll short: poll again at the next safe point.
func (r *CommandReader) Poll(log func(string)) (cmds []Command, end Resume, more bool) {
	lines, problems := r.t.Poll()
	for _, p := range problems {
		r.bad.report(p.Error, log)
	}
	for _, l := range lines {
		at := Resume{End: l.End, Number: l.Number}
		op, err := ops.Parse(l.Text)
		if err != nil {
			r.Reject(at, err, log)
			continue
		}
		at.TextSHA256 = LineSHA256(l.Text)
		cmds = append(cmds, Command{Op: op, At: at})
	}
	if n := len(lines); n > 0 {
		end = Resume{End: lines[n-1].End, Number: lines[n-1].Number, TextSHA256: LineSHA256(lines[n-1].Text)}
	}
	r.bad.flush(log)
	return cmds, end, r.t.More()
}

// Reject counts a line the caller refused after parsing (the standalone controller refuses other
// modules' ops) and reports it like a line that did not parse.
func (r *CommandReader) Reject(at Resume, err error, log func(string)) {
	r.t.Bad()
	r.bad.report(func() string { return fmt.Sprintf("%s line %d skipped: %v", r.t.Path(), at.Number, err) }, log)
}

// Close releases the file.
func (r *CommandReader) Close() error { return r.t.Close() }

// badLines rate-limits reports of bad input: burst messages per window are logged as they come;
// the rest are counted and summarised when the window ends.
type badLines struct {
	window     time.Duration
	burst      int
	now        func() time.Time
	start      time.Time
	logged     int
	suppressed int
	last       func() string
}

// report logs msg() or counts it; msg is formatted only when it is logged.
func (b *badLines) report(msg func() string, log func(string)) {
	now := b.now()
	if now.Sub(b.start) >= b.window {
		b.flush(log)
		b.start, b.logged = now, 0
	}
	if b.logged < b.burst {
		b.logged++
		log(msg())
		return
	}
	b.suppressed++
	b.last = msg
}

// flush writes the summary of a window that has ended.
func (b *badLines) flush(log func(string)) {
	if b.suppressed == 0 || b.now().Sub(b.start) < b.window {
		return
	}
	log(fmt.Sprintf("%d more bad lines skipped in %v without a message each (the last: %s)", b.suppressed, b.window, b.last()))
	b.suppressed, b.last = 0, nil
	b.start, b.logged = b.now(), 0
}
