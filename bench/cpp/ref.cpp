// ref: the C++ reference for bench/cmd/benchrun. It runs the same workloads as the Go side
// (bench/workload) directly on ATen, so that the difference measures the bridge.
//
// Usage:
//   ref [-threads N] MODE ITERS   run MODE ITERS times after building its state, print one JSON line
//   ref [-threads N] serve        read commands from stdin, one per line, answer one JSON line each:
//                                   run MODE ITERS   -> {"mode":..,"iters":..,"seconds":..}
//                                   check MODE       -> {"mode":..,"check":<value>}
//                                   info             -> {"torch":..,"threads":..,"blas":[..]}
//                                   quit
// Modes: add (two [4] tensors), relu ([64]), matmul ([8x8]·[8x8]), sum ([16]),
//        mlp (784-256-10, batch 64), mlp-tiny (32-64-10, batch 16).
// State (inputs, weights) is built once per mode with a fixed seed, exactly as the Go side
// builds it, and kept across runs: an MLP keeps training from one run to the next.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/version.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <iostream>
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
  void step() {
    auto l = loss();
    l.backward();
    at::NoGradGuard no_grad;
    for (auto *p : {&w1, &b1, &w2, &b2}) {
      p->add_(p->grad(), -lr);
      p->mutable_grad().reset();
    }
    sink = l;
  }
  void run(int64_t iters) override {
    for (int64_t k = 0; k < iters; k++) step();
  }
  // The initial loss: equal on both sides when data and weights are the same.
  double check() override {
    MLP fresh(x.size(1), w1.size(0), w2.size(0), x.size(0));
    return fresh.loss().item<double>();
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
    Workload *w = get(mode);
    if (w == nullptr) return error("unknown mode " + json_str(mode));
    std::ostringstream o;
    o.precision(17);
    if (cmd == "check") {
      o << "{\"mode\":" << json_str(mode) << ",\"check\":" << w->check() << "}";
      return o.str();
    }
    if (cmd == "run") {
      int64_t iters = 0;
      in >> iters;
      if (iters <= 0) return error("run needs a positive iteration count");
      auto t0 = std::chrono::steady_clock::now();
      w->run(iters);
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
        std::string out = r.handle(line);
        if (out.empty()) break;
        std::cout << out << std::endl; // flush: the harness waits for each line
      }
      return 0;
    }
    if (args.size() == 2) {
      std::cout << r.handle("run " + args[0] + " " + args[1]) << std::endl;
      return 0;
    }
  } catch (const std::exception &e) {
    std::cout << "{\"error\":" << json_str(e.what()) << "}" << std::endl;
    return 1;
  }
  std::cerr << "usage: ref [-threads N] MODE ITERS | ref [-threads N] serve\n";
  return 2;
}
