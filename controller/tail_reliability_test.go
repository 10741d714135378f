package controller_test

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/callback"
	"github.com/hotcb/hotcb/controller"
	"github.com/hotcb/hotcb/torchenv"
)

// floodRig is a controller that polls only when told (no tick in the test's time, no
// notifications after start), with a recording callback.
func floodRig(t *testing.T, write func(f *os.File)) (*controller.HotController, *[]string, func() int) {
	dir := t.TempDir()
	p := filepath.Join(dir, "hotcb.commands.jsonl")
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE, 0o600)
	require.NoError(t, err)
	write(f)
	_, err = f.WriteString(`{"op":"load","id":"ok","target":{"kind":"module","path":"test/ok","symbol":"Ok"}}` + "\n")
	require.NoError(t, err)
	require.NoError(t, f.Close())
	reg := callback.NewRegistry()
	loaded := 0
	reg.Register("test/ok", "Ok", func(id string, _ map[string]any) (callback.HotCallback, error) {
		loaded++
		return &faulty{id: id}, nil
	})
	var lines []string
	c, err := controller.New(controller.Options{CommandsPath: p, Registry: reg, PollInterval: time.Hour,
		StatusInterval: time.Hour, LogPath: filepath.Join(dir, "hotcb.log"), Log: func(s string) { lines = append(lines, s) }})
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c, &lines, func() int { return loaded }
}

// 40 MB of garbage lines before a valid command: each safe point does a bounded amount of work
// (4096 lines), the command is applied as soon as the garbage is read (the reader asks for the
// next safe point instead of waiting for a tick), and the log gets ten lines, not one per line.
func TestGarbageFloodIsSkippedFastAndSummarised(t *testing.T) {
	const garbage = 4_000_000
	c, lines, loaded := floodRig(t, func(f *os.File) {
		w := bufio.NewWriterSize(f, 1<<20)
		for i := 0; i < garbage; i++ {
			w.WriteString("garbage\n") // 8 bytes a line: 32 MB
		}
		require.NoError(t, w.Flush())
	})
	env := &torchenv.Env{}
	steps := 0
	var slowest time.Duration
	for loaded() == 0 && steps < 2000 {
		t0 := time.Now()
		c.Apply(env, torchenv.TrainStepEnd)
		slowest = max(slowest, time.Since(t0))
		steps++
	}
	require.Equal(t, 1, loaded(), "the command after the garbage is applied")
	require.InDelta(t, garbage/4096, steps, 3, "4096 lines a safe point, every safe point")
	require.LessOrEqual(t, len(*lines), 12, "a few reports, not one per bad line:\n%s", strings.Join(*lines, "\n"))
	st := c.Status()
	require.Equal(t, garbage, st.BadLines)
	t.Logf("%d safe points, the slowest %v", steps, slowest)
}

// 100 MiB of NULs (one endless line) before a valid command: read at 32 MiB a safe point, one
// report, and the command is applied at the fourth safe point or so.
func TestNULFloodDoesNotDelayTheNextCommand(t *testing.T) {
	c, lines, loaded := floodRig(t, func(f *os.File) {
		zeros := make([]byte, 1<<20)
		for i := 0; i < 100; i++ {
			_, err := f.Write(zeros)
			require.NoError(t, err)
		}
		_, err := f.WriteString("\n")
		require.NoError(t, err)
	})
	env := &torchenv.Env{}
	steps := 0
	for loaded() == 0 && steps < 100 {
		c.Apply(env, torchenv.TrainStepEnd)
		steps++
	}
	require.Equal(t, 1, loaded())
	require.LessOrEqual(t, steps, 5)
	require.Len(t, filter(*lines, "control plane:"), 1, "%v", *lines)
	require.Contains(t, (*lines)[0], "line 1 is longer than 1048576 bytes; skipped")
}
