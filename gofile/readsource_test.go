package gofile_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/gofile"
)

// TestReadSource: the exported checked read returns the bytes and the open file's info, and
// applies the same rules.
func TestReadSource(t *testing.T) {
	dir := t.TempDir()
	p := write(t, dir, "probe.go", structSrc)
	b, st, err := gofile.ReadSource(p, false)
	require.NoError(t, err)
	require.Equal(t, structSrc, string(b))
	require.Equal(t, int64(len(structSrc)), st.Size())
	_, _, err = gofile.ReadSource(filepath.Join(dir, "missing.go"), false)
	require.ErrorIs(t, err, os.ErrNotExist)
	require.ErrorContains(t, err, "missing.go not found")
	_, _, err = gofile.ReadSource("no/such/rel.go", false)
	require.ErrorIs(t, err, os.ErrNotExist)
	wd, _ := os.Getwd()
	require.ErrorContains(t, err, "go file no/such/rel.go not found (looked for "+filepath.Join(wd, "no/such/rel.go")+": a relative path")
	require.NoError(t, os.Chmod(p, 0o646))
	_, _, err = gofile.ReadSource(p, false)
	require.ErrorContains(t, err, "writable by group or others")
	_, _, err = gofile.ReadSource(p, true)
	require.NoError(t, err)
}
