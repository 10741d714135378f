package controller_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/controller"
	"github.com/hotcb/hotcb/ops"
	"github.com/hotcb/hotcb/rundir"
	"github.com/hotcb/hotcb/torchenv"
)

// A compiled callback that blocks: the watchdog names it, the event and the step in the log and
// the status file; it cannot be abandoned; when it returns the report is cleared.
func TestWatchdogNamesAStuckCompiledCallback(t *testing.T) {
	defer verifyNoLeaks(t)()
	bad := &faulty{id: "bad", block: make(chan struct{})}
	r := newFaultRig(t, bad, controller.Options{StuckAfter: 100 * time.Millisecond, AbandonAfter: 100 * time.Millisecond})
	r.load()
	bad.mode = "block"
	r.env.Step = 7
	done := make(chan struct{})
	go func() { r.c.Apply(r.env, torchenv.TrainStepEnd); close(done) }()
	require.Eventually(t, func() bool { return r.c.Stuck() != nil }, 10*time.Second, 10*time.Millisecond)
	s := r.c.Stuck()
	require.Equal(t, "bad", s.Callback, "%+v", s)
	require.Equal(t, "train_step_end", s.Event)
	require.Equal(t, int64(7), s.Step)
	require.False(t, s.Abandonable)
	require.Contains(t, s.Call, "controller_test.(*faulty).Handle")
	require.Contains(t, r.log(), "watchdog: the safe point of step 7 (train_step_end) is stuck in callback bad")
	require.Contains(t, r.log(), "a compiled callback cannot be abandoned")
	require.Eventually(t, func() bool {
		st, err := rundir.ReadStatus(filepath.Join(r.dir, "hotcb.status.json"))
		return err == nil && st.Stuck != nil && st.Stuck.Callback == "bad"
	}, 10*time.Second, 10*time.Millisecond, "the status file says so although the training goroutine is stuck")
	rep := r.c.AbandonStuck(0)
	require.NotNil(t, rep)
	require.False(t, rep.Abandoned, "compiled code cannot be abandoned")
	time.Sleep(300 * time.Millisecond) // past AbandonAfter: still nothing abandoned
	require.False(t, r.c.Stuck().Abandoned)

	close(bad.block)
	<-done
	require.Eventually(t, func() bool { return r.c.Stuck() == nil }, 10*time.Second, 10*time.Millisecond)
	require.Contains(t, r.log(), "watchdog: the safe point of step 7 (train_step_end) returned after")
	bad.mode = ""
	require.NoError(t, r.c.Close())
}

const spinSrc = `package spin

import "github.com/hotcb/hotcb/torchenv"

type Spin struct {
	Id string ` + "`hotcb:\"id\"`" + `
	n  int
}

func (s *Spin) ID() string { return s.Id }

func (s *Spin) Handle(event string, env *torchenv.Env) error {
	if env.Step == 3 {
		for {
			s.n++
		}
	}
	env.Logf("spin %d", env.Step)
	return nil
}

func (s *Spin) SetParams(params map[string]any) error { return nil }
`

// A go_file callback looping forever: abandoned after AbandonAfter, disabled, the loop goes on;
// enabling it again is refused, loading it again gives a working instance.
func TestWatchdogAbandonsAStuckGoFile(t *testing.T) {
	defer verifyNoLeaks(t)()
	dir := t.TempDir()
	src := filepath.Join(dir, "spin.go")
	require.NoError(t, os.WriteFile(src, []byte(spinSrc), 0o600))
	var abandoned []string
	r := newFaultRig(t, &faulty{id: "bad"}, controller.Options{StuckAfter: 50 * time.Millisecond, AbandonAfter: 300 * time.Millisecond,
		OnAbandoned: func(_ *torchenv.Env, id, reason string) { abandoned = append(abandoned, id+": "+reason) }})
	var lines []string
	r.env.Log = func(s string) { lines = append(lines, s) }
	load := ops.Op{Op: ops.OpLoad, ID: "spin", Target: &ops.CallbackTarget{Kind: "go_file", Path: src, Symbol: "Spin"}}
	r.submit(load)
	t0 := time.Now()
	r.steps(6) // steps 0..5; step 3 hangs until abandoned
	require.GreaterOrEqual(t, time.Since(t0), 300*time.Millisecond)
	require.Equal(t, []string{"spin 0", "spin 1", "spin 2"}, filter(lines, "spin "))
	require.Len(t, abandoned, 1)
	require.Contains(t, abandoned[0], "spin: abandoned by the watchdog: Handle(train_step_end) made at step 3 did not return in")
	require.Contains(t, r.log(), "watchdog: abandoned Handle(train_step_end) of callback spin")
	require.Contains(t, r.log(), "callback spin disabled: abandoned by the watchdog")
	st := r.status("spin")
	require.False(t, st.Enabled)
	require.True(t, st.Loaded)

	r.submit(ops.Op{Op: ops.OpEnable, ID: "spin"})
	r.steps(1)
	require.ErrorContains(t, r.c.LastResults()[0].Err, "was abandoned by the watchdog")
	r.submit(load)
	r.steps(1)
	require.Equal(t, controller.Applied, r.c.LastResults()[0].Decision, "a new instance, not 'already loaded'")
	require.Equal(t, "spin 7", lines[len(lines)-1])
	require.NoError(t, r.c.Close())
}

// A safe point stuck first in compiled code (not abandonable), then, once that returned, in a
// go_file call: the watchdog follows the stuck call within the one safe point and abandons the
// go_file call, instead of keeping its first report and never abandoning anything (as when a
// slow go_file load made the first report and the loaded callback then looped).
func TestWatchdogFollowsTheStuckCallWithinASafePoint(t *testing.T) {
	defer verifyNoLeaks(t)()
	dir := t.TempDir()
	src := filepath.Join(dir, "spin.go")
	require.NoError(t, os.WriteFile(src, []byte(spinSrc), 0o600))
	bad := &faulty{id: "bad", block: make(chan struct{}), mode: "block"}
	r := newFaultRig(t, bad, controller.Options{StuckAfter: 50 * time.Millisecond, AbandonAfter: 200 * time.Millisecond})
	close(bad.block) // bad returns at once until a fresh channel is set before step 3
	r.load()
	r.submit(ops.Op{Op: ops.OpLoad, ID: "spin", Target: &ops.CallbackTarget{Kind: "go_file", Path: src, Symbol: "Spin"}})
	r.steps(2) // steps 1 and 2; spin runs after bad in every safe point
	bad.block = make(chan struct{})
	done := make(chan struct{})
	go func() { r.c.Apply(r.env, torchenv.TrainStepEnd); close(done) }() // step 3
	require.Eventually(t, func() bool { s := r.c.Stuck(); return s != nil && s.Callback == "bad" }, 10*time.Second, 5*time.Millisecond)
	require.False(t, r.c.Stuck().Abandonable)
	close(bad.block) // bad returns; spin loops at step 3
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the go_file call stuck after the compiled one was never abandoned")
	}
	require.Contains(t, r.log(), "watchdog: abandoned Handle(train_step_end) of callback spin")
	require.Contains(t, r.log(), "callback spin disabled: abandoned by the watchdog")
	require.NoError(t, r.c.Close())
}

// Ctrl-C does not wait for AbandonAfter: AbandonStuck abandons a stuck go_file call at once.
func TestAbandonStuckAtOnce(t *testing.T) {
	defer verifyNoLeaks(t)()
	dir := t.TempDir()
	src := filepath.Join(dir, "spin.go")
	require.NoError(t, os.WriteFile(src, []byte(spinSrc), 0o600))
	r := newFaultRig(t, &faulty{id: "bad"}, controller.Options{StuckAfter: 50 * time.Millisecond, AbandonAfter: time.Hour})
	r.submit(ops.Op{Op: ops.OpLoad, ID: "spin", Target: &ops.CallbackTarget{Kind: "go_file", Path: src, Symbol: "Spin"}})
	r.steps(3)
	done := make(chan struct{})
	go func() { r.steps(1); close(done) }()
	// The report of this safe point (a slow load of spin may have made one for step 0, which
	// stays until the watchdog's next look).
	require.Eventually(t, func() bool { s := r.c.Stuck(); return s != nil && s.Step == 3 && s.Abandonable },
		10*time.Second, 5*time.Millisecond)
	s := r.c.AbandonStuck(0)
	require.True(t, s.Abandonable)
	require.True(t, s.Abandoned)
	require.Equal(t, "Handle(train_step_end)", s.Call)
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the safe point did not return after AbandonStuck")
	}
	require.NoError(t, r.c.Close())
}

func filter(lines []string, prefix string) []string {
	var out []string
	for _, l := range lines {
		if len(l) >= len(prefix) && l[:len(prefix)] == prefix {
			out = append(out, l)
		}
	}
	return out
}
