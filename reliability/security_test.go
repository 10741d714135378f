package reliability

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"syscall"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/callbacks"
	_ "github.com/hotcb/hotcb/callbacks/all"
	"github.com/hotcb/hotcb/cli"
	"github.com/hotcb/hotcb/controller"
	"github.com/hotcb/hotcb/kernel"
	"github.com/hotcb/hotcb/models"
	"github.com/hotcb/hotcb/rundir"
	"github.com/hotcb/hotcb/torchenv"
)

// The control plane's security rules, checked end to end. Covered elsewhere and not repeated:
// go_file sources writable by group/others or owned by another user are refused
// (gofile TestFullStdlibOptionAndPermissions, TestSourceOwnedByAnotherUser,
// TestGroupWritableSourceAndFIFO); interpreted callbacks cannot import os/exec, net, syscall,
// unsafe or plugin unless AllowFullStdlib (gofile TestFullStdlibOptionAndPermissions, controller
// TestRestrictedImportsAndBudget); commands files written by several processes at once stay
// whole (cli TestConcurrentProcesses).

// goFileSrc is a go_file callback; loading it captures its source under hotcb.sources.
const goFileSrc = `package g

import "github.com/hotcb/hotcb/torchenv"

type Count struct {
	Name string ` + "`hotcb:\"id\"`" + `
	n    int
}

func (c *Count) ID() string                                { return c.Name }
func (c *Count) Handle(event string, env *torchenv.Env) error { c.n++; return nil }
func (c *Count) SetParams(p map[string]any) error           { return nil }
`

// modes walks root and lists every directory that is not 0700 and every file that is not 0600.
func modes(t *testing.T, root string) (bad []string, n int) {
	t.Helper()
	require.NoError(t, filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		n++
		want := os.FileMode(0o600)
		if d.IsDir() {
			want = 0o700
		}
		if info.Mode().Perm() != want {
			rel, _ := filepath.Rel(root, p)
			bad = append(bad, rel+": "+info.Mode().Perm().String()+", want "+want.String())
		}
		return nil
	}))
	sort.Strings(bad)
	return bad, n
}

// TestEverythingCreatedIsPrivate: with umask 0 (so nothing relies on the user's umask), a
// kernel run in a new nested directory — commands, YAML, ledger, status, log, captured go_file
// source, and the outputs of the built-ins that write files (timing's JSONL and chart,
// featviz's PNGs and gallery, jsonl_logger's file) — hotcb's CLI (init, then a command that
// creates the commands file again) and rundir.AppendLine into a new directory create
// directories 0700 and files 0600 only.
func TestEverythingCreatedIsPrivate(t *testing.T) {
	old := syscall.Umask(0)
	defer syscall.Umask(old)
	root := t.TempDir()
	// Under umask 0, t.TempDir's directory is 0777: a run directory under it would be refused
	// (anyone could plant files in it), as would a go_file source.
	require.NoError(t, os.Chmod(root, 0o700))

	run := filepath.Join(root, "kernel", "nested", "run")
	// Under umask 0, t.TempDir's directory is 0777, and a go_file source in a directory anyone
	// can write is refused (anyone could swap it): keep the source in a private one.
	srcDir := t.TempDir()
	require.NoError(t, os.Chmod(srcDir, 0o700))
	src := filepath.Join(srcDir, "count.go")
	require.NoError(t, os.WriteFile(src, []byte(goFileSrc), 0o600))
	k, err := kernel.New(run, kernel.Options{Controller: controller.Options{PollEveryStep: true}})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(run, rundir.Config), []byte("version: 1\ncallbacks: {}\n"), 0o600))
	for _, l := range []string{
		`{"op":"load","id":"timing","target":{"kind":"module","path":"hotcb.modules.cb.callbacks.timing","symbol":"TimingCallback"},"init":{"every":1,"out":"timing/t.jsonl"}}`,
		`{"op":"load","id":"fv","target":{"kind":"module","path":"hotcb.modules.cb.callbacks.feat_viz","symbol":"FeatureVizCallback"},"init":{"every":1,"out":"viz/a"}}`,
		`{"op":"load","id":"jl","target":{"kind":"module","path":"hotcb.modules.cb.callbacks.jsonl_logger","symbol":"JSONLLoggerCallback"},"init":{"every":1,"paths":["loss"],"out_path":"logs/m.jsonl"}}`,
		`{"op":"load","id":"count","target":{"kind":"go_file","path":"` + src + `","symbol":"Count"}}`,
	} {
		require.NoError(t, rundir.AppendLine(filepath.Join(run, rundir.Commands), []byte(l)))
	}
	bridge.ManualSeed(1)
	model := models.NewSmallCNN(1, 4)
	env := &torchenv.Env{Model: model, RunDir: run, Phase: "train", Log: func(string) {}}
	for step := int64(0); step < 4; step++ {
		env.Step = step
		env.Loss = model.Forward(bridge.Randn(bridge.Shape{2, 1, 28, 28})).Sum()
		k.Apply(env, torchenv.TrainStepEnd)
	}
	require.NoError(t, k.Close())
	for _, e := range mustLedger(t, run) {
		require.Equal(t, rundir.DecisionApplied, e.Decision, "%s %s: %v", e.Op, *e.ID, e.Error)
	}
	for _, p := range []string{"timing/t.jsonl", "timing/t.png", "viz/a/index.html", "logs/m.jsonl", rundir.Applied, rundir.Status, rundir.Log} {
		require.FileExists(t, filepath.Join(run, p))
	}
	require.DirExists(t, filepath.Join(run, rundir.Sources))

	cliRun := filepath.Join(root, "cli", "run")
	var out, errOut bytes.Buffer
	require.Zero(t, cli.Run(context.Background(), []string{"--dir", cliRun, "init"}, &out, &errOut), errOut.String())
	require.NoError(t, os.Remove(filepath.Join(cliRun, rundir.Commands))) // the CLI creates it again
	require.Zero(t, cli.Run(context.Background(), []string{"--dir", cliRun, "cb", "set_params", "timing", "every=5"}, &out, &errOut), errOut.String())
	require.FileExists(t, filepath.Join(cliRun, rundir.Commands))
	require.NoError(t, rundir.AppendLine(filepath.Join(root, "append", "x", rundir.Commands), []byte(`{"op":"enable","id":"a"}`)))

	for _, dir := range []string{"kernel", "cli", "append"} {
		bad, n := modes(t, filepath.Join(root, dir))
		require.Empty(t, bad, "%s: %d paths checked", dir, n)
		t.Logf("%s: %d directories and files, all private", dir, n)
	}
}

func mustLedger(t *testing.T, run string) []rundir.LedgerEntry {
	t.Helper()
	es, bad, err := rundir.ReadJSONL[rundir.LedgerEntry](filepath.Join(run, rundir.Applied))
	require.NoError(t, err)
	require.Empty(t, bad)
	return es
}

// TestOutputPathsStayInTheRunDir: set_params commands that point a built-in's output outside
// the run directory (a relative path with "..", an absolute path elsewhere) fail with an error
// naming the key; the callback keeps its old value and keeps writing where it did; nothing is
// created outside. An absolute path inside the run dir is fine. jsonl_logger differs by design
// (callbacks/jsonl TestLoggerParamsAndPaths): it accepts out_path and refuses the path when it
// opens the file — the lines are counted as lost and logged, nothing is written outside.
func TestOutputPathsStayInTheRunDir(t *testing.T) {
	defer verifyNoLeaks(t)()
	parent := t.TempDir()
	run := filepath.Join(parent, "run")
	log := &syncLog{}
	k, err := kernel.New(run, kernel.Options{Controller: controller.Options{PollEveryStep: true}})
	require.NoError(t, err)
	cmd := func(l string) { require.NoError(t, rundir.AppendLine(filepath.Join(run, rundir.Commands), []byte(l))) }
	cmd(`{"op":"load","id":"timing","target":{"kind":"module","path":"hotcb.modules.cb.callbacks.timing","symbol":"TimingCallback"},"init":{"every":1,"out":"timing/t.jsonl"}}`)
	cmd(`{"op":"load","id":"fv","target":{"kind":"module","path":"hotcb.modules.cb.callbacks.feat_viz","symbol":"FeatureVizCallback"},"init":{"every":2,"out":"viz"}}`)
	cmd(`{"op":"load","id":"jl","target":{"kind":"module","path":"hotcb.modules.cb.callbacks.jsonl_logger","symbol":"JSONLLoggerCallback"},"init":{"every":1,"paths":["loss"],"out_path":"logs/m.jsonl"}}`)
	bridge.ManualSeed(2)
	model := models.NewSmallCNN(1, 4)
	env := &torchenv.Env{Model: model, RunDir: run, Phase: "train", Log: log.add}
	step := func() {
		env.Loss = model.Forward(bridge.Randn(bridge.Shape{2, 1, 28, 28})).Sum()
		k.Apply(env, torchenv.TrainStepEnd)
		env.Step++
	}
	step()

	outside := []string{"../escape", filepath.Join(parent, "abs-escape"), "a/../../escape2", "/tmp/hotcb-escape-" + filepath.Base(parent)}
	var sent int
	for _, p := range outside {
		cmd(`{"op":"set_params","id":"timing","params":{"out":"` + p + `/t.jsonl"}}`)
		cmd(`{"op":"set_params","id":"fv","params":{"out":"` + p + `"}}`)
		sent += 2
	}
	step()
	cmd(`{"op":"set_params","id":"timing","params":{"out":"` + filepath.Join(run, "timing", "abs.jsonl") + `"}}`) // absolute, inside
	step()
	cmd(`{"op":"set_params","id":"jl","params":{"out_path":"../escape-jl.jsonl"}}`)
	step()
	step()
	st := k.Controller().Status()
	require.NoError(t, k.Close())

	es := mustLedger(t, run)
	var failed []rundir.LedgerEntry
	for _, e := range es {
		if e.Decision == rundir.DecisionFailed {
			failed = append(failed, e)
		}
	}
	require.Len(t, failed, sent, "every outside path refused")
	for _, e := range failed {
		require.Contains(t, *e.Error, `"out"`, "the error names the key")
		require.Contains(t, *e.Error, "outside the run directory")
	}
	params := map[string]map[string]any{}
	for _, cs := range st.Callbacks {
		params[cs.ID] = cs.Params
	}
	require.Equal(t, filepath.Join(run, "timing", "abs.jsonl"), params["timing"]["out"], "the good absolute path applied")
	require.Nil(t, params["fv"]["out"], "featviz keeps its init out: no set_params ever applied")
	require.FileExists(t, filepath.Join(run, "timing", "abs.jsonl"))
	require.FileExists(t, filepath.Join(run, "viz", "index.html"))
	require.Contains(t, log.String(), "output path is outside the run directory", "jsonl_logger says why its lines are lost")
	for _, p := range append(outside, "../escape-jl.jsonl") {
		if !filepath.IsAbs(p) {
			p = filepath.Join(run, p)
		}
		_, err := os.Stat(p)
		require.ErrorIs(t, err, fs.ErrNotExist, "nothing created at %s", p)
	}
	entries, err := os.ReadDir(parent)
	require.NoError(t, err)
	require.Len(t, entries, 1, "only the run dir in its parent")

	// The API can allow it explicitly.
	p, err := callbacks.OutPath(&torchenv.Env{RunDir: run}, "../allowed/x", true)
	require.NoError(t, err)
	require.Equal(t, filepath.Join(parent, "allowed", "x"), p)
	_, err = callbacks.OutPath(&torchenv.Env{RunDir: run}, "../allowed/x", false)
	require.ErrorIs(t, err, callbacks.ErrOutsideRunDir)
	require.NoError(t, os.RemoveAll(filepath.Join(parent, "allowed")))
}
