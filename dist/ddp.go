package dist

import (
	"fmt"
	"sync"
	"time"

	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/bridge/nn"
)

// DDPOptions tune NewDDP; the zero value is PyTorch's DistributedDataParallel defaults.
type DDPOptions struct {
	// BucketCapMB is the size of a gradient bucket, in MiB (default 25). The first bucket
	// reduced (the last parameters' gradients) is FirstBucketMB (default 1): its all-reduce
	// starts as early as possible.
	BucketCapMB, FirstBucketMB float64
	// FindUnusedParameters lets a forward pass leave parameters out (a rank that did not use
	// one adds zeros to its average; one that no rank used gets no gradient); it costs a
	// traversal of the graph per step. Pass the forward's outputs to EndForward.
	FindUnusedParameters bool
	// NoBroadcastBuffers keeps each rank's buffers (BatchNorm's running statistics) its own
	// instead of copying rank 0's before each forward pass (PyTorch's broadcast_buffers=False).
	NoBroadcastBuffers bool
	// CommStatsEvery is how often c10d times an iteration for CommStats: every iteration by
	// default (1), one in CommStatsEvery otherwise (and the first 10); negative: never. On a
	// GPU, timing an iteration waits for its CUDA events at the next forward pass.
	CommStatsEvery int
}

// DDP is a model replicated on every rank whose gradients are averaged over the group during
// the backward pass (torch.nn.parallel.DistributedDataParallel). See the package documentation
// for the training loop.
type DDP struct {
	g       *Group
	model   nn.AnyModule
	opts    DDPOptions
	params  []bridge.Named
	buffers []*bridge.Tensor
	r       *bridge.Reducer

	mu       sync.Mutex
	syncBufs bool // PyTorch's require_forward_param_sync: broadcast buffers before the next forward
	forward  bool // between BeginForward and EndForward
	withGrad bool // that forward records autograd
	reducing bool // the next backward pass reduces gradients (EndForward after a grad forward)
}

// NewDDP wraps model, which every rank has built alike: it checks that all ranks hold the same
// parameters (count, shapes, dtypes), copies rank 0's parameters and buffers to the others,
// and hooks the parameters' gradients (those that require grad) into c10d's Reducer. Every rank
// calls it at the same point.
func NewDDP(g *Group, model nn.AnyModule, opts DDPOptions) (*DDP, error) {
	if opts.BucketCapMB == 0 {
		opts.BucketCapMB = 25
	}
	if opts.FirstBucketMB == 0 {
		opts.FirstBucketMB = 1
	}
	if opts.BucketCapMB < 0 || opts.FirstBucketMB < 0 {
		return nil, fmt.Errorf("dist: DDP: bucket sizes %v and %v MiB, want positive", opts.FirstBucketMB, opts.BucketCapMB)
	}
	d := &DDP{g: g, model: model, opts: opts, syncBufs: true}
	for _, p := range nn.NamedParameters(model) {
		if p.Tensor.RequiresGrad() {
			d.params = append(d.params, p)
		}
	}
	if len(d.params) == 0 {
		return nil, fmt.Errorf("dist: DDP: the model has no parameter that requires grad")
	}
	for _, b := range nn.NamedBuffers(model) {
		d.buffers = append(d.buffers, b.Tensor)
	}
	// The Reducer's construction compares the parameters across ranks first; then rank 0's
	// state goes to everyone (PyTorch checks, then broadcasts, then builds the Reducer: the
	// order does not matter, every step is collective).
	var r *bridge.Reducer
	err := g.collective("DDP construction", func() error {
		var err error
		r, err = bridge.NewReducer(g.pg, d.params, mib(opts.BucketCapMB), mib(opts.FirstBucketMB), opts.FindUnusedParameters)
		return err
	})
	if err != nil {
		return nil, err
	}
	d.r = r
	if every := opts.CommStatsEvery; every != 0 && every != 1 {
		if err := r.SetStatsEvery(every); err != nil {
			r.Close()
			return nil, d.g.wrap("DDP construction", 0, err)
		}
	}
	state := make([]*bridge.Tensor, 0, len(d.params)+len(d.buffers))
	for _, p := range nn.NamedParameters(model) { // every parameter, frozen ones too (as PyTorch)
		state = append(state, p.Tensor)
	}
	state = append(state, d.buffers...)
	if err := g.broadcastCoalesced("DDP: broadcasting rank 0's parameters and buffers", state, 0); err != nil {
		r.Close()
		return nil, err
	}
	return d, nil
}

func mib(mb float64) int64 { return max(1, int64(mb*(1<<20))) }

// Module is the wrapped model.
func (d *DDP) Module() nn.AnyModule { return d.model }

// Forward runs the model's Forward between BeginForward and EndForward, for models whose
// Forward maps one tensor to one tensor (an nn.Module). Like a module's Forward it panics on
// failure, with a *bridge.Error that wraps the *Error (bridge.Try recovers it).
func (d *DDP) Forward(x *bridge.Tensor) *bridge.Tensor {
	m, ok := d.model.(nn.Module)
	if !ok {
		panic(&bridge.Error{Op: "DDP forward", Msg: fmt.Sprintf("the model (%T) has no Forward(x) y: call BeginForward, its Forward, then EndForward", d.model)})
	}
	if err := d.BeginForward(); err != nil {
		panic(&bridge.Error{Op: "DDP forward", Msg: err.Error(), Err: err})
	}
	returned := false
	defer func() {
		if !returned { // the model's Forward panicked: this forward pass is abandoned
			d.mu.Lock()
			d.forward = false
			d.mu.Unlock()
		}
	}()
	y := m.Forward(x)
	returned = true
	if err := d.EndForward(y); err != nil {
		panic(&bridge.Error{Op: "DDP forward", Msg: err.Error(), Err: err})
	}
	return y
}

// BeginForward goes right before the model's forward pass. With grad enabled it lets the
// Reducer rebuild its buckets (once, after the first backward pass, in the order gradients
// arrived); and it copies rank 0's buffers to every rank (unless NoBroadcastBuffers), as PyTorch
// does before a forward pass that follows a training one.
func (d *DDP) BeginForward() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	grad := bridge.GradEnabled() // a BeginForward without EndForward is abandoned: this one starts over
	if grad {
		err := d.g.collective("DDP forward (bucket rebuild)", func() error {
			_, err := d.r.PreForward()
			return err
		})
		if err != nil {
			return err
		}
	}
	if d.syncBufs && !d.opts.NoBroadcastBuffers && len(d.buffers) > 0 {
		if err := d.g.broadcastCoalesced("DDP forward (broadcasting rank 0's buffers)", d.buffers, 0); err != nil {
			return err
		}
	}
	d.forward, d.withGrad = true, grad
	return nil
}

// EndForward goes right after the model's forward pass: when that pass recorded autograd, the
// next backward pass averages the gradients. outputs are the forward's results; they are needed
// only with FindUnusedParameters (to find the parameters they do not depend on).
func (d *DDP) EndForward(outputs ...*bridge.Tensor) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.forward {
		return d.misuse("EndForward without BeginForward")
	}
	d.forward = false
	if !d.withGrad {
		d.syncBufs = false
		return nil
	}
	d.syncBufs = true
	if !d.opts.FindUnusedParameters {
		outputs = nil
	}
	err := d.g.collective("DDP prepare_for_backward", func() error { return d.r.PrepareBackward(outputs) })
	d.reducing = err == nil
	return err
}

func (d *DDP) misuse(msg string) error {
	return &Error{Op: "DDP", Rank: d.g.rank, Msg: fmt.Sprintf("DDP on rank %d: %s", d.g.rank, msg)}
}

// Backward runs loss.Backward(): after a DDP forward pass, the gradients it leaves are averaged
// over the ranks. It returns the failure (a peer lost, a timeout) as an *Error instead of the
// panic of loss.Backward(). A backward pass that fails while it reduces gradients breaks the
// group (Group.Err; the ranks' collectives are out of step): close the DDP and the group.
func (d *DDP) Backward(loss *bridge.Tensor) error {
	d.mu.Lock()
	reducing := d.reducing
	d.reducing = false
	d.mu.Unlock()
	err := bridge.Try(func() { loss.Backward() })
	if err == nil {
		return nil
	}
	e := d.g.wrap("DDP backward", d.g.opts.Timeout, err)
	if reducing {
		// The ranks' reductions are out of step now (a lost peer, or this rank's backward pass
		// stopped between buckets): no later collective can pair up.
		d.g.fail(e)
	}
	return e
}

// Buckets lists the parameters' names bucket by bucket, in the order the buckets are reduced
// (the last layers first). Before the first backward pass every parameter is in one bucket.
func (d *DDP) Buckets() ([][]string, error) {
	of, n, err := d.r.Buckets()
	if err != nil {
		return nil, d.g.wrap("DDP buckets", 0, err)
	}
	out := make([][]string, n)
	for i, b := range of {
		if b >= 0 && b < n {
			out[b] = append(out[b], d.params[i].Name)
		}
	}
	return out, nil
}

// CommStats are the times of DDP iterations — a forward pass with grad through the DDP and the
// backward pass after it — as c10d's DDP Logger measures them (what PyTorch's
// DistributedDataParallel._get_ddp_logging_data reports): host times on the CPU, CUDA event
// times on a GPU.
type CommStats struct {
	// Iteration is the latest iteration measured, counting forward passes with grad from 1.
	// c10d measures an iteration when the next one's forward pass begins (BeginForward), so
	// after a training step's backward pass it is still the step before.
	Iteration int64
	// Forward runs from BeginForward to EndForward; BackwardCompute from EndForward to the last
	// gradient ready (the loss, zero_grad and the backward pass).
	Forward, BackwardCompute time.Duration
	// BackwardComm runs from the first bucket's all-reduce to the end of the last one; Overlap
	// is the part of it during which the backward pass was still computing gradients.
	BackwardComm, Overlap time.Duration
	// Wait is BackwardComm - Overlap: from the last gradient ready to the last all-reduce done,
	// the time the backward pass waited for the other ranks and the network. A rank that
	// computes faster than the others waits for them here.
	Wait time.Duration
	// Measured counts the iterations measured so far (those with a backward pass); TotalWait
	// and TotalComm sum their Wait and BackwardComm.
	Measured             int64
	TotalWait, TotalComm time.Duration
}

// CommStats returns the times of the latest iteration measured and the totals so far; false
// before any iteration was measured (before the second forward pass), when the Reducer is
// closed, or when measuring failed (it then stops, and the training goes on).
func (d *DDP) CommStats() (CommStats, bool) {
	s, err := d.r.Stats()
	if err != nil || s.Iteration == 0 {
		return CommStats{}, false
	}
	return CommStats{
		Iteration: s.Iteration, Forward: time.Duration(s.Forward), BackwardCompute: time.Duration(s.BackwardCompute),
		BackwardComm: time.Duration(s.BackwardComm), Overlap: time.Duration(s.Overlap), Wait: time.Duration(s.Wait),
		Measured: s.Measured, TotalWait: time.Duration(s.TotalWait), TotalComm: time.Duration(s.TotalComm),
	}, true
}

// Close unhooks the Reducer: later backward passes accumulate local gradients only. It does
// not close the group.
func (d *DDP) Close() {
	d.r.Close()
}
