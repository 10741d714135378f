package intake

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// maxLine is the longest command line accepted; longer ones are skipped whole.
const maxLine = 1 << 20

// Tailer reads complete new lines from an append-only file by byte offset. A line still being
// written (no newline yet) waits for the next poll. If the file is truncated or replaced by
// another file, reading starts again at the beginning of the new content; if it disappears,
// the tailer waits for it to come back.
type Tailer struct {
	path     string
	offset   int64
	info     os.FileInfo // identity of the file being read
	partial  []byte      // bytes after the last newline
	skipping bool        // inside an over-long line
	tail     []byte      // while skipping: the over-long line's last maxLine bytes
	number   int         // lines consumed from this file
	lastErr  string
	atEnd    bool // skip what exists at the first poll
	resume   *Resume
	more     bool   // the last poll stopped at its budget
	buf      []byte // read buffer, reused: a Line's Text is valid until the next Poll
	// held stays open on the file being read: while it is open its inode cannot be reused, so a
	// file removed and created again between two polls never passes for the old one (ext4
	// hands the freed inode number straight to the next file, and SameFile would then skip as
	// many bytes of the new file as were read from the old).
	held *os.File
}

// Line is one complete line, its number in the file and the byte offset just after its newline.
// A line longer than the limit (1 MiB) is TooLong: it is never parsed, and its Text is its last
// 1 MiB, what a Resume after it hashes.
type Line struct {
	Text    []byte
	Number  int
	End     int64
	TooLong bool
}

// Resume is a position in the file to start from: the line Number that ends (with its newline)
// at byte End and whose text hashes to TextSHA256 (hex).
type Resume struct {
	End        int64
	Number     int
	TextSHA256 string
}

// NewTailer tails the file at path.
func NewTailer(path string) *Tailer { return &Tailer{path: path} }

// SkipExisting makes the first poll start at the current end of the file.
func (t *Tailer) SkipExisting() { t.atEnd = true }

// ResumeAfter makes the first poll start after the line r names, if the file still has that
// line there; otherwise (the file was replaced, truncated or rewritten) the first poll reads it
// from its start and reports why.
func (t *Tailer) ResumeAfter(r Resume) { t.resume = &r }

// Path is the tailed file.
func (t *Tailer) Path() string { return t.path }

// Offset is how far the file has been read.
func (t *Tailer) Offset() int64 { return t.offset }

// Close releases the file the tailer holds open. Poll may be called again after it.
func (t *Tailer) Close() error {
	if t.held == nil {
		return nil
	}
	err := t.held.Close()
	t.held = nil
	return err
}

// Poll returns the complete lines appended since the last call, and problems to report (each
// distinct problem once). A line's Text may point into the tailer's buffer: it is valid until
// the next Poll. One poll reads at most 32 MiB and returns at most 4096 lines (see More).
func (t *Tailer) Poll() (lines []Line, problems []error) {
	report := func(err error) {
		if err.Error() != t.lastErr {
			t.lastErr = err.Error()
			problems = append(problems, err)
		}
	}
	// O_NONBLOCK: opening a FIFO put in place of the file must not wait for a writer (it would
	// hang the training loop); it has no effect on a regular file.
	f, err := os.OpenFile(t.path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOFOLLOW|syscall.O_CLOEXEC, 0)
	if errors.Is(err, syscall.ELOOP) {
		report(fmt.Errorf("%s is a symbolic link; refusing to follow it (the commands file must be a regular file in the run directory)", t.path))
		t.reset(nil)
		return nil, problems
	}
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			if t.info != nil {
				report(fmt.Errorf("%s was removed; waiting for it to come back", t.path))
				t.reset(nil)
			}
			return nil, problems
		}
		report(fmt.Errorf("cannot open %s: %v", t.path, err))
		return nil, problems
	}
	keep := false
	defer func() {
		if !keep {
			f.Close()
		}
	}()
	st, err := f.Stat()
	if err != nil {
		report(fmt.Errorf("cannot stat %s: %v", t.path, err))
		return nil, problems
	}
	if st.IsDir() {
		report(fmt.Errorf("%s is a directory, not a commands file", t.path))
		// The file read so far is gone: the next one is new even if it gets the old inode
		// number back (then SameFile would take it for the old file and skip its start).
		t.reset(nil)
		return nil, problems
	}
	if !st.Mode().IsRegular() {
		report(fmt.Errorf("%s is not a regular file (mode %v); waiting for a commands file", t.path, st.Mode()))
		t.reset(nil)
		return nil, problems
	}
	switch {
	case t.info == nil:
		t.reset(st)
		if t.atEnd {
			t.offset = st.Size()
			t.atEnd = false
		}
		if r := t.resume; r != nil {
			t.resume = nil
			if err := lineAt(f, st.Size(), *r); err != nil {
				report(fmt.Errorf("%s: %v; reading it from its start", t.path, err))
			} else {
				t.offset, t.number = r.End, r.Number
			}
		}
	case !os.SameFile(t.info, st):
		report(fmt.Errorf("%s was replaced; reading the new file from its start", t.path))
		t.reset(st)
	case st.Size() < t.offset:
		report(fmt.Errorf("%s was truncated; reading it again from its start", t.path))
		t.reset(st)
	}
	t.lastErr = ""
	if t.held == nil { // reset closed it if the file changed
		t.held, keep = f, true
	}
	t.more = false
	if st.Size() == t.offset {
		return nil, problems
	}
	if _, err := f.Seek(t.offset, io.SeekStart); err != nil {
		report(fmt.Errorf("cannot seek %s: %v", t.path, err))
		return nil, problems
	}
	// Read in chunks until the end, or until this poll's budget of bytes or lines is spent:
	// then More says so and the next poll goes on from the last complete line.
	var read int64
	for read < pollBytes && len(lines) < pollLines && t.offset < st.Size() {
		want := min(st.Size()-t.offset, chunkSize)
		if int64(len(t.buf)) < want || (read > 0 && len(lines) > 0) {
			// Lines already taken point into the old buffer: read on into a new one.
			t.buf = make([]byte, max(want, 64<<10))
		}
		n, err := io.ReadFull(f, t.buf[:want])
		if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) {
			report(fmt.Errorf("cannot read %s: %v", t.path, err))
			return lines, problems
		}
		if n == 0 {
			break
		}
		read += int64(n)
		var stop bool
		lines, stop = t.scan(t.buf[:n], lines)
		if stop {
			t.more = true
			return lines, problems
		}
	}
	t.more = t.offset < st.Size()
	return lines, problems
}

// Budgets of one poll: enough to keep up with any writer, small enough not to stall a step.
const (
	chunkSize = 8 << 20
	pollBytes = 32 << 20
	pollLines = 4096
)

// More says whether the last poll left data unread for lack of budget: the caller should poll
// again at its next safe point rather than wait for a notification.
func (t *Tailer) More() bool { return t.more }

// scan splits buf, read at t.offset, into lines. It stops early, with t.offset after the last
// complete line taken, when the poll's line budget is reached. A line over maxLine is not kept:
// only its last maxLine bytes are (for its hash), and it is returned TooLong at its newline.
func (t *Tailer) scan(buf []byte, lines []Line) ([]Line, bool) {
	pos := t.offset // offset of buf[0]
	t.offset += int64(len(buf))
	for len(buf) > 0 {
		i := bytes.IndexByte(buf, '\n')
		if i < 0 {
			if t.skipping {
				t.tail = lastBytes(t.tail, buf)
				break
			}
			t.partial = append(t.partial, buf...)
			if len(t.partial) > maxLine {
				t.tail = lastBytes(nil, t.partial)
				t.partial, t.skipping = nil, true
			}
			break
		}
		pos += int64(i + 1)
		chunk := buf[:i]
		buf = buf[i+1:]
		t.number++
		var l Line
		switch {
		case t.skipping:
			l = Line{Text: lastBytes(t.tail, chunk), TooLong: true}
			t.tail, t.skipping = nil, false
		case len(t.partial)+len(chunk) > maxLine:
			l = Line{Text: lastBytes(lastBytes(nil, t.partial), chunk), TooLong: true}
			t.partial = nil
		default:
			full := chunk
			if len(t.partial) > 0 {
				full = append(t.partial, chunk...)
				t.partial = nil
			}
			if len(bytes.TrimSpace(full)) == 0 {
				continue
			}
			l = Line{Text: full}
		}
		l.Number, l.End = t.number, pos
		lines = append(lines, l)
		if len(lines) >= pollLines && len(buf) > 0 {
			t.offset = pos // the rest is read again by the next poll
			return lines, true
		}
	}
	return lines, false
}

// lastBytes is the last maxLine bytes of tail followed by b, in a buffer of its own.
func lastBytes(tail, b []byte) []byte {
	if len(b) >= maxLine {
		return append([]byte(nil), b[len(b)-maxLine:]...)
	}
	keep := min(len(tail), maxLine-len(b))
	out := make([]byte, 0, keep+len(b))
	return append(append(out, tail[len(tail)-keep:]...), b...)
}

func (t *Tailer) reset(st os.FileInfo) {
	t.info, t.offset, t.partial, t.skipping, t.tail, t.number = st, 0, nil, false, nil, 0
	t.Close()
}

// lineAt checks that the file (of size size) holds r's line, ending with its newline at r.End.
func lineAt(f *os.File, size int64, r Resume) error {
	if r.End <= 0 || r.End > size {
		return fmt.Errorf("it is %d bytes long, shorter than the %d bytes already applied (truncated or replaced)", size, r.End)
	}
	start := max(0, r.End-maxLine-1)
	buf := make([]byte, r.End-start)
	if _, err := f.ReadAt(buf, start); err != nil {
		return fmt.Errorf("cannot read the last applied line: %v", err)
	}
	if buf[len(buf)-1] != '\n' {
		return fmt.Errorf("byte %d, the end of the last applied line %d, is no longer a line end (rewritten or replaced)", r.End, r.Number)
	}
	text := buf[:len(buf)-1]
	if i := bytes.LastIndexByte(text, '\n'); i >= 0 {
		text = text[i+1:]
	}
	if LineSHA256(text) != r.TextSHA256 {
		return fmt.Errorf("line %d (ending at byte %d) is not the line applied there (rewritten or replaced)", r.Number, r.End)
	}
	return nil
}

// LineSHA256 is the hex SHA-256 of a line's text, as Resume records it.
func LineSHA256(text []byte) string {
	sum := sha256.Sum256(text)
	return hex.EncodeToString(sum[:])
}
