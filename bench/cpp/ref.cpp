// ref: the C++ reference for bench/cmd/benchrun. It runs the same workloads as the Go side
// (bench/workload) directly on ATen, so that the difference measures the bridge.
//
// Usage:
//   ref [-threads N] MODE ITERS   run MODE ITERS times after building its state, print one JSON line
//   ref [-threads N] cnn|gpt PATH ITERS  the same for cnn or gpt, loading its state from PATH
//   ref [-threads N] serve        read commands from stdin, one per line, answer one JSON line each:
//                                   run MODE ITERS     -> {"mode":..,"iters":..,"seconds":..}
//                                   check MODE [STEPS] -> {"mode":..,"check":<value>[,"losses":[..]]}
//                                   load MODE PATH     -> {"mode":..,"loaded":PATH}
//                                   info               -> {"torch":..,"threads":..,"blas":[..]}
//                                   instr MODE ITERS LABEL -> as run, with the ITERS runs as one
//                                                      callgrind window named LABEL (counters
//                                                      zeroed, instrumentation on, dumped, off:
//                                                      cpp/hotcb_callgrind.h; under valgrind only)
//                                   quit
// Modes: add (two [4] tensors), relu ([64]), matmul ([8x8]·[8x8]), sum ([16]), tril ([4x4]),
//        topk ([16], k=2: the values; the indices dropped),
//        mlp (784-256-10, batch 64), mlp-tiny (32-64-10, batch 16),
//        cnn (models.SmallCNN in ATen functional ops; "load cnn PATH" first),
//        gpt (examples/gpt's GPT in ATen functional ops, AdamW and gradient clipping written out
//        as PyTorch 1.13 runs them; "load gpt PATH" first).
// State (inputs, weights) is built once per mode with a fixed seed, exactly as the Go side
// builds it, or for cnn and gpt loaded from the file the Go side wrote with bridge.SaveNamed (a
// dict of tensors: the batch "x", "y" and the model's state dict), and kept across runs: a model keeps
// training from one run to the next. "check MODE STEPS" adds the losses of the first STEPS
// training steps of a fresh model.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/csrc/jit/serialization/pickle.h>
#include <torch/version.h>

#include "../../cpp/hotcb_callgrind.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iostream>
#include <iterator>
#include <limits>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace {

constexpr uint64_t kSeed = 1234;
constexpr double kInitScale = 0.05;

// Keeps results alive past the optimiser: every op result is assigned here.
at::Tensor sink;

struct Workload {
  virtual ~Workload() = default;
  virtual void run(int64_t iters) = 0;
  virtual double check() = 0; // a value the Go side must reproduce exactly
  // The losses of the first steps training steps of a fresh model; empty if the mode does not
  // train.
  virtual std::vector<double> losses(int64_t steps) { return {}; }
};

// One tensor op on fixed inputs.
struct OpWorkload : Workload {
  std::vector<at::Tensor> in;
  std::function<at::Tensor(const std::vector<at::Tensor> &)> f;
  void run(int64_t iters) override {
    for (int64_t k = 0; k < iters; k++) sink = f(in);
  }
  double check() override { return f(in).sum().item<double>(); }
};

std::unique_ptr<Workload> make_op(const std::string &mode) {
  at::manual_seed(kSeed);
  auto w = std::make_unique<OpWorkload>();
  if (mode == "add") {
    w->in = {at::randn({4}), at::randn({4})};
    w->f = [](const std::vector<at::Tensor> &v) { return at::add(v[0], v[1]); };
  } else if (mode == "relu") {
    w->in = {at::randn({64})};
    w->f = [](const std::vector<at::Tensor> &v) { return at::relu(v[0]); };
  } else if (mode == "matmul") {
    w->in = {at::randn({8, 8}), at::randn({8, 8})};
    w->f = [](const std::vector<at::Tensor> &v) { return at::matmul(v[0], v[1]); };
  } else if (mode == "sum") {
    w->in = {at::randn({16})};
    w->f = [](const std::vector<at::Tensor> &v) { return at::sum(v[0]); };
  } else if (mode == "tril") {
    w->in = {at::randn({4, 4})};
    w->f = [](const std::vector<at::Tensor> &v) { return at::tril(v[0]); };
  } else if (mode == "topk") { // the indices are made and dropped at once
    w->in = {at::randn({16})};
    w->f = [](const std::vector<at::Tensor> &v) { return std::get<0>(at::topk(v[0], 2)); };
  } else {
    return nullptr;
  }
  return w;
}

// A two-layer perceptron trained with plain SGD, the loop of bench/workload.MLP.Step.
struct MLP : Workload {
  at::Tensor x, y, w1, b1, w2, b2;
  double lr = 0.1;

  MLP(int64_t in, int64_t hidden, int64_t out, int64_t batch) {
    at::manual_seed(kSeed);
    x = at::randn({batch, in});
    y = at::randint(0, out, {batch}, at::kLong);
    w1 = (at::randn({hidden, in}) * kInitScale).set_requires_grad(true);
    b1 = at::zeros({hidden}).set_requires_grad(true);
    w2 = (at::randn({out, hidden}) * kInitScale).set_requires_grad(true);
    b2 = at::zeros({out}).set_requires_grad(true);
  }
  at::Tensor loss() {
    auto h = at::relu(at::linear(x, w1, b1));
    auto logits = at::linear(h, w2, b2);
    return at::cross_entropy_loss(logits, y);
  }
  at::Tensor step() {
    auto l = loss();
    l.backward();
    at::NoGradGuard no_grad;
    for (auto *p : {&w1, &b1, &w2, &b2}) {
      p->add_(p->grad(), -lr);
      p->mutable_grad().reset();
    }
    return l;
  }
  void run(int64_t iters) override {
    for (int64_t k = 0; k < iters; k++) sink = step();
  }
  std::unique_ptr<MLP> fresh() const {
    return std::make_unique<MLP>(x.size(1), w1.size(0), w2.size(0), x.size(0));
  }
  // The initial loss: equal on both sides when data and weights are the same.
  double check() override { return fresh()->loss().item<double>(); }
  std::vector<double> losses(int64_t steps) override {
    auto m = fresh();
    std::vector<double> out;
    for (int64_t k = 0; k < steps; k++) out.push_back(m->step().item<double>());
    return out;
  }
};

// The tensors of a file written by bridge.SaveNamed (torch::jit::pickle_save of a dict).
std::map<std::string, at::Tensor> load_named(const std::string &path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("cannot open " + path);
  std::vector<char> bytes((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  auto v = torch::jit::pickle_load(bytes);
  if (!v.isGenericDict()) throw std::runtime_error(path + ": not a dict of tensors");
  std::map<std::string, at::Tensor> out;
  for (const auto &kv : v.toGenericDict()) {
    if (!kv.key().isString() || !kv.value().isTensor())
      throw std::runtime_error(path + ": not a flat dict of named tensors");
    out[kv.key().toStringRef()] = kv.value().toTensor();
  }
  return out;
}

// models.SmallCNN (bench/workload.CNN) written with ATen's functional ops:
//   conv3x3(C→16) BN ReLU maxpool2 · conv3x3(16→32) BN ReLU maxpool2 · conv3x3(32→64) ReLU
//   adaptive-avg-pool 1 · flatten · linear(64→classes); cross-entropy; SGD with grads set to none.
// Batch norm runs in training mode: batch statistics, running statistics updated with momentum
// 0.1 and num_batches_tracked incremented, as nn.BatchNorm2d (Go and PyTorch) does.
struct CNN : Workload {
  static constexpr double kLR = 0.05; // workload.CNNSmall.LR
  std::map<std::string, at::Tensor> init; // as loaded, never trained
  at::Tensor x, y;
  at::Tensor c1w, c1b, c2w, c2b, c3w, c3b, fcw, fcb;  // parameters
  at::Tensor n1w, n1b, n2w, n2b;                      // batch-norm affine parameters
  at::Tensor n1m, n1v, n1t, n2m, n2v, n2t;            // running mean, var, num_batches_tracked
  std::vector<at::Tensor *> params;

  explicit CNN(std::map<std::string, at::Tensor> saved) : init(std::move(saved)) {
    auto get = [&](const std::string &k, bool param) {
      auto it = init.find(k);
      if (it == init.end()) throw std::runtime_error("cnn: the saved file has no " + k);
      auto t = it->second.clone();
      return param ? t.set_requires_grad(true) : t;
    };
    x = get("x", false);
    y = get("y", false);
    c1w = get("features.0.weight", true), c1b = get("features.0.bias", true);
    n1w = get("features.1.weight", true), n1b = get("features.1.bias", true);
    n1m = get("features.1.running_mean", false), n1v = get("features.1.running_var", false);
    n1t = get("features.1.num_batches_tracked", false);
    c2w = get("features.4.weight", true), c2b = get("features.4.bias", true);
    n2w = get("features.5.weight", true), n2b = get("features.5.bias", true);
    n2m = get("features.5.running_mean", false), n2v = get("features.5.running_var", false);
    n2t = get("features.5.num_batches_tracked", false);
    c3w = get("features.8.weight", true), c3b = get("features.8.bias", true);
    fcw = get("classifier.1.weight", true), fcb = get("classifier.1.bias", true);
    // nn.Module.parameters() order, as the other sides update them.
    params = {&c1w, &c1b, &n1w, &n1b, &c2w, &c2b, &n2w, &n2b, &c3w, &c3b, &fcw, &fcb};
  }
  static at::Tensor bn(const at::Tensor &h, const at::Tensor &w, const at::Tensor &b,
                       const at::Tensor &mean, const at::Tensor &var, at::Tensor &tracked) {
    {
      at::NoGradGuard no_grad;
      tracked.add_(1);
    }
    return at::batch_norm(h, w, b, mean, var, /*training=*/true, /*momentum=*/0.1, /*eps=*/1e-5,
                          /*cudnn_enabled=*/true);
  }
  at::Tensor loss() {
    auto h = at::conv2d(x, c1w, c1b, {1, 1}, {1, 1});
    h = at::max_pool2d(at::relu(bn(h, n1w, n1b, n1m, n1v, n1t)), {2, 2}, {2, 2});
    h = at::conv2d(h, c2w, c2b, {1, 1}, {1, 1});
    h = at::max_pool2d(at::relu(bn(h, n2w, n2b, n2m, n2v, n2t)), {2, 2}, {2, 2});
    h = at::relu(at::conv2d(h, c3w, c3b, {1, 1}, {1, 1}));
    h = at::adaptive_avg_pool2d(h, {1, 1}).flatten(1);
    return at::cross_entropy_loss(at::linear(h, fcw, fcb), y);
  }
  at::Tensor step() {
    auto l = loss();
    l.backward();
    at::NoGradGuard no_grad;
    for (auto *p : params) {
      p->add_(p->grad(), -kLR);
      p->mutable_grad().reset();
    }
    return l;
  }
  void run(int64_t iters) override {
    for (int64_t k = 0; k < iters; k++) sink = step();
  }
  double check() override { return CNN(init).loss().item<double>(); }
  std::vector<double> losses(int64_t steps) override {
    CNN m(init);
    std::vector<double> out;
    for (int64_t k = 0; k < steps; k++) out.push_back(m.step().item<double>());
    return out;
  }
};

// examples/gpt's character-level GPT (bench/workload.GPT) in ATen functional ops, op for op as
// the Go model runs them: embeddings, pre-norm blocks of causal self-attention (c_attn, chunk,
// heads split, bmm, scale, mask = !tril(ones), masked_fill -inf, softmax, bmm, c_proj) and a GELU
// MLP, ln_f, lm_head; mean cross-entropy over every position; the gradients' total 2-norm
// clipped to 1 as torch.nn.utils.clip_grad_norm_ does; then AdamW as torch.optim.AdamW's
// single-tensor path (1.13) does, weight decay 0.1 on the matrices and 0 on the rest.
struct GPT : Workload {
  static constexpr double kLR = 3e-3, kWD = 0.1, kClip = 1.0; // workload.GPTSmall
  static constexpr double kBeta1 = 0.9, kBeta2 = 0.999, kEps = 1e-8;
  std::map<std::string, at::Tensor> init; // as loaded, never trained
  at::Tensor x, y;
  int64_t heads = 0, layers = 0;
  std::map<std::string, at::Tensor> p; // parameters by name
  std::vector<at::Tensor *> params;    // in the Go model's parameter order
  struct State {
    at::Tensor exp_avg, exp_avg_sq;
    double step = 0;
  };
  std::vector<State> state;

  explicit GPT(std::map<std::string, at::Tensor> saved) : init(std::move(saved)) {
    auto get = [&](const std::string &k) {
      auto it = init.find(k);
      if (it == init.end()) throw std::runtime_error("gpt: the saved file has no " + k);
      return it->second;
    };
    x = get("x").clone();
    y = get("y").clone();
    heads = get("n_head").item<int64_t>();
    while (init.count("transformer.h." + std::to_string(layers) + ".ln_1.weight")) layers++;
    std::vector<std::string> names = {"transformer.wte.weight", "transformer.wpe.weight"};
    for (int64_t l = 0; l < layers; l++) {
      auto h = "transformer.h." + std::to_string(l) + ".";
      for (auto n : {"ln_1", "attn.c_attn", "attn.c_proj", "ln_2", "mlp.c_fc", "mlp.c_proj"}) {
        names.push_back(h + n + ".weight");
        names.push_back(h + n + ".bias");
      }
    }
    for (auto n : {"transformer.ln_f.weight", "transformer.ln_f.bias", "lm_head.weight", "lm_head.bias"})
      names.push_back(n);
    for (const auto &n : names) p[n] = get(n).clone().set_requires_grad(true);
    for (const auto &n : names) params.push_back(&p[n]);
    state.resize(params.size());
  }
  const at::Tensor &P(const std::string &n) { return p.at(n); }
  at::Tensor ln(const at::Tensor &h, const std::string &n) {
    return at::layer_norm(h, {h.size(-1)}, P(n + ".weight"), P(n + ".bias"), 1e-5, true);
  }
  at::Tensor lin(const at::Tensor &h, const std::string &n) {
    return at::linear(h, P(n + ".weight"), P(n + ".bias"));
  }
  at::Tensor attn(const at::Tensor &h, const std::string &n) {
    int64_t B = h.size(0), T = h.size(1), C = h.size(2), H = heads, hd = C / H;
    auto qkv = at::chunk(lin(h, n + ".c_attn"), 3, 2);
    auto split = [&](const at::Tensor &z) { return z.view({B, T, H, hd}).transpose(1, 2).reshape({B * H, T, hd}); };
    auto q = split(qkv[0]), k = split(qkv[1]), v = split(qkv[2]);
    auto att = at::bmm(q, k.transpose(1, 2)) * (1.0 / std::sqrt(static_cast<double>(hd)));
    auto mask = at::logical_not(at::tril(at::ones({T, T}, at::kBool)));
    att = at::softmax(at::masked_fill(att, mask, -std::numeric_limits<double>::infinity()), -1);
    att = at::dropout(att.view({B, H, T, T}).view({B * H, T, T}), 0.0, true);
    auto out = at::bmm(att, v).view({B, H, T, hd}).transpose(1, 2).reshape({B, T, C});
    return at::dropout(lin(out, n + ".c_proj"), 0.0, true);
  }
  at::Tensor logits() {
    auto pos = at::arange(x.size(1), at::kLong);
    auto h = at::embedding(P("transformer.wte.weight"), x) + at::embedding(P("transformer.wpe.weight"), pos);
    h = at::dropout(h, 0.0, true);
    for (int64_t l = 0; l < layers; l++) {
      auto b = "transformer.h." + std::to_string(l);
      h = h + attn(ln(h, b + ".ln_1"), b + ".attn");
      h = h + at::dropout(lin(at::gelu(lin(ln(h, b + ".ln_2"), b + ".mlp.c_fc")), b + ".mlp.c_proj"), 0.0, true);
    }
    return lin(ln(h, "transformer.ln_f"), "lm_head");
  }
  at::Tensor loss() {
    auto l = logits();
    return at::cross_entropy_loss(l.view({-1, l.size(-1)}), y.view({-1}));
  }
  // torch.nn.utils.clip_grad_norm_(params, kClip): returns the total norm.
  double clip() {
    at::NoGradGuard no_grad;
    std::vector<at::Tensor> grads, norms;
    for (auto *t : params)
      if (t->grad().defined()) grads.push_back(t->grad());
    for (auto &g : grads) norms.push_back(at::norm(g, 2));
    auto total = at::norm(at::stack(norms), 2);
    auto coef = at::clamp(kClip / (total + 1e-6), c10::nullopt, 1.0);
    for (auto &g : grads) g.mul_(coef);
    return total.item<double>();
  }
  void adamw() {
    at::NoGradGuard no_grad;
    for (size_t i = 0; i < params.size(); i++) {
      auto &t = *params[i];
      auto g = t.grad();
      if (!g.defined()) continue;
      auto &s = state[i];
      if (!s.exp_avg.defined()) s.exp_avg = at::zeros_like(t), s.exp_avg_sq = at::zeros_like(t);
      s.step += 1;
      double wd = t.dim() >= 2 ? kWD : 0.0;
      t.mul_(1 - kLR * wd);
      s.exp_avg.mul_(kBeta1).add_(g, 1 - kBeta1);
      s.exp_avg_sq.mul_(kBeta2).addcmul_(g, g, 1 - kBeta2);
      double bc1 = 1 - std::pow(kBeta1, s.step), bc2 = 1 - std::pow(kBeta2, s.step);
      auto denom = (s.exp_avg_sq.sqrt() / std::sqrt(bc2)).add_(kEps);
      t.addcdiv_(s.exp_avg, denom, -kLR / bc1);
    }
  }
  at::Tensor step() {
    auto l = loss();
    for (auto *t : params) t->mutable_grad().reset(); // zero_grad(set_to_none=True)
    l.backward();
    clip();
    adamw();
    return l;
  }
  void run(int64_t iters) override {
    for (int64_t k = 0; k < iters; k++) sink = step();
  }
  double check() override { return GPT(init).loss().item<double>(); }
  std::vector<double> losses(int64_t steps) override {
    GPT m(init);
    std::vector<double> out;
    for (int64_t k = 0; k < steps; k++) out.push_back(m.step().item<double>());
    return out;
  }
};

std::unique_ptr<Workload> make(const std::string &mode) {
  if (mode == "mlp") return std::make_unique<MLP>(784, 256, 10, 64);
  if (mode == "mlp-tiny") return std::make_unique<MLP>(32, 64, 10, 16);
  return make_op(mode);
}

std::string json_str(const std::string &s) {
  std::string o = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') o += '\\';
    if (static_cast<unsigned char>(c) < 0x20) continue;
    o += c;
  }
  return o + "\"";
}

// Shared libraries with "blas" in their name mapped into this process.
std::vector<std::string> mapped_blas() {
  std::ifstream maps("/proc/self/maps");
  std::set<std::string> seen;
  std::vector<std::string> out;
  std::string line;
  while (std::getline(maps, line)) {
    auto slash = line.find('/');
    if (slash == std::string::npos) continue;
    std::string path = line.substr(slash);
    auto base = path.substr(path.rfind('/') + 1);
    if (base.find("blas") == std::string::npos) continue;
    if (seen.insert(path).second) out.push_back(path);
  }
  return out;
}

class Runner {
public:
  // Returns the JSON answer to one command, or "" to stop.
  std::string handle(const std::string &line) {
    std::istringstream in(line);
    std::string cmd, mode;
    in >> cmd;
    if (cmd.empty() || cmd == "quit") return "";
    if (cmd == "info") return info();
    in >> mode;
    if (cmd == "load") {
      std::string path;
      std::getline(in >> std::ws, path);
      if ((mode != "cnn" && mode != "gpt") || path.empty()) return error(json_str("usage: load cnn|gpt PATH"));
      if (mode == "cnn")
        state_[mode] = std::make_unique<CNN>(load_named(path));
      else
        state_[mode] = std::make_unique<GPT>(load_named(path));
      return "{\"mode\":" + json_str(mode) + ",\"loaded\":" + json_str(path) + "}";
    }
    if ((mode == "cnn" || mode == "gpt") && state_.count(mode) == 0)
      return error(json_str("mode " + mode + " needs its inputs first: load " + mode + " PATH"));
    Workload *w = get(mode);
    if (w == nullptr) return error("unknown mode " + json_str(mode));
    std::ostringstream o;
    o.precision(17);
    if (cmd == "check") {
      o << "{\"mode\":" << json_str(mode) << ",\"check\":" << w->check();
      int64_t steps = 0;
      if (in >> steps) {
        auto ls = w->losses(steps);
        if (ls.empty()) return error(json_str("mode " + mode + " does not train"));
        o << ",\"losses\":[";
        for (size_t k = 0; k < ls.size(); k++) o << (k ? "," : "") << ls[k];
        o << "]";
      }
      o << "}";
      return o.str();
    }
    if (cmd == "run" || cmd == "instr") {
      int64_t iters = 0;
      std::string label;
      in >> iters;
      if (iters <= 0) return error(json_str(cmd + " needs a positive iteration count"));
      if (cmd == "instr" && !(in >> label)) return error(json_str("usage: instr MODE ITERS LABEL"));
      if (cmd == "instr" && !hc_callgrind_available())
        return error(json_str("instr: ref was built without valgrind's headers (valgrind/callgrind.h)"));
      if (cmd == "instr" && !hc_callgrind_running())
        return error(json_str("instr: not running under valgrind"));
      auto t0 = std::chrono::steady_clock::now();
      if (cmd == "instr") {
        hc_callgrind_begin();
        w->run(iters);
        hc_callgrind_end(label.c_str());
      } else {
        w->run(iters);
      }
      auto t1 = std::chrono::steady_clock::now();
      double s = std::chrono::duration<double>(t1 - t0).count();
      o << "{\"mode\":" << json_str(mode) << ",\"iters\":" << iters << ",\"seconds\":" << s << "}";
      return o.str();
    }
    return error("unknown command " + json_str(cmd));
  }

private:
  std::map<std::string, std::unique_ptr<Workload>> state_;

  Workload *get(const std::string &mode) {
    auto it = state_.find(mode);
    if (it != state_.end()) return it->second.get();
    auto w = make(mode);
    if (!w) return nullptr;
    return (state_[mode] = std::move(w)).get();
  }
  static std::string error(const std::string &msg_json) { return "{\"error\":" + msg_json + "}"; }
  static std::string info() {
    std::ostringstream o;
    o << "{\"torch\":" << json_str(TORCH_VERSION) << ",\"threads\":" << at::get_num_threads()
      << ",\"blas\":[";
    auto libs = mapped_blas();
    for (size_t k = 0; k < libs.size(); k++) o << (k ? "," : "") << json_str(libs[k]);
    o << "]}";
    return o.str();
  }
};

} // namespace

int main(int argc, char **argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  int threads = 1;
  if (args.size() >= 2 && args[0] == "-threads") {
    threads = std::atoi(args[1].c_str());
    args.erase(args.begin(), args.begin() + 2);
  }
  if (threads > 0) at::set_num_threads(threads);
  Runner r;
  try {
    if (args.size() == 1 && args[0] == "serve") {
      std::string line;
      while (std::getline(std::cin, line)) {
        std::string out;
        try {
          out = r.handle(line);
        } catch (const std::exception &e) { // answer, do not die: the harness reports it
          out = "{\"error\":" + json_str(e.what()) + "}";
        }
        if (out.empty()) break;
        std::cout << out << std::endl; // flush: the harness waits for each line
      }
      return 0;
    }
    if (args.size() == 2) {
      std::cout << r.handle("run " + args[0] + " " + args[1]) << std::endl;
      return 0;
    }
    if (args.size() == 3 && (args[0] == "cnn" || args[0] == "gpt")) { // ref cnn|gpt PATH ITERS
      std::cout << r.handle("load " + args[0] + " " + args[1]) << std::endl;
      std::cout << r.handle("run " + args[0] + " " + args[2]) << std::endl;
      return 0;
    }
  } catch (const std::exception &e) {
    std::cout << "{\"error\":" << json_str(e.what()) << "}" << std::endl;
    return 1;
  }
  std::cerr << "usage: ref [-threads N] MODE ITERS | ref [-threads N] cnn|gpt PATH ITERS | "
               "ref [-threads N] serve\n";
  return 2;
}
