package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/loss"
	"github.com/hotcb/hotcb/rundir"
)

// TestLossThroughTheCLI: hotcb's `loss set_params ce=1.0 aux=0.5` reaches a kernel's registered
// loss, shows in status and the ledger, exports to the recipe, and replays in a second run.
func TestLossThroughTheCLI(t *testing.T) {
	newLoss := func() *loss.Loss {
		return loss.New(loss.Term{Name: "ce", Weight: 1}, loss.Term{Name: "aux", Weight: 0.1})
	}
	dir := newRunDir(t)
	require.NoError(t, os.Remove(filepath.Join(dir, rundir.Config)))
	k, _, step := kernelRun(t, dir)
	l := newLoss()
	k.RegisterLoss("main", l)
	step()
	out := mustRun(t, "--dir", dir, "loss", "set_params", "ce=1.0", "aux=0.5")
	require.True(t, strings.HasPrefix(out, "queued loss set_params for main"), out)
	step() // step 2
	require.Equal(t, 0.5, l.Weight("aux", 2))
	mustRun(t, "--dir", dir, "set", "aux_w=0.25", "terms.ce=false")
	mustRun(t, "--dir", dir, "loss", "set_params", "kl_w=1")
	step() // step 3
	require.Equal(t, map[string]float64{"ce": 0, "aux": 0.25}, l.Weights(3))
	k.Controller().RequestStatus()
	step()
	require.NoError(t, k.Close())

	ledger := mustRun(t, "--dir", dir, "ledger", "--tail", "0")
	require.Contains(t, ledger, `unknown term "kl" (declared: aux, ce)`)
	status := mustRun(t, "--dir", dir, "status") // effective weights at the step last asked for (3)
	require.Contains(t, status, `loss: {"main":{"effective":{"aux":0.25,"ce":0},"step":3,"terms":{"aux":true,"ce":false},"weights":{"aux":0.25,"ce":1}}}`)

	mustRun(t, "--dir", dir, "recipe", "export")
	recipe, err := rundir.ReadRecipe(filepath.Join(dir, rundir.Recipe))
	require.NoError(t, err)
	require.Len(t, recipe, 2, "the two applied loss ops")
	require.Equal(t, map[string]any{"aux": 0.5, "ce": 1.0}, recipe[0].Params)
	require.Equal(t, int64(2), recipe[0].At.Step)

	dir2 := newRunDir(t)
	require.NoError(t, os.Remove(filepath.Join(dir2, rundir.Config)))
	mustRun(t, "--dir", dir2, "freeze", "--mode", "replay", "--recipe", filepath.Join(dir, rundir.Recipe))
	k2, _, step2 := kernelRun(t, dir2)
	l2 := newLoss()
	k2.RegisterLoss("main", l2)
	step2()
	require.Equal(t, 0.1, l2.Weight("aux", 1))
	step2()
	require.Equal(t, 0.5, l2.Weight("aux", 2))
	step2()
	require.Equal(t, map[string]float64{"ce": 0, "aux": 0.25}, l2.Weights(3))
	require.NoError(t, k2.Close())
}
