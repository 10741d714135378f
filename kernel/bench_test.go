package kernel_test

import (
	"fmt"
	"testing"

	"github.com/hotcb/hotcb/callback"
	"github.com/hotcb/hotcb/controller"
	"github.com/hotcb/hotcb/kernel"
	"github.com/hotcb/hotcb/ops"
	"github.com/hotcb/hotcb/torchenv"
)

type idle struct{ id string }

func (i idle) ID() string                       { return i.id }
func (idle) Handle(string, *torchenv.Env) error { return nil }
func (idle) SetParams(map[string]any) error     { return nil }

// BenchmarkKernelApply is the kernel's cost per safe point with n idle compiled callbacks while
// the run directory is watched (goal ≤ 0.7 µs at 32; hotcb's Python kernel ≈ 42 µs).
func BenchmarkKernelApply(b *testing.B) {
	for _, n := range []int{0, 8, 32} {
		b.Run(fmt.Sprintf("callbacks=%d", n), func(b *testing.B) {
			reg := callback.NewRegistry()
			reg.Register("bench/idle", "Idle", func(id string, _ map[string]any) (callback.HotCallback, error) { return idle{id}, nil })
			k, err := kernel.New(b.TempDir(), kernel.Options{Controller: controller.Options{Registry: reg}})
			if err != nil {
				b.Fatal(err)
			}
			defer k.Close()
			for i := 0; i < n; i++ {
				k.Submit(ops.Op{Module: "cb", Op: "load", ID: fmt.Sprint("cb", i), Target: &ops.CallbackTarget{Kind: "module", Path: "bench/idle", Symbol: "Idle"}})
			}
			env := &torchenv.Env{}
			k.Apply(env, torchenv.TrainStepEnd)
			b.ReportAllocs()
			for b.Loop() {
				k.Apply(env, torchenv.TrainStepEnd)
				env.Step++
			}
		})
	}
}
