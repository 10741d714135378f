package trainer_test

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/metrics"
	"github.com/hotcb/hotcb/trainer"
)

// TestRunWritesMetricsStream: `hotcb train` writes RUN_DIR/hotcb.metrics.jsonl, a line per step
// with the loss and lr, the batch accuracy every 10 steps, and the validation after each epoch;
// a resumed run continues it after a restart marker.
func TestRunWritesMetricsStream(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	o := trainer.Options{Dir: dir, Steps: 40, Batch: 50, TrainN: 1000, TestN: 200, Out: &out} // 20 steps an epoch
	sum, err := trainer.Run(context.Background(), o)
	require.NoError(t, err, out.String())
	path := filepath.Join(dir, metrics.File)
	recs, err := metrics.Read(path, -1)
	require.NoError(t, err)
	require.Len(t, recs, 40)
	for i, r := range recs {
		require.Equal(t, int64(i), r.Step)
		require.Equal(t, float64(i/20), r.Epoch, "step %d", i)
		require.Greater(t, r.Metrics["loss"], 0.0, "step %d", i)
		require.Equal(t, 3e-3, r.Metrics["lr"], "step %d", i)
		_, acc := r.Metrics[trainer.MetricAccuracy]
		require.Equal(t, i%10 == 9, acc, "the batch accuracy every 10 steps, at step %d", i)
		_, val := r.Metrics[trainer.MetricValAccuracy]
		require.Equal(t, i == 19 || i == 39, val, "validation at the last step of each epoch, step %d", i)
		if i > 0 {
			require.Greater(t, r.Metrics["steps_per_s"], 0.0)
			require.Equal(t, 50*r.Metrics["steps_per_s"], r.Metrics["samples_per_s"])
		}
	}
	require.Equal(t, sum.TestAcc, recs[39].Metrics[trainer.MetricValAccuracy])
	require.Greater(t, recs[39].Metrics[trainer.MetricValLoss], 0.0)
	require.Less(t, recs[39].Metrics["loss"], recs[0].Metrics["loss"], "it learns")

	o.Steps, o.Resume = 50, true
	_, err = trainer.Run(context.Background(), o)
	require.NoError(t, err, out.String())
	recs, err = metrics.Read(path, -1)
	require.NoError(t, err)
	require.Len(t, recs, 51, "steps 0 to 49 and the restart marker")
	m := recs[40]
	require.NotNil(t, m.Restart)
	require.Equal(t, int64(40), m.Step)
	require.Equal(t, int64(39), m.Restart.PreviousLastStep)
	require.Equal(t, int64(49), recs[50].Step)
}
