// The C++ twin of BenchmarkStepMLP: optimizer steps over a 784-256-10 MLP's parameters, timed
// in C++ against libtorch. Build and run with step_ref.sh.
//
//   adam-libtorch   torch::optim::Adam (libtorch's own C++ optimizer)
//   adam-same-ops   the ATen calls package optim makes for one Adam step, from C++
//   adamw-libtorch  torch::optim::AdamW, weight decay 1e-2
//   sgd-libtorch    torch::optim::SGD, momentum 0.9
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <vector>

static std::vector<torch::Tensor> mlp_params() {
  torch::manual_seed(0);
  std::vector<std::vector<int64_t>> shapes = {{256, 784}, {256}, {10, 256}, {10}};
  std::vector<torch::Tensor> ps;
  for (auto& s : shapes) {
    auto p = (torch::randn(s) * 0.01).set_requires_grad(true);
    p.mutable_grad() = torch::randn(s);
    ps.push_back(p);
  }
  return ps;
}

// median microseconds per call of f over rounds of n calls, after a warm-up
static double time_us(const std::function<void()>& f, int n, int rounds) {
  for (int i = 0; i < n / 4; i++) f();
  std::vector<double> us;
  for (int r = 0; r < rounds; r++) {
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < n; i++) f();
    auto t1 = std::chrono::steady_clock::now();
    us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count() / n);
  }
  std::sort(us.begin(), us.end());
  return us[us.size() / 2];
}

int main(int argc, char** argv) {
  int threads = argc > 1 ? std::atoi(argv[1]) : 1;
  int n = argc > 2 ? std::atoi(argv[2]) : 2000;
  at::set_num_threads(threads);
  const int rounds = 7;

  {
    auto ps = mlp_params();
    torch::optim::Adam opt(ps, torch::optim::AdamOptions(1e-3));
    std::printf("adam-libtorch   threads=%d  %8.1f us/step\n", threads, time_us([&] { opt.step(); }, n, rounds));
  }
  {
    auto ps = mlp_params();
    std::vector<torch::Tensor> m, v;
    std::vector<int64_t> steps(ps.size(), 0);
    for (auto& p : ps) {
      m.push_back(torch::zeros_like(p));
      v.push_back(torch::zeros_like(p));
    }
    const double lr = 1e-3, b1 = 0.9, b2 = 0.999, eps = 1e-8;
    auto step = [&] {
      torch::NoGradGuard no_grad;
      for (size_t i = 0; i < ps.size(); i++) {
        auto g = ps[i].grad();
        steps[i]++;
        m[i].mul_(b1).add_(g, 1 - b1);
        v[i].mul_(b2).addcmul_(g, g, 1 - b2);
        double bc1 = 1 - std::pow(b1, (double)steps[i]);
        double bc2 = 1 - std::pow(b2, (double)steps[i]);
        auto denom = v[i].sqrt();
        denom.div_(std::sqrt(bc2)).add_(eps);
        ps[i].addcdiv_(m[i], denom, -lr / bc1);
      }
    };
    std::printf("adam-same-ops   threads=%d  %8.1f us/step\n", threads, time_us(step, n, rounds));
  }
  {
    auto ps = mlp_params();
    torch::optim::AdamW opt(ps, torch::optim::AdamWOptions(1e-3).weight_decay(1e-2));
    std::printf("adamw-libtorch  threads=%d  %8.1f us/step\n", threads, time_us([&] { opt.step(); }, n, rounds));
  }
  {
    auto ps = mlp_params();
    torch::optim::SGD opt(ps, torch::optim::SGDOptions(0.01).momentum(0.9));
    std::printf("sgd-libtorch    threads=%d  %8.1f us/step\n", threads, time_us([&] { opt.step(); }, n, rounds));
  }
  return 0;
}
