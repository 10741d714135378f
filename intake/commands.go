package intake

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/hotcb/hotcb/ops"
)

// CommandReader reads hotcb.commands.jsonl for a control loop: it tails the file, parses each
// new line into an op, and hands on the lines that are not ops too (the kernel records them in
// its ledger), without letting garbage flood the log, the ledger or the safe point.
type CommandReader struct {
	t     *Tailer
	bad   badLines
	count int // bad lines so far
}

// Command is one line read from the commands file: an op, or (Err set) a line that is not one.
type Command struct {
	Op ops.Op
	At Resume
	// Err says why the line is not an op. Op then holds what could be made out of it (module,
	// op and id of a JSON object; module "cb" when it names none, as hotcb reads it), and Text
	// the start of the line (empty for a line over the length limit).
	Err  error
	Text string
}

// Commands is what one poll of the commands file read.
type Commands struct {
	// Lines are the ops and the first MaxBadPerPoll bad lines, in file order.
	Lines []Command
	// Unlisted counts the bad lines of the poll after the first MaxBadPerPoll (lines
	// FirstUnlisted to LastUnlisted): a flood is summed up, not listed line by line.
	Unlisted, FirstUnlisted, LastUnlisted int
	// End is the position after the last line consumed, good or bad (zero when none).
	End Resume
	// More says a budget cut the poll short: poll again at the next safe point.
	More bool
}

// MaxBadPerPoll is how many bad lines one poll lists one by one.
const MaxBadPerPoll = 10

// excerptLen is how much of a bad line Command.Text keeps.
const excerptLen = 200

// NewCommandReader reads the commands file at path.
func NewCommandReader(path string) *CommandReader {
	return &CommandReader{t: NewTailer(path), bad: badLines{window: 10 * time.Second, burst: 10, now: time.Now}}
}

// Tailer is the reader's tailer (to position it before the first poll, or read its offsets).
func (r *CommandReader) Tailer() *Tailer { return r.t }

// Path is the commands file.
func (r *CommandReader) Path() string { return r.t.Path() }

// Offset is how far the file has been read.
func (r *CommandReader) Offset() int64 { return r.t.Offset() }

// BadLines counts the lines that were not ops (or that the caller rejected), since the reader
// started.
func (r *CommandReader) BadLines() int { return r.count }

// Poll returns the lines appended since the last poll. Problems and bad lines go to log: the
// first ten in any ten seconds with their reason, the rest as a count.
func (r *CommandReader) Poll(log func(string)) Commands {
	lines, problems := r.t.Poll()
	for _, p := range problems {
		r.bad.report(p.Error, log)
	}
	var out Commands
	listed := 0
	for _, l := range lines {
		at := Resume{End: l.End, Number: l.Number}
		var op ops.Op
		var err error
		if l.TooLong {
			err = fmt.Errorf("longer than %d bytes", maxLine)
		} else {
			op, err = ops.Parse(l.Text)
		}
		if err == nil {
			at.TextSHA256 = LineSHA256(l.Text)
			out.Lines = append(out.Lines, Command{Op: op, At: at})
			continue
		}
		if l.TooLong {
			r.count++
			r.bad.report(func() string {
				return fmt.Sprintf("%s line %d is longer than %d bytes; skipped", r.t.Path(), at.Number, maxLine)
			}, log)
		} else {
			r.Reject(at, err, log)
		}
		if listed == MaxBadPerPoll {
			if out.Unlisted == 0 {
				out.FirstUnlisted = l.Number
			}
			out.Unlisted++
			out.LastUnlisted = l.Number
			continue
		}
		listed++
		at.TextSHA256 = LineSHA256(l.Text)
		c := Command{Op: peek(l.Text), At: at, Err: err}
		if !l.TooLong {
			c.Text = excerpt(l.Text)
		}
		out.Lines = append(out.Lines, c)
	}
	if n := len(lines); n > 0 {
		last := lines[n-1]
		out.End = Resume{End: last.End, Number: last.Number, TextSHA256: LineSHA256(last.Text)}
	}
	r.bad.flush(log)
	out.More = r.t.More()
	return out
}

// Reject counts a bad line and reports it (rate-limited); the standalone controller calls it
// for the ops it refuses after parsing (other modules').
func (r *CommandReader) Reject(at Resume, err error, log func(string)) {
	r.count++
	r.bad.report(func() string { return fmt.Sprintf("%s line %d skipped: %v", r.t.Path(), at.Number, err) }, log)
}

// Close releases the file.
func (r *CommandReader) Close() error { return r.t.Close() }

// peek makes out what it can of a line that is not an op: the module, op and id of a JSON
// object (module "cb" when it has none, hotcb's default); nothing for a line that is not one.
// Fields that are not strings stay empty.
func peek(text []byte) ops.Op {
	var head struct {
		Module any `json:"module"`
		Op     any `json:"op"`
		ID     any `json:"id"`
	}
	if json.Unmarshal(text, &head) != nil {
		return ops.Op{}
	}
	str := func(v any) string { s, _ := v.(string); return s }
	op := ops.Op{Module: str(head.Module), Op: str(head.Op), ID: str(head.ID)}
	if op.Module == "" {
		op.Module = "cb"
	}
	return op
}

// excerpt is the start of a bad line for the ledger: at most excerptLen bytes, cut at a rune
// boundary.
func excerpt(text []byte) string {
	text = bytes.TrimSpace(text)
	if len(text) <= excerptLen {
		return string(text)
	}
	cut := excerptLen
	for cut > 0 && !utf8.RuneStart(text[cut]) {
		cut--
	}
	return string(text[:cut]) + "..."
}

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
