package torchcli_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/cli"
	_ "github.com/hotcb/hotcb/cli/torchcli"
	"github.com/hotcb/hotcb/internal/torchpy"
	"github.com/hotcb/hotcb/rundir"
)

// TestVersion: with libtorch, version reports it and whether CUDA can be used.
func TestVersion(t *testing.T) {
	var out, errOut bytes.Buffer
	require.Equal(t, 0, cli.Run(context.Background(), []string{"version"}, &out, &errOut), errOut.String())
	require.Contains(t, out.String(), "hotcb-go "+cli.Version)
	require.Regexp(t, `\nlibtorch: \d+\.\d+`, out.String())
	require.Contains(t, out.String(), "\nshim built with CUDA: ")
	require.Contains(t, out.String(), "\nCUDA available: ")
	out.Reset()
	require.Equal(t, 0, cli.Run(context.Background(), []string{"version", "--json", "--libtorch"}, &out, &errOut), errOut.String())
	var v map[string]any
	require.NoError(t, json.Unmarshal(out.Bytes(), &v))
	require.NotEmpty(t, v["libtorch"])
	require.Contains(t, v, "cuda_available")
	require.NotContains(t, v, "hotcb_torch")
}

func TestTrainBadFlags(t *testing.T) {
	dir := t.TempDir()
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--dir", dir, "train", "--model", "resnet"}, `unknown model "resnet"`},
		{[]string{"--dir", dir, "train", "--device", "tpu"}, `unknown device "tpu"`},
		{[]string{"--dir", dir, "train", "--progress", "--no-progress"}, "--progress and --no-progress together"},
	} {
		var out, errOut bytes.Buffer
		code := cli.Run(context.Background(), c.args, &out, &errOut)
		require.Equal(t, 2, code, c.args)
		require.Contains(t, errOut.String(), c.want)
	}
}

// TestTrainScriptModel: `hotcb train --model FILE.pt` trains a TorchScript classifier and writes
// it back to the run directory; one that does not fit the data fails (exit status 1) saying
// what it expects, and a state dict is a usage error before anything loads.
func TestTrainScriptModel(t *testing.T) {
	models := t.TempDir()
	torchpy.Run(t, `import sys, torch, torch.nn as nn
torch.jit.save(torch.jit.script(nn.Sequential(nn.Flatten(), nn.Linear(784, 6))), sys.argv[1] + "/mlp.pt")
torch.jit.save(torch.jit.script(nn.Sequential(nn.Flatten(), nn.Linear(100, 6))), sys.argv[1] + "/mlp100.pt")
torch.save(nn.Linear(784, 6).state_dict(), sys.argv[1] + "/statedict.pt")`, models)
	dir := filepath.Join(t.TempDir(), "run")
	train := func(model string) (int, string, string) {
		var out, errOut bytes.Buffer
		code := cli.Run(context.Background(), []string{"--dir", dir, "train", "--model", filepath.Join(models, model),
			"--steps", "3", "--batch", "16", "--train-n", "64", "--test-n", "32", "--no-progress"}, &out, &errOut)
		return code, out.String(), errOut.String()
	}
	code, out, errOut := train("mlp.pt")
	require.Equal(t, 0, code, out+errOut)
	require.Contains(t, out, "done after 3 steps")
	require.Contains(t, out, "torchscript "+filepath.Join(dir, "model.pt"))
	require.FileExists(t, filepath.Join(dir, "model.pt"))

	code, _, errOut = train("mlp100.pt")
	require.Equal(t, 1, code)
	require.Contains(t, errOut, "mlp100.pt: the model's forward failed on images of shape [2, 1, 28, 28] (N, C, H, W of the data); "+
		"its first Linear, 1, expects 100 input features, and an image has C·H·W = 784: ")
	require.Equal(t, 1, strings.Count(errOut, "\n"), errOut)

	code, _, errOut = train("statedict.pt")
	require.Equal(t, 2, code)
	require.Contains(t, errOut, "statedict.pt is a torch.save file holding a dict of 2 tensors and numbers (a state dict or checkpoint), not a TorchScript module")
}

// TestLiveRun drives a training process from the CLI, as a user would: while `hotcb train` runs
// in a subprocess, the CLI loads a heartbeat callback, changes its message and disables it. The
// ledger shows each op applied at a step, and the callback's output appears, changes, then stops.
// hotcb hands train over to the hotcb-torch next to it, which gets Ctrl-C as hotcb's process.
func TestLiveRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binaries and trains for a few seconds")
	}
	binDir := t.TempDir()
	bin := filepath.Join(binDir, "hotcb")
	for _, b := range []struct{ out, pkg string }{{bin, "cmd/hotcb"}, {filepath.Join(binDir, "hotcb-torch"), "cmd/hotcb-torch"}} {
		build := exec.Command("go", "build", "-o", b.out, "github.com/hotcb/hotcb/"+b.pkg)
		out, err := build.CombinedOutput()
		require.NoError(t, err, "%s", out)
	}
	dir := filepath.Join(t.TempDir(), "run")

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	train := exec.CommandContext(ctx, bin, "--dir", dir, "train", "--steps", "100000", "--train-n", "1000", "--test-n", "200")
	train.Env = append(os.Environ(), cli.TorchEnv+"=") // the one next to hotcb
	stdout, err := train.StdoutPipe()
	require.NoError(t, err)
	train.Stderr = os.Stderr
	require.NoError(t, train.Start())
	var mu sync.Mutex
	var lines []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			mu.Lock()
			lines = append(lines, sc.Text())
			mu.Unlock()
		}
	}()
	waitFor := func(what string, f func() bool) {
		t.Helper()
		deadline := time.Now().Add(90 * time.Second)
		for !f() {
			if time.Now().After(deadline) {
				mu.Lock()
				defer mu.Unlock()
				t.Fatalf("timed out waiting for %s; output:\n%s", what, strings.Join(lines, "\n"))
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	countLines := func(sub string) int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, l := range lines {
			if strings.Contains(l, sub) {
				n++
			}
		}
		return n
	}
	hotcb := func(args ...string) {
		t.Helper()
		var o, e bytes.Buffer
		code := cli.Run(context.Background(), append([]string{"--dir", dir}, args...), &o, &e)
		require.Equal(t, 0, code, "hotcb %v: %s%s", args, o.String(), e.String())
	}
	waitFor("the status file", func() bool { _, err := os.Stat(filepath.Join(dir, rundir.Status)); return err == nil })

	hotcb("cb", "load", "hb", "--path", "hotcb.modules.cb.callbacks.heartbeat", "--symbol", "HeartbeatCallback", "--init", "every=5", "--init", "message=first")
	waitFor("heartbeat output", func() bool { return countLines("[hb]") >= 3 && countLines("first") >= 3 })
	hotcb("cb", "set_params", "hb", "message=second")
	waitFor("the new message", func() bool { return countLines("second") >= 3 })
	hotcb("cb", "disable", "hb")
	waitFor("the disable in the ledger", func() bool {
		es, _, _ := rundir.ReadJSONL[rundir.LedgerEntry](filepath.Join(dir, rundir.Applied))
		for _, e := range es {
			if e.Op == "disable" {
				return true
			}
		}
		return false
	})
	after := countLines("[hb]")
	time.Sleep(1500 * time.Millisecond) // a few dozen steps
	require.Equal(t, after, countLines("[hb]"), "no heartbeat after disable")

	require.NoError(t, train.Process.Signal(os.Interrupt))
	<-done
	require.NoError(t, train.Wait(), "Ctrl-C ends the run cleanly")
	mu.Lock()
	all := strings.Join(lines, "\n")
	mu.Unlock()
	require.Contains(t, all, "stopped (interrupted)")
	require.FileExists(t, filepath.Join(dir, "last.pt"))

	es, bad, err := rundir.ReadJSONL[rundir.LedgerEntry](filepath.Join(dir, rundir.Applied))
	require.NoError(t, err)
	require.Empty(t, bad)
	var ext []rundir.LedgerEntry
	for _, e := range es {
		if e.Source == "external" {
			ext = append(ext, e)
		}
	}
	require.Len(t, ext, 3)
	for i, want := range []string{"load", "set_params", "disable"} {
		require.Equal(t, want, ext[i].Op)
		require.Equal(t, "applied", ext[i].Decision)
		if i > 0 {
			require.Greater(t, ext[i].Step, ext[i-1].Step, "each op applied at a later step")
		}
	}
}

// The issue's scenario: `init; train --steps 20; cb set_params heartbeat every=7; train --steps
// 20` applies every=7 in the second run, once, and a third run restores it without applying the
// command again.
func TestCommandQueuedBetweenRuns(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "run")
	hotcb := func(args ...string) string {
		t.Helper()
		var o, e bytes.Buffer
		code := cli.Run(context.Background(), append([]string{"--dir", dir}, args...), &o, &e)
		require.Equal(t, 0, code, "hotcb %v: %s%s", args, o.String(), e.String())
		return o.String()
	}
	train := func() {
		hotcb("train", "--steps", "20", "--model", "mlp", "--train-n", "256", "--test-n", "64", "--no-progress")
	}
	hotcb("init")
	train()
	hotcb("cb", "set_params", "heartbeat", "every=7")
	train()
	train()
	es, bad, err := rundir.ReadJSONL[rundir.LedgerEntry](filepath.Join(dir, rundir.Applied))
	require.NoError(t, err)
	require.Empty(t, bad)
	var sets, restores int
	for _, e := range es {
		if e.ID != nil && *e.ID == "heartbeat" {
			switch {
			case e.Op == "set_params" && e.Source == "external":
				sets++
				require.Equal(t, "applied", e.Decision)
			case e.Source == rundir.SourceRestore:
				restores++
			}
		}
	}
	require.Equal(t, 1, sets, "applied once, by the second run")
	require.Equal(t, 2, restores, "restored by the second and third runs")
	st, err := rundir.ReadStatus(filepath.Join(dir, rundir.Status))
	require.NoError(t, err)
	for _, c := range st.Callbacks {
		if c.ID == "heartbeat" {
			require.EqualValues(t, 7, c.Params["every"], "the third run has every=7")
			return
		}
	}
	t.Fatal("no heartbeat in the status")
}
