package controller

import (
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hotcb/hotcb/callback"
	"github.com/hotcb/hotcb/gofile"
	"github.com/hotcb/hotcb/intake"
	"github.com/hotcb/hotcb/ops"
	"github.com/hotcb/hotcb/params"
	"github.com/hotcb/hotcb/rundir"
	"github.com/hotcb/hotcb/torchenv"
)

// Options configure a HotController. Every path may be empty to disable that source or sink.
type Options struct {
	CommandsPath string // hotcb.commands.jsonl, tailed by byte offset
	ConfigPath   string // hotcb.yaml, reconciled when it changes
	StatusPath   string // hotcb.status.json, written at most every StatusInterval
	LogPath      string // hotcb.log, one line per control-plane event

	// DebounceSteps makes Apply look at pending changes at most every N safe points (0 or 1:
	// every one).
	DebounceSteps int
	// PollInterval is how often the files are checked even without a file-system notification
	// (default 1s); file changes are normally seen at once through inotify.
	PollInterval time.Duration
	// PollEveryStep checks the files (one stat each) at every Apply instead of relying on
	// notifications: deterministic, for tests and file systems without inotify.
	PollEveryStep bool
	// StatusInterval is the minimum time between status file writes (default 1s).
	StatusInterval time.Duration
	// KeepEnabledOnError keeps a callback enabled after its Handle fails; by default it is
	// disabled (auto_disable_on_error) and an enable op turns it back on.
	KeepEnabledOnError bool
	// TimingSample times one call in N per callback (default 16) for the mean/max in status;
	// calls and errors are always counted exactly.
	TimingSample int
	// StartAtEnd skips the commands already in the file when the controller starts.
	StartAtEnd bool

	// RunDir resolves relative captured-source paths of replayed go_file loads.
	RunDir string
	// SourcesDir receives a copy of every go_file source as <sha256>.go (hotcb.sources).
	SourcesDir string
	// AllowFullStdlib is go_file's trusted mode: the whole standard library (processes, signals,
	// network, unsafe, ...) instead of the allow-list (package gofile, Options.FullStdlib).
	AllowFullStdlib bool
	// AllowAnyOwner loads go_file sources that are group/world-writable or owned by others.
	AllowAnyOwner bool
	// CallBudget, when set, times every call: a call longer than the budget is logged, and after
	// BudgetStrikes consecutive overruns (0: never) the callback is disabled.
	CallBudget    time.Duration
	BudgetStrikes int
	// StuckAfter is how long a safe point may run before the watchdog reports it stuck, naming
	// the callback and call, in the log and the status file (default 10s; negative: no watchdog).
	StuckAfter time.Duration
	// AbandonAfter is how long a stuck go_file call runs before the watchdog abandons it (stops
	// its interpreter; the callback is then disabled). Default 30s. Compiled callbacks cannot be
	// abandoned (see package doc).
	AbandonAfter time.Duration
	// OnAbandoned, if set, is told (on the training goroutine) of each callback disabled after
	// the watchdog abandoned it; the kernel records it in the ledger.
	OnAbandoned func(env *torchenv.Env, id, reason string)
	// OnReload, if set, is told (on the training goroutine) of each hot reload of a go_file
	// callback, applied or failed: a load op (source "watch") whose Capture names the new
	// version's sha256. The kernel records it in the ledger.
	OnReload func(env *torchenv.Env, r Result)
	// OnErrorDisabled, if set, is told (on the training goroutine) of each callback disabled
	// after its call failed (see KeepEnabledOnError); reason says which call, at which step, and
	// the error (a go_file's panic names its file:line). The kernel records it in the ledger.
	OnErrorDisabled func(env *torchenv.Env, id, reason string)

	// Registry resolves module targets (default callback.Default).
	Registry *callback.Registry
	// Loaders adds or replaces loaders by target kind (go_file, ...).
	Loaders map[string]callback.Loader
	// StatusExtra, if set, is called at each status snapshot (on the training goroutine) and its
	// result is stored under "extra".
	StatusExtra func() map[string]any
	// Log receives each control-plane log line as well (the env's Log is used too when set).
	Log func(string)
	// Echo receives the lines callbacks write through an env whose Log was nil (Apply points it
	// at hotcb.log): the terminal, under hotcb train. Without it they go to Log as well.
	Echo func(string)
}

// Decision is what happened to an op: one of the ledger's decisions (rundir.Decision*).
type Decision string

// The decisions the controller makes, with the ledger's values.
const (
	Applied     Decision = rundir.DecisionApplied
	Failed      Decision = rundir.DecisionFailed
	SkippedNoop Decision = rundir.DecisionSkippedNoop
)

// Result is the outcome of one op.
type Result struct {
	Op       ops.Op
	Source   string // rundir.Source*: external, yaml, api, watch (a reload), or the kernel's
	Decision Decision
	Err      error
	Note     string
	// Capture identifies the source a go_file load or reload used.
	Capture *ops.SourceCapture
}

// HotController applies control-plane ops and dispatches events to callbacks.
type HotController struct {
	opts    Options
	loaders map[string]callback.Loader

	// training-goroutine state
	handles   map[string]*handle
	order     []*handle
	active    []*handle // enabled and loaded, in load order
	lastEnv   *torchenv.Env
	in        *intake.Intake        // commands, YAML and Submit: read here, applied by poll
	cmdStatus *intake.CommandReader // whose position the status reports
	results   []Result              // of the last poll, for tests and the kernel

	statusDue atomic.Bool
	status    *statusSink
	log       *logger

	stop   chan struct{}
	wg     sync.WaitGroup
	closed bool

	ownLogEnv *torchenv.Env // an env whose nil Log Apply pointed at the controller's log

	wd   watchdog
	wdMu sync.Mutex // serialises checkStuck
}

// New creates a controller and starts its file watcher and timers. Close it when training ends.
func New(opts Options) (*HotController, error) {
	if opts.PollInterval <= 0 {
		opts.PollInterval = time.Second
	}
	if opts.StatusInterval <= 0 {
		opts.StatusInterval = time.Second
	}
	if opts.TimingSample <= 0 {
		opts.TimingSample = 16
	}
	if opts.StuckAfter == 0 {
		opts.StuckAfter = 10 * time.Second
	}
	if opts.AbandonAfter <= 0 {
		opts.AbandonAfter = 30 * time.Second
	}
	if opts.Registry == nil {
		opts.Registry = callback.Default
	}
	c := &HotController{
		opts:    opts,
		handles: map[string]*handle{},
		stop:    make(chan struct{}),
		loaders: map[string]callback.Loader{
			ops.KindModule: callback.ModuleLoader(opts.Registry),
			ops.KindGoFile: gofile.NewLoader(gofile.Options{FullStdlib: opts.AllowFullStdlib,
				SourcesDir: opts.SourcesDir, AllowAnyOwner: opts.AllowAnyOwner}),
			ops.KindPythonFile: callback.LoaderFunc(noPython),
		},
	}
	for k, l := range opts.Loaders {
		c.loaders[k] = l
	}
	var err error
	if c.log, err = newLogger(opts.LogPath, opts.Log, opts.Echo); err != nil {
		return nil, err
	}
	c.in = intake.New(intake.Options{Commands: opts.CommandsPath, Config: opts.ConfigPath, StartAtEnd: opts.StartAtEnd,
		DebounceSteps: opts.DebounceSteps, PollInterval: opts.PollInterval, PollEveryStep: opts.PollEveryStep, Log: c.log.line})
	c.cmdStatus = c.in.Commands()
	c.status = newStatusSink(opts.StatusPath, c.log)
	c.startStatusTicker()
	c.startWatchdog()
	return c, nil
}

func noPython(t callback.Target, id string, _ map[string]any) (callback.HotCallback, error) {
	return nil, fmt.Errorf("cannot load %s: Python callbacks cannot run in a Go process; write the callback in Go (a .go file) or use a compiled one", t.Path)
}

// Submit queues an op from any goroutine; it is validated now and applied at the next safe point.
// Its params and init are normalized now (ops.Normalize: an int32 becomes an int64, a float32 a
// float64, …), so the callback receives what it would from a command line; a value JSON cannot
// record (NaN, an infinity, a channel) is an error naming the key.
func (c *HotController) Submit(op ops.Op) error {
	if err := op.Validate(); err != nil {
		return err
	}
	n, err := ops.Normalize(op)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	op = n
	if op.ModuleName() != "cb" {
		return fmt.Errorf("%s: the callback controller only applies cb ops", op)
	}
	c.in.Submit(op)
	return nil
}

// Apply is called by the training loop at a safe point: it applies pending ops (at most every
// DebounceSteps calls) and then dispatches each event to the enabled callbacks in load order.
func (c *HotController) Apply(env *torchenv.Env, events ...string) {
	if env != nil && env.Log == nil {
		// As torchenv documents: callbacks' lines go to the controller's log (and Echo).
		env.Log = c.log.callbackLine
		c.ownLogEnv = env
	}
	event := ""
	if len(events) > 0 {
		event = events[0]
	}
	c.wd.enter(env, event)
	defer c.wd.exit()
	if c.in.Due() {
		c.poll(env)
	}
	for _, ev := range events {
		active := c.active
		for i := 0; i < len(active); {
			i = c.dispatchFrom(active, i, ev, env)
		}
	}
	if c.wd.abandoned.Load() {
		c.disableAbandoned(env)
	}
	if c.statusDue.Load() {
		c.snapshot(env)
	}
}

// poll applies configuration changes, new command lines and submitted ops, and reloads go_file
// callbacks whose source changed.
func (c *HotController) poll(env *torchenv.Env) {
	c.lastEnv = env
	c.results = c.results[:0]
	logProblem := func(msg string) { c.controlError(env, msg) }
	c.in.PollConfig(func(ch intake.Change) error {
		if ch.Err != nil {
			logProblem(fmt.Sprintf("%v (keeping the previous configuration)", ch.Err))
			return nil
		}
		cfg, err := ReadConfig(ch.Data)
		if err != nil {
			logProblem(fmt.Sprintf("%s is invalid, keeping the previous configuration: %v", c.opts.ConfigPath, err))
			return err
		}
		for _, s := range cfg.NotApplied {
			c.logf(env, "%s: %s", c.opts.ConfigPath, s)
		}
		for _, op := range Ops(cfg.Callbacks) {
			c.record(env, c.apply(env, op, rundir.SourceYAML))
		}
		return nil
	})
	cmds := c.in.PollCommands(logProblem)
	for _, cmd := range cmds.Lines {
		if cmd.Err != nil {
			continue // counted and logged by the reader; the standalone controller has no ledger
		}
		if m := cmd.Op.ModuleName(); m != "cb" {
			c.in.Commands().Reject(cmd.At, fmt.Errorf("module %q is not handled by the standalone controller (use the kernel)", m), logProblem)
			continue
		}
		c.record(env, c.apply(env, cmd.Op, rundir.SourceExternal))
	}
	for _, op := range c.in.Submitted() {
		c.record(env, c.apply(env, op, rundir.SourceAPI))
	}
	for _, h := range c.order {
		if r, ok := c.reloadIfChanged(env, h); ok {
			c.record(env, r)
		}
	}
	if len(c.results) > 0 {
		c.statusDue.Store(true)
	}
}

func (c *HotController) record(env *torchenv.Env, r Result) {
	c.results = append(c.results, r)
	switch r.Decision {
	case Failed:
		c.logf(env, "failed %s (%s): %v", r.Op, r.Source, r.Err)
	case SkippedNoop:
		c.logf(env, "no change %s (%s)%s", r.Op, r.Source, noteSuffix(r.Note))
	default:
		c.logf(env, "applied %s (%s)%s", r.Op, r.Source, noteSuffix(r.Note))
	}
}

func noteSuffix(n string) string {
	if n == "" {
		return ""
	}
	return ": " + n
}

// ReportCommands makes the status report the path, offset and bad lines of r, a commands reader
// that an embedding component (the kernel) polls itself. Call it before the first Apply.
func (c *HotController) ReportCommands(r *intake.CommandReader) { c.cmdStatus = r }

// RequestStatus asks for a status snapshot at the next safe point.
func (c *HotController) RequestStatus() { c.statusDue.Store(true) }

// Logf writes a control-plane line to the controller's log (and the env's Log).
func (c *HotController) Logf(env *torchenv.Env, format string, args ...any) {
	c.logf(env, format, args...)
}

// LastResults returns the outcomes of the ops applied at the last poll.
func (c *HotController) LastResults() []Result { return append([]Result(nil), c.results...) }

// ApplyOp applies one op now, on the calling (training) goroutine; the kernel routes ops
// through it. source labels the op in logs.
func (c *HotController) ApplyOp(env *torchenv.Env, op ops.Op, source string) Result {
	r := c.apply(env, op, source)
	c.logResult(env, r)
	c.statusDue.Store(true)
	return r
}

func (c *HotController) logResult(env *torchenv.Env, r Result) {
	c.results = append(c.results[:0], r)
	c.record(env, r)
	c.results = c.results[:0]
}

// Close unloads every callback (calling Close on those that implement it), writes the final
// status and stops the watcher. It returns the errors of callbacks' Close.
func (c *HotController) Close() error {
	if c.closed {
		return nil
	}
	c.closed = true
	close(c.stop)
	c.wg.Wait()
	c.wdMu.Lock()
	c.wd.off = true
	c.wdMu.Unlock()
	var errs []error
	for _, h := range c.order {
		if h.cb != nil {
			if err := closeCallback(h.cb); err != nil {
				errs = append(errs, fmt.Errorf("close %s: %w", h.id, err))
			}
		}
	}
	c.in.Close()
	c.snapshot(c.lastEnv)
	c.status.close()
	c.log.close()
	return errors.Join(errs...)
}

// PanicError is a callback panic turned into an error, with the stack where it happened.
type PanicError struct {
	Value any
	Stack []byte
}

func (p *PanicError) Error() string { return fmt.Sprintf("panic: %v", p.Value) }

// call runs f, turning a panic into a *PanicError.
func call(f func() error) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = &PanicError{Value: r, Stack: debug.Stack()}
		}
	}()
	return f()
}

func closeCallback(cb callback.HotCallback) error {
	if cl, ok := cb.(callback.Closer); ok {
		return call(cl.Close)
	}
	return nil
}

// dispatchFrom calls the enabled callbacks of active from index start on. A panic stops the loop
// at the callback that panicked: it is recorded, and the index after it is returned so the
// caller resumes there. One deferred recover per event, not per callback, keeps the idle
// dispatch cheap.
func (c *HotController) dispatchFrom(active []*handle, start int, ev string, env *torchenv.Env) (next int) {
	cur := start
	sampling := false
	var t0 time.Time
	defer func() {
		if r := recover(); r != nil {
			h := active[cur]
			if sampling {
				h.addSample(time.Since(t0))
			}
			c.callbackFailed(h, ev, env, &PanicError{Value: r, Stack: debug.Stack()})
			next = cur + 1
		}
	}()
	for ; cur < len(active); cur++ {
		h := active[cur]
		if !h.enabled {
			continue
		}
		h.calls++
		var err error
		if h.countdown <= 0 || c.opts.CallBudget > 0 {
			h.countdown = c.opts.TimingSample
			sampling, t0 = true, time.Now()
			err = h.cb.Handle(ev, env)
			d := time.Since(t0)
			h.addSample(d)
			sampling = false
			if c.opts.CallBudget > 0 {
				c.checkBudget(h, ev, env, d)
			}
		} else {
			h.countdown--
			err = h.cb.Handle(ev, env)
		}
		if err != nil {
			c.callbackFailed(h, ev, env, err)
		}
	}
	return cur
}

// checkBudget warns about a call over the budget and disables a callback that overruns it
// BudgetStrikes times in a row.
func (c *HotController) checkBudget(h *handle, ev string, env *torchenv.Env, d time.Duration) {
	if d <= c.opts.CallBudget {
		h.strikes = 0
		return
	}
	h.strikes++
	h.overruns++
	c.logf(env, "callback %s took %v in %s, over its budget of %v (%d in a row)", h.id, d.Round(time.Microsecond), ev, c.opts.CallBudget, h.strikes)
	if c.opts.BudgetStrikes > 0 && h.strikes >= int64(c.opts.BudgetStrikes) && h.enabled {
		h.strikes = 0
		c.setHandleEnabled(h, false)
		c.logf(env, "callback %s disabled after %d calls over budget; `hotcb cb enable %s` turns it back on", h.id, c.opts.BudgetStrikes, h.id)
	}
	c.statusDue.Store(true)
}

func (c *HotController) callbackFailed(h *handle, ev string, env *torchenv.Env, err error) {
	if errors.Is(err, gofile.ErrAbandoned) { // disableAbandoned says what happened
		c.wd.abandoned.Store(true)
		return
	}
	h.errors++
	h.lastError = err.Error()
	var step int64
	if env != nil {
		step = env.Step
	}
	h.lastErrorStep = step
	msg := fmt.Sprintf("callback %s failed in %s at step %d: %v", h.id, ev, step, err)
	var pe *PanicError
	var ge *gofile.PanicError
	switch {
	case errors.As(err, &ge): // a go_file's panic: where in the file, then the goroutine's stack
		for _, f := range ge.Frames {
			msg += "\n\tat " + f
		}
		if len(ge.Stack) > 0 {
			msg += "\n" + strings.TrimRight(string(ge.Stack), "\n")
		}
	case errors.As(err, &pe):
		msg += "\n" + strings.TrimRight(string(pe.Stack), "\n")
	}
	c.logf(env, "%s", msg)
	if !c.opts.KeepEnabledOnError {
		c.setHandleEnabled(h, false)
		c.logf(env, "callback %s disabled after an error; `hotcb cb enable %s` turns it back on", h.id, h.id)
		if c.opts.OnErrorDisabled != nil {
			c.opts.OnErrorDisabled(env, h.id, fmt.Sprintf("disabled after an error in %s at step %d: %v", ev, step, err))
		}
	}
	c.statusDue.Store(true)
}

func (c *HotController) controlError(env *torchenv.Env, msg string) {
	c.status.controlError(msg)
	c.logf(env, "control plane: %s", msg)
	c.statusDue.Store(true)
}

func (c *HotController) logf(env *torchenv.Env, format string, args ...any) {
	line := fmt.Sprintf(format, args...)
	c.log.line(line)
	if env != nil && env.Log != nil && env != c.ownLogEnv {
		env.Log("[hotcb] " + line)
	}
}

func (c *HotController) rebuildActive() {
	c.active = c.active[:0:0]
	for _, h := range c.order {
		if h.enabled && h.cb != nil {
			c.active = append(c.active, h)
		}
	}
	c.rebuildRoster()
}

// sameInit compares inits by value (params.Equal): the init of a restart's restore went through
// the ledger's JSON and the YAML's did not, and 50 is 50 in both.
func sameInit(a, b map[string]any) bool {
	if len(a) == 0 && len(b) == 0 {
		return true
	}
	return params.Equal(a, b)
}

func merge(old, upd map[string]any) map[string]any {
	out := make(map[string]any, len(old)+len(upd))
	for k, v := range old {
		out[k] = v
	}
	for k, v := range upd {
		out[k] = v
	}
	return out
}

func (c *HotController) ids() string {
	var ids []string
	for id := range c.handles {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	if len(ids) == 0 {
		return "none"
	}
	return strings.Join(ids, ", ")
}

var pid = os.Getpid()
