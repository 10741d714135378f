package bridge_test

import (
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	. "github.com/hotcb/hotcb/bridge"
)

// rssBytes reads the resident set size of this process from /proc.
func rssBytes(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Skipf("no /proc/self/status: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			f := strings.Fields(line)
			kb, err := strconv.ParseInt(f[1], 10, 64)
			require.NoError(t, err)
			return kb * 1024
		}
	}
	t.Fatal("VmRSS not found")
	return 0
}

// mlpStep is one SGD step of a 784-256-10 MLP written as a plain loop: no intermediate is freed
// by hand.
func mlpStep(x, y *Tensor, params []*Tensor, lr float64) float64 {
	h := Linear(x, params[0], params[1]).Relu()
	loss := CrossEntropy(Linear(h, params[2], params[3]), y)
	loss.Backward()
	NoGrad(func() {
		for _, p := range params {
			p.AddInPlace(p.Grad(), -lr)
			p.ZeroGrad()
		}
	})
	return loss.Item()
}

func newMLP(in, hidden, out int64) []*Tensor {
	return []*Tensor{
		Randn(Shape{hidden, in}).MulScalar(0.05).SetRequiresGrad(true),
		Zeros(Shape{hidden}).SetRequiresGrad(true),
		Randn(Shape{out, hidden}).MulScalar(0.05).SetRequiresGrad(true),
		Zeros(Shape{out}).SetRequiresGrad(true),
	}
}

// TestTrainingLoopMemoryIsFlat runs 20,000 training steps without a single Free and checks that
// RSS after warm-up stays flat. The bound here is 10%, loose enough for a shared 2-core CI
// machine yet far below what any leak would add (one leaked 64x256 activation per step is over
// 1 GiB); the 2% goal is tracked by `make bench`. HOTCB_MEMORY_STEPS changes the length.
func TestTrainingLoopMemoryIsFlat(t *testing.T) {
	steps := 20000
	if v, err := strconv.Atoi(os.Getenv("HOTCB_MEMORY_STEPS")); err == nil && v > 0 {
		steps = v
	}
	if testing.Short() || raceEnabled {
		steps = 3000
	}
	// As README recommends for training loops: one OS thread, so glibc serves the loop from one
	// malloc arena instead of spreading its memory over one per thread it hops to.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	ManualSeed(0)
	params := newMLP(784, 256, 10)
	x := Randn(Shape{64, 784})
	y := RandInt(0, 10, Shape{64})
	warm := steps / 4
	var base int64
	first, last := 0.0, 0.0
	collections := ReadMemoryStats().Collections
	for i := 0; i < steps; i++ {
		l := mlpStep(x, y, params, 0.05)
		if i == 0 {
			first = l
		}
		last = l
		if i == warm {
			runtime.GC()
			base = rssBytes(t)
		}
	}
	runtime.GC()
	end := rssBytes(t)
	growth := float64(end-base) / float64(base)
	st := ReadMemoryStats()
	t.Logf("%d steps: RSS after warm-up %.1f MiB, at end %.1f MiB (growth %+.2f%%); bridge-requested GCs %d; loss %.3f -> %.4f",
		steps, float64(base)/(1<<20), float64(end)/(1<<20), 100*growth, st.Collections-collections, first, last)
	if !raceEnabled {
		require.Less(t, growth, 0.10, "RSS grew by more than 10%% after warm-up: a leak?")
	}
	require.Greater(t, st.Collections-collections, int64(0), "the bridge never asked for a collection")
	require.Less(t, last, first/10, "the loop did not train")
}
