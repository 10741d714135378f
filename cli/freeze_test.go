package cli

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/rundir"
)

const recipeFixture = `{"at":{"step":10,"event":"train_step_end"},"module":"cb","op":"load","id":"timing","target":{"kind":"module","path":"hotcb.modules.cb.callbacks.timing","symbol":"TimingCallback"},"init":{"every":50}}
{"at":{"step":1200,"event":"train_step_end"},"module":"opt","op":"set_params","id":"main","params":{"lr":0.001}}
{"at":{"step":1500,"event":"train_step_end"},"module":"cb","op":"disable","id":"timing"}
`

const adjustFixture = `version: 1
patches:
  - match: {module: opt, op: set_params}
    transform_params: {scale: {lr: 0.5}}
  - match: {module: cb, id: timing, op: disable}
    drop: true
  - insert:
      at: {step: 5, event: train_step_end}
      module: cb
      op: enable
      id: sys
`

func readFreezeFile(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, rundir.Freeze)
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	fi, err := os.Stat(p)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	_, err = rundir.ReadFreeze(p)
	require.NoError(t, err, "the kernel's reader accepts it")
	return string(b)
}

func TestFreeze(t *testing.T) {
	dir := newRunDir(t)
	out := mustRun(t, "--dir", dir, "freeze", "--mode", "prod")
	require.Contains(t, out, "mode prod")
	require.Equal(t, `{"mode":"prod","recipe_path":null,"adjust_path":null,"policy":"best_effort","step_offset":0}`+"\n", readFreezeFile(t, dir))
	// a command queued while frozen is queued, with a note naming the mode
	r := runCLI(t, "--dir", dir, "cb", "enable", "timing")
	require.NoError(t, r.err)
	require.Contains(t, r.errOut, "note: the run is frozen (freeze mode prod): the process records this command as ignored_freeze")

	// replay: the run's own recipe by default, written absolute.
	writeFile(t, filepath.Join(dir, rundir.Recipe), recipeFixture)
	absDir, err := filepath.Abs(dir)
	require.NoError(t, err)
	recipe := filepath.Join(absDir, rundir.Recipe)
	out = mustRun(t, "--dir", dir, "freeze", "--mode", "replay")
	require.Contains(t, out, "recipe: 3 entries")
	require.Equal(t, `{"mode":"replay","recipe_path":`+quote(recipe)+`,"adjust_path":null,"policy":"best_effort","step_offset":0}`+"\n", readFreezeFile(t, dir))

	// replay_adjusted with every option; a relative --adjust is found in the run directory.
	other := filepath.Join(t.TempDir(), "exp1.recipe.jsonl")
	writeFile(t, other, recipeFixture)
	writeFile(t, filepath.Join(dir, "my.adjust.yaml"), adjustFixture)
	out = mustRun(t, "--dir", dir, "freeze", "--mode", "replay_adjusted", "--recipe", other, "--adjust", "my.adjust.yaml",
		"--policy", "strict", "--step-offset", "-100")
	require.Contains(t, out, "recipe: 3 entries; adjust: 3 patches; adjusted recipe: 3 entries")
	require.Equal(t, `{"mode":"replay_adjusted","recipe_path":`+quote(other)+`,"adjust_path":`+quote(filepath.Join(absDir, "my.adjust.yaml"))+
		`,"policy":"strict","step_offset":-100}`+"\n", readFreezeFile(t, dir))
	fz, err := rundir.ReadFreeze(filepath.Join(dir, rundir.Freeze))
	require.NoError(t, err)
	require.Equal(t, int64(-100), fz.StepOffset)

	// replay_adjusted finds the run's hotcb.adjust.yaml by itself.
	writeFile(t, filepath.Join(dir, rundir.Adjust), adjustFixture)
	mustRun(t, "--dir", dir, "freeze", "--mode", "replay_adjusted")
	require.Contains(t, readFreezeFile(t, dir), `"adjust_path":`+quote(filepath.Join(absDir, rundir.Adjust)))

	// An adjust file that does not apply to the recipe (scaling a string) is refused.
	writeFile(t, filepath.Join(dir, "bad.yaml"), "version: 1\npatches:\n  - match: {module: cb, op: load}\n    transform_params: {scale: {every: 2}}\n  - match: {module: cb, op: load}\n    replace_params: {every: fast}\n    transform_params: {scale: {every: 2}}\n")
	before := readFreezeFile(t, dir)
	r = runCLI(t, "--dir", dir, "opt", "set_params", "lr=0.1")
	require.NoError(t, r.err)
	require.Contains(t, r.errOut, "(freeze mode replay_adjusted)")
	require.Contains(t, r.errOut, "ignored_replay")
	r = runCLI(t, "--dir", dir, "freeze", "--mode", "replay_adjusted", "--adjust", "bad.yaml")
	require.ErrorContains(t, r.err, "does not apply to the recipe")
	require.Equal(t, before, readFreezeFile(t, dir))

	mustRun(t, "--dir", dir, "freeze", "--mode", "off")
	r = runCLI(t, "--dir", dir, "cb", "enable", "timing")
	require.NoError(t, r.err)
	require.NotContains(t, r.errOut, "freeze")
	require.Equal(t, `{"mode":"off","recipe_path":null,"adjust_path":null,"policy":"best_effort","step_offset":0}`+"\n", readFreezeFile(t, dir))
	// No temporary files left behind.
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, e := range entries {
		require.NotContains(t, e.Name(), ".tmp", e.Name())
	}
}
