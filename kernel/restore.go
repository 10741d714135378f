package kernel

import (
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
	capture *ops.SourceCapture // of the version that ran last: the last load's, hot reloads included
	params  map[string]any
	source  restoreSource
}

// restoreSource says how a restore treats a go_file callback's file.
type restoreSource struct {
	// watch: the version that ran came from the file (not a replay's captured copy), so the
	// restored callback watches the file again.
	watch bool
	// failedSHA and failedSeq: a hot reload after the last version that loaded failed (a
	// version that does not build, say); it is not retried until the file changes again.
	failedSHA string
	failedSeq int64
}

// finalState folds the cb entries of a ledger, in seq order, into one load op per callback
// that was loaded at the end: its last target and init, its enabled flag, the params set on it
// (before or after the load, as the controller merges them) and the capture of the version
// that ran last (a go_file's hot reloads are loads from the watcher). Callbacks unloaded at the
// end are left out. It also says, per id, how a go_file's file is treated (restoreSource).
func finalState(entries []rundir.LedgerEntry) ([]ops.Op, map[string]restoreSource, error) {
	sorted := append([]rundir.LedgerEntry(nil), entries...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].Seq < sorted[j].Seq })
	states := map[string]*cbState{}
	for _, e := range sorted {
		if e.Module != "cb" || e.ID == nil {
			continue
		}
		failedReload := e.Decision == rundir.DecisionFailed && e.Op == ops.OpLoad && e.Source == rundir.SourceWatch
		if e.Decision != rundir.DecisionApplied && !failedReload {
			continue
		}
		p, err := rundir.DecodePayload(e) // params and init normalized, as when they were applied
		if err != nil {
			return nil, nil, err
		}
		s := states[*e.ID]
		if s == nil {
			s = &cbState{id: *e.ID, params: map[string]any{}}
			states[*e.ID] = s
		}
		if failedReload {
			if p.SourceCapture != nil {
				s.source.failedSHA, s.source.failedSeq = p.SourceCapture.SHA256, e.Seq
			}
			continue
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
			if e.Source != rundir.SourceRestore { // a restore keeps what the loads before it said
				s.source = restoreSource{watch: e.Source != rundir.SourceReplay}
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
	sources := map[string]restoreSource{}
	for _, s := range states {
		if s.loaded && s.target != nil {
			live = append(live, s)
			sources[s.id] = s.source
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
	return out, sources, nil
}

// restoreOne loads a callback as the previous process left it (or applies a loss op of the
// restore, which has no target). A go_file callback is loaded from
// the captured copy of the version that ran last — the file may hold an edit that failed to
// load, or one made while no process ran — and then watches its file again: an edit since is
// picked up at the next safe point as any reload is, and recorded as such. If the captured copy
// cannot be loaded, the file is loaded as it is now.
func (k *Kernel) restoreOne(env *torchenv.Env, event string, op ops.Op) {
	capture := op.SourceCapture
	if op.Target == nil || op.Target.Normalized().Kind != ops.KindGoFile || capture == nil {
		op.SourceCapture = nil
		k.processNote(env, event, op, rundir.SourceRestore, restoreNote)
		return
	}
	t := op.Target.Normalized()
	src := k.restoreSources[op.ID]
	note := fmt.Sprintf("%s; the version that ran last (sha256 %s) is loaded from its captured copy", restoreNote, capture.SHA256)
	if src.failedSHA != "" {
		note += fmt.Sprintf(", the last version that loaded: the edit of %s with sha256 %s failed to load (ledger seq %d)",
			t.Path, src.failedSHA, src.failedSeq)
	}
	if src.watch {
		note += "; " + t.Path + " is watched again"
	}
	decision, err := k.processNote(env, event, op, rundir.SourceRestore, note)
	if decision == rundir.DecisionApplied || decision == rundir.DecisionSkippedNoop {
		if src.watch {
			if werr := k.ctl.WatchSource(op.ID, t.Path, src.failedSHA); werr != nil {
				k.ctl.Logf(env, "restart: %s will not be reloaded when %s changes: %v", op.ID, t.Path, werr)
			}
		}
		return
	}
	op.SourceCapture = nil
	k.processNote(env, event, op, rundir.SourceRestore,
		fmt.Sprintf("%s; the captured copy %s of the version that ran could not be loaded (%v), so %s was loaded as it is now",
			restoreNote, capture.SHA256, err, t.Path))
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

// errorDisabled records the disable of a callback whose call failed, with the error (a go_file's
// panic names its file:line), so that a restart restores it disabled, as it was.
func (k *Kernel) errorDisabled(env *torchenv.Env, id, reason string) {
	f := false
	k.record(env, k.lastEvent, ops.Op{Module: "cb", Op: ops.OpDisable, ID: id, Enabled: &f}, rundir.SourceAutoDisable,
		rundir.DecisionApplied, reason, nil)
}
