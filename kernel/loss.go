package kernel

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/hotcb/hotcb/loss"
	"github.com/hotcb/hotcb/ops"
	"github.com/hotcb/hotcb/rundir"
	"github.com/hotcb/hotcb/torchenv"
)

// lossModule is hotcb's loss module: set_params changes a *loss.Loss the loop registered with
// RegisterLoss (default id main), with hotcb's key routing (loss.Loss.SetParams), at the step of
// the safe point; the loop's next Weight or Combine sees it. A problem fails the whole op, which
// the ledger records with the error; training goes on. As in hotcb, disable makes the handle
// skip set_params (skipped_noop) until enable — the loss itself keeps its configuration.
//
// Loss changes are not in the model checkpoint, so a restart restores them from the ledger:
// Fold of each id's applied set_params, re-applied at the first safe point (source restore).
type lossModule struct {
	losses   map[string]*loss.Loss
	disabled map[string]bool
}

func newLossModule() *lossModule {
	return &lossModule{losses: map[string]*loss.Loss{}, disabled: map[string]bool{}}
}

// RegisterLoss makes a loss configuration controllable as module "loss" with this id ("main" is
// what hotcb's CLI addresses by default). Register it before the first safe point: a restart's
// restore of its changes happens there.
func (k *Kernel) RegisterLoss(id string, l *loss.Loss) { k.lossModule().losses[id] = l }

func (k *Kernel) lossModule() *lossModule { return k.modules["loss"].(*lossModule) }

func (m *lossModule) ApplyOp(env *torchenv.Env, op ops.Op) (string, string, error) {
	id := op.ID
	if id == "" {
		id = "main"
	}
	l, ok := m.losses[id]
	if !ok {
		ids := make([]string, 0, len(m.losses))
		for k := range m.losses {
			ids = append(ids, k)
		}
		sort.Strings(ids)
		if len(ids) == 0 {
			return rundir.DecisionFailed, "", fmt.Errorf("no loss is registered with the kernel (the loop calls RegisterLoss(%q, l); hotcb: missing_mutable_state)", id)
		}
		return rundir.DecisionFailed, "", fmt.Errorf("no loss %q (registered: %s)", id, strings.Join(ids, ", "))
	}
	switch op.Op {
	case ops.OpEnable:
		delete(m.disabled, id)
		return rundir.DecisionApplied, "", nil
	case ops.OpDisable:
		m.disabled[id] = true
		return rundir.DecisionApplied, "its set_params are skipped until enable; the loss keeps its configuration", nil
	case ops.OpSetParams:
	default:
		return rundir.DecisionFailed, "", fmt.Errorf("unknown loss op %q (want set_params, enable or disable)", op.Op)
	}
	if m.disabled[id] {
		return rundir.DecisionSkippedNoop, "handle disabled", nil
	}
	if len(op.Params) == 0 {
		return rundir.DecisionFailed, "", errors.New("loss set_params: no params given")
	}
	step := l.LastStep()
	if env != nil {
		step = env.Step
	}
	note, err := l.SetParams(op.Params, step)
	if err != nil {
		return rundir.DecisionFailed, "", fmt.Errorf("loss set_params %s: %w", id, err)
	}
	return rundir.DecisionApplied, note, nil
}

func (m *lossModule) Dispatch(*torchenv.Env, ...string) {}
func (m *lossModule) Close() error                      { return nil }

// status is the "loss" entry of the status file: per id its weights, toggles and ramps, and the
// effective weights at the step the loop last asked for them.
func (m *lossModule) status() map[string]any {
	if len(m.losses) == 0 {
		return nil
	}
	out := make(map[string]any, len(m.losses))
	for id, l := range m.losses {
		st := l.State()
		step := l.LastStep()
		s := map[string]any{"weights": st.Weights, "terms": st.Terms, "step": step, "effective": l.Weights(step)}
		if len(st.Ramps) > 0 {
			s["ramps"] = st.Ramps
		}
		if m.disabled[id] {
			s["handle"] = "disabled"
		}
		out[id] = s
	}
	return out
}

// lossRestore rebuilds each loss id's final state from the ledger's applied loss entries (in seq
// order; earlier restores included): one set_params of their Fold, and a disable when the
// handle was disabled at the end.
func lossRestore(entries []rundir.LedgerEntry) ([]ops.Op, error) {
	sorted := append([]rundir.LedgerEntry(nil), entries...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Seq < sorted[j].Seq })
	history := map[string][]loss.Applied{}
	disabled := map[string]bool{}
	var ids []string
	for _, e := range sorted {
		if e.Module != "loss" || e.Decision != rundir.DecisionApplied {
			continue
		}
		id := "main"
		if e.ID != nil && *e.ID != "" {
			id = *e.ID
		}
		if _, seen := history[id]; !seen {
			history[id] = nil
			ids = append(ids, id)
		}
		switch e.Op {
		case ops.OpSetParams:
			p, err := rundir.DecodePayload(e)
			if err != nil {
				return nil, err
			}
			history[id] = append(history[id], loss.Applied{Params: p.Params, Step: e.Step})
		case ops.OpEnable:
			disabled[id] = false
		case ops.OpDisable:
			disabled[id] = true
		}
	}
	var out []ops.Op
	for _, id := range ids {
		if p := loss.Fold(history[id]); p != nil {
			out = append(out, ops.Op{Module: "loss", Op: ops.OpSetParams, ID: id, Params: p})
		}
		if disabled[id] {
			out = append(out, ops.Op{Module: "loss", Op: ops.OpDisable, ID: id})
		}
	}
	return out, nil
}
