package jit

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/bridge/nn"
	"github.com/hotcb/hotcb/internal/torchpy"
	"github.com/stretchr/testify/require"
)

// script has Python's torch script a small module with an exported method that takes strings
// and numbers, and save it in a temporary directory; it skips without python3 and torch.
func script(tb testing.TB) string {
	py := torchpy.Interpreter(tb)
	path := filepath.Join(tb.TempDir(), "m.pt")
	src := `
import sys, torch
from typing import List
class M(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = torch.nn.Linear(4, 3)
    def forward(self, x):
        return self.lin(x)
    @torch.jit.export
    def greet(self, s: str, k: float, xs: List[str]) -> str:
        return s + str(k) + ",".join(xs)
torch.manual_seed(0)
torch.jit.save(torch.jit.script(M()), sys.argv[1])
`
	prog := filepath.Join(tb.TempDir(), "make.py") // torch.jit.script reads the class's source
	require.NoError(tb, os.WriteFile(prog, []byte(src), 0o644))
	out, err := exec.Command(py, prog, path).CombinedOutput()
	require.NoError(tb, err, "%s", out)
	return path
}

// Calls pass tensors, numbers and strings to a method by name and return its result; a wrong
// method or argument is an error that names it.
func TestCall(t *testing.T) {
	m, err := Load(script(t), bridge.CPU)
	require.NoError(t, err)
	defer m.Free()
	require.ElementsMatch(t, []string{"forward", "greet"}, m.Methods())

	x := bridge.Randn(bridge.Shape{2, 4})
	y := m.Forward(x)
	require.Equal(t, bridge.Shape{2, 3}, y.Shape())
	ps := nn.Parameters(m)
	require.Len(t, ps, 2)
	want := bridge.Linear(x, ps[0], ps[1])
	require.InDeltaSlice(t, want.Float32s(), y.Float32s(), 1e-6)

	got, err := m.Call("greet", "hello ", 2.5, []any{"a", "b"})
	require.NoError(t, err)
	require.Equal(t, "hello 2.5a,b", got)
	got, err = m.Call("greet", "", 0.5, []string{"z"})
	require.NoError(t, err)
	require.Equal(t, "0.5z", got)
	// An empty list takes the element type the method declares (List[str], not List[Any]).
	got, err = m.Call("greet", "e", 1.0, []string{})
	require.NoError(t, err)
	require.Equal(t, "e1.", got) // TorchScript prints 1.0 as "1."

	_, err = m.Call("nosuch", x)
	require.ErrorContains(t, err, "has no method nosuch")
	_, err = m.Call("for\x00ward", x)
	require.ErrorContains(t, err, "NUL")
	_, err = m.Call("greet", "a", 1.0, []any{"b\x00"})
	require.ErrorContains(t, err, "NUL")
	_, err = m.Call("greet", "a", struct{}{}, []any{"b"})
	require.ErrorContains(t, err, "argument 2")
	args := make([]any, 10)
	args[9] = struct{}{}
	_, err = m.Call("greet", args...)
	require.ErrorContains(t, err, "argument 10")
}

// BenchmarkForward is one Forward of a 4→3 linear layer: the per-call cost of the jit path. It
// also reports the CPU time of the (locked) thread per call, steadier than the wall time on a
// shared machine.
//
//	go test -run '^$' -bench Forward ./bridge/jit
func BenchmarkForward(b *testing.B) {
	m, err := Load(script(b), bridge.CPU)
	require.NoError(b, err)
	defer m.Free()
	x := bridge.Randn(bridge.Shape{2, 4})
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	b.ReportAllocs()
	c0 := threadCPU()
	for b.Loop() {
		m.Forward(x).Free()
	}
	b.ReportMetric(float64(threadCPU()-c0)/float64(b.N), "cpu-ns/op")
}

// threadCPU is the CPU time the calling thread has used.
func threadCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_THREAD, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
