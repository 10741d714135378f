// Autograd that calls back into Go: custom functions (a Go backward in the graph), tensor
// gradient hooks, torch::autograd::grad and backward entry points that allow those callbacks,
// anomaly mode, autocast, and the CPU generator's state (for recomputation).
//
// Go's callbacks are installed once (hc_autograd_set_callbacks, from bridge/autograd_cb.c). No
// callback runs from a destructor: a graph or hook freed by any call (hc_tensor_free is marked
// nocallback on the Go side) only queues its id, which Go collects with hc_autograd_released.
#include <ATen/autocast_mode.h>
#include <ATen/core/Generator.h>
#include <ATen/CPUGeneratorImpl.h>
#include <torch/csrc/autograd/anomaly_mode.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/functions/utils.h>
#include <torch/version.h>

#include <memory>
#include <mutex>
#include <vector>

#include "internal.h"

namespace {

hc_go_backward_fn go_backward = nullptr;
hc_go_hook_fn go_hook = nullptr;

std::mutex released_mu;
std::vector<int64_t> released; // ids of Go functions and hooks libtorch no longer holds

void release(int64_t id) {
  std::lock_guard<std::mutex> g(released_mu);
  released.push_back(id);
}

// Calls into Go; a Go error (a panic or a returned error in the user's code) becomes a C++
// exception, which the engine turns into the error of the backward call.
void check_go(int rc, char *err, const char *what) {
  if (rc == 0) return;
  std::string msg = err ? err : "failed";
  free(err);
  throw std::runtime_error(std::string(what) + ": " + msg);
}

// GoNode is a custom function's node: its backward is Go code (bridge.Function).
struct GoNode : torch::autograd::Node {
  int64_t id;
  explicit GoNode(int64_t id) : id(id) {}
  ~GoNode() override { release(id); }
  std::string name() const override { return "GoFunctionBackward"; }

  torch::autograd::variable_list apply(torch::autograd::variable_list &&grads) override {
    if (!go_backward) throw std::runtime_error("no Go backward installed");
    std::vector<hc_tensor> in(grads.size());
    for (size_t k = 0; k < grads.size(); k++) in[k] = grads[k].defined() ? hc::wrap(grads[k]) : nullptr;
    std::vector<hc_tensor> out(num_outputs(), nullptr);
    char *err = nullptr;
    int rc = go_backward(id, in.data(), static_cast<int>(in.size()), out.data(), static_cast<int>(out.size()), &err);
    // The Go side owns the handles it was given and the ones it returned (its garbage collector
    // or scope frees them): take references to the tensors only.
    torch::autograd::variable_list res(out.size());
    for (size_t k = 0; k < out.size(); k++) // Go handed over new references (hc_tensor_ref)
      if (out[k]) {
        res[k] = out[k]->t;
        delete out[k];
      }
    check_go(rc, err, "backward of a Go function");
    return res;
  }
};

// Nodes are held by std::shared_ptr in libtorch 1.13 and by c10::intrusive_ptr in 2.x: make a
// GoNode the way the headers in use hold one.
using NodePtr = decltype(torch::autograd::Edge::function);
template <class T> using GoNodeOf = std::conditional_t<sizeof(T) != 0, GoNode, void>; // dependent: instantiated only when used
template <class P> struct MakeNode;
template <class T> struct MakeNode<std::shared_ptr<T>> {
  static std::shared_ptr<T> make(int64_t id) { return std::make_shared<GoNodeOf<T>>(id); }
};
template <class T> struct MakeNode<c10::intrusive_ptr<T>> {
  static c10::intrusive_ptr<T> make(int64_t id) { return c10::make_intrusive<GoNodeOf<T>>(id); }
};

// HookId frees its id when libtorch drops the hook (the tensor dies or the hook is removed).
struct HookId {
  int64_t id;
  explicit HookId(int64_t id) : id(id) {}
  ~HookId() { release(id); }
};

} // namespace

extern "C" {

hc_tensor hc_tensor_ref(hc_tensor t) { return t ? new hc_tensor_s{t->t, 0} : nullptr; }

void hc_autograd_set_callbacks(hc_go_backward_fn backward, hc_go_hook_fn hook) {
  go_backward = backward;
  go_hook = hook;
}

int32_t hc_autograd_released(int64_t *ids, int32_t cap) {
  std::lock_guard<std::mutex> g(released_mu);
  int32_t n = 0;
  while (!released.empty() && n < cap) {
    ids[n++] = released.back();
    released.pop_back();
  }
  return n;
}

hc_err hc_autograd_attach(int64_t id, const hc_tensor *inputs, int32_t nin, const hc_tensor *outputs,
                          int32_t nout, hc_tensor *attached) {
  return hc::guard([&] {
    std::vector<at::Tensor> in;
    for (int32_t k = 0; k < nin; k++)
      if (inputs[k]) in.push_back(inputs[k]->t);
    NodePtr node = MakeNode<NodePtr>::make(id);
    node->set_next_edges(torch::autograd::collect_next_edges(in));
    bool any = false;
    for (auto &t : in) any = any || t.requires_grad();
    for (int32_t k = 0; k < nout; k++) {
      if (!outputs[k]) throw std::invalid_argument("output " + std::to_string(k) + " is nil");
      // A new TensorImpl over the same data: the output a Forward returned (even an input)
      // gets this node as its history without changing the tensor the Go side holds.
      at::Tensor out = outputs[k]->t.detach();
      if (any && torch::autograd::isDifferentiableType(out.scalar_type())) {
        torch::autograd::set_history(out, node);
      } else {
        node->add_input_metadata(torch::autograd::Node::undefined_input());
      }
      attached[k] = hc::wrap(out);
    }
  });
}

hc_err hc_autograd_backward(hc_tensor t, hc_tensor grad, int32_t retain, int32_t create) {
  return hc::guard([&] {
    c10::optional<bool> keep;
    if (retain >= 0) keep = retain != 0;
    t->t.backward(grad ? grad->t : at::Tensor(), keep, create != 0);
  });
}

hc_err hc_autograd_grad(const hc_tensor *outputs, int32_t nout, const hc_tensor *grad_outputs,
                        const hc_tensor *inputs, int32_t nin, int32_t retain, int32_t create,
                        int32_t allow_unused, hc_tensor *grads) {
  return hc::guard([&] {
    torch::autograd::variable_list outs, gouts, ins;
    for (int32_t k = 0; k < nout; k++) {
      outs.push_back(outputs[k]->t);
      gouts.push_back(grad_outputs && grad_outputs[k] ? grad_outputs[k]->t : at::Tensor());
    }
    for (int32_t k = 0; k < nin; k++) ins.push_back(inputs[k]->t);
    c10::optional<bool> keep;
    if (retain >= 0) keep = retain != 0;
    auto res = torch::autograd::grad(outs, ins, gouts, keep, create != 0, allow_unused != 0);
    for (int32_t k = 0; k < nin; k++) grads[k] = res[k].defined() ? hc::wrap(res[k]) : nullptr;
  });
}

hc_err hc_register_hook(hc_tensor t, int64_t id, int64_t *pos) {
  return hc::guard([&] {
    if (!t->t.requires_grad()) throw std::invalid_argument("cannot register a hook on a tensor that does not require grad");
    auto owner = std::make_shared<HookId>(id);
    *pos = static_cast<int64_t>(t->t.register_hook([owner](const at::Tensor &g) -> at::Tensor {
      if (!go_hook) throw std::runtime_error("no Go hook installed");
      hc_tensor in = hc::wrap(g), out = nullptr;
      char *err = nullptr;
      int rc = go_hook(owner->id, in, &out, &err);
      at::Tensor res;
      if (out) { // a new reference (hc_tensor_ref)
        res = out->t;
        delete out;
      }
      check_go(rc, err, "gradient hook");
      return res; // undefined: keep the gradient as it is
    }));
  });
}

hc_err hc_remove_hook(hc_tensor t, int64_t pos) {
  return hc::guard([&] { t->t.remove_hook(static_cast<unsigned>(pos)); });
}

int32_t hc_anomaly_set(int32_t on) {
  bool was = torch::autograd::AnomalyMode::is_enabled();
  torch::autograd::AnomalyMode::set_enabled(on != 0);
  return was ? 1 : 0;
}

// Autocast: device HC_CPU or a CUDA ordinal (the CUDA kind); returns the previous state in
// *was_enabled and *was_dtype. Thread-local in libtorch: the Go side stays on one thread.
hc_err hc_autocast_set(int32_t device, int32_t enabled, int32_t dtype, int32_t *was_enabled, int32_t *was_dtype) {
  return hc::guard([&] {
    bool cuda = device != HC_CPU;
    auto st = hc::scalar_type(dtype);
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
    auto kind = cuda ? at::kCUDA : at::kCPU;
    *was_enabled = at::autocast::is_autocast_enabled(kind);
    *was_dtype = hc::dtype_of(at::autocast::get_autocast_dtype(kind));
    at::autocast::set_autocast_enabled(kind, enabled != 0);
    at::autocast::set_autocast_dtype(kind, st);
#else
    if (cuda) {
      *was_enabled = at::autocast::is_enabled();
      *was_dtype = hc::dtype_of(at::autocast::get_autocast_gpu_dtype());
      at::autocast::set_enabled(enabled != 0);
      at::autocast::set_autocast_gpu_dtype(st);
    } else {
      *was_enabled = at::autocast::is_cpu_enabled();
      *was_dtype = hc::dtype_of(at::autocast::get_autocast_cpu_dtype());
      at::autocast::set_cpu_enabled(enabled != 0);
      at::autocast::set_autocast_cpu_dtype(st);
    }
#endif
  });
}

int32_t hc_autocast_nesting(int32_t delta) {
  if (delta > 0) return at::autocast::increment_nesting();
  int n = at::autocast::decrement_nesting();
  if (n == 0) at::autocast::clear_cache(); // the casts cached while autocast was on
  return n;
}

hc_err hc_rng_state(hc_tensor *out) {
  return hc::guard([&] { *out = hc::wrap(at::detail::getDefaultCPUGenerator().get_state()); });
}

hc_err hc_rng_set_state(hc_tensor state) {
  return hc::guard([&] {
    auto gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> g(gen.mutex());
    gen.set_state(state->t);
  });
}

} // extern "C"
