package gofile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/hotcb/hotcb/rundir"
)

// ReadSource reads a go_file source the way every load does, hot reloads included. Whoever can
// change the file, or swap it, can run code in the training process, so:
//
//   - The directories are checked first: the file's directory, symlinks resolved, and each of
//     its ancestors must be owned by this user or root and not writable by group or others —
//     unless sticky (like /tmp, mode 1777). In a sticky directory others cannot rename or delete
//     a file they do not own, so a file of ours there cannot be swapped; the file's own checks
//     below then apply. This is the rule of ssh's StrictModes.
//   - The file is opened once (O_NOFOLLOW, so the last component must not be a symbolic link;
//     O_NONBLOCK, so a FIFO does not block), and that descriptor is checked (fstat: a regular
//     file, owned by this user or root, not writable by group or others) and read. Nothing is
//     looked up by path again between the check and the read.
//
// allowAnyOwner skips the owner and mode checks of the file and its directories; the file is
// still opened once and the descriptor checked is the one read. The returned FileInfo is that
// descriptor's.
func ReadSource(path string, allowAnyOwner bool) ([]byte, fs.FileInfo, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, nil, err
	}
	dir, err := filepath.EvalSymlinks(filepath.Dir(abs))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil, notFound{path, abs}
		}
		return nil, nil, err
	}
	if !allowAnyOwner {
		if err := checkDirs(path, dir); err != nil {
			return nil, nil, err
		}
	}
	f, err := os.OpenFile(filepath.Join(dir, filepath.Base(abs)), os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK|syscall.O_CLOEXEC, 0)
	if err != nil {
		switch {
		case errors.Is(err, fs.ErrNotExist):
			return nil, nil, notFound{path, abs}
		case errors.Is(err, syscall.ELOOP):
			to, _ := os.Readlink(path)
			return nil, nil, fmt.Errorf("refusing %s: it is a symbolic link; load the file it points to (%s)", path, to)
		}
		return nil, nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	if st.IsDir() {
		return nil, nil, fmt.Errorf("%s is a directory, not a .go file", path)
	}
	if !st.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("%s is not a regular file (mode %v)", path, st.Mode())
	}
	if !allowAnyOwner {
		if st.Mode().Perm()&0o022 != 0 {
			return nil, nil, fmt.Errorf("refusing %s: it is writable by group or others (mode %v); chmod go-w it, or allow any owner explicitly", path, st.Mode().Perm())
		}
		if uid, ok := ownerOf(st); ok && !trustedOwner(uid) {
			return nil, nil, fmt.Errorf("refusing %s: it is owned by uid %d, not by this user or root; allow any owner explicitly to load it", path, uid)
		}
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, nil, fmt.Errorf("read %s: %w", path, err)
	}
	return b, st, nil
}

// checkDirs checks dir (the real directory of path) and each of its ancestors.
func checkDirs(path, dir string) error {
	err := rundir.CheckDirs(dir, false)
	var de *rundir.DirError
	switch {
	case errors.As(err, &de) && de.Owner >= 0:
		return fmt.Errorf("refusing %s: %v, so its owner could swap the file; move the file, or allow any owner explicitly", path, err)
	case errors.As(err, &de):
		return fmt.Errorf("refusing %s: %v, so another user could swap the file; chmod go-w %s, or allow any owner explicitly", path, err, de.Dir)
	case err != nil:
		return fmt.Errorf("refusing %s: %v", path, err)
	}
	return nil
}

// notFound is the error for a missing source; it matches fs.ErrNotExist. A relative path names
// where it was looked for (the training process's working directory, which may not be the
// shell's that wrote the command).
type notFound struct{ path, abs string }

func (n notFound) Error() string {
	if filepath.IsAbs(n.path) {
		return "go file " + n.path + " not found"
	}
	return "go file " + n.path + " not found (looked for " + n.abs + ": a relative path is read from the training process's working directory)"
}
func (n notFound) Unwrap() error { return fs.ErrNotExist }

func ownerOf(st fs.FileInfo) (uint32, bool) {
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		return sys.Uid, true
	}
	return 0, false
}

func trustedOwner(uid uint32) bool { return rundir.TrustedOwner(uid) }
