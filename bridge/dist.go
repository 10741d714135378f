package bridge

// #include <stdlib.h>
// #include "hotcb_torch.h"
import "C"

import (
	"math"
	"runtime"
	"sync"
	"time"
	"unsafe"
)

// The C side of torch.distributed (cpp/dist.cpp): a TCPStore, process groups and DDP's
// Reducer. Package dist builds the API training code uses on these; they are thin on purpose.
// Every method returns a *Error (Op names the call, Msg says which rank failed and within what
// timeout); none panics. A handle is released by Close, or by the garbage collector when
// forgotten; Close waits for calls in flight on other goroutines.

// handle guards a C handle: calls hold the read lock, so Close (the write lock) never frees a
// handle a call is using.
type handle struct {
	mu     sync.RWMutex
	closed bool
}

func (h *handle) use(op, what string) (func(), error) {
	h.mu.RLock()
	if h.closed {
		h.mu.RUnlock()
		return nil, &Error{Op: op, Msg: "the " + what + " is closed"}
	}
	return h.mu.RUnlock, nil
}

// close marks the handle closed and runs free once.
func (h *handle) close(free func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.closed {
		h.closed = true
		free()
	}
}

func millis(d time.Duration) C.int64_t {
	if d <= 0 {
		return 0
	}
	ms := d.Milliseconds()
	if ms == 0 {
		ms = 1
	}
	return C.int64_t(ms)
}

// cStrings returns C copies of ss and a function that frees them.
func cStrings(ss []string) (**C.char, func()) {
	if len(ss) == 0 {
		return nil, func() {}
	}
	arr := (*[1 << 28]*C.char)(C.malloc(C.size_t(len(ss)) * C.size_t(unsafe.Sizeof((*C.char)(nil)))))[:len(ss):len(ss)]
	for i, s := range ss {
		arr[i] = C.CString(s)
	}
	return &arr[0], func() {
		for _, p := range arr {
			C.free(unsafe.Pointer(p))
		}
		C.free(unsafe.Pointer(&arr[0]))
	}
}

// Store is c10d's TCPStore: a key-value store every rank reaches, served by rank 0.
type Store struct {
	handle
	h       C.hc_store
	cleanup runtime.Cleanup
}

// NewStore serves (rank 0) or connects to the store at host:port for world ranks. Rank 0
// returns once every rank has connected; every rank gives up after timeout.
func NewStore(host string, port, rank, world int, timeout time.Duration) (*Store, error) {
	if timeout <= 0 {
		return nil, &Error{Op: "store", Msg: "the timeout must be positive"}
	}
	ch := C.CString(host)
	defer C.free(unsafe.Pointer(ch))
	var h C.hc_store
	if err := checkErr("store", C.hc_store_new(ch, C.int32_t(port), C.int32_t(rank), C.int32_t(world), millis(timeout), &h)); err != nil {
		return nil, err
	}
	s := &Store{h: h}
	s.cleanup = runtime.AddCleanup(s, func(h C.hc_store) { C.hc_store_free(h) }, h)
	return s, nil
}

// Port is the port the store listens on (rank 0) or is connected to.
func (s *Store) Port() int {
	done, err := s.use("store port", "store")
	if err != nil {
		return 0
	}
	defer done()
	return int(C.hc_store_port(s.h))
}

// Close releases the store. On rank 0 this stops the server: the other ranks' store calls fail
// from then on.
func (s *Store) Close() {
	s.close(func() {
		s.cleanup.Stop()
		C.hc_store_free(s.h)
		s.h = nil
	})
}

// Set stores value under key.
func (s *Store) Set(key string, value []byte) error {
	done, err := s.use("store set", "store")
	if err != nil {
		return err
	}
	defer done()
	ck := C.CString(key)
	defer C.free(unsafe.Pointer(ck))
	var p unsafe.Pointer
	if len(value) > 0 {
		p = C.CBytes(value)
		defer C.free(p)
	}
	return checkErr("store set", C.hc_store_set(s.h, ck, p, C.int64_t(len(value))))
}

// Get waits up to timeout for key to be set and returns its value.
func (s *Store) Get(key string, timeout time.Duration) ([]byte, error) {
	done, err := s.use("store get", "store")
	if err != nil {
		return nil, err
	}
	defer done()
	ck := C.CString(key)
	defer C.free(unsafe.Pointer(ck))
	var v *C.char
	var n C.int64_t
	if err := checkErr("store get", C.hc_store_get(s.h, ck, millis(timeout), &v, &n)); err != nil {
		return nil, err
	}
	defer C.hc_free(unsafe.Pointer(v))
	return C.GoBytes(unsafe.Pointer(v), C.int(n)), nil
}

// Add adds delta to the integer stored at key (0 when unset) and returns the sum.
func (s *Store) Add(key string, delta int64) (int64, error) {
	done, err := s.use("store add", "store")
	if err != nil {
		return 0, err
	}
	defer done()
	ck := C.CString(key)
	defer C.free(unsafe.Pointer(ck))
	var out C.int64_t
	if err := checkErr("store add", C.hc_store_add(s.h, ck, C.int64_t(delta), &out)); err != nil {
		return 0, err
	}
	return int64(out), nil
}

// Wait waits up to timeout until every key is set.
func (s *Store) Wait(keys []string, timeout time.Duration) error {
	done, err := s.use("store wait", "store")
	if err != nil {
		return err
	}
	defer done()
	ck, free := cStrings(keys)
	defer free()
	return checkErr("store wait", C.hc_store_wait(s.h, ck, C.int32_t(len(keys)), millis(timeout)))
}

// Check reports whether every key is set now, without waiting.
func (s *Store) Check(keys []string) (bool, error) {
	done, err := s.use("store check", "store")
	if err != nil {
		return false, err
	}
	defer done()
	ck, free := cStrings(keys)
	defer free()
	var ok C.int32_t
	if err := checkErr("store check", C.hc_store_check(s.h, ck, C.int32_t(len(keys)), &ok)); err != nil {
		return false, err
	}
	return ok != 0, nil
}

// Delete removes key and reports whether it was set.
func (s *Store) Delete(key string) (bool, error) {
	done, err := s.use("store delete", "store")
	if err != nil {
		return false, err
	}
	defer done()
	ck := C.CString(key)
	defer C.free(unsafe.Pointer(ck))
	var ok C.int32_t
	if err := checkErr("store delete", C.hc_store_delete(s.h, ck, &ok)); err != nil {
		return false, err
	}
	return ok != 0, nil
}

// ReduceOp is a reduction of ProcessGroup.AllReduce.
type ReduceOp int

// The reductions (numbered as hotcb_torch.h's hc_reduce_op).
const (
	ReduceOpSum ReduceOp = iota
	ReduceOpAvg          // sum divided by the world size; floating-point tensors only
	ReduceOpMin
	ReduceOpMax
	ReduceOpProduct
)

// ProcessGroup is a c10d process group: Gloo, or NCCL in a CUDA build.
type ProcessGroup struct {
	handle
	h       C.hc_pg
	world   int
	cleanup runtime.Cleanup
}

// NewProcessGroup joins the group of world ranks that rendezvous through s under the key prefix
// name; backend is "gloo" or "nccl". device chooses Gloo's network device: "" the host name's
// address, "if:NAME" an interface, else a host name or address to bind. It returns when every
// rank has joined, or fails after timeout, which then bounds each collective.
func NewProcessGroup(s *Store, backend, name, device string, rank, world int, timeout time.Duration) (*ProcessGroup, error) {
	var b C.int32_t
	switch backend {
	case "gloo":
		b = C.HC_GLOO
	case "nccl":
		b = C.HC_NCCL
	default:
		return nil, &Error{Op: "process group", Msg: "unknown backend " + backend + ` (want "gloo" or "nccl")`}
	}
	if timeout <= 0 {
		return nil, &Error{Op: "process group", Msg: "the timeout must be positive"}
	}
	done, err := s.use("process group", "store")
	if err != nil {
		return nil, err
	}
	defer done()
	cn, cd := C.CString(name), C.CString(device)
	defer C.free(unsafe.Pointer(cn))
	defer C.free(unsafe.Pointer(cd))
	var h C.hc_pg
	if err := checkErr("process group", C.hc_pg_new(s.h, b, cn, cd, C.int32_t(rank), C.int32_t(world), millis(timeout), &h)); err != nil {
		return nil, err
	}
	g := &ProcessGroup{h: h, world: world}
	g.cleanup = runtime.AddCleanup(g, func(h C.hc_pg) { C.hc_pg_free(h) }, h)
	return g, nil
}

// Close releases the group. With peers gone it may wait for pending operations to time out.
func (g *ProcessGroup) Close() {
	g.close(func() {
		g.cleanup.Stop()
		C.hc_pg_free(g.h)
		g.h = nil
	})
}

func tensorHandle(op string, t *Tensor) (C.hc_tensor, error) {
	if t == nil || t.h == nil {
		return nil, freedError(op)
	}
	return t.h, nil
}

// AllReduce reduces t over the group in place. timeout 0 keeps the group's.
func (g *ProcessGroup) AllReduce(t *Tensor, op ReduceOp, timeout time.Duration) error {
	done, err := g.use("all_reduce", "process group")
	if err != nil {
		return err
	}
	defer done()
	th, err := tensorHandle("all_reduce", t)
	if err != nil {
		return err
	}
	e := C.hc_pg_all_reduce(g.h, th, C.int32_t(op), millis(timeout))
	runtime.KeepAlive(t)
	return checkErr("all_reduce", e)
}

// Broadcast overwrites t with rank src's t.
func (g *ProcessGroup) Broadcast(t *Tensor, src int, timeout time.Duration) error {
	done, err := g.use("broadcast", "process group")
	if err != nil {
		return err
	}
	defer done()
	th, err := tensorHandle("broadcast", t)
	if err != nil {
		return err
	}
	e := C.hc_pg_broadcast(g.h, th, C.int32_t(src), millis(timeout))
	runtime.KeepAlive(t)
	return checkErr("broadcast", e)
}

// AllGather returns every rank's t, indexed by rank.
func (g *ProcessGroup) AllGather(t *Tensor, timeout time.Duration) ([]*Tensor, error) {
	done, err := g.use("all_gather", "process group")
	if err != nil {
		return nil, err
	}
	defer done()
	th, err := tensorHandle("all_gather", t)
	if err != nil {
		return nil, err
	}
	out := make([]C.hc_tensor, g.world)
	e := C.hc_pg_all_gather(g.h, th, &out[0], millis(timeout))
	runtime.KeepAlive(t)
	if err := checkErr("all_gather", e); err != nil {
		return nil, err
	}
	res := make([]*Tensor, g.world)
	for i, h := range out {
		res[i] = wrap(h)
	}
	return res, nil
}

// Barrier returns when every rank has called it.
func (g *ProcessGroup) Barrier(timeout time.Duration) error {
	done, err := g.use("barrier", "process group")
	if err != nil {
		return err
	}
	defer done()
	return checkErr("barrier", C.hc_pg_barrier(g.h, millis(timeout)))
}

// BroadcastCoalesced overwrites ts (any dtypes) with rank src's, sent in flattened buckets of
// up to bucketBytes: how DDP synchronises parameters and buffers.
func (g *ProcessGroup) BroadcastCoalesced(ts []*Tensor, src int, bucketBytes int64) error {
	done, err := g.use("broadcast_coalesced", "process group")
	if err != nil {
		return err
	}
	defer done()
	if len(ts) == 0 {
		return nil
	}
	hs := make([]C.hc_tensor, len(ts))
	for i, t := range ts {
		if hs[i], err = tensorHandle("broadcast_coalesced", t); err != nil {
			return err
		}
	}
	e := C.hc_pg_broadcast_coalesced(g.h, &hs[0], C.int32_t(len(hs)), C.int32_t(src), C.int64_t(bucketBytes))
	runtime.KeepAlive(ts)
	return checkErr("broadcast_coalesced", e)
}

// Reducer is c10d's DDP Reducer over a model's parameters: after PrepareBackward, the next
// backward pass averages the parameters' gradients over the group in buckets as it runs.
type Reducer struct {
	handle
	h       C.hc_ddp
	n       int
	cleanup runtime.Cleanup
}

// NewReducer hooks params (leaves requiring grad, the same list on every rank: checked);
// names name them in messages. Buckets: one until the first backward pass, then rebuilt in the
// order gradients arrived, firstBucket bytes for the first and bucketCap for the others.
func NewReducer(g *ProcessGroup, params []Named, bucketCap, firstBucket int64, findUnused bool) (*Reducer, error) {
	done, err := g.use("ddp", "process group")
	if err != nil {
		return nil, err
	}
	defer done()
	if len(params) == 0 {
		return nil, &Error{Op: "ddp", Msg: "no parameters"}
	}
	hs := make([]C.hc_tensor, len(params))
	names := make([]string, len(params))
	for i, p := range params {
		if hs[i], err = tensorHandle("ddp", p.Tensor); err != nil {
			return nil, err
		}
		names[i] = p.Name
	}
	cn, free := cStrings(names)
	defer free()
	var h C.hc_ddp
	e := C.hc_ddp_new(g.h, &hs[0], C.int32_t(len(hs)), cn, C.int64_t(bucketCap), C.int64_t(firstBucket), C.int32_t(b2i(findUnused)), &h)
	runtime.KeepAlive(params)
	if err := checkErr("ddp", e); err != nil {
		return nil, err
	}
	r := &Reducer{h: h, n: len(params)}
	r.cleanup = runtime.AddCleanup(r, func(h C.hc_ddp) { C.hc_ddp_free(h) }, h)
	return r, nil
}

// Close removes the Reducer's hooks: later backward passes accumulate local gradients only.
func (r *Reducer) Close() {
	r.close(func() {
		r.cleanup.Stop()
		C.hc_ddp_free(r.h)
		r.h = nil
	})
}

// PreForward goes before a forward pass with grad enabled; it reports whether the buckets were
// rebuilt (once, before the second iteration).
func (r *Reducer) PreForward() (rebuilt bool, err error) {
	done, err := r.use("ddp forward", "DDP")
	if err != nil {
		return false, err
	}
	defer done()
	var rb C.int32_t
	if err := checkErr("ddp forward", C.hc_ddp_pre_forward(r.h, &rb)); err != nil {
		return false, err
	}
	return rb != 0, nil
}

// PrepareBackward goes after that forward pass: the next backward pass reduces the gradients.
// outputs matter only with findUnused (the parameters they do not depend on are marked ready).
func (r *Reducer) PrepareBackward(outputs []*Tensor) error {
	done, err := r.use("ddp prepare_for_backward", "DDP")
	if err != nil {
		return err
	}
	defer done()
	hs := make([]C.hc_tensor, 0, len(outputs))
	for _, t := range outputs {
		if t != nil && t.h != nil {
			hs = append(hs, t.h)
		}
	}
	var p *C.hc_tensor
	if len(hs) > 0 {
		p = &hs[0]
	}
	e := C.hc_ddp_prepare_backward(r.h, p, C.int32_t(len(hs)))
	runtime.KeepAlive(outputs)
	return checkErr("ddp prepare_for_backward", e)
}

// Buckets returns, for each parameter, its bucket (numbered in reduction order), and the number
// of buckets.
func (r *Reducer) Buckets() ([]int, int, error) {
	done, err := r.use("ddp buckets", "DDP")
	if err != nil {
		return nil, 0, err
	}
	defer done()
	b := make([]C.int32_t, r.n)
	var nb C.int32_t
	if err := checkErr("ddp buckets", C.hc_ddp_buckets(r.h, &b[0], C.int32_t(r.n), &nb)); err != nil {
		return nil, 0, err
	}
	out := make([]int, r.n)
	for i, v := range b {
		out[i] = int(v)
	}
	return out, int(nb), nil
}

// ReducerStats are c10d's times of DDP iterations (its DDP Logger), in nanoseconds; see
// hc_ddp_stat in hotcb_torch.h. An iteration is measured when the next forward pass with grad
// begins (PreForward), so between two forward passes Iteration is the one before.
type ReducerStats struct {
	Iteration                                             int64 // the latest measured (forward passes counted from 1); 0: none yet
	Forward, BackwardCompute, BackwardComm, Overlap, Wait int64 // its times
	Measured                                              int64 // iterations measured so far
	TotalWait, TotalComm                                  int64 // over those
}

// Stats returns the times of the latest measured iteration and the totals so far.
func (r *Reducer) Stats() (ReducerStats, error) {
	done, err := r.use("ddp stats", "DDP")
	if err != nil {
		return ReducerStats{}, err
	}
	defer done()
	var v [C.HC_DDP_NSTATS]C.int64_t
	if err := checkErr("ddp stats", C.hc_ddp_stats(r.h, &v[0], C.HC_DDP_NSTATS)); err != nil {
		return ReducerStats{}, err
	}
	return ReducerStats{
		Iteration: int64(v[C.HC_DDP_ITERATION]), Forward: int64(v[C.HC_DDP_FORWARD_NS]),
		BackwardCompute: int64(v[C.HC_DDP_BACKWARD_COMPUTE_NS]), BackwardComm: int64(v[C.HC_DDP_BACKWARD_COMM_NS]),
		Overlap: int64(v[C.HC_DDP_OVERLAP_NS]), Wait: int64(v[C.HC_DDP_WAIT_NS]), Measured: int64(v[C.HC_DDP_MEASURED]),
		TotalWait: int64(v[C.HC_DDP_TOTAL_WAIT_NS]), TotalComm: int64(v[C.HC_DDP_TOTAL_COMM_NS]),
	}, nil
}

// SetStatsEvery measures one iteration in every (and the first 10); every <= 0 stops measuring.
func (r *Reducer) SetStatsEvery(every int) error {
	done, err := r.use("ddp stats", "DDP")
	if err != nil {
		return err
	}
	defer done()
	return checkErr("ddp stats", C.hc_ddp_set_stats_every(r.h, C.int32_t(max(min(every, math.MaxInt32), math.MinInt32))))
}
