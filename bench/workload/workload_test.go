package workload

import (
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/hotcb/hotcb/bench/harness"
	"github.com/hotcb/hotcb/bridge"
	"github.com/stretchr/testify/require"
)

func TestMLPStepLearnsTheSameWithAndWithoutFree(t *testing.T) {
	plain, freed := NewMLP(MLPTiny), NewMLP(MLPTiny)
	freed.Free = true
	start := plain.Loss().Item()
	require.Equal(t, start, freed.Loss().Item(), "same seed, same weights")
	for range 30 {
		plain.Step()
		freed.Step()
	}
	end := plain.Loss().Item()
	require.Less(t, end, start, "SGD on a fixed batch lowers the loss")
	require.Equal(t, end, freed.Loss().Item(), "Free must not change what the step computes")
	require.Equal(t, start, plain.Check(), "Check is the loss of a fresh model")
}

func TestNewKnowsEveryName(t *testing.T) {
	for _, name := range Names {
		w, err := New(name, Options{LockOSThread: true, Free: true})
		if name == "jit" { // its files come from ref.py: see TestJITStepLearnsAndPythonAgrees
			require.ErrorIs(t, err, ErrNoScriptFile)
			continue
		}
		require.NoError(t, err, name)
		w.Run(2)
	}
	_, err := New("conv", Options{})
	require.Error(t, err)
	require.Implements(t, (*Trainer)(nil), Unwrap(mustNew(t, "cnn", Options{LockOSThread: true})))
	require.Implements(t, (*Saver)(nil), Unwrap(mustNew(t, "cnn", Options{LockOSThread: true})))
}

func mustNew(t *testing.T, name string, o Options) Workload {
	w, err := New(name, o)
	require.NoError(t, err)
	return w
}

// BenchmarkWorkload runs each workload's body the way benchrun's Go rounds do, for profiling:
//
//	go test -run '^$' -bench 'Workload/mlp-tiny$' -cpuprofile cpu.out ./bench/workload
func BenchmarkWorkload(b *testing.B) {
	for _, name := range Names {
		for _, o := range []struct {
			suffix string
			opts   Options
		}{{"", Options{}}, {"/locked", Options{LockOSThread: true}}, {"/freeall-locked", Options{FreeAll: true, LockOSThread: true}},
			{"/scoped", Options{Scoped: true}}} {
			b.Run(name+o.suffix, func(b *testing.B) {
				if name == "jit" {
					o.opts.Script, o.opts.Batch = writeJIT(b)
				}
				w, err := New(name, o.opts)
				require.NoError(b, err)
				w.Run(max(1, b.N/10))
				b.ResetTimer()
				w.Run(b.N)
			})
		}
	}
}

func TestMLPFreeAllComputesTheSame(t *testing.T) {
	plain, freed := NewMLP(MLPTiny), NewMLP(MLPTiny)
	freed.FreeAll = true
	for range 5 {
		require.Nil(t, freed.Step())
		plain.Step()
	}
	require.Equal(t, plain.Loss().Item(), freed.Loss().Item())
	require.Equal(t, plain.Losses(3), freed.Losses(3), "Losses start from a fresh model")
}

func TestCNNStepLearnsAndSaves(t *testing.T) {
	m, err := NewCNN(CNNSmall)
	require.NoError(t, err)
	require.Equal(t, bridge.Shape{64, 1, 28, 28}, m.X.Shape())
	require.Equal(t, bridge.Shape{64}, m.Y.Shape())
	require.Len(t, m.Params, 12, "3 convs, 2 batch norms, 1 linear: weight and bias each")

	losses := m.Losses(4)
	require.Equal(t, m.Check(), losses[0], "Check is the first-step loss of a fresh model")
	require.Less(t, losses[3], losses[0], "SGD on a fixed batch lowers the loss")
	require.Equal(t, losses, m.Losses(4), "deterministic")

	path := filepath.Join(t.TempDir(), "cnn.pt")
	require.NoError(t, m.Save(path))
	saved, err := bridge.LoadMap(path)
	require.NoError(t, err)
	require.Equal(t, m.X.Float32s(), saved["x"].Float32s())
	require.Equal(t, m.Y.Int64s(), saved["y"].Int64s())
	for _, k := range []string{"features.0.weight", "features.1.running_var", "features.1.num_batches_tracked",
		"features.8.bias", "classifier.1.weight"} {
		require.Contains(t, saved, k)
	}
	require.Len(t, saved, 2+12+6, "batch, parameters, and 3 buffers per batch norm")

	// Free must not change what a step computes.
	a, err := NewCNN(CNNSmall)
	require.NoError(t, err)
	b, err := NewCNN(CNNSmall)
	require.NoError(t, err)
	b.Free = true
	a.Run(2)
	b.Run(2)
	require.Equal(t, a.Loss().Item(), b.Loss().Item())
}

func TestGPTStepLearnsAndSaves(t *testing.T) {
	m, err := NewGPT(GPTSmall)
	require.NoError(t, err)
	require.Equal(t, bridge.Shape{32, 48}, m.X.Shape())
	require.Equal(t, bridge.Shape{32, 48}, m.Y.Shape())
	losses := m.Losses(4)
	t.Logf("losses %v", losses)
	require.InDelta(t, math.Log(34), losses[0], 0.1, "ln(vocabulary) at initialisation")
	require.Equal(t, m.Check(), losses[0], "Check is the first-step loss of a fresh model")
	require.Less(t, losses[3], losses[0], "AdamW on a fixed batch lowers the loss")
	require.Equal(t, losses, m.Losses(4), "deterministic")
	m.Run(3)
	require.False(t, m.env.Loss.IsFreed())

	path := filepath.Join(t.TempDir(), "gpt.pt")
	require.NoError(t, m.Save(path))
	saved, err := bridge.LoadMap(path)
	require.NoError(t, err)
	require.Equal(t, m.X.Int64s(), saved["x"].Int64s())
	require.Equal(t, m.Y.Int64s(), saved["y"].Int64s())
	require.Equal(t, []int64{4}, saved["n_head"].Int64s())
	for _, k := range []string{"transformer.wte.weight", "transformer.h.1.attn.c_attn.weight", "lm_head.bias"} {
		require.Contains(t, saved, k)
	}
	require.Len(t, saved, 3+4+2*12+2)
}

// The Python reference must compute what Go computes, loss for loss; benchrun checks this before
// timing, and this test keeps ref.py from rotting where python3 with torch is installed.
func TestPythonReferenceAgrees(t *testing.T) {
	py := pythonWithTorch()
	if py == "" {
		t.Skip("no python3 that imports torch (install python3-torch)")
	}
	ref, err := harness.StartRef(py, []string{"../python/ref.py", "-threads", "1", "serve"}, nil)
	require.NoError(t, err)
	defer ref.Close()

	cnn, err := NewCNN(CNNSmall)
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "cnn.pt")
	require.NoError(t, cnn.Save(path))
	require.NoError(t, ref.Load("cnn", path))
	gpt, err := NewGPT(GPTSmall)
	require.NoError(t, err)
	path = filepath.Join(t.TempDir(), "gpt.pt")
	require.NoError(t, gpt.Save(path))
	require.NoError(t, ref.Load("gpt", path))

	for _, name := range []string{"mlp-tiny", "mlp", "cnn", "gpt"} {
		w, err := New(name, Options{})
		require.NoError(t, err)
		want := w.(Trainer).Losses(3)
		check, got, err := ref.Losses(name, 3)
		require.NoError(t, err, name)
		require.InDeltaSlice(t, want, got, 1e-5, name)
		require.InDelta(t, want[0], check, 1e-6, name)
	}
	for _, name := range []string{"add", "relu", "matmul", "sum"} {
		w, err := New(name, Options{})
		require.NoError(t, err)
		got, err := ref.Check(name)
		require.NoError(t, err, name)
		require.InDelta(t, w.Check(), got, 1e-6, name)
	}
	secs, err := ref.Runner("mlp-tiny")(3)
	require.NoError(t, err)
	require.Greater(t, secs, 0.0)
	require.Error(t, ref.Do("check nosuchmode", nil))
}

// pythonWithTorch returns the first of $HOTCB_BENCH_PYTHON, /usr/bin/python3 (Debian's, where
// python3-torch installs) and python3 on the PATH that imports torch, or "".
func pythonWithTorch() string {
	for _, p := range []string{os.Getenv("HOTCB_BENCH_PYTHON"), "/usr/bin/python3", "python3"} {
		if p == "" {
			continue
		}
		if path, err := exec.LookPath(p); err == nil && exec.Command(path, "-c", "import torch").Run() == nil {
			return path
		}
	}
	return ""
}

func TestScopedStepsComputeTheSame(t *testing.T) {
	plain, scoped := NewMLP(MLPTiny), NewMLP(MLPTiny)
	scoped.Scoped = true
	for range 5 {
		require.Nil(t, scoped.Step())
		plain.Step()
	}
	require.Equal(t, plain.Loss().Item(), scoped.Loss().Item())

	pc, err := NewCNN(CNNSmall)
	require.NoError(t, err)
	sc, err := NewCNN(CNNSmall)
	require.NoError(t, err)
	sc.Scoped = true
	for range 2 {
		require.Nil(t, sc.Step())
		pc.Step()
	}
	require.Equal(t, pc.Loss().Item(), sc.Loss().Item())
	for i, p := range sc.Params {
		require.False(t, p.IsFreed(), "param %d survives the scopes", i)
	}
}

// writeJIT has bench/python/ref.py write the jit workload's TorchScript file and batch into a
// temporary directory, as benchrun does, and returns their paths; it skips without Python.
func writeJIT(tb testing.TB) (script, batch string) {
	py := pythonWithTorch()
	if py == "" {
		tb.Skip("no python3 that imports torch (install python3-torch): the jit workload's files come from ref.py")
	}
	ref, err := harness.StartRef(py, []string{"../python/ref.py", "-threads", "1", "serve"}, nil)
	require.NoError(tb, err)
	defer ref.Close()
	var a struct{ Script, Batch string }
	require.NoError(tb, ref.Do("write jit "+tb.TempDir(), &a))
	require.FileExists(tb, a.Script)
	require.FileExists(tb, a.Batch)
	return a.Script, a.Batch
}

// The jit workload trains what ref.py scripted, and ref.py's torch.jit.load of the same file
// computes the same losses.
func TestJITStepLearnsAndPythonAgrees(t *testing.T) {
	script, batch := writeJIT(t)
	w, err := New("jit", Options{Script: script, Batch: batch})
	require.NoError(t, err)
	m := w.(*JIT)
	require.Equal(t, bridge.Shape{32, 3, 32, 32}, m.X.Shape())
	require.Equal(t, bridge.Shape{32}, m.Y.Shape())
	require.Equal(t, 29, len(m.Opt.Params()), "9 convs (no bias), 9 batch norms' weight and bias, the linear's weight and bias")

	losses := m.Losses(4)
	t.Logf("losses %v", losses)
	require.InDelta(t, math.Log(10), losses[0], 0.3, "about ln(classes) at initialisation")
	require.Equal(t, m.Check(), losses[0], "Check is the first-step loss of a freshly loaded module")
	require.Less(t, losses[3], losses[0], "SGD on a fixed batch lowers the loss")
	require.Equal(t, losses, m.Losses(4), "deterministic")
	m.Run(3)
	require.False(t, m.env.Loss.IsFreed())

	py := pythonWithTorch()
	ref, err := harness.StartRef(py, []string{"../python/ref.py", "-threads", "1", "serve"}, nil)
	require.NoError(t, err)
	defer ref.Close()
	var a struct{ Script, Batch string }
	dir := t.TempDir()
	require.NoError(t, ref.Do("write jit "+dir, &a))
	require.Equal(t, filepath.Join(dir, "jit-model.pt"), a.Script)
	// Python trains the file Go trained from; its own copy is the same bytes' module.
	check, got, err := ref.Losses("jit", 3)
	require.NoError(t, err)
	require.InDeltaSlice(t, losses[:3], got, 1e-5)
	require.InDelta(t, losses[0], check, 1e-6)
	_, err = New("jit", Options{Script: batch, Batch: batch})
	require.ErrorContains(t, err, "not a TorchScript module")
}

// TestDDPRankWithoutGroup checks the data-parallel benchmark's inputs and one rank's training
// without a group (the scaling baseline; with a group it runs in benchrun's TestDataParallelJobs):
// the file holds both ranks' images and SmallCNN's state, each rank takes a different half, and
// SGD with momentum on the fixed share lowers the loss, deterministically.
func TestDDPRankWithoutGroup(t *testing.T) {
	c := DDPSmall
	path := filepath.Join(t.TempDir(), "ddp.pt")
	require.NoError(t, SaveDDPInputs(path, c))
	saved, err := bridge.LoadMap(path)
	require.NoError(t, err)
	require.Equal(t, bridge.Shape{128, 1, 28, 28}, saved["x"].Shape())
	require.Len(t, saved, 2+12+6, "images, labels, parameters, and 3 buffers per batch norm")

	r0, err := NewDDPRank(path, nil, 0, c)
	require.NoError(t, err)
	r1, err := NewDDPRank(path, nil, 1, c)
	require.NoError(t, err)
	require.Nil(t, r0.DDP)
	require.Equal(t, bridge.Shape{64, 1, 28, 28}, r0.X.Shape())
	require.NotEqual(t, r0.Y.Int64s(), r1.Y.Int64s(), "the ranks' shares differ")

	losses := r0.Losses(4)
	require.Equal(t, r0.Check(), losses[0], "Check is the first-step loss of a fresh model")
	require.Less(t, losses[3], losses[0], "SGD on a fixed batch lowers the loss")
	require.Equal(t, losses, r0.Losses(4), "deterministic")
	r0.Run(2)
	require.NotEqual(t, r0.Check(), r0.Step().Item(), "Run trains the rank's own model")

	_, err = NewDDPRank(path, nil, 0, DDPConfig{Channels: 1, Size: 28, Classes: 6, Batch: 32, Ranks: 2, LR: 0.05})
	require.ErrorContains(t, err, "128 images, want 2 ranks × 32")
}
