package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/callback"
	"github.com/hotcb/hotcb/controller"
	"github.com/hotcb/hotcb/rundir"
	"github.com/hotcb/hotcb/torchenv"
)

func TestInit(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "runs", "exp1")
	out := mustRun(t, "--dir", dir, "init")
	cfg, cmds := filepath.Join(dir, rundir.Config), filepath.Join(dir, rundir.Commands)
	require.Equal(t, "created "+cfg+"\ncreated "+cmds+"\n", out)
	for p, mode := range map[string]os.FileMode{dir: 0o700, cfg: 0o600, cmds: 0o600} {
		fi, err := os.Stat(p)
		require.NoError(t, err)
		require.Equal(t, mode, fi.Mode().Perm(), p)
	}
	b, err := os.ReadFile(cmds)
	require.NoError(t, err)
	require.Empty(t, b)

	// A second init leaves both alone.
	writeFile(t, cfg, "version: 1\ncallbacks: {}\n")
	writeFile(t, cmds, `{"op":"enable","id":"x"}`+"\n")
	out = mustRun(t, "--dir", dir, "init")
	require.Equal(t, "exists: "+cfg+" (left unchanged)\nexists: "+cmds+" (left unchanged)\n", out)
	b, _ = os.ReadFile(cfg)
	require.Equal(t, "version: 1\ncallbacks: {}\n", string(b))
	b, _ = os.ReadFile(cmds)
	require.Equal(t, `{"op":"enable","id":"x"}`+"\n", string(b))

	r := runCLI(t, "--dir", cfg, "init")
	require.ErrorContains(t, r.err, "is not a directory")
}

// TestBuiltinsTable: the template's table pairs each registered built-in with its hotcb name.
func TestBuiltinsTable(t *testing.T) {
	for _, b := range builtins {
		_, err := callback.Default.Lookup(b.goPath, b.goSymbol)
		require.NoError(t, err, b.id)
		_, err = callback.Default.Lookup(b.pyPath(), b.pySymbol)
		require.NoError(t, err, b.id)
	}
	require.Empty(t, unlisted(callback.Default.Names()), "built-ins missing from the table in builtins.go")
	require.Equal(t, []string{"x#Y"}, unlisted([]string{"x#Y", "hotcb.modules.cb.callbacks#TimingCallback"}))
	require.Contains(t, configTemplate([]string{"mine/pkg#Thing"}), "#   mine/pkg#Thing\n")
}

// TestConfigTemplate: the hotcb.yaml that init writes parses, loads every listed built-in
// disabled through a controller without an error, and its commented examples parse too.
func TestConfigTemplate(t *testing.T) {
	dir := newRunDir(t)
	cfgPath := filepath.Join(dir, rundir.Config)
	data, err := os.ReadFile(cfgPath)
	require.NoError(t, err)
	specs, err := controller.ParseConfig(data)
	require.NoError(t, err)
	var ids []string
	for _, s := range specs {
		ids = append(ids, s.ID)
		require.False(t, s.Enabled, s.ID)
	}
	for _, b := range builtins {
		require.Contains(t, string(data), "Go: "+b.goPath+"#"+b.goSymbol)
		if b.example {
			require.NotContains(t, ids, b.id)
		} else {
			require.Contains(t, ids, b.id)
		}
	}

	ctl, err := controller.New(controller.Options{ConfigPath: cfgPath, CommandsPath: filepath.Join(dir, rundir.Commands),
		StatusPath: filepath.Join(dir, rundir.Status), PollEveryStep: true, RunDir: dir})
	require.NoError(t, err)
	env := &torchenv.Env{RunDir: dir}
	ctl.Apply(env, torchenv.TrainStepEnd)
	require.Len(t, ctl.LastResults(), len(ids))
	for _, r := range ctl.LastResults() {
		require.Equal(t, controller.Applied, r.Decision, "%+v", r)
	}
	// What init promises: `hotcb enable timing` turns a listed built-in on.
	mustRun(t, "--dir", dir, "enable", "timing")
	env.Step++
	ctl.Apply(env, torchenv.TrainStepEnd)
	require.NoError(t, ctl.Close())
	var st rundir.RunStatus
	b, err := os.ReadFile(filepath.Join(dir, rundir.Status))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(b, &st))
	require.Len(t, st.Callbacks, len(ids))
	for _, cs := range st.Callbacks {
		require.True(t, cs.Loaded, cs.ID)
		require.Equal(t, cs.ID == "timing", cs.Enabled, cs.ID)
		require.Zero(t, cs.Errors, cs.ID)
	}

	// Uncommented, the examples are valid entries too.
	re := regexp.MustCompile(`(?m)^  # `)
	uncommented := re.ReplaceAllString(string(data), "  ")
	uncommented = strings.Replace(uncommented, "  Examples: uncomment to load.", "", 1)
	specs, err = controller.ParseConfig([]byte(uncommented))
	require.NoError(t, err, uncommented)
	require.Len(t, specs, len(ids)+2)
}

func TestVersion(t *testing.T) {
	out := mustRun(t, "version")
	require.Contains(t, out, "hotcb-go "+Version)
	require.Contains(t, out, "libtorch: ")
	require.Contains(t, out, "shim built with CUDA: ")
	var v versionInfo
	require.NoError(t, json.Unmarshal([]byte(mustRun(t, "version", "--json")), &v))
	require.Equal(t, Version, v.Version)
	require.NotEmpty(t, v.Libtorch)
	require.NotEmpty(t, v.Go)
}
