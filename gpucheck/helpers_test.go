package gpucheck

import (
	"bufio"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/hotcb/hotcb/bridge"
)

// device is the device the checks run on: cuda:0, or the CPU with GPUCHECK_CPU=1; otherwise the
// test is skipped with the reason.
func device(tb testing.TB) bridge.Device {
	tb.Helper()
	if bridge.CUDAIsAvailable() {
		return bridge.CUDA(0)
	}
	if os.Getenv("GPUCHECK_CPU") == "1" {
		tb.Logf("no CUDA device: running on the CPU (GPUCHECK_CPU=1)")
		return bridge.CPU
	}
	tb.Skipf("no CUDA device (bridge.CUDAIsAvailable() is false; shim built with CUDA: %v); GPUCHECK_CPU=1 runs this on the CPU", bridge.BuiltWithCUDA())
	return bridge.CPU
}

// needCUDA skips a check that only makes sense on a CUDA device, even with GPUCHECK_CPU=1.
func needCUDA(tb testing.TB, what string) bridge.Device {
	tb.Helper()
	if !bridge.CUDAIsAvailable() {
		tb.Skipf("%s needs a CUDA device (bridge.CUDAIsAvailable() is false; shim built with CUDA: %v)", what, bridge.BuiltWithCUDA())
	}
	return bridge.CUDA(0)
}

var resultsMu sync.Mutex

// record reports a check's numbers: in the test log, and as one JSON line in the file named by
// GPUCHECK_RESULTS (what scripts/gpu-check.sh collects).
func record(tb testing.TB, fields map[string]any) {
	tb.Helper()
	out := map[string]any{"test": tb.Name()}
	for k, v := range fields {
		if f, ok := v.(float64); ok && (math.IsNaN(f) || math.IsInf(f, 0)) {
			v = nil // JSON has neither
		}
		out[k] = v
	}
	b, err := json.Marshal(out)
	if err != nil {
		tb.Fatalf("record: %v", err)
	}
	tb.Logf("result: %s", b)
	path := os.Getenv("GPUCHECK_RESULTS")
	if path == "" {
		return
	}
	resultsMu.Lock()
	defer resultsMu.Unlock()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		tb.Fatalf("record: %v", err)
	}
	_, err = f.Write(append(b, '\n'))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		tb.Fatalf("record: %v", err)
	}
}

// repoRoot is where examples/ lives: GPUCHECK_ROOT (the bundle), or the repository.
func repoRoot() string {
	if r := os.Getenv("GPUCHECK_ROOT"); r != "" {
		return r
	}
	return ".."
}

// loadedShim is the path of the libhotcb_torch.so this process mapped (LD_LIBRARY_PATH or the
// rpath decided which).
func loadedShim() string {
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if i := strings.Index(sc.Text(), "/"); i >= 0 && strings.HasSuffix(sc.Text(), "libhotcb_torch.so") {
			p := sc.Text()[i:]
			if abs, err := filepath.EvalSymlinks(p); err == nil {
				return abs
			}
			return p
		}
	}
	return ""
}

// maxRelDiff is max|a-b| / max(max|b|, tiny).
func maxRelDiff(a, b []float32) float64 {
	var d, m float64
	for i := range a {
		d = math.Max(d, math.Abs(float64(a[i])-float64(b[i])))
		m = math.Max(m, math.Abs(float64(b[i])))
	}
	return d / math.Max(m, 1e-12)
}

func median(xs []float64) float64 {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	if len(s) == 0 {
		return math.NaN()
	}
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
