package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/bridge/optim"
	"github.com/hotcb/hotcb/controller"
	"github.com/hotcb/hotcb/kernel"
	"github.com/hotcb/hotcb/rundir"
	"github.com/hotcb/hotcb/torchenv"
)

// kernelRun is a kernel over dir with one SGD optimizer registered as main.
func kernelRun(t *testing.T, dir string) (*kernel.Kernel, *optim.Optimizer, func()) {
	t.Helper()
	k, err := kernel.New(dir, kernel.Options{Controller: controller.Options{PollEveryStep: true, StatusInterval: time.Millisecond,
		Log: func(string) {}}})
	require.NoError(t, err)
	w := bridge.Zeros(bridge.Shape{2}).SetRequiresGrad(true)
	opt, err := optim.NewSGD(optim.Params(w), optim.SGDOptions{LR: 0.1})
	require.NoError(t, err)
	k.RegisterOptimizer("main", opt)
	env := &torchenv.Env{RunDir: dir, Optimizer: opt}
	return k, opt, func() {
		env.Step++
		k.Apply(env, torchenv.TrainStepEnd)
	}
}

func lrOf(t *testing.T, o *optim.Optimizer) float64 {
	t.Helper()
	v, err := o.Get(0, "lr")
	require.NoError(t, err)
	return v.(float64)
}

// TestKernelEndToEnd: a run under the kernel driven only by this CLI — the init template's
// built-ins, an optimizer change, freeze — then its ledger, status and recipe, replayed in a
// second run with an adjust file.
func TestKernelEndToEnd(t *testing.T) {
	dir := newRunDir(t)
	k, opt, step := kernelRun(t, dir)
	step()
	mustRun(t, "--dir", dir, "opt", "set_params", "lr=3e-4")
	step()
	require.Equal(t, 3e-4, lrOf(t, opt))
	mustRun(t, "--dir", dir, "enable", "timing")
	mustRun(t, "--dir", dir, "loss", "set_params", "distill_w=0.2") // no loss registered with this kernel
	step()
	mustRun(t, "--dir", dir, "freeze", "--mode", "prod")
	step()
	mustRun(t, "--dir", dir, "set", "lr=1")
	step()
	require.Equal(t, 3e-4, lrOf(t, opt), "frozen: not applied")
	k.Controller().RequestStatus()
	step()
	require.NoError(t, k.Close()) // flushes the status file

	ledger := mustRun(t, "--dir", dir, "ledger", "--tail", "0")
	row := func(module, op, id, decision string) {
		t.Helper()
		for _, l := range strings.Split(ledger, "\n") {
			f := strings.Fields(l)
			if len(f) >= 7 && f[3] == module && f[4] == op && f[5] == id && f[6] == decision {
				return
			}
		}
		require.Failf(t, "no ledger row", "%s %s %s %s in\n%s", module, op, id, decision, ledger)
	}
	row("cb", "load", "timing", "applied")
	row("opt", "set_params", "main", "applied")
	row("cb", "enable", "timing", "applied")
	row("loss", "set_params", "main", "failed")
	row("opt", "set_params", "main", "ignored_freeze")

	status := mustRun(t, "--dir", dir, "status")
	require.Contains(t, status, "freeze file: prod\n")
	require.Contains(t, status, "freeze_mode: prod\n")
	require.Contains(t, status, "ledger_seq: ")
	require.Contains(t, status, `optimizers: {"main":[{`)
	require.Contains(t, status, `"lr":0.0003`)
	require.Regexp(t, `(?m)^timing +yes +yes +module:hotcb\.modules\.cb\.callbacks\.timing#TimingCallback`, status)
	require.Regexp(t, `(?m)^anomaly_guard +no +yes +module:hotcb\.modules\.cb\.callbacks\.anomaly_guard#AnomalyGuardCallback`, status)

	out := mustRun(t, "--dir", dir, "recipe", "export")
	require.Contains(t, out, "exported ")
	recipe, err := rundir.ReadRecipe(filepath.Join(dir, rundir.Recipe))
	require.NoError(t, err)
	var lrStep int64 = -1
	for _, e := range recipe {
		if e.Module == "opt" {
			require.Equal(t, int64(-1), lrStep, "one opt entry: the frozen one was not applied")
			lrStep = e.At.Step
			require.EqualValues(t, 3e-4, e.Params["lr"])
		}
	}
	require.Equal(t, int64(2), lrStep)

	// A second run replays the first's recipe, adjusted: lr halved, one step later.
	dir2 := newRunDir(t)
	writeFile(t, filepath.Join(dir2, rundir.Adjust), "version: 1\npatches:\n  - match: {module: opt}\n    transform_params: {scale: {lr: 0.5}}\n    shift_step: 1\n")
	require.NoError(t, os.Remove(filepath.Join(dir2, rundir.Config))) // only the recipe acts
	out = mustRun(t, "--dir", dir2, "freeze", "--mode", "replay_adjusted", "--recipe", filepath.Join(dir, rundir.Recipe))
	require.Contains(t, out, "adjusted recipe: ")
	k2, opt2, step2 := kernelRun(t, dir2)
	step2()
	step2()
	require.Equal(t, 0.1, lrOf(t, opt2), "not yet: the adjusted entry is at step 3")
	step2()
	require.InDelta(t, 1.5e-4, lrOf(t, opt2), 1e-12)
	require.NoError(t, k2.Close())
	require.Contains(t, mustRun(t, "--dir", dir2, "status"), "freeze_mode: replay_adjusted")
}

// A restart of a run started from `hotcb init`, after an edit of hotcb.yaml while no trainer
// ran, reconciles the edit without replacing the built-ins the edit left alone. Their init came
// back from the ledger's JSON while the YAML's is YAML: equal values read from different sources
// must not count as a new init, which would replace each built-in and lose its state.
func TestRestartKeepsTheInitTemplatesBuiltins(t *testing.T) {
	dir := newRunDir(t)
	k, _, step := kernelRun(t, dir)
	step()
	step()
	require.NoError(t, k.Close())
	before := len(readKernelLedger(t, dir))

	yamlPath := filepath.Join(dir, rundir.Config)
	b, err := os.ReadFile(yamlPath)
	require.NoError(t, err)
	edited := strings.Replace(string(b), "heartbeat:", "heartbeat:  # edited", 1)
	i := strings.Index(edited, "# edited")
	edited = edited[:i] + strings.Replace(edited[i:], "enabled: false", "enabled: true", 1)
	writeFile(t, yamlPath, edited)

	k, _, step = kernelRun(t, dir)
	step()
	step()
	require.NoError(t, k.Close())
	var got []string
	for _, e := range readKernelLedger(t, dir)[before:] {
		notes := ""
		if e.Notes != nil {
			notes = *e.Notes
		}
		got = append(got, fmt.Sprintf("%s %s %s %s: %s", e.Op, *e.ID, e.Source, e.Decision, notes))
	}
	ids := []string{"timing", "heartbeat", "system_stats", "grad_stats", "tensor_stats", "jsonl_logger", "anomaly_guard"}
	var want []string
	for _, id := range ids {
		want = append(want, "load "+id+" restore applied: restart")
	}
	for _, id := range ids {
		if id == "heartbeat" {
			want = append(want, "load heartbeat yaml applied: already loaded; enabled=true")
		} else {
			want = append(want, "load "+id+" yaml skipped_noop: already loaded")
		}
	}
	require.Equal(t, want, got)
}

func readKernelLedger(t *testing.T, dir string) []rundir.LedgerEntry {
	t.Helper()
	l, err := rundir.ReadLedger(filepath.Join(dir, rundir.Applied))
	require.NoError(t, err)
	require.Empty(t, l.Bad)
	return l.Entries
}
