package intake

import (
	"bytes"
	"errors"
	"io/fs"

	"github.com/hotcb/hotcb/rundir"
)

// File is a small control file (hotcb.yaml, hotcb.freeze.json) read whole at each poll, through
// one open that refuses a symbolic link and never blocks on a FIFO (rundir.ReadControl), and
// handed on when its content changes.
type File struct {
	path    string
	removal bool // a removal is a change (the freeze file: removed means off)

	last     []byte // the content last accepted
	have     bool   // last holds an accepted content
	rejected []byte // the content last rejected: not handed on again until it changes
	isRej    bool
	problem  string // the read problem last reported: each is reported once
}

// Change is what File.Poll hands on: a new content, the file's removal, or a read problem.
type Change struct {
	Data    []byte
	SHA256  string // of Data (hex)
	Removed bool   // the file is gone (for a file whose removal counts)
	// Err is a problem reading the file (not a regular file, unreadable, ...); the content last
	// accepted stays in force. Each distinct problem is handed on once.
	Err error
}

// NewFile reads the control file at path. removal says whether its removal, after a content
// was accepted, is a change to hand on (else a removed file changes nothing).
func NewFile(path string, removal bool) *File { return &File{path: path, removal: removal} }

// Path is the file's path.
func (f *File) Path() string { return f.path }

// Poll reads the file and calls use with what is new: a content different from the one last
// accepted (and from the one last rejected), the file's removal, or a read problem not yet
// reported. use returns nil to accept a content or removal, or an error to reject it (the
// previous content stays in force; the rejected one is not handed on again). What use returns
// for a read problem is ignored.
func (f *File) Poll(use func(Change) error) {
	data, _, err := rundir.ReadControl(f.path)
	if errors.Is(err, fs.ErrNotExist) {
		f.problem = ""
		if f.removal && f.have && use(Change{Removed: true}) == nil {
			f.last, f.have, f.rejected, f.isRej = nil, false, nil, false
		}
		return
	}
	if err != nil {
		if err.Error() != f.problem {
			f.problem = err.Error()
			use(Change{Err: err})
		}
		return
	}
	f.problem = ""
	if f.have && bytes.Equal(data, f.last) {
		f.rejected, f.isRej = nil, false // a rejected content written again is reported again
		return
	}
	if f.isRej && bytes.Equal(data, f.rejected) {
		return
	}
	if use(Change{Data: data, SHA256: LineSHA256(data)}) != nil {
		f.rejected, f.isRej = data, true
		return
	}
	f.last, f.have, f.rejected, f.isRej = data, true, nil, false
}
