// Everything that needs the CUDA toolkit: device events, synchronisation and memory statistics.
// Built with the real implementation only when WITH_CUDA=1 defines HOTCB_WITH_CUDA; otherwise the
// same functions report that this shim has no CUDA support, so the Go side links unchanged.
#include "internal.h"

#ifdef HOTCB_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <ATen/cuda/CUDAEvent.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>

struct hc_event_s {
  at::cuda::CUDAEvent ev{cudaEventDefault};
  bool recorded = false;
};

extern "C" {

int hc_cuda_is_available(void) {
  try {
    return c10::cuda::device_count() > 0 ? 1 : 0;
  } catch (...) {
    return 0;
  }
}

int hc_cuda_device_count(void) {
  try {
    return static_cast<int>(c10::cuda::device_count());
  } catch (...) {
    return 0;
  }
}

hc_err hc_cuda_synchronize(int device) {
  return hc::guard([&] {
    c10::cuda::CUDAGuard g(static_cast<c10::DeviceIndex>(device));
    c10::cuda::device_synchronize();
  });
}

hc_err hc_cuda_memory(int device, int64_t *allocated, int64_t *reserved) {
  return hc::guard([&] {
    auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(device);
    using Agg = c10::cuda::CUDACachingAllocator::StatType;
    *allocated = stats.allocated_bytes[static_cast<size_t>(Agg::AGGREGATE)].current;
    *reserved = stats.reserved_bytes[static_cast<size_t>(Agg::AGGREGATE)].current;
  });
}

hc_err hc_cuda_event_new(hc_event *out) {
  return hc::guard([&] { *out = new hc_event_s(); });
}

hc_err hc_cuda_event_record(hc_event e, int device) {
  return hc::guard([&] {
    auto stream = at::cuda::getCurrentCUDAStream(static_cast<c10::DeviceIndex>(device));
    e->ev.record(stream);
    e->recorded = true;
  });
}

hc_err hc_cuda_event_query(hc_event e, int *done) {
  return hc::guard([&] { *done = (e->recorded && e->ev.query()) ? 1 : 0; });
}

hc_err hc_cuda_event_elapsed_ms(hc_event start, hc_event end, float *ms) {
  return hc::guard([&] {
    if (!start->recorded || !end->recorded) throw std::invalid_argument("event not recorded");
    *ms = static_cast<float>(start->ev.elapsed_time(end->ev));
  });
}

void hc_cuda_event_free(hc_event e) { delete e; }

} // extern "C"

#else // no CUDA in this shim

static hc_err no_cuda() {
  return hc::err_dup("this libhotcb_torch was built without CUDA (rebuild the shim with WITH_CUDA=1)");
}

extern "C" {
int hc_cuda_is_available(void) { return 0; }
int hc_cuda_device_count(void) { return 0; }
hc_err hc_cuda_synchronize(int) { return no_cuda(); }
hc_err hc_cuda_memory(int, int64_t *allocated, int64_t *reserved) {
  *allocated = 0;
  *reserved = 0;
  return nullptr;
}
hc_err hc_cuda_event_new(hc_event *) { return no_cuda(); }
hc_err hc_cuda_event_record(hc_event, int) { return no_cuda(); }
hc_err hc_cuda_event_query(hc_event, int *) { return no_cuda(); }
hc_err hc_cuda_event_elapsed_ms(hc_event, hc_event, float *) { return no_cuda(); }
void hc_cuda_event_free(hc_event) {}
}

#endif
