package kernel_test

import (
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
// as ignored, its text as a string), an API op with an infinity fails; every ledger line parses
// and no seq repeats.
func TestNumbersTheLedgerCannotHold(t *testing.T) {
	dir := t.TempDir()
	p := start(t, dir, kernel.Options{})
	var lines []string
	p.env.Log = func(s string) { lines = append(lines, s) }
	appendCmd(t, dir, loadP, `{"op":"set_params","id":"hb","params":{"lr":1e999}}`)
	require.NoError(t, p.k.Submit(ops.Op{Op: ops.OpSetParams, ID: "hb", Params: map[string]any{"lr": math.Inf(1)}}))
	p.steps(1)
	p.stop()
	require.Contains(t, strings.Join(lines, "\n"), `line 2 skipped: params "lr": 1e999 is out of range`)
	es := readLedger(t, dir)
	require.Equal(t, []string{
		"0 cb.load(hb) external applied",
		"0 cb.set_params(hb) external ignored", // with its reason, as any line that is not an op
		`0 cb.set_params(hb) api failed: cb.set_params(hb): params "lr": +Inf cannot be recorded: JSON has no NaN or infinity`,
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
	last := es[len(es)-1]
	require.Equal(t, "restore", last.Source)
	require.Equal(t, "applied", last.Decision)
	require.Contains(t, *last.Notes, "so the captured copy")
	require.Equal(t, "failed", es[len(es)-2].Decision, "the attempt from the original file is on record")
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
