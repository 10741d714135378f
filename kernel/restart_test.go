package kernel_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/callback"
	"github.com/hotcb/hotcb/kernel"
	"github.com/hotcb/hotcb/ops"
	"github.com/hotcb/hotcb/rundir"
	"github.com/hotcb/hotcb/torchenv"
)

// pcb records what reaches it: its params and its calls.
type pcb struct {
	id  string
	log *[]string
}

func (p *pcb) ID() string { return p.id }
func (p *pcb) Handle(ev string, env *torchenv.Env) error {
	*p.log = append(*p.log, fmt.Sprintf("%s@%d", p.id, env.Step))
	return nil
}
func (p *pcb) SetParams(m map[string]any) error {
	b, _ := json.Marshal(m)
	*p.log = append(*p.log, p.id+" params "+string(b))
	return nil
}

// process is one training process on a run directory: a kernel with the test/p callback.
type process struct {
	t   *testing.T
	dir string
	k   *kernel.Kernel
	env *torchenv.Env
	log []string
}

func start(t *testing.T, dir string, opts kernel.Options) *process {
	p := &process{t: t, dir: dir, env: &torchenv.Env{}}
	reg := callback.NewRegistry()
	reg.Register("test/p", "P", func(id string, _ map[string]any) (callback.HotCallback, error) {
		return &pcb{id: id, log: &p.log}, nil
	})
	opts.Controller.Registry, opts.Controller.PollEveryStep, opts.Controller.AllowAnyOwner = reg, true, true
	k, err := kernel.New(dir, opts)
	require.NoError(t, err)
	p.k = k
	return p
}

func (p *process) steps(n int) {
	for i := 0; i < n; i++ {
		p.k.Apply(p.env, torchenv.TrainStepEnd)
		p.env.Step++
	}
}

func (p *process) stop() { require.NoError(p.t, p.k.Close()) }

func appendCmd(t *testing.T, dir string, lines ...string) {
	for _, l := range lines {
		require.NoError(t, rundir.AppendLine(filepath.Join(dir, rundir.Commands), []byte(l)))
	}
}

func readLedger(t *testing.T, dir string) []rundir.LedgerEntry {
	l, err := rundir.ReadLedger(filepath.Join(dir, rundir.Applied))
	require.NoError(t, err)
	require.Empty(t, l.Bad, "every ledger line parses")
	return l.Entries
}

const loadP = `{"module":"cb","op":"load","id":"hb","target":{"kind":"module","path":"test/p","symbol":"P"}}`

// `train; cb set_params …; train`: a command written while no trainer runs applies at the next
// start, once; a third start applies nothing again.
func TestCommandsWrittenWhileStoppedApplyAtTheNextStartOnce(t *testing.T) {
	dir := t.TempDir()
	p1 := start(t, dir, kernel.Options{})
	appendCmd(t, dir, loadP)
	p1.steps(3)
	p1.stop()

	appendCmd(t, dir, `{"op":"set_params","id":"hb","params":{"every":7}}`)
	p2 := start(t, dir, kernel.Options{})
	p2.steps(2)
	p2.stop()
	require.Contains(t, p2.log, `hb params {"every":7}`)

	p3 := start(t, dir, kernel.Options{})
	p3.steps(2)
	p3.stop()
	require.Equal(t, []string{
		"0 cb.load(hb) external applied",
		"0 cb.load(hb) restore applied",
		"0 cb.set_params(hb) external applied",
		"0 cb.load(hb) restore applied",
	}, summary(readLedger(t, dir)))
	require.Equal(t, []string{`hb params {"every":7}`, "hb@0", "hb@1"}, p3.log,
		"the third process restores every=7 in the load and applies no command again")
}

// Six restarts of a run with five set_params and a disable: one restore entry per restart, the
// callback comes back as it was, and the recipe has the original ops only.
func TestRestartsRestoreTheFinalStateNotTheHistory(t *testing.T) {
	dir := t.TempDir()
	p := start(t, dir, kernel.Options{})
	appendCmd(t, dir, loadP)
	for i := 1; i <= 5; i++ {
		appendCmd(t, dir, fmt.Sprintf(`{"op":"set_params","id":"hb","params":{"every":%d,"k%d":true}}`, i, i))
	}
	appendCmd(t, dir, `{"op":"disable","id":"hb"}`)
	p.steps(2)
	p.stop()
	first := len(readLedger(t, dir))
	require.Equal(t, 7, first)
	for r := 0; r < 6; r++ {
		p = start(t, dir, kernel.Options{})
		p.steps(2)
		p.stop()
		require.Equal(t, []string{`hb params {"every":5,"k1":true,"k2":true,"k3":true,"k4":true,"k5":true}`}, p.log,
			"restart %d: one load with the last params, still disabled", r+1)
	}
	es := readLedger(t, dir)
	require.Len(t, es, first+6, "one restore entry per restart")
	for i, e := range es {
		require.Equal(t, int64(i+1), e.Seq, "seq is never reused")
	}
	recipe, err := rundir.ExportRecipe(es)
	require.NoError(t, err)
	require.Len(t, recipe, 7, "recipes never contain restore entries")

	// Enabled again, unloaded, then restarted: nothing is restored.
	p = start(t, dir, kernel.Options{})
	appendCmd(t, dir, `{"op":"enable","id":"hb"}`)
	p.steps(1)
	require.Contains(t, p.log, "hb@0")
	appendCmd(t, dir, `{"op":"unload","id":"hb"}`)
	p.steps(1)
	p.stop()
	p = start(t, dir, kernel.Options{})
	p.steps(2)
	p.stop()
	require.Empty(t, p.log, "an unloaded callback is not loaded again")
}

// An empty ledger (what `hotcb init` leaves) means nothing was applied yet: commands queued
// before the first start are applied (today they were skipped as "applied by the previous
// process").
func TestCommandsQueuedBeforeTheFirstStartAfterInit(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{rundir.Applied, rundir.Commands, rundir.Recipe} {
		require.NoError(t, os.WriteFile(filepath.Join(dir, f), nil, 0o600))
	}
	appendCmd(t, dir, loadP)
	p := start(t, dir, kernel.Options{})
	p.steps(1)
	p.stop()
	require.Equal(t, []string{"hb@0"}, p.log)
}

// A commands file replaced, truncated or rewritten while no trainer ran is read from its start,
// and the kernel says why.
func TestCommandsFileChangedWhileStopped(t *testing.T) {
	for _, c := range []struct {
		name   string
		change func(path string)
		why    string
	}{
		{"replaced", func(path string) {
			require.NoError(t, os.Remove(path))
			pad := strings.Repeat("x", 200) // longer than the old file: only the line check can tell
			appendCmd(t, filepath.Dir(path), `{"op":"set_params","id":"hb","params":{"pad":"`+pad+`"}}`, `{"op":"set_params","id":"hb","params":{"every":3}}`)
		}, "rewritten or replaced"},
		{"truncated", func(path string) {
			require.NoError(t, os.Truncate(path, 0))
			appendCmd(t, filepath.Dir(path), `{"op":"set_params","id":"hb","params":{"every":3}}`)
		}, "shorter than the"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			p := start(t, dir, kernel.Options{})
			appendCmd(t, dir, loadP, `{"op":"set_params","id":"hb","params":{"every":1}}`)
			p.steps(1)
			p.stop()
			c.change(filepath.Join(dir, rundir.Commands))
			var lines []string
			p = start(t, dir, kernel.Options{})
			p.env.Log = func(s string) { lines = append(lines, s) }
			p.steps(1)
			p.stop()
			require.Contains(t, p.log, `hb params {"every":3}`)
			require.Contains(t, strings.Join(lines, "\n"), c.why)
		})
	}
}

// The YAML, unchanged since the previous process reconciled it, does not undo what commands
// did on top of it; changed while no trainer ran, it is reconciled as any edit is.
func TestRestartKeepsCommandsOnTopOfAnUnchangedYAML(t *testing.T) {
	dir := t.TempDir()
	yaml := filepath.Join(dir, rundir.Config)
	require.NoError(t, os.WriteFile(yaml, []byte("version: 1\ncallbacks:\n  hb: {enabled: false, target: {kind: module, path: test/p, symbol: P}}\n"), 0o600))
	p := start(t, dir, kernel.Options{})
	p.steps(1)
	appendCmd(t, dir, `{"op":"enable","id":"hb"}`)
	p.steps(1)
	p.stop()
	require.Equal(t, []string{"hb@1"}, p.log)

	p = start(t, dir, kernel.Options{})
	p.steps(1)
	p.stop()
	require.Equal(t, []string{"hb@0"}, p.log, "still enabled: the YAML did not change")

	require.NoError(t, os.WriteFile(yaml, []byte("version: 1\ncallbacks:\n  hb: {enabled: false, target: {kind: module, path: test/p, symbol: P}, params: {every: 4}}\n"), 0o600))
	p = start(t, dir, kernel.Options{})
	p.steps(1)
	p.stop()
	require.Equal(t, []string{`hb params {"every":4}`}, p.log, "the edited YAML is reconciled: disabled, params set")

	p = start(t, dir, kernel.Options{NoRestore: true})
	p.steps(1)
	p.stop()
	require.Equal(t, []string{`hb params {"every":4}`}, p.log, "--no-restore: the YAML alone sets the state")
}

// One training process per run directory: a second one is refused with the holder's pid.
func TestRunDirectoryHasOneTrainer(t *testing.T) {
	dir := t.TempDir()
	p := start(t, dir, kernel.Options{})
	_, err := kernel.New(dir, kernel.Options{})
	require.ErrorContains(t, err, fmt.Sprintf("in use by another training process (pid %d)", os.Getpid()))
	p.stop()
	p = start(t, dir, kernel.Options{})
	p.stop()
}

// Numbers JSON cannot carry never reach the ledger: a command with 1e999 is a bad line (recorded
// as ignored, its text as a string), an API op with an infinity is refused by Submit; every
// ledger line parses and no seq repeats.
func TestNumbersTheLedgerCannotHold(t *testing.T) {
	dir := t.TempDir()
	p := start(t, dir, kernel.Options{})
	var lines []string
	p.env.Log = func(s string) { lines = append(lines, s) }
	appendCmd(t, dir, loadP, `{"op":"set_params","id":"hb","params":{"lr":1e999}}`)
	require.EqualError(t, p.k.Submit(ops.Op{Op: ops.OpSetParams, ID: "hb", Params: map[string]any{"lr": math.Inf(1)}}),
		`cb.set_params(hb): params "lr": +Inf cannot be recorded: JSON has no NaN or infinity`)
	p.steps(1)
	p.stop()
	require.Contains(t, strings.Join(lines, "\n"), `line 2 skipped: params "lr": 1e999 is out of range`)
	es := readLedger(t, dir)
	require.Equal(t, []string{
		"0 cb.load(hb) external applied",
		"0 cb.set_params(hb) external ignored", // with its reason, as any line that is not an op
	}, summary(es))
	require.NotContains(t, strings.Join(p.log, "\n"), "params", "the failed op changed nothing")
}

// A restored go_file callback whose file is gone comes back from its captured copy.
func TestRestoreFallsBackToTheCapturedSource(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(t.TempDir(), "cb.go")
	require.NoError(t, os.WriteFile(src, []byte(`package cbs

import "github.com/hotcb/hotcb/torchenv"

type C struct {
	Id string `+"`hotcb:\"id\"`"+`
}

func (c *C) ID() string { return c.Id }
func (c *C) Handle(event string, env *torchenv.Env) error {
	env.Logf("gofile-cb %d", env.Step)
	return nil
}
func (c *C) SetParams(params map[string]any) error { return nil }
`), 0o600))
	p := start(t, dir, kernel.Options{})
	appendCmd(t, dir, fmt.Sprintf(`{"op":"load","id":"g","target":{"kind":"go_file","path":%q,"symbol":"C"}}`, src))
	p.steps(1)
	p.stop()
	require.NoError(t, os.Remove(src))

	var lines []string
	p = start(t, dir, kernel.Options{})
	p.env.Log = func(s string) { lines = append(lines, s) }
	p.steps(1)
	p.stop()
	require.Contains(t, lines, "gofile-cb 0")
	es := readLedger(t, dir)
	require.Len(t, es, 2)
	last := es[len(es)-1]
	require.Equal(t, "restore", last.Source)
	require.Equal(t, "applied", last.Decision)
	require.Contains(t, *last.Notes, "is loaded from its captured copy")
}

// A go_file callback stuck in Handle is abandoned and disabled, the ledger says so, and a restart
// restores it disabled instead of loading it into the same hang.
func TestAbandonedCallbackStaysDisabledAcrossRestarts(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(t.TempDir(), "spin.go")
	require.NoError(t, os.WriteFile(src, []byte(`package spin

import "github.com/hotcb/hotcb/torchenv"

type Spin struct {
	Id string `+"`hotcb:\"id\"`"+`
}

func (s *Spin) ID() string { return s.Id }
func (s *Spin) Handle(event string, env *torchenv.Env) error {
	for {
	}
}
func (s *Spin) SetParams(params map[string]any) error { return nil }
`), 0o600))
	opts := kernel.Options{}
	opts.Controller.StuckAfter, opts.Controller.AbandonAfter = 20*time.Millisecond, 100*time.Millisecond
	p := start(t, dir, opts)
	appendCmd(t, dir, fmt.Sprintf(`{"op":"load","id":"spin","target":{"kind":"go_file","path":%q,"symbol":"Spin"}}`, src))
	p.steps(3)
	p.stop()
	es := readLedger(t, dir)
	require.Equal(t, []string{"0 cb.load(spin) external applied", "0 cb.disable(spin) watchdog applied"}, summary(es))
	require.Contains(t, *es[1].Notes, "Handle(train_step_end) made at step 0 did not return in")
	recipe, err := rundir.ExportRecipe(es)
	require.NoError(t, err)
	require.Len(t, recipe, 1, "the watchdog's disable is not an op to replay")

	p = start(t, dir, opts)
	t0 := time.Now()
	p.steps(3)
	p.stop()
	require.Less(t, time.Since(t0), 5*time.Second)
	es = readLedger(t, dir)
	require.Equal(t, "0 cb.load(spin) restore applied", summary(es)[2])
	require.Equal(t, false, es[2].Payload["enabled"], "restored disabled")
	require.Len(t, es, 3, "and never abandoned again")
}

// A process killed while it wrote the status file left a temporary file: the next one removes it.
func TestStaleStatusTempIsRemoved(t *testing.T) {
	dir := t.TempDir()
	stale := filepath.Join(dir, ".hotcb.status.json.tmp123456")
	require.NoError(t, os.WriteFile(stale, []byte("{"), 0o600))
	p := start(t, dir, kernel.Options{})
	p.steps(1)
	p.stop()
	require.NoFileExists(t, stale)
	require.FileExists(t, filepath.Join(dir, rundir.Status))
}

// versioned is a go_file callback that logs "<version> <step>" at each event.
func versioned(version string) string {
	return `package vcb

import "github.com/hotcb/hotcb/torchenv"

type V struct {
	Id string ` + "`hotcb:\"id\"`" + `
}

func (c *V) ID() string { return c.Id }
func (c *V) Handle(event string, env *torchenv.Env) error {
	env.Logf("` + version + ` %d", env.Step)
	return nil
}
func (c *V) SetParams(params map[string]any) error { return nil }
`
}

const brokenSrc = "package vcb\n\nfunc (\n"

// edit rewrites a go_file source, a little later than its last write so that its mtime changes.
func edit(t *testing.T, path, src string) {
	time.Sleep(5 * time.Millisecond)
	require.NoError(t, os.WriteFile(path, []byte(src), 0o600))
}

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

func loadGoFile(path string) string {
	return fmt.Sprintf(`{"op":"load","id":"g","target":{"kind":"go_file","path":%q,"symbol":"V"}}`, path)
}

// callbackLines collects what callbacks log, without the controller's "[hotcb]" lines.
func callbackLines(lines *[]string) func(string) {
	return func(s string) {
		if !strings.HasPrefix(s, "[hotcb] ") {
			*lines = append(*lines, s)
		}
	}
}

func captureSHA(t *testing.T, e rundir.LedgerEntry) string {
	sc, ok := e.Payload["source_capture"].(map[string]any)
	require.True(t, ok, "seq %d has a source_capture: %v", e.Seq, e.Payload)
	return sc["sha256"].(string)
}

// Every hot reload of a go_file is a ledger entry — a load from the watcher with the new
// version's sha256, or a failed one with the error — and the recipe keeps the applied ones: a
// replay loads v1, then v2 at the step the file changed, from the captured copies.
func TestHotReloadsAreInTheLedgerAndReplayed(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(t.TempDir(), "v.go")
	require.NoError(t, os.WriteFile(src, []byte(versioned("v1")), 0o600))
	p := start(t, dir, kernel.Options{})
	var lines []string
	p.env.Log = callbackLines(&lines)
	appendCmd(t, dir, loadGoFile(src))
	p.steps(3)
	edit(t, src, versioned("v2"))
	p.steps(3)
	edit(t, src, brokenSrc)
	p.steps(1)
	p.stop()
	require.Equal(t, []string{"v1 0", "v1 1", "v1 2", "v2 3", "v2 4", "v2 5", "v2 6"}, lines, "the broken edit leaves v2 running")

	es := readLedger(t, dir)
	require.Len(t, es, 3)
	require.Equal(t, []string{"0 cb.load(g) external applied", "3 cb.load(g) watch applied"}, summary(es[:2]))
	require.Equal(t, sha(versioned("v1")), captureSHA(t, es[0]))
	require.Equal(t, sha(versioned("v2")), captureSHA(t, es[1]))
	require.Equal(t, src, es[1].Payload["target"].(map[string]any)["path"])
	require.Equal(t, true, es[1].Payload["enabled"])
	failed := es[2]
	require.Equal(t, "6 cb.load(g) watch failed", strings.SplitN(summary(es[2:])[0], ":", 2)[0])
	require.Equal(t, sha(brokenSrc), captureSHA(t, failed), "the failed version's sha256")
	require.Contains(t, *failed.Error, src+":3:")
	require.Contains(t, *failed.Error, "the previous version keeps running: sha256 "+sha(versioned("v2")))

	recipe, err := rundir.ExportRecipe(es)
	require.NoError(t, err)
	require.Len(t, recipe, 2, "the failed reload changed nothing: it is not replayed")
	require.Equal(t, int64(3), recipe[1].At.Step)
	require.Equal(t, sha(versioned("v2")), recipe[1].SourceCapture.SHA256)

	// The replay runs in a new run directory while the file holds yet another version.
	edit(t, src, versioned("v3"))
	dir2 := t.TempDir()
	require.NoError(t, rundir.WriteRecipe(filepath.Join(dir2, rundir.Recipe), recipe))
	require.NoError(t, os.WriteFile(filepath.Join(dir2, rundir.Freeze), []byte(`{"mode":"replay","policy":"strict"}`), 0o600))
	p2 := start(t, dir2, kernel.Options{})
	lines = nil
	p2.env.Log = callbackLines(&lines)
	p2.steps(6)
	p2.stop()
	require.Equal(t, []string{"v1 0", "v1 1", "v1 2", "v2 3", "v2 4", "v2 5"}, lines)
	require.Equal(t, []string{"0 cb.load(g) replay applied", "3 cb.load(g) replay applied"}, summary(readLedger(t, dir2)))
}

// A restart restores the version of a go_file that ran last — the one a hot reload loaded, not
// the first — from its captured copy, and watches the file again: an edit made while no process
// ran is loaded at the first safe point and recorded as a reload, and so is one made later.
func TestRestartRestoresTheReloadedVersionAndWatchesItsFile(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(t.TempDir(), "v.go")
	require.NoError(t, os.WriteFile(src, []byte(versioned("v1")), 0o600))
	p := start(t, dir, kernel.Options{})
	appendCmd(t, dir, loadGoFile(src))
	p.steps(2)
	edit(t, src, versioned("v2"))
	p.steps(2)
	p.stop()

	var lines []string
	p = start(t, dir, kernel.Options{})
	p.env.Log = callbackLines(&lines)
	p.steps(2)
	edit(t, src, versioned("v3"))
	p.steps(2)
	p.stop()
	require.Equal(t, []string{"v2 0", "v2 1", "v3 2", "v3 3"}, lines, "v2 restored, v3 reloaded after the restart")
	es := readLedger(t, dir)
	require.Equal(t, []string{"0 cb.load(g) external applied", "2 cb.load(g) watch applied",
		"0 cb.load(g) restore applied", "2 cb.load(g) watch applied"}, summary(es))
	require.Equal(t, sha(versioned("v2")), captureSHA(t, es[2]), "the restore is the reloaded version")
	require.Equal(t, src, es[2].Payload["target"].(map[string]any)["path"], "its target is still the file")
	require.Contains(t, *es[2].Notes, "sha256 "+sha(versioned("v2"))+") is loaded from its captured copy")
	require.Contains(t, *es[2].Notes, src+" is watched again")
	require.Equal(t, sha(versioned("v3")), captureSHA(t, es[3]))

	// Edited while no process runs: the restore loads v3, which ran last, then the edit reloads.
	edit(t, src, versioned("v4"))
	lines = nil
	p = start(t, dir, kernel.Options{})
	p.env.Log = callbackLines(&lines)
	p.steps(2)
	p.stop()
	require.Equal(t, []string{"v4 0", "v4 1"}, lines)
	es = readLedger(t, dir)
	require.Equal(t, []string{"0 cb.load(g) restore applied", "0 cb.load(g) watch applied"}, summary(es[4:]))
	require.Equal(t, sha(versioned("v3")), captureSHA(t, es[4]))
	require.Equal(t, sha(versioned("v4")), captureSHA(t, es[5]))
}

// An edit that fails to load leaves the running version in place, and a restart restores that
// version — the last that loaded — not the broken file, and says so; the broken version is not
// tried again until the file changes, and fixing it then reloads.
func TestRestartAfterAFailedReloadRestoresTheLastGoodVersion(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(t.TempDir(), "v.go")
	require.NoError(t, os.WriteFile(src, []byte(versioned("v1")), 0o600))
	p := start(t, dir, kernel.Options{})
	appendCmd(t, dir, loadGoFile(src))
	p.steps(1)
	edit(t, src, versioned("v2"))
	p.steps(1)
	edit(t, src, brokenSrc)
	p.steps(1)
	p.stop()

	var lines []string
	p = start(t, dir, kernel.Options{})
	p.env.Log = callbackLines(&lines)
	p.steps(2)
	edit(t, src, versioned("v3"))
	p.steps(1)
	p.stop()
	require.Equal(t, []string{"v2 0", "v2 1", "v3 2"}, lines)
	es := readLedger(t, dir)
	require.Equal(t, []string{"0 cb.load(g) restore applied", "2 cb.load(g) watch applied"}, summary(es[3:]),
		"the broken file is not loaded again at the restart")
	require.Equal(t, "failed", es[2].Decision)
	require.Equal(t, sha(versioned("v2")), captureSHA(t, es[3]))
	require.Contains(t, *es[3].Notes, fmt.Sprintf("the last version that loaded: the edit of %s with sha256 %s failed to load (ledger seq 3)", src, sha(brokenSrc)))
	require.Equal(t, sha(versioned("v3")), captureSHA(t, es[4]))
}

// A restored go_file whose captured copy is gone is loaded from its file as it is now.
func TestRestoreWithoutTheCaptureLoadsTheFile(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(t.TempDir(), "v.go")
	require.NoError(t, os.WriteFile(src, []byte(versioned("v1")), 0o600))
	p := start(t, dir, kernel.Options{})
	appendCmd(t, dir, loadGoFile(src))
	p.steps(1)
	p.stop()
	require.NoError(t, os.RemoveAll(filepath.Join(dir, rundir.Sources)))
	edit(t, src, versioned("v2"))

	var lines []string
	p = start(t, dir, kernel.Options{})
	p.env.Log = callbackLines(&lines)
	p.steps(1)
	edit(t, src, versioned("v3"))
	p.steps(1)
	p.stop()
	require.Equal(t, []string{"v2 0", "v3 1"}, lines, "loaded from the file, which is watched")
	es := readLedger(t, dir)
	require.Equal(t, []string{"0 cb.load(g) restore failed", "0 cb.load(g) restore applied", "1 cb.load(g) watch applied"},
		summaryNoErr(es[1:]))
	require.Contains(t, *es[2].Notes, "could not be loaded")
}

// A go_file loaded by a replay ran from its captured copy: a restart restores that copy and does
// not start watching the original file.
func TestRestartOfAReplayDoesNotWatchTheOriginalFile(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(t.TempDir(), "v.go")
	require.NoError(t, os.WriteFile(src, []byte(versioned("v1")), 0o600))
	p := start(t, dir, kernel.Options{})
	appendCmd(t, dir, loadGoFile(src))
	p.steps(1)
	p.stop()
	recipe, err := rundir.ExportRecipe(readLedger(t, dir))
	require.NoError(t, err)
	dir2 := t.TempDir()
	require.NoError(t, rundir.WriteRecipe(filepath.Join(dir2, rundir.Recipe), recipe))
	require.NoError(t, os.WriteFile(filepath.Join(dir2, rundir.Freeze), []byte(`{"mode":"replay","policy":"strict"}`), 0o600))
	p = start(t, dir2, kernel.Options{})
	p.steps(1)
	p.stop()

	require.NoError(t, os.Remove(filepath.Join(dir2, rundir.Freeze))) // the replay is over
	edit(t, src, versioned("v2"))
	var lines []string
	p = start(t, dir2, kernel.Options{})
	p.env.Log = callbackLines(&lines)
	p.steps(2)
	p.stop()
	require.Equal(t, []string{"v1 0", "v1 1"}, lines)
	es := readLedger(t, dir2)
	require.Equal(t, "0 cb.load(g) restore applied", summary(es)[len(es)-1])
	require.NotContains(t, *es[len(es)-1].Notes, "watched")
}

func summaryNoErr(es []rundir.LedgerEntry) []string {
	out := summary(es)
	for i, s := range out {
		out[i], _, _ = strings.Cut(s, ":")
	}
	return out
}

// A go_file callback whose Handle panics is disabled: the status' last_error and the ledger's
// disable (source auto_disable) name the file and line; the recipe leaves the disable out, and a
// restart restores the callback disabled, as it was.
func TestPanickingGoFileIsDisabledWithItsLine(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(t.TempDir(), "boom.go")
	require.NoError(t, os.WriteFile(src, []byte(`package boom

import "github.com/hotcb/hotcb/torchenv"

type V struct {
	Id    string `+"`hotcb:\"id\"`"+`
	seen map[int64]bool
}

func (c *V) ID() string { return c.Id }
func (c *V) Handle(event string, env *torchenv.Env) error {
	if env.Step == 2 {
		c.seen[env.Step] = true
	}
	return nil
}
func (c *V) SetParams(params map[string]any) error { return nil }
`), 0o600))
	p := start(t, dir, kernel.Options{})
	appendCmd(t, dir, fmt.Sprintf(`{"op":"load","id":"g","target":{"kind":"go_file","path":%q,"symbol":"V"}}`, src))
	p.steps(4)
	st := p.k.Controller().Status()
	require.Len(t, st.Callbacks, 1)
	require.Contains(t, st.Callbacks[0].LastError, "boom.go:13 in (*V).Handle: assignment to entry in nil map")
	require.Equal(t, int64(2), st.Callbacks[0].LastErrorStep)
	require.False(t, st.Callbacks[0].Enabled)
	p.stop()

	es := readLedger(t, dir)
	require.Equal(t, []string{"0 cb.load(g) external applied", "2 cb.disable(g) auto_disable applied"}, summary(es))
	require.Equal(t, fmt.Sprintf("disabled after an error in train_step_end at step 2: panic at %s:13 in (*V).Handle: assignment to entry in nil map", src), *es[1].Notes)
	recipe, err := rundir.ExportRecipe(es)
	require.NoError(t, err)
	require.Len(t, recipe, 1, "a replay disables it on its own if it panics again")

	var lines []string
	p = start(t, dir, kernel.Options{})
	p.env.Log = func(s string) { lines = append(lines, s) }
	p.steps(4)
	p.stop()
	es = readLedger(t, dir)
	require.Len(t, es, 3, "restored, and not failing again: %v", summary(es))
	require.Equal(t, "0 cb.load(g) restore applied", summary(es)[2])
	require.Equal(t, false, es[2].Payload["enabled"], "restored disabled")
}
