package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/controller"
	"github.com/hotcb/hotcb/kernel"
	"github.com/hotcb/hotcb/rundir"
)

// 30 steps of the example with commands queued before it starts — both go_file examples and a
// learning-rate change, as hotcb's CLI writes them — all applied, recorded and effective.
func TestRunUnderKernel(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	require.NoError(t, rundir.Dir(dir).Ensure())
	abs := func(p string) string {
		a, err := filepath.Abs(p)
		require.NoError(t, err)
		return a
	}
	cmds := `{"module":"cb","op":"load","id":"feat_viz","target":{"kind":"python_file","path":"` + abs("../callbacks/feat_viz.go") + `","symbol":"FeatureVizCallback"},"init":{"every":10}}
{"module":"cb","op":"load","id":"gradnorm","target":{"kind":"go_file","path":"` + abs("../callbacks/grad_norm.go") + `","symbol":"GradNorm"},"init":{"every":10}}
{"module":"opt","op":"set_params","id":"main","params":{"lr":0.001}}
`
	require.NoError(t, os.WriteFile(rundir.Dir(dir).Path(rundir.Commands), []byte(cmds), 0o600))

	var out bytes.Buffer
	res, err := run(context.Background(), options{Dir: dir, Steps: 30, Out: &out,
		// repository files may be group-writable in CI checkouts
		Kernel: kernel.Options{Controller: controller.Options{AllowAnyOwner: true}}})
	require.NoError(t, err, out.String())
	require.Equal(t, int64(30), res.Steps)
	require.Equal(t, 0.001, res.LR, "opt set_params reached the optimizer")
	require.Greater(t, res.Loss, 0.0)

	log := out.String()
	require.Contains(t, log, "hotcb --dir "+dir+" cb load feat_viz --file examples/callbacks/feat_viz.go --symbol FeatureVizCallback --init every=50")
	for _, s := range []string{"[gradnorm] step 0 ", "[gradnorm] step 10 ", "[gradnorm] step 20 ", "step   30  loss", "done: 30 steps"} {
		require.Contains(t, log, s)
	}
	pngs, err := filepath.Glob(filepath.Join(dir, "featviz_go", "*.png"))
	require.NoError(t, err)
	require.Len(t, pngs, 3, "steps 0, 10, 20")

	ledger, bad, err := rundir.ReadJSONL[rundir.LedgerEntry](rundir.Dir(dir).Path(rundir.Applied))
	require.NoError(t, err)
	require.Empty(t, bad)
	var applied []string
	for _, e := range ledger {
		require.Equal(t, rundir.DecisionApplied, e.Decision, "%+v", e)
		require.NotNil(t, e.ID)
		applied = append(applied, e.Module+" "+e.Op+" "+*e.ID)
	}
	require.Equal(t, []string{"cb load feat_viz", "cb load gradnorm", "opt set_params main"}, applied)
	require.False(t, strings.Contains(log, "error"), log)
}
