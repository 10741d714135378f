// Shared helpers of the C ABI implementation. Not part of the public header.
#pragma once

#include <ATen/ATen.h>

#include <exception>
#include <stdexcept>
#include <string>

#include "hotcb_torch.h"

struct hc_tensor_s {
  at::Tensor t;
  int64_t counted; // bytes this handle added to hc_pressure_bytes
};

namespace hc {

// Copies a message into malloc'd memory for the Go side to free with hc_free.
hc_err err_dup(const std::string &msg);

// Runs f and turns every exception into an hc_err: nothing may unwind through cgo.
template <class F> hc_err guard(F &&f) noexcept {
  try {
    f();
    return nullptr;
  } catch (const c10::Error &e) {
    return err_dup(e.what_without_backtrace());
  } catch (const std::exception &e) {
    return err_dup(e.what());
  } catch (...) {
    return err_dup("unknown C++ exception");
  }
}

// Wraps a tensor in a new handle (NULL for an undefined tensor) and counts it as memory pressure:
// a fixed cost for the handle and TensorImpl plus the data bytes.
hc_tensor wrap(at::Tensor t);

at::ScalarType scalar_type(int dtype);
int dtype_of(at::ScalarType st);
at::Device device(int dev);
int device_of(const at::Device &d);

} // namespace hc
