package rundir

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// DirError says why a directory cannot be trusted: another user owns it, or can write to it.
type DirError struct {
	Dir      string
	Owner    int         // the foreign owner's uid, or -1
	Mode     fs.FileMode // when writable by group or others
	Sticky   bool        // the directory is sticky (only a strict check refuses that)
	Ancestor bool        // an ancestor of the directory checked, not the directory itself
}

func (e *DirError) Error() string {
	if e.Owner >= 0 {
		return fmt.Sprintf("directory %s is owned by uid %d, not by this user or root", e.Dir, e.Owner)
	}
	if e.Sticky {
		return fmt.Sprintf("directory %s is writable by group or others (mode %v), sticky or not", e.Dir, e.Mode.Perm())
	}
	return fmt.Sprintf("directory %s is writable by group or others (mode %v) and not sticky", e.Dir, e.Mode.Perm())
}

// CheckDirs checks that no other user can change what dir holds: dir and each of its ancestors
// must be owned by this user or root, and not writable by group or others unless sticky (in a
// sticky directory, like /tmp, others cannot rename or delete what they do not own, so what we
// own there cannot be swapped — the rule of ssh's StrictModes). strict refuses a sticky dir
// too (for a directory whose new files matter, like a run directory). dir should have its
// symbolic links resolved (filepath.EvalSymlinks); a *DirError says what is wrong.
func CheckDirs(dir string, strict bool) error {
	for d := dir; ; d = filepath.Dir(d) {
		st, err := os.Lstat(d)
		if err != nil {
			return fmt.Errorf("checking directory %s: %w", d, err)
		}
		if !st.IsDir() {
			return fmt.Errorf("%s is not a directory any more (mode %v)", d, st.Mode())
		}
		ancestor := d != dir
		if uid, ok := ownerOf(st); ok && !TrustedOwner(uid) {
			return &DirError{Dir: d, Owner: int(uid), Ancestor: ancestor}
		}
		sticky := st.Mode()&fs.ModeSticky != 0
		if st.Mode().Perm()&0o022 != 0 && (!sticky || (strict && !ancestor)) {
			return &DirError{Dir: d, Owner: -1, Mode: st.Mode(), Sticky: sticky, Ancestor: ancestor}
		}
		if d == filepath.Dir(d) {
			return nil
		}
	}
}

// TrustedOwner says whether a file owned by uid is this user's or root's.
func TrustedOwner(uid uint32) bool { return uid == 0 || int(uid) == os.Getuid() }

func ownerOf(st fs.FileInfo) (uint32, bool) {
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		return sys.Uid, true
	}
	return 0, false
}

// CheckRunDir refuses a run directory that another user could plant files in or swap: its
// control files are commands the training process runs. It resolves symbolic links first.
func CheckRunDir(d Dir) error {
	real, err := filepath.EvalSymlinks(string(d))
	if err != nil {
		return err
	}
	err = CheckDirs(real, true)
	var de *DirError
	if errors.As(err, &de) {
		how := "chmod go-w " + de.Dir
		if de.Owner >= 0 {
			how = "use a directory of your own"
		}
		return fmt.Errorf("run directory %s is not private: %v, so another user could plant or replace its control files (commands, YAML, sources); %s, or allow a shared run directory explicitly (hotcb train --allow-shared-rundir)",
			d, err, how)
	}
	return err
}

// NoFollow are the flags every open of a run-directory file adds: a symbolic link planted in
// place of a control file is refused (ELOOP), never followed to a file of the link's choosing.
const NoFollow = syscall.O_NOFOLLOW | syscall.O_CLOEXEC

// maxControl bounds what ReadControl reads: control files are small.
const maxControl = 64 << 20

// ReadControl reads a control file of the run directory (hotcb.yaml, hotcb.freeze.json): one
// open that refuses a symbolic link and does not block on a FIFO, and a check of that
// descriptor (a regular file, at most 64 MiB). The FileInfo is the descriptor's.
func ReadControl(path string) ([]byte, fs.FileInfo, error) { return readRegular(path, NoFollow) }

// ReadInput reads a file the training process takes as input at a safe point (a recipe, an adjust
// file, possibly outside the run directory, possibly through a link): like ReadControl it does
// not block on a FIFO and reads only a regular file of at most 64 MiB.
func ReadInput(path string) ([]byte, error) {
	b, _, err := readRegular(path, syscall.O_CLOEXEC)
	return b, err
}

func readRegular(path string, flags int) ([]byte, fs.FileInfo, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|flags, 0)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			return nil, nil, fmt.Errorf("%s is a symbolic link; control files must be regular files in the run directory", path)
		}
		return nil, nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, st, fmt.Errorf("%s is not a regular file (mode %v)", path, st.Mode())
	}
	if st.Size() > maxControl {
		return nil, st, fmt.Errorf("%s is %d bytes, more than a control file may be (%d)", path, st.Size(), maxControl)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxControl+1))
	return b, st, err
}
