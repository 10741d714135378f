package kernel_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/kernel"
	"github.com/hotcb/hotcb/loss"
	"github.com/hotcb/hotcb/rundir"
)

func demoLoss() *loss.Loss {
	l := loss.New(loss.Term{Name: "ce", Weight: 1}, loss.Term{Name: "aux", Weight: 0.1},
		loss.Term{Name: "smooth", Weight: 0.1, Disabled: true})
	l.SetTotalSteps(100)
	return l
}

// TestLossModule: hotcb's own line (as its CLI writes it, numbers as text too), the key shapes,
// the errors and the handle's enable/disable, in the ledger and the status file.
func TestLossModule(t *testing.T) {
	r := newRun(t, t.TempDir())
	l := demoLoss()
	r.k.RegisterLoss("main", l)
	r.step()
	r.cmd(`{"module": "loss", "op": "set_params", "id": "main", "params": {"ce": 1.0, "aux": 0.5}}`)
	r.step()
	require.Equal(t, 0.5, l.Weight("aux", r.env.Step))
	r.cmd(`{"module":"loss","op":"set_params","params":{"aux_w":"0.25","terms.smooth":"true"}}`,
		`{"module":"loss","op":"set_params","id":"main","params":{"kl_w":1,"ce":0.5}}`,
		`{"module":"loss","op":"set_params","id":"main","params":{"ce":-1}}`,
		`{"module":"loss","op":"set_params","id":"main","params":{"ramps.aux":{"type":"linear","warmup_frac":0.2,"end":2.0}}}`,
		`{"module":"loss","op":"set_params","id":"main","params":{"ramps.ce":{"type":"exp","warmup_steps":3}}}`,
		`{"module":"loss","op":"set_params","id":"head","params":{"ce":1}}`,
		`{"module":"loss","op":"disable","id":"main"}`,
		`{"module":"loss","op":"set_params","id":"main","params":{"ce":0.1}}`,
		`{"module":"loss","op":"enable","id":"main"}`,
		`{"module":"loss","op":"freeze","id":"main"}`,
	)
	r.step()
	require.Equal(t, []string{
		"1 loss.set_params(main) external applied",
		"2 loss.set_params() external applied",
		`2 loss.set_params(main) external failed: loss set_params main: kl_w: unknown term "kl" (declared: aux, ce, smooth)`,
		"2 loss.set_params(main) external failed: loss set_params main: ce: weight must be >= 0, got -1 (negate the term itself to maximise it)",
		"2 loss.set_params(main) external applied",
		`2 loss.set_params(main) external failed: loss set_params main: ramps.ce: type "exp" is not a ramp type (want linear or cosine)`,
		`2 loss.set_params(head) external failed: no loss "head" (registered: main)`,
		"2 loss.disable(main) external applied",
		"2 loss.set_params(main) external skipped_noop",
		"2 loss.enable(main) external applied",
		`2 loss.freeze(main) external failed: unknown loss op "freeze" (want set_params, enable or disable)`,
	}, summary(r.ledger()))
	es := r.ledger()
	require.Equal(t, "ramp of aux: linear 0 -> 2 over steps 2..22", *es[4].Notes, "from the op's step, over 20% of 100 steps")
	require.Equal(t, map[string]any{"ramps.aux": map[string]any{"type": "linear", "warmup_frac": 0.2, "end": 2.0}}, es[4].Payload["params"])
	require.Equal(t, "handle disabled", *es[8].Notes)
	require.Equal(t, 1.0, l.Weight("ce", 3), "the set_params while disabled was skipped")
	require.Equal(t, 0.1, l.Weight("smooth", 3))
	require.InDelta(t, 2.0*2/20, l.Weight("aux", 4), 1e-12)

	r.k.Controller().RequestStatus()
	r.step()
	require.NoError(t, r.k.Close())
	st, err := rundir.ReadStatus(filepath.Join(r.dir, rundir.Status))
	require.NoError(t, err)
	b, err := json.Marshal(st.Extra["loss"])
	require.NoError(t, err)
	require.JSONEq(t, `{"main":{"weights":{"ce":1,"aux":0.25,"smooth":0.1},"terms":{"ce":true,"aux":true,"smooth":true},
		"ramps":{"aux":{"type":"linear","start":0,"end":2,"from_step":2,"warmup_frac":0.2}},
		"step":4,"effective":{"ce":1,"aux":0.2,"smooth":0.1}}}`, string(b))
}

// TestLossRestoredAfterRestart: a restart re-applies the loss's final state from the ledger (it
// is not in the checkpoint), once, ramps at their original steps, the handle's disable included;
// a recipe leaves the restores out.
func TestLossRestoredAfterRestart(t *testing.T) {
	dir := t.TempDir()
	p1 := start(t, dir, kernel.Options{})
	l1 := demoLoss()
	p1.k.RegisterLoss("main", l1)
	p1.steps(2)
	appendCmd(t, dir, `{"module":"loss","op":"set_params","id":"main","params":{"aux_w":0.3,"terms.smooth":true}}`)
	p1.steps(2)
	appendCmd(t, dir, `{"module":"loss","op":"set_params","id":"main","params":{"ramps.aux":{"warmup_frac":0.5}}}`)
	p1.steps(1)
	appendCmd(t, dir, `{"module":"loss","op":"disable","id":"main"}`)
	p1.steps(3)
	p1.stop()
	want := l1.State()
	require.Equal(t, loss.Ramp{Type: "linear", End: 0.3, FromStep: 4, WarmupFrac: 0.5}, want.Ramps["aux"])

	for run := 2; run <= 3; run++ {
		p := start(t, dir, kernel.Options{})
		l := demoLoss()
		p.k.RegisterLoss("main", l)
		require.NotEqual(t, want, l.State())
		p.env.Step = 8 // resumed from a checkpoint
		p.steps(1)
		require.Equal(t, want, l.State(), "run %d", run)
		require.Equal(t, l1.Weights(30), l.Weights(30))
		appendCmd(t, dir, `{"module":"loss","op":"set_params","id":"main","params":{"ce":0.1}}`)
		p.steps(1)
		require.Equal(t, 1.0, l.Weight("ce", 9), "the handle is still disabled")
		p.stop()
		es := readLedger(t, dir)
		require.Equal(t, []string{
			"8 loss.set_params(main) restore applied",
			"8 loss.disable(main) restore applied",
			"9 loss.set_params(main) external skipped_noop",
		}, summary(es[len(es)-3:]))
		require.Equal(t, "restart; ramp of aux: linear 0 -> 0.3 over steps 4..54", *es[len(es)-3].Notes, "at its original step")
	}

	p := start(t, dir, kernel.Options{NoRestore: true})
	l := demoLoss()
	p.k.RegisterLoss("main", l)
	p.steps(1)
	p.stop()
	require.Equal(t, demoLoss().State(), l.State(), "NoRestore")

	recipe, err := rundir.ExportRecipe(readLedger(t, dir))
	require.NoError(t, err)
	var got []string
	for _, r := range recipe {
		got = append(got, r.Module+"."+r.Op)
	}
	require.Equal(t, []string{"loss.set_params", "loss.set_params", "loss.disable"}, got)
}

// TestLossReplay: a loss op exported in a recipe replays at its step, with the same effect.
func TestLossReplay(t *testing.T) {
	weightsOf := func(r *run, l *loss.Loss, cmds map[int64]string) []map[string]float64 {
		var out []map[string]float64
		for r.env.Step < 12 {
			if c, ok := cmds[r.env.Step]; ok {
				r.cmd(c)
			}
			r.step()
			out = append(out, l.Weights(r.env.Step))
		}
		require.NoError(t, r.k.Close())
		return out
	}
	r1 := newRun(t, t.TempDir())
	l1 := demoLoss()
	r1.k.RegisterLoss("main", l1)
	w1 := weightsOf(r1, l1, map[int64]string{
		3: `{"module": "loss", "op": "set_params", "id": "main", "params": {"ce": 1.0, "aux": 0.5}}`,
		5: `{"module":"loss","op":"set_params","id":"main","params":{"ramps.ce":{"start":0.5,"warmup_steps":4},"terms":{"smooth":true}}}`,
	})
	require.NotEqual(t, w1[0], w1[len(w1)-1])
	recipe, err := rundir.ExportRecipe(r1.ledger())
	require.NoError(t, err)
	require.Len(t, recipe, 2)
	require.Equal(t, rundir.At{Step: 3, Event: "train_step_end"}, recipe[0].At)

	dir2 := t.TempDir()
	require.NoError(t, rundir.WriteRecipe(filepath.Join(dir2, rundir.Recipe), recipe))
	fz, _ := json.Marshal(rundir.FreezeState{Mode: "replay", Policy: "strict"})
	require.NoError(t, os.WriteFile(filepath.Join(dir2, rundir.Freeze), fz, 0o600))
	r2 := newRun(t, dir2)
	l2 := demoLoss()
	r2.k.RegisterLoss("main", l2)
	w2 := weightsOf(r2, l2, map[int64]string{4: `{"module":"loss","op":"set_params","id":"main","params":{"ce":0}}`})
	require.Equal(t, w1, w2)
	require.Equal(t, []string{"3 loss.set_params(main) replay applied", "4 loss.set_params(main) external ignored_replay",
		"5 loss.set_params(main) replay applied"}, summary(r2.ledger()))
}
