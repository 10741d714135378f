// Package torchenv defines the Env a training loop hands to hotcb callbacks at each safe point:
// step, epoch, phase, the model, loss, outputs, batch, optimizer, device, run directory, a log
// sink and free-form extras, plus the standard event names and a dotted-path Lookup
// ("loss", "extra.metrics.val_acc", "model.features.0.weight") for stats and logging callbacks.
package torchenv

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/bridge/nn"
	"github.com/hotcb/hotcb/bridge/optim"
)

// Standard events. A loop dispatches the coarse ones; the phase events are optional and give
// timing callbacks finer intervals.
const (
	FitStart         = "fit_start"
	TrainStepStart   = "train_step_start"
	ForwardEnd       = "forward_end"
	BackwardEnd      = "backward_end"
	OptimizerStepEnd = "optimizer_step_end"
	TrainStepEnd     = "train_step_end"
	TrainBatchEnd    = "train_batch_end"
	ValBatchEnd      = "val_batch_end"
	EpochEnd         = "epoch_end"
	FitEnd           = "fit_end"
)

// Events lists the standard events in the order a loop dispatches them.
var Events = []string{FitStart, TrainStepStart, ForwardEnd, BackwardEnd, OptimizerStepEnd,
	TrainStepEnd, TrainBatchEnd, ValBatchEnd, EpochEnd, FitEnd}

// Env is the state of the run at a safe point. The loop owns it and updates it in place each
// step; callbacks read it during Handle and must not keep tensors beyond the call without
// copying them.
type Env struct {
	Step      int64
	Epoch     float64
	Phase     string // "train", "val", ...
	Framework string // "hotcb-go"
	Model     nn.Module
	Loss      *bridge.Tensor
	Outputs   *bridge.Tensor
	Inputs    *bridge.Tensor
	Targets   *bridge.Tensor
	Optimizer *optim.Optimizer
	Device    bridge.Device
	RunDir    string
	// Log receives one line per message; when nil, the controller's Apply sets it to the
	// controller's own log (hotcb.log and the controller's Log option).
	Log   func(string)
	Extra map[string]any
	// Ranks is the data-parallel run this process is one rank of; nil in one process.
	Ranks Ranks

	stop    atomic.Pointer[string]
	reports reports
}

// MaxReports bounds the names reported between two drains; further names are dropped.
const MaxReports = 1024

// reports are the numbers reported since the last drain.
type reports struct {
	mu      sync.Mutex
	names   []string
	values  []float64
	dropped int64
}

// Report records a number for the run's metrics stream (RUN_DIR/hotcb.metrics.jsonl, see
// package metrics) of the current step: a callback reports from Handle, into the line of the
// safe point's step, and a loop between safe points, into the line of the step of the last
// safe point (the step just trained: its accuracy after the step, validation metrics before
// epoch_end). The kernel collects the reports at each safe point; reporting a name again
// before then replaces its value. Names are the series' names ("grad_norm", "val_loss",
// "time/forward_ms"); a value need not be finite. Without a kernel nothing reads the reports,
// and they are only kept (one value per name, at most MaxReports names).
//
// Report is safe from any goroutine, and allocates nothing for a name reported before: pass
// constant or precomputed names, not strings built at each call.
func (e *Env) Report(name string, v float64) {
	r := &e.reports
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, n := range r.names {
		if n == name {
			r.values[i] = v
			return
		}
	}
	if len(r.names) >= MaxReports {
		r.dropped++
		return
	}
	r.names = append(r.names, name)
	r.values = append(r.values, v)
}

// DrainReports calls f with each number reported since the last drain, in the order the names
// were first reported, and forgets them. f must not call Report. It returns how many names
// were dropped since the last drain because MaxReports were already waiting.
func (e *Env) DrainReports(f func(name string, v float64)) (dropped int64) {
	r := &e.reports
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, n := range r.names {
		f(n, r.values[i])
	}
	clear(r.names) // let the strings go
	r.names, r.values = r.names[:0], r.values[:0]
	dropped, r.dropped = r.dropped, 0
	return dropped
}

// Ranks is a data-parallel run as callbacks see it (the trainer sets Env.Ranks when WORLD_SIZE
// > 1): this rank, the time its training iterations wait for the gradient all-reduce, and a way
// to compare a number across the ranks that a late or lost rank cannot hold up.
type Ranks interface {
	// Rank is this process's rank, Size the number of ranks.
	Rank() int
	Size() int
	// AllReduceWait is how long this rank's backward passes waited for the gradient all-reduce;
	// false before any was measured.
	AllReduceWait() (AllReduceWait, bool)
	// Share publishes v under key (the same on every rank: name it by the step, say) and
	// returns each rank's value (vals[r] is rank r's), waiting at most timeout for the others;
	// a rank that has not published by then is NaN in vals and listed in missing. err is a
	// failure of the channel itself.
	Share(key string, v float64, timeout time.Duration) (vals []float64, missing []int, err error)
}

// AllReduceWait is the time a rank's backward passes spent waiting for the gradient all-reduce:
// the part of the all-reduce not hidden behind the backward pass (from the last gradient ready
// to the last bucket reduced), for the network or for slower ranks. An iteration (a forward
// pass with grad and its backward pass) is measured when the next one begins: after a training
// step, Iteration is the step before.
type AllReduceWait struct {
	Iteration int64         // the latest iteration measured, counting forward passes from 1
	Last      time.Duration // its wait
	LastComm  time.Duration // its all-reduce, hidden or not
	Measured  int64         // iterations measured so far
	Total     time.Duration // their waits summed
	TotalComm time.Duration // their all-reduces summed
}

// Logf formats a line to Log (if set).
func (e *Env) Logf(format string, args ...any) {
	if e != nil && e.Log != nil {
		e.Log(fmt.Sprintf(format, args...))
	}
}

// RequestStop asks the training loop to stop in an orderly way (an anomaly guard, say); the loop
// checks StopRequested at its safe points. The first reason is kept.
func (e *Env) RequestStop(reason string) { e.stop.CompareAndSwap(nil, &reason) }

// StopRequested reports whether a stop was requested, and why.
func (e *Env) StopRequested() (bool, string) {
	if r := e.stop.Load(); r != nil {
		return true, *r
	}
	return false, ""
}

// Lookup resolves a dotted path: "step", "epoch", "phase", "loss", "outputs", "inputs",
// "targets", "device", "run_dir", "model", "optimizer", "model.<module or parameter name>",
// "model.<param>.grad", and "extra.<key>[.<key>...]" through nested map[string]any,
// map[string]float64 and map[string]*bridge.Tensor values.
func (e *Env) Lookup(path string) (any, error) {
	head, rest, _ := strings.Cut(path, ".")
	var v any
	switch head {
	case "step":
		v = e.Step
	case "epoch":
		v = e.Epoch
	case "phase":
		v = e.Phase
	case "framework":
		v = e.Framework
	case "loss":
		v = e.Loss
	case "outputs":
		v = e.Outputs
	case "inputs":
		v = e.Inputs
	case "targets":
		v = e.Targets
	case "device":
		v = e.Device
	case "run_dir":
		v = e.RunDir
	case "optimizer":
		v = e.Optimizer
	case "model":
		if rest == "" {
			v = e.Model
			break
		}
		return e.lookupModel(path, rest)
	case "extra":
		if rest == "" {
			return e.Extra, nil
		}
		return lookupMap(path, e.Extra, rest)
	default:
		return nil, fmt.Errorf("env path %q: unknown root %q (want step, epoch, phase, loss, outputs, inputs, targets, device, run_dir, model, optimizer or extra)", path, head)
	}
	if rest != "" {
		return nil, fmt.Errorf("env path %q: %q has no fields", path, head)
	}
	if isNil(v) {
		return nil, fmt.Errorf("env path %q: not set at this safe point", path)
	}
	return v, nil
}

// LookupTensor is Lookup for paths that must name a tensor.
func (e *Env) LookupTensor(path string) (*bridge.Tensor, error) {
	v, err := e.Lookup(path)
	if err != nil {
		return nil, err
	}
	t, ok := v.(*bridge.Tensor)
	if !ok {
		return nil, fmt.Errorf("env path %q is a %T, not a tensor", path, v)
	}
	return t, nil
}

func isNil(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case *bridge.Tensor:
		return x == nil
	case *optim.Optimizer:
		return x == nil
	case nn.Module:
		return x == nil
	}
	return false
}

func (e *Env) lookupModel(path, rest string) (any, error) {
	if e.Model == nil {
		return nil, fmt.Errorf("env path %q: no model in the env", path)
	}
	if m, ok := nn.Find(e.Model, rest); ok {
		return m, nil
	}
	name, grad := strings.CutSuffix(rest, ".grad")
	for _, p := range nn.StateDict(e.Model) {
		if p.Name == rest && !grad {
			return p.Tensor, nil
		}
	}
	for _, p := range nn.NamedParameters(e.Model) {
		if p.Name == name {
			if !grad {
				return p.Tensor, nil
			}
			g := p.Tensor.Grad()
			if g == nil {
				return nil, fmt.Errorf("env path %q: parameter %s has no gradient yet", path, name)
			}
			return g, nil
		}
	}
	return nil, fmt.Errorf("env path %q: the model has no module, parameter or buffer %q", path, rest)
}

func lookupMap(path string, m map[string]any, rest string) (any, error) {
	var cur any = m
	for _, key := range strings.Split(rest, ".") {
		switch c := cur.(type) {
		case map[string]any:
			v, ok := c[key]
			if !ok {
				return nil, fmt.Errorf("env path %q: no key %q", path, key)
			}
			cur = v
		case map[string]float64:
			v, ok := c[key]
			if !ok {
				return nil, fmt.Errorf("env path %q: no key %q", path, key)
			}
			cur = v
		case map[string]*bridge.Tensor:
			v, ok := c[key]
			if !ok {
				return nil, fmt.Errorf("env path %q: no key %q", path, key)
			}
			cur = v
		default:
			return nil, fmt.Errorf("env path %q: cannot look up %q in a %T", path, key, cur)
		}
	}
	return cur, nil
}
