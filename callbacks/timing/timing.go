package timing

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/callbacks"
	"github.com/hotcb/hotcb/callbacks/spec"
	"github.com/hotcb/hotcb/params"
	"github.com/hotcb/hotcb/torchenv"
)

func init() { callbacks.Provide(spec.Timing, New) }

// Params are the timing callback's parameters (spec.TimingParams). The intervals between the
// timed events are named by intervalName.
type Params = spec.TimingParams

// DefaultParams are the values before init is applied.
func DefaultParams() Params { return spec.Timing.Defaults() }

// DataOther names the interval from the step-closing event (train_step_end by default) to
// train_step_start: data loading and whatever else the loop does between steps. When
// train_step_start is not timed, the interval to the first timed event also holds the phases
// before that event, and says so: "data/other+forward" up to forward_end.
const DataOther = "data/other"

// Phase names of the intervals between the standard events (see intervalName).
const (
	Forward   = "forward"   // train_step_start → forward_end: forward pass and loss
	Backward  = "backward"  // forward_end → backward_end: zero_grad and backward pass
	Optimizer = "optimizer" // backward_end → optimizer_step_end: what runs between (clipping, say) and the optimizer step
)

// phaseChain is the order of the events that bound the phases; phaseEnding[e] is the phase that
// ends at e.
var (
	phaseChain  = []string{torchenv.TrainStepStart, torchenv.ForwardEnd, torchenv.BackwardEnd, torchenv.OptimizerStepEnd}
	phaseEnding = map[string]string{torchenv.ForwardEnd: Forward, torchenv.BackwardEnd: Backward, torchenv.OptimizerStepEnd: Optimizer}
)

// intervalName names the interval from event from to event to: by the phases it holds when
// both bound phases ("forward", "backward", "optimizer"; "forward+backward" when forward_end is
// not timed; backward_end → forward_end is the forward of the next micro-batch of an
// accumulated step), DataOther for the step-closing event to the first one, "from->to"
// otherwise.
func intervalName(from, to string, fromClose, toFirst bool) string {
	if fromClose && toFirst {
		if to == torchenv.TrainStepStart || phaseEnding[to] == "" {
			return DataOther
		}
		return DataOther + "+" + phasesBetween(torchenv.TrainStepStart, to)
	}
	if from == torchenv.BackwardEnd && to == torchenv.ForwardEnd {
		return Forward
	}
	if p := phasesBetween(from, to); p != "" {
		return p
	}
	return from + "->" + to
}

// phasesBetween joins the phases from event from to event to with "+" ("" when either is no
// phase bound or to does not come after from).
func phasesBetween(from, to string) string {
	i, j := slices.Index(phaseChain, from), slices.Index(phaseChain, to)
	if i < 0 || j <= i {
		return ""
	}
	var ps []string
	for _, e := range phaseChain[i+1 : j+1] {
		ps = append(ps, phaseEnding[e])
	}
	return strings.Join(ps, "+")
}

// interval is the series of one event-to-event interval.
type interval struct {
	name   string
	host   *ring
	dev    *ring
	metric string // its name in the metrics stream, MetricPrefix+name+"_ms"
	last   int64  // its host time in the current step (micro-batches summed), ns
	fresh  bool   // last was measured in the current step: reported when it closes
}

// MetricPrefix starts the names under which timing reports each step's host times to the
// metrics stream (env.Report): MetricStep, and one per interval, "time/<interval>_ms"
// ("time/forward_ms", "time/data/other_ms").
const (
	MetricPrefix = "time/"
	MetricStep   = MetricPrefix + "step_ms"
)

// Timing measures the time between training events on the host, and on a CUDA device with
// events read back once the device has passed them. See the package comment.
type Timing struct {
	callbacks.Base[Params]
	p Params

	// the events timed, in dispatch order, and the intervals between them (slots[i*n+j] for
	// events i → j), created on first use
	names    []string
	closeIdx int
	slots    []*interval
	byName   map[string]*interval
	order    []*interval // first seen first, for the summary line

	prevIdx  int // index of the last timed event, -1 for none
	prevT    int64
	lastStep int64 // env.Step at the last closing event
	hasClose bool
	closeT   int64

	step    *ring // step time (closing event to closing event), ns
	batch   *ring // samples in each of those steps
	hist    history
	steps   int64 // steps timed
	written int64 // steps at the last record
	drawn   int64 // steps at the last chart

	devKnown bool
	dev      bridge.Device
	devTimes *deviceTimes
	note     string // why there is no device timing

	runDir   string
	attached bool
	file     *os.File
	filePath string
	scratch  []int64
	log      func(string) // the env's Log at the last report, for Close
	rt       *rankTimes   // a data-parallel run's all-reduce waits (env.Ranks), nil in one process

	// seams for tests
	now       func() int64
	newSource func(bridge.Device) (eventSource, error)
	stdout    io.Writer
}

// New builds a timing callback with DefaultParams updated by init.
func New(id string, init map[string]any) (*Timing, error) {
	base := time.Now()
	t := &Timing{
		byName:    map[string]*interval{},
		prevIdx:   -1,
		now:       func() int64 { return int64(time.Since(base)) },
		newSource: newCUDASource,
		stdout:    os.Stdout,
	}
	if err := t.Init(id, &t.p, spec.Timing, init, t.apply); err != nil {
		return nil, err
	}
	return t, nil
}

// apply checks new params and puts them to use.
func (t *Timing) apply(old Params, m map[string]any) error {
	np := t.p
	if len(np.Events) == 0 {
		return &params.Error{Key: "events", Value: m["events"], Want: "at least one event"}
	}
	seen := map[string]bool{}
	for _, e := range np.Events {
		if seen[e] {
			return &params.Error{Key: "events", Value: m["events"], Want: "each event once"}
		}
		seen[e] = true
	}
	if np.Out != old.Out || !t.attached {
		if err := t.checkOut(np.Out); err != nil {
			return err
		}
	}
	if !slices.Equal(old.Events, np.Events) || t.names == nil {
		t.index()
	}
	if t.step == nil {
		t.step, t.batch = newRing(np.Window), newRing(np.Window)
	} else if old.Window != np.Window {
		t.resize(np.Window)
	}
	if old.Out != np.Out && t.file != nil {
		t.file.Close()
		t.file = nil
	}
	return nil
}

// checkOut refuses an output path outside the run directory. Before OnAttach the run directory
// is not known: a relative path must then stay below it, and an absolute one is checked at
// attach.
func (t *Timing) checkOut(out string) error {
	bad := func(err error) error {
		return &params.Error{Key: "out", Value: out, Want: "a path inside the run directory (" + err.Error() + ")"}
	}
	if !t.attached {
		if !filepath.IsAbs(out) && !filepath.IsLocal(out) {
			return bad(callbacks.ErrOutsideRunDir)
		}
		return nil
	}
	if _, err := callbacks.OutPath(&torchenv.Env{RunDir: t.runDir}, out, false); err != nil {
		return bad(err)
	}
	return nil
}

// index puts the events in dispatch order and starts the intervals afresh (the series already
// measured are kept by name).
func (t *Timing) index() {
	t.names = t.names[:0]
	for _, e := range torchenv.Events {
		if slices.Contains(t.p.Events, e) {
			t.names = append(t.names, e)
		}
	}
	t.closeIdx = len(t.names) - 1
	t.slots = make([]*interval, len(t.names)*len(t.names))
	t.prevIdx, t.hasClose = -1, false
	if t.devTimes != nil {
		t.devTimes.gap = true
	}
}

func (t *Timing) resize(window int) {
	t.step.resize(window)
	t.batch.resize(window)
	for _, iv := range t.byName {
		iv.host.resize(window)
		iv.dev.resize(window)
	}
	if t.devTimes != nil {
		t.devTimes.step.resize(window)
	}
	if t.rt != nil {
		t.rt.waits.resize(window)
	}
}

// OnAttach learns the run directory (checking out against it) and the device.
func (t *Timing) OnAttach(env *torchenv.Env) error {
	if env != nil {
		t.runDir, t.log = env.RunDir, env.Log
	}
	t.attached = true
	if err := t.checkOut(t.p.Out); err != nil {
		return err
	}
	if env != nil {
		t.setDevice(env.Device)
	}
	return nil
}

// setDevice starts device timing on a CUDA device, or says why there is none.
func (t *Timing) setDevice(d bridge.Device) {
	t.dev, t.devKnown = d, true
	t.devTimes, t.note = nil, ""
	if !d.IsCUDA() {
		t.note = fmt.Sprintf("host only: device timing unavailable on %s", d)
		return
	}
	src, err := t.newSource(d)
	if err != nil {
		t.note = fmt.Sprintf("host only: device timing unavailable on %s (%v)", d, err)
		return
	}
	t.devTimes = newDeviceTimes(src, t.p.Window)
}

// deviceFailed turns device timing off after an error, keeping host timing.
func (t *Timing) deviceFailed(err error) {
	t.devTimes = nil
	t.note = fmt.Sprintf("host only: device timing stopped on %s (%v)", t.dev, err)
}

func (t *Timing) eventIndex(event string) int {
	for i, n := range t.names {
		if n == event {
			return i
		}
	}
	return -1
}

func (t *Timing) slot(i, j int) *interval {
	k := i*len(t.names) + j
	if iv := t.slots[k]; iv != nil {
		return iv
	}
	name := intervalName(t.names[i], t.names[j], i == t.closeIdx && t.closeIdx > 0, j == 0)
	iv := t.byName[name]
	if iv == nil {
		iv = &interval{name: name, host: newRing(t.p.Window), dev: newRing(t.p.Window), metric: MetricPrefix + name + "_ms"}
		t.byName[name] = iv
		t.order = append(t.order, iv)
	}
	t.slots[k] = iv
	return iv
}

// Handle timestamps the timed events. It is the hot path: a clock read and a ring write per
// event, a CUDA event record and non-blocking queries on a GPU; the step-closing event also
// reads the batch size, and every `every` steps writes a record.
func (t *Timing) Handle(event string, env *torchenv.Env) error {
	i := t.eventIndex(event)
	if i < 0 {
		if event == torchenv.FitEnd {
			return t.finish(env)
		}
		return nil
	}
	if env == nil {
		env = &torchenv.Env{}
	}
	if !t.devKnown || env.Device != t.dev {
		t.setDevice(env.Device)
	}
	if t.p.Sync && t.dev.IsCUDA() {
		if err := t.synchronize(); err != nil {
			return fmt.Errorf("timing: sync: %w", err)
		}
	}
	now := t.now()
	var iv *interval
	if t.prevIdx >= 0 {
		iv = t.slot(t.prevIdx, i)
		iv.host.push(now - t.prevT)
		if !iv.fresh {
			iv.last, iv.fresh = 0, true
		}
		iv.last += now - t.prevT
	}
	t.prevIdx, t.prevT = i, now
	closes := i == t.closeIdx
	if d := t.devTimes; d != nil {
		err := d.mark(iv, closes, env.Step)
		if err == nil {
			err = d.resolve(4)
		}
		if err != nil {
			t.deviceFailed(err)
		}
	}
	if !closes {
		return nil
	}
	return t.closeStep(env, now)
}

// OnPause does nothing: events stop reaching the callback while it is off (callback.Pauser).
func (t *Timing) OnPause() {}

// OnResume starts afresh after the callback was off: the time it spent off is no interval and
// no step (callback.Pauser).
func (t *Timing) OnResume() {
	t.prevIdx = -1
	t.hasClose = false
}

func (t *Timing) synchronize() error {
	if t.devTimes != nil {
		return t.devTimes.src.Synchronize()
	}
	return bridge.Synchronize(t.dev)
}

func (t *Timing) closeStep(env *torchenv.Env, now int64) error {
	t.lastStep = env.Step
	if env.Ranks != nil {
		if t.rt == nil {
			t.rt = &rankTimes{waits: newRing(t.p.Window)}
		}
		t.rt.ranks = env.Ranks
		t.rt.sample()
	}
	if !t.hasClose {
		t.hasClose, t.closeT = true, now
		for _, iv := range t.order { // not a whole step: not reported
			iv.fresh = false
		}
		return nil
	}
	d := now - t.closeT
	t.closeT = now
	t.step.push(d)
	env.Report(MetricStep, float64(d)/1e6)
	for _, iv := range t.order {
		if iv.fresh {
			env.Report(iv.metric, float64(iv.last)/1e6)
			iv.fresh = false
		}
	}
	if t.rt != nil {
		t.rt.stepped(d)
	}
	t.batch.push(batchSize(env))
	t.hist.push(env.Step, float64(d)/1e6)
	t.steps++
	if t.steps%int64(t.p.Every) != 0 {
		return nil
	}
	err := t.report(env)
	// The record is the instrument's own cost: keep it out of the next interval.
	shift := t.now() - now
	t.prevT += shift
	t.closeT += shift
	return err
}

// batchSize is the first dimension of the inputs, 0 when there are none.
func batchSize(env *torchenv.Env) (n int64) {
	if env.Inputs == nil {
		return 0
	}
	defer func() {
		if recover() != nil { // a freed tensor: no batch size this step
			n = 0
		}
	}()
	if s := env.Inputs.Shape(); len(s) > 0 {
		return s[0]
	}
	return 1
}

// finish completes the run's numbers: device marks still pending are waited for (the run is
// over, so this stalls nothing), a last record covers the steps since the previous one and the
// chart is drawn.
func (t *Timing) finish(env *torchenv.Env) error {
	var errs []string
	if t.devTimes != nil {
		if err := t.devTimes.drain(); err != nil {
			t.deviceFailed(err)
		}
	}
	if t.steps > t.written {
		if err := t.report(env); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if t.steps > t.drawn {
		if err := t.drawChart(env); err != nil {
			errs = append(errs, err.Error())
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("timing: %s", strings.Join(errs, "; "))
	}
	return nil
}

// Close finishes like fit_end (when it has not been seen) and closes the JSONL file.
func (t *Timing) Close() error {
	err := t.finish(nil)
	if t.file != nil {
		if cerr := t.file.Close(); cerr != nil && err == nil {
			err = cerr
		}
		t.file = nil
	}
	return err
}

func (t *Timing) logf(env *torchenv.Env, line string) {
	if env != nil {
		t.log = env.Log
	}
	if t.log != nil {
		t.log(line)
		return
	}
	fmt.Fprintln(t.stdout, line)
}
