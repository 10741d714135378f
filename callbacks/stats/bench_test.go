package stats_test

import (
	"testing"

	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/callbacks/stats"
	"github.com/hotcb/hotcb/models"
	"github.com/hotcb/hotcb/torchenv"
)

// The idle benchmarks are the cost on the steps that do not report: what every training step
// pays. The report benchmarks include the JSON line and its write(2).

func benchEnv(b *testing.B) *torchenv.Env {
	env := &torchenv.Env{RunDir: b.TempDir(), Phase: "train"}
	model := models.MLP(784, 256, 10)
	x, y := bridge.Randn(bridge.Shape{64, 784}), bridge.RandInt(0, 10, bridge.Shape{64})
	step(env, model, x, y)
	return env
}

func BenchmarkTensorStatsIdle(b *testing.B) {
	env := benchEnv(b)
	ts, _ := stats.NewTensorStats("ts", map[string]any{"every": 1000000})
	env.Step = 1
	b.ReportAllocs()
	for b.Loop() {
		_ = ts.Handle(torchenv.TrainStepEnd, env)
	}
}

func BenchmarkTensorStatsReport(b *testing.B) {
	env := benchEnv(b)
	ts, _ := stats.NewTensorStats("ts", map[string]any{"every": 1, "log": false})
	b.ReportAllocs()
	for b.Loop() {
		_ = ts.Handle(torchenv.TrainStepEnd, env)
	}
}

func BenchmarkGradStatsIdle(b *testing.B) {
	env := benchEnv(b)
	gs, _ := stats.NewGradStats("gs", map[string]any{"every": 1000000})
	env.Step = 1
	b.ReportAllocs()
	for b.Loop() {
		_ = gs.Handle(torchenv.BackwardEnd, env)
	}
}

func BenchmarkGradStatsReport(b *testing.B) {
	env := benchEnv(b)
	gs, _ := stats.NewGradStats("gs", map[string]any{"every": 1, "log": false, "per_layer": true})
	b.ReportAllocs()
	for b.Loop() {
		_ = gs.Handle(torchenv.BackwardEnd, env)
	}
}
