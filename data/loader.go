package data

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"runtime"
	"runtime/debug"
	"sync"

	"github.com/hotcb/hotcb/bridge"
)

// LoaderOptions configure a Loader.
type LoaderOptions struct {
	BatchSize int    // examples per batch (default 64)
	Shuffle   bool   // visit examples in a random order, a different one each epoch
	Seed      uint64 // epoch e is shuffled from Seed+e: the same seed gives the same orders
	DropLast  bool   // drop the last batch of an epoch if it is smaller than BatchSize
	// Prefetch is how many batches a background goroutine keeps ready while the caller works on
	// the current one (default 2); negative builds each batch in the caller on demand instead.
	Prefetch int
	// Device, if set, is where batches are moved; nil leaves them where the dataset is.
	Device *bridge.Device
	// Sampler, if set, chooses each epoch's indices instead of the dataset's own order (Shuffle
	// must then be false: the sampler shuffles). A DistributedSampler gives each rank of a
	// data-parallel job its share.
	Sampler Sampler
}

// Batch is one batch of an epoch.
type Batch struct {
	X, Y    *bridge.Tensor
	Epoch   int
	Index   int     // batch number within the epoch, from 0
	Indices []int64 // the dataset indices in this batch (read-only)
}

// Free releases the batch's tensors now instead of leaving them to the garbage collector.
func (b Batch) Free() {
	b.X.Free()
	b.Y.Free()
}

// ErrClosed is the error of iterators stopped because their Loader was closed.
var ErrClosed = errors.New("data: loader closed")

// Loader cuts a Dataset into batches. Iterate over an epoch with
//
//	for b := range loader.Epoch(ctx, epoch) { … }
//
// or with Iter's Next/Close. Several epochs may be iterated at once; Close stops all of them.
type Loader struct {
	ds   Dataset
	opts LoaderOptions

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	// mu orders starting a producer (wg.Add) before Close's wg.Wait: without it an Iter racing
	// a Close on another goroutine could Add after Wait began, so Close returned while a
	// producer was still starting (and the race detector flags the WaitGroup misuse).
	mu     sync.Mutex
	closed bool
}

// NewLoader returns a loader over ds. TensorDatasets (and any Batcher) build a batch with one
// gather; other datasets stack their Examples.
func NewLoader(ds Dataset, opts LoaderOptions) (*Loader, error) {
	if opts.BatchSize == 0 {
		opts.BatchSize = 64
	}
	if opts.BatchSize < 0 {
		return nil, fmt.Errorf("data: loader: BatchSize = %d, want > 0", opts.BatchSize)
	}
	if opts.Prefetch == 0 {
		opts.Prefetch = 2
	}
	if ds == nil {
		return nil, fmt.Errorf("data: loader: no dataset")
	}
	if opts.Sampler != nil && opts.Shuffle {
		return nil, fmt.Errorf("data: loader: Shuffle and a Sampler exclude each other (the sampler chooses the order)")
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Loader{ds: ds, opts: opts, ctx: ctx, cancel: cancel}, nil
}

// Len is the number of batches per epoch.
func (l *Loader) Len() int {
	n := l.ds.Len()
	if l.opts.Sampler != nil {
		n = l.opts.Sampler.Len()
	}
	return l.batches(n)
}

// batches is the number of batches n indices make.
func (l *Loader) batches(n int) int {
	b := l.opts.BatchSize
	if l.opts.DropLast {
		return n / b
	}
	return (n + b - 1) / b
}

// Order returns the order in which epoch visits the dataset: 0…N-1, or with Shuffle a
// permutation drawn from Seed+epoch, or the Sampler's indices.
func (l *Loader) Order(epoch int) []int64 {
	if l.opts.Sampler != nil {
		return l.opts.Sampler.Indices(epoch)
	}
	n := l.ds.Len()
	order := make([]int64, n)
	for i := range order {
		order[i] = int64(i)
	}
	if l.opts.Shuffle {
		r := newRNG(l.opts.Seed+uint64(epoch), 0x73687566666c65) // "shuffle"
		for i := n - 1; i > 0; i-- {
			j := r.intn(i + 1)
			order[i], order[j] = order[j], order[i]
		}
	}
	return order
}

// Close stops every running iteration and waits for the background goroutines to exit.
// Iterations started afterwards yield nothing and report ErrClosed.
func (l *Loader) Close() error {
	l.mu.Lock()
	l.closed = true
	l.cancel()
	l.mu.Unlock()
	l.wg.Wait()
	return nil
}

// Epoch returns the batches of one epoch as a range-over-func sequence. Leaving the loop early
// stops the prefetching goroutine. The sequence ends early when ctx is done or the loader is
// closed (check ctx.Err() after the loop). A batch that fails to build (a *bridge.Error, say)
// panics in the loop with the same value, as the tensor operation would have there.
func (l *Loader) Epoch(ctx context.Context, epoch int) iter.Seq[Batch] {
	return func(yield func(Batch) bool) {
		it := l.Iter(ctx, epoch)
		defer it.Close()
		for {
			b, ok := it.Next()
			if !ok || !yield(b) {
				return
			}
		}
	}
}

// Iterator walks one epoch: for b, ok := it.Next(); ok; b, ok = it.Next() { … }, then Close.
// An Iterator belongs to one goroutine; Loader.Close may be called from any.
type Iterator struct {
	l       *Loader
	epoch   int
	order   []int64
	next    int // next batch to build (synchronous mode) or receive
	total   int
	ctx     context.Context
	cancel  context.CancelCauseFunc
	stopCtx func() bool
	queue   chan result // nil in synchronous mode
	done    bool
	err     error
}

type result struct {
	b     Batch
	panic any
}

// Iter starts iterating over one epoch; with Prefetch > 0 the background goroutine starts
// building batches at once. Call Close when done (Next returning false closes it too).
func (l *Loader) Iter(ctx context.Context, epoch int) *Iterator {
	ictx, cancel := context.WithCancelCause(ctx)
	order := l.Order(epoch)
	it := &Iterator{l: l, epoch: epoch, order: order, total: l.batches(len(order)), ctx: ictx, cancel: cancel}
	it.stopCtx = context.AfterFunc(l.ctx, func() { cancel(ErrClosed) })
	if l.ctx.Err() != nil {
		cancel(ErrClosed)
	}
	if l.opts.Prefetch > 0 && ictx.Err() == nil {
		l.mu.Lock()
		if l.closed {
			l.mu.Unlock()
			cancel(ErrClosed)
			return it
		}
		it.queue = make(chan result, l.opts.Prefetch)
		l.wg.Add(1)
		l.mu.Unlock()
		go it.produce()
	}
	return it
}

// produce builds the epoch's batches in order and queues them until the epoch ends or the
// iterator is stopped. It runs on one locked OS thread: libtorch's allocations then come from
// one malloc arena instead of whichever threads the goroutine wanders over.
func (it *Iterator) produce() {
	defer it.l.wg.Done()
	defer close(it.queue)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	for k := 0; k < it.total; k++ {
		if it.ctx.Err() != nil {
			return
		}
		r := it.build(k)
		select {
		case it.queue <- r:
		case <-it.ctx.Done():
			if r.panic == nil {
				r.b.Free()
			}
			return
		}
		if r.panic != nil {
			return
		}
	}
}

// build makes batch k, catching a panic so that it can be raised in the consumer.
func (it *Iterator) build(k int) (r result) {
	defer func() {
		if p := recover(); p != nil {
			if _, ok := p.(*bridge.Error); !ok {
				p = fmt.Sprintf("data: building batch %d of epoch %d: %v\n%s", k, it.epoch, p, debug.Stack())
			}
			r = result{panic: p}
		}
	}()
	bs := it.l.opts.BatchSize
	idx := it.order[k*bs : min((k+1)*bs, len(it.order))]
	var x, y *bridge.Tensor
	if bd, ok := it.l.ds.(Batcher); ok {
		x, y = bd.Batch(idx)
	} else {
		xs, ys := make([]*bridge.Tensor, len(idx)), make([]*bridge.Tensor, len(idx))
		for j, i := range idx {
			xs[j], ys[j] = it.l.ds.Example(int(i))
		}
		x, y = bridge.Stack(xs, 0), bridge.Stack(ys, 0)
	}
	if dev := it.l.opts.Device; dev != nil {
		x, y = x.To(*dev), y.To(*dev)
	}
	return result{b: Batch{X: x, Y: y, Epoch: it.epoch, Index: k, Indices: idx}}
}

// Next returns the next batch, or false at the end of the epoch, when ctx is done or when the
// loader is closed (Err says which). It panics with the value that building the batch panicked
// with (a *bridge.Error for a failing tensor operation).
func (it *Iterator) Next() (Batch, bool) {
	if it.done {
		return Batch{}, false
	}
	if it.ctx.Err() != nil {
		it.finish()
		return Batch{}, false
	}
	var r result
	if it.queue == nil {
		if it.next >= it.total {
			it.finish()
			return Batch{}, false
		}
		r = it.build(it.next)
	} else {
		var ok bool
		select {
		case r, ok = <-it.queue:
		case <-it.ctx.Done():
		}
		if !ok || it.ctx.Err() != nil {
			if ok && r.panic == nil {
				r.b.Free()
			}
			it.finish()
			return Batch{}, false
		}
	}
	if r.panic != nil {
		it.finish()
		panic(r.panic)
	}
	it.next++
	return r.b, true
}

// Err is nil after a complete epoch (or an explicit Close), ctx's error if ctx ended the
// iteration, or ErrClosed if the loader was closed.
func (it *Iterator) Err() error { return it.err }

// finish stops the producer, frees batches it queued and waits for it to exit.
func (it *Iterator) finish() {
	if it.done {
		return
	}
	it.done = true
	if it.next < it.total && it.ctx.Err() != nil {
		it.err = context.Cause(it.ctx)
	}
	it.cancel(nil)
	it.stopCtx()
	if it.queue != nil {
		for r := range it.queue { // closed by the producer when it exits
			if r.panic == nil {
				r.b.Free()
			}
		}
	}
}

// Close stops the iteration and its goroutine; batches already returned stay valid.
func (it *Iterator) Close() { it.finish() }
