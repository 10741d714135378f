package harness

import (
	"runtime"
	"runtime/metrics"
	"time"
)

// Go releases libtorch memory of dropped tensors in cleanups (runtime.AddCleanup) that run after
// a collection, on another goroutine. Work a round queued belongs to that round, and must not
// spill into the next measurement (the reference's, or the next benchmark's).

var cleanupSamples = []metrics.Sample{
	{Name: "/gc/cleanups/queued:cleanups"},
	{Name: "/gc/cleanups/executed:cleanups"},
	{Name: "/gc/cycles/total:gc-cycles"},
}

// GCCounters are cumulative counts of the Go runtime.
type GCCounters struct {
	Cycles, CleanupsQueued, CleanupsExecuted uint64
}

// ReadGC reads the counters.
func ReadGC() GCCounters {
	s := make([]metrics.Sample, len(cleanupSamples))
	copy(s, cleanupSamples)
	metrics.Read(s)
	u := func(i int) uint64 {
		if s[i].Value.Kind() == metrics.KindUint64 {
			return s[i].Value.Uint64()
		}
		return 0
	}
	return GCCounters{CleanupsQueued: u(0), CleanupsExecuted: u(1), Cycles: u(2)}
}

// DrainCleanups waits, up to timeout, until every queued cleanup has run. It reports whether
// the queue emptied.
func DrainCleanups(timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for {
		c := ReadGC()
		if c.CleanupsExecuted >= c.CleanupsQueued {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(200 * time.Microsecond)
	}
}

// Settle collects garbage and waits for the cleanups it queued: call it between benchmarks.
func Settle() {
	runtime.GC()
	DrainCleanups(10 * time.Second)
}
