package kernel

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/hotcb/hotcb/bridge/optim"
	"github.com/hotcb/hotcb/controller"
	"github.com/hotcb/hotcb/ops"
	"github.com/hotcb/hotcb/params"
	"github.com/hotcb/hotcb/rundir"
	"github.com/hotcb/hotcb/torchenv"
)

// cbModule routes cb ops to the callback controller.
type cbModule struct {
	ctl     *controller.HotController
	capture *ops.SourceCapture // of the last go_file load, for the ledger
	source  string             // of the op being applied: the controller's log line names it
}

func (m *cbModule) ApplyOp(env *torchenv.Env, op ops.Op) (string, string, error) {
	r := m.ctl.ApplyOp(env, op, m.source)
	m.capture = r.Capture
	return string(r.Decision), r.Note, r.Err
}

func (m *cbModule) Dispatch(*torchenv.Env, ...string) {}
func (m *cbModule) Close() error                      { return nil }

// optModule changes optimizer hyper-parameters live. set_params takes any of the optimizer's
// keys (lr, weight_decay, momentum, betas, ...) and an optional "group" (an index; all groups
// when absent). The change is all or nothing and is seen by the next Step. A value the
// optimizer refuses (out of range, overflowing the parameters' dtype, or making a trial update
// fail) fails the op; a change that the next Step still cannot use is rolled back by the
// optimizer, and the kernel records that rollback at the following safe point (recordRollbacks).
type optModule struct {
	opts    map[string]*optim.Optimizer
	applied []appliedChange // the latest set_params that changed something, to name them in rollbacks
}

// appliedChange is a set_params the module applied: the optimizer's Revision after it, and the
// step.
type appliedChange struct {
	id        string
	rev, step int64
}

// maxApplied bounds optModule.applied: a rollback concerns the changes since the optimizer's last
// Step, so only the latest few are ever looked up.
const maxApplied = 64

func (m *optModule) ApplyOp(env *torchenv.Env, op ops.Op) (string, string, error) {
	id := op.ID
	if id == "" {
		id = "main"
	}
	o, ok := m.opts[id]
	if !ok {
		ids := make([]string, 0, len(m.opts))
		for k := range m.opts {
			ids = append(ids, k)
		}
		sort.Strings(ids)
		if len(ids) == 0 {
			return rundir.DecisionFailed, "", fmt.Errorf("no optimizer is registered with the kernel (the loop calls RegisterOptimizer(%q, opt))", id)
		}
		return rundir.DecisionFailed, "", fmt.Errorf("no optimizer %q (registered: %s)", id, strings.Join(ids, ", "))
	}
	switch op.Op {
	case ops.OpSetParams:
	case ops.OpEnable, ops.OpDisable:
		return rundir.DecisionFailed, "", fmt.Errorf("opt %s: an optimizer cannot be enabled or disabled; change its params (e.g. lr=0) with set_params", op.Op)
	default:
		return rundir.DecisionFailed, "", fmt.Errorf("unknown opt op %q (want set_params)", op.Op)
	}
	if len(op.Params) == 0 {
		return rundir.DecisionFailed, "", errors.New("opt set_params: no params given")
	}
	group := optim.AllGroups
	hyper := map[string]any{}
	for k, v := range op.Params {
		if k == "group" {
			g, err := params.Int(v)
			if err != nil || g < 0 || g >= o.NumGroups() {
				return rundir.DecisionFailed, "", fmt.Errorf("opt set_params: group %v is not a group index (0..%d)", v, o.NumGroups()-1)
			}
			group = g
			continue
		}
		hyper[k] = v
	}
	rev := o.Revision()
	if err := o.SetParams(group, hyper); err != nil {
		return rundir.DecisionFailed, "", fmt.Errorf("opt set_params %s: %w", id, err)
	}
	if o.Revision() != rev {
		c := appliedChange{id: id, rev: o.Revision()}
		if env != nil {
			c.step = env.Step
		}
		if len(m.applied) == maxApplied {
			m.applied = append(m.applied[:0], m.applied[1:]...)
		}
		m.applied = append(m.applied, c)
	}
	return rundir.DecisionApplied, "", nil
}

// rollbackEntry is the ledger entry for a change an optimizer rolled back: a set_params of the
// restored values, so that a recipe exported from the ledger replays the rollback too.
type rollbackEntry struct {
	op   ops.Op
	note string
}

// rollbacks takes the rollbacks of every registered optimizer since the last safe point.
func (m *optModule) rollbacks() []rollbackEntry {
	var out []rollbackEntry
	for id, o := range m.opts {
		for _, r := range o.TakeRollbacks() {
			params := map[string]any{}
			for k, v := range r.Restored {
				params[k] = v
			}
			if o.NumGroups() > 1 {
				params["group"] = r.Group
			}
			note := "rolled back " + m.describe(id, r.Revisions) + ": " + r.Err.Error()
			if r.Left != "" {
				note += "; " + r.Left
			}
			out = append(out, rollbackEntry{op: ops.Op{Module: "opt", Op: ops.OpSetParams, ID: id, Params: params}, note: note})
		}
	}
	if len(out) > 1 {
		sort.SliceStable(out, func(i, j int) bool { return out[i].op.ID < out[j].op.ID })
	}
	return out
}

// describe names the changes with these revisions of optimizer id: "the set_params applied at
// step 12".
func (m *optModule) describe(id string, revs []int64) string {
	var steps []string
	outside := 0
	for _, rev := range revs {
		found := false
		for _, c := range m.applied {
			if c.id == id && c.rev == rev {
				steps, found = append(steps, strconv.FormatInt(c.step, 10)), true
				break
			}
		}
		if !found {
			outside++
		}
	}
	var s string
	switch len(steps) {
	case 0:
	case 1:
		s = "the set_params applied at step " + steps[0]
	default:
		s = fmt.Sprintf("the %d set_params applied at steps %s", len(steps), strings.Join(steps, ", "))
	}
	if outside > 0 {
		o := fmt.Sprintf("%d hyper-parameter change(s) made outside the control plane", outside)
		if s == "" {
			return o
		}
		s += " and " + o
	}
	return s
}

// recordRollbacks appends to the ledger, at a safe point, an entry for each optimizer change
// rolled back by a Step since the previous safe point: module opt, op set_params, source
// "rollback", decision applied, payload params = the restored values, and a note saying which
// set_params was rolled back and libtorch's error.
func (k *Kernel) recordRollbacks(env *torchenv.Env, event string) {
	for _, r := range k.optimizers.rollbacks() {
		k.record(env, event, r.op, rundir.SourceRollback, rundir.DecisionApplied, r.note, nil)
		k.ctl.Logf(env, "%s (%s): %s", r.op, rundir.SourceRollback, r.note)
		k.ctl.RequestStatus()
	}
}

func (m *optModule) Dispatch(*torchenv.Env, ...string) {}
func (m *optModule) Close() error                      { return nil }

// coreModule handles freeze: {"module":"core","op":"freeze","mode":"prod"} (recipe_path,
// adjust_path, policy, step_offset may come in params). It writes hotcb.freeze.json, so the
// freeze outlives the process, and applies it at once.
type coreModule struct{ k *Kernel }

func (m *coreModule) ApplyOp(env *torchenv.Env, op ops.Op) (string, string, error) {
	if op.Op != ops.OpFreeze {
		return rundir.DecisionFailed, "", fmt.Errorf("unknown core op %q (want freeze)", op.Op)
	}
	f, err := freezeStateOf(op)
	if err != nil {
		return rundir.DecisionFailed, "", err
	}
	b, _ := json.MarshalIndent(f, "", "  ")
	if err := rundir.WriteFileAtomic(m.k.dir.Path(rundir.Freeze), append(b, '\n')); err != nil {
		return rundir.DecisionFailed, "", fmt.Errorf("freeze: %w", err)
	}
	if err := m.k.setFreeze(env, f); err != nil {
		return rundir.DecisionFailed, "", err
	}
	return rundir.DecisionApplied, "mode " + f.Mode, nil
}

// freezeStateOf is the freeze state a core freeze op asks for.
func freezeStateOf(op ops.Op) (rundir.FreezeState, error) {
	f := rundir.FreezeState{Mode: op.Mode, Policy: rundir.PolicyBestEffort}
	if f.Mode == "" {
		if v, ok := op.Params["mode"].(string); ok {
			f.Mode = v
		}
	}
	if v, ok := op.Params["recipe_path"].(string); ok {
		f.RecipePath = &v
	}
	if v, ok := op.Params["adjust_path"].(string); ok {
		f.AdjustPath = &v
	}
	if v, ok := op.Params["policy"].(string); ok {
		f.Policy = v
	}
	if v, ok := op.Params["step_offset"]; ok {
		n, err := params.Int(v)
		if err != nil {
			return f, fmt.Errorf("freeze: step_offset: %v", err)
		}
		f.StepOffset = int64(n)
	}
	if err := f.Validate(); err != nil {
		return f, fmt.Errorf("freeze: %w", err)
	}
	return f, nil
}

func (m *coreModule) Dispatch(*torchenv.Env, ...string) {}
func (m *coreModule) Close() error                      { return nil }
