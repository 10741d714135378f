package kernel

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/hotcb/hotcb/bridge/optim"
	"github.com/hotcb/hotcb/controller"
	"github.com/hotcb/hotcb/ops"
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
	// NoRestore skips re-applying the previous process's callback ops on restart.
	NoRestore bool
}

// Kernel is HotKernel.
type Kernel struct {
	dir  rundir.Dir
	opts Options
	ctl  *controller.HotController

	modules map[string]Module
	order   []string
	user    []Module // modules registered by the program: the only ones with a Dispatch to call

	cmds      *controller.Tailer
	cfgLast   []byte
	cfgBad    string
	freezeMod time.Time
	freeze    rundir.FreezeState
	replay    *replayer

	restore    []ops.Op // callback ops of the previous process, re-applied at the first safe point
	seq        int64
	ledgerErr  string
	lastEvent  string
	pending    atomic.Bool
	mu         sync.Mutex
	queue      []ops.Op
	stop       chan struct{}
	wg         sync.WaitGroup
	closed     bool
	optimizers *optModule
}

// New opens (creating if needed, mode 0700) the run directory and starts watching it.
func New(runDir string, opts Options) (*Kernel, error) {
	d := rundir.Dir(runDir)
	if err := d.Ensure(); err != nil {
		return nil, err
	}
	k := &Kernel{dir: d, opts: opts, modules: map[string]Module{}, stop: make(chan struct{})}
	co := opts.Controller
	co.CommandsPath, co.ConfigPath = "", "" // the kernel reads them and routes
	co.StatusPath = d.Path(rundir.Status)
	co.LogPath = d.Path(rundir.Log)
	co.RunDir = runDir
	co.SourcesDir = d.Path(rundir.Sources)
	co.StatusExtra = k.statusExtra
	ctl, err := controller.New(co)
	if err != nil {
		return nil, err
	}
	k.ctl = ctl
	k.optimizers = &optModule{opts: map[string]*optim.Optimizer{}}
	k.register("cb", &cbModule{ctl: ctl})
	k.register("opt", k.optimizers)
	k.register("core", &coreModule{k: k})

	k.cmds = controller.NewTailer(d.Path(rundir.Commands))
	previous, bad, err := rundir.ReadJSONL[rundir.LedgerEntry](d.Path(rundir.Applied))
	switch {
	case err == nil:
		for _, e := range previous {
			k.seq = max(k.seq, e.Seq)
		}
		for _, b := range bad {
			ctl.Logf(nil, "ledger: %v (skipped; earlier entries are intact)", b)
		}
		k.cmds.SkipExisting() // applied by the previous process (see the package doc)
		if !opts.NoRestore {
			k.queueRestore(previous)
		}
	case !errors.Is(err, os.ErrNotExist):
		ctl.Logf(nil, "ledger: cannot read %s: %v", d.Path(rundir.Applied), err)
	}
	k.pending.Store(true)
	k.watch()
	return k, nil
}

// restoreOps are queued at construction and applied at the first safe point.
var restoreNote = "restart"

func (k *Kernel) queueRestore(previous []rundir.LedgerEntry) {
	recipe, err := rundir.ExportRecipe(previous)
	if err != nil {
		k.ctl.Logf(nil, "restart: cannot rebuild the callback state: %v", err)
		return
	}
	for _, r := range recipe {
		if r.Module == "cb" {
			op := r.ToOp()
			op.Module = "cb"
			k.restore = append(k.restore, op)
		}
	}
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
// next safe point.
func (k *Kernel) Submit(op ops.Op) error {
	if err := op.Validate(); err != nil {
		return err
	}
	k.mu.Lock()
	k.queue = append(k.queue, op)
	k.mu.Unlock()
	k.pending.Store(true)
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
	k.recordRollbacks(env, event)
	if k.pending.Load() || k.opts.Controller.PollEveryStep {
		k.poll(env, event)
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
}

func (k *Kernel) poll(env *torchenv.Env, event string) {
	k.pending.Store(false)
	k.pollFreeze(env, event)
	if len(k.restore) > 0 {
		for _, op := range k.restore {
			k.processNote(env, event, op, rundir.SourceReplay, restoreNote)
		}
		k.restore = nil
	}
	k.pollConfig(env, event)
	lines, problems := k.cmds.Poll()
	for _, p := range problems {
		k.ctl.Logf(env, "control plane: %v", p)
	}
	for _, l := range lines {
		op, err := ops.Parse(l.Text)
		if err != nil {
			k.cmds.Bad()
			k.ctl.Logf(env, "%s line %d skipped: %v", k.cmds.Path(), l.Number, err)
			continue
		}
		k.process(env, event, op, rundir.SourceExternal)
	}
	k.mu.Lock()
	q := k.queue
	k.queue = nil
	k.mu.Unlock()
	for _, op := range q {
		k.process(env, event, op, rundir.SourceAPI)
	}
}

func (k *Kernel) pollConfig(env *torchenv.Env, event string) {
	p := k.dir.Path(rundir.Config)
	if st, err := os.Stat(p); err != nil || !st.Mode().IsRegular() {
		return // absent, or a FIFO that reading would block on: nothing to reconcile
	}
	data, err := os.ReadFile(p)
	if err != nil || string(data) == string(k.cfgLast) {
		return
	}
	specs, err := controller.ParseConfig(data)
	if err != nil {
		if k.cfgBad != string(data) {
			k.cfgBad = string(data)
			k.ctl.Logf(env, "%s is invalid, keeping the previous configuration: %v", rundir.Config, err)
		}
		return
	}
	k.cfgLast, k.cfgBad = data, ""
	for _, op := range controller.Ops(specs) {
		op.Module = "cb"
		k.process(env, event, op, rundir.SourceYAML)
	}
}

// process routes one op through the freeze rules to its module and records it in the ledger.
func (k *Kernel) process(env *torchenv.Env, event string, op ops.Op, source string) {
	k.processNote(env, event, op, source, "")
}

func (k *Kernel) processNote(env *torchenv.Env, event string, op ops.Op, source, note string) {
	module := op.ModuleName()
	decision, extra := "", ""
	var err error
	switch {
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
}

func (k *Kernel) record(env *torchenv.Env, event string, op ops.Op, source, decision, note string, err error) {
	k.seq++
	e := rundir.LedgerEntry{Seq: k.seq, WallTime: float64(time.Now().UnixNano()) / 1e9, Event: event,
		Module: op.ModuleName(), Op: op.Op, Source: source, Decision: decision, Payload: rundir.Payload(op)}
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
	}
	if note != "" {
		e.Notes = &note
	}
	if werr := rundir.AppendJSON(k.dir.Path(rundir.Applied), e); werr != nil {
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
	close(k.stop)
	k.wg.Wait()
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
	if err := k.ctl.Close(); err != nil {
		errs = append(errs, err)
	}
	k.cmds.Close()
	return errors.Join(errs...)
}

func (k *Kernel) statusExtra() map[string]any {
	ex := map[string]any{"freeze_mode": k.freeze.Mode, "ledger_seq": k.seq}
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
	if k.replay != nil {
		ex["replay"] = map[string]any{"applied": k.replay.applied, "pending": k.replay.pending(), "step_offset": k.freeze.StepOffset}
	}
	return ex
}

// watch marks the kernel pending on changes in the run directory, and every second.
func (k *Kernel) watch() {
	w, err := fsnotify.NewWatcher()
	if err == nil {
		if err := w.Add(string(k.dir)); err != nil {
			w.Close()
			w = nil
		}
	} else {
		w = nil
	}
	interval := k.opts.Controller.PollInterval
	if interval <= 0 {
		interval = time.Second
	}
	k.wg.Add(1)
	go func() {
		defer k.wg.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		var events chan fsnotify.Event
		if w != nil {
			defer w.Close()
			events = w.Events
		}
		for {
			select {
			case <-k.stop:
				return
			case <-t.C:
				k.pending.Store(true)
			case ev, ok := <-events:
				if !ok {
					events = nil
					continue
				}
				switch filepath.Base(ev.Name) {
				case rundir.Commands, rundir.Config, rundir.Freeze:
					k.pending.Store(true)
				}
			}
		}
	}()
}
