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
	"github.com/hotcb/hotcb/callbacks/spec"
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

// TestBuiltinsTable: the built-ins' names that the template and cb load's checks use (spec.All)
// are exactly what callbacks/all registers under the Go and hotcb prefixes.
func TestBuiltinsTable(t *testing.T) {
	require.Empty(t, unlisted(callback.Default.Names()), "registered built-ins missing from spec.All")
	var registered []string
	for _, n := range callback.Default.Names() {
		if strings.HasPrefix(n, spec.PythonPackage) || strings.HasPrefix(n, spec.GoPackage+"/") {
			registered = append(registered, n)
		}
	}
	var table []string
	for n := range builtinNames() {
		table = append(table, n)
	}
	require.ElementsMatch(t, registered, table)
	require.Len(t, table, 3*len(spec.All))
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
	for _, b := range spec.All {
		require.Contains(t, string(data), "Go: "+b.GoPath()+"#"+b.Name)
		if b.Example {
			require.NotContains(t, ids, b.Hotcb)
		} else {
			require.Contains(t, ids, b.Hotcb)
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

// TestVersion: hotcb's version names hotcb-torch instead of libtorch; with libtorch (Torch) the
// output is the full one, byte for byte as before the split.
func TestVersion(t *testing.T) {
	t.Setenv(TorchEnv, "")
	t.Setenv("PATH", t.TempDir())
	out := mustRun(t, "version")
	require.Contains(t, out, "hotcb-go "+Version)
	require.Contains(t, out, "\nlibtorch: not linked into hotcb (train runs hotcb-torch; 'hotcb version --libtorch' asks it)\n")
	require.Contains(t, out, "\nhotcb-torch: not found: not in ")
	require.NotContains(t, out, "CUDA")
	var v map[string]any
	require.NoError(t, json.Unmarshal([]byte(mustRun(t, "version", "--json")), &v))
	require.Equal(t, Version, v["version"])
	require.NotEmpty(t, v["go"])
	require.NotContains(t, v, "libtorch")
	require.NotContains(t, v, "hotcb_torch")

	fake := filepath.Join(t.TempDir(), "hotcb-torch")
	writeFile(t, fake, "#!/bin/sh\n")
	require.NoError(t, os.Chmod(fake, 0o700))
	t.Setenv(TorchEnv, fake)
	require.Contains(t, mustRun(t, "version"), "\nhotcb-torch: "+fake+"\n")
	require.NoError(t, json.Unmarshal([]byte(mustRun(t, "version", "--json")), &v))
	require.Equal(t, fake, v["hotcb_torch"])

	withTorch := &Torch{Libtorch: func() LibtorchInfo { return LibtorchInfo{Libtorch: "1.13.0", CUDAAvailable: true, CUDADevices: 2} }}
	r := runWith(t, &app{torch: withTorch}, "version")
	require.NoError(t, r.err)
	require.Regexp(t, `^hotcb-go `+regexp.QuoteMeta(Version)+`( \(\S+\))?\ngo:       go\S+ \S+/\S+\nlibtorch: 1\.13\.0\nshim built with CUDA: no\nCUDA available: yes, 2 device\(s\)\n$`, r.out)
	r = runWith(t, &app{torch: withTorch}, "version", "--json")
	require.NoError(t, r.err)
	var full versionInfo
	require.NoError(t, json.Unmarshal([]byte(r.out), &full))
	require.Equal(t, LibtorchInfo{Libtorch: "1.13.0", CUDAAvailable: true, CUDADevices: 2}, *full.LibtorchInfo)
	require.Empty(t, full.TorchBinary)
	// The JSON fields in the order they always had.
	require.Regexp(t, `(?s)"version".*"go".*"platform".*"libtorch".*"shim_built_with_cuda".*"cuda_available".*"cuda_devices"`, r.out)
}

// TestBuiltinsCommand: `hotcb builtins` lists spec.All; with a name, one built-in's load names
// and each param with its default and doc.
func TestBuiltinsCommand(t *testing.T) {
	out := mustRun(t, "builtins")
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	require.Len(t, lines, len(spec.All))
	for i, b := range spec.All {
		require.Equal(t, []string{b.Hotcb, b.Name}, strings.Fields(lines[i])[:2], lines[i])
		require.True(t, strings.HasSuffix(lines[i], b.About), lines[i])
	}

	for _, name := range []string{"anomaly_guard", "AnomalyGuard", "guard"} {
		require.Equal(t, describeBuiltin(spec.AnomalyGuard.Describe()), mustRun(t, "builtins", name))
	}
	out = mustRun(t, "builtins", "timing")
	require.Contains(t, out, "\n  load:  --path hotcb.modules.cb.callbacks.timing --symbol TimingCallback\n")
	require.Contains(t, out, "\n     or  --path github.com/hotcb/hotcb/callbacks/timing --symbol Timing\n")
	require.Contains(t, out, "\n  every: 50  (int, min=1)\n      Every is how many steps apart the summary lines and JSONL records are.\n")
	require.Contains(t, out, "\n  events: [train_step_start, forward_end, backward_end, optimizer_step_end, train_step_end]  ([]string, oneof=")
	for _, line := range strings.Split(out, "\n") {
		if !strings.HasPrefix(line, "  events:") {
			require.LessOrEqual(t, len(line), 96, line)
		}
	}

	r := runCLI(t, "builtins", "stats")
	require.ErrorContains(t, r.err, `no built-in callback "stats"`)
	require.ErrorContains(t, r.err, "timing, heartbeat, system_stats")
	r = runCLI(t, "builtins", "a", "b")
	require.ErrorContains(t, r.err, "at most one name")
}

func TestWrap(t *testing.T) {
	require.Equal(t, "", wrap("  ", "> ", 10))
	require.Equal(t, "> aa bb\n> cc\n", wrap("aa bb cc", "> ", 8))
	require.Equal(t, "> aa\n> longerthanwidth\n> b\n", wrap("aa longerthanwidth b", "> ", 8))
}
