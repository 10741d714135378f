package controller_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hotcb/hotcb/callback"
	"github.com/hotcb/hotcb/controller"
	"github.com/hotcb/hotcb/ops"
	"github.com/hotcb/hotcb/torchenv"
)

type idle struct{ id string }

func (i idle) ID() string                       { return i.id }
func (idle) Handle(string, *torchenv.Env) error { return nil }
func (idle) SetParams(map[string]any) error     { return nil }

func benchController(b *testing.B, n int, everyStep bool) (*controller.HotController, *torchenv.Env) {
	return benchControllerIn(b, b.TempDir(), n, everyStep)
}

func benchControllerIn(b *testing.B, dir string, n int, everyStep bool) (*controller.HotController, *torchenv.Env) {
	reg := callback.NewRegistry()
	reg.Register("bench/idle", "Idle", func(id string, _ map[string]any) (callback.HotCallback, error) { return idle{id}, nil })
	cmds := filepath.Join(dir, "hotcb.commands.jsonl")
	c, err := controller.New(controller.Options{CommandsPath: cmds, ConfigPath: filepath.Join(dir, "hotcb.yaml"),
		StatusPath: filepath.Join(dir, "hotcb.status.json"), Registry: reg, PollEveryStep: everyStep})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	for i := 0; i < n; i++ {
		if err := c.Submit(ops.Op{Op: ops.OpLoad, ID: fmt.Sprint("cb", i), Target: &ops.CallbackTarget{Kind: "module", Path: "bench/idle", Symbol: "Idle"}}); err != nil {
			b.Fatal(err)
		}
	}
	env := &torchenv.Env{}
	c.Apply(env)
	return c, env
}

// BenchmarkApply is the cost of one safe point with n idle compiled callbacks while the control
// plane is watched (inotify + a 1 s fallback tick: checking for changes is an atomic load).
func BenchmarkApply(b *testing.B) {
	for _, n := range []int{0, 8, 32} {
		b.Run(fmt.Sprintf("callbacks=%d", n), func(b *testing.B) {
			c, env := benchController(b, n, false)
			b.ReportAllocs()
			for b.Loop() {
				c.Apply(env, torchenv.TrainStepEnd)
				env.Step++
			}
		})
	}
}

// BenchmarkApplyStatEveryStep is the same with PollEveryStep: one stat of each file per call.
func BenchmarkApplyStatEveryStep(b *testing.B) {
	c, env := benchController(b, 32, true)
	for b.Loop() {
		c.Apply(env, torchenv.TrainStepEnd)
	}
}

// BenchmarkCommandLatency measures, with a loop stepping every 1 ms, the time from a complete
// line appended to the commands file to the op being applied (reported as ms/op).
func BenchmarkCommandLatency(b *testing.B) {
	dir := b.TempDir()
	c, env := benchControllerIn(b, dir, 0, false)
	path := filepath.Join(dir, "hotcb.commands.jsonl")
	b.ResetTimer()
	var total time.Duration
	for i := 0; b.Loop(); i++ {
		line := fmt.Sprintf(`{"op":"set_params","id":"x%d","params":{"v":1}}`+"\n", i)
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		f.WriteString(line)
		f.Close()
		for {
			c.Apply(env)
			if len(c.LastResults()) > 0 {
				break
			}
			time.Sleep(time.Millisecond)
		}
		total += time.Since(t0)
	}
	b.ReportMetric(float64(total.Microseconds())/1e3/float64(b.N), "ms/op")
}
