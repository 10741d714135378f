package kernel

import (
	"math"
	"strconv"
	"time"

	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/bridge/optim"
	"github.com/hotcb/hotcb/metrics"
	"github.com/hotcb/hotcb/torchenv"
)

// MetricsOptions configure the run's metrics stream, RUN_DIR/hotcb.metrics.jsonl (package
// metrics), which the kernel of rank 0 writes.
type MetricsOptions struct {
	// Off writes no metrics stream.
	Off bool
	// Stream tunes the writer: decimation, flushing. Its Log defaults to the kernel's log.
	Stream metrics.Options
}

// Names of the metrics the kernel reads itself.
const (
	MetricLoss         = "loss"          // env.Loss at the end of the step
	MetricLR           = "lr"            // the learning rate of param group 0; "lr/1", "lr/2", … the others'
	MetricStepsPerS    = "steps_per_s"   // steps per second since the previous line
	MetricSamplesPerS  = "samples_per_s" // steps_per_s × the step's batch (env.Inputs' first dimension) × ranks
	maxQueuedForDevice = 64              // lines waiting for a device value before the kernel waits for the device
)

// stream writes the metrics stream. At each safe point it takes what was reported through
// env.Report; at the end of a training step — a safe point with optimizer_step_end,
// train_step_end or train_batch_end outside the "val" phase — it also reads, unless reported,
// the loss (env.Loss), the learning rates (of env.Optimizer, else of the optimizer registered as
// "main") and the throughput, but only for a step the stride writes. What is reported between
// two safe points goes into the line of the step of the first one. The line of step s is
// written at the first safe point of another step (or at Close). Values reported at
// val_batch_end, epoch_end or fit_end (validation) make their step's line one that is always
// written.
//
// A loss on a CUDA device is not read at once, which would wait for the device: it is copied
// to pinned host memory without blocking, behind a CUDA event, and the line waits until the
// event has passed (lines stay in order); only when maxQueuedForDevice lines wait does the
// kernel wait for the device.
type stream struct {
	w      *metrics.Writer
	k      *Kernel
	cur    metrics.Entry
	open   bool                  // cur holds a step
	ended  bool                  // cur's step end was seen
	set    func(string, float64) // s.cur.Set, bound once
	endAt  time.Time
	steps  int64 // step ends seen
	batch  int64 // the batch of cur's step
	world  int
	prevAt time.Time // at the previous line with throughput
	prevN  int64
	lr     []string

	dev      scalarSource // for a loss on a device; nil until one is seen
	deviceOf func(*bridge.Tensor) bridge.Device
	devErr   bool
	pending  pendingRead // cur's loss, on its way from the device
	queue    []queued    // lines waiting for a device value, oldest first
	free     []*metrics.Entry
}

// scalarSource reads one-element device tensors to the host without blocking.
type scalarSource interface {
	begin(t *bridge.Tensor) (pendingRead, error)
	sync() error // waits for the device
}

type pendingRead interface {
	ready() (bool, error) // never blocks
	value() (float64, error)
	release()
}

type queued struct {
	e *metrics.Entry
	r pendingRead
}

func (k *Kernel) openMetrics() {
	if k.opts.Metrics.Off || !k.leader() {
		return
	}
	o := k.opts.Metrics.Stream
	if o.Log == nil {
		o.Log = func(s string) { k.ctl.Logf(nil, "%s", s) }
	}
	w, err := metrics.Open(k.dir.Path(metrics.File), o)
	if err != nil {
		k.ctl.Logf(nil, "metrics: %v (no metrics stream for this run; training goes on)", err)
		return
	}
	s := &stream{w: w, k: k, world: 1, deviceOf: (*bridge.Tensor).Device}
	s.set = s.cur.Set
	k.metrics = s
}

// enter runs at the start of each safe point: at the first one of another step, what was
// reported since the last safe point goes into the previous step's line, which is finished.
func (s *stream) enter(env *torchenv.Env, events []string) {
	if len(events) > 0 && env != nil && s.open && env.Step != s.cur.Step {
		env.DrainReports(s.set)
		s.finish()
	}
}

// observe runs at the end of each safe point. A call without events (a status snapshot) is
// no step's: only lines waiting for the device are looked at.
func (s *stream) observe(env *torchenv.Env, events []string) {
	if len(s.queue) > 0 {
		s.drain(false)
	}
	if env == nil || len(events) == 0 {
		return
	}
	if s.open && env.Step != s.cur.Step { // env.Step changed during the safe point
		s.finish()
	}
	if !s.open {
		s.cur.Reset(env.Step)
		s.open, s.ended, s.batch = true, false, 0
	}
	s.cur.Epoch = env.Epoch
	end, val := false, env.Phase == "val"
	for _, ev := range events {
		switch ev {
		case torchenv.OptimizerStepEnd, torchenv.TrainStepEnd, torchenv.TrainBatchEnd:
			end = true
		case torchenv.ValBatchEnd, torchenv.EpochEnd, torchenv.FitEnd:
			val = true
		}
	}
	n := s.cur.Len()
	env.DrainReports(s.set)
	if val && s.cur.Len() > n {
		s.cur.Keep = true
	}
	if end && !val && !s.ended {
		s.stepEnd(env)
	}
}

// stepEnd reads what the kernel reads itself, for a step the stride writes.
func (s *stream) stepEnd(env *torchenv.Env) {
	s.ended = true
	s.steps++
	s.endAt = time.Now()
	s.cur.WallTime = float64(s.endAt.UnixMicro()) / 1e6
	if env.Ranks != nil {
		s.world = env.Ranks.Size()
	}
	if !s.w.Due(s.cur.Step) {
		return
	}
	s.lrs(env.Optimizer)
	if env.Inputs != nil {
		_ = bridge.Try(func() {
			if sh := env.Inputs.Shape(); len(sh) > 0 {
				s.batch = sh[0]
			}
		})
	}
	if _, ok := s.cur.Get(MetricLoss); !ok && env.Loss != nil {
		s.loss(env.Loss)
	}
}

func (s *stream) lrs(o *optim.Optimizer) {
	if o == nil {
		o = s.k.optimizers.opts["main"]
	}
	if o == nil {
		return
	}
	for g := range o.NumGroups() {
		for len(s.lr) <= g {
			s.lr = append(s.lr, MetricLR+"/"+strconv.Itoa(len(s.lr)))
		}
		name := s.lr[g]
		if g == 0 {
			name = MetricLR
		}
		if _, ok := s.cur.Get(name); !ok {
			s.cur.Set(name, o.LR(g))
		}
	}
}

// loss reads a loss on the CPU now, and starts the copy of one on a device.
func (s *stream) loss(t *bridge.Tensor) {
	var v float64
	var dev bridge.Device
	err := bridge.Try(func() {
		if dev = s.deviceOf(t); !dev.IsCUDA() {
			v = t.Item()
		}
	})
	switch {
	case err != nil: // not a scalar, or freed: no loss this step
	case !dev.IsCUDA():
		s.cur.Set(MetricLoss, v)
	case !s.devErr:
		if s.dev == nil {
			s.dev = newCUDAScalars(dev)
		}
		r, err := s.dev.begin(t)
		if err != nil {
			s.devErr = true
			s.k.ctl.Logf(nil, "metrics: cannot copy the loss from %s without blocking (%v): no loss in the metrics stream; report it with env.Report(%q, v)", dev, err, MetricLoss)
			return
		}
		s.cur.Set(MetricLoss, math.NaN()) // its place; the value comes with the device
		s.pending = r
	}
}

// finish hands cur to the writer, or to the queue when a device value is on its way.
func (s *stream) finish() {
	s.open = false
	e := &s.cur
	if s.ended && s.w.Wants(e) {
		if !s.prevAt.IsZero() && s.endAt.After(s.prevAt) && s.steps > s.prevN {
			rate := float64(s.steps-s.prevN) / s.endAt.Sub(s.prevAt).Seconds()
			e.Set(MetricStepsPerS, rate)
			if s.batch > 0 {
				e.Set(MetricSamplesPerS, rate*float64(s.batch)*float64(s.world))
			}
		}
		s.prevAt, s.prevN = s.endAt, s.steps
	}
	if s.pending == nil && len(s.queue) == 0 {
		s.w.Write(e)
		return
	}
	var q *metrics.Entry
	if n := len(s.free); n > 0 {
		q, s.free = s.free[n-1], s.free[:n-1]
	} else {
		q = new(metrics.Entry)
	}
	q.CopyFrom(e)
	s.queue = append(s.queue, queued{e: q, r: s.pending})
	s.pending = nil
	s.drain(false)
}

// drain writes the queued lines whose device values have arrived, in order; with wait, or
// when too many wait, it waits for the device first.
func (s *stream) drain(wait bool) {
	if s.dev != nil && (wait || len(s.queue) > maxQueuedForDevice) {
		if err := s.dev.sync(); err != nil {
			s.k.ctl.Logf(nil, "metrics: waiting for the device: %v", err)
		}
	}
	n := 0
	for _, q := range s.queue {
		if q.r != nil {
			ok, err := q.r.ready()
			if err == nil && !ok {
				break
			}
			if err == nil {
				var v float64
				if v, err = q.r.value(); err == nil {
					q.e.Set(MetricLoss, v)
				}
			}
			q.r.release()
			// On an error the loss stays NaN: the line is written all the same.
		}
		s.w.Write(q.e)
		s.free = append(s.free, q.e)
		n++
	}
	m := copy(s.queue, s.queue[n:])
	clear(s.queue[m:])
	s.queue = s.queue[:m]
}

// close writes the last step's line and the queued ones, and closes the file.
func (s *stream) close() error {
	if s.open {
		s.finish()
	}
	if len(s.queue) > 0 {
		s.drain(true)
	}
	return s.w.Close()
}

// cudaScalars copies device scalars into pinned host memory (non_blocking) behind CUDA events.
type cudaScalars struct {
	dev  bridge.Device
	free []*bridge.Event
}

func newCUDAScalars(dev bridge.Device) *cudaScalars { return &cudaScalars{dev: dev} }

func (c *cudaScalars) begin(t *bridge.Tensor) (pendingRead, error) {
	var ev *bridge.Event
	if n := len(c.free); n > 0 {
		ev, c.free = c.free[n-1], c.free[:n-1]
	} else {
		var err error
		if ev, err = bridge.NewEvent(); err != nil {
			return nil, err
		}
	}
	var host *bridge.Tensor
	err := bridge.Try(func() { host = bridge.Keep(t.ToNonBlocking(bridge.CPU)) })
	if err == nil {
		err = ev.Record(c.dev)
	}
	if err != nil {
		c.free = append(c.free, ev)
		return nil, err
	}
	return &cudaRead{c: c, host: host, ev: ev}, nil
}

func (c *cudaScalars) sync() error { return bridge.Synchronize(c.dev) }

type cudaRead struct {
	c    *cudaScalars
	host *bridge.Tensor
	ev   *bridge.Event
}

func (r *cudaRead) ready() (bool, error) { return r.ev.Done() }

func (r *cudaRead) value() (v float64, err error) {
	err = bridge.Try(func() { v = r.host.Item() })
	return v, err
}

func (r *cudaRead) release() {
	r.c.free = append(r.c.free, r.ev)
	r.host.Free()
}
