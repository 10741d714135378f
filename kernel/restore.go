package kernel

import (
	"encoding/json"
	"fmt"
	"sort"

	"github.com/hotcb/hotcb/controller"
	"github.com/hotcb/hotcb/ops"
	"github.com/hotcb/hotcb/rundir"
	"github.com/hotcb/hotcb/torchenv"
)

// cbState is one callback id's state as the ledger leaves it.
type cbState struct {
	id      string
	first   int64 // seq of its first applied load: the dispatch order
	loaded  bool
	enabled bool
	target  *ops.CallbackTarget
	init    map[string]any
	capture *ops.SourceCapture
	params  map[string]any
}

// finalState folds the applied cb entries of a ledger, in seq order, into one load op per
// callback that was loaded at the end: its last target and init, its enabled flag and the
// params set on it (before or after the load, as the controller merges them). Callbacks
// unloaded at the end are left out.
func finalState(entries []rundir.LedgerEntry) ([]ops.Op, error) {
	sorted := append([]rundir.LedgerEntry(nil), entries...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Seq < sorted[j].Seq })
	states := map[string]*cbState{}
	for _, e := range sorted {
		if e.Module != "cb" || e.Decision != rundir.DecisionApplied || e.ID == nil {
			continue
		}
		p, err := decodePayload(e)
		if err != nil {
			return nil, err
		}
		s := states[*e.ID]
		if s == nil {
			s = &cbState{id: *e.ID, params: map[string]any{}}
			states[*e.ID] = s
		}
		switch e.Op {
		case ops.OpLoad:
			if s.first == 0 {
				s.first = e.Seq
			}
			s.loaded, s.enabled = true, p.Enabled == nil || *p.Enabled
			s.target, s.init, s.capture = p.Target, p.Init, p.SourceCapture
			for k, v := range p.Params { // a restore's load carries the params
				s.params[k] = v
			}
		case "reload": // the file changed and the new version was swapped in
			if p.SourceCapture != nil {
				s.capture = p.SourceCapture
			}
		case ops.OpSetParams:
			for k, v := range p.Params {
				s.params[k] = v
			}
		case ops.OpEnable:
			s.enabled = true
		case ops.OpDisable:
			s.enabled = false
		case ops.OpUnload:
			s.loaded, s.enabled = false, false
		}
	}
	live := make([]*cbState, 0, len(states))
	for _, s := range states {
		if s.loaded && s.target != nil {
			live = append(live, s)
		}
	}
	sort.Slice(live, func(i, j int) bool { return live[i].first < live[j].first })
	out := make([]ops.Op, 0, len(live))
	for _, s := range live {
		enabled := s.enabled
		op := ops.Op{Module: "cb", Op: ops.OpLoad, ID: s.id, Target: s.target, Init: s.init, Enabled: &enabled,
			SourceCapture: s.capture}
		if len(s.params) > 0 {
			op.Params = s.params
		}
		out = append(out, op)
	}
	return out, nil
}

type payload struct {
	Params        map[string]any      `json:"params"`
	Target        *ops.CallbackTarget `json:"target"`
	Init          map[string]any      `json:"init"`
	Enabled       *bool               `json:"enabled"`
	SourceCapture *ops.SourceCapture  `json:"source_capture"`
}

func decodePayload(e rundir.LedgerEntry) (payload, error) {
	var p payload
	b, err := json.Marshal(e.Payload)
	if err == nil {
		err = json.Unmarshal(b, &p)
	}
	if err != nil {
		return p, fmt.Errorf("ledger seq %d: payload: %v", e.Seq, err)
	}
	return p, nil
}

// restoreOne loads a callback as the previous process left it. A go_file callback is loaded from
// its file, so that later edits still reload it; if the file is gone or no longer builds, the
// captured copy of the version that ran is loaded instead.
func (k *Kernel) restoreOne(env *torchenv.Env, event string, op ops.Op) {
	capture := op.SourceCapture
	t := op.Target.Normalized()
	if t.Kind != ops.KindGoFile || capture == nil {
		op.SourceCapture = nil
		k.processNote(env, event, op, rundir.SourceRestore, restoreNote)
		return
	}
	op.SourceCapture = nil
	decision, err := k.processNote(env, event, op, rundir.SourceRestore, restoreNote)
	if decision == rundir.DecisionApplied || decision == rundir.DecisionSkippedNoop {
		return
	}
	op.SourceCapture = capture
	k.processNote(env, event, op, rundir.SourceRestore,
		fmt.Sprintf("%s; %s failed to load (%v), so the captured copy %s of the version that ran was loaded", restoreNote, t.Path, err, capture.SHA256))
}

// reloaded records a hot reload of a go_file callback: a load of the same id (source "watch")
// with the new version's sha256 in source_capture, applied or failed. The recipe keeps the
// applied ones, so that a replay loads the same versions at the same steps, and a restart
// restores the last version that loaded.
func (k *Kernel) reloaded(env *torchenv.Env, r controller.Result) {
	op := r.Op
	op.SourceCapture = r.Capture
	k.record(env, k.lastEvent, op, rundir.SourceWatch, string(r.Decision), r.Note, r.Err)
}
