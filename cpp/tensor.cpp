// Tensor handles, data in and out, serialization and runtime settings.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/Version.h>
#include <torch/csrc/api/include/torch/version.h>
#include <torch/csrc/jit/serialization/pickle.h>

#include <cstdlib>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <cstring>
#include <sstream>
#include <utility>
#include <vector>

#include "internal.h"
#include "value.h"

extern "C" {
int64_t hc_pressure_bytes = 0;
}

namespace hc {

// Returned when even the error message cannot be allocated; hc_free leaves it alone.
static char oom_message[] = "out of memory while reporting an error";

hc_err err_dup(const std::string &msg) {
  char *p = static_cast<char *>(std::malloc(msg.size() + 1));
  if (p == nullptr) return oom_message;
  std::memcpy(p, msg.c_str(), msg.size() + 1);
  return p;
}

static int64_t nbytes(const at::Tensor &t) {
  return t.numel() * static_cast<int64_t>(t.element_size());
}

// Approximate native cost of one handle: the at::Tensor, its TensorImpl and autograd metadata.
constexpr int64_t kHandleOverhead = 512;

hc_tensor wrap(at::Tensor t) {
  if (!t.defined()) return nullptr;
  int64_t counted = kHandleOverhead + nbytes(t);
  __atomic_add_fetch(&hc_pressure_bytes, counted, __ATOMIC_RELAXED);
  return new hc_tensor_s{std::move(t), counted};
}

at::ScalarType scalar_type(int dtype) {
  switch (dtype) {
  case HC_FLOAT32: return at::kFloat;
  case HC_FLOAT64: return at::kDouble;
  case HC_FLOAT16: return at::kHalf;
  case HC_BFLOAT16: return at::kBFloat16;
  case HC_INT64: return at::kLong;
  case HC_INT32: return at::kInt;
  case HC_UINT8: return at::kByte;
  case HC_BOOL: return at::kBool;
  case HC_INT8: return at::kChar;
  case HC_INT16: return at::kShort;
  }
  throw std::invalid_argument("unknown dtype code " + std::to_string(dtype));
}

int dtype_of(at::ScalarType st) {
  switch (st) {
  case at::kFloat: return HC_FLOAT32;
  case at::kDouble: return HC_FLOAT64;
  case at::kHalf: return HC_FLOAT16;
  case at::kBFloat16: return HC_BFLOAT16;
  case at::kLong: return HC_INT64;
  case at::kInt: return HC_INT32;
  case at::kByte: return HC_UINT8;
  case at::kBool: return HC_BOOL;
  case at::kChar: return HC_INT8;
  case at::kShort: return HC_INT16;
  default: return -1;
  }
}

at::Device device(int dev) {
  if (dev == HC_CPU) return at::Device(at::kCPU);
  if (dev >= 0) return at::Device(at::kCUDA, static_cast<c10::DeviceIndex>(dev));
  throw std::invalid_argument("unknown device code " + std::to_string(dev));
}

int device_of(const at::Device &d) {
  if (d.is_cpu()) return HC_CPU;
  if (d.is_cuda()) return d.has_index() ? d.index() : 0;
  return -3; // a device kind this ABI does not name
}

} // namespace hc

extern "C" {

void hc_free(void *p) {
  if (p != hc::oom_message) std::free(p);
}

hc_err hc_from_data(const void *data, int dtype, const int64_t *shape, int ndim, int device,
                    hc_tensor *out) {
  return hc::guard([&] {
    auto opts = at::TensorOptions().dtype(hc::scalar_type(dtype));
    at::IntArrayRef sizes(shape, static_cast<size_t>(ndim));
    for (auto s : sizes)
      if (s < 0) throw std::invalid_argument("negative dimension in shape " + c10::str(sizes));
    at::Tensor t = at::empty(sizes, opts);
    if (t.numel() > 0) std::memcpy(t.data_ptr(), data, t.numel() * t.element_size());
    if (device != HC_CPU) t = t.to(hc::device(device));
    *out = hc::wrap(std::move(t));
  });
}

hc_err hc_tensor_info(hc_tensor h, int *dtype, int *device, int *ndim, int64_t *shape,
                      int *requires_grad) {
  return hc::guard([&] {
    const at::Tensor &t = h->t;
    if (dtype) *dtype = hc::dtype_of(t.scalar_type());
    if (device) *device = hc::device_of(t.device());
    if (ndim) *ndim = static_cast<int>(t.dim());
    if (shape)
      for (int64_t k = 0; k < t.dim() && k < 16; k++) shape[k] = t.size(k);
    if (requires_grad) *requires_grad = t.requires_grad() ? 1 : 0;
  });
}

hc_err hc_copy_out(hc_tensor h, int dtype, void *dst, int64_t numel) {
  return hc::guard([&] {
    at::Tensor c = h->t.detach().to(at::kCPU, hc::scalar_type(dtype)).contiguous();
    if (c.numel() != numel)
      throw std::invalid_argument("destination holds " + std::to_string(numel) +
                                  " elements, tensor has " + std::to_string(c.numel()));
    if (numel > 0) std::memcpy(dst, c.data_ptr(), numel * c.element_size());
  });
}

hc_err hc_item(hc_tensor h, double *as_double, int64_t *as_int) {
  return hc::guard([&] {
    at::Scalar s = h->t.item();
    if (as_double) *as_double = s.toDouble();
    if (as_int) *as_int = s.isFloatingPoint() ? static_cast<int64_t>(s.toDouble()) : s.toLong();
  });
}

hc_err hc_to_string(hc_tensor h, char **out) {
  return hc::guard([&] {
    std::ostringstream os;
    os << h->t;
    std::string s = os.str();
    *out = hc::err_dup(s);
  });
}

void hc_tensor_free(hc_tensor h, int explicit_free) {
  if (h == nullptr) return;
  if (explicit_free) __atomic_sub_fetch(&hc_pressure_bytes, h->counted, __ATOMIC_RELAXED);
  delete h;
}

void hc_tensor_free_many(const hc_tensor *t, int n) {
  int64_t counted = 0;
  // Newest first, as C++ scopes destroy their locals.
  for (int k = n - 1; k >= 0; k--) {
    if (t[k] == nullptr) continue;
    counted += t[k]->counted;
    delete t[k];
  }
  __atomic_sub_fetch(&hc_pressure_bytes, counted, __ATOMIC_RELAXED);
}

static thread_local int32_t scope_slot = 0;

int32_t hc_scope_current(void) { return scope_slot; }

int32_t hc_scope_set(int32_t slot) {
  int32_t prev = scope_slot;
  scope_slot = slot;
  return prev;
}

hc_err hc_save_value(const int64_t *codes, int64_t nc, const double *f, int64_t nf, const char *s,
                     int64_t ns, const hc_tensor *t, int64_t nt, char **buf, int64_t *len) {
  return hc::guard([&] {
    c10::IValue v = hc::read_value(codes, nc, f, nf, s, ns, t, nt, true);
    hc::give_bytes(torch::jit::pickle_save(v), buf, len);
  });
}

hc_err hc_manual_seed(uint64_t seed) {
  return hc::guard([&] { at::manual_seed(seed); });
}

int hc_malloc_tune(int64_t trim_threshold, int64_t mmap_threshold) {
#if defined(__GLIBC__)
  if (trim_threshold <= 0 || mmap_threshold <= 0 || trim_threshold > INT32_MAX || mmap_threshold > INT32_MAX)
    return 0;
  int ok = mallopt(M_MMAP_THRESHOLD, static_cast<int>(mmap_threshold));
  ok = mallopt(M_TRIM_THRESHOLD, static_cast<int>(trim_threshold)) && ok;
  return ok ? 1 : 0;
#else
  (void)trim_threshold;
  (void)mmap_threshold;
  return 0;
#endif
}

void hc_set_num_threads(int n) {
  try {
    at::set_num_threads(n);
  } catch (...) {
  }
}

int hc_get_num_threads(void) { return at::get_num_threads(); }

void hc_set_grad_enabled(int enabled) { c10::GradMode::set_enabled(enabled != 0); }
int hc_is_grad_enabled(void) { return c10::GradMode::is_enabled() ? 1 : 0; }

const char *hc_torch_version(void) { return TORCH_VERSION; }

int hc_built_with_cuda(void) {
#ifdef HOTCB_WITH_CUDA
  return 1;
#else
  return 0;
#endif
}

char *hc_config(void) {
  try {
    return hc::err_dup(at::show_config());
  } catch (...) {
    return hc::err_dup("unavailable");
  }
}

} // extern "C"
