package bridge

// #include "hotcb_torch.h"
import "C"

import "runtime"

// ManualSeed seeds libtorch's random generators (CPU and CUDA).
func ManualSeed(seed uint64) { check("manual_seed", C.hc_manual_seed(C.uint64_t(seed))) }

// SetNumThreads sets libtorch's intra-op thread count.
func SetNumThreads(n int) { C.hc_set_num_threads(C.int(n)) }

// NumThreads returns libtorch's intra-op thread count.
func NumThreads() int { return int(C.hc_get_num_threads()) }

// Version is the libtorch version the shim was built against, e.g. "1.13.0".
func Version() string { return C.GoString(C.hc_torch_version()) }

// BuiltWithCUDA reports whether the loaded shim was built with WITH_CUDA=1.
func BuiltWithCUDA() bool { return C.hc_built_with_cuda() != 0 }

// Config is libtorch's build configuration (compiler, BLAS, OpenMP, CUDA ...).
func Config() string { return takeString(C.hc_config()) }

// CUDAIsAvailable reports whether a CUDA device can be used.
func CUDAIsAvailable() bool { return C.hc_cuda_is_available() != 0 }

// CUDADeviceCount is the number of CUDA devices.
func CUDADeviceCount() int { return int(C.hc_cuda_device_count()) }

// Synchronize waits for all work on a CUDA device; on the CPU it returns at once.
func Synchronize(d Device) error {
	if !d.IsCUDA() {
		return nil
	}
	return checkErr("synchronize", C.hc_cuda_synchronize(C.int(d.code())))
}

// CUDAMemory returns the bytes held by tensors and reserved by the caching allocator on a CUDA
// device (0, 0 on the CPU or without CUDA).
func CUDAMemory(d Device) (allocated, reserved int64, err error) {
	if !d.IsCUDA() {
		return 0, 0, nil
	}
	var a, r C.int64_t
	if err := checkErr("cuda_memory", C.hc_cuda_memory(C.int(d.code()), &a, &r)); err != nil {
		return 0, 0, err
	}
	return int64(a), int64(r), nil
}

// Event is a CUDA event for timing work on a device without synchronising the host.
type Event struct {
	h       C.hc_event
	cleanup runtime.Cleanup
}

// NewEvent creates a timing-enabled CUDA event (an error on a shim without CUDA).
func NewEvent() (*Event, error) {
	var h C.hc_event
	if err := checkErr("cuda_event", C.hc_cuda_event_new(&h)); err != nil {
		return nil, err
	}
	ev := &Event{h: h}
	ev.cleanup = runtime.AddCleanup(ev, func(h C.hc_event) { C.hc_cuda_event_free(h) }, h)
	return ev, nil
}

// Record enqueues the event on the current stream of device d.
func (e *Event) Record(d Device) error {
	err := checkErr("cuda_event_record", C.hc_cuda_event_record(e.h, C.int(d.code())))
	runtime.KeepAlive(e)
	return err
}

// Done reports whether the work before the recorded event has completed (never blocks).
func (e *Event) Done() (bool, error) {
	var done C.int
	err := checkErr("cuda_event_query", C.hc_cuda_event_query(e.h, &done))
	runtime.KeepAlive(e)
	return done != 0, err
}

// ElapsedMs is the device time between two completed events, in milliseconds.
func (e *Event) ElapsedMs(end *Event) (float32, error) {
	var ms C.float
	err := checkErr("cuda_event_elapsed", C.hc_cuda_event_elapsed_ms(e.h, end.h, &ms))
	runtime.KeepAlive(e)
	runtime.KeepAlive(end)
	return float32(ms), err
}

// Close releases the event now.
func (e *Event) Close() {
	if e.h != nil {
		e.cleanup.Stop()
		C.hc_cuda_event_free(e.h)
		e.h = nil
	}
}
