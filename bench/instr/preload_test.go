package instr

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestPreloadEnvKeepsTheCallersPreloads(t *testing.T) {
	t.Setenv("LD_PRELOAD", "")
	require.Equal(t, "LD_PRELOAD=/b/p.so", PreloadEnv("/b/p.so"))
	t.Setenv("LD_PRELOAD", "/x/a.so")
	require.Equal(t, "LD_PRELOAD=/b/p.so:/x/a.so", PreloadEnv("/b/p.so"))
}

// TestBuildPreloadRebuildsOnlyWhenTheSourceChanged: a second build leaves the library alone; a
// stale source next to it (an older version) is replaced and the library rebuilt.
func TestBuildPreloadRebuildsOnlyWhenTheSourceChanged(t *testing.T) {
	if _, err := os.Stat("/usr/bin/cc"); err != nil {
		t.Skip("no C compiler")
	}
	out := filepath.Join(t.TempDir(), "libp.so")
	require.NoError(t, BuildPreload("cc", out))
	fi, err := os.Stat(out)
	require.NoError(t, err)
	require.NoError(t, os.Chtimes(out, fi.ModTime(), fi.ModTime().Add(-3600e9)))
	old, _ := os.Stat(out)
	require.NoError(t, BuildPreload("cc", out))
	same, _ := os.Stat(out)
	require.Equal(t, old.ModTime(), same.ModTime(), "rebuilt from the same source")
	require.NoError(t, os.WriteFile(filepath.Join(filepath.Dir(out), "libp.c"), []byte("/* old */"), 0o644))
	require.NoError(t, BuildPreload("cc", out))
	again, _ := os.Stat(out)
	require.True(t, again.ModTime().After(old.ModTime()), "not rebuilt after the source changed")
	src, _ := os.ReadFile(filepath.Join(filepath.Dir(out), "libp.c"))
	require.Equal(t, hwyTimerSource, string(src))
	require.Error(t, BuildPreload("/nonexistent/cc", filepath.Join(t.TempDir(), "libq.so")))
}
