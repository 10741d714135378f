package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestInstrRows(t *testing.T) {
	rows := instrRows("", false)
	names := map[string]instrRow{}
	for _, r := range rows {
		names[r.Name] = r
	}
	// Per-op rows are counted with each result freed; a dropped row with a freeing twin is not
	// counted twice.
	require.Contains(t, names, "add [4]+[4], Free")
	require.NotContains(t, names, "add [4]+[4]")
	require.NotContains(t, names, "aten.Add [4]+[4]")
	relu := names["relu [64]"]
	require.True(t, relu.opts.Free)
	require.NotEmpty(t, relu.note)
	// Steps: the scoped ones, FreeAll, GPT and TorchScript; not the ones leaving their tensors to
	// the collector, nor the data-parallel ones.
	for _, n := range []string{"MLP 784-256-10 b64 step, Scope", "MLP 32-64-10 b16 step, Scope",
		"MLP 32-64-10 b16 step, FreeAll+LockOSThread", "SmallCNN 1x28x28 b64 step, Scope"} {
		require.Contains(t, names, n)
	}
	for _, r := range rows {
		require.False(t, strings.HasSuffix(r.Name, ", plain") || strings.HasSuffix(r.Name, ", LockOSThread"), r.Name)
		require.False(t, r.Job, r.Name)
		require.Equal(t, r.Name, benches[r.index].Name)
		require.Positive(t, r.iters)
		require.Positive(t, r.warm)
	}
	require.Len(t, instrRows("MLP 32-64-10", false), 2)
	smoke := instrRows("MLP 32-64-10 b16 step, Scope", true)
	require.Len(t, smoke, 1)
	require.Less(t, smoke[0].iters, names["MLP 32-64-10 b16 step, Scope"].iters)
}

func TestInstrServeProtocol(t *testing.T) {
	var out bytes.Buffer
	in := strings.NewReader("info\nnew {\"row\":0}\ncheck 0\nrun 0 3\ninstr 0 3 x\nrun 9 1\nbogus 0\nquit\n")
	require.NoError(t, runInstrServe(1, in, &out))
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	require.Len(t, lines, 7)
	require.Contains(t, lines[0], `"threads":1`)
	require.Contains(t, lines[1], `"trains":false`)
	require.Contains(t, lines[2], `"check":`)
	require.Contains(t, lines[3], `"seconds":`)
	require.Contains(t, lines[4], "not running under valgrind")
	require.Contains(t, lines[5], "new first")
	require.Contains(t, lines[6], `unknown command`)
}
