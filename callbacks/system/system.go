// Package system is the SystemStats callback (hotcb's system_stats): every N steps it records
// the process's resident memory, the Go heap and garbage collector, goroutines, CPU time, the
// libtorch memory held by the bridge's live tensors and, on a CUDA device, the memory
// allocated and reserved by libtorch's caching allocator — to the env log and to a JSON-lines
// file in the run directory. Everything is read on reporting steps only, without stopping the
// world (runtime/metrics, not runtime.ReadMemStats).
package system

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"runtime/metrics"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/callbacks"
	"github.com/hotcb/hotcb/callbacks/jsonl"
	"github.com/hotcb/hotcb/callbacks/spec"
	"github.com/hotcb/hotcb/torchenv"
)

func init() { callbacks.Provide(spec.SystemStats, New) }

// Params are SystemStats' parameters (spec.SystemStatsParams).
type Params = spec.SystemStatsParams

// DefaultParams are the values before init is applied.
func DefaultParams() Params { return spec.SystemStats.Defaults() }

// Snapshot is one report. Byte counts are bytes; a value that could not be read is -1.
type Snapshot struct {
	Step int64
	// From /proc/self/status: resident set, its peak, OS threads.
	RSS, RSSPeak int64
	Threads      int64
	// Go runtime (runtime/metrics): heap objects, the heap goal, all memory the runtime maps,
	// GC cycles, stop-the-world GC pauses (count; total and max estimated from the runtime's
	// histogram buckets), estimated GC CPU seconds, goroutines.
	GoHeap, GoHeapGoal, GoTotal int64
	GCCycles, GCPauses          int64
	GCPauseTotal, GCPauseMax    float64 // seconds
	GCCPU                       float64 // seconds
	Goroutines                  int64
	// Process CPU time (getrusage) and its share of wall time since the previous report
	// (100 = one core busy; -1 on the first report).
	CPUUser, CPUSystem, CPUPercent float64
	// bridge.ReadMemoryStats: TorchLive is the libtorch memory held by the bridge's live tensors
	// (freed by Free, Scope or the garbage collector: no longer counted). TorchPressure is what
	// the bridge's collections go by — allocations minus Frees and Scope ends, not memory in use —
	// and TorchCollections the collections it asked for.
	TorchLive, TorchPressure, TorchCollections int64
	// CUDA caching allocator, when env.Device is a CUDA device (else -1).
	CUDAAllocated, CUDAReserved int64
}

var metricNames = []string{
	"/memory/classes/heap/objects:bytes",
	"/gc/heap/goal:bytes",
	"/memory/classes/total:bytes",
	"/gc/cycles/total:gc-cycles",
	"/sched/pauses/total/gc:seconds",
	"/cpu/classes/gc/total:cpu-seconds",
	"/sched/goroutines:goroutines",
}

// SystemStats reports process and memory statistics every N steps (hotcb's system_stats). Its
// records look like
//
//	{"time":…,"id":"sys","event":"train_step_end","step":100,"epoch":1,"rss_bytes":199229440,
//	 "rss_peak_bytes":…,"threads":9,"go_heap_bytes":…,"go_heap_goal_bytes":…,"go_total_bytes":…,
//	 "gc_cycles":31,"gc_pauses":62,"gc_pause_total_s":0.0012,"gc_pause_max_s":0.0001,
//	 "gc_cpu_s":0.05,"goroutines":7,"cpu_user_s":12.1,"cpu_system_s":0.4,"cpu_percent":99.5,
//	 "torch_live_bytes":…,"torch_pressure_bytes":…,"torch_gc_requests":…}
//
// plus "cuda_allocated_bytes" and "cuda_reserved_bytes" on a CUDA device.
type SystemStats struct {
	callbacks.Base[Params]
	p       Params
	every   int64
	w       *jsonl.Writer
	line    jsonl.Line
	samples []metrics.Sample
	last    Snapshot
	prevCPU float64
	prevAt  time.Time
	warned  map[string]bool
	proc    *os.File // /proc/self/status
	buf     []byte
}

// New returns a SystemStats with DefaultParams updated by init.
func New(id string, init map[string]any) (*SystemStats, error) {
	c := &SystemStats{warned: map[string]bool{}}
	c.samples = make([]metrics.Sample, len(metricNames))
	for i, n := range metricNames {
		c.samples[i].Name = n
	}
	c.w = jsonl.NewWriter("system_stats "+id, "")
	if err := c.Init(id, &c.p, spec.SystemStats, init, c.apply); err != nil {
		return nil, err
	}
	return c, nil
}

// Writer returns the record file's writer.
func (c *SystemStats) Writer() *jsonl.Writer { return c.w }

// Last returns the most recent report (zero before the first).
func (c *SystemStats) Last() Snapshot { return c.last }

// apply puts new params to use.
func (c *SystemStats) apply(Params, map[string]any) error {
	c.every = int64(c.p.Every)
	c.w.SetPath(c.p.OutPath)
	return nil
}

// Handle reports at Event on the steps that are a multiple of Every.
func (c *SystemStats) Handle(event string, env *torchenv.Env) error {
	if env == nil || event != c.p.Event || env.Step%c.every != 0 {
		return nil
	}
	c.last = c.read(env)
	c.record(event, env)
	c.report(env)
	return nil
}

// Names under which system_stats reports to the run's metrics stream (env.Report).
const (
	MetricRSS           = "sys/rss_bytes"
	MetricCPUPercent    = "sys/cpu_percent"
	MetricGoHeap        = "sys/go_heap_bytes"
	MetricTorchLive     = "sys/torch_live_bytes"
	MetricCUDAAllocated = "sys/cuda_allocated_bytes"
)

// report puts the main figures of the last snapshot in the metrics stream (those it has).
func (c *SystemStats) report(env *torchenv.Env) {
	s := &c.last
	if s.RSS >= 0 {
		env.Report(MetricRSS, float64(s.RSS))
	}
	if s.CPUPercent >= 0 {
		env.Report(MetricCPUPercent, s.CPUPercent)
	}
	env.Report(MetricGoHeap, float64(s.GoHeap))
	env.Report(MetricTorchLive, float64(s.TorchLive))
	if s.CUDAAllocated >= 0 {
		env.Report(MetricCUDAAllocated, float64(s.CUDAAllocated))
	}
}

// Read takes a snapshot now (env may be nil: no CUDA figures then).
func (c *SystemStats) Read(env *torchenv.Env) Snapshot { return c.read(env) }

func (c *SystemStats) read(env *torchenv.Env) Snapshot {
	s := Snapshot{RSS: -1, RSSPeak: -1, Threads: -1, CPUPercent: -1, CUDAAllocated: -1, CUDAReserved: -1}
	if env != nil {
		s.Step = env.Step
	}
	if err := c.procStatus(&s); err != nil {
		c.warnOnce(env, "proc", fmt.Sprintf("cannot read /proc/self/status: %v", err))
	}
	metrics.Read(c.samples)
	for _, smp := range c.samples {
		v := smp.Value
		switch smp.Name {
		case "/memory/classes/heap/objects:bytes":
			s.GoHeap = u64(v)
		case "/gc/heap/goal:bytes":
			s.GoHeapGoal = u64(v)
		case "/memory/classes/total:bytes":
			s.GoTotal = u64(v)
		case "/gc/cycles/total:gc-cycles":
			s.GCCycles = u64(v)
		case "/sched/goroutines:goroutines":
			s.Goroutines = u64(v)
		case "/cpu/classes/gc/total:cpu-seconds":
			if v.Kind() == metrics.KindFloat64 {
				s.GCCPU = v.Float64()
			}
		case "/sched/pauses/total/gc:seconds":
			if v.Kind() == metrics.KindFloat64Histogram {
				s.GCPauses, s.GCPauseTotal, s.GCPauseMax = histogram(v.Float64Histogram())
			}
		}
	}
	now := time.Now()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err == nil {
		s.CPUUser = tv(ru.Utime)
		s.CPUSystem = tv(ru.Stime)
		cpu := s.CPUUser + s.CPUSystem
		if !c.prevAt.IsZero() {
			if wall := now.Sub(c.prevAt).Seconds(); wall > 0 {
				s.CPUPercent = 100 * (cpu - c.prevCPU) / wall
			}
		}
		c.prevCPU, c.prevAt = cpu, now
	} else {
		c.warnOnce(env, "rusage", fmt.Sprintf("getrusage: %v", err))
	}
	ms := bridge.ReadMemoryStats()
	s.TorchLive, s.TorchPressure, s.TorchCollections = ms.LiveBytes, ms.PressureBytes, ms.Collections
	if env != nil && env.Device.IsCUDA() {
		a, r, err := bridge.CUDAMemory(env.Device)
		if err != nil {
			c.warnOnce(env, "cuda", fmt.Sprintf("CUDA memory of %v: %v", env.Device, err))
		} else {
			s.CUDAAllocated, s.CUDAReserved = a, r
		}
	}
	return s
}

func (c *SystemStats) warnOnce(env *torchenv.Env, key, msg string) {
	if !c.warned[key] {
		c.warned[key] = true
		env.Logf("system_stats %s: warning: %s (reported once)", c.ID(), msg)
	}
}

func u64(v metrics.Value) int64 {
	if v.Kind() != metrics.KindUint64 {
		return -1
	}
	return int64(v.Uint64())
}

func tv(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }

// histogram returns the number of samples and estimates of their sum (bucket midpoints) and
// maximum (upper bound of the highest non-empty bucket).
func histogram(h *metrics.Float64Histogram) (n int64, sum, max float64) {
	for i, cnt := range h.Counts {
		if cnt == 0 {
			continue
		}
		lo, hi := h.Buckets[i], h.Buckets[i+1]
		if math.IsInf(lo, -1) {
			lo = 0
		}
		if math.IsInf(hi, 1) {
			hi = lo
		}
		n += int64(cnt)
		sum += float64(cnt) * (lo + hi) / 2
		max = hi
	}
	return n, sum, max
}

// procStatus reads VmRSS, VmHWM and Threads from /proc/self/status, kept open and read again
// from its start each time (a third cheaper than opening it).
func (c *SystemStats) procStatus(s *Snapshot) error {
	if c.proc == nil {
		f, err := os.Open("/proc/self/status")
		if err != nil {
			return err
		}
		c.proc = f
		if c.buf == nil {
			c.buf = make([]byte, 8192)
		}
	}
	n, err := c.proc.ReadAt(c.buf, 0)
	if err != nil && !errors.Is(err, io.EOF) {
		_ = c.proc.Close()
		c.proc = nil
		return err
	}
	return parseStatus(c.buf[:n], s)
}

// parseStatus reads VmRSS, VmHWM and Threads from the text of /proc/<pid>/status.
func parseStatus(data []byte, s *Snapshot) error {
	for len(data) > 0 {
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		key, val, ok := bytes.Cut(line, []byte{':'})
		if !ok {
			continue
		}
		switch string(key) {
		case "VmRSS":
			s.RSS = kB(val)
		case "VmHWM":
			s.RSSPeak = kB(val)
		case "Threads":
			s.Threads, _ = strconv.ParseInt(string(bytes.TrimSpace(val)), 10, 64)
		}
	}
	if s.RSS < 0 {
		return fmt.Errorf("no VmRSS line")
	}
	return nil
}

// kB parses "  190312 kB" into bytes (-1 when unreadable).
func kB(v []byte) int64 {
	f := strings.Fields(string(v))
	if len(f) == 0 {
		return -1
	}
	n, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil {
		return -1
	}
	if len(f) > 1 && f[1] == "kB" {
		n *= 1024
	}
	return n
}

func (c *SystemStats) record(event string, env *torchenv.Env) {
	s := &c.last
	l := &c.line
	l.Begin()
	l.Header(c.ID(), event, env)
	l.Int("rss_bytes", s.RSS)
	l.Int("rss_peak_bytes", s.RSSPeak)
	l.Int("threads", s.Threads)
	l.Int("go_heap_bytes", s.GoHeap)
	l.Int("go_heap_goal_bytes", s.GoHeapGoal)
	l.Int("go_total_bytes", s.GoTotal)
	l.Int("gc_cycles", s.GCCycles)
	l.Int("gc_pauses", s.GCPauses)
	l.Float("gc_pause_total_s", s.GCPauseTotal)
	l.Float("gc_pause_max_s", s.GCPauseMax)
	l.Float("gc_cpu_s", s.GCCPU)
	l.Int("goroutines", s.Goroutines)
	l.Float("cpu_user_s", s.CPUUser)
	l.Float("cpu_system_s", s.CPUSystem)
	if s.CPUPercent >= 0 {
		l.Float("cpu_percent", s.CPUPercent)
	}
	l.Int("torch_live_bytes", s.TorchLive)
	l.Int("torch_pressure_bytes", s.TorchPressure)
	l.Int("torch_gc_requests", s.TorchCollections)
	if s.CUDAAllocated >= 0 {
		l.Int("cuda_allocated_bytes", s.CUDAAllocated)
		l.Int("cuda_reserved_bytes", s.CUDAReserved)
	}
	c.w.Write(env, l.End())
	if !c.p.Log || env.Log == nil {
		return
	}
	msg := fmt.Sprintf("system_stats %s step %d: rss=%s go_heap=%s gc=%d (pauses ≈%.3gms) goroutines=%d torch=%s",
		c.ID(), env.Step, mib(s.RSS), mib(s.GoHeap), s.GCCycles, s.GCPauseTotal*1e3, s.Goroutines, mib(s.TorchLive))
	if s.CPUPercent >= 0 {
		msg += fmt.Sprintf(" cpu=%.0f%%", s.CPUPercent)
	}
	if s.CUDAAllocated >= 0 {
		msg += " cuda=" + mib(s.CUDAAllocated) + "/" + mib(s.CUDAReserved)
	}
	env.Log(msg)
}

func mib(b int64) string {
	if b < 0 {
		return "?"
	}
	return strconv.FormatFloat(float64(b)/(1<<20), 'f', 1, 64) + "MiB"
}

// Close closes the record file.
func (c *SystemStats) Close() error {
	if c.proc != nil {
		_ = c.proc.Close()
		c.proc = nil
	}
	return c.w.Close()
}
