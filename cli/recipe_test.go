package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/rundir"
)

// TestRecipeExport: the applied cb/opt entries of the fixture ledger, in order; failed, ignored
// and core entries and a corrupt line are left out.
func TestRecipeExport(t *testing.T) {
	dir := newRunDir(t)
	writeFile(t, filepath.Join(dir, rundir.Applied), ledgerFixture())
	r := runCLI(t, "--dir", dir, "recipe", "export")
	require.NoError(t, r.err)
	require.Equal(t, "exported 3 recipe entries (from 6 ledger entries) to "+filepath.Join(dir, rundir.Recipe)+"\n", r.out)
	require.Contains(t, r.errOut, "line 6")
	b, err := os.ReadFile(filepath.Join(dir, rundir.Recipe))
	require.NoError(t, err)
	require.Equal(t, recipeFixture, string(b))

	other := filepath.Join(t.TempDir(), "sub", "r.jsonl")
	mustRun(t, "--dir", dir, "recipe", "export", "--out", other)
	b, err = os.ReadFile(other)
	require.NoError(t, err)
	require.Equal(t, recipeFixture, string(b))

	// The exported recipe replays: freeze accepts it.
	mustRun(t, "--dir", dir, "freeze", "--mode", "replay")
}

func TestRecipeValidate(t *testing.T) {
	dir := newRunDir(t)
	r := runCLI(t, "--dir", dir, "recipe", "validate")
	require.ErrorContains(t, r.err, "does not exist")

	writeFile(t, filepath.Join(dir, rundir.Recipe), recipeFixture)
	writeFile(t, filepath.Join(dir, rundir.Adjust), adjustFixture)
	out := mustRun(t, "--dir", dir, "recipe", "validate", "--adjust", rundir.Adjust)
	require.Equal(t, "recipe "+filepath.Join(dir, rundir.Recipe)+": 3 entries, valid\n"+
		"adjust "+filepath.Join(dir, rundir.Adjust)+": 3 patches, valid; adjusted recipe: 3 entries\n", out)

	bad := filepath.Join(t.TempDir(), "bad.jsonl")
	writeFile(t, bad, recipeFixture+"{oops\n"+`{"at":{"step":1},"module":"cb","op":"set_params","id":"x"}`+"\n")
	r = runCLI(t, "--dir", dir, "recipe", "validate", "--recipe", bad)
	require.ErrorContains(t, r.err, "recipe "+bad+" is invalid (1 problems, listed above)")
	require.Contains(t, r.out, "line 4")

	badAdj := filepath.Join(t.TempDir(), "bad.yaml")
	writeFile(t, badAdj, "version: 1\npatches:\n  - match: {module: opt}\n    frobnicate: true\n")
	r = runCLI(t, "--dir", dir, "recipe", "validate", "--adjust", badAdj)
	require.ErrorContains(t, r.err, "adjust file "+badAdj+" is invalid")
	require.Contains(t, r.out, "frobnicate")
}

func TestPatchTemplate(t *testing.T) {
	dir := newRunDir(t)
	out := mustRun(t, "--dir", dir, "recipe", "patch-template")
	require.Equal(t, rundir.PatchTemplate, out, "no recipe: the template alone")

	writeFile(t, filepath.Join(dir, rundir.Recipe), recipeFixture)
	out = mustRun(t, "--dir", dir, "recipe", "patch-template")
	require.True(t, strings.HasPrefix(out, rundir.PatchTemplate))
	require.Contains(t, out, "  # - match: {module: cb, op: load, id: timing}  # first at step 10\n")
	require.Contains(t, out, "  # - match: {module: opt, op: set_params, id: main}  # first at step 1200\n")
	_, err := rundir.ParseAdjust([]byte(out))
	require.NoError(t, err, "the printed template is a valid adjust file")

	out = mustRun(t, "--dir", dir, "recipe", "patch-template", "--write")
	require.Contains(t, out, "wrote "+filepath.Join(dir, rundir.Adjust))
	_, err = rundir.ReadAdjust(filepath.Join(dir, rundir.Adjust))
	require.NoError(t, err)
	mustRun(t, "--dir", dir, "recipe", "validate", "--adjust", filepath.Join(dir, rundir.Adjust))

	// Never overwrites.
	writeFile(t, filepath.Join(dir, rundir.Adjust), "# mine\n")
	r := runCLI(t, "--dir", dir, "recipe", "patch-template", "--write")
	require.ErrorContains(t, r.err, "exists; not overwritten")
	b, err := os.ReadFile(filepath.Join(dir, rundir.Adjust))
	require.NoError(t, err)
	require.Equal(t, "# mine\n", string(b))

	other := filepath.Join(t.TempDir(), "o.yaml")
	mustRun(t, "--dir", dir, "recipe", "patch-template", "--output", other)
	fi, err := os.Stat(other)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
}
