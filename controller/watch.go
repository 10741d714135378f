package controller

import (
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"
)

// startWatching marks the controller pending when the commands or config file changes
// (inotify), and on a timer as a fallback; it also schedules status snapshots.
func (c *HotController) startWatching() {
	var w *fsnotify.Watcher
	names := c.watchNames
	if !c.opts.PollEveryStep {
		for _, p := range []string{c.opts.CommandsPath, c.opts.ConfigPath} {
			if p != "" {
				abs, err := filepath.Abs(p)
				if err == nil {
					names[abs] = true
				}
			}
		}
		if len(names) > 0 {
			if ww, err := fsnotify.NewWatcher(); err == nil {
				w = ww
				c.watcher = ww
				dirs := map[string]bool{}
				for n := range names {
					dirs[filepath.Dir(n)] = true
				}
				for d := range dirs {
					if err := w.Add(d); err != nil {
						c.log.line("cannot watch " + d + " (falling back to polling every " + c.opts.PollInterval.String() + "): " + err.Error())
					}
				}
			} else {
				c.log.line("no file notifications (falling back to polling every " + c.opts.PollInterval.String() + "): " + err.Error())
			}
		}
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		poll := time.NewTicker(c.opts.PollInterval)
		defer poll.Stop()
		status := time.NewTicker(c.opts.StatusInterval)
		defer status.Stop()
		var events chan fsnotify.Event
		var errs chan error
		if w != nil {
			defer w.Close()
			events, errs = w.Events, w.Errors
		}
		for {
			select {
			case <-c.stop:
				return
			case <-poll.C:
				c.pending.Store(true)
			case <-status.C:
				c.statusDue.Store(true)
			case ev, ok := <-events:
				if !ok {
					events = nil
					continue
				}
				c.watchMu.Lock()
				hit := names[filepath.Clean(ev.Name)]
				c.watchMu.Unlock()
				if hit {
					c.pending.Store(true)
				}
			case err, ok := <-errs:
				if !ok {
					errs = nil
					continue
				}
				c.log.line("file watcher: " + err.Error())
			}
		}
	}()
}

// watchFile adds a file (a go_file source) to the notifications, so that an edit is seen at the
// next safe point rather than at the next fallback tick.
func (c *HotController) watchFile(path string) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return
	}
	c.watchMu.Lock()
	defer c.watchMu.Unlock()
	if c.watchNames[abs] {
		return
	}
	c.watchNames[abs] = true
	if c.watcher != nil {
		_ = c.watcher.Add(filepath.Dir(abs)) // adding a watched directory again is harmless
	}
}
