// Distributed training on torch.distributed's c10d: the TCPStore, process groups (Gloo; NCCL in
// CUDA builds), collectives with bounded waits, and DDP's c10d::Reducer (gradients averaged in
// buckets while the backward pass runs). The calls and their contracts are in hotcb_torch.h.
//
// Across libtorch versions: in 1.13 ProcessGroupGloo is a ProcessGroup; from 2.0 it is a Backend
// that a ProcessGroup dispatches to, and the Reducer's constructor changed twice (make_reducer).
//
// The c10d headers that need a backend's own headers are guarded by USE_C10D_GLOO and
// USE_C10D_NCCL, which libtorch's own build defines: this file defines them for what it uses.
// Gloo's headers come with Debian's libgloo-dev; a libtorch without them (some binary
// distributions) still builds the shim, whose Gloo groups then fail saying why.
#if __has_include(<gloo/algorithm.h>)
#define HOTCB_HAVE_GLOO 1
#define USE_C10D_GLOO 1
#endif
#ifdef HOTCB_WITH_CUDA
#define USE_C10D_NCCL 1
#endif

#include <torch/csrc/api/include/torch/version.h>
#include <torch/csrc/autograd/grad_mode.h>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#ifdef HOTCB_HAVE_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/csrc/distributed/c10d/comm.hpp>
#include <torch/csrc/distributed/c10d/logger.hpp>
#include <torch/csrc/distributed/c10d/reducer.hpp>
#ifdef HOTCB_WITH_CUDA
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <mutex>
#include <sstream>
#include <string>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "internal.h"

using ms = std::chrono::milliseconds;

struct hc_store_s {
  c10::intrusive_ptr<c10d::Store> store;
  int rank;
  int world;
  int port;
};

struct hc_pg_s {
  c10::intrusive_ptr<c10d::ProcessGroup> pg;
  c10::intrusive_ptr<c10d::Store> store; // kept alive with the group
  std::string backend;
  int rank;
  int world;
  ms timeout;
};

struct hc_ddp_s {
  c10d::Reducer *reducer = nullptr; // raw: ~Reducer is noexcept(false), freed under a try
  // DDP's Logger over the Reducer (through a shared_ptr that does not own it): it measures the
  // iterations. Raw for the same reason; freed before the Reducer, which its destructor reads.
  c10d::Logger *logger = nullptr;
  c10::intrusive_ptr<c10d::ProcessGroup> pg;
  std::vector<at::Tensor> params;
  int rank;
  int world;
  ms timeout;

  std::mutex stats_mu; // stats and stats_err: hc_ddp_stats may run on another thread
  int64_t stats[HC_DDP_NSTATS] = {};
  std::string stats_err; // why measuring stopped
  int32_t stats_every = 1;
};

namespace {

std::string fmt_timeout(ms t) {
  auto n = t.count();
  std::ostringstream o;
  if (n % 1000 == 0) o << n / 1000 << "s";
  else o << n << "ms";
  return o.str();
}

std::string what_of(const std::exception &e) {
  if (auto *ce = dynamic_cast<const c10::Error *>(&e)) return ce->what_without_backtrace();
  return e.what();
}

// Runs f; an exception becomes an hc_err that starts with the operation, the rank and the timeout.
template <class F> hc_err with_context(const std::string &op, int rank, int world, ms timeout, F &&f) {
  return hc::guard([&] {
    try {
      f();
    } catch (const std::exception &e) {
      std::ostringstream o;
      o << op << " on rank " << rank << " of " << world << " failed (timeout " << fmt_timeout(timeout)
        << "): " << what_of(e);
      throw std::runtime_error(o.str());
    }
  });
}

ms timeout_of(const hc_pg_s *g, int64_t timeout_ms) { return timeout_ms > 0 ? ms(timeout_ms) : g->timeout; }

// Waits for a collective's work, at most timeout: Work::wait throws on a timeout and rethrows the
// backend's error (a peer that closed its connection, Gloo's own timeout).
void wait_work(const c10::intrusive_ptr<c10d::Work> &w, ms timeout) { w->wait(timeout); }

c10d::ReduceOp reduce_op(int32_t op) {
  switch (op) {
  case HC_RED_SUM:
  case HC_RED_AVG: return c10d::ReduceOp::SUM;
  case HC_RED_MIN: return c10d::ReduceOp::MIN;
  case HC_RED_MAX: return c10d::ReduceOp::MAX;
  case HC_RED_PRODUCT: return c10d::ReduceOp::PRODUCT;
  }
  throw std::invalid_argument("unknown reduction " + std::to_string(op));
}

const char *reduce_name(int32_t op) {
  switch (op) {
  case HC_RED_SUM: return "sum";
  case HC_RED_AVG: return "avg";
  case HC_RED_MIN: return "min";
  case HC_RED_MAX: return "max";
  case HC_RED_PRODUCT: return "product";
  }
  return "?";
}

// The Reducer's constructor: 1.13 to 2.x take per-bucket size limits after the bucket indices;
// later versions dropped them and added flags (left at their defaults) at the end.
template <class R = c10d::Reducer>
R *make_reducer(std::vector<at::Tensor> params, std::vector<std::vector<size_t>> buckets,
                std::vector<size_t> limits, c10::intrusive_ptr<c10d::ProcessGroup> pg, std::vector<bool> sparse,
                int64_t cap, bool find_unused, std::unordered_map<size_t, std::string> names, int64_t first) {
  if constexpr (std::is_constructible_v<R, std::vector<at::Tensor>, std::vector<std::vector<size_t>>,
                                        std::vector<size_t>, c10::intrusive_ptr<c10d::ProcessGroup>,
                                        std::vector<bool>, int64_t, bool, bool,
                                        std::unordered_map<size_t, std::string>, int64_t>) {
    return new R(std::move(params), std::move(buckets), std::move(limits), std::move(pg), std::move(sparse), cap,
                 find_unused, /*gradient_as_bucket_view=*/false, std::move(names), first);
  } else {
    return new R(std::move(params), std::move(buckets), std::move(pg), std::move(sparse), cap, find_unused,
                 /*gradient_as_bucket_view=*/false, std::move(names), first,
                 /*skip_all_reduce_unused_params=*/false, /*use_python_reducer=*/false,
                 /*bucket_bytes_cap_list=*/std::vector<int64_t>{});
  }
}

#ifdef HOTCB_HAVE_GLOO
std::shared_ptr<::gloo::transport::Device> gloo_device(const std::string &device) {
  if (device.empty()) return c10d::ProcessGroupGloo::createDefaultDevice();
  if (device.rfind("if:", 0) == 0) return c10d::ProcessGroupGloo::createDeviceForInterface(device.substr(3));
  return c10d::ProcessGroupGloo::createDeviceForHostname(device);
}

c10::intrusive_ptr<c10d::ProcessGroup> new_gloo(const c10::intrusive_ptr<c10d::Store> &store, const std::string &device,
                                                int rank, int world, ms timeout) {
  auto opts = c10d::ProcessGroupGloo::Options::create(timeout);
  opts->devices.push_back(gloo_device(device));
  opts->threads = 2; // what torch.distributed gives one device
  auto gloo = c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, world, opts);
#if TORCH_VERSION_MAJOR >= 2
  auto pg = c10::make_intrusive<c10d::ProcessGroup>(store, rank, world);
  pg->setDefaultBackend(c10d::ProcessGroup::BackendType::GLOO);
  pg->setBackend(c10::DeviceType::CPU, c10d::ProcessGroup::BackendType::GLOO, gloo);
  return pg;
#else
  return gloo;
#endif
}
#else
c10::intrusive_ptr<c10d::ProcessGroup> new_gloo(const c10::intrusive_ptr<c10d::Store> &, const std::string &, int, int,
                                                ms) {
  throw std::runtime_error("this shim was built without Gloo's headers (gloo/*.h; Debian: libgloo-dev), so it has "
                           "no gloo backend: rebuild it with them");
}
#endif

c10::intrusive_ptr<c10d::ProcessGroup> new_nccl(const c10::intrusive_ptr<c10d::Store> &store, int rank, int world,
                                                ms timeout) {
#ifdef HOTCB_WITH_CUDA
  auto opts = c10d::ProcessGroupNCCL::Options::create();
  opts->timeout = timeout;
  auto nccl = c10::make_intrusive<c10d::ProcessGroupNCCL>(store, rank, world, opts);
#if TORCH_VERSION_MAJOR >= 2
  auto pg = c10::make_intrusive<c10d::ProcessGroup>(store, rank, world);
  pg->setDefaultBackend(c10d::ProcessGroup::BackendType::NCCL);
  pg->setBackend(c10::DeviceType::CUDA, c10d::ProcessGroup::BackendType::NCCL, nccl);
  return pg;
#else
  return nccl;
#endif
#else
  (void)store, (void)rank, (void)world, (void)timeout;
  throw std::runtime_error("the nccl backend needs a CUDA build of the shim (make WITH_CUDA=1); this one is CPU-only: use gloo");
#endif
}

std::vector<std::string> key_list(const char *const *keys, int32_t n) {
  std::vector<std::string> out;
  for (int32_t k = 0; k < n; k++) out.emplace_back(keys[k]);
  return out;
}

std::string store_ctx(const hc_store_s *s) {
  return "store (rank " + std::to_string(s->rank) + " of " + std::to_string(s->world) + ")";
}

// Runs f on a store; an error names the call, the key(s) and the rank.
template <class F> hc_err store_guard(const hc_store_s *s, const std::string &what, F &&f) {
  return hc::guard([&] {
    try {
      f();
    } catch (const std::exception &e) {
      throw std::runtime_error(what + " on " + store_ctx(s) + " failed: " + what_of(e));
    }
  });
}

// Has the Logger measure the iteration that ended (PyTorch's DistributedDataParallel.forward
// calls set_runtime_stats_and_log before prepare_for_forward, with grad enabled) and keeps its
// times. The Logger's ints_map holds the latest measured iteration's durations
// ("backward_comm_time", ...; "avg_..." are running means) and its host timestamps
// ("..._start", "..._end"). A timestamp is left from an earlier iteration when the event did not
// happen in this one (a forward pass with grad whose backward pass never ran): such an iteration
// is not counted. Measuring is auxiliary: if it fails, it stops, and hc_ddp_stats says why.
void measure(hc_ddp_s *d) {
  {
    std::lock_guard<std::mutex> lock(d->stats_mu);
    if (!d->logger || d->stats_every <= 0 || !d->stats_err.empty()) return;
  }
  at::DDPLoggingData data;
  try {
    d->logger->set_runtime_stats_and_log();
    data = d->logger->get_ddp_logging_data();
  } catch (const std::exception &e) {
    std::lock_guard<std::mutex> lock(d->stats_mu);
    d->stats_err = "measuring DDP iterations failed (no more are measured): " + what_of(e);
    return;
  }
  const auto &m = data.ints_map;
  auto get = [&](const char *k) -> int64_t {
    auto it = m.find(k);
    return it == m.end() ? 0 : it->second;
  };
  std::lock_guard<std::mutex> lock(d->stats_mu);
  int64_t it = get("iteration");
  if (it <= d->stats[HC_DDP_ITERATION]) return; // not sampled, or no iteration yet
  d->stats[HC_DDP_ITERATION] = it;
  int64_t fwd = get("forward_compute_time_start"), bwd0 = get("backward_compute_time_start"),
          bwd1 = get("backward_compute_time_end"), comm0 = get("backward_comm_time_start"),
          comm1 = get("backward_comm_time_end");
  bool backward = fwd > 0 && bwd0 >= fwd && bwd1 >= bwd0;
  bool comm = backward && comm0 >= fwd && comm1 >= comm0;
  int64_t fwd_ns = get("forward_compute_time"), bwd_ns = backward ? get("backward_compute_time") : 0;
  int64_t comm_ns = comm ? get("backward_comm_time") : 0;
  int64_t overlap_ns = comm ? get("backward_compute_comm_overlap_time") : 0;
  d->stats[HC_DDP_FORWARD_NS] = fwd_ns;
  d->stats[HC_DDP_BACKWARD_COMPUTE_NS] = bwd_ns;
  d->stats[HC_DDP_BACKWARD_COMM_NS] = comm_ns;
  d->stats[HC_DDP_OVERLAP_NS] = overlap_ns;
  // The overlap runs from the first all-reduce's start to the last gradient; what is left of the
  // communication after it is the backward pass waiting for the all-reduce.
  int64_t wait = std::max<int64_t>(0, comm_ns - overlap_ns);
  d->stats[HC_DDP_WAIT_NS] = wait;
  if (!backward) return;
  d->stats[HC_DDP_MEASURED]++;
  d->stats[HC_DDP_TOTAL_WAIT_NS] += wait;
  d->stats[HC_DDP_TOTAL_COMM_NS] += comm_ns;
}

} // namespace

extern "C" {

hc_err hc_store_new(const char *host, int32_t port, int32_t rank, int32_t world_size, int64_t timeout_ms,
                    hc_store *out) {
  return hc::guard([&] {
    if (world_size < 1 || rank < 0 || rank >= world_size)
      throw std::invalid_argument("rank " + std::to_string(rank) + " is not in a world of " +
                                  std::to_string(world_size));
    if (port < 0 || port > 65535) throw std::invalid_argument("port " + std::to_string(port) + " is out of range");
    if (timeout_ms <= 0) throw std::invalid_argument("the timeout must be positive");
    c10d::TCPStoreOptions o;
    o.port = static_cast<std::uint16_t>(port);
    o.isServer = rank == 0;
    o.numWorkers = static_cast<std::size_t>(world_size);
    // TCPStore's own wait for workers (1.13) gives up silently at the timeout: count the ranks
    // ourselves, so that every rank returns once all have joined or fails saying how many did.
    o.waitWorkers = false;
    o.timeout = ms(timeout_ms);
    std::string h = host ? host : "127.0.0.1";
    auto deadline = std::chrono::steady_clock::now() + ms(timeout_ms);
    auto fail = [&](const std::string &why) {
      std::ostringstream m;
      m << "TCP store at " << h << ":" << port << (rank == 0 ? " (serving)" : "") << " on rank " << rank << " of "
        << world_size << " failed (timeout " << fmt_timeout(ms(timeout_ms)) << "): " << why;
      throw std::runtime_error(m.str());
    };
    c10::intrusive_ptr<c10d::TCPStore> st;
    try {
      st = c10::make_intrusive<c10d::TCPStore>(h, o);
    } catch (const std::exception &e) {
      fail(what_of(e));
    }
    const std::string joined = "hotcb/store/joined", all = "hotcb/store/all_joined";
    try {
      if (st->add(joined, 1) >= world_size) st->set(all, {1});
      auto left = std::chrono::duration_cast<ms>(deadline - std::chrono::steady_clock::now());
      st->wait({all}, std::max(left, ms(1)));
    } catch (const std::exception &e) {
      int64_t n = -1;
      try {
        n = st->add(joined, 0);
      } catch (...) {
      }
      if (n >= 0 && n < world_size)
        fail("only " + std::to_string(n) + " of " + std::to_string(world_size) + " ranks joined (" + what_of(e) + ")");
      fail(what_of(e));
    }
    *out = new hc_store_s{st, rank, world_size, static_cast<int>(st->getPort())};
  });
}

void hc_store_free(hc_store s) {
  try {
    delete s;
  } catch (...) {
  }
}

int32_t hc_store_port(hc_store s) { return s->port; }

hc_err hc_store_set(hc_store s, const char *key, const void *value, int64_t n) {
  return store_guard(s, std::string("set(\"") + key + "\")", [&] {
    const auto *p = static_cast<const uint8_t *>(value);
    s->store->set(key, std::vector<uint8_t>(p, p + n));
  });
}

hc_err hc_store_get(hc_store s, const char *key, int64_t timeout_ms, char **value, int64_t *n) {
  return store_guard(s, std::string("get(\"") + key + "\", timeout " + fmt_timeout(ms(timeout_ms)) + ")", [&] {
    if (timeout_ms <= 0) throw std::invalid_argument("the timeout must be positive");
    s->store->wait({key}, ms(timeout_ms));
    auto v = s->store->get(key);
    char *p = static_cast<char *>(std::malloc(v.empty() ? 1 : v.size()));
    if (!p) throw std::bad_alloc();
    if (!v.empty()) std::memcpy(p, v.data(), v.size());
    *value = p;
    *n = static_cast<int64_t>(v.size());
  });
}

hc_err hc_store_add(hc_store s, const char *key, int64_t delta, int64_t *out) {
  return store_guard(s, std::string("add(\"") + key + "\")", [&] { *out = s->store->add(key, delta); });
}

hc_err hc_store_wait(hc_store s, const char *const *keys, int32_t n, int64_t timeout_ms) {
  auto ks = key_list(keys, n);
  std::string what = "wait(";
  for (size_t k = 0; k < ks.size(); k++) what += (k ? ", \"" : "\"") + ks[k] + "\"";
  what += ", timeout " + fmt_timeout(ms(timeout_ms)) + ")";
  return store_guard(s, what, [&] {
    if (timeout_ms <= 0) throw std::invalid_argument("the timeout must be positive");
    s->store->wait(ks, ms(timeout_ms));
  });
}

hc_err hc_store_check(hc_store s, const char *const *keys, int32_t n, int32_t *all_set) {
  return store_guard(s, "check", [&] { *all_set = s->store->check(key_list(keys, n)) ? 1 : 0; });
}

hc_err hc_store_delete(hc_store s, const char *key, int32_t *deleted) {
  return store_guard(s, std::string("delete(\"") + key + "\")",
                     [&] { *deleted = s->store->deleteKey(key) ? 1 : 0; });
}

hc_err hc_pg_new(hc_store s, int32_t backend, const char *name, const char *device, int32_t rank,
                 int32_t world_size, int64_t timeout_ms, hc_pg *out) {
  std::string bname = backend == HC_NCCL ? "nccl" : "gloo";
  return with_context("joining the " + bname + " process group \"" + std::string(name) + "\"", rank, world_size,
                      ms(timeout_ms), [&] {
                        if (backend != HC_GLOO && backend != HC_NCCL)
                          throw std::invalid_argument("unknown backend " + std::to_string(backend));
                        if (rank != s->rank || world_size != s->world)
                          throw std::invalid_argument("the store belongs to rank " + std::to_string(s->rank) +
                                                      " of " + std::to_string(s->world));
                        if (timeout_ms <= 0) throw std::invalid_argument("the timeout must be positive");
                        auto store = c10::make_intrusive<c10d::PrefixStore>(std::string(name), s->store);
                        auto pg = backend == HC_GLOO ? new_gloo(store, device ? device : "", rank, world_size, ms(timeout_ms))
                                                     : new_nccl(store, rank, world_size, ms(timeout_ms));
                        *out = new hc_pg_s{pg, s->store, bname, rank, world_size, ms(timeout_ms)};
                      });
}

void hc_pg_free(hc_pg g) {
  try {
    delete g;
  } catch (...) {
  }
}

hc_err hc_pg_all_reduce(hc_pg g, hc_tensor t, int32_t op, int64_t timeout_ms) {
  ms to = timeout_of(g, timeout_ms);
  return with_context(std::string("all_reduce(") + reduce_name(op) + ")", g->rank, g->world, to, [&] {
    at::NoGradGuard no_grad;
    auto red = reduce_op(op);
    if (op == HC_RED_AVG && !at::isFloatingType(t->t.scalar_type()) && !at::isComplexType(t->t.scalar_type()))
      throw std::invalid_argument(std::string("avg needs a floating-point tensor, not ") +
                                  c10::toString(t->t.scalar_type()));
    std::vector<at::Tensor> ts{t->t.contiguous()};
    c10d::AllreduceOptions o;
    o.reduceOp = red;
    o.timeout = to;
    wait_work(g->pg->allreduce(ts, o), to);
    if (op == HC_RED_AVG) ts[0].div_(g->world);
    if (!ts[0].is_same(t->t)) t->t.copy_(ts[0]);
  });
}

hc_err hc_pg_broadcast(hc_pg g, hc_tensor t, int32_t src, int64_t timeout_ms) {
  ms to = timeout_of(g, timeout_ms);
  return with_context("broadcast(from rank " + std::to_string(src) + ")", g->rank, g->world, to, [&] {
    at::NoGradGuard no_grad;
    if (src < 0 || src >= g->world) throw std::invalid_argument("no rank " + std::to_string(src));
    std::vector<at::Tensor> ts{t->t.contiguous()};
    c10d::BroadcastOptions o;
    o.rootRank = src;
    o.timeout = to;
    wait_work(g->pg->broadcast(ts, o), to);
    if (!ts[0].is_same(t->t)) t->t.copy_(ts[0]);
  });
}

hc_err hc_pg_all_gather(hc_pg g, hc_tensor t, hc_tensor *out, int64_t timeout_ms) {
  ms to = timeout_of(g, timeout_ms);
  return with_context("all_gather", g->rank, g->world, to, [&] {
    at::NoGradGuard no_grad;
    std::vector<at::Tensor> in{t->t.contiguous()};
    std::vector<std::vector<at::Tensor>> outs(1);
    for (int r = 0; r < g->world; r++) outs[0].push_back(at::empty_like(in[0]));
    c10d::AllgatherOptions o;
    o.timeout = to;
    wait_work(g->pg->allgather(outs, in, o), to);
    for (int r = 0; r < g->world; r++) out[r] = hc::wrap(outs[0][r]);
  });
}

hc_err hc_pg_barrier(hc_pg g, int64_t timeout_ms) {
  ms to = timeout_of(g, timeout_ms);
  return with_context("barrier", g->rank, g->world, to, [&] {
    c10d::BarrierOptions o;
    o.timeout = to;
    wait_work(g->pg->barrier(o), to);
  });
}

hc_err hc_pg_broadcast_coalesced(hc_pg g, const hc_tensor *t, int32_t n, int32_t src, int64_t bucket_bytes) {
  return with_context("broadcast_coalesced(from rank " + std::to_string(src) + ")", g->rank, g->world, g->timeout,
                      [&] {
                        at::NoGradGuard no_grad;
                        if (src < 0 || src >= g->world) throw std::invalid_argument("no rank " + std::to_string(src));
                        std::vector<at::Tensor> ts;
                        for (int32_t k = 0; k < n; k++) ts.push_back(t[k]->t);
                        if (ts.empty()) return;
                        // Each bucket's broadcast is bounded by the Gloo timeout the group was made with.
                        c10d::broadcast_coalesced(g->pg, ts, static_cast<size_t>(bucket_bytes), src);
                      });
}

hc_err hc_ddp_new(hc_pg g, const hc_tensor *params, int32_t n, const char *const *names, int64_t bucket_cap_bytes,
                  int64_t first_bucket_bytes, int32_t find_unused, hc_ddp *out) {
  return with_context("DDP construction", g->rank, g->world, g->timeout, [&] {
    if (n < 1) throw std::invalid_argument("the model has no parameter that requires grad");
    if (bucket_cap_bytes <= 0 || first_bucket_bytes <= 0)
      throw std::invalid_argument("bucket sizes must be positive");
    std::vector<at::Tensor> ps;
    std::unordered_map<size_t, std::string> pnames;
    for (int32_t k = 0; k < n; k++) {
      const auto &p = params[k]->t;
      std::string nm = names && names[k] ? names[k] : "parameter " + std::to_string(k);
      if (!p.requires_grad()) throw std::invalid_argument(nm + " does not require grad");
      if (!p.is_leaf()) throw std::invalid_argument(nm + " is not a leaf tensor");
      ps.push_back(p);
      pnames[static_cast<size_t>(k)] = nm;
    }
    // Every rank must hold the same parameters (count, shapes, dtypes): c10d compares each
    // rank's with rank 0's, so only the ranks that differ notice. They tell the others (one
    // all_gather of a flag) so that every rank fails at once naming them, instead of rank 0
    // going on to broadcast to a peer that gave up.
    std::string mismatch;
    try {
      c10d::verify_params_across_processes(g->pg, ps, {});
    } catch (const std::exception &e) {
      mismatch = what_of(e);
    }
    {
      at::NoGradGuard no_grad;
      std::vector<at::Tensor> flag{at::full({1}, mismatch.empty() ? 0 : 1, at::kLong)};
      std::vector<std::vector<at::Tensor>> flags(1);
      for (int r = 0; r < g->world; r++) flags[0].push_back(at::zeros({1}, at::kLong));
      c10d::AllgatherOptions o;
      o.timeout = g->timeout;
      wait_work(g->pg->allgather(flags, flag, o), g->timeout);
      std::string bad;
      for (int r = 0; r < g->world; r++)
        if (flags[0][r].item<int64_t>() != 0) bad += (bad.empty() ? "" : ", ") + std::to_string(r);
      if (!bad.empty())
        throw std::invalid_argument("every rank must build the same model, but the parameters differ (count, shapes or "
                                    "dtypes), as rank(s) " + bad + " found" +
                                    (mismatch.empty() ? std::string() : ": " + mismatch));
    }
    // As torch.nn.parallel.DistributedDataParallel (1.13) does: without find_unused_parameters,
    // one bucket for the first iteration (the order of gradients is not known yet), rebuilt in
    // the order gradients arrive; with it, buckets by size at once. Reversed: gradients come
    // roughly in the reverse order of the parameters.
    std::vector<size_t> limits;
    if (find_unused)
      limits = {static_cast<size_t>(first_bucket_bytes), static_cast<size_t>(bucket_cap_bytes)};
    else
      limits = {std::numeric_limits<size_t>::max()};
    auto assigned = c10d::compute_bucket_assignment_by_size(ps, limits, std::vector<bool>(ps.size(), false));
    auto buckets = std::get<0>(assigned);
    auto per_limits = std::get<1>(assigned);
    std::reverse(buckets.begin(), buckets.end());
    std::reverse(per_limits.begin(), per_limits.end());
    auto *d = new hc_ddp_s;
    d->pg = g->pg;
    d->params = ps;
    d->rank = g->rank;
    d->world = g->world;
    d->timeout = g->timeout;
    try {
      d->reducer = make_reducer(ps, std::move(buckets), std::move(per_limits), g->pg, std::vector<bool>(ps.size(), false),
                                bucket_cap_bytes, find_unused != 0, std::move(pnames), first_bucket_bytes);
      // Time every iteration (PyTorch's default samples one in 100 after the first 10).
      d->reducer->set_ddp_runtime_logging_sample_rate(1);
      d->logger = new c10d::Logger(std::shared_ptr<c10d::Reducer>(d->reducer, [](c10d::Reducer *) {}));
    } catch (...) {
      hc_ddp_free(d);
      throw;
    }
    *out = d;
  });
}

void hc_ddp_free(hc_ddp d) {
  if (!d) return;
  try {
    delete d->logger; // first: its destructor reads the Reducer
  } catch (...) {
  }
  d->logger = nullptr;
  try {
    delete d->reducer; // removes its autograd hooks
  } catch (...) {
  }
  d->reducer = nullptr;
  try {
    delete d;
  } catch (...) {
  }
}

hc_err hc_ddp_pre_forward(hc_ddp d, int32_t *rebuilt) {
  return with_context("DDP forward (rebuilding buckets)", d->rank, d->world, d->timeout, [&] {
    measure(d);
    d->reducer->prepare_for_forward();
    *rebuilt = d->reducer->rebuild_buckets() ? 1 : 0;
  });
}

hc_err hc_ddp_prepare_backward(hc_ddp d, const hc_tensor *outputs, int32_t n) {
  return with_context("DDP prepare_for_backward", d->rank, d->world, d->timeout, [&] {
    std::vector<at::Tensor> outs;
    for (int32_t k = 0; k < n; k++)
      if (outputs[k]) outs.push_back(outputs[k]->t);
    d->reducer->prepare_for_backward(outs);
  });
}

hc_err hc_ddp_buckets(hc_ddp d, int32_t *bucket, int32_t n, int32_t *nbuckets) {
  return hc::guard([&] {
    if (n != static_cast<int32_t>(d->params.size()))
      throw std::invalid_argument("the DDP has " + std::to_string(d->params.size()) + " parameters, not " +
                                  std::to_string(n));
    std::unordered_map<const void *, int32_t> index;
    for (size_t k = 0; k < d->params.size(); k++) index[d->params[k].unsafeGetTensorImpl()] = static_cast<int32_t>(k);
    for (int32_t k = 0; k < n; k++) bucket[k] = -1;
    auto bs = d->reducer->get_grad_buckets(/*return_zero_tensors=*/true);
    for (size_t b = 0; b < bs.size(); b++)
      for (const auto &p : bs[b].getParameters()) {
        auto it = index.find(p.unsafeGetTensorImpl());
        if (it != index.end()) bucket[it->second] = static_cast<int32_t>(b);
      }
    *nbuckets = static_cast<int32_t>(bs.size());
  });
}

hc_err hc_ddp_stats(hc_ddp d, int64_t *out, int32_t n) {
  return hc::guard([&] {
    if (n != HC_DDP_NSTATS)
      throw std::invalid_argument("hc_ddp_stats: " + std::to_string(n) + " values asked for, this library has " +
                                  std::to_string(HC_DDP_NSTATS));
    std::lock_guard<std::mutex> lock(d->stats_mu);
    if (!d->stats_err.empty()) throw std::runtime_error(d->stats_err);
    std::copy(d->stats, d->stats + HC_DDP_NSTATS, out);
  });
}

hc_err hc_ddp_set_stats_every(hc_ddp d, int32_t every) {
  return hc::guard([&] {
    std::lock_guard<std::mutex> lock(d->stats_mu);
    d->stats_every = every;
    // Not measuring: the Reducer records its events only in its first 10 iterations.
    d->reducer->set_ddp_runtime_logging_sample_rate(every > 0 ? every : std::numeric_limits<int>::max());
  });
}

} // extern "C"
