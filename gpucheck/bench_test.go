package gpucheck

import (
	"runtime"
	"testing"

	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/bridge/nn"
	"github.com/hotcb/hotcb/bridge/optim"
	"github.com/hotcb/hotcb/models"
)

// Benchmarks on the check's device. Each synchronises the device before the timer stops, so
// ns/op is device time per op plus the launch overhead, not just the time to enqueue.

// size picks a workload that means something on a GPU and stays quick on a CPU.
func size(dev bridge.Device, gpu, cpu int64) int64 {
	if dev.IsCUDA() {
		return gpu
	}
	return cpu
}

func syncDevice(b *testing.B, dev bridge.Device) {
	if err := bridge.Synchronize(dev); err != nil && dev.IsCUDA() {
		b.Fatal(err)
	}
}

// BenchmarkMatMul: n×n float32 matmuls (n 4096 on a GPU, 256 on a CPU); TFLOPS reported.
func BenchmarkMatMul(b *testing.B) {
	dev := device(b)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	n := size(dev, 4096, 256)
	x, y := bridge.Randn(bridge.Shape{n, n}, dev), bridge.Randn(bridge.Shape{n, n}, dev)
	_ = x.MatMul(y).Free()
	syncDevice(b, dev)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_ = x.MatMul(y).Free()
	}
	syncDevice(b, dev)
	b.StopTimer()
	b.ReportMetric(2*float64(n*n*n)*float64(b.N)/b.Elapsed().Seconds()/1e12, "TFLOPS")
}

// BenchmarkTrainStep: one SmallCNN step (forward, cross-entropy, backward, Adam) on a batch of
// 64 (256 on a GPU) 28×28 images already on the device; steps/s reported.
func BenchmarkTrainStep(b *testing.B) {
	dev := device(b)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	batch := size(dev, 256, 64)
	bridge.ManualSeed(1)
	model := models.NewSmallCNN(1, 6)
	nn.To(model, dev)
	opt, err := optim.NewAdam(optim.Params(nn.Parameters(model)...), optim.DefaultAdam())
	if err != nil {
		b.Fatal(err)
	}
	x, y := bridge.Randn(bridge.Shape{batch, 1, 28, 28}, dev), bridge.RandInt(0, 6, bridge.Shape{batch}, dev)
	step := func() {
		loss := bridge.CrossEntropy(model.Forward(x), y)
		opt.ZeroGrad()
		loss.Backward()
		opt.Step()
	}
	for i := 0; i < 3; i++ {
		step()
	}
	syncDevice(b, dev)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		step()
	}
	syncDevice(b, dev)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "steps/s")
	b.ReportMetric(float64(b.N*int(batch))/b.Elapsed().Seconds(), "samples/s")
}

// BenchmarkHostToDevice: a 64×1×28×28 float32 batch (200 KiB) copied to the device; MB/s.
func BenchmarkHostToDevice(b *testing.B) {
	dev := device(b)
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	x := bridge.Randn(bridge.Shape{64, 1, 28, 28})
	b.SetBytes(x.Numel() * 4)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		_ = x.To(dev).Free()
	}
	syncDevice(b, dev)
}
