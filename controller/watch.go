package controller

import "time"

// startStatusTicker schedules a status snapshot every StatusInterval (the intake's watcher marks
// the controller pending when its inputs change).
func (c *HotController) startStatusTicker() {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		t := time.NewTicker(c.opts.StatusInterval)
		defer t.Stop()
		for {
			select {
			case <-c.stop:
				return
			case <-t.C:
				c.statusDue.Store(true)
			}
		}
	}()
}

// watchFile adds a file (a go_file source) to the notifications, so that an edit is seen at the
// next safe point rather than at the next fallback tick.
func (c *HotController) watchFile(path string) { c.in.Watch(path) }
