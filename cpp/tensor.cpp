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

namespace {

// The prefix-form value hc_save_value decodes; every read is bounds-checked, since the streams
// come from Go code that may be wrong.
struct ValueReader {
  const int64_t *codes;
  int64_t nc;
  const double *f;
  int64_t nf;
  std::vector<std::string> strings;
  const hc_tensor *t;
  int64_t nt;
  int64_t c = 0, fi = 0, si = 0, ti = 0;

  int64_t code() {
    if (c >= nc) throw std::invalid_argument("the codes end inside a value (at code " + std::to_string(c) + ")");
    return codes[c++];
  }
  int64_t length() {
    int64_t n = code();
    if (n < 0 || n > nc) throw std::invalid_argument("bad length " + std::to_string(n));
    return n;
  }

  c10::IValue read(int depth) {
    if (depth > 256) throw std::invalid_argument("the value nests deeper than 256");
    int64_t tag = code();
    switch (tag) {
    case 0:
      return c10::IValue();
    case 1: {
      int64_t b = code();
      if (b != 0 && b != 1) throw std::invalid_argument("bool code " + std::to_string(b) + " (0 or 1)");
      return c10::IValue(b != 0);
    }
    case 2:
      return c10::IValue(code());
    case 3:
      if (fi >= nf) throw std::invalid_argument("more float tags than Floats (" + std::to_string(nf) + ")");
      return c10::IValue(f[fi++]);
    case 4:
      if (si >= static_cast<int64_t>(strings.size())) throw std::invalid_argument("more str tags than Strings (" + std::to_string(strings.size()) + ")");
      return c10::IValue(strings[si++]);
    case 5:
      if (ti >= nt) throw std::invalid_argument("more tensor tags than Tensors (" + std::to_string(nt) + ")");
      if (t[ti] == nullptr) throw std::invalid_argument("tensor " + std::to_string(ti) + " is nil or freed");
      return c10::IValue(t[ti++]->t.detach().to(at::kCPU));
    case 6: { // a list of AnyType pickles as a plain Python list
      int64_t n = length();
      c10::impl::GenericList l(c10::AnyType::get());
      l.reserve(n);
      for (int64_t i = 0; i < n; i++) l.push_back(read(depth + 1));
      return c10::IValue(l);
    }
    case 7: {
      int64_t n = length();
      std::vector<c10::IValue> elems;
      elems.reserve(n);
      for (int64_t i = 0; i < n; i++) elems.push_back(read(depth + 1));
      return c10::IValue(c10::ivalue::Tuple::create(std::move(elems)));
    }
    case 8: {
      int64_t n = length();
      std::vector<std::pair<c10::IValue, c10::IValue>> items;
      items.reserve(n);
      for (int64_t i = 0; i < n; i++) {
        c10::IValue k = read(depth + 1);
        if (!k.isInt() && !k.isString())
          throw std::invalid_argument("dict key " + std::to_string(i) + " is neither an int nor a str");
        items.emplace_back(std::move(k), read(depth + 1));
      }
      bool ints = !items.empty() && items[0].first.isInt();
      c10::impl::GenericDict d(ints ? c10::TypePtr(c10::IntType::get()) : c10::TypePtr(c10::StringType::get()),
                               c10::AnyType::get());
      for (auto &kv : items) {
        if (kv.first.isInt() != ints) throw std::invalid_argument("a dict's keys mix int and str");
        if (d.contains(kv.first))
          throw std::invalid_argument("dict key " + (ints ? std::to_string(kv.first.toInt()) : kv.first.toStringRef()) + " repeats");
        d.insert(std::move(kv.first), std::move(kv.second));
      }
      return c10::IValue(d);
    }
    }
    throw std::invalid_argument("unknown tag " + std::to_string(tag));
  }
};

void give_bytes(const std::vector<char> &bytes, char **buf, int64_t *len) {
  char *b = static_cast<char *>(std::malloc(bytes.size() ? bytes.size() : 1));
  if (b == nullptr) throw std::bad_alloc();
  std::memcpy(b, bytes.data(), bytes.size());
  *buf = b;
  *len = static_cast<int64_t>(bytes.size());
}

} // namespace

hc_err hc_save_value(const int64_t *codes, int64_t nc, const double *f, int64_t nf, const char *s,
                     int64_t ns, const hc_tensor *t, int64_t nt, char **buf, int64_t *len) {
  return hc::guard([&] {
    ValueReader r{codes, nc, f, nf, {}, t, nt};
    for (int64_t k = 0; k < ns; k++) {
      r.strings.emplace_back(s);
      s += r.strings.back().size() + 1;
    }
    c10::IValue v = r.read(0);
    if (r.c != nc || r.fi != nf || r.si != ns || r.ti != nt)
      throw std::invalid_argument("left over after the value: " + std::to_string(nc - r.c) + " codes, " +
                                  std::to_string(nf - r.fi) + " floats, " + std::to_string(ns - r.si) + " strings, " +
                                  std::to_string(nt - r.ti) + " tensors");
    give_bytes(torch::jit::pickle_save(v), buf, len);
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
