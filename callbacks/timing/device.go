package timing

import (
	"github.com/hotcb/hotcb/bridge"
)

// eventSource puts timestamps into a device's stream: CUDA events on a GPU, a fake clock in
// tests. Record only enqueues; whether the device has got there is asked later with Done, which
// never blocks, so timing never stalls the loop unless sync is asked for.
type eventSource interface {
	// Record enqueues a mark on the device's current stream.
	Record() (deviceEvent, error)
	// Synchronize waits for the device: only with sync=true, and at the end of the run.
	Synchronize() error
	// Release hands back an event that will not be used again, for reuse.
	Release(deviceEvent)
}

// deviceEvent is one mark in a device stream.
type deviceEvent interface {
	// Done reports whether the device has passed the mark; it must not block.
	Done() (bool, error)
	// ElapsedMs is the device time from this mark to end; both must be done.
	ElapsedMs(end deviceEvent) (float64, error)
}

// cudaSource records pooled CUDA events on one device.
type cudaSource struct {
	dev  bridge.Device
	free []*bridge.Event
}

// cudaEvent holds only a pointer, so storing it in an interface does not allocate.
type cudaEvent struct{ e *bridge.Event }

// newCUDASource checks that the shim can make events (a CPU-only shim cannot).
func newCUDASource(dev bridge.Device) (eventSource, error) {
	e, err := bridge.NewEvent()
	if err != nil {
		return nil, err
	}
	return &cudaSource{dev: dev, free: []*bridge.Event{e}}, nil
}

func (s *cudaSource) Record() (deviceEvent, error) {
	var e *bridge.Event
	if n := len(s.free); n > 0 {
		e, s.free = s.free[n-1], s.free[:n-1]
	} else {
		var err error
		if e, err = bridge.NewEvent(); err != nil {
			return nil, err
		}
	}
	if err := e.Record(s.dev); err != nil {
		s.free = append(s.free, e)
		return nil, err
	}
	return cudaEvent{e}, nil
}

func (s *cudaSource) Synchronize() error { return bridge.Synchronize(s.dev) }

func (s *cudaSource) Release(ev deviceEvent) {
	if c, ok := ev.(cudaEvent); ok {
		s.free = append(s.free, c.e)
	}
}

func (c cudaEvent) Done() (bool, error) { return c.e.Done() }

func (c cudaEvent) ElapsedMs(end deviceEvent) (float64, error) {
	ms, err := c.e.ElapsedMs(end.(cudaEvent).e)
	return float64(ms), err
}

// pendingMark is a device mark whose time is not known yet.
type pendingMark struct {
	ev     deviceEvent
	slot   *interval // the interval that ends at this mark; nil when there is no previous mark
	closes bool      // the mark is at the step-closing event
	step   int64     // env.Step when it was recorded
}

// maxPending bounds the marks waiting for the device. A GPU rarely runs more than a few steps
// behind the host; if it does, marks are skipped (and counted) rather than piling up.
const maxPending = 1024

// deviceTimes turns marks into device intervals as the device completes them.
type deviceTimes struct {
	src     eventSource
	queue   []pendingMark // ring of maxPending
	head, n int
	prev    deviceEvent // the last completed mark
	gap     bool        // a mark was skipped: the next one starts a new chain
	dropped int64

	stepAcc     float64 // device ms since the last closing mark
	stepStarted bool
	step        *ring
	hist        history
}

func newDeviceTimes(src eventSource, window int) *deviceTimes {
	return &deviceTimes{src: src, queue: make([]pendingMark, maxPending), step: newRing(window)}
}

// mark records a device event for the interval slot (nil for none). The error leaves the
// chain consistent: the caller turns device timing off.
func (d *deviceTimes) mark(slot *interval, closes bool, step int64) error {
	if d.n == maxPending {
		d.dropped++
		d.gap = true
		return nil
	}
	ev, err := d.src.Record()
	if err != nil {
		return err
	}
	if d.gap {
		slot, d.gap = nil, false
	}
	d.queue[(d.head+d.n)%maxPending] = pendingMark{ev: ev, slot: slot, closes: closes, step: step}
	d.n++
	return nil
}

// resolve takes up to limit completed marks off the queue (limit < 0: all that are done),
// asking the device only with Done.
func (d *deviceTimes) resolve(limit int) error {
	for d.n > 0 && limit != 0 {
		m := d.queue[d.head]
		done, err := m.ev.Done()
		if err != nil {
			return err
		}
		if !done {
			return nil
		}
		if limit > 0 {
			limit--
		}
		d.queue[d.head] = pendingMark{}
		d.head = (d.head + 1) % maxPending
		d.n--
		if err := d.complete(m); err != nil {
			return err
		}
	}
	return nil
}

func (d *deviceTimes) complete(m pendingMark) error {
	defer func() {
		if d.prev != nil {
			d.src.Release(d.prev)
		}
		d.prev = m.ev
	}()
	if m.slot == nil || d.prev == nil {
		d.stepAcc, d.stepStarted = 0, m.closes
		return nil
	}
	elapsed, err := d.prev.ElapsedMs(m.ev)
	if err != nil {
		d.stepAcc, d.stepStarted = 0, false
		return err
	}
	ns := int64(elapsed * 1e6)
	m.slot.dev.push(ns)
	d.stepAcc += elapsed
	if m.closes {
		if d.stepStarted {
			d.step.push(int64(d.stepAcc * 1e6))
			d.hist.push(m.step, d.stepAcc)
		}
		d.stepAcc, d.stepStarted = 0, true
	}
	return nil
}

// drain waits for the device and resolves every mark: at the end of the run only.
func (d *deviceTimes) drain() error {
	if d.n == 0 {
		return nil
	}
	if err := d.src.Synchronize(); err != nil {
		return err
	}
	return d.resolve(-1)
}
