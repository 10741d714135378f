package kernel_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/bridge/optim"
	"github.com/hotcb/hotcb/callback"
	"github.com/hotcb/hotcb/controller"
	"github.com/hotcb/hotcb/kernel"
	"github.com/hotcb/hotcb/rundir"
	"github.com/hotcb/hotcb/torchenv"
)

type rec struct {
	id     string
	events *[]string
}

func (r rec) ID() string { return r.id }
func (r rec) Handle(ev string, env *torchenv.Env) error {
	*r.events = append(*r.events, fmt.Sprintf("%s:%s@%d", r.id, ev, env.Step))
	return nil
}
func (r rec) SetParams(map[string]any) error { return nil }

type run struct {
	t      *testing.T
	dir    string
	k      *kernel.Kernel
	env    *torchenv.Env
	events []string
	opt    *optim.Optimizer
	w      *bridge.Tensor
}

func newRun(t *testing.T, dir string) *run {
	r := &run{t: t, dir: dir}
	reg := callback.NewRegistry()
	reg.Register("test/rec", "Rec", func(id string, _ map[string]any) (callback.HotCallback, error) {
		return rec{id: id, events: &r.events}, nil
	})
	k, err := kernel.New(dir, kernel.Options{Controller: controller.Options{Registry: reg, PollEveryStep: true, AllowAnyOwner: true}})
	require.NoError(t, err)
	r.k = k
	r.w = bridge.Ones(bridge.Shape{2}).SetRequiresGrad(true)
	r.opt, err = optim.NewSGD(optim.Params(r.w), optim.SGDOptions{LR: 0.1})
	require.NoError(t, err)
	k.RegisterOptimizer("main", r.opt)
	r.env = &torchenv.Env{}
	return r
}

func (r *run) cmd(lines ...string) {
	for _, l := range lines {
		require.NoError(r.t, rundir.AppendLine(filepath.Join(r.dir, rundir.Commands), []byte(l)))
	}
}

// step does one SGD step of w (grad = 1 everywhere) and a safe point.
func (r *run) step() {
	r.w.Sum().Backward()
	r.opt.Step()
	r.opt.ZeroGrad()
	r.k.Apply(r.env, torchenv.TrainStepEnd)
	r.env.Step++
}

func (r *run) ledger() []rundir.LedgerEntry {
	es, bad, err := rundir.ReadJSONL[rundir.LedgerEntry](filepath.Join(r.dir, rundir.Applied))
	require.NoError(r.t, err)
	require.Empty(r.t, bad)
	return es
}

func summary(es []rundir.LedgerEntry) []string {
	var out []string
	for _, e := range es {
		id := ""
		if e.ID != nil {
			id = *e.ID
		}
		s := fmt.Sprintf("%d %s.%s(%s) %s %s", e.Step, e.Module, e.Op, id, e.Source, e.Decision)
		if e.Error != nil {
			s += ": " + *e.Error
		}
		out = append(out, s)
	}
	return out
}

const loadRec = `{"module":"cb","op":"load","id":"r","target":{"kind":"module","path":"test/rec","symbol":"Rec"}}`

func TestRoutingAndLedger(t *testing.T) {
	r := newRun(t, t.TempDir())
	defer r.k.Close()
	r.step()
	r.cmd(loadRec,
		`{"op":"disable","id":"ghost"}`,
		`{"module":"opt","op":"set_params","id":"main","params":{"lr":0.5}}`,
		`{"module":"opt","op":"set_params","params":{"lr":-1}}`,
		`{"module":"opt","op":"disable","id":"main"}`,
		`{"module":"opt","op":"set_params","id":"other","params":{"lr":1}}`,
		`{"module":"loss","op":"set_params","id":"main","params":{"w":1}}`,
		`{"module":"cb","op":"load","id":"r","target":{"kind":"module","path":"test/rec","symbol":"Rec"}}`,
	)
	r.step() // the ops apply at this safe point
	before := r.w.Float32s()[0]
	r.step()
	after := r.w.Float32s()[0]
	require.InDelta(t, 0.5, before-after, 1e-6, "the next optimizer step uses the new lr")
	got := summary(r.ledger())
	require.Equal(t, []string{
		"1 cb.load(r) external applied",
		`1 cb.disable(ghost) external failed: unknown callback id "ghost" (known: r)`,
		"1 opt.set_params(main) external applied",
		`1 opt.set_params() external failed: opt set_params main: optim: hyper-parameter "lr": must be >= 0, got -1`,
		"1 opt.disable(main) external failed: opt disable: an optimizer cannot be enabled or disabled; change its params (e.g. lr=0) with set_params",
		`1 opt.set_params(other) external failed: no optimizer "other" (registered: main)`,
		`1 loss.set_params(main) external failed: no loss is registered with the kernel (the loop calls RegisterLoss("main", l); hotcb: missing_mutable_state)`,
		"1 cb.load(r) external skipped_noop",
	}, got)
	es := r.ledger()
	for i, e := range es {
		require.Equal(t, int64(i+1), e.Seq)
		require.Equal(t, "train_step_end", e.Event)
		require.NotNil(t, e.Epoch)
	}
	require.Equal(t, map[string]any{"lr": 0.5}, es[2].Payload["params"])
	require.Equal(t, []string{"r:train_step_end@1", "r:train_step_end@2"}, r.events)
	info, err := os.Stat(filepath.Join(r.dir, rundir.Applied))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), info.Mode().Perm())
}

func TestFreezeProd(t *testing.T) {
	r := newRun(t, t.TempDir())
	defer r.k.Close()
	r.cmd(`{"module":"core","op":"freeze","mode":"prod"}`, loadRec)
	r.step()
	require.Equal(t, []string{"0 core.freeze() external applied", "0 cb.load(r) external ignored_freeze"}, summary(r.ledger()))
	f, err := rundir.ReadFreeze(filepath.Join(r.dir, rundir.Freeze))
	require.NoError(t, err)
	require.Equal(t, "prod", f.Mode)
	// unfreeze through the file, as the CLI does
	require.NoError(t, os.WriteFile(filepath.Join(r.dir, rundir.Freeze), []byte(`{"mode":"off"}`), 0o600))
	r.cmd(loadRec)
	r.step()
	require.Equal(t, "1 cb.load(r) external applied", summary(r.ledger())[2])
}

// TestReplayReproducesARun records a run, exports its recipe, and replays it in a fresh run dir:
// the same ops apply at the same steps, and external commands are ignored.
func TestReplayReproducesARun(t *testing.T) {
	dir1 := t.TempDir()
	r1 := newRun(t, dir1)
	for i := 0; i < 10; i++ {
		switch i {
		case 2:
			r1.cmd(loadRec)
		case 5:
			r1.cmd(`{"module":"opt","op":"set_params","id":"main","params":{"lr":0.05}}`, `{"op":"disable","id":"r"}`)
		case 7:
			r1.cmd(`{"op":"enable","id":"r"}`)
		}
		r1.step()
	}
	require.NoError(t, r1.k.Close())
	recipe, err := rundir.ExportRecipe(r1.ledger())
	require.NoError(t, err)
	require.Len(t, recipe, 4)

	for _, offset := range []int64{0, 3} {
		t.Run(fmt.Sprint("offset ", offset), func(t *testing.T) {
			dir2 := t.TempDir()
			require.NoError(t, rundir.WriteRecipe(filepath.Join(dir2, rundir.Recipe), recipe))
			fz, _ := json.Marshal(rundir.FreezeState{Mode: "replay", Policy: "strict", StepOffset: offset})
			require.NoError(t, os.WriteFile(filepath.Join(dir2, rundir.Freeze), fz, 0o600))
			r2 := newRun(t, dir2)
			r2.cmd(`{"op":"disable","id":"r"}`) // ignored while replaying
			for i := int64(0); i < 10+offset; i++ {
				r2.step()
			}
			require.NoError(t, r2.k.Close())
			var replayed []string
			for _, e := range r2.ledger() {
				if e.Source == "replay" {
					replayed = append(replayed, fmt.Sprintf("%d %s.%s", e.Step-offset, e.Module, e.Op))
				} else {
					require.Equal(t, "ignored_replay", e.Decision)
				}
			}
			var original []string
			for _, e := range r1.ledger() {
				original = append(original, fmt.Sprintf("%d %s.%s", e.Step, e.Module, e.Op))
			}
			require.Equal(t, original, replayed)
			require.Equal(t, r1.events, shift(r2.events, offset), "the callback saw the same events at the same (shifted) steps")
		})
	}
}

func shift(events []string, offset int64) []string {
	var out []string
	for _, e := range events {
		var id, ev string
		var step int64
		parts := strings.SplitN(e, "@", 2)
		fmt.Sscan(parts[1], &step)
		idev := strings.SplitN(parts[0], ":", 2)
		id, ev = idev[0], idev[1]
		out = append(out, fmt.Sprintf("%s:%s@%d", id, ev, step-offset))
	}
	return out
}

func TestStrictAndBestEffortMissedEntries(t *testing.T) {
	for _, policy := range []string{"strict", "best_effort"} {
		t.Run(policy, func(t *testing.T) {
			dir := t.TempDir()
			recipe := []rundir.RecipeEntry{
				{At: rundir.At{Step: 1, Event: "train_step_end"}, Module: "opt", Op: "set_params", ID: "main", Params: map[string]any{"lr": 0.2}},
				{At: rundir.At{Step: 50, Event: "train_step_end"}, Module: "opt", Op: "set_params", ID: "main", Params: map[string]any{"lr": 0.3}},
			}
			require.NoError(t, rundir.WriteRecipe(filepath.Join(dir, rundir.Recipe), recipe))
			fz, _ := json.Marshal(rundir.FreezeState{Mode: "replay", Policy: policy})
			require.NoError(t, os.WriteFile(filepath.Join(dir, rundir.Freeze), fz, 0o600))
			r := newRun(t, dir)
			for i := 0; i < 3; i++ {
				r.step()
			}
			err := r.k.Close()
			if policy == "strict" {
				require.ErrorContains(t, err, "strict replay: 1 recipe entries were not applied: opt.set_params(main)@50/train_step_end")
			} else {
				require.NoError(t, err)
			}
			last := r.ledger()[len(r.ledger())-1]
			require.Equal(t, "failed", last.Decision)
			require.Contains(t, *last.Notes, "missed: recipe step 50")
		})
	}
}

func TestReplayAdjusted(t *testing.T) {
	dir := t.TempDir()
	recipe := []rundir.RecipeEntry{
		{At: rundir.At{Step: 1, Event: "train_step_end"}, Module: "opt", Op: "set_params", ID: "main", Params: map[string]any{"lr": 0.2}},
	}
	require.NoError(t, rundir.WriteRecipe(filepath.Join(dir, rundir.Recipe), recipe))
	require.NoError(t, os.WriteFile(filepath.Join(dir, rundir.Adjust), []byte(`version: 1
patches:
  - match: {module: opt, op: set_params}
    transform_params: {scale: {lr: 2}}
  - match: {module: opt, at_step: 1}
    shift_step: 2
  - insert:
      at: {step: 1, event: train_step_end}
      module: cb
      op: load
      id: r
      target: {kind: module, path: test/rec, symbol: Rec}
`), 0o600))
	adj := rundir.Adjust
	fz, _ := json.Marshal(rundir.FreezeState{Mode: "replay_adjusted", AdjustPath: &adj, Policy: "strict"})
	require.NoError(t, os.WriteFile(filepath.Join(dir, rundir.Freeze), fz, 0o600))
	r := newRun(t, dir)
	for i := 0; i < 5; i++ {
		r.step()
	}
	require.NoError(t, r.k.Close())
	require.Equal(t, []string{"1 cb.load(r) replay applied", "3 opt.set_params(main) replay applied"}, summary(r.ledger()))
	require.InDelta(t, 0.4, r.ledger()[1].Payload["params"].(map[string]any)["lr"], 1e-12)
}

func TestGoFileReplayFromCapture(t *testing.T) {
	dir1 := t.TempDir()
	src := filepath.Join(t.TempDir(), "cb.go")
	require.NoError(t, os.WriteFile(src, []byte(`package x

import "github.com/hotcb/hotcb/torchenv"

type C struct{ Name string `+"`hotcb:\"id\"`"+` }

func (c *C) ID() string                                 { return c.Name }
func (c *C) Handle(ev string, env *torchenv.Env) error  { env.Logf("captured-callback %d", env.Step); return nil }
func (c *C) SetParams(p map[string]any) error           { return nil }
`), 0o600))
	r1 := newRun(t, dir1)
	r1.cmd(`{"module":"cb","op":"load","id":"g","target":{"kind":"python_file","path":"` + src + `","symbol":"C"}}`)
	r1.step()
	require.NoError(t, r1.k.Close())
	entry := r1.ledger()[0]
	require.Equal(t, "applied", entry.Decision)
	sc := entry.Payload["source_capture"].(map[string]any)
	require.FileExists(t, sc["captured_path"].(string))

	recipe, err := rundir.ExportRecipe(r1.ledger())
	require.NoError(t, err)
	require.NoError(t, os.Remove(src))
	dir2 := t.TempDir()
	require.NoError(t, rundir.WriteRecipe(filepath.Join(dir2, rundir.Recipe), recipe))
	require.NoError(t, os.WriteFile(filepath.Join(dir2, rundir.Freeze), []byte(`{"mode":"replay","policy":"strict"}`), 0o600))
	r2 := newRun(t, dir2)
	var lines []string
	r2.env.Log = func(s string) { lines = append(lines, s) }
	r2.step()
	r2.step()
	require.NoError(t, r2.k.Close())
	require.Equal(t, "applied", r2.ledger()[0].Decision, "%v", r2.ledger()[0].Error)
	require.Contains(t, lines, "captured-callback 1", "the captured source runs although the original is gone")
}

func TestRestartContinuesSeqAndRestoresCallbacks(t *testing.T) {
	dir := t.TempDir()
	r1 := newRun(t, dir)
	r1.cmd(loadRec, `{"module":"opt","op":"set_params","id":"main","params":{"lr":0.3}}`)
	r1.step()
	require.NoError(t, r1.k.Close())
	// a crash in the middle of a ledger write leaves a partial last line
	f, err := os.OpenFile(filepath.Join(dir, rundir.Applied), os.O_WRONLY|os.O_APPEND, 0o600)
	require.NoError(t, err)
	f.WriteString(`{"seq":99,"step":`)
	f.Close()

	r2 := newRun(t, dir)
	r2.step()
	r2.step()
	require.NoError(t, r2.k.Close())
	es, bad, err := rundir.ReadJSONL[rundir.LedgerEntry](filepath.Join(dir, rundir.Applied))
	require.NoError(t, err)
	require.Len(t, bad, 1, "the torn line is reported, the rest is intact")
	got := summary(es)
	require.Equal(t, []string{
		"0 cb.load(r) external applied",
		"0 opt.set_params(main) external applied",
		"0 cb.load(r) restore applied",
	}, got, "commands are not applied twice; the callback is restored; the optimizer change is not re-applied")
	require.Equal(t, int64(100), es[2].Seq, "seq continues after the highest seq in the file, the torn line's 99 included")
	require.Equal(t, "restart", *es[2].Notes)
	require.Equal(t, []string{"r:train_step_end@0", "r:train_step_end@1"}, r2.events[len(r2.events)-2:])
	require.InDelta(t, 0.1, r2.opt.LR(0), 1e-12)
	st, err := rundir.ReadStatus(filepath.Join(dir, rundir.Status))
	require.NoError(t, err)
	require.Equal(t, float64(100), st.Extra["ledger_seq"])
}

func TestYAMLThroughTheKernelAndReadOnlyLedger(t *testing.T) {
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, rundir.Config), []byte(`version: 1
callbacks:
  r: {target: {kind: module, path: test/rec, symbol: Rec}}
`), 0o600))
	var log []string
	r := newRun(t, dir)
	r.env.Log = func(s string) { log = append(log, s) }
	r.step()
	require.Equal(t, []string{"0 cb.load(r) yaml applied"}, summary(r.ledger()))
	// make the ledger unwritable: reported once, training goes on
	require.NoError(t, os.Remove(filepath.Join(dir, rundir.Applied)))
	require.NoError(t, os.Mkdir(filepath.Join(dir, rundir.Applied), 0o700))
	r.cmd(`{"op":"disable","id":"r"}`, `{"op":"enable","id":"r"}`)
	r.step()
	r.step()
	require.Equal(t, 1, strings.Count(strings.Join(log, "\n"), "ledger: cannot append"))
	require.Len(t, r.events, 3)
	require.NoError(t, r.k.Close())
}
