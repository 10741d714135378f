package timing_test

import (
	"bufio"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/callback"
	"github.com/hotcb/hotcb/controller"
	"github.com/hotcb/hotcb/torchenv"

	_ "github.com/hotcb/hotcb/callbacks/timing"
)

// The command hotcb's CLI writes for `hotcb cb load timing ...`, verbatim.
const seedLoad = `{"module":"cb","op":"load","id":"timing","target":{"kind":"module","path":"hotcb.modules.cb.callbacks.timing","symbol":"TimingCallback"},"init":{"every":50},"enabled":true}`

func appendLine(t *testing.T, path, line string) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	require.NoError(t, err)
	_, err = f.WriteString(line + "\n")
	require.NoError(t, err)
	require.NoError(t, f.Close())
}

func readRecords(t *testing.T, path string) []map[string]any {
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var out []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m map[string]any
		require.NoError(t, json.Unmarshal(sc.Bytes(), &m), sc.Text())
		out = append(out, m)
	}
	return out
}

func TestSeedCommandThroughAController(t *testing.T) {
	for _, name := range []string{"hotcb.modules.cb.callbacks.timing#TimingCallback", "hotcb.modules.cb.callbacks#TimingCallback",
		"github.com/hotcb/hotcb/callbacks/timing#Timing"} {
		require.Contains(t, callback.Default.Names(), name)
	}
	dir := t.TempDir()
	cmds := filepath.Join(dir, "hotcb.commands.jsonl")
	var logged []string
	ctl, err := controller.New(controller.Options{
		CommandsPath:  cmds,
		StatusPath:    filepath.Join(dir, "hotcb.status.json"),
		LogPath:       filepath.Join(dir, "hotcb.log"),
		PollEveryStep: true,
	})
	require.NoError(t, err)
	defer ctl.Close()
	appendLine(t, cmds, seedLoad)
	env := &torchenv.Env{RunDir: dir, Device: bridge.CPU, Inputs: bridge.Zeros(bridge.Shape{16, 4}),
		Log: func(s string) { logged = append(logged, s) }}
	poll := func() []controller.Result { // apply what the commands file holds, no event
		ctl.Apply(env)
		return ctl.LastResults()
	}
	step := func() {
		ctl.Apply(env, torchenv.TrainStepStart)
		ctl.Apply(env, torchenv.ForwardEnd)
		ctl.Apply(env, torchenv.BackwardEnd)
		ctl.Apply(env, torchenv.OptimizerStepEnd, torchenv.TrainStepEnd)
		env.Step++
	}
	for range 120 {
		step()
	}
	for _, l := range logged {
		require.NotContains(t, l, "failed", "the load applied cleanly")
	}
	out := filepath.Join(dir, "timing", "timing.jsonl")
	recs := readRecords(t, out)
	require.Len(t, recs, 2, "119 steps timed, one record every 50")
	for _, r := range recs {
		require.Equal(t, "timing", r["id"])
		require.Equal(t, false, r["device_timing"])
		require.Contains(t, r["note"], "host only")
		require.Contains(t, r["intervals"], "data/other")
		require.Contains(t, r["intervals"], "forward")
		require.Contains(t, r["intervals"], "backward")
		require.Positive(t, r["steps_per_s"])
		require.EqualValues(t, 16, r["batch_size"])
	}
	require.EqualValues(t, 50, recs[0]["steps"])
	require.EqualValues(t, 100, recs[1]["steps"])
	var summaries []string
	for _, l := range logged {
		if strings.HasPrefix(l, "[timing] step=") {
			summaries = append(summaries, l)
		}
	}
	require.Len(t, summaries, 2)
	require.Contains(t, summaries[0], "host only: device timing unavailable on cpu")

	// A bad value is refused, with an error naming the key, and the old params stay.
	appendLine(t, cmds, `{"module":"cb","op":"set_params","id":"timing","params":{"every":0}}`)
	res := poll()
	require.Len(t, res, 1)
	require.Equal(t, controller.Failed, res[0].Decision)
	require.ErrorContains(t, res[0].Err, `param "every"`)
	appendLine(t, cmds, `{"module":"cb","op":"set_params","id":"timing","params":{"window":-1,"events":["forward_end","bogus"]}}`)
	res = poll()
	require.Equal(t, controller.Failed, res[0].Decision)
	require.ErrorContains(t, res[0].Err, `param "window"`)
	require.ErrorContains(t, res[0].Err, `param "events.1"`)
	appendLine(t, cmds, `{"module":"cb","op":"set_params","id":"timing","params":{"out":"../outside.jsonl"}}`)
	require.ErrorContains(t, poll()[0].Err, `param "out"`)
	for range 31 { // timed steps 120..150: still every 50
		step()
	}
	require.Len(t, readRecords(t, out), 3, "every is still 50")

	// A good one applies.
	appendLine(t, cmds, `{"module":"cb","op":"set_params","id":"timing","params":{"every":10}}`)
	require.Equal(t, controller.Applied, poll()[0].Decision)
	for range 10 {
		step()
	}
	require.Len(t, readRecords(t, out), 4)

	ctl.Apply(env, torchenv.FitEnd)
	require.FileExists(t, filepath.Join(dir, "timing", "timing.png"))
}
