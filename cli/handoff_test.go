package cli

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestFindTorch(t *testing.T) {
	dir := t.TempDir()
	self := filepath.Join(dir, "hotcb")
	next := filepath.Join(dir, TorchBinary)
	other := filepath.Join(t.TempDir(), "my-torch")
	plain := filepath.Join(dir, "plain")
	for _, p := range []string{self, other} {
		writeFile(t, p, "#!/bin/sh\n")
		require.NoError(t, os.Chmod(p, 0o755))
	}
	writeFile(t, plain, "")
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }
	onPath := ""
	lookPath := func(name string) (string, error) {
		require.Equal(t, TorchBinary, name)
		if onPath == "" {
			return "", errors.New("not found")
		}
		return onPath, nil
	}

	_, err := findTorch(getenv, self, lookPath)
	require.EqualError(t, err, "not in "+dir+", not on PATH, and $HOTCB_TORCH is unset")
	_, err = findTorch(getenv, "", lookPath) // os.Executable failed: that step is skipped
	require.EqualError(t, err, "not on PATH, and $HOTCB_TORCH is unset")

	onPath = "/usr/local/bin/hotcb-torch"
	p, err := findTorch(getenv, self, lookPath)
	require.NoError(t, err)
	require.Equal(t, onPath, p, "on PATH")

	writeFile(t, next, "#!/bin/sh\n")
	require.NoError(t, os.Chmod(next, 0o600))
	p, err = findTorch(getenv, self, lookPath)
	require.NoError(t, err)
	require.Equal(t, onPath, p, "one next to hotcb that cannot be run is skipped")
	require.NoError(t, os.Chmod(next, 0o755))
	p, err = findTorch(getenv, self, lookPath)
	require.NoError(t, err)
	require.Equal(t, next, p, "next to hotcb before PATH")

	env[TorchEnv] = other
	p, err = findTorch(getenv, self, lookPath)
	require.NoError(t, err)
	require.Equal(t, other, p, "$HOTCB_TORCH first")
	// An explicit $HOTCB_TORCH that cannot be run is an error, not a reason to look elsewhere.
	for _, c := range []struct{ path, why string }{
		{filepath.Join(dir, "missing"), "no such file or directory"},
		{plain, plain + " is not executable"},
		{dir, dir + " is a directory"},
	} {
		env[TorchEnv] = c.path
		_, err = findTorch(getenv, self, lookPath)
		require.ErrorIs(t, err, errTorchEnv)
		require.ErrorContains(t, err, "$HOTCB_TORCH is "+c.path+", which cannot be run: ")
		require.ErrorContains(t, err, c.why)
	}
}

type handoffCall struct {
	what string
	args []string
}

// recorder is an app whose hand-offs are recorded instead of replacing the test process.
func recorder(calls *[]handoffCall) *app {
	return &app{handoff: func(what string, args []string) error {
		*calls = append(*calls, handoffCall{what, append([]string(nil), args...)})
		return errors.New("handed off")
	}}
}

// TestHandOffCommands: without libtorch, train and version --libtorch hand this process's
// arguments over unchanged (flags before the command included); train's checks that need no
// libtorch, and its help, stay here.
func TestHandOffCommands(t *testing.T) {
	dir := newRunDir(t)
	var calls []handoffCall
	for _, args := range [][]string{
		{"--dir", dir, "train", "--steps", "5"},
		{"train", "--dir=" + dir, "--device", "tpu", "--epochs", "1"}, // the device is hotcb-torch's to check
		{"version", "--libtorch", "--json"},
	} {
		r := runWith(t, recorder(&calls), args...)
		require.EqualError(t, r.err, "handed off")
		require.Empty(t, r.out)
	}
	require.Equal(t, []handoffCall{
		{"train", []string{"--dir", dir, "train", "--steps", "5"}},
		{"train", []string{"train", "--dir=" + dir, "--device", "tpu", "--epochs", "1"}},
		{"version --libtorch", []string{"version", "--libtorch", "--json"}},
	}, calls)

	calls = nil
	r := runWith(t, recorder(&calls), "--dir", dir, "train", "--model", "resnet")
	require.ErrorContains(t, r.err, `unknown model "resnet"`)
	r = runWith(t, recorder(&calls), "train", "--progress", "--no-progress")
	require.ErrorContains(t, r.err, "--progress and --no-progress together")
	r = runWith(t, recorder(&calls), "train", "--help")
	require.NoError(t, r.err)
	for _, f := range []string{"--steps", "--device", "--model", "--resume", "--allow-full-stdlib", "hotcb-torch"} {
		require.Contains(t, r.out, f)
	}
	require.Contains(t, mustRun(t, "version"), "hotcb-go ")
	require.Empty(t, calls, "no hand-off for bad flags, help or plain version")

	// With libtorch the run is in process.
	var got []TrainOptions
	a := recorder(&calls)
	a.torch = &Torch{Train: func(_ context.Context, o TrainOptions) error { got = append(got, o); return nil }}
	r = runWith(t, a, "--dir", dir, "train", "--steps", "7", "--device", "cpu", "--no-progress", "--model", "mlp")
	require.NoError(t, r.err)
	require.Empty(t, calls)
	require.Len(t, got, 1)
	require.NotNil(t, got[0].Out)
	got[0].Out = nil
	require.Equal(t, TrainOptions{Dir: dir, Device: "cpu", Model: "mlp", Data: "shapes", Epochs: 5, Steps: 7, Batch: 64, LR: 3e-3,
		TrainN: 10000, TestN: 2000, Progress: -1}, got[0])
}

// TestHandOffErrors: what HandOff says when it cannot hand off (it returns before exec then).
func TestHandOffErrors(t *testing.T) {
	t.Setenv(TorchEnv, "")
	t.Setenv("PATH", t.TempDir())
	self, err := os.Executable()
	require.NoError(t, err)

	err = HandOff("train", []string{"train"})
	require.EqualError(t, err, "train needs libtorch, which hotcb does not link, and hotcb-torch was not found: not in "+
		filepath.Dir(self)+", not on PATH, and $HOTCB_TORCH is unset (hint: 'make build' builds both bin/hotcb and "+
		"bin/hotcb-torch; install hotcb-torch next to hotcb or on PATH, or set HOTCB_TORCH to its path)")

	missing := filepath.Join(t.TempDir(), "hotcb-torch")
	t.Setenv(TorchEnv, missing)
	err = HandOff("version --libtorch", nil)
	require.ErrorContains(t, err, "version --libtorch needs libtorch, which hotcb does not link: $HOTCB_TORCH is "+missing+", which cannot be run: ")
	require.ErrorContains(t, err, "(hint: point HOTCB_TORCH at hotcb-torch (make build puts it in bin/), or unset it)")

	// A binary started by a hand-off does not hand off again (HOTCB_TORCH naming hotcb).
	t.Setenv(handedOffEnv, "/opt/hotcb/bin/hotcb")
	err = HandOff("train", nil)
	require.EqualError(t, err, "train needs libtorch: /opt/hotcb/bin/hotcb handed it to "+self+", which does not link "+
		"libtorch either (hint: point HOTCB_TORCH at hotcb-torch (make build puts it in bin/), not at hotcb)")

	// Through Run: one line, exit status 1.
	var out, errOut bytes.Buffer
	require.Equal(t, 1, Run(context.Background(), []string{"train"}, &out, &errOut))
	require.True(t, strings.HasPrefix(errOut.String(), "hotcb: train needs libtorch: "), errOut.String())
	require.Equal(t, 1, strings.Count(errOut.String(), "\n"))

	// A binary with libtorch clears the mark, so that what it starts may hand off again.
	UseTorch(&Torch{})
	defer UseTorch(nil)
	require.Equal(t, 0, Run(context.Background(), []string{"--help"}, &out, &errOut))
	_, set := os.LookupEnv(handedOffEnv)
	require.False(t, set)
}

// TestInitRegistered: init names the callbacks registered in a binary with libtorch that the
// table lacks; hotcb has none to name.
func TestInitRegistered(t *testing.T) {
	dir := newRunDir(t)
	b, err := os.ReadFile(filepath.Join(dir, "hotcb.yaml"))
	require.NoError(t, err)
	require.NotContains(t, string(b), "Also registered")
	require.Equal(t, configTemplate(nil), string(b))

	dir = filepath.Join(t.TempDir(), "run")
	a := &app{torch: &Torch{Registered: func() []string {
		return []string{"mine/pkg#Thing", "hotcb.modules.cb.callbacks#TimingCallback"}
	}}}
	r := runWith(t, a, "--dir", dir, "init")
	require.NoError(t, r.err)
	b, err = os.ReadFile(filepath.Join(dir, "hotcb.yaml"))
	require.NoError(t, err)
	require.True(t, strings.HasSuffix(string(b), "# Also registered in this binary (target: {kind: module, path: PATH, symbol: SYMBOL}):\n#   mine/pkg#Thing\n"), string(b))
}
