package controller

import (
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/hotcb/hotcb/ops"
	"github.com/hotcb/hotcb/rundir"
	"github.com/hotcb/hotcb/torchenv"
)

// snapshot copies the state (on the training goroutine) and hands it to the writer.
func (c *HotController) snapshot(env *torchenv.Env) {
	c.statusDue.Store(false)
	st := &rundir.RunStatus{WrittenAt: time.Now().UTC(), PID: pid, Callbacks: []rundir.CallbackStatus{}}
	if env != nil {
		st.Step, st.Epoch, st.Phase = env.Step, env.Epoch, env.Phase
	}
	for _, h := range c.order {
		cs := rundir.CallbackStatus{ID: h.id, Enabled: h.enabled && h.cb != nil, Loaded: h.cb != nil,
			Init: h.init, Params: h.params, PendingParams: h.pending, Calls: h.calls, Errors: h.errors,
			LastError: h.lastError, LastErrorStep: h.lastErrorStep}
		if h.target != (ops.CallbackTarget{}) {
			t := h.target
			cs.Target = &t
		}
		if h.sampled > 0 {
			cs.MeanMicros = float64(h.sampledNs) / float64(h.sampled) / 1e3
			cs.MaxMicros = float64(h.maxNs) / 1e3
		}
		st.Callbacks = append(st.Callbacks, cs)
	}
	// set_params for ids never loaded
	for id, h := range c.handles {
		if !c.inOrder(h) {
			st.Callbacks = append(st.Callbacks, rundir.CallbackStatus{ID: id, PendingParams: h.pending})
		}
	}
	if r := c.cmdStatus; r != nil {
		st.CommandsPath, st.CommandsRead, st.BadLines = r.Path(), r.Offset(), r.BadLines()
	}
	st.ConfigPath = c.opts.ConfigPath
	if c.opts.StatusExtra != nil {
		st.Extra = c.opts.StatusExtra()
	}
	c.status.publish(st)
}

// Status returns the last snapshot (taken at a safe point); nil before the first.
func (c *HotController) Status() *rundir.RunStatus { return c.status.latest() }

// statusSink keeps the latest snapshot and writes it to the status file from its own goroutine,
// so the training loop never waits for the disk.
type statusSink struct {
	path    string
	log     *logger
	mu      sync.Mutex
	last    *rundir.RunStatus
	ctlErr  string
	stuck   *rundir.Stuck
	kick    chan struct{}
	done    chan struct{}
	lastErr string
}

func newStatusSink(path string, log *logger) *statusSink {
	s := &statusSink{path: path, log: log, kick: make(chan struct{}, 1), done: make(chan struct{})}
	go s.run()
	return s
}

func (s *statusSink) controlError(msg string) {
	s.mu.Lock()
	s.ctlErr = msg
	s.mu.Unlock()
}

// setStuck records the watchdog's report (nil: cleared) and has the status written.
func (s *statusSink) setStuck(r *rundir.Stuck) {
	s.mu.Lock()
	s.stuck = r
	if s.last != nil {
		cp := *s.last
		cp.Stuck = r
		s.last = &cp
	}
	s.mu.Unlock()
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

func (s *statusSink) publish(st *rundir.RunStatus) {
	s.mu.Lock()
	st.ControlError, st.Stuck = s.ctlErr, s.stuck
	s.last = st
	s.mu.Unlock()
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

func (s *statusSink) latest() *rundir.RunStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.last
}

func (s *statusSink) run() {
	defer close(s.done)
	for range s.kick {
		s.write()
	}
}

func (s *statusSink) write() {
	if s.path == "" {
		return
	}
	st := s.latest()
	if st == nil {
		return
	}
	b, err := json.MarshalIndent(st, "", "  ")
	if err == nil {
		err = rundir.ReplaceFile(s.path, append(b, '\n'))
	}
	if err != nil && err.Error() != s.lastErr {
		s.lastErr = err.Error()
		s.log.line(fmt.Sprintf("cannot write status %s: %v", s.path, err))
	}
}

// close flushes the last snapshot and stops the writer.
func (s *statusSink) close() {
	close(s.kick)
	<-s.done
	s.write()
}

// logger appends timestamped lines to the log file and forwards them to a function: fn for the
// control plane's own lines, echo (or fn when nil) for the lines callbacks write.
type logger struct {
	mu   sync.Mutex
	f    *os.File
	fn   func(string)
	echo func(string)
}

func newLogger(path string, fn, echo func(string)) (*logger, error) {
	if echo == nil {
		echo = fn
	}
	l := &logger{fn: fn, echo: echo}
	if path != "" {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND|rundir.NoFollow, 0o600)
		if err != nil {
			return nil, fmt.Errorf("open log %s: %w", path, err)
		}
		l.f = f
	}
	return l, nil
}

func (l *logger) line(s string) { l.write(s, l.fn) }

// callbackLine is a line a callback wrote through the env.
func (l *logger) callbackLine(s string) { l.write(s, l.echo) }

func (l *logger) write(s string, fn func(string)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f != nil {
		fmt.Fprintf(l.f, "%s %s\n", time.Now().UTC().Format(time.RFC3339Nano), s)
	}
	if fn != nil {
		fn(s)
	}
}

func (l *logger) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.f != nil {
		l.f.Close()
		l.f = nil
	}
}
