package gofile_test

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/gofile"
)

// Where a go_file source may be read from. The loader opens the file once, checks that open
// file and reads it, and refuses files in directories other users could change (ssh's
// StrictModes rule; sticky directories like /tmp are fine for a file of ours).

// versioned is a callback whose ID is its version.
func versioned(v string) string {
	return `package v

import "github.com/hotcb/hotcb/torchenv"

type V struct{}

func (x *V) ID() string                                   { return "` + v + `" }
func (x *V) Handle(event string, env *torchenv.Env) error { return nil }
func (x *V) SetParams(p map[string]any) error             { return nil }
`
}

// mkdir makes dir with exactly mode (the umask does not apply).
func mkdir(t *testing.T, dir string, mode os.FileMode) string {
	t.Helper()
	require.NoError(t, os.MkdirAll(dir, 0o700))
	require.NoError(t, os.Chmod(dir, mode))
	return dir
}

// TestSwappedSourceInSharedDir: another user swaps the source between two versions in a shared
// (0777, not sticky) directory while the training loads it again and again. The old loader
// checked the file by path and read it by path again, and built the swapped-in source now and
// then; the loader refuses such a directory outright, so the other version is never built.
func TestSwappedSourceInSharedDir(t *testing.T) {
	root := t.TempDir()
	shared := mkdir(t, filepath.Join(root, "shared"), 0o777)
	masters := mkdir(t, filepath.Join(root, "masters"), 0o700)
	good := write(t, masters, "good.go", versioned("good"))
	evil := write(t, masters, "evil.go", versioned("evil"))
	if os.Getuid() == 0 {
		require.NoError(t, os.Chmod(evil, 0o644))
		require.NoError(t, os.Chown(evil, 65534, 65534)) // the other user's file
	} else {
		require.NoError(t, os.Chmod(evil, 0o666))
	}
	p := filepath.Join(shared, "cb.go")
	require.NoError(t, os.Link(good, p))

	var stop atomic.Bool
	var spin atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the other user: rename one version, then the other, over the source
		defer wg.Done()
		for i := 0; !stop.Load(); i++ {
			from := good
			if i%2 == 0 {
				from = evil
			}
			tmp := filepath.Join(shared, ".swap")
			os.Remove(tmp)
			if os.Link(from, tmp) == nil {
				os.Rename(tmp, p)
			}
			for j := rand.IntN(2000); j > 0; j-- { // a random pause: no lockstep with the loads
				spin.Add(1)
			}
		}
	}()
	l := gofile.NewLoader(gofile.Options{})
	built := map[string]int{}
	refused := 0
	for i := 0; i < 5000; i++ {
		cb, err := load(l, p, "V", "v", nil)
		switch {
		case err == nil:
			built[cb.ID()]++
		case strings.Contains(err.Error(), "directory "+shared+" is writable by group or others (mode -rwxrwxrwx) and not sticky, so another user could swap the file"):
			refused++
		}
	}
	stop.Store(true)
	wg.Wait()
	require.Zero(t, built["evil"], "the swapped-in source was built")
	require.Equal(t, 5000, refused, "a source in a directory others can write is refused: built %v", built)
}

// TestWorldWritableDirRefused: a world-writable directory that is not sticky is refused, with the
// directory named; AllowAnyOwner loads it. Made private, it loads.
func TestWorldWritableDirRefused(t *testing.T) {
	dir := mkdir(t, filepath.Join(t.TempDir(), "open"), 0o777)
	p := write(t, dir, "probe.go", structSrc)
	_, err := load(gofile.NewLoader(gofile.Options{}), p, "Probe", "pr", nil)
	require.ErrorContains(t, err, "refusing "+p+": directory "+dir+" is writable by group or others (mode -rwxrwxrwx) and not sticky")
	require.ErrorContains(t, err, "chmod go-w "+dir+", or allow any owner explicitly")
	_, err = load(gofile.NewLoader(gofile.Options{AllowAnyOwner: true}), p, "Probe", "pr", nil)
	require.NoError(t, err, "allowed explicitly")
	require.NoError(t, os.Chmod(dir, 0o755))
	_, err = load(gofile.NewLoader(gofile.Options{}), p, "Probe", "pr", nil)
	require.NoError(t, err)
}

// TestStickyDirAccepted: in a sticky world-writable directory (like /tmp) others cannot rename
// or delete our file, so our own file there loads.
func TestStickyDirAccepted(t *testing.T) {
	dir := mkdir(t, filepath.Join(t.TempDir(), "sticky"), 0o777|os.ModeSticky)
	st, err := os.Stat(dir)
	require.NoError(t, err)
	require.Equal(t, os.ModeSticky, st.Mode()&os.ModeSticky)
	p := write(t, dir, "probe.go", structSrc)
	cb, err := load(gofile.NewLoader(gofile.Options{}), p, "Probe", "pr", nil)
	require.NoError(t, err)
	require.Equal(t, "pr", cb.ID())
}

// TestGroupWritableAncestorRefused: a group-writable directory anywhere above the file (here two
// levels up) is refused and named.
func TestGroupWritableAncestorRefused(t *testing.T) {
	top := mkdir(t, filepath.Join(t.TempDir(), "team"), 0o770)
	dir := mkdir(t, filepath.Join(top, "me", "callbacks"), 0o700)
	require.NoError(t, os.Chmod(filepath.Join(top, "me"), 0o700))
	p := write(t, dir, "probe.go", structSrc)
	_, err := load(gofile.NewLoader(gofile.Options{}), p, "Probe", "pr", nil)
	require.ErrorContains(t, err, "directory "+top+" is writable by group or others (mode -rwxrwx---)")
	require.NoError(t, os.Chmod(top, 0o750))
	_, err = load(gofile.NewLoader(gofile.Options{}), p, "Probe", "pr", nil)
	require.NoError(t, err)
}

// TestSymlinkedDirCheckedWhereItLeads: a symlinked directory in the path is resolved and the
// directories it really leads through are checked.
func TestSymlinkedDirCheckedWhereItLeads(t *testing.T) {
	root := t.TempDir()
	open := mkdir(t, filepath.Join(root, "open"), 0o777)
	real := mkdir(t, filepath.Join(open, "real"), 0o700)
	p := write(t, real, "probe.go", structSrc)
	priv := mkdir(t, filepath.Join(root, "private"), 0o700)
	link := filepath.Join(priv, "link")
	require.NoError(t, os.Symlink(real, link))
	_, err := load(gofile.NewLoader(gofile.Options{}), filepath.Join(link, "probe.go"), "Probe", "pr", nil)
	require.ErrorContains(t, err, "directory "+open+" is writable by group or others")

	require.NoError(t, os.Chmod(open, 0o755))
	cb, err := load(gofile.NewLoader(gofile.Options{}), filepath.Join(link, "probe.go"), "Probe", "pr", nil)
	require.NoError(t, err, "a symlinked directory leading through safe directories is fine")
	require.Equal(t, "pr", cb.ID())
	_ = p
}

// TestSymlinkSourceRefused: the source itself must not be a symbolic link (it could be pointed
// elsewhere between the check and the read); the error says which file to load instead. Also with
// AllowAnyOwner.
func TestSymlinkSourceRefused(t *testing.T) {
	dir := t.TempDir()
	p := write(t, dir, "probe.go", structSrc)
	link := filepath.Join(dir, "link.go")
	require.NoError(t, os.Symlink(p, link))
	for _, any := range []bool{false, true} {
		_, err := load(gofile.NewLoader(gofile.Options{AllowAnyOwner: any}), link, "Probe", "pr", nil)
		require.ErrorContains(t, err, "refusing "+link+": it is a symbolic link; load the file it points to ("+p+")")
	}
}

// TestDirOwnedByAnotherUserRefused: a directory (mode 0755) owned by another user is refused: its
// owner could swap the file. Changing the owner needs root.
func TestDirOwnedByAnotherUserRefused(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("chown to another user needs root")
	}
	dir := mkdir(t, filepath.Join(t.TempDir(), "theirs"), 0o755)
	p := write(t, dir, "probe.go", structSrc)
	require.NoError(t, os.Chown(dir, 65534, 65534))
	_, err := load(gofile.NewLoader(gofile.Options{}), p, "Probe", "pr", nil)
	require.ErrorContains(t, err, "refusing "+p+": directory "+dir+" is owned by uid 65534, not by this user or root, so its owner could swap the file")
	_, err = load(gofile.NewLoader(gofile.Options{AllowAnyOwner: true}), p, "Probe", "pr", nil)
	require.NoError(t, err)
}
