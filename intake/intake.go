package intake

import (
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/hotcb/hotcb/ops"
)

// Options say which inputs an Intake reads and when. Every path may be empty: that input is
// not read.
type Options struct {
	Commands string // hotcb.commands.jsonl, tailed by byte offset
	Config   string // hotcb.yaml, handed on when its content changes
	Freeze   string // hotcb.freeze.json, handed on when its content changes or it is removed

	// StartAtEnd skips the commands already in the file.
	StartAtEnd bool
	// DebounceSteps makes Due true at most every N safe points (0 or 1: every one).
	DebounceSteps int
	// PollInterval is how often the inputs are read even without a file-system notification
	// (default 1s); changes are normally seen at once through inotify.
	PollInterval time.Duration
	// PollEveryStep reads the inputs at every safe point instead of relying on notifications:
	// deterministic, for tests and file systems without inotify. No watcher is started.
	PollEveryStep bool
	// Log receives the watcher's problems.
	Log func(string)
}

// Intake is the one place a control loop's inputs come in: the commands file, the YAML, the
// freeze file, the ops submitted from other goroutines, and the signal that some of them may
// have changed (file notifications, a fallback tick, a submit). The owner calls Due at each safe
// point and, when it says so, reads the inputs it has in the order it wants.
type Intake struct {
	opts   Options
	cmds   *CommandReader
	config *File
	freeze *File

	sincePoll int         // safe points since the last poll (training goroutine)
	pending   atomic.Bool // something may be waiting: file change, tick, Submit
	mu        sync.Mutex  // guards queue
	queue     []ops.Op

	watchMu sync.Mutex // guards names and watcher.Add
	names   map[string]bool
	watcher *fsnotify.Watcher
	stop    chan struct{}
	wg      sync.WaitGroup
	closed  bool
}

// New creates an Intake and starts its watcher and fallback tick. Close it at the end.
func New(opts Options) *Intake {
	if opts.PollInterval <= 0 {
		opts.PollInterval = time.Second
	}
	if opts.Log == nil {
		opts.Log = func(string) {}
	}
	in := &Intake{opts: opts, names: map[string]bool{}, stop: make(chan struct{})}
	if opts.Commands != "" {
		in.cmds = NewCommandReader(opts.Commands)
		if opts.StartAtEnd {
			in.cmds.Tailer().SkipExisting()
		}
	}
	if opts.Config != "" {
		in.config = NewFile(opts.Config, false)
	}
	if opts.Freeze != "" {
		in.freeze = NewFile(opts.Freeze, true)
	}
	in.pending.Store(true) // read what is already there at the first safe point
	in.startWatching()
	return in
}

// Commands is the commands reader (nil without a commands file): to position it before the
// first poll, or report its offset and bad lines.
func (in *Intake) Commands() *CommandReader { return in.cmds }

// Submit queues an op from any goroutine for the next poll (the caller validates it).
func (in *Intake) Submit(op ops.Op) {
	in.mu.Lock()
	in.queue = append(in.queue, op)
	in.mu.Unlock()
	in.pending.Store(true)
}

// Wake makes the next Due true (subject to DebounceSteps).
func (in *Intake) Wake() { in.pending.Store(true) }

// Due is called at every safe point (on the training goroutine): it says whether to read the
// inputs now — at every safe point with PollEveryStep, else when something may have changed —
// and at most every DebounceSteps safe points.
func (in *Intake) Due() bool {
	in.sincePoll++
	if (in.opts.PollEveryStep || in.pending.Load()) && in.sincePoll >= in.opts.DebounceSteps {
		in.pending.Store(false)
		in.sincePoll = 0
		return true
	}
	return false
}

// PollFreeze reads the freeze file (see File.Poll).
func (in *Intake) PollFreeze(use func(Change) error) {
	if in.freeze != nil {
		in.freeze.Poll(use)
	}
}

// PollConfig reads the YAML (see File.Poll).
func (in *Intake) PollConfig(use func(Change) error) {
	if in.config != nil {
		in.config.Poll(use)
	}
}

// PollCommands reads the new lines of the commands file (see CommandReader.Poll); when a budget
// cut the poll short, the next Due is true.
func (in *Intake) PollCommands(log func(string)) Commands {
	if in.cmds == nil {
		return Commands{}
	}
	c := in.cmds.Poll(log)
	if c.More {
		in.pending.Store(true)
	}
	return c
}

// Submitted returns the ops submitted since the last call, in order.
func (in *Intake) Submitted() []ops.Op {
	in.mu.Lock()
	q := in.queue
	in.queue = nil
	in.mu.Unlock()
	return q
}

// Close stops the watcher and releases the commands file.
func (in *Intake) Close() {
	if in.closed {
		return
	}
	in.closed = true
	close(in.stop)
	in.wg.Wait()
	if in.cmds != nil {
		in.cmds.Close()
	}
}

// startWatching marks the intake pending when one of its files changes (inotify on their
// directories), and at every PollInterval as a fallback.
func (in *Intake) startWatching() {
	var events chan fsnotify.Event
	var errs chan error
	if !in.opts.PollEveryStep {
		for _, p := range []string{in.opts.Commands, in.opts.Config, in.opts.Freeze} {
			if p == "" {
				continue
			}
			if abs, err := filepath.Abs(p); err == nil {
				in.names[abs] = true
			}
		}
		w, err := fsnotify.NewWatcher()
		if err != nil {
			in.opts.Log("no file notifications (falling back to polling every " + in.opts.PollInterval.String() + "): " + err.Error())
		} else {
			in.watcher = w
			events, errs = w.Events, w.Errors
			for n := range in.names {
				in.addDir(filepath.Dir(n))
			}
		}
	}
	in.wg.Add(1)
	go func() {
		defer in.wg.Done()
		if in.watcher != nil {
			defer in.watcher.Close()
		}
		tick := time.NewTicker(in.opts.PollInterval)
		defer tick.Stop()
		for {
			select {
			case <-in.stop:
				return
			case <-tick.C:
				in.pending.Store(true)
			case ev, ok := <-events:
				if !ok {
					events = nil
					continue
				}
				in.watchMu.Lock()
				hit := in.names[filepath.Clean(ev.Name)]
				in.watchMu.Unlock()
				if hit {
					in.pending.Store(true)
				}
			case err, ok := <-errs:
				if !ok {
					errs = nil
					continue
				}
				in.opts.Log("file watcher: " + err.Error())
			}
		}
	}()
}

// addDir watches a directory (adding one already watched is harmless).
func (in *Intake) addDir(dir string) {
	if err := in.watcher.Add(dir); err != nil {
		in.opts.Log("cannot watch " + dir + " (falling back to polling every " + in.opts.PollInterval.String() + "): " + err.Error())
	}
}

// Watch adds a file (a go_file source) to the notifications, so that an edit is seen at the next
// safe point rather than at the next fallback tick.
func (in *Intake) Watch(path string) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return
	}
	in.watchMu.Lock()
	defer in.watchMu.Unlock()
	if in.names[abs] {
		return
	}
	in.names[abs] = true
	if in.watcher != nil {
		_ = in.watcher.Add(filepath.Dir(abs))
	}
}
