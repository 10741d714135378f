package metrics

import (
	"path/filepath"
	"testing"
	"time"
)

// benchWrite is one step of a loop: ten values set and the entry written, through the
// goroutine that flushes (as in a run).
func benchWrite(b *testing.B, full int64) {
	w, err := Open(filepath.Join(b.TempDir(), File), Options{Full: full})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	names := []string{"loss", "lr", "grad_norm", "steps_per_s", "samples_per_s", "time/step_ms",
		"time/forward_ms", "time/backward_ms", "time/optimizer_ms", "time/data/other_ms"}
	var e Entry
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		e.Reset(int64(i))
		for j, n := range names {
			e.Set(n, float64(i)*0.001+float64(j))
		}
		w.Write(&e)
	}
}

// BenchmarkWriteEveryStep: every step formatted and written (the first Full steps).
func BenchmarkWriteEveryStep(b *testing.B) { benchWrite(b, -1) }

// BenchmarkWriteDecimated: the stride skips most steps (the values are carried).
func BenchmarkWriteDecimated(b *testing.B) { benchWrite(b, 1) }

func BenchmarkRead(b *testing.B) {
	path := filepath.Join(b.TempDir(), File)
	w, err := Open(path, Options{Full: -1, FlushInterval: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	var e Entry
	for i := range 10000 {
		e.Reset(int64(i))
		e.Set("loss", 1/float64(i+1))
		e.Set("lr", 0.001)
		w.Write(&e)
	}
	w.Close()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := Read(path, -1); err != nil {
			b.Fatal(err)
		}
	}
}
