package gofile_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/callback"
	"github.com/hotcb/hotcb/gofile"
)

// TestLoadCapture: a capture is loaded by its sha256 from the sources directory, its bytes
// verified; the controller's TestCapturedLoadsAreChecked covers the records of a replay.
func TestLoadCapture(t *testing.T) {
	dir := t.TempDir()
	sources := filepath.Join(dir, "run", "hotcb.sources")
	l := gofile.NewLoader(gofile.Options{SourcesDir: sources})
	cb, err := load(l, write(t, dir, "probe.go", structSrc), "Probe", "pr", nil)
	require.NoError(t, err)
	src := cb.(gofile.Sourced).Source()
	target := callback.Target{Kind: "go_file", Path: "/gone.go", Symbol: "Probe"}

	again, err := l.LoadCapture(target, src.SHA256, "", "pr2", map[string]any{"every": 3})
	require.NoError(t, err)
	require.Equal(t, "pr2", again.ID())
	require.Equal(t, gofile.Source{Path: src.CapturedPath, SHA256: src.SHA256, CapturedPath: src.CapturedPath}, again.(gofile.Sourced).Source())

	for _, sha := range []string{"", "abc", src.SHA256[:63] + "G", "../../../etc/passwd"} {
		_, err = l.LoadCapture(target, sha, "", "x", nil)
		require.ErrorContains(t, err, "is not 64 lowercase hex digits", sha)
	}
	_, err = gofile.NewLoader(gofile.Options{}).LoadCapture(target, src.SHA256, "", "x", nil)
	require.ErrorContains(t, err, "no sources directory is set")

	require.NoError(t, os.WriteFile(src.CapturedPath, []byte(structSrc+"// altered\n"), 0o600))
	_, err = l.LoadCapture(target, src.SHA256, src.CapturedPath, "x", nil)
	require.ErrorContains(t, err, "the capture was altered, refusing it")
}
