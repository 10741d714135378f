package serve

import (
	"math"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
)

// BenchmarkMetricsRead reads a metrics file of 100k lines of 4 metrics (hotcb's format, with
// epoch and wall_time beside) from scratch.
func BenchmarkMetricsRead(b *testing.B) {
	dir := b.TempDir()
	f, err := os.Create(filepath.Join(dir, MetricsFile))
	if err != nil {
		b.Fatal(err)
	}
	for i := 1; i <= 100_000; i++ {
		f.WriteString(`{"step":` + strconv.Itoa(i) + `,"epoch":1.5,"metrics":{"loss":0.` + strconv.Itoa(i) + `,"lr":0.1,"acc":0.5,"grad_norm":1.25},"wall_time":1700000000.5}` + "\n")
	}
	f.Close()
	root, err := os.OpenRoot(dir)
	if err != nil {
		b.Fatal(err)
	}
	defer root.Close()
	cpu := func() int64 {
		var ru syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return ru.Utime.Nano() + ru.Stime.Nano()
	}
	b.ResetTimer()
	c0 := cpu()
	for i := 0; i < b.N; i++ {
		src := NewMetricsSource(root, MetricsFile)
		src.Poll()
		if _, _, n := src.Range("loss", math.MinInt64, math.MaxInt64, 2000); n != 100_000 {
			b.Fatal(n)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/100_000, "ns/line")
	b.ReportMetric(float64(cpu()-c0)/float64(b.N)/100_000, "cpu-ns/line") // the machine may be shared
}
