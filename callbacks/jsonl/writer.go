package jsonl

import (
	"fmt"
	"os"

	"github.com/hotcb/hotcb/callbacks"
	"github.com/hotcb/hotcb/torchenv"
)

// Writer appends JSON lines to a file in the run directory, for the callbacks that keep a
// record (the logger here, stats, guard, system).
//
// The file is opened (its folder created) at the first Write, where the env tells the run
// directory, and kept open: each line is one write(2) with O_APPEND, so a reader never sees
// half of a line that was written whole. A failed open or write never stops training and
// never queues: the line is dropped and counted (Dropped), the file is closed so that the next
// line opens it again (a folder that was removed or a disk that was freed recovers by itself),
// and the failure is logged at the 1st, 10th, 100th … dropped line, with a line when writing
// works again. A line cut short by a failed write is ended with a newline before the next one,
// so every other line still parses. A Writer belongs to one goroutine (the training loop's).
type Writer struct {
	name string // prefix of log lines: "<kind> <id>"
	path string // as configured, usually relative to the run dir

	f        *os.File
	full     string // the path f was opened at
	partial  bool   // the file ends with a cut-short line
	written  int64
	dropped  int64
	failing  bool
	lastErr  error
	reported int64 // dropped count at the last log line
}

// NewWriter returns a writer for path (relative paths are in the run directory; see
// callbacks.OutPath). name prefixes its log lines.
func NewWriter(name, path string) *Writer { return &Writer{name: name, path: path} }

// SetPath points the writer at another file, from the next Write on; the current file is
// closed.
func (w *Writer) SetPath(path string) {
	if path == w.path {
		return
	}
	w.closeFile()
	w.path, w.partial = path, false
}

// Path returns the configured path.
func (w *Writer) Path() string { return w.path }

// File returns the path of the open file ("" before the first successful open).
func (w *Writer) File() string { return w.full }

// Written is the number of lines written; Dropped the number lost to errors.
func (w *Writer) Written() int64 { return w.written }

// Dropped is the number of lines lost to open or write errors.
func (w *Writer) Dropped() int64 { return w.dropped }

// LastError is the most recent open or write error (nil if none happened).
func (w *Writer) LastError() error { return w.lastErr }

// Write appends line (which ends with a newline) and reports whether it was written.
func (w *Writer) Write(env *torchenv.Env, line []byte) bool {
	if w.f == nil {
		if err := w.open(env); err != nil {
			w.fail(env, err)
			return false
		}
	}
	if w.partial {
		if _, err := w.f.Write([]byte{'\n'}); err != nil {
			w.fail(env, err)
			w.closeFile()
			return false
		}
		w.partial = false
	}
	n, err := w.f.Write(line)
	if err != nil {
		if n > 0 {
			w.partial = true
		}
		w.fail(env, err)
		w.closeFile()
		return false
	}
	w.written++
	if w.failing {
		w.failing = false
		env.Logf("%s: writing %s works again (%d lines lost)", w.name, w.full, w.dropped)
	}
	return true
}

func (w *Writer) open(env *torchenv.Env) error {
	full, err := callbacks.OutPath(env, w.path, false)
	if err != nil {
		return err
	}
	f, err := os.OpenFile(full, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	if full != w.full {
		w.partial = false
	}
	w.f, w.full = f, full
	return nil
}

// fail counts a dropped line and logs at the 1st, 10th, 100th … one.
func (w *Writer) fail(env *torchenv.Env, err error) {
	w.dropped++
	w.failing = true
	w.lastErr = err
	if w.dropped == 1 || w.dropped >= 10*w.reported {
		w.reported = w.dropped
		env.Logf("%s: cannot write %s: %v (%d lines lost so far; training goes on)", w.name, w.path, err, w.dropped)
	}
}

func (w *Writer) closeFile() error {
	if w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	return err
}

// Close closes the file; a later Write opens it again.
func (w *Writer) Close() error {
	if err := w.closeFile(); err != nil {
		return fmt.Errorf("%s: closing %s: %w", w.name, w.full, err)
	}
	return nil
}
