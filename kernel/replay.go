package kernel

import (
	"fmt"
	"path/filepath"

	"github.com/hotcb/hotcb/intake"
	"github.com/hotcb/hotcb/ops"
	"github.com/hotcb/hotcb/rundir"
	"github.com/hotcb/hotcb/torchenv"
)

// replayer injects recipe entries at their (step, event): an entry for step s applies when the
// loop's step minus the offset equals s and the event matches.
type replayer struct {
	entries []rundir.RecipeEntry // sorted by step
	done    []bool
	offset  int64
	applied int
}

func newReplayer(entries []rundir.RecipeEntry, offset int64) *replayer {
	return &replayer{entries: entries, done: make([]bool, len(entries)), offset: offset}
}

// due returns the ops to apply now, in recipe order.
func (r *replayer) due(step int64, event string) []ops.Op {
	var out []ops.Op
	s := step - r.offset
	for i, e := range r.entries {
		if e.At.Step > s {
			break
		}
		if !r.done[i] && e.At.Step == s && e.At.Event == event {
			r.done[i] = true
			r.applied++
			op := e.ToOp()
			if op.Module == "" {
				op.Module = "cb"
			}
			out = append(out, op)
		}
	}
	return out
}

func (r *replayer) pending() int { return len(r.entries) - r.applied }

// missed lists the entries never applied.
func (r *replayer) missed() []rundir.RecipeEntry {
	var out []rundir.RecipeEntry
	for i, e := range r.entries {
		if !r.done[i] {
			out = append(out, e)
		}
	}
	return out
}

// freezeChanged switches to the freeze state of a new hotcb.freeze.json (off when it was
// removed), or reports why it cannot be read; an error keeps the current mode.
func (k *Kernel) freezeChanged(env *torchenv.Env, ch intake.Change) error {
	if ch.Err != nil {
		k.ctl.Logf(env, "freeze: %v (keeping mode %s)", ch.Err, orOff(k.freeze.Mode))
		return nil
	}
	f := rundir.FreezeState{Mode: rundir.FreezeOff, Policy: rundir.PolicyBestEffort}
	var err error
	if !ch.Removed {
		f, err = rundir.ParseFreeze(k.dir.Path(rundir.Freeze), ch.Data)
	}
	if err == nil {
		err = k.setFreeze(env, f)
	}
	if err != nil {
		k.ctl.Logf(env, "freeze: %v (keeping mode %s)", err, orOff(k.freeze.Mode))
	}
	return err
}

// setFreeze switches the freeze state, loading the recipe (and adjust patches) for replay
// modes. On error the previous state is kept.
func (k *Kernel) setFreeze(env *torchenv.Env, f rundir.FreezeState) error {
	if k.applying != nil { // a scheduled op on a data-parallel run: rank 0 read the recipe
		var rp *replayer
		if k.applying.Recipe != nil {
			rp = newReplayer(k.applying.Recipe, f.StepOffset)
		}
		k.switchFreeze(env, f, rp)
		return nil
	}
	rp, err := k.loadRecipe(f)
	if err != nil {
		return err
	}
	if k.distributed() { // every rank switches at the same step, with rank 0's recipe
		s := scheduled{Kind: "freeze", Freeze: &f}
		if rp != nil {
			s.Recipe = rp.entries
			if s.Recipe == nil {
				s.Recipe = []rundir.RecipeEntry{}
			}
		}
		k.schedule(env, s)
		return nil
	}
	k.switchFreeze(env, f, rp)
	return nil
}

// loadRecipe reads the recipe (and adjust patches) of a replay mode; nil for other modes.
func (k *Kernel) loadRecipe(f rundir.FreezeState) (*replayer, error) {
	var rp *replayer
	if f.Mode == rundir.FreezeReplay || f.Mode == rundir.FreezeReplayAdjusted {
		path := k.dir.Path(rundir.Recipe)
		if f.RecipePath != nil && *f.RecipePath != "" {
			path = k.resolve(*f.RecipePath)
		}
		recipe, err := rundir.ReadRecipe(path)
		if err != nil {
			return nil, fmt.Errorf("replay: %w", err)
		}
		if f.Mode == rundir.FreezeReplayAdjusted {
			a, err := rundir.ReadAdjust(k.resolve(*f.AdjustPath))
			if err != nil {
				return nil, fmt.Errorf("replay_adjusted: %w", err)
			}
			if recipe, err = rundir.ApplyAdjust(recipe, a); err != nil {
				return nil, fmt.Errorf("replay_adjusted: %w", err)
			}
		}
		rp = newReplayer(recipe, f.StepOffset)
	}
	return rp, nil
}

// switchFreeze makes f the freeze state, with rp replaying its recipe.
func (k *Kernel) switchFreeze(env *torchenv.Env, f rundir.FreezeState, rp *replayer) {
	if f.Mode != k.freeze.Mode {
		k.ctl.Logf(env, "freeze mode %s -> %s", orOff(k.freeze.Mode), f.Mode)
	}
	k.freeze, k.replay = f, rp
	k.ctl.RequestStatus()
}

func orOff(m string) string {
	if m == "" {
		return rundir.FreezeOff
	}
	return m
}

func (k *Kernel) resolve(p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return k.dir.Path(p)
}
