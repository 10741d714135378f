package controller_test

import (
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/controller"
	"github.com/hotcb/hotcb/ops"
)

// The same values reach a callback in the same Go types from a command line, from the YAML and
// from Submit: integers int64, other numbers float64, lists []any, maps map[string]any.
func TestNumbersReachCallbacksInOneForm(t *testing.T) {
	want := map[string]any{"every": int64(50), "scale": 2.5, "w": 1.0, "paths": []any{"loss", int64(2)},
		"sub": map[string]any{"n": int64(-1), "on": true}, "name": "1e-3"}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "hotcb.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte(`version: 1
callbacks:
  y:
    target: {kind: module, path: test/probe, symbol: Probe}
    init: {every: 50, scale: 2.5, w: 1.0, paths: [loss, 2], sub: {n: -1, on: true}, name: "1e-3"}
    params: {every: 50, scale: 2.5, w: 1.0, paths: [loss, 2], sub: {n: -1, on: true}, name: "1e-3"}
`), 0o600))
	f := newFixture(t, controller.Options{ConfigPath: cfg})
	const vals = `{"every":50,"scale":2.5,"w":1.0,"paths":["loss",2],"sub":{"n":-1,"on":true},"name":"1e-3"}`
	f.append(`{"op":"load","id":"c","target":{"kind":"module","path":"test/probe","symbol":"Probe"},"init":`+vals+`}`+"\n",
		`{"op":"set_params","id":"c","params":`+vals+`}`+"\n")
	goVals := func() map[string]any {
		return map[string]any{"every": int32(50), "scale": float32(2.5), "w": 1.0, "paths": []any{"loss", uint8(2)},
			"sub": map[string]any{"n": int8(-1), "on": true}, "name": "1e-3"}
	}
	target := &ops.CallbackTarget{Kind: ops.KindModule, Path: "test/probe", Symbol: "Probe"}
	require.NoError(t, f.c.Submit(ops.Op{Op: ops.OpLoad, ID: "a", Target: target, Init: goVals()}))
	require.NoError(t, f.c.Submit(ops.Op{Op: ops.OpSetParams, ID: "a", Params: goVals()}))
	f.step()
	for _, id := range []string{"y", "c", "a"} {
		require.Equal(t, want, f.probe(id).init, "init of %s", id)
		require.Equal(t, want, f.probe(id).params, "params of %s", id)
	}

	err := f.c.Submit(ops.Op{Op: ops.OpSetParams, ID: "a", Params: map[string]any{"lr": math.NaN()}})
	require.EqualError(t, err, `cb.set_params(a): params "lr": NaN cannot be recorded: JSON has no NaN or infinity`)
	err = f.c.Submit(ops.Op{Op: ops.OpSetParams, ID: "a", Params: map[string]any{"interval": time.Second}})
	require.NoError(t, err, "a duration is sent as its text")
	f.step()
	require.Equal(t, "1s", f.probe("a").params["interval"])
}

// A load whose init equals the loaded one by value is no change, whatever the form of its numbers
// (a command line's 2 and the YAML's 2.0): the callback keeps its state.
func TestEqualInitIsNoReload(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "hotcb.yaml")
	f := newFixture(t, controller.Options{ConfigPath: cfg})
	f.append(`{"op":"load","id":"p","target":{"kind":"module","path":"test/probe","symbol":"Probe"},"init":{"every":50,"scale":2,"paths":["loss"]}}` + "\n")
	f.step()
	require.Equal(t, []string{"applied"}, f.decisions())
	require.NoError(t, os.WriteFile(cfg, []byte(`version: 1
callbacks:
  p:
    target: {kind: module, path: test/probe, symbol: Probe}
    init: {every: 50, scale: 2.0, paths: [loss]}
`), 0o600))
	f.step()
	require.Equal(t, []string{"skipped_noop"}, f.decisions())
	require.Len(t, f.made["p"], 1, "not replaced")
	require.NoError(t, os.WriteFile(cfg, []byte(`version: 1
callbacks:
  p:
    target: {kind: module, path: test/probe, symbol: Probe}
    init: {every: 51, scale: 2.0, paths: [loss]}
`), 0o600))
	f.step()
	require.Equal(t, []string{"applied"}, f.decisions(), "a different value is a new init")
	require.Len(t, f.made["p"], 2)
}
