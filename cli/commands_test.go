package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/ops"
)

// TestCommandLines pins the exact line each command appends, and checks it against the line
// Python hotcb's CLI (src/hotcb/cli.py) writes for the same command: equal as JSON objects.
// Python's json.dumps puts a space after ':' and ',' and keeps insertion order; Go's encoder
// writes compact JSON with sorted map keys — the same object.
func TestCommandLines(t *testing.T) {
	src := filepath.Join(t.TempDir(), "tick.go")
	writeFile(t, src, "package cb\n")
	abs, err := filepath.Abs(src)
	require.NoError(t, err)
	absJSON, _ := json.Marshal(abs)

	for _, tc := range []struct {
		args []string
		want string // our line, byte for byte
		py   string // Python hotcb's line for the same command ("" = same as want)
	}{
		{[]string{"cb", "enable", "timing"}, `{"module":"cb","op":"enable","id":"timing"}`,
			`{"module": "cb", "op": "enable", "id": "timing"}`},
		{[]string{"enable", "timing"}, `{"module":"cb","op":"enable","id":"timing"}`,
			`{"module": "cb", "op": "enable", "id": "timing"}`},
		{[]string{"cb", "disable", "feat_viz"}, `{"module":"cb","op":"disable","id":"feat_viz"}`, ""},
		{[]string{"disable", "feat_viz"}, `{"module":"cb","op":"disable","id":"feat_viz"}`,
			`{"module": "cb", "op": "disable", "id": "feat_viz"}`},
		{[]string{"cb", "unload", "feat_viz"}, `{"module":"cb","op":"unload","id":"feat_viz"}`,
			`{"module": "cb", "op": "unload", "id": "feat_viz"}`},
		{[]string{"cb", "set_params", "timing", "every=100"}, `{"module":"cb","op":"set_params","id":"timing","params":{"every":100}}`,
			`{"module": "cb", "op": "set_params", "id": "timing", "params": {"every": 100}}`},
		{[]string{"cb", "set", "fv", "layers=[\"features.0\"]", "npy=true", "scale=", "samples=4", "gamma=0.5"},
			`{"module":"cb","op":"set_params","id":"fv","params":{"gamma":0.5,"layers":["features.0"],"npy":true,"samples":4,"scale":""}}`,
			`{"module": "cb", "op": "set_params", "id": "fv", "params": {"layers": ["features.0"], "npy": true, "scale": "", "samples": 4, "gamma": 0.5}}`},
		{[]string{"cb", "load", "timing", "--path", "hotcb.modules.cb.callbacks.timing", "--symbol", "TimingCallback", "--enabled", "--init", "every=50"},
			`{"module":"cb","op":"load","id":"timing","target":{"kind":"module","path":"hotcb.modules.cb.callbacks.timing","symbol":"TimingCallback"},"init":{"every":50},"enabled":true}`,
			`{"module": "cb", "op": "load", "id": "timing", "target": {"kind": "module", "path": "hotcb.modules.cb.callbacks.timing", "symbol": "TimingCallback"}, "init": {"every": 50}, "enabled": true}`},
		// hotcb's nargs="*" style: --init every=50 layer=conv3 (the second pair is an argument here).
		{[]string{"cb", "load", "fv", "--path", "github.com/hotcb/hotcb/callbacks/featviz", "--symbol", "FeatureViz", "--no-enabled", "--init", "every=50", "layer=conv3"},
			`{"module":"cb","op":"load","id":"fv","target":{"kind":"module","path":"github.com/hotcb/hotcb/callbacks/featviz","symbol":"FeatureViz"},"init":{"every":50,"layer":"conv3"},"enabled":false}`,
			`{"module": "cb", "op": "load", "id": "fv", "target": {"kind": "module", "path": "github.com/hotcb/hotcb/callbacks/featviz", "symbol": "FeatureViz"}, "init": {"every": 50, "layer": "conv3"}, "enabled": false}`},
		// A file is kind python_file, as hotcb writes it (the Go controller reads it as go_file);
		// the path is written absolute. Without --init hotcb writes "init": {}, omitted here.
		{[]string{"cb", "load", "tick", "--file", src, "--symbol", "Tick"},
			`{"module":"cb","op":"load","id":"tick","target":{"kind":"python_file","path":` + string(absJSON) + `,"symbol":"Tick"}}`,
			`{"module": "cb", "op": "load", "id": "tick", "target": {"kind": "python_file", "path": ` + string(absJSON) + `, "symbol": "Tick"}}`},
		{[]string{"opt", "set_params", "lr=0.0003"}, `{"module":"opt","op":"set_params","id":"main","params":{"lr":0.0003}}`,
			`{"module": "opt", "op": "set_params", "id": "main", "params": {"lr": 0.0003}}`},
		// hotcb parses 3e-4 as the string "3e-4" (no "." in it); here it is the float.
		{[]string{"opt", "set_params", "lr=3e-4"}, `{"module":"opt","op":"set_params","id":"main","params":{"lr":0.0003}}`, ""},
		{[]string{"opt", "set_params", "--id", "head", "lr=1e-4", "weight_decay=0.01"},
			`{"module":"opt","op":"set_params","id":"head","params":{"lr":0.0001,"weight_decay":0.01}}`, ""},
		{[]string{"opt", "set", "clip_norm=1.0"}, `{"module":"opt","op":"set_params","id":"main","params":{"clip_norm":1.0}}`,
			`{"module": "opt", "op": "set_params", "id": "main", "params": {"clip_norm": 1.0}}`},
		{[]string{"opt", "enable"}, `{"module":"opt","op":"enable","id":"main"}`, `{"module": "opt", "op": "enable", "id": "main"}`},
		{[]string{"opt", "disable", "--id", "head"}, `{"module":"opt","op":"disable","id":"head"}`, ""},
		{[]string{"loss", "set_params", "distill_w=0.2", "terms.aux_depth=false", `ramps.depth={"type":"linear","end":2.0}`},
			`{"module":"loss","op":"set_params","id":"main","params":{"distill_w":0.2,"ramps.depth":{"end":2.0,"type":"linear"},"terms.aux_depth":false}}`,
			`{"module": "loss", "op": "set_params", "id": "main", "params": {"distill_w": 0.2, "terms.aux_depth": false, "ramps.depth": {"type": "linear", "end": 2.0}}}`},
		// hotcb's transcript (cli-transcript.txt): 1.0 is the float 1, which Go's encoder writes as 1.
		{[]string{"loss", "set_params", "ce=1.0", "aux=0.5"}, `{"module":"loss","op":"set_params","id":"main","params":{"aux":0.5,"ce":1.0}}`,
			`{"module": "loss", "op": "set_params", "id": "main", "params": {"ce": 1.0, "aux": 0.5}}`},
		{[]string{"loss", "enable"}, `{"module":"loss","op":"enable","id":"main"}`, ""},
		{[]string{"set", "lr=5e-5"}, `{"module":"opt","op":"set_params","id":"main","params":{"lr":0.00005}}`, ""},
		{[]string{"set", "distill_w=0.25"}, `{"module":"loss","op":"set_params","id":"main","params":{"distill_w":0.25}}`,
			`{"module": "loss", "op": "set_params", "id": "main", "params": {"distill_w": 0.25}}`},
		{[]string{"set", "--id", "g1", "lr=0.1", "distill_w=1.0"}, `{"module":"opt","op":"set_params","id":"g1","params":{"distill_w":1.0,"lr":0.1}}`, ""},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			dir := newRunDir(t)
			out := mustRun(t, append([]string{"--dir", dir}, tc.args...)...)
			require.Contains(t, out, "queued ")
			got := commandsOf(t, dir)
			require.Equal(t, tc.want+"\n", got)
			if tc.py != "" {
				require.JSONEq(t, tc.py, strings.TrimSpace(got), "differs from Python hotcb's line")
			}
			_, err := ops.Parse([]byte(got))
			require.NoError(t, err)
		})
	}
}

// TestCommandsAppend: lines accumulate in order, and the file and directory modes are private.
func TestCommandsAppend(t *testing.T) {
	dir := newRunDir(t)
	require.NoError(t, os.Remove(filepath.Join(dir, "hotcb.commands.jsonl")))
	mustRun(t, "--dir", dir, "enable", "a")
	mustRun(t, "--dir", dir, "cb", "set_params", "a", "every=2")
	mustRun(t, "--dir", dir, "disable", "a")
	require.Equal(t, `{"module":"cb","op":"enable","id":"a"}
{"module":"cb","op":"set_params","id":"a","params":{"every":2}}
{"module":"cb","op":"disable","id":"a"}
`, commandsOf(t, dir))
	fi, err := os.Stat(filepath.Join(dir, "hotcb.commands.jsonl"))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	di, err := os.Stat(dir)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o700), di.Mode().Perm())
}

// TestMessages: what each writing command says.
func TestMessages(t *testing.T) {
	dir := newRunDir(t)
	require.Equal(t, "queued cb enable for timing\n", mustRun(t, "--dir", dir, "enable", "timing"))
	require.Equal(t, "queued cb set_params for timing: {\"every\":10}\n", mustRun(t, "--dir", dir, "cb", "set", "timing", "every=10"))
	require.Equal(t, "queued cb load for t from module:hotcb.modules.cb.callbacks.timing#TimingCallback init {\"every\":5} (enabled=false)\n",
		mustRun(t, "--dir", dir, "cb", "load", "t", "--path", "hotcb.modules.cb.callbacks.timing", "--symbol", "TimingCallback", "--init", "every=5", "--no-enabled"))
	require.Equal(t, "queued opt set_params for main: {\"lr\":0.001}\n", mustRun(t, "--dir", dir, "opt", "set_params", "lr=1e-3"))
	// hotcb says "queued loss set_params for main"; the params follow, as for opt
	require.Equal(t, "queued loss set_params for main: {\"aux\":0.5,\"ce\":1}\n", mustRun(t, "--dir", dir, "loss", "set_params", "ce=1.0", "aux=0.5"))
}
