package jsonl

import (
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/torchenv"
)

func logEnv(t *testing.T) (*torchenv.Env, *[]string) {
	var lines []string
	return &torchenv.Env{RunDir: t.TempDir(), Log: func(s string) { lines = append(lines, s) }}, &lines
}

func TestWriterAppendsAndReopens(t *testing.T) {
	env, logs := logEnv(t)
	w := NewWriter("test w", "a/b.jsonl")
	require.True(t, w.Write(env, []byte("{\"x\":1}\n")))
	require.True(t, w.Write(env, []byte("{\"x\":2}\n")))
	require.Equal(t, filepath.Join(env.RunDir, "a", "b.jsonl"), w.File())
	w.SetPath("c.jsonl")
	require.True(t, w.Write(env, []byte("{\"x\":3}\n")))
	require.NoError(t, w.Close())
	require.NoError(t, w.Close(), "Close twice is fine")
	b, err := os.ReadFile(filepath.Join(env.RunDir, "a", "b.jsonl"))
	require.NoError(t, err)
	require.Equal(t, "{\"x\":1}\n{\"x\":2}\n", string(b))
	b, err = os.ReadFile(filepath.Join(env.RunDir, "c.jsonl"))
	require.NoError(t, err)
	require.Equal(t, "{\"x\":3}\n", string(b))
	require.EqualValues(t, 3, w.Written())
	require.Empty(t, *logs)
}

func TestWriterErrorsAreCountedAndBounded(t *testing.T) {
	env, logs := logEnv(t)
	w := NewWriter("test w", "../outside.jsonl")
	require.False(t, w.Write(env, []byte("{}\n")))
	require.ErrorContains(t, w.LastError(), "outside the run directory")

	// A full disk: /dev/full fails every write with ENOSPC.
	if _, err := os.Stat("/dev/full"); err == nil {
		env, logs = logEnv(t)
		require.NoError(t, os.Symlink("/dev/full", filepath.Join(env.RunDir, "full.jsonl")))
		w = NewWriter("test w", "full.jsonl")
		line := []byte(`{"loss":0.5}` + "\n")
		for i := 0; i < 100; i++ {
			require.False(t, w.Write(env, line))
		}
		var ms0, ms1 runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&ms0)
		for i := 0; i < 10000; i++ {
			w.Write(env, line)
		}
		runtime.GC()
		runtime.ReadMemStats(&ms1)
		require.Less(t, int64(ms1.HeapAlloc)-int64(ms0.HeapAlloc), int64(64<<10), "failed lines are dropped, not queued")
		require.EqualValues(t, 10100, w.Dropped())
		require.Len(t, *logs, 5, "logged at 1, 10, 100, 1000, 10000 lost lines: %q", *logs)
		require.Contains(t, (*logs)[0], "no space left on device")
		require.Contains(t, (*logs)[4], "10000 lines lost so far; training goes on")
	}
}

func TestWriterEndsACutLine(t *testing.T) {
	env, _ := logEnv(t)
	w := NewWriter("test w", "x.jsonl")
	require.True(t, w.Write(env, []byte("{\"a\":1}\n")))
	// Simulate a write cut short by the disk filling up.
	_, err := w.f.Write([]byte(`{"a":`))
	require.NoError(t, err)
	w.partial = true
	require.True(t, w.Write(env, []byte("{\"a\":3}\n")))
	b, err := os.ReadFile(filepath.Join(env.RunDir, "x.jsonl"))
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	require.Equal(t, []string{`{"a":1}`, `{"a":`, `{"a":3}`}, lines, "the next line starts on its own line")
}
