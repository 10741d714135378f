// TorchScript modules (torch::jit): load, the module tree, method calls, training mode, the forward
// taps that give Go forward hooks on submodules, and saving back.
//
// Taps. A scripted or traced module keeps its submodules' forward methods as graphs of their own,
// which the root's forward calls and which the graph executor inlines the first time it runs. At
// load, every submodule type's forward graph gets two side-effecting ops: hotcb::tap_in(self,
// (inputs...)) first and hotcb::tap_out(self, output) last. They cost an atomic load while no
// module is watched; when one is, they record the inputs and output of the watched module objects
// (self tells instances of one type apart) for hc_jit_taps. The taps are taken out while the module
// is saved, so the file holds the module as it was scripted.
#include <torch/csrc/jit/api/module.h>
#include <torch/csrc/jit/ir/ir.h>
#include <torch/csrc/jit/runtime/custom_operator.h>
#include <torch/csrc/jit/serialization/import.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <mutex>
#include <sstream>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "internal.h"
#include "value.h"

namespace {

// One forward of a watched module: its inputs (a tuple) and output; ended numbers the forwards
// in the order they returned (-1 while running).
struct Capture {
  int64_t module;
  c10::IValue ins, out;
  int64_t ended;
};

// The most captures one call keeps (a module called in a long loop); later ones are dropped.
constexpr size_t max_captures = 4096;

} // namespace

struct hc_module_s {
  torch::jit::Module root;
  std::vector<torch::jit::Module> mods; // depth first, the root first
  std::vector<std::string> paths;       // their dotted names
  // The forward graphs that carry taps, and the nodes inserted into each.
  std::vector<std::shared_ptr<torch::jit::Graph>> tapped;
  std::vector<std::vector<torch::jit::Node *>> tap_nodes;
  // Guarded by watch_mu.
  std::vector<Capture> captures;
  std::unordered_map<int64_t, std::vector<size_t>> open; // module → captures waiting for their output
  size_t dropped = 0;
  int64_t ended = 0;
};

namespace {

std::mutex watch_mu;
std::atomic<size_t> watching{0};
std::unordered_map<const c10::ivalue::Object *, std::pair<hc_module, int64_t>> watched; // guarded by watch_mu

void unwatch_locked(hc_module m) {
  for (auto it = watched.begin(); it != watched.end();) {
    if (it->second.first == m)
      it = watched.erase(it);
    else
      ++it;
  }
  watching.store(watched.size());
}

void tap(torch::jit::Stack &stack, bool is_out) {
  c10::IValue v = torch::jit::pop(stack);
  c10::IValue self = torch::jit::pop(stack);
  if (watching.load(std::memory_order_relaxed) == 0 || !self.isObject()) return;
  std::lock_guard<std::mutex> g(watch_mu);
  auto it = watched.find(self.toObject().get());
  if (it == watched.end()) return;
  hc_module m = it->second.first;
  int64_t idx = it->second.second;
  if (!is_out) {
    if (m->captures.size() >= max_captures) {
      m->dropped++;
      return;
    }
    m->captures.push_back(Capture{idx, std::move(v), c10::IValue(), -1});
    m->open[idx].push_back(m->captures.size() - 1);
    return;
  }
  auto &waiting = m->open[idx];
  if (waiting.empty()) return;
  Capture &c = m->captures[waiting.back()];
  c.out = std::move(v);
  c.ended = m->ended++;
  waiting.pop_back();
}

torch::jit::RegisterOperators register_taps({
    torch::jit::Operator(
        "hotcb::tap_in(t1 self, t2 inputs) -> ()", [](torch::jit::Stack &s) { tap(s, false); },
        c10::AliasAnalysisKind::CONSERVATIVE),
    torch::jit::Operator(
        "hotcb::tap_out(t1 self, t2 output) -> ()", [](torch::jit::Stack &s) { tap(s, true); },
        c10::AliasAnalysisKind::CONSERVATIVE),
});

// Inserts the taps into a forward graph and returns the new nodes.
std::vector<torch::jit::Node *> tap_graph(torch::jit::Graph &g) {
  std::vector<torch::jit::Node *> nodes;
  torch::jit::Value *self = g.inputs().at(0);
  {
    std::vector<torch::jit::Value *> ins(g.inputs().begin() + 1, g.inputs().end());
    torch::jit::WithInsertPoint at(*g.nodes().begin());
    torch::jit::Node *tuple = g.insertNode(g.createTuple(ins));
    nodes.push_back(tuple);
    nodes.push_back(g.insertNode(g.create(c10::Symbol::fromQualString("hotcb::tap_in"), {self, tuple->output()}, 0)));
  }
  if (g.outputs().size() == 1) {
    torch::jit::WithInsertPoint at(g.return_node());
    nodes.push_back(g.insertNode(g.create(c10::Symbol::fromQualString("hotcb::tap_out"), {self, g.outputs()[0]}, 0)));
  }
  return nodes;
}

void add_taps(hc_module m) {
  // HOTCB_JIT_TAPS=0 loads modules without them (submodule hooks then never fire): to compare
  // the graph executor's work with and without.
  if (const char *v = std::getenv("HOTCB_JIT_TAPS"); v != nullptr && std::string(v) == "0") return;
  std::unordered_set<const c10::ClassType *> seen;
  for (size_t i = 1; i < m->mods.size(); i++) {
    const auto &mod = m->mods[i];
    if (!seen.insert(mod.type().get()).second) continue;
    auto fwd = mod.find_method("forward");
    if (!fwd) continue;
    auto g = fwd->graph();
    if (g->inputs().empty()) continue;
    m->tap_nodes.push_back(tap_graph(*g));
    m->tapped.push_back(g);
  }
}

void remove_taps(hc_module m) {
  for (auto &nodes : m->tap_nodes) {
    for (auto it = nodes.rbegin(); it != nodes.rend(); ++it) (*it)->destroy();
  }
  m->tap_nodes.clear();
  m->tapped.clear();
}

// The tensors a value holds, depth first.
void tensors_of(const c10::IValue &v, std::vector<at::Tensor> &out, int depth = 0) {
  if (depth > 64) return;
  if (v.isTensor()) {
    out.push_back(v.toTensor());
  } else if (v.isList()) {
    for (const auto &e : v.toListRef()) tensors_of(e, out, depth + 1);
  } else if (v.isTuple()) {
    for (const auto &e : v.toTupleRef().elements()) tensors_of(e, out, depth + 1);
  } else if (v.isGenericDict()) {
    for (const auto &kv : v.toGenericDict()) tensors_of(kv.value(), out, depth + 1);
  }
}

c10::IValue tensor_list(const c10::IValue &v) {
  std::vector<at::Tensor> ts;
  tensors_of(v, ts);
  c10::impl::GenericList l(c10::AnyType::get());
  for (auto &t : ts) l.push_back(t);
  return c10::IValue(l);
}

hc_module_s &mod_of(hc_module m) {
  if (m == nullptr) throw std::invalid_argument("the TorchScript module is freed");
  return *m;
}

const torch::jit::Module &sub(hc_module m, int64_t idx) {
  auto &s = mod_of(m);
  if (idx < 0 || idx >= static_cast<int64_t>(s.mods.size()))
    throw std::invalid_argument("no submodule " + std::to_string(idx) + " (the module has " + std::to_string(s.mods.size()) + ")");
  return s.mods[idx];
}

std::string label(hc_module m, int64_t idx) {
  const std::string &p = m->paths[idx];
  return p.empty() ? std::string("the root module") : "submodule " + p;
}

} // namespace

extern "C" {

hc_err hc_jit_load(const char *path, int device, hc_module *out) {
  *out = nullptr;
  return hc::guard([&] {
    auto m = std::make_unique<hc_module_s>();
    m->root = torch::jit::load(path, hc::device(device));
    for (const auto &nm : m->root.named_modules()) {
      m->paths.push_back(nm.name);
      m->mods.push_back(nm.value);
    }
    add_taps(m.get());
    *out = m.release();
  });
}

void hc_jit_free(hc_module m) {
  if (m == nullptr) return;
  {
    std::lock_guard<std::mutex> g(watch_mu);
    unwatch_locked(m);
  }
  delete m;
}

hc_err hc_jit_tree(hc_module m, hc_value_out *out) {
  return hc::guard([&] {
    auto &s = mod_of(m);
    hc::ValueWriter w;
    w.begin(6, s.mods.size());
    for (size_t i = 0; i < s.mods.size(); i++) {
      const auto &mod = s.mods[i];
      w.begin(7, 5);
      w.str(s.paths[i]);
      w.str(mod.type()->name() ? mod.type()->name()->qualifiedName() : std::string("Module"));
      w.write(c10::IValue(mod.is_training()));
      auto params = mod.named_parameters(false);
      auto buffers = mod.named_buffers(false);
      w.begin(6, params.size() + buffers.size());
      for (const auto &p : params) {
        w.begin(7, 3);
        w.str(p.name);
        w.write(c10::IValue(false));
        w.tensor(p.value);
      }
      for (const auto &b : buffers) {
        w.begin(7, 3);
        w.str(b.name);
        w.write(c10::IValue(true));
        w.tensor(b.value);
      }
      auto methods = mod.get_methods();
      w.begin(6, methods.size());
      for (const auto &meth : methods) w.str(meth.name());
    }
    w.out(out);
  });
}

hc_err hc_jit_call(hc_module m, int64_t module, const char *method, const int64_t *codes, int64_t nc, const double *f,
                   int64_t nf, const char *s, int64_t ns, const hc_tensor *t, int64_t nt, hc_value_out *out) {
  std::memset(out, 0, sizeof(*out));
  return hc::guard([&] {
    const auto &mod = sub(m, module);
    auto meth = mod.find_method(method);
    if (!meth) {
      std::string have;
      for (const auto &x : mod.get_methods()) have += (have.empty() ? "" : ", ") + x.name();
      throw std::invalid_argument(label(m, module) + " has no method " + method + " (its methods: " +
                                  (have.empty() ? std::string("none") : have) + ")");
    }
    c10::IValue args = hc::read_value(codes, nc, f, nf, s, ns, t, nt, false);
    if (!args.isTuple()) throw std::invalid_argument("the arguments are not a tuple");
    std::vector<c10::IValue> stack(args.toTupleRef().elements().begin(), args.toTupleRef().elements().end());
    // An empty list or dict carries no element type from Go: give it the one the method declares.
    const auto &decl = meth->function().getSchema().arguments();
    for (size_t i = 0; i < stack.size() && i + 1 < decl.size(); i++) {
      const c10::TypePtr &want = decl[i + 1].type(); // decl[0] is self
      if (stack[i].isList() && stack[i].toListRef().empty() && want->kind() == c10::TypeKind::ListType)
        stack[i] = c10::IValue(c10::impl::GenericList(want->containedType(0)));
      else if (stack[i].isGenericDict() && stack[i].toGenericDict().empty() && want->kind() == c10::TypeKind::DictType)
        stack[i] = c10::IValue(c10::impl::GenericDict(want->containedType(0), want->containedType(1)));
    }
    {
      std::lock_guard<std::mutex> g(watch_mu);
      m->captures.clear();
      m->open.clear();
      m->dropped = 0;
      m->ended = 0;
    }
    c10::IValue r = (*meth)(std::move(stack));
    hc::ValueWriter w;
    try {
      w.write(r);
    } catch (const std::invalid_argument &e) {
      throw std::invalid_argument(std::string(method) + " returned " + e.what());
    }
    w.out(out);
  });
}

hc_err hc_jit_set_training(hc_module m, int64_t module, int on) {
  return hc::guard([&] {
    const auto &mod = sub(m, module);
    auto slot = mod.type()->findAttributeSlot("training");
    if (!slot) throw std::invalid_argument(label(m, module) + " has no training attribute");
    mod._ivalue()->setSlot(*slot, c10::IValue(on != 0));
  });
}

hc_err hc_jit_watch(hc_module m, const int64_t *modules, int64_t n) {
  return hc::guard([&] {
    auto &s = mod_of(m);
    for (int64_t i = 0; i < n; i++) sub(m, modules[i]);
    std::lock_guard<std::mutex> g(watch_mu);
    unwatch_locked(m);
    for (int64_t i = 0; i < n; i++) watched[s.mods[modules[i]]._ivalue().get()] = {m, modules[i]};
    watching.store(watched.size());
  });
}

hc_err hc_jit_taps(hc_module m, hc_value_out *out, int64_t *dropped) {
  std::memset(out, 0, sizeof(*out));
  *dropped = 0;
  return hc::guard([&] {
    auto &s = mod_of(m);
    std::vector<Capture> caps;
    {
      std::lock_guard<std::mutex> g(watch_mu);
      caps.swap(s.captures);
      s.open.clear();
      *dropped = static_cast<int64_t>(s.dropped);
      s.dropped = 0;
    }
    // In the order the forwards returned, as PyTorch runs forward hooks; one that raised is left out.
    caps.erase(std::remove_if(caps.begin(), caps.end(), [](const Capture &c) { return c.ended < 0; }), caps.end());
    std::sort(caps.begin(), caps.end(), [](const Capture &a, const Capture &b) { return a.ended < b.ended; });
    hc::ValueWriter w;
    w.begin(6, caps.size());
    for (const auto &c : caps) {
      w.begin(7, 3);
      w.write(c10::IValue(c.module));
      w.write(tensor_list(c.ins));
      w.write(tensor_list(c.out));
    }
    w.out(out);
  });
}

hc_err hc_jit_save(hc_module m, char **buf, int64_t *len) {
  *buf = nullptr;
  *len = 0;
  return hc::guard([&] {
    auto &s = mod_of(m);
    std::ostringstream os;
    remove_taps(&s);
    try {
      s.root.save(os);
    } catch (...) {
      add_taps(&s);
      throw;
    }
    add_taps(&s);
    const std::string b = os.str();
    hc::give_bytes(std::vector<char>(b.begin(), b.end()), buf, len);
  });
}

} // extern "C"
