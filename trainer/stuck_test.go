package trainer_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/callback"
	"github.com/hotcb/hotcb/rundir"
	"github.com/hotcb/hotcb/torchenv"
	"github.com/hotcb/hotcb/trainer"
)

// syncBuffer is a bytes.Buffer safe for the stop path and the training goroutine together.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

// blocker blocks in Handle at step 3 until released: a compiled callback that never returns.
type blocker struct {
	id      string
	blocked chan struct{}
	release chan struct{}
}

var blockers sync.Map // id -> *blocker

func init() {
	callback.Register("test/blocker", "Blocker", func(id string, _ map[string]any) (callback.HotCallback, error) {
		b, _ := blockers.Load(id)
		return b.(*blocker), nil
	})
}

func (b *blocker) ID() string                     { return b.id }
func (b *blocker) SetParams(map[string]any) error { return nil }
func (b *blocker) Handle(ev string, env *torchenv.Env) error {
	if env.Step == 3 && ev == torchenv.TrainStepEnd {
		close(b.blocked)
		<-b.release
	}
	return nil
}

func smallRun(dir string, out *syncBuffer) trainer.Options {
	o := trainer.Options{Dir: dir, Model: "mlp", Steps: 1000, Batch: 16, TrainN: 256, TestN: 32, Out: out,
		StopGrace: 200 * time.Millisecond}
	o.Kernel.Controller.StuckAfter = 100 * time.Millisecond
	o.Kernel.Controller.AbandonAfter = time.Hour // only the stop abandons
	return o
}

// Ctrl-C while a go_file callback loops forever: the call is abandoned, the run stops as usual
// (checkpoint, closed callbacks), and the ledger records the disable.
func TestStopAbandonsAStuckGoFile(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(t.TempDir(), "spin.go")
	require.NoError(t, os.WriteFile(src, []byte(`package spin

import "github.com/hotcb/hotcb/torchenv"

type Spin struct {
	Id string `+"`hotcb:\"id\"`"+`
}

func (s *Spin) ID() string { return s.Id }
func (s *Spin) Handle(event string, env *torchenv.Env) error {
	if env.Step == 3 {
		env.Logf("spinning")
		for {
		}
	}
	return nil
}
func (s *Spin) SetParams(params map[string]any) error { return nil }
`), 0o600))
	// no built-ins: timing's chart at fit_end can take longer than this test's StopGrace
	require.NoError(t, os.WriteFile(filepath.Join(dir, rundir.Config), []byte("version: 1\n"), 0o600))
	require.NoError(t, rundir.AppendLine(filepath.Join(dir, rundir.Commands),
		[]byte(`{"op":"load","id":"spin","target":{"kind":"go_file","path":"`+src+`","symbol":"Spin"}}`)))
	ctx, cancel := context.WithCancel(context.Background())
	var out syncBuffer
	o := smallRun(dir, &out)
	go func() {
		require.Eventually(t, func() bool { return bytes.Contains([]byte(out.String()), []byte("spinning")) }, 30*time.Second, 5*time.Millisecond)
		cancel()
	}()
	t0 := time.Now()
	sum, err := trainer.Run(ctx, o)
	require.NoError(t, err, out.String())
	require.Less(t, time.Since(t0), 30*time.Second)
	require.Equal(t, "interrupted", sum.Stopped)
	require.Equal(t, int64(4), sum.Steps, "the step whose safe point hung completed")
	l, err := rundir.ReadLedger(filepath.Join(dir, rundir.Applied))
	require.NoError(t, err)
	last := l.Entries[len(l.Entries)-1]
	require.Equal(t, "disable", last.Op)
	require.Equal(t, rundir.SourceWatchdog, last.Source)
}

// Ctrl-C while a compiled callback blocks: Run returns ErrStuck after saving the checkpoint;
// the training goroutine stays behind until the callback returns.
func TestStopWithACompiledCallbackStuck(t *testing.T) {
	dir := t.TempDir()
	b := &blocker{id: "blk", blocked: make(chan struct{}), release: make(chan struct{})}
	blockers.Store("blk", b)
	require.NoError(t, os.WriteFile(filepath.Join(dir, rundir.Config), []byte("version: 1\n"), 0o600))
	require.NoError(t, rundir.AppendLine(filepath.Join(dir, rundir.Commands),
		[]byte(`{"op":"load","id":"blk","target":{"kind":"module","path":"test/blocker","symbol":"Blocker"}}`)))
	ctx, cancel := context.WithCancel(context.Background())
	var out syncBuffer
	go func() { <-b.blocked; cancel() }()
	sum, err := trainer.Run(ctx, smallRun(dir, &out))
	require.True(t, errors.Is(err, trainer.ErrStuck), "%v", err)
	require.ErrorContains(t, err, "stuck in callback blk")
	require.Equal(t, int64(4), sum.Steps)
	require.Contains(t, out.String(), "'hotcb cb unload blk' before the next start, or start with --no-restore")
	items, err := bridge.LoadNamed(sum.Checkpoint)
	require.NoError(t, err)
	var step int64 = -1
	for _, it := range items {
		if it.Name == "step" {
			step = it.Tensor.ItemInt()
		}
	}
	require.Equal(t, int64(4), step, "the checkpoint counts the step whose safe point hung")

	close(b.release) // the run goes on to its clean stop; wait for it to let go of the directory
	require.Eventually(t, func() bool {
		f, err := rundir.LockDir(rundir.Dir(dir))
		if err == nil {
			f.Close()
		}
		return err == nil
	}, 30*time.Second, 20*time.Millisecond)
}
