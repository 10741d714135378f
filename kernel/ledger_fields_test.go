package kernel_test

import (
	"bufio"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/callback"
	"github.com/hotcb/hotcb/controller"
	"github.com/hotcb/hotcb/kernel"
	"github.com/hotcb/hotcb/ops"
	"github.com/hotcb/hotcb/rundir"
	"github.com/hotcb/hotcb/torchenv"
)

// hotcbLedgerKeys are the keys hotcb's kernel writes in each ledger entry, in its order
// (HotKernel._write_ledger, then append_ledger's wall_time).
var hotcbLedgerKeys = []string{"seq", "step", "epoch", "event", "phase", "module", "op", "id", "source",
	"decision", "params", "payload", "error", "traceback", "notes", "wall_time"}

// ledgerKeys returns each line's keys in file order.
func ledgerKeys(t *testing.T, path string) [][]string {
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var out [][]string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		dec := json.NewDecoder(strings.NewReader(sc.Text()))
		_, err := dec.Token() // {
		require.NoError(t, err)
		var keys []string
		for dec.More() {
			k, err := dec.Token()
			require.NoError(t, err)
			keys = append(keys, k.(string))
			var skip json.RawMessage
			require.NoError(t, dec.Decode(&skip))
		}
		out = append(out, keys)
	}
	return out
}

func TestLedgerHasHotcbsFieldsInItsOrder(t *testing.T) {
	dir := t.TempDir()
	reg := callback.NewRegistry()
	reg.Register("test/panics", "Panics", func(id string, _ map[string]any) (callback.HotCallback, error) {
		panic(errors.New("constructor exploded"))
	})
	k, err := kernel.New(dir, kernel.Options{Controller: controller.Options{Registry: reg, PollEveryStep: true, AllowAnyOwner: true}})
	require.NoError(t, err)
	for _, l := range []string{
		`{"module":"cb","op":"load","id":"p","target":{"kind":"module","path":"test/panics","symbol":"Panics"}}`,
		`{"module":"opt","op":"set_params","id":"main","params":{"lr":0.5}}`,
	} {
		require.NoError(t, rundir.AppendLine(filepath.Join(dir, rundir.Commands), []byte(l)))
	}
	k.Apply(&torchenv.Env{Step: 3, Epoch: 1, Phase: "train"}, torchenv.TrainStepEnd)
	require.NoError(t, k.Close())

	for _, keys := range ledgerKeys(t, filepath.Join(dir, rundir.Applied)) {
		require.Equal(t, hotcbLedgerKeys, keys[:len(hotcbLedgerKeys)], "hotcb's keys first, in its order; ours after")
	}
	es, _, err := rundir.ReadJSONL[rundir.LedgerEntry](filepath.Join(dir, rundir.Applied))
	require.NoError(t, err)
	require.Len(t, es, 2)
	load, opt := es[0], es[1]
	require.Equal(t, rundir.DecisionFailed, load.Decision)
	require.Nil(t, load.Params, "a load has no params: null, as hotcb writes it")
	require.NotNil(t, load.Traceback, "a panic's stack is the traceback")
	require.Contains(t, *load.Traceback, "goroutine")
	require.Contains(t, *load.Error, "constructor exploded")
	require.Equal(t, map[string]any{"lr": 0.5}, opt.Params, "params as the op had them")
	require.Nil(t, opt.Traceback)
	require.Equal(t, 1.0, *opt.Epoch)
}

func TestLogLinesCarryTheLedgersSource(t *testing.T) {
	dir := t.TempDir()
	reg := callback.NewRegistry()
	reg.Register("test/ok", "OK", func(id string, _ map[string]any) (callback.HotCallback, error) {
		return rec{id: id, events: new([]string)}, nil
	})
	var lines []string
	k, err := kernel.New(dir, kernel.Options{Controller: controller.Options{Registry: reg, PollEveryStep: true, AllowAnyOwner: true,
		Log: func(s string) { lines = append(lines, s) }}})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, rundir.Config), []byte("version: 1\ncallbacks:\n  y:\n    target: {kind: module, path: test/ok, symbol: OK}\n"), 0o600))
	for _, l := range []string{
		`{"module":"cb","op":"load","id":"a","target":{"kind":"module","path":"test/ok","symbol":"OK"}}`,
		`{"module":"cb","op":"load","id":"b","target":{"kind":"module","path":"test/nowhere","symbol":"X"}}`,
	} {
		require.NoError(t, rundir.AppendLine(filepath.Join(dir, rundir.Commands), []byte(l)))
	}
	k.Apply(&torchenv.Env{}, torchenv.TrainStepEnd)
	require.NoError(t, k.Submit(ops.Op{Module: "cb", Op: ops.OpDisable, ID: "a"}))
	k.Apply(&torchenv.Env{}, torchenv.TrainStepEnd)
	require.NoError(t, k.Close())
	all := strings.Join(lines, "\n")
	require.Contains(t, all, "applied cb.load(y) (yaml)")
	require.Contains(t, all, "applied cb.load(a) (external)")
	require.Contains(t, all, "failed cb.load(b) (external)")
	require.Contains(t, all, "applied cb.disable(a) (api)")
	require.NotContains(t, all, "(kernel)")
}
