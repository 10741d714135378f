package trainer_test

import (
	"bytes"
	"context"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/rundir"
	"github.com/hotcb/hotcb/trainer"
)

// lossConfig logs the loss at every step.
const lossConfig = `version: 1
callbacks:
  metrics:
    enabled: true
    target: {kind: module, path: hotcb.modules.cb.callbacks.jsonl_logger, symbol: JSONLLoggerCallback}
    init: {every: 1, paths: [loss]}
`

// TestLossSetParamsChangesTraining: the same short run, with and without hotcb's loss
// set_params (as its CLI writes them, numbers as text) queued before the start: they apply at the
// first safe point, and the loss of every step is the larger for the smoothing term. The ledger
// records them, and a bad one fails without stopping the run.
func TestLossSetParamsChangesTraining(t *testing.T) {
	losses := func(cmds ...string) ([]float64, string) {
		dir := t.TempDir()
		require.NoError(t, os.WriteFile(filepath.Join(dir, rundir.Config), []byte(lossConfig), 0o600))
		for _, c := range cmds {
			require.NoError(t, rundir.AppendLine(filepath.Join(dir, rundir.Commands), []byte(c)))
		}
		var out bytes.Buffer
		sum, err := trainer.Run(context.Background(), trainer.Options{Dir: dir, Model: "mlp", Steps: 3, Batch: 16,
			TrainN: 64, TestN: 16, Seed: 5, Out: &out})
		require.NoError(t, err, out.String())
		require.Equal(t, int64(3), sum.Steps)
		var ls []float64
		for _, l := range jsonLines(t, filepath.Join(dir, "logs", "metrics.jsonl")) {
			ls = append(ls, l["loss"].(float64))
		}
		require.Len(t, ls, 3)
		return ls, dir
	}
	base, _ := losses()
	again, _ := losses()
	require.Equal(t, base, again, "the runs are deterministic")
	smooth, dir := losses(
		`{"module": "loss", "op": "set_params", "id": "main", "params": {"ce": "1.0", "smooth_w": "0.5"}}`,
		`{"module": "loss", "op": "set_params", "id": "main", "params": {"terms.smooth": "true"}}`,
		`{"module": "loss", "op": "set_params", "id": "main", "params": {"aux": 0.5}}`,
	)
	// 0.5·smooth is added: smooth ≈ log 6 for a new model's near-uniform outputs on 6 classes
	require.InDelta(t, base[0]+0.5*math.Log(6), smooth[0], 0.05)
	l2, _ := losses(`{"module": "loss", "op": "set_params", "id": "main", "params": {"l2_w": 0.001}}`)
	require.Greater(t, l2[0], base[0], "l2 is added")
	require.Less(t, l2[0], smooth[0])
	var got []string
	l, err := rundir.ReadLedger(filepath.Join(dir, rundir.Applied))
	require.NoError(t, err)
	for _, e := range l.Entries {
		if e.Module == "loss" {
			s := e.Decision
			if e.Error != nil {
				s += ": " + *e.Error
			}
			got = append(got, s)
		}
	}
	require.Equal(t, []string{"applied", "applied",
		`failed: loss set_params main: aux: unknown term "aux" (declared: ce, l2, smooth)`}, got)
}
