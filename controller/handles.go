package controller

import (
	"fmt"
	"time"

	"github.com/hotcb/hotcb/callback"
	"github.com/hotcb/hotcb/ops"
	"github.com/hotcb/hotcb/torchenv"
)

// handle is everything the controller knows about one callback id.
type handle struct {
	id       string
	target   ops.CallbackTarget
	init     map[string]any
	params   map[string]any // last params applied successfully
	pending  map[string]any // set_params received before the callback was loaded
	cb       callback.HotCallback
	enabled  bool
	unloaded bool
	// abandonSeen: the watchdog abandoned this instance and the controller has disabled it
	abandonSeen bool

	// statistics, owned by the training goroutine
	calls, errors     int64
	sampled           int64
	sampledNs, maxNs  int64
	countdown         int
	lastError         string
	lastErrorStep     int64
	strikes, overruns int64

	// go_file source tracking for hot reload
	srcPath   string
	srcSHA    string
	srcMod    time.Time
	srcSize   int64
	failedSHA string // a version that failed to build: not retried until the file changes
}

func (h *handle) addSample(d time.Duration) {
	h.sampled++
	h.sampledNs += int64(d)
	if int64(d) > h.maxNs {
		h.maxNs = int64(d)
	}
}

func (c *HotController) apply(env *torchenv.Env, op ops.Op, source string) (r Result) {
	r = Result{Op: op, Source: source, Decision: Applied}
	defer func() {
		if op.Op == ops.OpLoad && r.Decision == Applied {
			if h := c.handles[op.ID]; h != nil && h.cb != nil {
				r.Capture = captureOf(h.cb)
			}
		}
	}()
	if err := op.Validate(); err != nil {
		r.Decision, r.Err = Failed, err
		return r
	}
	// Every source normalizes already (ops.Normalize); an op built by hand and applied
	// directly (ApplyOp) is normalized here, so no callback sees another form.
	n, err := ops.Normalize(op)
	if err != nil {
		r.Decision, r.Err = Failed, err
		return r
	}
	op = n
	var note string
	var noop bool
	switch op.Op {
	case ops.OpLoad:
		noop, note, err = c.load(env, op)
	case ops.OpEnable:
		noop, err = c.setEnabled(op.ID, true)
	case ops.OpDisable:
		noop, err = c.setEnabled(op.ID, false)
	case ops.OpSetParams:
		note, err = c.setParams(op.ID, op.Params)
	case ops.OpUnload:
		noop, note, err = c.unload(op.ID)
	}
	r.Note = note
	switch {
	case err != nil:
		r.Decision, r.Err = Failed, err
	case noop:
		r.Decision = SkippedNoop
	}
	return r
}

func (c *HotController) load(env *torchenv.Env, op ops.Op) (noop bool, note string, err error) {
	target := op.Target.Normalized()
	var capl captureLoader // set for a replay from a captured source
	if sc := op.SourceCapture; sc != nil && target.Kind == ops.KindGoFile {
		var p string
		var err error
		if capl, p, err = c.capturedSource(target.Kind, sc); err != nil {
			return false, "", fmt.Errorf("load %s: %w", op.ID, err)
		}
		target.Path = p
	}
	h := c.handles[op.ID]
	if h != nil && h.cb != nil && h.target == target && sameInit(h.init, op.Init) && !abandoned(h.cb) {
		// Already loaded as asked: only the enabled flag may change.
		if h.enabled == op.IsEnabled() {
			return true, "already loaded", nil
		}
		c.setHandleEnabled(h, op.IsEnabled())
		return false, "already loaded; enabled=" + fmt.Sprint(h.enabled), nil
	}
	loader, ok := c.loaders[target.Kind]
	if !ok {
		return false, "", fmt.Errorf("no loader for target kind %q", target.Kind)
	}
	var cb callback.HotCallback
	if err := call(func() error {
		var lerr error
		if capl != nil {
			cb, lerr = capl.LoadCapture(target, op.SourceCapture.SHA256, op.SourceCapture.CapturedPath, op.ID, op.Init)
		} else {
			cb, lerr = loader.Load(target, op.ID, op.Init)
		}
		return lerr
	}); err != nil {
		return false, "", fmt.Errorf("load %s from %s: %w", op.ID, target, err)
	}
	if cb == nil {
		return false, "", fmt.Errorf("load %s from %s: the loader returned no callback", op.ID, target)
	}
	if ab, ok := cb.(callback.Abandoner); ok { // watched while it attaches and takes its params
		c.wd.loading.Store(&rosterEntry{id: op.ID, ab: ab})
		defer c.wd.loading.Store(nil)
	}
	if a, ok := cb.(callback.Attacher); ok {
		if err := call(func() error { return a.OnAttach(env) }); err != nil {
			closeCallback(cb)
			return false, "", fmt.Errorf("load %s: OnAttach: %w", op.ID, err)
		}
	}
	if h == nil {
		h = &handle{id: op.ID}
		c.handles[op.ID] = h
	}
	if !c.inOrder(h) {
		c.order = append(c.order, h)
	}
	// Params set before the load (or on a previous instance), and those the load op carries (a
	// restart's restore), are applied to the new one.
	params := merge(merge(h.params, h.pending), op.Params)
	var perr error
	if len(params) > 0 {
		if perr = call(func() error { return cb.SetParams(params) }); perr == nil {
			h.params = params
		}
	}
	h.pending = nil
	old := h.cb
	h.cb, h.target, h.init, h.enabled, h.unloaded, h.abandonSeen = cb, target, op.Init, op.IsEnabled(), false, false
	c.trackSource(h)
	c.rebuildActive()
	if !h.enabled {
		c.tellPauser(h, false) // a new instance loaded off
	}
	if old != nil {
		note = "replaced the previous instance"
		if cerr := closeCallback(old); cerr != nil {
			note += fmt.Sprintf(" (its Close failed: %v)", cerr)
		}
	}
	if perr != nil {
		return false, note, fmt.Errorf("loaded %s, but re-applying params %v failed: %w", op.ID, params, perr)
	}
	return false, note, nil
}

func (c *HotController) inOrder(h *handle) bool {
	for _, o := range c.order {
		if o == h {
			return true
		}
	}
	return false
}

func (c *HotController) lookup(id string) (*handle, error) {
	h := c.handles[id]
	if h == nil {
		return nil, fmt.Errorf("unknown callback id %q (known: %s)", id, c.ids())
	}
	if h.unloaded {
		return nil, fmt.Errorf("callback %q was unloaded; load it again", id)
	}
	if h.cb == nil {
		return nil, fmt.Errorf("callback %q is not loaded yet (only params were set)", id)
	}
	return h, nil
}

func (c *HotController) setEnabled(id string, on bool) (noop bool, err error) {
	h, err := c.lookup(id)
	if err != nil {
		return false, err
	}
	if on && abandoned(h.cb) {
		return false, fmt.Errorf("callback %q was abandoned by the watchdog (its interpreter is stopped); load it again", id)
	}
	if h.enabled == on {
		return true, nil
	}
	c.setHandleEnabled(h, on)
	return false, nil
}

// setHandleEnabled turns a callback on or off and tells it (callback.Pauser); a panic in that is
// logged.
func (c *HotController) setHandleEnabled(h *handle, on bool) {
	if on != h.enabled {
		c.tellPauser(h, on)
	}
	h.enabled = on
	c.rebuildActive()
}

func (c *HotController) tellPauser(h *handle, on bool) {
	p, ok := h.cb.(callback.Pauser)
	if !ok {
		return
	}
	name, f := "OnPause", p.OnPause
	if on {
		name, f = "OnResume", p.OnResume
	}
	if err := call(func() error { f(); return nil }); err != nil {
		c.logf(c.lastEnv, "callback %s: %s: %v", h.id, name, err)
	}
}

func (c *HotController) setParams(id string, params map[string]any) (note string, err error) {
	h := c.handles[id]
	if h == nil || h.cb == nil {
		if h == nil {
			h = &handle{id: id}
			c.handles[id] = h
		}
		h.pending = merge(h.pending, params)
		return "stored until the callback is loaded", nil
	}
	if err := call(func() error { return h.cb.SetParams(params) }); err != nil {
		return "", fmt.Errorf("set_params %s: %w", id, err)
	}
	h.params = merge(h.params, params)
	return "", nil
}

func (c *HotController) unload(id string) (noop bool, note string, err error) {
	h := c.handles[id]
	if h == nil {
		return false, "", fmt.Errorf("unknown callback id %q (known: %s)", id, c.ids())
	}
	if h.unloaded || h.cb == nil {
		return true, "", nil
	}
	cerr := closeCallback(h.cb)
	h.cb, h.enabled, h.unloaded = nil, false, true
	c.rebuildActive()
	if cerr != nil {
		// Still an unload: the callback is out and stays out; only its clean-up failed.
		return false, fmt.Sprintf("its Close failed: %v", cerr), nil
	}
	return false, "", nil
}

func abandoned(cb callback.HotCallback) bool {
	ab, ok := cb.(callback.Abandoner)
	return ok && ab.Abandoned()
}
