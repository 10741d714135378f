package serve

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// maxLine bounds one JSONL line; a longer one is skipped (counted in bad).
const maxLine = 16 << 20

// readChunk is how much of a file one read takes at most, so that a large file is parsed
// progressively instead of held whole.
const readChunk = 4 << 20

// tail reads the complete lines appended to a file of a run directory since its last read. A
// line still being written (no newline yet: a torn last line) waits for a later read; a file
// that shrinks or is replaced is read again from its start (reset is called first). The file
// is opened through the run's os.Root, so a symbolic link that leads out of the run directory
// is refused, and without blocking, so a FIFO planted in its place cannot hang the server.
type tail struct {
	root *os.Root
	name string // relative to root
	off  int64
	info os.FileInfo
	bad  int   // lines skipped: too long
	err  error // the last error opening or reading the file (a missing file is not one)
}

// poll calls line for each new complete line (without its newline; blank lines skipped) and
// reset before reading a file that was truncated or replaced. It reports whether it read
// anything or reset.
func (t *tail) poll(reset func(), line func([]byte)) (changed bool) {
	f, err := t.root.OpenFile(t.name, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			err = nil
			if t.info != nil { // removed: start over when it comes back
				t.off, t.info = 0, nil
				reset()
				changed = true
			}
		}
		t.err = err
		return changed
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		t.err = err
		return false
	}
	if !fi.Mode().IsRegular() {
		t.err = fmt.Errorf("%s is not a regular file (mode %v)", t.name, fi.Mode())
		return false
	}
	t.err = nil
	if t.info != nil && (!os.SameFile(t.info, fi) || fi.Size() < t.off) {
		t.off = 0
		reset()
		changed = true
	}
	t.info = fi
	for t.off < fi.Size() {
		rest := fi.Size() - t.off
		buf, err := readAt(f, t.off, min(rest, readChunk))
		if err != nil {
			t.err = err
			return changed
		}
		last := bytes.LastIndexByte(buf, '\n')
		if last < 0 && int64(len(buf)) < rest { // a line longer than a chunk
			if buf, err = readAt(f, t.off, min(rest, maxLine+1)); err != nil {
				t.err = err
				return changed
			}
			last = bytes.LastIndexByte(buf, '\n')
		}
		if last < 0 {
			if int64(len(buf)) >= rest {
				return changed // a torn last line: wait for the rest of it
			}
			end, ok := t.skipLine(f, t.off+int64(len(buf)), fi.Size()) // longer than maxLine
			if !ok {
				return changed
			}
			t.off = end
			t.bad++
			changed = true
			continue
		}
		for _, l := range bytes.Split(buf[:last], []byte{'\n'}) {
			if l = bytes.TrimSpace(l); len(l) > 0 {
				line(l)
			}
		}
		t.off += int64(last + 1)
		changed = true
	}
	return changed
}

func readAt(f *os.File, off, n int64) ([]byte, error) {
	buf := make([]byte, n)
	got, err := f.ReadAt(buf, off)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return buf[:got], nil
}

// skipLine finds the end (just past the newline) of the line that continues at from.
func (t *tail) skipLine(f *os.File, from, size int64) (int64, bool) {
	buf := make([]byte, 64<<10)
	for from < size {
		n, err := f.ReadAt(buf, from)
		if i := bytes.IndexByte(buf[:n], '\n'); i >= 0 {
			return from + int64(i) + 1, true
		}
		if err != nil {
			return 0, false
		}
		from += int64(n)
	}
	return 0, false
}
