// hc_call: one entry point for every tensor operation, dispatched on enum hc_op.
// Argument conventions per op are documented next to the enum in hotcb_torch.h.
#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <array>
#include <cmath>
#include <string>
#include <vector>

#include "internal.h"

namespace {

struct Args {
  int op;
  const hc_tensor *t;
  int nt;
  const int64_t *i;
  int ni;
  const double *d;
  int nd;

  [[noreturn]] void missing(const char *what, int k) const {
    throw std::invalid_argument(std::string("missing ") + what + " argument " + std::to_string(k));
  }
  const at::Tensor &T(int k) const {
    if (k >= nt || t[k] == nullptr) missing("tensor", k);
    return t[k]->t;
  }
  c10::optional<at::Tensor> opt(int k) const {
    if (k >= nt || t[k] == nullptr) return c10::nullopt;
    return t[k]->t;
  }
  int64_t I(int k) const {
    if (k >= ni) missing("integer", k);
    return i[k];
  }
  double D(int k) const {
    if (k >= nd) missing("double", k);
    return d[k];
  }
  // Ints from index k to the end.
  at::IntArrayRef rest(int k) const {
    if (k > ni) missing("integer", k);
    return at::IntArrayRef(i + k, static_cast<size_t>(ni - k));
  }
  // Exactly n ints starting at k.
  at::IntArrayRef ints(int k, int n) const {
    if (k + n > ni) missing("integer", k + n - 1);
    return at::IntArrayRef(i + k, static_cast<size_t>(n));
  }
  std::vector<at::Tensor> all() const {
    std::vector<at::Tensor> v;
    v.reserve(nt);
    for (int k = 0; k < nt; k++) v.push_back(T(k));
    return v;
  }
  // A scalar that keeps an integer tensor integral when the value is a whole number, as
  // Python does for `int_tensor + 2`.
  at::Scalar S(int k, const at::Tensor &like) const {
    double v = D(k);
    if (at::isIntegralType(like.scalar_type(), /*includeBool=*/true) && std::nearbyint(v) == v &&
        std::fabs(v) < 9.0e15)
      return at::Scalar(static_cast<int64_t>(v));
    return at::Scalar(v);
  }
  at::TensorOptions options() const {
    return at::TensorOptions().dtype(hc::scalar_type(static_cast<int>(I(0)))).device(
        hc::device(static_cast<int>(I(1))));
  }
};

int64_t reduction(int64_t r) {
  if (r < HC_REDUCE_NONE || r > HC_REDUCE_SUM)
    throw std::invalid_argument("unknown reduction " + std::to_string(r));
  // at::Reduction: None=0, Mean=1, Sum=2, the same numbering as ours.
  return r;
}

c10::optional<at::Scalar> clamp_bound(const Args &a, int bit, int k) {
  if ((a.I(0) >> bit) & 1) return at::Scalar(a.D(k));
  return c10::nullopt;
}

// Runs op; writes up to two results to r and returns how many there are.
int run(const Args &a, std::array<at::Tensor, 2> &r) {
  switch (a.op) {
  // creation
  case HC_ZEROS: r[0] = at::zeros(a.rest(2), a.options()); return 1;
  case HC_ONES: r[0] = at::ones(a.rest(2), a.options()); return 1;
  case HC_EMPTY: r[0] = at::empty(a.rest(2), a.options()); return 1;
  case HC_FULL: r[0] = at::full(a.rest(2), a.D(0), a.options()); return 1;
  case HC_RAND: r[0] = at::rand(a.rest(2), a.options()); return 1;
  case HC_RANDN: r[0] = at::randn(a.rest(2), a.options()); return 1;
  case HC_RANDINT:
    r[0] = at::randint(static_cast<int64_t>(a.D(0)), static_cast<int64_t>(a.D(1)), a.rest(2),
                       a.options());
    return 1;
  case HC_ARANGE: r[0] = at::arange(a.D(0), a.D(1), a.D(2), a.options()); return 1;
  case HC_EYE: r[0] = at::eye(a.I(2), a.I(3), a.options()); return 1;

  // unary
  case HC_GELU: r[0] = at::gelu(a.T(0), a.ni > 0 && a.I(0) ? "tanh" : "none"); return 1;
  case HC_CLAMP: r[0] = at::clamp(a.T(0), clamp_bound(a, 0, 0), clamp_bound(a, 1, 1)); return 1;

  // binary
  case HC_ADD: r[0] = at::add(a.T(0), a.T(1), a.nd > 0 ? a.D(0) : 1.0); return 1;
  case HC_SUB: r[0] = at::sub(a.T(0), a.T(1), a.nd > 0 ? a.D(0) : 1.0); return 1;

  // with a scalar
  case HC_ADD_S: r[0] = at::add(a.T(0), a.S(0, a.T(0))); return 1;
  case HC_SUB_S: r[0] = at::sub(a.T(0), a.S(0, a.T(0))); return 1;
  case HC_MUL_S: r[0] = at::mul(a.T(0), a.S(0, a.T(0))); return 1;
  case HC_DIV_S: r[0] = at::div(a.T(0), a.S(0, a.T(0))); return 1;
  case HC_POW_S: r[0] = at::pow(a.T(0), a.S(0, a.T(0))); return 1;
  case HC_RSUB_S: r[0] = at::rsub(a.T(0), a.S(0, a.T(0))); return 1;
  case HC_EQ_S: r[0] = at::eq(a.T(0), a.S(0, a.T(0))); return 1;
  case HC_NE_S: r[0] = at::ne(a.T(0), a.S(0, a.T(0))); return 1;
  case HC_GT_S: r[0] = at::gt(a.T(0), a.S(0, a.T(0))); return 1;
  case HC_LT_S: r[0] = at::lt(a.T(0), a.S(0, a.T(0))); return 1;
  case HC_GE_S: r[0] = at::ge(a.T(0), a.S(0, a.T(0))); return 1;
  case HC_LE_S: r[0] = at::le(a.T(0), a.S(0, a.T(0))); return 1;


  // reductions
  case HC_SUM: r[0] = at::sum(a.T(0)); return 1;
  case HC_MEAN: r[0] = at::mean(a.T(0)); return 1;
  case HC_MAX: r[0] = at::max(a.T(0)); return 1;
  case HC_MIN: r[0] = at::min(a.T(0)); return 1;
  case HC_ANY: r[0] = at::any(a.T(0)); return 1;
  case HC_ALL: r[0] = at::all(a.T(0)); return 1;
  case HC_SUM_DIM:
    r[0] = a.ni > 1 ? at::sum(a.T(0), a.rest(1), a.I(0) != 0) : at::sum(a.T(0));
    return 1;
  case HC_MEAN_DIM:
    r[0] = a.ni > 1 ? at::mean(a.T(0), a.rest(1), a.I(0) != 0) : at::mean(a.T(0));
    return 1;
  case HC_ANY_DIM: r[0] = at::any(a.T(0), a.I(1), a.I(0) != 0); return 1;
  case HC_ALL_DIM: r[0] = at::all(a.T(0), a.I(1), a.I(0) != 0); return 1;
  case HC_STD:
    r[0] = a.ni > 2 ? at::std(a.T(0), a.rest(2), a.I(1) != 0, a.I(0) != 0)
                    : at::std(a.T(0), a.I(1) != 0);
    return 1;
  case HC_VAR:
    r[0] = a.ni > 2 ? at::var(a.T(0), a.rest(2), a.I(1) != 0, a.I(0) != 0)
                    : at::var(a.T(0), a.I(1) != 0);
    return 1;
  case HC_NORM:
    r[0] = a.ni > 1 ? at::norm(a.T(0), at::Scalar(a.D(0)), a.rest(1), a.I(0) != 0)
                    : at::norm(a.T(0), at::Scalar(a.D(0)));
    return 1;
  case HC_MAX_DIM: std::tie(r[0], r[1]) = at::max(a.T(0), a.I(0), a.I(1) != 0); return 2;
  case HC_MIN_DIM: std::tie(r[0], r[1]) = at::min(a.T(0), a.I(0), a.I(1) != 0); return 2;
  case HC_ARGMAX:
    r[0] = a.ni > 0 ? at::argmax(a.T(0), a.I(0), a.I(1) != 0) : at::argmax(a.T(0));
    return 1;
  case HC_ARGMIN:
    r[0] = a.ni > 0 ? at::argmin(a.T(0), a.I(0), a.I(1) != 0) : at::argmin(a.T(0));
    return 1;
  case HC_SOFTMAX: r[0] = at::softmax(a.T(0), a.I(0)); return 1;
  case HC_LOG_SOFTMAX: r[0] = at::log_softmax(a.T(0), a.I(0)); return 1;

  // shape and indexing
  case HC_RESHAPE: r[0] = a.T(0).reshape(a.rest(0)); return 1;
  case HC_VIEW: r[0] = a.T(0).view(a.rest(0)); return 1;
  case HC_EXPAND: r[0] = a.T(0).expand(a.rest(0)); return 1;
  case HC_PERMUTE: r[0] = a.T(0).permute(a.rest(0)); return 1;
  case HC_TRANSPOSE: r[0] = a.T(0).transpose(a.I(0), a.I(1)); return 1;
  case HC_UNSQUEEZE: r[0] = a.T(0).unsqueeze(a.I(0)); return 1;
  case HC_SQUEEZE: r[0] = a.ni > 0 ? a.T(0).squeeze(a.I(0)) : a.T(0).squeeze(); return 1;
  case HC_FLATTEN: r[0] = a.T(0).flatten(a.I(0), a.I(1)); return 1;
  case HC_NARROW: r[0] = a.T(0).narrow(a.I(0), a.I(1), a.I(2)); return 1;
  case HC_SLICE: r[0] = a.T(0).slice(a.I(0), a.I(1), a.I(2), a.I(3)); return 1;
  case HC_CAT: r[0] = at::cat(a.all(), a.I(0)); return 1;
  case HC_STACK: r[0] = at::stack(a.all(), a.I(0)); return 1;
  case HC_INDEX_SELECT: r[0] = at::index_select(a.T(0), a.I(0), a.T(1)); return 1;
  case HC_GATHER: r[0] = at::gather(a.T(0), a.I(0), a.T(1)); return 1;
  case HC_MASKED_FILL: r[0] = a.T(0).masked_fill(a.T(1), a.S(0, a.T(0))); return 1;
  case HC_WHERE: r[0] = at::where(a.T(0), a.T(1), a.T(2)); return 1;
  case HC_CONTIGUOUS: r[0] = a.T(0).contiguous(); return 1;
  case HC_CLONE: r[0] = a.T(0).clone(); return 1;
  case HC_DETACH: r[0] = a.T(0).detach(); return 1;
  case HC_TO: {
    const at::Tensor &x = a.T(0);
    auto dev = a.I(0) == HC_KEEP ? x.device() : hc::device(static_cast<int>(a.I(0)));
    auto st = a.I(1) == HC_KEEP ? x.scalar_type() : hc::scalar_type(static_cast<int>(a.I(1)));
    r[0] = x.to(dev, st, a.I(2) != 0, a.I(3) != 0);
    return 1;
  }
  case HC_ONE_HOT: r[0] = at::one_hot(a.T(0), a.I(0)); return 1;
  case HC_AS_STRIDED: {
    int n = static_cast<int>(a.I(0));
    if (n < 0 || n > 64) throw std::invalid_argument("bad dimension count " + std::to_string(n));
    r[0] = a.T(0).as_strided(a.ints(1, n), a.ints(1 + n, n), a.I(1 + 2 * n));
    return 1;
  }

  // neural-network functions
  case HC_LINEAR: r[0] = at::linear(a.T(0), a.T(1), a.opt(2)); return 1;
  case HC_CONV2D:
    r[0] = at::conv2d(a.T(0), a.T(1), a.opt(2), a.ints(0, 2), a.ints(2, 2), a.ints(4, 2), a.I(6));
    return 1;
  case HC_MAX_POOL2D:
    r[0] = at::max_pool2d(a.T(0), a.ints(0, 2), a.ints(2, 2), a.ints(4, 2), a.ints(6, 2),
                          a.I(8) != 0);
    return 1;
  case HC_AVG_POOL2D:
    r[0] = at::avg_pool2d(a.T(0), a.ints(0, 2), a.ints(2, 2), a.ints(4, 2), a.I(6) != 0,
                          a.I(7) != 0);
    return 1;
  case HC_ADAPTIVE_AVG_POOL2D: r[0] = at::adaptive_avg_pool2d(a.T(0), a.ints(0, 2)); return 1;
  case HC_BATCH_NORM:
    if (a.I(0) != 0) {
      if (auto counter = a.opt(5)) { // nn.BatchNorm's num_batches_tracked, as PyTorch counts it
        c10::NoGradGuard no_grad;
        counter->add_(1);
      }
    }
    r[0] = at::batch_norm(a.T(0), a.opt(1), a.opt(2), a.opt(3), a.opt(4), a.I(0) != 0, a.D(0),
                          a.D(1), /*cudnn_enabled=*/true);
    return 1;
  case HC_LAYER_NORM:
    r[0] = at::layer_norm(a.T(0), a.rest(0), a.opt(1), a.opt(2), a.D(0));
    return 1;
  case HC_DROPOUT: r[0] = at::dropout(a.T(0), a.D(0), a.I(0) != 0); return 1;
  case HC_EMBEDDING: r[0] = at::embedding(a.T(0), a.T(1), a.I(0)); return 1;
  case HC_CROSS_ENTROPY:
    r[0] = at::cross_entropy_loss(a.T(0), a.T(1), a.opt(2), reduction(a.I(0)), a.I(1), a.D(0));
    return 1;
  case HC_NLL_LOSS:
    r[0] = at::nll_loss(a.T(0), a.T(1), a.opt(2), reduction(a.I(0)), a.I(1));
    return 1;
  case HC_MSE_LOSS: r[0] = at::mse_loss(a.T(0), a.T(1), reduction(a.I(0))); return 1;
  case HC_L1_LOSS: r[0] = at::l1_loss(a.T(0), a.T(1), reduction(a.I(0))); return 1;
  case HC_BCE_WITH_LOGITS:
    r[0] = at::binary_cross_entropy_with_logits(a.T(0), a.T(1), a.opt(2), a.opt(3),
                                                reduction(a.I(0)));
    return 1;

  // autograd
  case HC_GRAD: r[0] = a.T(0).grad(); return 1;
  case HC_SET_REQUIRES_GRAD: a.T(0).set_requires_grad(a.I(0) != 0); return 0;
  case HC_BACKWARD: {
    c10::optional<bool> retain;
    if (a.ni > 0) retain = a.I(0) != 0;
    bool create = a.ni > 1 && a.I(1) != 0;
    auto grad = a.opt(1);
    a.T(0).backward(grad ? *grad : at::Tensor(), retain, create);
    return 0;
  }
  case HC_ZERO_GRAD: {
    at::Tensor &g = a.T(0).mutable_grad();
    if (g.defined()) {
      if (a.I(0) != 0) {
        g.reset();
      } else {
        if (g.grad_fn()) g = g.detach();
        else g.requires_grad_(false);
        g.zero_();
      }
    }
    return 0;
  }

  // in place
  case HC_ADD_: a.T(0).add_(a.T(1), a.nd > 0 ? a.D(0) : 1.0); return 0;
  case HC_ADD_S_: a.T(0).add_(a.S(0, a.T(0))); return 0;
  case HC_MUL_S_: a.T(0).mul_(a.S(0, a.T(0))); return 0;
  case HC_DIV_S_: a.T(0).div_(a.S(0, a.T(0))); return 0;
  case HC_MUL_: a.T(0).mul_(a.T(1)); return 0;
  case HC_DIV_: a.T(0).div_(a.T(1)); return 0;
  case HC_ADDCMUL_: a.T(0).addcmul_(a.T(1), a.T(2), a.D(0)); return 0;
  case HC_ADDCDIV_: a.T(0).addcdiv_(a.T(1), a.T(2), a.D(0)); return 0;
  case HC_ZERO_: a.T(0).zero_(); return 0;
  case HC_FILL_: a.T(0).fill_(a.S(0, a.T(0))); return 0;
  case HC_COPY_: a.T(0).copy_(a.T(1)); return 0;
  case HC_SQRT_: a.T(0).sqrt_(); return 0;
  case HC_CLAMP_:
    a.T(0).clamp_(clamp_bound(a, 0, 0), clamp_bound(a, 1, 1));
    return 0;
  case HC_LERP_S_: a.T(0).lerp_(a.T(1), a.D(0)); return 0;
  case HC_SET_DATA_: a.T(0).set_data(a.T(1)); return 0;
  case HC_ADD_GRAD_: {
    at::Tensor &g = a.T(0).mutable_grad();
    if (!g.defined()) throw std::invalid_argument("tensor has no gradient (call backward first)");
    a.T(0).add_(g, a.D(0));
    if (a.ni > 0 && a.I(0) != 0) g.reset();
    return 0;
  }
  case HC_ADD_GRADS_: {
    c10::NoGradGuard no_grad;
    bool drop = a.ni > 0 && a.I(0) != 0;
    for (int k = 0; k < a.nt; k++) {
      const at::Tensor &p = a.T(k);
      at::Tensor &g = p.mutable_grad();
      if (!g.defined()) continue;
      p.add_(g, a.D(0));
      if (drop) g.reset();
    }
    return 0;
  }
  }
  throw std::invalid_argument("unknown op code " + std::to_string(a.op));
}

} // namespace

extern "C" hc_err hc_call(int op, const hc_tensor *t, int nt, const int64_t *i, int ni,
                          const double *d, int nd, hc_tensor *out, int nout) {
  return hc::guard([&] {
    Args a{op, t, nt, i, ni, d, nd};
    std::array<at::Tensor, 2> r;
    int n = run(a, r);
    // Every result counts its data, views and .grad included: a handle may become the only owner
    // of that memory (the base is dropped, the grad is set to none), and over-counting only costs
    // an earlier collection while under-counting lets memory grow.
    for (int k = 0; k < nout; k++) out[k] = k < n ? hc::wrap(std::move(r[k])) : nullptr;
  });
}
