package trainer_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/internal/torchpy"
	"github.com/hotcb/hotcb/rundir"
	"github.com/hotcb/hotcb/trainer"
)

// TestShortRun trains a few steps into a temp dir and checks the run directory: ledger,
// status, timing JSONL, feature-map PNGs, and a checkpoint PyTorch loads.
func TestShortRun(t *testing.T) {
	dir := t.TempDir()
	var out bytes.Buffer
	sum, err := trainer.Run(context.Background(), trainer.Options{Dir: dir, Epochs: 1, Steps: 120, TrainN: 2000, TestN: 400, Out: &out})
	require.NoError(t, err, out.String())
	require.Equal(t, int64(120), sum.Steps)
	text := out.String()
	require.Contains(t, text, "live control")
	require.Contains(t, text, "step 50/120")
	require.NotContains(t, text, "\r", "non-terminal output is line-oriented")
	// a callback's lines reach hotcb.log and the terminal; the control plane's too, marked
	hlog, err := os.ReadFile(filepath.Join(dir, rundir.Log))
	require.NoError(t, err)
	require.Regexp(t, `(?m)^\S+ \[timing\] step=50 `, string(hlog))
	require.Regexp(t, `(?m)^\[timing\] step=50 `, text)
	require.Regexp(t, `(?m)^\S+ applied cb\.load\(timing\)`, string(hlog))
	require.Regexp(t, `(?m)^\[hotcb\] applied cb\.load\(timing\)`, text)

	es, bad, err := rundir.ReadJSONL[rundir.LedgerEntry](filepath.Join(dir, rundir.Applied))
	require.NoError(t, err)
	require.Empty(t, bad)
	require.GreaterOrEqual(t, len(es), 2)
	require.Equal(t, "yaml", es[0].Source)
	st, err := rundir.ReadStatus(filepath.Join(dir, rundir.Status))
	require.NoError(t, err)
	require.Len(t, st.Callbacks, 2)
	require.EqualValues(t, 120, st.Extra["total_steps"], "the dashboard's ETA needs it")
	timing, err := os.ReadFile(filepath.Join(dir, "timing", "timing.jsonl"))
	require.NoError(t, err)
	require.Greater(t, strings.Count(string(timing), "\n"), 1)
	// the step's phases are named: the forward is "forward", not part of data/other
	lines := strings.Split(strings.TrimSpace(string(timing)), "\n")
	var rec struct {
		Order     []string `json:"order"`
		Intervals map[string]struct {
			HostMs struct {
				P50 float64 `json:"p50"`
			} `json:"host_ms"`
		} `json:"intervals"`
	}
	require.NoError(t, json.Unmarshal([]byte(lines[len(lines)-1]), &rec))
	require.Equal(t, []string{"forward", "backward", "optimizer", "optimizer_step_end->train_step_end", "data/other"}, rec.Order)
	require.Positive(t, rec.Intervals["forward"].HostMs.P50)
	require.Positive(t, rec.Intervals["backward"].HostMs.P50)
	pngs, err := filepath.Glob(filepath.Join(dir, "featviz", "*.png"))
	require.NoError(t, err)
	require.NotEmpty(t, pngs)
	require.FileExists(t, filepath.Join(dir, "featviz", "index.html"))

	res := torchpy.Run(t, `import sys, torch
ck = torch.load(sys.argv[1])
print(int(ck["step"]), sorted(ck["model"])[0])`, sum.Checkpoint)
	require.Equal(t, "120 classifier.1.bias", strings.TrimSpace(res))

	// resume continues from the checkpoint
	out.Reset()
	sum2, err := trainer.Run(context.Background(), trainer.Options{Dir: dir, Epochs: 1, Steps: 130, TrainN: 2000, TestN: 400, Out: &out, Resume: true})
	require.NoError(t, err, out.String())
	require.Contains(t, out.String(), "resumed from")
	require.Equal(t, int64(130), sum2.Steps)
}

func TestCancelStopsCleanly(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out bytes.Buffer
	sum, err := trainer.Run(ctx, trainer.Options{Dir: dir, Epochs: 1, TrainN: 500, TestN: 100, Out: &out})
	require.NoError(t, err)
	require.Equal(t, "interrupted", sum.Stopped)
	require.Contains(t, out.String(), "stopped (interrupted)")
}

func TestBadOptions(t *testing.T) {
	_, err := trainer.Run(context.Background(), trainer.Options{Dir: t.TempDir(), Data: "cifar", Out: &bytes.Buffer{}})
	require.ErrorContains(t, err, `unknown data "cifar"`)
	_, err = trainer.Run(context.Background(), trainer.Options{Dir: t.TempDir(), Model: "resnet", TrainN: 100, TestN: 10, Out: &bytes.Buffer{}})
	require.ErrorContains(t, err, `unknown model "resnet"`)
	_, err = trainer.Run(context.Background(), trainer.Options{Dir: t.TempDir(), Data: "mnist:/nonexistent", Out: &bytes.Buffer{}})
	require.ErrorContains(t, err, "/nonexistent")
	_, err = trainer.Run(context.Background(), trainer.Options{Dir: t.TempDir(), Resume: true, TrainN: 100, TestN: 10, Out: &bytes.Buffer{}})
	require.ErrorContains(t, err, "resume:")
}

func TestBannerAndSummaryFollowTheYAML(t *testing.T) {
	dir := t.TempDir()
	// as after `hotcb init`: built-ins loaded but off
	require.NoError(t, os.WriteFile(filepath.Join(dir, rundir.Config), []byte(`version: 1
callbacks:
  timing:
    enabled: false
    target: {kind: module, path: hotcb.modules.cb.callbacks.timing, symbol: TimingCallback}
  feat_viz:
    enabled: false
    target: {kind: module, path: hotcb.modules.cb.callbacks, symbol: FeatureVizCallback}
`), 0o600))
	var out bytes.Buffer
	_, err := trainer.Run(context.Background(), trainer.Options{Dir: dir, Epochs: 1, Steps: 20, TrainN: 300, TestN: 50, Out: &out})
	require.NoError(t, err, out.String())
	text := out.String()
	require.Contains(t, text, "callbacks in hotcb.yaml: on: none; loaded but off: timing, feat_viz\n")
	require.Contains(t, text, "hotcb --dir "+dir+" enable timing\n")
	require.NotContains(t, text, " disable ")
	require.NotContains(t, text, "feature maps", "feat_viz is off: no frame")
	require.NotContains(t, text, "timing      ")
	require.Contains(t, text, "  ledger      ")
}
