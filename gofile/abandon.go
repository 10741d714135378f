package gofile

import (
	"context"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/traefik/yaegi/interp"

	"github.com/hotcb/hotcb/torchenv"
)

// guard watches an interpreted callback's calls and can stop its interpreter.
//
// How a call is abandoned: yaegi checks, at every statement it runs, that the interpreter has
// not been stopped since the running function was entered, and returns from it if it has.
// Stopping is what EvalWithContext does when its context ends, so at load time the guard parks
// one EvalWithContext in a compiled function (park) and cancels its context to stop the
// interpreter: a call looping in interpreted code (`for {}`) returns at its next statement, with
// zero results (a nil error), and every later call of this interpreter returns at once. Each
// load has its own interpreter, so nothing else is affected. A call blocked inside compiled code
// (time.Sleep, a lock, a libtorch op) returns only when that code returns.
type guard struct {
	// the call in progress, written by the goroutine making calls, read by the watchdog
	since atomic.Int64 // unix nanoseconds; 0 between calls
	step  atomic.Int64
	call  atomic.Pointer[string]
	// call descriptions by event (Handle) or name (other calls), made once so that recording a
	// call allocates nothing
	handles, others map[string]*string

	cancel  context.CancelFunc
	stopped chan struct{} // closed once the interpreter is stopped
	release chan struct{} // lets the parked evaluation return
	once    sync.Once
	aband   atomic.Bool
}

// startGuard parks an evaluation in i (which must have imported the sink's package as
// hotcbsink, with park as its "Park") and returns the guard that can stop i.
func startGuard(i *interp.Interpreter, parked, release chan struct{}) (*guard, error) {
	ctx, cancel := context.WithCancel(context.Background())
	g := &guard{handles: map[string]*string{}, others: map[string]*string{}, cancel: cancel,
		stopped: make(chan struct{}), release: release}
	failed := make(chan error, 1)
	go func() {
		defer close(g.stopped)
		if _, err := i.EvalWithContext(ctx, "hotcbsink.Park()"); err != nil && ctx.Err() == nil {
			failed <- err
		}
	}()
	select {
	case <-parked:
		return g, nil
	case err := <-failed:
		cancel()
		return nil, err
	}
}

func parkFunc(parked, release chan struct{}) reflect.Value {
	return reflect.ValueOf(func() {
		close(parked)
		<-release
	})
}

// enterHandle records the start of a Handle call, enter that of another method; the caller
// defers leave.
func (g *guard) enterHandle(event string, env *torchenv.Env) {
	p := g.handles[event]
	if p == nil {
		s := "Handle(" + event + ")"
		p = &s
		g.handles[event] = p
	}
	g.start(p, env)
}

func (g *guard) enter(method string, env *torchenv.Env) {
	p := g.others[method]
	if p == nil {
		name := method // only this copy escapes, once per name
		p = &name
		g.others[method] = p
	}
	g.start(p, env)
}

func (g *guard) start(p *string, env *torchenv.Env) {
	g.call.Store(p)
	if env != nil {
		g.step.Store(env.Step)
	}
	g.since.Store(time.Now().UnixNano())
}

func (g *guard) leave() { g.since.Store(0) }

func (g *guard) running() (string, int64, time.Time, bool) {
	since := g.since.Load()
	if since == 0 {
		return "", 0, time.Time{}, false
	}
	return *g.call.Load(), g.step.Load(), time.Unix(0, since), true
}

// stop stops the interpreter and lets the parked evaluation end; it reports whether this call
// did it.
func (g *guard) stop() (first bool) {
	g.once.Do(func() {
		first = true
		g.cancel()
		<-g.stopped // EvalWithContext has stopped the interpreter
		close(g.release)
	})
	return first
}

func (g *guard) abandon() bool {
	g.aband.Store(true)
	return g.stop()
}
