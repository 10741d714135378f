package dist

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hotcb/hotcb/bridge"
)

// DefaultTimeout bounds rendezvous and every collective unless Options.Timeout says otherwise:
// PyTorch's default for Gloo.
const DefaultTimeout = 30 * time.Minute

// DefaultPort is MasterPort's default, torchrun's.
const DefaultPort = 29500

// Options describe this process's place in the job. torchrun's variables fill them (FromEnv).
type Options struct {
	Rank      int // this process, 0 … WorldSize-1; rank 0 serves the store
	WorldSize int // the number of processes (ranks)
	// LocalRank is the rank among the processes on this machine (the CUDA device NCCL uses);
	// LocalWorldSize their number (0: unknown).
	LocalRank, LocalWorldSize int
	MasterAddr                string        // where rank 0 serves the store (default 127.0.0.1)
	MasterPort                int           // its port (default 29500)
	Backend                   string        // "gloo" (default; CPU tensors) or "nccl" (CUDA builds)
	Timeout                   time.Duration // bounds joining and each collective (default 30 min)
	// Interface is the network interface Gloo uses, e.g. "eth0" (default: $GLOO_SOCKET_IFNAME;
	// else the loopback when MasterAddr is a loopback address, as when all ranks share a machine;
	// else the address the host name resolves to, as PyTorch does).
	Interface string
}

// envVars are torchrun's, in the order FromEnv reports them.
var envVars = []string{"RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"}

// FromEnv reads the variables torchrun sets: RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT
// (required), LOCAL_RANK and LOCAL_WORLD_SIZE (optional: without them the job is taken to run
// on one machine, LocalRank = Rank). The error names every variable that is missing or invalid.
// Backend and Timeout are left at their defaults.
func FromEnv() (Options, error) {
	var o Options
	var problems []string
	get := func(name string, required bool) (string, bool) {
		v, ok := os.LookupEnv(name)
		v = strings.TrimSpace(v)
		if !ok || v == "" {
			if required {
				problems = append(problems, name+" is not set")
			}
			return "", false
		}
		return v, true
	}
	num := func(name string, required bool, lo int) (int, bool) {
		v, ok := get(name, required)
		if !ok {
			return 0, false
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s=%q is not an integer", name, v))
			return 0, false
		}
		if n < lo {
			problems = append(problems, fmt.Sprintf("%s=%d is below %d", name, n, lo))
			return 0, false
		}
		return n, true
	}
	rank, okRank := num("RANK", true, 0)
	world, okWorld := num("WORLD_SIZE", true, 1)
	localRank, okLocal := num("LOCAL_RANK", false, 0)
	localWorld, okLocalWorld := num("LOCAL_WORLD_SIZE", false, 1)
	addr, _ := get("MASTER_ADDR", true)
	port, okPort := num("MASTER_PORT", true, 1)
	if okPort && port > 65535 {
		problems = append(problems, fmt.Sprintf("MASTER_PORT=%d is not a port (1-65535)", port))
	}
	if okRank && okWorld && rank >= world {
		problems = append(problems, fmt.Sprintf("RANK=%d is not below WORLD_SIZE=%d", rank, world))
	}
	if okLocal && okLocalWorld && localRank >= localWorld {
		problems = append(problems, fmt.Sprintf("LOCAL_RANK=%d is not below LOCAL_WORLD_SIZE=%d", localRank, localWorld))
	}
	if len(problems) > 0 {
		return Options{}, fmt.Errorf("dist: environment: %s (torchrun sets %s)", strings.Join(problems, "; "), strings.Join(envVars, ", "))
	}
	o.Rank, o.WorldSize, o.MasterAddr, o.MasterPort = rank, world, addr, port
	o.LocalRank, o.LocalWorldSize = rank, 0
	if okLocal {
		o.LocalRank = localRank
	}
	if okLocalWorld {
		o.LocalWorldSize = localWorld
	}
	return o, nil
}

// withDefaults fills the defaults and checks the options.
func (o Options) withDefaults() (Options, error) {
	if o.MasterAddr == "" {
		o.MasterAddr = "127.0.0.1"
	}
	if o.MasterPort == 0 {
		o.MasterPort = DefaultPort
	}
	if o.Backend == "" {
		o.Backend = "gloo"
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	switch {
	case o.WorldSize < 1:
		return o, fmt.Errorf("dist: WorldSize %d, want at least 1", o.WorldSize)
	case o.Rank < 0 || o.Rank >= o.WorldSize:
		return o, fmt.Errorf("dist: Rank %d is not in [0, %d)", o.Rank, o.WorldSize)
	case o.MasterPort < 1 || o.MasterPort > 65535:
		return o, fmt.Errorf("dist: MasterPort %d is not a port (1-65535)", o.MasterPort)
	case o.Backend != "gloo" && o.Backend != "nccl":
		return o, fmt.Errorf(`dist: Backend %q, want "gloo" or "nccl"`, o.Backend)
	case o.Timeout < 0:
		return o, fmt.Errorf("dist: Timeout %v is negative", o.Timeout)
	case o.LocalRank < 0 || (o.LocalWorldSize > 0 && o.LocalRank >= o.LocalWorldSize):
		return o, fmt.Errorf("dist: LocalRank %d is not in [0, %d)", o.LocalRank, o.LocalWorldSize)
	}
	return o, nil
}

// glooDevice is the network device Gloo binds, in hc_pg_new's terms.
func (o Options) glooDevice() string {
	iface := o.Interface
	if iface == "" {
		iface = os.Getenv("GLOO_SOCKET_IFNAME")
	}
	if iface != "" {
		return "if:" + iface
	}
	if isLoopback(o.MasterAddr) {
		return "127.0.0.1"
	}
	return ""
}

func isLoopback(addr string) bool {
	if addr == "localhost" {
		return true
	}
	ip := net.ParseIP(addr)
	return ip != nil && ip.IsLoopback()
}

// Error is what a failed call returns.
type Error struct {
	Op      string        // "all_reduce(sum)", "store get", "DDP backward", …
	Rank    int           // this process's rank
	Timeout time.Duration // the bound that applied (0 where none does)
	Msg     string        // what failed, with the rank and timeout, and libtorch's or Gloo's reason
	err     error         // ErrClosed, or the bridge's error
}

func (e *Error) Error() string { return "dist: " + e.Msg }

// Unwrap gives ErrClosed for calls on a closed group, else the bridge's *bridge.Error if any.
func (e *Error) Unwrap() error { return e.err }

// ErrClosed is wrapped by the errors of calls on a closed Group or DDP, or its Store.
var ErrClosed = errors.New("closed")

// wrap turns a bridge error into an *Error; msg is used when the bridge's message does not say
// where it happened.
func (g *Group) wrap(op string, timeout time.Duration, err error) error {
	if err == nil {
		return nil
	}
	var be *bridge.Error
	msg := err.Error()
	if errors.As(err, &be) {
		msg = be.Msg
	}
	if !strings.Contains(msg, " on rank ") && !strings.Contains(msg, "(rank ") {
		msg = fmt.Sprintf("%s on rank %d of %d failed (timeout %v): %s", op, g.rank, g.size, timeout, msg)
	}
	if strings.Contains(msg, "find_unused_parameters=True") {
		msg += " [in Go: DDPOptions{FindUnusedParameters: true}]"
	}
	e := &Error{Op: op, Rank: g.rank, Timeout: timeout, Msg: msg, err: err}
	if be != nil && strings.HasSuffix(be.Msg, " is closed") {
		e.err = ErrClosed
	}
	return e
}

// Group is this process's membership of the job: the process group and the store.
type Group struct {
	opts  Options
	rank  int
	size  int
	store *Store
	pg    *bridge.ProcessGroup

	mu     sync.Mutex
	broken error // the first failed collective's error
	closed bool
	shared []string // this rank's latest Share keys
}

// Init joins the job: rank 0 serves the store at MasterAddr:MasterPort, every rank connects to
// it (retrying while rank 0 is not listening yet), and the process group forms. It returns when
// all WorldSize ranks have joined, or fails after Timeout saying how many did.
func Init(opts Options) (*Group, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	g := &Group{opts: o, rank: o.Rank, size: o.WorldSize}
	s, err := bridge.NewStore(o.MasterAddr, o.MasterPort, o.Rank, o.WorldSize, o.Timeout)
	if err != nil {
		return nil, g.wrap("store", o.Timeout, err)
	}
	pg, err := bridge.NewProcessGroup(s, o.Backend, "default_pg/", o.glooDevice(), o.Rank, o.WorldSize, o.Timeout)
	if err != nil {
		s.Close()
		return nil, g.wrap("init", o.Timeout, err)
	}
	g.pg = pg
	g.store = &Store{s: s, g: g}
	return g, nil
}

// Rank is this process's rank.
func (g *Group) Rank() int { return g.rank }

// Size is the number of ranks.
func (g *Group) Size() int { return g.size }

// LocalRank is this process's rank on its machine.
func (g *Group) LocalRank() int { return g.opts.LocalRank }

// Backend is "gloo" or "nccl".
func (g *Group) Backend() string { return g.opts.Backend }

// Timeout bounds each collective.
func (g *Group) Timeout() time.Duration { return g.opts.Timeout }

// Store is the job's key-value store.
func (g *Group) Store() *Store { return g.store }

// Err is the error that broke the group (a failed collective), or nil.
func (g *Group) Err() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.broken
}

// collective runs one collective unless the group is broken or closed, and breaks the group
// when it fails.
func (g *Group) collective(op string, f func() error) error {
	g.mu.Lock()
	broken, closed := g.broken, g.closed
	g.mu.Unlock()
	if closed {
		return &Error{Op: op, Rank: g.rank, Msg: fmt.Sprintf("%s on rank %d: the group is closed", op, g.rank), err: ErrClosed}
	}
	if broken != nil {
		return broken
	}
	err := f()
	if err != nil {
		err = g.wrap(op, g.opts.Timeout, err)
		if !errors.Is(err, ErrClosed) {
			g.fail(err)
		}
	}
	return err
}

func (g *Group) fail(err error) {
	g.mu.Lock()
	if g.broken == nil {
		g.broken = err
	}
	g.mu.Unlock()
}

// ReduceOp is how AllReduce combines the ranks' tensors.
type ReduceOp int

// The reductions.
const (
	Sum     ReduceOp = ReduceOp(bridge.ReduceOpSum)
	Avg     ReduceOp = ReduceOp(bridge.ReduceOpAvg) // Sum divided by Size: floating-point tensors only
	Min     ReduceOp = ReduceOp(bridge.ReduceOpMin)
	Max     ReduceOp = ReduceOp(bridge.ReduceOpMax)
	Product ReduceOp = ReduceOp(bridge.ReduceOpProduct)
)

func (op ReduceOp) String() string {
	switch op {
	case Sum:
		return "sum"
	case Avg:
		return "avg"
	case Min:
		return "min"
	case Max:
		return "max"
	case Product:
		return "product"
	}
	return fmt.Sprintf("ReduceOp(%d)", int(op))
}

// AllReduce replaces t, on every rank, with the reduction of all ranks' t (same shape and dtype
// everywhere).
func (g *Group) AllReduce(t *bridge.Tensor, op ReduceOp) error {
	if op == Avg { // checked here, before any rank sends: a refused call leaves the group usable
		var dt bridge.DType
		if err := bridge.Try(func() { dt = t.DType() }); err != nil {
			return g.wrap("all_reduce(avg)", 0, err)
		}
		if !dt.IsFloat() {
			return &Error{Op: "all_reduce(avg)", Rank: g.rank, Msg: fmt.Sprintf("all_reduce(avg) on rank %d: avg needs a floating-point tensor, not %v (use Sum)", g.rank, dt)}
		}
	}
	return g.collective("all_reduce("+op.String()+")", func() error {
		return g.pg.AllReduce(t, bridge.ReduceOp(op), 0)
	})
}

// Broadcast overwrites t on every rank with rank src's t.
func (g *Group) Broadcast(t *bridge.Tensor, src int) error {
	return g.collective(fmt.Sprintf("broadcast(from rank %d)", src), func() error {
		return g.pg.Broadcast(t, src, 0)
	})
}

// AllGather returns every rank's t (same shape and dtype everywhere), indexed by rank.
func (g *Group) AllGather(t *bridge.Tensor) ([]*bridge.Tensor, error) {
	var out []*bridge.Tensor
	err := g.collective("all_gather", func() error {
		var err error
		out, err = g.pg.AllGather(t, 0)
		return err
	})
	return out, err
}

// Barrier returns when every rank has reached it.
func (g *Group) Barrier() error {
	return g.collective("barrier", func() error { return g.pg.Barrier(0) })
}

// broadcastCoalesced overwrites ts with rank src's, in buckets (DDP's parameters and buffers).
func (g *Group) broadcastCoalesced(op string, ts []*bridge.Tensor, src int) error {
	return g.collective(op, func() error { return g.pg.BroadcastCoalesced(ts, src, broadcastBucketBytes) })
}

// broadcastBucketBytes is DDP's bucket for broadcasting parameters and buffers (PyTorch's).
const broadcastBucketBytes = 250 << 20

// Close leaves the group: it releases the process group, then the store (on rank 0 that stops
// the store's server). With peers gone it may wait for pending operations to time out.
func (g *Group) Close() error {
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return nil
	}
	g.closed = true
	g.mu.Unlock()
	g.pg.Close()
	g.store.s.Close()
	return nil
}

// Store is the job's key-value store, served by rank 0: what a control plane uses to hand
// commands and state between ranks. Values are bytes; Add keeps an integer counter.
type Store struct {
	s *bridge.Store
	g *Group
}

func (s *Store) wrap(op string, timeout time.Duration, err error) error {
	return s.g.wrap(op, timeout, err)
}

// Set stores value under key.
func (s *Store) Set(key string, value []byte) error {
	return s.wrap("store set", 0, s.s.Set(key, value))
}

// Get waits up to timeout for key to be set and returns its value.
func (s *Store) Get(key string, timeout time.Duration) ([]byte, error) {
	if timeout <= 0 {
		return nil, &Error{Op: "store get", Rank: s.g.rank, Msg: fmt.Sprintf("store get(%q): the timeout must be positive", key)}
	}
	v, err := s.s.Get(key, timeout)
	return v, s.wrap("store get", timeout, err)
}

// Add adds delta to the integer stored at key (0 when unset) and returns the new value: a
// counter every rank can bump (Add(key, 0) reads it).
func (s *Store) Add(key string, delta int64) (int64, error) {
	v, err := s.s.Add(key, delta)
	return v, s.wrap("store add", 0, err)
}

// Wait waits up to timeout until every key is set.
func (s *Store) Wait(timeout time.Duration, keys ...string) error {
	if timeout <= 0 {
		return &Error{Op: "store wait", Rank: s.g.rank, Msg: "store wait: the timeout must be positive"}
	}
	return s.wrap("store wait", timeout, s.s.Wait(keys, timeout))
}

// Check reports whether every key is set now, without waiting.
func (s *Store) Check(keys ...string) (bool, error) {
	ok, err := s.s.Check(keys)
	return ok, s.wrap("store check", 0, err)
}

// Delete removes key and reports whether it was set.
func (s *Store) Delete(key string) (bool, error) {
	ok, err := s.s.Delete(key)
	return ok, s.wrap("store delete", 0, err)
}
