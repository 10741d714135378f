package controller

import (
	"bytes"
	"fmt"
	"reflect"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hotcb/hotcb/callback"
	"github.com/hotcb/hotcb/gofile"
	"github.com/hotcb/hotcb/rundir"
	"github.com/hotcb/hotcb/torchenv"
)

// watchdog sees safe points that do not return. The training goroutine marks each safe point
// (enter/exit: two atomic stores and two adds, nothing per callback); a ticker goroutine
// notices one that stays open, names the callback it is stuck in, reports it in the log and the
// status file, and abandons a go_file call that is still stuck after AbandonAfter.
type watchdog struct {
	gen    atomic.Uint64 // odd while a safe point runs
	step   atomic.Int64
	event  atomic.Pointer[string]
	roster atomic.Pointer[[]rosterEntry] // the loaded callbacks, for naming a stuck one
	// loading is a go_file callback being attached or given its params by a load, not yet in
	// the roster
	loading atomic.Pointer[rosterEntry]
	stuck   atomic.Pointer[rundir.Stuck] // the current report, nil when none
	// abandoned is set by the ticker when it abandons a call; the training goroutine then
	// disables that callback at its next safe point.
	abandoned atomic.Bool
	off       bool // the controller is closed (guarded by wdMu)

	// training goroutine only
	depth     int
	events    map[string]*string // interned event names: storing one allocates nothing
	lastEvent *string            // the last one, usually the next

	// guarded by HotController.wdMu (the ticker and AbandonStuck)
	seen      uint64
	seenSince time.Time
}

type rosterEntry struct {
	id      string
	handler string // "pkg.(*Type).Handle", to find a compiled callback on a stack
	ab      callback.Abandoner
}

// enter marks the start of a safe point at env's step for event; exit its end. They nest (the
// kernel brackets its own work around the controller's Apply).
func (w *watchdog) enter(env *torchenv.Env, event string) {
	w.depth++
	if w.depth > 1 {
		return
	}
	p := w.lastEvent
	if p == nil || *p != event {
		p = w.events[event]
	}
	if p == nil {
		if w.events == nil {
			w.events = map[string]*string{}
		}
		name := event // only this copy escapes, once per event name
		p = &name
		w.events[event] = p
	}
	w.lastEvent = p
	w.event.Store(p)
	if env != nil {
		w.step.Store(env.Step)
	}
	w.gen.Add(1)
}

func (w *watchdog) exit() {
	w.depth--
	if w.depth == 0 {
		w.gen.Add(1)
	}
}

// Enter and Exit bracket a safe point for the stuck-call watchdog. Apply does it itself; a
// component that does more work at the safe point around Apply (the kernel's ops) calls them
// too, so that work is watched as well. Training goroutine only.
func (c *HotController) Enter(env *torchenv.Env, event string) { c.wd.enter(env, event) }

// Exit ends what Enter started.
func (c *HotController) Exit() { c.wd.exit() }

// Stuck returns the current stuck report, or nil. Safe from any goroutine.
func (c *HotController) Stuck() *rundir.Stuck { return c.wd.stuck.Load() }

// AbandonStuck takes a safe point that has been running for at least after (as seen by the
// watchdog, which looks at least once a second) as stuck, and abandons the call it is in if
// that can be done (a go_file callback's), without waiting for AbandonAfter; a run stopping on
// Ctrl-C does this. It returns the report, or nil when no safe point has run that long. Safe
// from any goroutine.
func (c *HotController) AbandonStuck(after time.Duration) *rundir.Stuck {
	return c.checkStuck(time.Now(), after, true)
}

// rebuildRoster publishes the loaded callbacks for the ticker goroutine (training goroutine).
func (c *HotController) rebuildRoster() {
	r := make([]rosterEntry, 0, len(c.order))
	for _, h := range c.order {
		if h.cb == nil {
			continue
		}
		e := rosterEntry{id: h.id, handler: handlerName(h.cb)}
		e.ab, _ = h.cb.(callback.Abandoner)
		r = append(r, e)
	}
	c.wd.roster.Store(&r)
}

// handlerName is the name a stack trace gives cb's Handle method.
func handlerName(cb callback.HotCallback) string {
	t := reflect.TypeOf(cb)
	if t.Kind() == reflect.Pointer {
		e := t.Elem()
		return e.PkgPath() + ".(*" + e.Name() + ").Handle"
	}
	return t.PkgPath() + "." + t.Name() + ".Handle"
}

// checkStuck runs on the ticker (and from AbandonStuck): a safe point open for at least after is
// stuck; it updates the report and abandons what is due. abandonNow abandons an abandonable
// stuck call at once.
func (c *HotController) checkStuck(now time.Time, after time.Duration, abandonNow bool) *rundir.Stuck {
	w := &c.wd
	c.wdMu.Lock()
	defer c.wdMu.Unlock()
	if w.off {
		return nil
	}
	g := w.gen.Load()
	if g%2 == 0 || g != w.seen {
		w.seen, w.seenSince = g, now
		if old := w.stuck.Swap(nil); old != nil {
			c.log.line(fmt.Sprintf("watchdog: the safe point of step %d (%s) returned after %v", old.Step, old.Event, now.Sub(old.Since).Round(time.Millisecond)))
			c.status.setStuck(nil)
		}
		return nil
	}
	rep := w.stuck.Load()
	if rep != nil && !rep.Abandoned {
		// What was stuck (a slow load, a compiled callback's call, another go_file call) may
		// have returned within the same safe point, and a go_file call may be stuck now: report
		// that one, which can be abandoned.
		fresh := &rundir.Stuck{Step: rep.Step, Event: rep.Event, Since: rep.Since}
		if c.identifyGuarded(fresh) && (!rep.Abandonable || fresh.Callback != rep.Callback ||
			fresh.Call != rep.Call || !fresh.Since.Equal(rep.Since)) {
			rep = fresh
			w.stuck.Store(rep)
			c.log.line(fmt.Sprintf("watchdog: %s; it will be abandoned (its interpreter stopped) after %v, or at once on Ctrl-C",
				rep.String(), c.opts.AbandonAfter))
			c.status.setStuck(rep)
		}
	}
	if rep == nil {
		if now.Sub(w.seenSince) < after {
			return nil
		}
		rep = &rundir.Stuck{Step: w.step.Load(), Event: *w.event.Load(), Since: w.seenSince}
		if w.gen.Load() != g {
			return nil // it returned while we looked
		}
		c.identify(rep)
		w.stuck.Store(rep)
		msg := "watchdog: " + rep.String()
		switch {
		case rep.Abandonable:
			msg += fmt.Sprintf("; it will be abandoned (its interpreter stopped) after %v, or at once on Ctrl-C", c.opts.AbandonAfter)
		case rep.Callback != "":
			msg += "; a compiled callback cannot be abandoned: Ctrl-C or SIGTERM stops the run"
		}
		c.log.line(msg)
		c.status.setStuck(rep)
	}
	if rep.Abandonable && !rep.Abandoned && (abandonNow || now.Sub(rep.Since) >= c.opts.AbandonAfter) {
		if ab := c.abandonerOf(rep.Callback); ab != nil && ab.Abandon() {
			cp := *rep
			cp.Abandoned = true
			rep = &cp
			w.stuck.Store(rep)
			w.abandoned.Store(true)
			c.log.line(fmt.Sprintf("watchdog: abandoned %s of callback %s after %v: its interpreter is stopped; it will be disabled",
				rep.Call, rep.Callback, now.Sub(rep.Since).Round(time.Millisecond)))
			c.status.setStuck(rep)
		}
	}
	return rep
}

func (c *HotController) abandonerOf(id string) callback.Abandoner {
	if l := c.wd.loading.Load(); l != nil && l.id == id {
		return l.ab
	}
	if r := c.wd.roster.Load(); r != nil {
		for _, e := range *r {
			if e.id == id {
				return e.ab
			}
		}
	}
	return nil
}

// identify names what the stuck safe point is running: a go_file callback's call from its
// guard, else the frame the training goroutine is blocked in, matched against the callbacks'
// Handle methods.
func (c *HotController) identify(rep *rundir.Stuck) {
	if c.identifyGuarded(rep) {
		return
	}
	r := c.wd.roster.Load()
	frame := stuckFrame()
	rep.Call = frame
	if frame == "" {
		rep.Call = "unknown (no goroutine is in a dispatch)"
		return
	}
	if r != nil {
		var ids []string
		for _, e := range *r {
			if e.handler == frame {
				ids = append(ids, e.id)
			}
		}
		rep.Callback = strings.Join(ids, " or ")
	}
}

// identifyGuarded fills rep with the go_file call its guard reports running, if there is one
// (then the call can be abandoned).
func (c *HotController) identifyGuarded(rep *rundir.Stuck) bool {
	var all []rosterEntry
	if r := c.wd.roster.Load(); r != nil {
		all = *r
	}
	if l := c.wd.loading.Load(); l != nil {
		all = append(all[:len(all):len(all)], *l)
	}
	for _, e := range all {
		if e.ab == nil {
			continue
		}
		if call, step, since, ok := e.ab.Running(); ok && !e.ab.Abandoned() {
			rep.Callback, rep.Call, rep.Abandonable = e.id, call, true
			rep.Step, rep.Since = step, since
			return true
		}
	}
	return false
}

// stuckFrame finds the goroutine running a safe point and returns the callback method its
// dispatch called, or, outside a dispatch, the innermost function it is in; "" if none is found.
func stuckFrame() string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	// The first goroutine in the dump is the one asking (the ticker, or AbandonStuck's caller).
	gs := bytes.Split(buf, []byte("\n\n"))[1:]
	var inside [][]string // functions of the goroutines in a safe point, innermost first
	for _, g := range gs {
		if !bytes.Contains(g, []byte("/controller.(*HotController).Apply(")) && !bytes.Contains(g, []byte("/kernel.(*Kernel).Apply(")) {
			continue
		}
		var funcs []string // "goroutine N [state]:" then "func(args)\n\tfile:line" frames
		for _, l := range strings.Split(string(g), "\n")[1:] {
			if l == "" || strings.HasPrefix(l, "\t") {
				continue
			}
			if p := strings.LastIndex(l, "("); p > 0 {
				l = l[:p]
			}
			funcs = append(funcs, l)
		}
		for k, f := range funcs {
			if strings.HasSuffix(f, "/controller.(*HotController).dispatchFrom") && k > 0 {
				return funcs[k-1] // the callback method it called
			}
		}
		inside = append(inside, funcs)
	}
	if len(inside) > 0 && len(inside[0]) > 0 {
		return inside[0][0]
	}
	return ""
}

// disableAbandoned disables the callbacks the watchdog abandoned (training goroutine, at a
// safe point).
func (c *HotController) disableAbandoned(env *torchenv.Env) {
	if !c.wd.abandoned.Swap(false) {
		return
	}
	for _, h := range c.order {
		ab, ok := h.cb.(callback.Abandoner)
		if !ok || !ab.Abandoned() || h.abandonSeen {
			continue
		}
		h.abandonSeen = true
		h.enabled = false
		h.errors++
		h.lastError = gofile.ErrAbandoned.Error()
		c.rebuildActive()
		reason := "abandoned by the watchdog: a call did not return"
		if rep := c.wd.stuck.Load(); rep != nil && rep.Callback == h.id {
			reason = fmt.Sprintf("abandoned by the watchdog: %s made at step %d did not return in %v",
				rep.Call, rep.Step, time.Since(rep.Since).Round(time.Millisecond))
		}
		c.logf(env, "callback %s disabled: %s; load it again to use it", h.id, reason)
		if c.opts.OnAbandoned != nil {
			c.opts.OnAbandoned(env, h.id, reason)
		}
	}
	c.statusDue.Store(true)
}

// startWatchdog runs the ticker that checks for stuck safe points, four times per StuckAfter
// (at most once a second).
func (c *HotController) startWatchdog() {
	if c.opts.StuckAfter < 0 {
		return
	}
	every := min(c.opts.StuckAfter/4, time.Second)
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-c.stop:
				return
			case now := <-t.C:
				c.checkStuck(now, c.opts.StuckAfter, false)
			}
		}
	}()
}
