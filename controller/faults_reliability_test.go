package controller_test

import (
	"errors"
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/hotcb/hotcb/callback"
	"github.com/hotcb/hotcb/controller"
	"github.com/hotcb/hotcb/ops"
	"github.com/hotcb/hotcb/rundir"
	"github.com/hotcb/hotcb/torchenv"
)

// Faults a callback can inflict on the loop that calls it, beyond those already covered here:
// an error, a panic and a libtorch error that disable it (TestFailingCallbacksAreIsolatedAndAutoDisabled),
// a go_file that stops compiling on reload (TestGoFileLoadReloadAndCapture) and a slow go_file
// under CallBudget (TestRestrictedImportsAndBudget). Each test runs a training loop of Apply calls
// and checks that it goes on and that the other callbacks and the commands are not disturbed.

// verifyNoLeaks checks, at the end of a test, that the goroutines it started are gone (those
// running before it are not its own). bridge.notePressure.func1 is the bridge's background
// runtime.GC, started when libtorch allocations pass a threshold and ending by itself.
func verifyNoLeaks(t *testing.T) func() {
	opts := []goleak.Option{goleak.IgnoreCurrent(), goleak.IgnoreAnyFunction("github.com/hotcb/hotcb/bridge.notePressure.func1")}
	return func() { goleak.VerifyNone(t, opts...) }
}

// faulty misbehaves in Handle, SetParams, OnAttach or Close as its mode says.
type faulty struct {
	id    string
	mode  string // Handle: "panic", "nil", "error", "sleep", "leak"; "setparams-panic", "attach-panic", "close-panic"
	sleep time.Duration
	calls atomic.Int64
	leak  chan struct{} // what leaked goroutines wait for
	block chan struct{} // what Handle waits for in mode "block"
	every any
}

func (f *faulty) ID() string { return f.id }

func (f *faulty) Handle(ev string, env *torchenv.Env) error {
	f.calls.Add(1)
	switch f.mode {
	case "panic":
		panic(fmt.Sprintf("%s exploded at step %d", f.id, env.Step))
	case "nil":
		var m map[string]int
		m["x"] = 1 // a runtime error, recovered like any panic
	case "error":
		return errors.New("always wrong")
	case "sleep":
		time.Sleep(f.sleep)
	case "block":
		<-f.block
	case "leak":
		// A goroutine the callback forgets: the controller cannot stop it (Go has no way to kill
		// a goroutine); the loop must go on and the leak must be visible to whoever looks.
		go func() { <-f.leak }()
	}
	return nil
}

func (f *faulty) SetParams(m map[string]any) error {
	if f.mode == "setparams-panic" && m["boom"] != nil {
		panic("bad params")
	}
	if v, ok := m["every"]; ok {
		f.every = v
	}
	return nil
}

func (f *faulty) OnAttach(*torchenv.Env) error {
	if f.mode == "attach-panic" {
		panic("cannot attach")
	}
	return nil
}

func (f *faulty) Close() error {
	if f.mode == "close-panic" {
		panic("cannot close")
	}
	return nil
}

// witness counts its calls; it is loaded after the faulty callback, so it runs after it at
// each event.
type witness struct{ calls atomic.Int64 }

func (w *witness) ID() string                         { return "witness" }
func (w *witness) Handle(string, *torchenv.Env) error { w.calls.Add(1); return nil }
func (w *witness) SetParams(map[string]any) error     { return nil }

type faultRig struct {
	t    *testing.T
	dir  string
	c    *controller.HotController
	env  *torchenv.Env
	bad  *faulty
	wit  *witness
	mu   sync.Mutex
	logs []string
}

func newFaultRig(t *testing.T, bad *faulty, opts controller.Options) *faultRig {
	r := &faultRig{t: t, bad: bad, wit: &witness{}, env: &torchenv.Env{}}
	reg := callback.NewRegistry()
	reg.Register("test/faulty", "Faulty", func(id string, _ map[string]any) (callback.HotCallback, error) { return bad, nil })
	reg.Register("test/witness", "Witness", func(string, map[string]any) (callback.HotCallback, error) { return r.wit, nil })
	dir := t.TempDir()
	r.dir = dir
	opts.Registry = reg
	opts.PollEveryStep = true
	opts.StatusPath = filepath.Join(dir, "hotcb.status.json")
	opts.LogPath = filepath.Join(dir, "hotcb.log")
	opts.Log = func(s string) { r.mu.Lock(); r.logs = append(r.logs, s); r.mu.Unlock() }
	c, err := controller.New(opts)
	require.NoError(t, err)
	r.c = c
	return r
}

func (r *faultRig) log() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.logs, "\n")
}

func (r *faultRig) submit(op ops.Op) {
	require.NoError(r.t, r.c.Submit(op))
}

func (r *faultRig) load() []controller.Result {
	r.submit(ops.Op{Op: ops.OpLoad, ID: r.bad.id, Target: &ops.CallbackTarget{Kind: "module", Path: "test/faulty", Symbol: "Faulty"}})
	r.submit(ops.Op{Op: ops.OpLoad, ID: "witness", Target: &ops.CallbackTarget{Kind: "module", Path: "test/witness", Symbol: "Witness"}})
	r.steps(1)
	return r.c.LastResults()
}

func (r *faultRig) steps(n int) {
	for i := 0; i < n; i++ {
		r.c.Apply(r.env, torchenv.TrainStepEnd)
		r.env.Step++
	}
}

func (r *faultRig) status(id string) rundir.CallbackStatus {
	for _, cs := range r.c.Status().Callbacks {
		if cs.ID == id {
			return cs
		}
	}
	r.t.Fatalf("no status for %s", id)
	return rundir.CallbackStatus{}
}

// TestPersistentlyFailingCallback: a callback that panics (or hits a runtime error, or returns
// an error) at every call, kept enabled with KeepEnabledOnError. Each failure is caught and
// counted, the callback after it in the same event still runs, commands keep applying, and the
// loop finishes every step.
func TestPersistentlyFailingCallback(t *testing.T) {
	const steps = 300
	for _, mode := range []string{"panic", "nil", "error"} {
		t.Run(mode, func(t *testing.T) {
			defer verifyNoLeaks(t)()
			r := newFaultRig(t, &faulty{id: "bad", mode: mode}, controller.Options{KeepEnabledOnError: true})
			for _, res := range r.load() {
				require.Equal(t, controller.Applied, res.Decision)
			}
			for i := 0; i < steps; i++ {
				if i%50 == 0 { // commands go on arriving while it fails
					r.submit(ops.Op{Op: ops.OpSetParams, ID: "bad", Params: map[string]any{"every": i}})
				}
				r.steps(1)
			}
			require.Equal(t, int64(steps+1), r.bad.calls.Load())
			require.Equal(t, int64(steps+1), r.wit.calls.Load(), "the callback after the failing one ran at every step")
			require.Equal(t, int64(250), r.bad.every, "the last set_params reached it (an int submitted is an int64)")
			st := r.status("bad")
			require.True(t, st.Enabled)
			require.Equal(t, int64(steps+1), st.Errors)
			require.Equal(t, int64(steps), st.LastErrorStep)
			require.Equal(t, int64(0), r.status("witness").Errors)
			log := r.log()
			require.Equal(t, steps+1, strings.Count(log, "callback bad failed in train_step_end"))
			if mode != "error" {
				require.Contains(t, log, "faults_reliability_test.go", "the stack of the panic is logged")
			}
			require.NoError(t, r.c.Close())
		})
	}
}

// TestPanicsOutsideHandle: panics in SetParams, OnAttach and Close fail that one op with the
// panic in its error; the callback's state and the loop are unharmed.
func TestPanicsOutsideHandle(t *testing.T) {
	defer verifyNoLeaks(t)()
	r := newFaultRig(t, &faulty{id: "bad", mode: "setparams-panic"}, controller.Options{})
	r.load()
	r.submit(ops.Op{Op: ops.OpSetParams, ID: "bad", Params: map[string]any{"every": 5}})
	r.submit(ops.Op{Op: ops.OpSetParams, ID: "bad", Params: map[string]any{"every": 9, "boom": true}})
	r.steps(1)
	res := r.c.LastResults()
	require.Equal(t, controller.Applied, res[0].Decision)
	require.Equal(t, controller.Failed, res[1].Decision)
	require.ErrorContains(t, res[1].Err, "panic: bad params")
	require.Equal(t, int64(5), r.bad.every, "the panicking set_params changed nothing")
	require.Equal(t, int64(5), r.status("bad").Params["every"], "status keeps the last good params")
	require.True(t, r.status("bad").Enabled)

	r.bad.mode = "close-panic"
	r.submit(ops.Op{Op: ops.OpUnload, ID: "bad"})
	r.steps(1)
	require.Equal(t, controller.Applied, r.c.LastResults()[0].Decision, "an unload whose Close panics is still an unload")
	require.Contains(t, r.c.LastResults()[0].Note, "its Close failed: panic: cannot close")
	require.False(t, r.status("bad").Loaded, "unloaded all the same")

	r.bad.mode = "attach-panic"
	r.submit(ops.Op{Op: ops.OpLoad, ID: "bad", Target: &ops.CallbackTarget{Kind: "module", Path: "test/faulty", Symbol: "Faulty"}})
	r.steps(1)
	require.ErrorContains(t, r.c.LastResults()[0].Err, "OnAttach: panic: cannot attach")
	require.False(t, r.status("bad").Loaded)
	r.steps(10)
	require.Equal(t, int64(14), r.wit.calls.Load(), "the loop never missed a step")
	r.bad.mode = ""
	require.NoError(t, r.c.Close())
}

// TestCallbackOverBudget: a callback that takes 20 ms per call under a 5 ms budget is disabled
// after BudgetStrikes calls in a row, and the loop is back to full speed; one slow call alone
// is logged, not punished. The controller runs callbacks on the training goroutine and cannot
// preempt one: the budget acts when the call returns (a callback that never returns blocks the
// loop; that is what the budget cannot fix, and why callbacks that wait must do it elsewhere).
func TestCallbackOverBudget(t *testing.T) {
	defer verifyNoLeaks(t)()
	bad := &faulty{id: "slow", mode: "sleep", sleep: 20 * time.Millisecond}
	r := newFaultRig(t, bad, controller.Options{CallBudget: 5 * time.Millisecond, BudgetStrikes: 3})
	r.load() // first slow call
	r.steps(5)
	require.Equal(t, int64(3), bad.calls.Load(), "disabled after 3 calls over budget")
	st := r.status("slow")
	require.False(t, st.Enabled)
	require.True(t, st.Loaded)
	require.Contains(t, r.log(), "callback slow disabled after 3 calls over budget")
	t0 := time.Now()
	r.steps(200)
	require.Less(t, time.Since(t0), 2*time.Second, "200 steps without the slow callback")
	require.Equal(t, int64(206), r.wit.calls.Load())

	// Re-enabled, it is slow only now and then: each overrun is logged, strikes reset.
	bad.sleep = 0
	r.submit(ops.Op{Op: ops.OpEnable, ID: "slow"})
	for i := 0; i < 6; i++ {
		if i%2 == 0 {
			bad.sleep = 20 * time.Millisecond
		} else {
			bad.sleep = 0
		}
		r.steps(1)
	}
	require.True(t, r.status("slow").Enabled, "never 3 overruns in a row")
	require.Equal(t, 3, strings.Count(r.log(), "(1 in a row)")-1, "three more single overruns logged")
	require.NoError(t, r.c.Close())
}

// TestLeakyCallback: a callback that starts a goroutine at every call and never stops it. The
// controller cannot kill goroutines; what it guarantees is that training goes on. The leak is
// visible: runtime.NumGoroutine grows by exactly the goroutines the callback started (counted
// from the goroutine stacks), and nothing else leaks — once the test releases them, goleak
// finds no goroutine left.
func TestLeakyCallback(t *testing.T) {
	defer verifyNoLeaks(t)()
	bad := &faulty{id: "leaky", mode: "leak", leak: make(chan struct{})}
	r := newFaultRig(t, bad, controller.Options{})
	r.load()
	r.steps(10)
	before, leakedBefore := runtime.NumGoroutine(), countStacks("(*faulty).Handle.func1")
	r.steps(100)
	after, leaked := runtime.NumGoroutine(), countStacks("(*faulty).Handle.func1")
	require.Equal(t, 100, leaked-leakedBefore, "one goroutine per call, all still running")
	require.InDelta(t, 100, after-before, 2, "NumGoroutine shows the leak (±2: the bridge's GC helper)")
	require.Equal(t, int64(111), r.wit.calls.Load(), "training went on")
	t.Logf("goroutines: %d before, %d after 100 leaking calls (%d counted in the leaker's stacks)", before, after, leaked)

	r.submit(ops.Op{Op: ops.OpUnload, ID: "leaky"})
	r.steps(1)
	require.Equal(t, leaked, countStacks("(*faulty).Handle.func1"), "unloading does not stop them either")
	close(bad.leak)
	require.NoError(t, r.c.Close())
}

// countStacks counts the goroutines whose stack mentions fn.
func countStacks(fn string) int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	c := 0
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, fn) {
			c++
		}
	}
	return c
}
