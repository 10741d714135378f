package featviz_test

import (
	"runtime"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/bridge/nn"
	"github.com/hotcb/hotcb/bridge/optim"
	"github.com/hotcb/hotcb/callbacks/featviz"
	"github.com/hotcb/hotcb/models"
	"github.com/hotcb/hotcb/torchenv"
)

// cpuTime is the process's user+system CPU time: the writer goroutine's work counts, other
// processes' load does not.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkStepOverhead measures what FeatureViz with its defaults (every 50 steps, 1 sample,
// 16 channels, the three Conv2d layers, PNGs and gallery written to a temp dir) adds to a
// SmallCNN training step on 28×28 images, batch 64, on the CPU. Each b.N iteration is one round
// of three arms of stepsPerRound steps on the same model — no callback, the callback (attached
// for its arm only, closed after it), and no callback again as a control whose difference from
// the first shows the noise floor — in an order that rotates from round to round. Run it with a
// fixed round count:
//
//	go test ./callbacks/featviz -run '^$' -bench StepOverhead -benchtime 30x
//
// Metrics: mean ms/step per arm; %overhead (mean on / mean off − 1), its per-round median and
// its process-CPU-time version; %control (the same for the control arm); µs-hook/frame (time
// inside the forward on capture steps), µs-writer/frame (drawing, encoding and writing, off the
// loop) and %accounted: hook and writer time as a share of the "on" arms' step time, the cost
// if the writer had no spare core.
func BenchmarkStepOverhead(b *testing.B) {
	const stepsPerRound = 50 // one capture step in each "on" arm
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
	steps := func(cb *featviz.FeatureViz) {
		for range stepsPerRound {
			env.Step = step
			loss := bridge.CrossEntropy(model.Forward(x), y)
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
	}
	var st featviz.Stats
	arm := func(withCB bool) (wall, cpu float64) {
		var fv *featviz.FeatureViz
		if withCB {
			if fv, err = featviz.New("fv", nil); err != nil {
				b.Fatal(err)
			}
			env.Step = step // OnAttach takes env.Step as the step of the next forward
			if err := fv.OnAttach(env); err != nil {
				b.Fatal(err)
			}
		}
		t0, c0 := time.Now(), cpuTime()
		steps(fv)
		wall, cpu = float64(time.Since(t0))/stepsPerRound/1e6, float64(cpuTime()-c0)/stepsPerRound/1e6
		if fv != nil {
			if err := fv.Close(); err != nil {
				b.Fatal(err)
			}
			s := fv.Stats()
			st.Captured += s.Captured
			st.Written += s.Written
			st.Dropped += s.Dropped
			st.CaptureTime += s.CaptureTime
			st.WriteTime += s.WriteTime
		}
		return wall, cpu
	}
	steps(nil) // warm-up
	const off, on, control = 0, 1, 2
	var wall, cpu [3][]float64
	var ratio []float64
	b.ResetTimer()
	for i := range b.N {
		order := []int{off, on, control}
		for range i % 3 {
			order = append(order[1:], order[0])
		}
		if i/3%2 == 1 {
			slices.Reverse(order)
		}
		var w [3]float64
		for _, a := range order {
			var c float64
			w[a], c = arm(a == on)
			wall[a] = append(wall[a], w[a])
			cpu[a] = append(cpu[a], c)
		}
		ratio = append(ratio, w[on]/w[off])
	}
	b.StopTimer()
	mean := func(xs []float64) float64 {
		t := 0.0
		for _, x := range xs {
			t += x
		}
		return t / float64(len(xs))
	}
	med := func(xs []float64) float64 { s := slices.Clone(xs); slices.Sort(s); return s[len(s)/2] }
	pct := func(a, b float64) float64 { return 100 * (a/b - 1) }
	b.ReportMetric(mean(wall[off]), "ms/step-off")
	b.ReportMetric(mean(wall[on]), "ms/step-on")
	b.ReportMetric(pct(mean(wall[on]), mean(wall[off])), "%overhead")
	b.ReportMetric(100*(med(ratio)-1), "%overhead-median")
	b.ReportMetric(pct(mean(cpu[on]), mean(cpu[off])), "%overhead-cpu")
	b.ReportMetric(pct(mean(wall[control]), mean(wall[off])), "%control")
	b.ReportMetric(pct(mean(cpu[control]), mean(cpu[off])), "%control-cpu")
	if st.Captured > 0 && st.Written > 0 {
		b.ReportMetric(float64(st.CaptureTime)/float64(st.Captured)/1e3, "µs-hook/frame")
		b.ReportMetric(float64(st.WriteTime)/float64(st.Written)/1e3, "µs-writer/frame")
		onTime := mean(wall[on]) * 1e6 * float64(stepsPerRound*b.N)
		b.ReportMetric(100*float64(st.CaptureTime+st.WriteTime)/onTime, "%accounted")
	}
	b.Logf("%d rounds × 3 arms × %d steps: off %.3f, on %.3f, control %.3f ms/step; frames %d captured, %d written, %d dropped",
		b.N, stepsPerRound, mean(wall[off]), mean(wall[on]), mean(wall[control]), st.Captured, st.Written, st.Dropped)
}
