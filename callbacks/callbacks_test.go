package callbacks

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/torchenv"
)

func TestOutPath(t *testing.T) {
	dir := t.TempDir()
	env := &torchenv.Env{RunDir: dir}
	p, err := OutPath(env, "timing/timing.jsonl", false)
	require.NoError(t, err)
	require.Equal(t, filepath.Join(dir, "timing", "timing.jsonl"), p)
	require.DirExists(t, filepath.Join(dir, "timing"))
	_, err = OutPath(env, "../escape.jsonl", false)
	require.ErrorIs(t, err, ErrOutsideRunDir)
	_, err = OutPath(env, "/etc/passwd", false)
	require.ErrorIs(t, err, ErrOutsideRunDir)
	other := t.TempDir()
	p, err = OutPath(env, filepath.Join(other, "x.jsonl"), true)
	require.NoError(t, err)
	require.Equal(t, filepath.Join(other, "x.jsonl"), p)
	inside, err := OutPath(env, filepath.Join(dir, "a", "b.txt"), false)
	require.NoError(t, err, "an absolute path inside the run dir is fine")
	require.Equal(t, filepath.Join(dir, "a", "b.txt"), inside)
}
