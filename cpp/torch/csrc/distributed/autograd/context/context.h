// Stand-in for libtorch's torch/csrc/distributed/autograd/context/context.h, which Debian's
// libtorch-dev 1.13 does not ship although c10d/reducer.hpp includes it. The include path lists
// cpp/ after libtorch's headers, so this file is read only where the real one is missing.
//
// reducer.hpp needs two names from it: the type of a gradient callback (it static_asserts that
// it is std::function<bool(at::Tensor&)>) and ContextPtr, a std::shared_ptr held in a member of
// c10d::Reducer. A shared_ptr to an incomplete class has the layout of the real one, and nothing
// here creates, copies or destroys a context (the Reducer's constructor and destructor are
// libtorch's own code), so the Reducer this declares matches the one in libtorch_cpu.so.
#pragma once

#include <ATen/core/Tensor.h>

#include <functional>
#include <memory>

#include <torch/csrc/api/include/torch/version.h>
#if TORCH_VERSION_MAJOR >= 2
#error "cpp/torch/csrc/distributed/autograd/context/context.h stands in for libtorch 1.13's missing header only"
#endif

namespace torch {
namespace distributed {
namespace autograd {

class DistAutogradContext {
 public:
  using GradCallback = std::function<bool(at::Tensor &)>;
};
using ContextPtr = std::shared_ptr<DistAutogradContext>;

} // namespace autograd
} // namespace distributed
} // namespace torch
