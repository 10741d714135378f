package bridge

/*
#include "hotcb_torch.h"
#include "handles.h"
*/
import "C"

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"
)

// Go's garbage collector sees a Tensor as a few bytes, not the megabytes of libtorch memory
// behind it, so on its own it would run far too rarely to keep a training loop's memory flat.
// The shim counts the bytes held by handles: it adds a handle's bytes (data plus a fixed cost)
// when it is made and subtracts them when it is freed through hc_tensor_free(h, 1) or
// hc_tensor_free_many — every way the bridge frees one: Free, the end of a Scope, and the
// release of handles the collector found unreachable. That count (hc_pressure_bytes) is what is
// live; MemoryStats reports it as LiveBytes.
//
// Collections are driven by another figure, "pressure": the bytes allocated since start minus
// those freed by Free and Scope, i.e. live bytes plus what the collector has released. When it has
// grown by the threshold since the last collection we ask for one, in the background, and fall
// back to a blocking collection if it runs far ahead of it. The collector's releases must not
// lower it — a collection would otherwise push the next one back by what it freed — so the bytes
// they release are added back (gcReleased), measured as the drop in the live count across each
// batch. The measure is exact when no other goroutine makes or frees tensors during the batch;
// otherwise it is off by what they did meanwhile, which only moves the next collection a little.

// DefaultGCThreshold is the libtorch memory allocated through Go handles between collections.
const DefaultGCThreshold = 16 << 20

var (
	gcThreshold atomic.Int64
	gcMark      atomic.Int64 // pressure when the last collection was requested
	gcRunning   atomic.Bool
	gcCount     atomic.Int64
	gcReleased  atomic.Int64 // bytes freed by releasing unreachable handles (see above)
)

// liveBytes reads the shim's count of bytes held by handles.
func liveBytes() int64 {
	return atomic.LoadInt64((*int64)(unsafe.Pointer(&C.hc_pressure_bytes)))
}

// pressure is what drives collections: live bytes plus what the collector's releases freed.
func pressure() int64 { return liveBytes() + gcReleased.Load() }

func init() {
	gcThreshold.Store(DefaultGCThreshold)
	if v, err := strconv.ParseInt(os.Getenv("HOTCB_GC_BYTES"), 10, 64); err == nil && v > 0 {
		gcThreshold.Store(v)
	}
	mallocTuning = tuneMalloc(os.Getenv("HOTCB_MALLOC"))
}

// glibc returns the top of its heap to the kernel whenever more than M_TRIM_THRESHOLD is free
// there, and serves blocks above a dynamic M_MMAP_THRESHOLD with their own mmap. A training step
// frees megabytes of activations at once (at the end of a bridge.Scope) and allocates them again
// in the next step, so with the defaults the same pages are unmapped and faulted back in every
// step: ≈2,500 page faults per scoped SmallCNN step, against ≈90 with the thresholds below
// (perf stat; the step runs 1.3–1.9× faster). The bridge therefore raises both at start, as a training
// process that keeps its peak memory anyway wants. HOTCB_MALLOC=default leaves glibc alone;
// HOTCB_MALLOC=TRIM,MMAP (bytes) sets other values.
const (
	DefaultMallocTrim = 512 << 20
	DefaultMallocMmap = 32 << 20 // glibc's maximum on 64-bit
)

// MallocTuning says what the bridge set in glibc's malloc at start.
type MallocTuning struct {
	Applied       bool   // false: HOTCB_MALLOC=default, a bad value, or not glibc
	TrimThreshold int64  // M_TRIM_THRESHOLD in bytes, when applied
	MmapThreshold int64  // M_MMAP_THRESHOLD in bytes, when applied
	Note          string // why not applied
}

var mallocTuning MallocTuning

// Malloc returns what the bridge set in glibc's malloc at start (see HOTCB_MALLOC).
func Malloc() MallocTuning { return mallocTuning }

func tuneMalloc(env string) MallocTuning {
	trim, mmap := int64(DefaultMallocTrim), int64(DefaultMallocMmap)
	switch env {
	case "":
	case "default":
		return MallocTuning{Note: "HOTCB_MALLOC=default: glibc's own thresholds"}
	default:
		a, b, ok := strings.Cut(env, ",")
		t, err1 := strconv.ParseInt(strings.TrimSpace(a), 10, 64)
		m, err2 := strconv.ParseInt(strings.TrimSpace(b), 10, 64)
		if !ok || err1 != nil || err2 != nil || t <= 0 || m <= 0 {
			msg := fmt.Sprintf("HOTCB_MALLOC=%q: want \"default\" or TRIM,MMAP in bytes (e.g. %d,%d); "+
				"glibc's thresholds left alone", env, trim, mmap)
			fmt.Fprintln(os.Stderr, "hotcb bridge:", msg)
			return MallocTuning{Note: msg}
		}
		trim, mmap = t, m
	}
	if C.hc_malloc_tune(C.int64_t(trim), C.int64_t(mmap)) == 0 {
		return MallocTuning{Note: fmt.Sprintf("malloc refused trim=%d mmap=%d (not glibc, or out of range)", trim, mmap)}
	}
	return MallocTuning{Applied: true, TrimThreshold: trim, MmapThreshold: mmap}
}

// SetGCThreshold sets how many bytes of libtorch memory may be allocated through Go handles
// before the bridge runs the garbage collector to release unreachable tensors; it returns the
// previous value. Lower keeps memory tighter, higher spends less time collecting. The
// HOTCB_GC_BYTES environment variable sets the initial value.
func SetGCThreshold(bytes int64) int64 {
	if bytes <= 0 {
		bytes = DefaultGCThreshold
	}
	return gcThreshold.Swap(bytes)
}

// MemoryStats describes the bridge's view of libtorch memory.
type MemoryStats struct {
	// LiveBytes is the libtorch memory held by the bridge's live tensor handles: each handle's
	// data (numel × element size, so views sharing storage each count it) plus a fixed cost for
	// the handle, counted from its creation until it is freed — by Free, the end of its Scope, or
	// the release of a handle the garbage collector found unreachable (those waiting in the release
	// queue, PendingReleases, are still held and counted).
	LiveBytes int64
	// PressureBytes is what the bridge's collections go by: bytes allocated through handles since
	// start minus those freed by Free and Scope ends (LiveBytes plus what collections released).
	// It grows without bound in a loop that leaves its tensors to the collector: it is not memory
	// in use.
	PressureBytes   int64
	PendingReleases int64 // unreachable handles queued to be freed by the next tensor creations
	Collections     int64 // garbage collections the bridge requested
	Threshold       int64
}

// ReadMemoryStats returns the current counters.
func ReadMemoryStats() MemoryStats {
	live := liveBytes()
	return MemoryStats{
		LiveBytes:       live,
		PressureBytes:   live + gcReleased.Load(),
		PendingReleases: releasePending.Load(),
		Collections:     gcCount.Load(),
		Threshold:       gcThreshold.Load(),
	}
}

// Handles found unreachable by the collector are not freed on the cleanup goroutine: they are
// queued and freed by the next goroutine that creates a tensor. Freeing where tensors are being
// allocated lets the allocator reuse the memory at once (glibc keeps per-thread caches), which
// keeps the resident set far smaller than freeing from a separate thread.
var (
	releaseMu      sync.Mutex
	releaseQueue   []C.hc_tensor
	releasePending atomic.Int64
	freeMu         sync.Mutex // serialises the release batches (drainReleases)
)

// The queue is drained in bounded batches so that one op never pays for a large backlog; if no
// goroutine creates tensors for a while (a loop that only reads results, or has finished), the
// cleanup goroutine frees the backlog itself once it exceeds maxReleaseBacklog.
const (
	releaseBatch      = 1024
	maxReleaseBacklog = 16384
)

func releaseHandle(h C.hc_tensor) {
	releaseMu.Lock()
	releaseQueue = append(releaseQueue, h)
	n := len(releaseQueue)
	releaseMu.Unlock()
	releasePending.Add(1)
	if n > maxReleaseBacklog {
		drainReleases(n)
	}
}

// drainReleases frees up to max queued handles.
func drainReleases(max int) {
	releaseMu.Lock()
	k := min(max, len(releaseQueue))
	// Reversed: hc_tensor_free_many frees from the end, so they are freed in queue order.
	batch := make([]C.hc_tensor, k)
	tail := releaseQueue[len(releaseQueue)-k:]
	for i, h := range tail {
		batch[k-1-i] = h
	}
	releaseQueue = releaseQueue[:len(releaseQueue)-k]
	releaseMu.Unlock()
	releasePending.Add(-int64(k))
	if k == 0 {
		return
	}
	// One batch at a time, so that one's measure does not include another's frees.
	freeMu.Lock()
	before := liveBytes()
	C.hcw_tensor_free_many(words(&batch[0]), C.int(k)) // subtracts their bytes from the live count
	freed := before - liveBytes()
	freeMu.Unlock()
	if freed > 0 {
		gcReleased.Add(freed)
	}
}

// ReleaseUnreachable frees now every handle the garbage collector has found unreachable (they are
// otherwise freed a batch at a time as new tensors are created).
func ReleaseUnreachable() { drainReleases(int(releasePending.Load()) + releaseBatch) }

func notePressure() {
	if releasePending.Load() > 0 {
		drainReleases(releaseBatch)
	}
	p := pressure()
	over := p - gcMark.Load()
	th := gcThreshold.Load()
	if over < th {
		return
	}
	if gcRunning.CompareAndSwap(false, true) {
		gcMark.Store(p)
		gcCount.Add(1)
		go func() {
			runtime.GC()
			gcRunning.Store(false)
		}()
		return
	}
	if over > 4*th {
		// Allocation outruns the background collection: wait for one here.
		gcMark.Store(p)
		gcCount.Add(1)
		runtime.GC()
	}
}
