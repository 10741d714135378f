package featviz_test

import (
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/bridge/nn"
	"github.com/hotcb/hotcb/bridge/optim"
	"github.com/hotcb/hotcb/callbacks/featviz"
	"github.com/hotcb/hotcb/models"
	"github.com/hotcb/hotcb/torchenv"
)

// BenchmarkStepOverhead measures what FeatureViz (defaults: every 50 steps, 1 sample, 16
// channels, the three Conv2d layers) adds to a SmallCNN training step on 28×28 images, batch 64,
// on the CPU. Each b.N iteration is one round of stepsPerRound steps without the callback and
// stepsPerRound steps with it, in alternating order, on the same model; the metrics are medians
// over rounds. Run it with a fixed round count:
//
//	go test ./callbacks/featviz -run '^$' -bench StepOverhead -benchtime 8x
func BenchmarkStepOverhead(b *testing.B) {
	const stepsPerRound = 50 // one capture step in each "on" half
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	bridge.ManualSeed(1)
	model := models.NewSmallCNN(1, 6)
	opt, err := optim.NewAdam(optim.Params(nn.Parameters(model)...), optim.DefaultAdam())
	if err != nil {
		b.Fatal(err)
	}
	x, y := bridge.Randn(bridge.Shape{64, 1, 28, 28}), bridge.RandInt(0, 6, bridge.Shape{64})
	env := &torchenv.Env{Model: model, Optimizer: opt, RunDir: b.TempDir(), Phase: "train"}
	var step int64
	run := func(cb *featviz.FeatureViz) time.Duration {
		t0 := time.Now()
		for range stepsPerRound {
			env.Step = step
			out := model.Forward(x)
			loss := bridge.CrossEntropy(out, y)
			opt.ZeroGrad()
			loss.Backward()
			opt.Step()
			if cb != nil {
				if err := cb.Handle(torchenv.TrainStepEnd, env); err != nil {
					b.Fatal(err)
				}
			}
			step++
		}
		return time.Since(t0) / stepsPerRound
	}
	run(nil) // warm-up
	var st featviz.Stats
	var off, on []float64
	var ratio []float64
	b.ResetTimer()
	for i := range b.N {
		// A new callback for each "on" half, closed after it, so the "off" half has no hooks.
		var a, c time.Duration
		withCB := func() time.Duration {
			fv, err := featviz.New("fv", nil)
			if err != nil {
				b.Fatal(err)
			}
			env.Step = step // OnAttach takes env.Step as the step of the next forward
			if err := fv.OnAttach(env); err != nil {
				b.Fatal(err)
			}
			d := run(fv)
			if err := fv.Close(); err != nil {
				b.Fatal(err)
			}
			s := fv.Stats()
			st.Captured += s.Captured
			st.Written += s.Written
			st.Dropped += s.Dropped
			st.CaptureTime += s.CaptureTime
			st.WriteTime += s.WriteTime
			return d
		}
		if i%2 == 0 {
			a, c = run(nil), withCB()
		} else {
			c, a = withCB(), run(nil)
		}
		off = append(off, float64(a)/1e6)
		on = append(on, float64(c)/1e6)
		ratio = append(ratio, float64(c)/float64(a))
	}
	b.StopTimer()
	med := func(xs []float64) float64 { s := slices.Clone(xs); slices.Sort(s); return s[len(s)/2] }
	mean := func(xs []float64) float64 {
		t := 0.0
		for _, x := range xs {
			t += x
		}
		return t / float64(len(xs))
	}
	b.ReportMetric(mean(off), "ms/step-off")
	b.ReportMetric(mean(on), "ms/step-on")
	b.ReportMetric(100*(mean(on)/mean(off)-1), "%overhead-mean")
	b.ReportMetric(100*(med(ratio)-1), "%overhead-median")
	if st.Captured > 0 {
		// What the loop itself pays on a capture step, and what the writer does off the loop,
		// per frame and as a share of the steps they cover (3 frames per 50 steps).
		perFrame := float64(st.CaptureTime) / float64(st.Captured)
		b.ReportMetric(perFrame/1e3, "µs-hook/frame")
		b.ReportMetric(float64(st.WriteTime)/float64(st.Written)/1e3, "µs-writer/frame")
		b.ReportMetric(100*3*perFrame/(50*mean(off)*1e6), "%hook-amortised")
	}
	b.Logf("%d rounds × 2 × %d steps: off %.3f ms/step, on %.3f ms/step (mean), median per-round ratio %.4f; frames %d captured, %d written, %d dropped",
		b.N, stepsPerRound, mean(off), mean(on), med(ratio), st.Captured, st.Written, st.Dropped)
}
