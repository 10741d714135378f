package gofile_test

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/gofile"
)

// Who may hand the training process code to run. TestFullStdlibOptionAndPermissions covers a
// world-writable file and the restricted imports; these add the owner rule, group-writable
// files and a FIFO in place of the source.

// TestSourceOwnedByAnotherUser: a .go file owned by another user (here nobody, uid 65534) is
// refused even when its mode is fine, unless AllowAnyOwner. Changing a file's owner needs root,
// so the test runs as root only.
func TestSourceOwnedByAnotherUser(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("chown to another user needs root")
	}
	dir := t.TempDir()
	p := write(t, dir, "probe.go", structSrc)
	require.NoError(t, os.Chmod(p, 0o644))
	require.NoError(t, os.Chown(p, 65534, 65534))
	_, err := load(gofile.NewLoader(gofile.Options{}), p, "Probe", "pr", map[string]any{"every": 1})
	require.ErrorContains(t, err, "owned by uid 65534, not by this user or root")
	cb, err := load(gofile.NewLoader(gofile.Options{AllowAnyOwner: true}), p, "Probe", "pr", map[string]any{"every": 1})
	require.NoError(t, err, "allowed explicitly")
	require.Equal(t, "pr", cb.ID())

	// A symlink is refused as such (TestSymlinkSourceRefused), whoever owns its target.
	link := filepath.Join(dir, "link.go")
	require.NoError(t, os.Symlink(p, link))
	_, err = load(gofile.NewLoader(gofile.Options{}), link, "Probe", "pr", nil)
	require.ErrorContains(t, err, "is a symbolic link; load the file it points to")
}

// TestGroupWritableSourceAndFIFO: group-writable (0620) and other-writable (0602) sources are
// refused; a FIFO where the source should be is refused at once instead of blocking the load.
func TestGroupWritableSourceAndFIFO(t *testing.T) {
	dir := t.TempDir()
	p := write(t, dir, "probe.go", structSrc)
	for _, mode := range []os.FileMode{0o620, 0o602} {
		require.NoError(t, os.Chmod(p, mode))
		_, err := load(gofile.NewLoader(gofile.Options{}), p, "Probe", "pr", nil)
		require.ErrorContains(t, err, "writable by group or others", "%v", mode)
	}
	require.NoError(t, os.Chmod(p, 0o600))
	_, err := load(gofile.NewLoader(gofile.Options{}), p, "Probe", "pr", map[string]any{"every": 1})
	require.NoError(t, err)

	fifo := filepath.Join(dir, "fifo.go")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	done := make(chan error, 1)
	go func() {
		_, err := load(gofile.NewLoader(gofile.Options{}), fifo, "Probe", "pr", nil)
		done <- err
	}()
	select {
	case err := <-done:
		require.ErrorContains(t, err, "not a regular file")
	case <-time.After(5 * time.Second):
		if f, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
			f.Close()
		}
		<-done
		t.Fatal("loading a FIFO blocked")
	}
}
