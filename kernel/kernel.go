package kernel

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hotcb/hotcb/bridge/optim"
	"github.com/hotcb/hotcb/controller"
	"github.com/hotcb/hotcb/intake"
	"github.com/hotcb/hotcb/metrics"
	"github.com/hotcb/hotcb/ops"
	"github.com/hotcb/hotcb/params"
	"github.com/hotcb/hotcb/rundir"
	"github.com/hotcb/hotcb/torchenv"
)

// Module handles the ops routed to it by name ("cb", "opt", "core", or a user module).
type Module interface {
	// ApplyOp applies one op at a safe point; it returns the decision (rundir.Decision*), a note,
	// and an error for a failed op.
	ApplyOp(env *torchenv.Env, op ops.Op) (decision, note string, err error)
	// Dispatch runs at each safe point after the ops, with the events of the call.
	Dispatch(env *torchenv.Env, events ...string)
	// Close releases the module at the end of the run.
	Close() error
}

// Options configure a Kernel.
type Options struct {
	// Controller tunes the callback controller (its file paths are the run directory's).
	Controller controller.Options
	// NoRestore skips restoring the previous process's callbacks on restart.
	NoRestore bool
	// AllowSharedRunDir accepts a run directory that another user owns or can write to (see
	// rundir.CheckRunDir). Its files are still never opened through symbolic links.
	AllowSharedRunDir bool
	// Ranks links the kernels of a data-parallel run (see Coordinator): rank 0 reads the run
	// directory's inputs and every rank applies each op at the same step. nil for one process.
	// A rank's kernel runs on rundir.RankDir(runDir, rank).
	Ranks Coordinator
	// RankLag is how many steps after rank 0 reads an op every rank applies it (default
	// DefaultRankLag).
	RankLag int64
	// Metrics configure the metrics stream, RUN_DIR/hotcb.metrics.jsonl (metrics.go).
	Metrics MetricsOptions
}

// Kernel is HotKernel.
type Kernel struct {
	dir  rundir.Dir
	opts Options
	ctl  *controller.HotController

	modules map[string]Module
	order   []string
	user    []Module // modules registered by the program: the only ones with a Dispatch to call

	in         *intake.Intake // the run directory's commands, YAML and freeze file, and Submit
	cursor     rundir.Cursor  // how far the inputs were processed, recorded with each ledger entry
	cfgApplied string         // after a restart: the SHA-256 of the YAML the restored state includes
	freeze     rundir.FreezeState
	replay     *replayer

	restore    []ops.Op // callback ops of the previous process, re-applied at the first safe point
	seq        int64
	ledgerErr  string
	lastEvent  string
	closed     bool
	optimizers *optModule
	lock       *os.File // rundir.Lock, held while the kernel runs

	// Data-parallel runs (ranks.go).
	due         []scheduled   // published ops waiting for their step
	readCursor  rundir.Cursor // rank 0: how far its inputs were read (k.cursor: applied)
	fetchedStep int64
	fetchedOnce bool
	fetchErr    string
	applying    *scheduled   // the scheduled op being applied (its recipe, for a freeze)
	lastEnv     torchenv.Env // step, epoch and phase of the last safe point

	totalSteps atomic.Int64 // the run's planned steps (SetTotalSteps), 0 when unknown

	metrics *stream // the metrics stream (metrics.go); nil when off or on a rank > 0
	// how the restore treats each go_file callback's file (restoreSource)
	restoreSources map[string]restoreSource
}

// New opens (creating if needed, mode 0700) the run directory and starts watching it.
func New(runDir string, opts Options) (*Kernel, error) {
	d := rundir.Dir(runDir)
	if err := d.Ensure(); err != nil {
		return nil, err
	}
	if !opts.AllowSharedRunDir {
		if err := rundir.CheckRunDir(d); err != nil {
			return nil, err
		}
	}
	lock, err := rundir.LockDir(d)
	if err != nil {
		return nil, err
	}
	k := &Kernel{dir: d, opts: opts, modules: map[string]Module{}, lock: lock}
	// The status file's only writer is the lock's holder: temporary files of it are a killed
	// predecessor's.
	stale, _ := rundir.RemoveStaleTemps(d.Path(rundir.Status))
	co := opts.Controller
	co.CommandsPath, co.ConfigPath = "", "" // the kernel reads them and routes
	co.StatusPath = d.Path(rundir.Status)
	co.LogPath = d.Path(rundir.Log)
	co.RunDir = runDir
	co.SourcesDir = d.Path(rundir.Sources)
	co.StatusExtra = k.statusExtra
	co.OnAbandoned = k.abandoned
	co.OnReload = k.reloaded
	co.OnErrorDisabled = k.errorDisabled
	ctl, err := controller.New(co)
	if err != nil {
		lock.Close()
		return nil, err
	}
	k.ctl = ctl
	k.in = intake.New(intake.Options{Commands: d.Path(rundir.Commands), Config: d.Path(rundir.Config), Freeze: d.Path(rundir.Freeze),
		DebounceSteps: co.DebounceSteps, PollInterval: co.PollInterval, PollEveryStep: co.PollEveryStep,
		Log: func(s string) { ctl.Logf(nil, "%s", s) }})
	ctl.ReportCommands(k.in.Commands())
	if stale > 0 {
		ctl.Logf(nil, "removed %d temporary status file(s) a killed process left", stale)
	}
	k.optimizers = &optModule{opts: map[string]*optim.Optimizer{}}
	k.register("cb", &cbModule{ctl: ctl})
	k.register("opt", k.optimizers)
	k.register("loss", newLossModule())
	k.register("core", &coreModule{k: k})

	ledger, err := rundir.ReadLedger(d.Path(rundir.Applied))
	if err != nil {
		ctl.Logf(nil, "ledger: cannot read %s: %v (commands in the file are taken as applied)", d.Path(rundir.Applied), err)
		k.in.Commands().Tailer().SkipExisting()
	}
	for _, b := range ledger.Bad {
		ctl.Logf(nil, "ledger: %v (skipped; earlier entries are intact)", b)
	}
	k.seq = ledger.MaxSeq
	k.resume(ledger)
	k.readCursor = k.cursor
	if !k.leader() {
		k.restore = nil // rank 0 sends its own restore: every rank restores the same state
	}
	k.openMetrics()
	return k, nil
}

// restoreNote marks the ledger entries of a restart's restore.
const restoreNote = "restart"

// resume picks up where the previous process on this run directory stopped: commands after the
// last line its ledger records as processed (all of them when the ledger is empty), the YAML
// only if it changed since that process reconciled it, and the callbacks' final state.
func (k *Kernel) resume(ledger rundir.Ledger) {
	var last *rundir.Cursor
	var lastSeq int64
	for _, e := range ledger.Entries {
		if e.Cursor != nil && e.Seq >= lastSeq {
			last, lastSeq = e.Cursor, e.Seq
		}
	}
	switch {
	case last != nil:
		k.cursor = *last
		if last.CommandsOffset > 0 {
			k.in.Commands().Tailer().ResumeAfter(intake.Resume{End: last.CommandsOffset, Number: last.CommandsLine, TextSHA256: last.CommandsSHA256})
		}
	case len(ledger.Entries) > 0:
		// Written by hotcb or an older hotcb-go, without a cursor: nothing says which commands
		// were applied, and the older rule was that all in the file were.
		k.in.Commands().Tailer().SkipExisting()
		k.ctl.Logf(nil, "ledger: %s has no cursor (written by hotcb or hotcb-go < 0.2): the commands already in %s are taken as applied",
			rundir.Applied, rundir.Commands)
	}
	if k.opts.NoRestore || len(ledger.Entries) == 0 {
		return
	}
	restore, sources, err := finalState(ledger.Entries)
	if err != nil {
		k.ctl.Logf(nil, "restart: cannot rebuild the callback state: %v", err)
		return
	}
	if lr, err := lossRestore(ledger.Entries); err != nil {
		k.ctl.Logf(nil, "restart: cannot rebuild the loss state: %v", err)
	} else {
		restore = append(restore, lr...)
	}
	k.restore, k.restoreSources = restore, sources
	k.cfgApplied = k.cursor.ConfigSHA256 // the restored state includes that YAML's effect
}

// Controller is the callback controller (to Submit cb ops or read Status).
func (k *Kernel) Controller() *controller.HotController { return k.ctl }

// Dir is the run directory.
func (k *Kernel) Dir() rundir.Dir { return k.dir }

func (k *Kernel) register(name string, m Module) {
	k.modules[name] = m
	k.order = append(k.order, name)
}

// RegisterModule adds a user module that receives ops with "module": name.
func (k *Kernel) RegisterModule(name string, m Module) error {
	if name == "" || m == nil {
		return errors.New("RegisterModule needs a name and a module")
	}
	if _, dup := k.modules[name]; dup {
		return fmt.Errorf("module %q is already registered", name)
	}
	k.register(name, m)
	k.user = append(k.user, m)
	return nil
}

// RegisterOptimizer makes an optimizer controllable as module "opt" with this id ("main" is
// what hotcb's CLI addresses by default).
func (k *Kernel) RegisterOptimizer(id string, o *optim.Optimizer) { k.optimizers.opts[id] = o }

// Submit queues an op from any goroutine; it is processed (and recorded, source "api") at the
// next safe point. Its params and init are normalized now (ops.Normalize: an int32 becomes an
// int64, a float32 a float64, …); a value JSON cannot record (NaN, an infinity) is an error
// naming the key, and the op is not queued.
func (k *Kernel) Submit(op ops.Op) error {
	if err := op.Validate(); err != nil {
		return err
	}
	n, err := ops.Normalize(op)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	k.in.Submit(n)
	return nil
}

// Apply is the safe point: process pending ops (commands, YAML, freeze, API, replay), then
// dispatch the events to the callbacks and modules.
func (k *Kernel) Apply(env *torchenv.Env, events ...string) {
	event := ""
	if len(events) > 0 {
		event = events[0]
	}
	k.lastEvent = event
	if k.metrics != nil {
		k.metrics.enter(env, events)
	}
	k.ctl.Enter(env, event) // the watchdog sees ops that hang, not only callbacks
	defer k.ctl.Exit()
	k.recordRollbacks(env, event)
	if k.leader() && k.in.Due() {
		k.poll(env, event)
	}
	if k.distributed() {
		k.applyDue(env, event)
		if env != nil {
			k.lastEnv = torchenv.Env{Step: env.Step, Epoch: env.Epoch, Phase: env.Phase}
		}
	}
	if k.replay != nil {
		for _, ev := range events {
			for _, op := range k.replay.due(env.Step, ev) {
				k.process(env, ev, op, rundir.SourceReplay)
			}
		}
	}
	k.ctl.Apply(env, events...)
	for _, m := range k.user {
		m.Dispatch(env, events...)
	}
	if k.metrics != nil {
		k.metrics.observe(env, events)
	}
}

func (k *Kernel) poll(env *torchenv.Env, event string) {
	if k.distributed() { // read on from where reading stopped; k.cursor is what was applied
		applied := k.cursor
		k.cursor = k.readCursor
		defer func() { k.readCursor, k.cursor = k.cursor, applied }()
	}
	k.in.PollFreeze(func(ch intake.Change) error { return k.freezeChanged(env, ch) })
	if k.freeze.Mode == "" {
		k.freeze = rundir.FreezeState{Mode: rundir.FreezeOff, Policy: rundir.PolicyBestEffort}
	}
	if len(k.restore) > 0 {
		for _, op := range k.restore {
			k.intakeRestore(env, event, op)
		}
		k.restore = nil
	}
	k.in.PollConfig(func(ch intake.Change) error { return k.configChanged(env, event, ch) })
	cmds := k.in.PollCommands(func(msg string) { k.ctl.Logf(env, "control plane: %s", msg) })
	for _, c := range cmds.Lines {
		k.cursor.CommandsLine, k.cursor.CommandsOffset, k.cursor.CommandsSHA256 = c.At.Number, c.At.End, c.At.TextSHA256
		if c.Err != nil {
			k.ignore(env, event, badLine{Op: c.Op, Reason: c.Err.Error(), Line: c.At.Number, Text: c.Text})
			continue
		}
		k.intake(env, event, c.Op, rundir.SourceExternal)
	}
	if end := cmds.End; end.End > 0 { // bad lines after the last op are consumed too
		k.cursor.CommandsLine, k.cursor.CommandsOffset, k.cursor.CommandsSHA256 = end.Number, end.End, end.TextSHA256
	}
	if cmds.Unlisted > 0 {
		k.ignore(env, event, badLine{Line: cmds.FirstUnlisted, LastLine: cmds.LastUnlisted, Count: cmds.Unlisted})
	}
	for _, op := range k.in.Submitted() {
		k.intake(env, event, op, rundir.SourceAPI)
	}
}

// configChanged reconciles a new hotcb.yaml (or reports why it cannot be read); an error keeps
// the previous configuration.
func (k *Kernel) configChanged(env *torchenv.Env, event string, ch intake.Change) error {
	if ch.Err != nil {
		k.ctl.Logf(env, "%v (keeping the previous configuration)", ch.Err)
		return nil
	}
	if k.cfgApplied != "" {
		// First look after a restart: the restored state already holds this YAML's effect
		// unless it changed while no process ran.
		applied := k.cfgApplied
		k.cfgApplied = ""
		if ch.SHA256 == applied {
			return nil
		}
	}
	cfg, err := controller.ReadConfig(ch.Data)
	if err != nil {
		k.ctl.Logf(env, "%s is invalid, keeping the previous configuration: %v", rundir.Config, err)
		return err
	}
	for _, s := range cfg.NotApplied {
		k.ctl.Logf(env, "%s: %s", rundir.Config, s)
	}
	k.cursor.ConfigSHA256 = ch.SHA256
	for _, op := range controller.Ops(cfg.Callbacks) {
		op.Module = "cb"
		k.intake(env, event, op, rundir.SourceYAML)
	}
	return nil
}

// badLine is a line of the commands file that is not an op, or (Count > 0) a summary of the bad
// lines Line to LastLine of one poll beyond those recorded one by one.
type badLine struct {
	Op       ops.Op `json:"op"` // what could be made out of the line
	Reason   string `json:"reason,omitempty"`
	Line     int    `json:"line"`
	Text     string `json:"text,omitempty"`
	Count    int    `json:"count,omitempty"`
	LastLine int    `json:"last_line,omitempty"`
}

// ignore records a bad commands line in the ledger as hotcb records input it does not act on:
// decision ignored, the reason in notes. On a data-parallel run every rank records it at the
// same step, as it would an op.
func (k *Kernel) ignore(env *torchenv.Env, event string, b badLine) {
	if k.distributed() {
		k.schedule(env, scheduled{Kind: "ignored", Source: rundir.SourceExternal, Bad: &b})
		return
	}
	k.recordIgnored(env, event, b, "")
}

func (k *Kernel) recordIgnored(env *torchenv.Env, event string, b badLine, note string) {
	e := k.entry(env, event, b.Op, rundir.SourceExternal, rundir.DecisionIgnored, "", nil)
	e.Module = b.Op.Module // not ModuleName: a line that is no JSON object names no module
	if b.Count > 0 {
		e.Payload = map[string]any{"line": b.Line, "last_line": b.LastLine, "count": b.Count}
		e.Notes = ptr(fmt.Sprintf("%d more lines that are not ops (lines %d to %d), recorded here together", b.Count, b.Line, b.LastLine))
	} else {
		e.Payload = map[string]any{"line": b.Line}
		if b.Text != "" {
			e.Payload["text"] = b.Text
		}
		e.Notes = ptr(fmt.Sprintf("line %d is not an op: %s", b.Line, b.Reason))
	}
	if note != "" {
		e.Notes = ptr(*e.Notes + "; " + note)
	}
	k.writeEntry(env, e)
}

func ptr[T any](v T) *T { return &v }

// process routes one op through the freeze rules to its module and records it in the ledger.
func (k *Kernel) process(env *torchenv.Env, event string, op ops.Op, source string) {
	k.processNote(env, event, op, source, "")
}

func (k *Kernel) processNote(env *torchenv.Env, event string, op ops.Op, source, note string) (decision string, err error) {
	module := op.ModuleName()
	extra := ""
	normalized, nerr := ops.Normalize(op) // the one form modules and callbacks receive
	if nerr == nil {
		op = normalized
	}
	switch {
	case nerr != nil:
		// Applied, it could not be recorded faithfully (JSON has no NaN or infinity).
		decision, err = rundir.DecisionFailed, fmt.Errorf("%s: %w", op, nerr)
		op.Params, op.Init = nil, nil
	case module != "core" && source != rundir.SourceReplay && k.freeze.Mode == rundir.FreezeProd:
		decision, extra = rundir.DecisionIgnoredFreeze, "freeze mode prod"
	case module != "core" && source != rundir.SourceReplay &&
		(k.freeze.Mode == rundir.FreezeReplay || k.freeze.Mode == rundir.FreezeReplayAdjusted):
		decision, extra = rundir.DecisionIgnoredReplay, "freeze mode "+k.freeze.Mode
	default:
		m, ok := k.modules[module]
		if !ok {
			decision, err = rundir.DecisionFailed, fmt.Errorf("no module %q (registered: %s)", module, strings.Join(k.order, ", "))
		} else if verr := op.Validate(); verr != nil {
			decision, err = rundir.DecisionFailed, verr
		} else {
			if cb, ok := m.(*cbModule); ok {
				cb.source = source // applied and failed cb ops are logged with the ledger's source
			}
			decision, extra, err = m.ApplyOp(env, op)
		}
	}
	if note != "" {
		extra = strings.TrimPrefix(note+"; "+extra, "; ")
		extra = strings.TrimSuffix(extra, "; ")
	}
	if cb, ok := k.modules["cb"].(*cbModule); ok && module == "cb" && cb.capture != nil {
		op.SourceCapture = cb.capture // record what a go_file load used
		cb.capture = nil
	}
	k.record(env, event, op, source, decision, extra, err)
	// The controller logs cb outcomes itself; the kernel logs the rest.
	if decision != rundir.DecisionApplied && decision != rundir.DecisionSkippedNoop &&
		(module != "cb" || decision != rundir.DecisionFailed) {
		msg := fmt.Sprintf("%s %s (%s)", decision, op, source)
		if err != nil {
			msg += ": " + err.Error()
		} else if extra != "" {
			msg += ": " + extra
		}
		k.ctl.Logf(env, "%s", msg)
	}
	k.ctl.RequestStatus()
	return decision, err
}

// abandoned records the disable of a callback whose stuck call the watchdog abandoned, so that a
// restart restores it disabled instead of loading it into the same hang.
func (k *Kernel) abandoned(env *torchenv.Env, id, reason string) {
	f := false
	k.record(env, k.lastEvent, ops.Op{Module: "cb", Op: ops.OpDisable, ID: id, Enabled: &f}, rundir.SourceWatchdog,
		rundir.DecisionApplied, reason, nil)
}

func (k *Kernel) record(env *torchenv.Env, event string, op ops.Op, source, decision, note string, err error) {
	k.writeEntry(env, k.entry(env, event, op, source, decision, note, err))
}

// entry is the ledger entry of op, with the next seq and the cursor.
func (k *Kernel) entry(env *torchenv.Env, event string, op ops.Op, source, decision, note string, err error) rundir.LedgerEntry {
	k.seq++
	e := rundir.LedgerEntry{Seq: k.seq, WallTime: float64(time.Now().UnixNano()) / 1e9, Event: event,
		Module: op.ModuleName(), Op: op.Op, Source: source, Decision: decision, Params: params.ForJSONMap(op.Params), Payload: rundir.Payload(op)}
	if env != nil {
		e.Step = env.Step
		ep := env.Epoch
		e.Epoch = &ep
		if env.Phase != "" {
			ph := env.Phase
			e.Phase = &ph
		}
	}
	if op.ID != "" {
		id := op.ID
		e.ID = &id
	}
	if err != nil {
		s := err.Error()
		e.Error = &s
		var pe *controller.PanicError
		if errors.As(err, &pe) && len(pe.Stack) > 0 {
			tb := string(pe.Stack)
			e.Traceback = &tb
		}
	}
	if note != "" {
		e.Notes = &note
	}
	if k.cursor != (rundir.Cursor{}) {
		c := k.cursor
		e.Cursor = &c
	}
	return e
}

// writeEntry writes e to the ledger; a failure is logged once and shown in the status.
func (k *Kernel) writeEntry(env *torchenv.Env, e rundir.LedgerEntry) {
	werr := rundir.AppendJSON(k.dir.Path(rundir.Applied), e)
	var ue *json.UnsupportedValueError
	var te *json.UnsupportedTypeError
	if errors.As(werr, &ue) || errors.As(werr, &te) {
		// A Go value from the API that JSON cannot hold: the entry is still written.
		e.Payload, e.Params = map[string]any{"unrecordable": werr.Error()}, nil
		werr = rundir.AppendJSON(k.dir.Path(rundir.Applied), e)
	}
	if werr != nil {
		if werr.Error() != k.ledgerErr {
			k.ledgerErr = werr.Error()
			k.ctl.Logf(env, "ledger: cannot append to %s: %v (training goes on; entries are lost until this is fixed)", rundir.Applied, werr)
		}
	} else {
		k.ledgerErr = ""
	}
}

// Close closes the modules and the controller. Under a strict replay policy it returns an error
// listing the recipe entries that were never applied; best_effort records them in the ledger.
func (k *Kernel) Close() error {
	if k.closed {
		return nil
	}
	k.closed = true
	k.in.Close()
	k.recordRollbacks(nil, k.lastEvent) // of a last Step after the last safe point
	k.closeRanks()
	var errs []error
	if k.replay != nil {
		if missed := k.replay.missed(); len(missed) > 0 {
			for _, r := range missed {
				op := r.ToOp()
				k.record(nil, r.At.Event, op, rundir.SourceReplay, rundir.DecisionFailed,
					fmt.Sprintf("missed: recipe step %d %s was never reached", r.At.Step, r.At.Event), nil)
			}
			if k.freeze.Policy == rundir.PolicyStrict {
				var parts []string
				for _, r := range missed {
					parts = append(parts, fmt.Sprintf("%s.%s(%s)@%d/%s", r.Module, r.Op, r.ID, r.At.Step, r.At.Event))
				}
				errs = append(errs, fmt.Errorf("strict replay: %d recipe entries were not applied: %s", len(missed), strings.Join(parts, ", ")))
			}
		}
	}
	for _, name := range k.order {
		if name == "cb" {
			continue
		}
		if err := k.modules[name].Close(); err != nil {
			errs = append(errs, fmt.Errorf("module %s: %w", name, err))
		}
	}
	if k.metrics != nil {
		if err := k.metrics.close(); err != nil {
			errs = append(errs, fmt.Errorf("metrics: %w", err))
		}
	}
	if err := k.ctl.Close(); err != nil {
		errs = append(errs, err)
	}
	k.lock.Close()
	return errors.Join(errs...)
}

// SetTotalSteps says how many steps the run plans (0: unknown); the status file carries it as
// total_steps, from which `hotcb status` and `hotcb serve` show progress and an ETA.
func (k *Kernel) SetTotalSteps(n int64) { k.totalSteps.Store(max(n, 0)) }

func (k *Kernel) statusExtra() map[string]any {
	ex := map[string]any{"freeze_mode": k.freeze.Mode, "ledger_seq": k.seq}
	if n := k.totalSteps.Load(); n > 0 {
		ex["total_steps"] = n
	}
	if k.ledgerErr != "" {
		ex["ledger_error"] = k.ledgerErr
	}
	optParams := map[string]any{}
	ids := make([]string, 0, len(k.optimizers.opts))
	for id := range k.optimizers.opts {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		o := k.optimizers.opts[id]
		var groups []any
		for g := 0; g < o.NumGroups(); g++ {
			groups = append(groups, o.Hyper(g))
		}
		optParams[id] = groups
	}
	if len(optParams) > 0 {
		ex["optimizers"] = optParams
	}
	if ls := k.lossModule().status(); ls != nil {
		ex["loss"] = ls
	}
	if k.metrics != nil {
		st := k.metrics.w.Stats()
		m := map[string]any{"file": metrics.File, "lines": st.Lines, "decimated": st.Decimated, "last_step": st.LastStep}
		if st.Dropped > 0 {
			m["dropped"] = st.Dropped
		}
		if st.Err != "" {
			m["error"] = st.Err
		}
		ex["metrics"] = m
	}
	if k.replay != nil {
		ex["replay"] = map[string]any{"applied": k.replay.applied, "pending": k.replay.pending(), "step_offset": k.freeze.StepOffset}
	}
	return ex
}
