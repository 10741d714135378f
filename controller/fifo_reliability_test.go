package controller_test

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/controller"
	"github.com/hotcb/hotcb/ops"
	"github.com/hotcb/hotcb/torchenv"
)

// returnsSoon runs step on another goroutine and fails the test if it is still blocked after
// 5 s (after unblocking it by opening the FIFO at fifo for writing, so the test can end).
func returnsSoon(t *testing.T, fifo string, step func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); step() }()
	select {
	case <-done:
		return
	case <-time.After(5 * time.Second):
	}
	for stuck := true; stuck; {
		select {
		case <-done:
			stuck = false
		default:
			if f, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
				f.Close()
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	t.Fatalf("the safe point blocked on the FIFO %s", fifo)
}

// TestFIFOInPlaceOfConfigAndSource: a FIFO as hotcb.yaml, then as a go_file callback's source,
// under a bare controller: the safe point returns, the running version keeps running, and the
// real files are picked up once they are back.
func TestFIFOInPlaceOfConfigAndSource(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "hotcb.yaml")
	src := filepath.Join(dir, "feat.go")
	require.NoError(t, os.WriteFile(src, []byte(feature("v1")), 0o600))
	require.NoError(t, syscall.Mkfifo(cfg, 0o600))
	log := &lockedLog{}
	c, err := controller.New(controller.Options{PollEveryStep: true, ConfigPath: cfg, Log: log.add})
	require.NoError(t, err)
	defer c.Close()
	var mu sync.Mutex
	var lines []string
	env := &torchenv.Env{Log: func(s string) { mu.Lock(); lines = append(lines, s); mu.Unlock() }}
	step := func() { c.Apply(env, torchenv.TrainStepEnd); env.Step++ }

	returnsSoon(t, cfg, step)
	require.Contains(t, log.String(), "is not a regular file")
	require.NoError(t, os.Remove(cfg))
	require.NoError(t, os.WriteFile(cfg, []byte("callbacks:\n  fv:\n    target: {kind: go_file, path: "+src+", symbol: FeatureViz}\n    init: {every: 1}\n"), 0o600))
	step()
	require.Equal(t, controller.Applied, c.LastResults()[0].Decision, "%v", c.LastResults()[0].Err)

	require.NoError(t, os.Remove(src))
	require.NoError(t, syscall.Mkfifo(src, 0o600))
	returnsSoon(t, src, func() { step(); step() })
	mu.Lock()
	last := lines[len(lines)-1]
	mu.Unlock()
	require.Contains(t, last, "v1 fv step=", "v1 keeps running")
	require.NoError(t, os.Remove(src))
	require.NoError(t, os.WriteFile(src, []byte(feature("v2")), 0o600))
	step()
	require.Equal(t, ops.OpLoad, c.LastResults()[0].Op.Op)
	require.Equal(t, controller.Applied, c.LastResults()[0].Decision, "%v", c.LastResults()[0].Err)
	step()
	mu.Lock()
	last = lines[len(lines)-1]
	mu.Unlock()
	require.Contains(t, last, "v2 fv step=")
}

type lockedLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *lockedLog) add(s string) { l.mu.Lock(); l.lines = append(l.lines, s); l.mu.Unlock() }
func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.lines, "\n")
}
