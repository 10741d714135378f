package controller

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/hotcb/hotcb/callback"
	"github.com/hotcb/hotcb/gofile"
	"github.com/hotcb/hotcb/ops"
	"github.com/hotcb/hotcb/rundir"
	"github.com/hotcb/hotcb/torchenv"
)

// trackSource remembers where a go_file callback came from, for hot reload and the ledger.
func (c *HotController) trackSource(h *handle) {
	h.srcPath, h.srcSHA, h.failedSHA = "", "", ""
	s, ok := h.cb.(gofile.Sourced)
	if !ok {
		return
	}
	src := s.Source()
	h.srcPath, h.srcSHA = src.Path, src.SHA256
	if st, err := os.Stat(src.Path); err == nil {
		h.srcMod, h.srcSize = st.ModTime(), st.Size()
	}
	c.watchFile(src.Path)
}

func captureOf(cb callback.HotCallback) *ops.SourceCapture {
	if s, ok := cb.(gofile.Sourced); ok {
		src := s.Source()
		return &ops.SourceCapture{SHA256: src.SHA256, CapturedPath: src.CapturedPath}
	}
	return nil
}

// captureLoader is a loader that can replay a captured source (gofile.Loader).
type captureLoader interface {
	CapturePath(sha string) (string, error)
	LoadCapture(t callback.Target, sha, capturedPath, id string, init map[string]any) (callback.HotCallback, error)
}

// capturedSource returns the loader that replays a recorded capture and the path the capture
// is loaded from (<sources>/<sha256>.go); the record's sha256 must be well formed. The loader
// checks the rest when it loads: captured_path, the file, its sha256.
func (c *HotController) capturedSource(kind string, sc *ops.SourceCapture) (captureLoader, string, error) {
	l, ok := c.loaders[kind].(captureLoader)
	if !ok {
		return nil, "", fmt.Errorf("source_capture: the %s loader cannot replay a captured source", kind)
	}
	p, err := l.CapturePath(sc.SHA256)
	if err != nil {
		return nil, "", err
	}
	return l, p, nil
}

// reloadIfChanged rebuilds a go_file callback whose file changed (see reload) and tells
// Options.OnReload.
func (c *HotController) reloadIfChanged(env *torchenv.Env, h *handle) (Result, bool) {
	r, ok := c.reload(env, h)
	if ok && c.opts.OnReload != nil {
		c.opts.OnReload(env, r)
	}
	return r, ok
}

// reload rebuilds a go_file callback whose file changed. The new instance is built, attached and
// given the last params first; only then is it swapped in and the old one closed. If anything
// fails the old instance keeps running. The result is a load op of the same id, target, init and
// enabled flag (source "watch"), so that a replay of the ledger loads the same version at the
// same step; its Capture is the new version's (on failure: its sha256 only, nothing captured).
func (c *HotController) reload(env *torchenv.Env, h *handle) (Result, bool) {
	if h.cb == nil || h.srcPath == "" {
		return Result{}, false
	}
	// A stat by path tells cheaply whether the file changed. The bytes compared below come from
	// the checked read every load uses (gofile.ReadSource: the directories checked, the file
	// opened once, that descriptor checked and read); the loader builds from its own such read.
	st, err := os.Stat(h.srcPath)
	if err != nil || !st.Mode().IsRegular() || (st.ModTime().Equal(h.srcMod) && st.Size() == h.srcSize) {
		return Result{}, false
	}
	h.srcMod, h.srcSize = st.ModTime(), st.Size()
	t := h.target
	enabled := h.enabled
	op := ops.Op{Module: "cb", Op: ops.OpLoad, ID: h.id, Target: &t, Init: h.init, Enabled: &enabled}
	r := Result{Op: op, Source: rundir.SourceWatch, Decision: Applied, Note: "source changed"}
	var sha string
	fail := func(err error) (Result, bool) {
		h.failedSHA = sha
		h.errors++
		h.lastError = "reload: " + err.Error()
		if env != nil {
			h.lastErrorStep = env.Step
		}
		if sha != "" {
			r.Capture = &ops.SourceCapture{SHA256: sha}
		}
		r.Decision = Failed
		r.Err = fmt.Errorf("%w (the previous version keeps running: sha256 %s, which a restart restores)", err, h.srcSHA)
		return r, true
	}
	b, _, err := gofile.ReadSource(h.srcPath, c.opts.AllowAnyOwner)
	if errors.Is(err, fs.ErrNotExist) {
		h.srcMod = time.Time{} // replaced while we looked: look again next time
		return Result{}, false
	}
	if err != nil {
		return fail(err) // reported once: not again until the file changes
	}
	sum := sha256.Sum256(b)
	sha = hex.EncodeToString(sum[:])
	if sha == h.srcSHA || sha == h.failedSHA {
		return Result{}, false
	}
	loader := c.loaders[t.Kind]
	var cb callback.HotCallback
	if err := call(func() error {
		var lerr error
		cb, lerr = loader.Load(t, h.id, h.init)
		return lerr
	}); err != nil {
		return fail(err)
	}
	if a, ok := cb.(callback.Attacher); ok {
		if err := call(func() error { return a.OnAttach(env) }); err != nil {
			closeCallback(cb)
			return fail(fmt.Errorf("OnAttach: %w", err))
		}
	}
	if len(h.params) > 0 {
		if err := call(func() error { return cb.SetParams(h.params) }); err != nil {
			closeCallback(cb)
			return fail(fmt.Errorf("re-applying params %v: %w", h.params, err))
		}
	}
	old := h.cb
	h.cb = cb
	c.trackSource(h)
	c.rebuildActive()
	if err := closeCallback(old); err != nil {
		r.Note += fmt.Sprintf("; closing the old version failed: %v", err)
	}
	r.Capture = captureOf(cb)
	if r.Capture != nil {
		r.Note += "; sha256 " + r.Capture.SHA256
	}
	return r, true
}

// SourceWatch labels the results of hot reloads (rundir.SourceWatch in the ledger).
const SourceWatch = "watch"

// WatchSource makes the go_file callback id, loaded from a captured copy (a restart restores the
// version that ran), stand for its file again: path is watched, and reloaded as soon as its
// content differs from the running version's; failedSHA ("" for none) is a version known not to
// load, which is not retried until the file changes. Call it on the training goroutine.
func (c *HotController) WatchSource(id, path, failedSHA string) error {
	h, err := c.lookup(id)
	if err != nil {
		return err
	}
	if _, ok := h.cb.(gofile.Sourced); !ok || h.target.Kind != ops.KindGoFile {
		return fmt.Errorf("callback %q is not a go_file callback", id)
	}
	h.target.Path = path
	h.srcPath, h.failedSHA = path, failedSHA
	h.srcMod, h.srcSize = time.Time{}, -1 // the next poll compares the content
	c.watchFile(path)
	c.in.Wake()
	return nil
}
