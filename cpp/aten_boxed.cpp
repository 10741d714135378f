// hc_aten_lookup and hc_aten_boxed: any op registered with libtorch's dispatcher, called by name
// through its boxed calling convention (package aten's CallOp), for what cmd/atengen did not
// generate (private ops, named tensors, ops newer than the generated table).
//
// Arguments come in hc_aten's four streams, every one tagged (tensors too: kTensor). Each is
// converted to the IValue that the type the schema declares for it takes (Argument::real_type:
// the declared ScalarType, SymInt[], ..., not the int it travels as), so a mistake is an error
// naming the argument; arguments left out (or passed as kDefault) take the schema's defaults, and
// kNamed passes one by name. Results are encoded back with the same tags (a tuple as kTuple).
#include <ATen/core/dispatch/Dispatcher.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <mutex>
#include <sstream>
#include <unordered_map>

#include "aten_call.h"

namespace hc::aten {
namespace {

using c10::IValue;
using c10::TypeKind;
using c10::TypePtr;

// Ops found by hc_aten_lookup, by id. A handle stays valid while its op is registered, and
// ATen's ops are for the life of the process. Never destroyed: a call may race with exit.
struct Registry {
  std::mutex mu;
  std::deque<c10::OperatorHandle> ops;
  std::unordered_map<std::string, int32_t> ids; // "aten::add.Tensor" -> id
};

Registry &registry() {
  static Registry *r = new Registry;
  return *r;
}

c10::OperatorHandle handle(int32_t id) {
  Registry &r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  if (id < 0 || static_cast<size_t>(id) >= r.ops.size())
    throw std::invalid_argument("no op with id " + std::to_string(id) + " was looked up");
  return r.ops[id];
}

// "aten::add.Tensor" -> {"aten::add", "Tensor"}; no overload is the default one ("").
c10::OperatorName split_name(const std::string &full) {
  size_t ns = full.find("::");
  size_t dot = full.find('.', ns == std::string::npos ? 0 : ns + 2);
  if (dot == std::string::npos) return c10::OperatorName(full, "");
  return c10::OperatorName(full.substr(0, dot), full.substr(dot + 1));
}

std::string qualified(const c10::OperatorName &n) {
  return n.overload_name.empty() ? n.name : n.name + "." + n.overload_name;
}

char *dup_string(const std::string &s) {
  char *p = static_cast<char *>(std::malloc(s.size() + 1));
  if (!p) throw std::bad_alloc();
  std::memcpy(p, s.c_str(), s.size() + 1);
  return p;
}

template <class T> T *dup_array(const std::vector<T> &v) {
  T *p = static_cast<T *>(std::malloc(sizeof(T) * std::max<size_t>(v.size(), 1)));
  if (!p) throw std::bad_alloc();
  if (!v.empty()) std::memcpy(p, v.data(), sizeof(T) * v.size());
  return p;
}

std::string schema_string(const c10::FunctionSchema &s) {
  std::ostringstream o;
  o << s;
  return o.str();
}

// One argument as the streams gave it, before the schema says what it must become.
struct Given {
  std::string name; // "" for a positional argument
  int64_t tag = kNone;
  hc_tensor t = nullptr;
  int64_t i = 0;
  double d = 0;
  std::string s;
  std::vector<int64_t> is;
  std::vector<double> ds;
  std::vector<std::string> ss;
  std::vector<hc_tensor> ts;
};

Given read_given(Reader &r) {
  Given g;
  g.tag = r.tag();
  if (g.tag == kNamed) {
    g.name = std::string(r.str(r.count()));
    g.tag = r.tag();
    if (g.name.empty()) r.fail("a named argument with an empty name");
  }
  switch (g.tag) {
  case kNone:
  case kDefault: break;
  case kTensor: g.t = r.handle(); break;
  case kInt:
  case kBool:
  case kDtype:
  case kDevice:
  case kLayout:
  case kMemFmt: g.i = r.next_i(); break;
  case kFloat: g.d = r.next_d(); break;
  case kStr: g.s = std::string(r.str(r.count())); break;
  case kInts:
  case kBools: {
    auto v = r.ints(r.count());
    g.is.assign(v.begin(), v.end());
    break;
  }
  case kFloats: {
    auto v = r.floats(r.count());
    g.ds.assign(v.begin(), v.end());
    break;
  }
  case kStrs: {
    int64_t n = r.count();
    for (int64_t k = 0; k < n; k++) g.ss.emplace_back(r.str(r.count()));
    break;
  }
  case kTensors: {
    int64_t n = r.count();
    for (int64_t k = 0; k < n; k++) g.ts.push_back(r.handle());
    break;
  }
  default: r.fail(std::string("an argument tagged ") + tag_name(g.tag));
  }
  return g;
}

// "argument 2 (int diagonal=0)": the schema's declared type, name and default.
std::string describe(const c10::Argument &a, size_t k) {
  std::ostringstream o;
  o << "argument " << k + 1 << " (" << a.real_type()->str() << " " << a.name();
  if (a.default_value()) o << "=" << *a.default_value();
  o << ")";
  return o.str();
}

[[noreturn]] void bad(const c10::Argument &a, size_t k, const std::string &why) {
  throw std::invalid_argument(describe(a, k) + " " + why);
}

[[noreturn]] void cannot(const c10::Argument &a, size_t k, const Given &g) {
  bad(a, k, std::string("cannot take ") + tag_name(g.tag));
}

IValue scalar_type_value(int64_t dtype) {
  return IValue(static_cast<int64_t>(hc::scalar_type(static_cast<int>(dtype))));
}

template <class T> IValue list_of(const std::vector<T> &v) {
  c10::List<T> l;
  l.reserve(v.size());
  for (const auto &x : v) l.push_back(x);
  return IValue(std::move(l));
}

// A list argument: int[] (SymInt[]), float[], bool[], str[] (Dimname[]), Tensor[], Tensor?[],
// Scalar[]. A single int or string where a fixed-size list (int[2]) is due fills it, as in Python.
IValue list_value(const Given &g, const c10::Argument &a, size_t k, const TypePtr &list) {
  TypePtr elem = list->castRaw<c10::ListType>()->getElementType();
  bool elem_optional = false;
  if (auto o = elem->cast<c10::OptionalType>()) {
    elem_optional = true;
    elem = o->getElementType();
  }
  size_t fill = a.N() ? static_cast<size_t>(*a.N()) : 0;
  switch (elem->kind()) {
  case TypeKind::IntType:
  case TypeKind::SymIntType:
    if (g.tag == kInts) return list_of(g.is);
    if (g.tag == kInt && fill) return list_of(std::vector<int64_t>(fill, g.i));
    break;
  case TypeKind::FloatType:
    if (g.tag == kFloats) return list_of(g.ds);
    if (g.tag == kInts) return list_of(std::vector<double>(g.is.begin(), g.is.end()));
    break;
  case TypeKind::BoolType:
    if (g.tag == kBools) {
      c10::List<bool> l;
      for (int64_t x : g.is) l.push_back(x != 0);
      return IValue(std::move(l));
    }
    break;
  case TypeKind::StringType:
    if (g.tag == kStrs) return list_of(g.ss);
    if (g.tag == kStr && fill) return list_of(std::vector<std::string>(fill, g.s));
    break;
  case TypeKind::NumberType:
    if (g.tag == kInts || g.tag == kFloats) {
      c10::impl::GenericList l(c10::NumberType::get());
      if (g.tag == kInts)
        for (int64_t x : g.is) l.push_back(IValue(x));
      else
        for (double x : g.ds) l.push_back(IValue(x));
      return IValue(std::move(l));
    }
    break;
  case TypeKind::TensorType:
    if (g.tag != kTensors) break;
    if (elem_optional) {
      c10::List<c10::optional<at::Tensor>> l;
      for (hc_tensor h : g.ts) l.push_back(h ? c10::optional<at::Tensor>(h->t) : c10::nullopt);
      return IValue(std::move(l));
    } else {
      c10::List<at::Tensor> l;
      for (size_t j = 0; j < g.ts.size(); j++) {
        if (!g.ts[j]) bad(a, k, "cannot take None at index " + std::to_string(j) + " of its list");
        l.push_back(g.ts[j]->t);
      }
      return IValue(std::move(l));
    }
  default:
    bad(a, k, "has a type CallOp cannot pass (" + list->str() + ")");
  }
  cannot(a, k, g);
}

// The IValue argument k takes for what was given.
IValue arg_value(const Given &g, const c10::Argument &a, size_t k) {
  TypePtr ty = a.real_type();
  bool optional = false;
  if (auto o = ty->cast<c10::OptionalType>()) {
    optional = true;
    ty = o->getElementType();
  }
  if (g.tag == kNone || (g.tag == kTensor && !g.t)) {
    if (optional) return IValue();
    bad(a, k, "cannot take None (it is not optional)");
  }
  switch (ty->kind()) {
  case TypeKind::TensorType:
    if (g.tag == kTensor) return IValue(g.t->t);
    break;
  case TypeKind::IntType:
  case TypeKind::SymIntType:
    if (g.tag == kInt) return IValue(g.i);
    break;
  case TypeKind::FloatType:
    if (g.tag == kFloat) return IValue(g.d);
    if (g.tag == kInt) return IValue(static_cast<double>(g.i));
    break;
  case TypeKind::BoolType:
    if (g.tag == kBool) return IValue(g.i != 0);
    break;
  case TypeKind::NumberType:
    if (g.tag == kInt) return IValue(g.i);
    if (g.tag == kFloat) return IValue(g.d);
    if (g.tag == kBool) return IValue(g.i != 0);
    break;
  case TypeKind::StringType:
    if (g.tag == kStr) return IValue(g.s);
    break;
  case TypeKind::ScalarTypeType:
    if (g.tag == kDtype) return scalar_type_value(g.i);
    break;
  case TypeKind::LayoutType:
    if (g.tag == kLayout) return IValue(g.i);
    break;
  case TypeKind::MemoryFormatType:
    if (g.tag == kMemFmt) return IValue(g.i);
    break;
  case TypeKind::DeviceObjType:
    if (g.tag == kDevice) return IValue(hc::device(static_cast<int>(g.i)));
    break;
  case TypeKind::GeneratorType:
    bad(a, k, "is a generator, which CallOp cannot pass: leave it out or pass nil for the default one");
  case TypeKind::ListType: return list_value(g, a, k, ty);
  default: bad(a, k, "has a type CallOp cannot pass (" + a.real_type()->str() + ")");
  }
  cannot(a, k, g);
}

// The stack for a call: the arguments given, by position then by name, converted; the others
// from the schema's defaults.
std::vector<IValue> bind_args(const c10::FunctionSchema &schema, const std::vector<Given> &given) {
  const auto &args = schema.arguments();
  std::vector<const Given *> slot(args.size(), nullptr);
  size_t positional = 0;
  bool named = false;
  for (const Given &g : given) {
    if (g.name.empty()) {
      if (named) throw std::invalid_argument("a positional argument follows a named one");
      if (positional < args.size()) slot[positional] = &g;
      positional++;
      continue;
    }
    named = true;
    size_t k = 0;
    while (k < args.size() && args[k].name() != g.name) k++;
    if (k == args.size()) {
      std::string names;
      for (const auto &a : args) names += (names.empty() ? "" : ", ") + a.name();
      throw std::invalid_argument("has no argument named \"" + g.name + "\" (it has: " + names + ")");
    }
    if (slot[k]) bad(args[k], k, "is given twice");
    slot[k] = &g;
  }
  if (positional > args.size())
    throw std::invalid_argument("takes at most " + std::to_string(args.size()) + " arguments, got " +
                                std::to_string(positional) + ": " + schema_string(schema));
  std::vector<IValue> stack;
  stack.reserve(args.size());
  for (size_t k = 0; k < args.size(); k++) {
    const Given *g = slot[k];
    if (!g || g->tag == kDefault) {
      if (!args[k].default_value())
        bad(args[k], k, std::string(g ? "has no default" : "is missing") + " (" + schema_string(schema) + ")");
      stack.push_back(*args[k].default_value());
      continue;
    }
    stack.push_back(arg_value(*g, args[k], k));
  }
  return stack;
}

// Results, encoded like the arguments; tensors are kept as tensors until everything is encoded,
// so a failure leaves no handle behind.
struct Encoder {
  std::vector<at::Tensor> t;
  std::vector<int64_t> i;
  std::vector<double> d;
  std::string s;

  void tensors(const std::vector<at::Tensor> &v) {
    i.push_back(kTensors);
    i.push_back(static_cast<int64_t>(v.size()));
    for (const auto &x : v) t.push_back(x);
  }

  // declared is the schema's type for the value (nullptr when unknown): it tells a ScalarType,
  // Layout or MemoryFormat from the int it travels as.
  void value(const IValue &v, TypePtr declared) {
    if (declared)
      if (auto o = declared->cast<c10::OptionalType>()) declared = o->getElementType();
    if (v.isNone()) {
      i.push_back(kNone);
    } else if (v.isTensor()) {
      i.push_back(kTensor);
      t.push_back(v.toTensor());
    } else if (v.isInt()) {
      int64_t x = v.toInt();
      TypeKind kind = declared ? declared->kind() : TypeKind::IntType;
      if (kind == TypeKind::ScalarTypeType) {
        auto st = static_cast<at::ScalarType>(x);
        int dt = hc::dtype_of(st);
        if (dt < 0) throw std::invalid_argument(std::string("returned dtype ") + c10::toString(st) + ", which bridge.DType does not name");
        i.push_back(kDtype);
        i.push_back(dt);
      } else {
        i.push_back(kind == TypeKind::LayoutType ? kLayout : kind == TypeKind::MemoryFormatType ? kMemFmt : kInt);
        i.push_back(x);
      }
    } else if (v.isDouble()) {
      i.push_back(kFloat);
      d.push_back(v.toDouble());
    } else if (v.isBool()) {
      i.push_back(kBool);
      i.push_back(v.toBool() ? 1 : 0);
    } else if (v.isString()) {
      const std::string &x = v.toStringRef();
      i.push_back(kStr);
      i.push_back(static_cast<int64_t>(x.size()));
      s += x;
    } else if (v.isDevice()) {
      i.push_back(kDevice);
      i.push_back(hc::device_of(v.toDevice()));
    } else if (v.isTensorList()) {
      tensors(v.toTensorVector());
    } else if (v.isIntList()) {
      auto l = v.toIntVector();
      i.push_back(kInts);
      i.push_back(static_cast<int64_t>(l.size()));
      i.insert(i.end(), l.begin(), l.end());
    } else if (v.isDoubleList()) {
      auto l = v.toDoubleVector();
      i.push_back(kFloats);
      i.push_back(static_cast<int64_t>(l.size()));
      d.insert(d.end(), l.begin(), l.end());
    } else if (v.isBoolList()) {
      auto l = v.toBoolList();
      i.push_back(kBools);
      i.push_back(static_cast<int64_t>(l.size()));
      for (size_t k = 0; k < l.size(); k++) i.push_back(l.get(k) ? 1 : 0);
    } else if (v.isList()) {
      generic_list(v);
    } else if (v.isTuple()) {
      const auto &el = v.toTuple()->elements();
      const c10::TupleType *tt = declared ? declared->castRaw<c10::TupleType>() : nullptr;
      i.push_back(kTuple);
      i.push_back(static_cast<int64_t>(el.size()));
      for (size_t k = 0; k < el.size(); k++)
        value(el[k], tt && k < tt->elements().size() ? tt->elements()[k] : nullptr);
    } else {
      throw std::invalid_argument("returned " + std::string(v.tagKind()) + ", which CallOp cannot pass back");
    }
  }

  // A list of optional tensors (None entries are NULL handles) or of strings.
  void generic_list(const IValue &v) {
    auto l = v.toList();
    bool all_tensors = true, all_strings = true;
    for (size_t k = 0; k < l.size(); k++) {
      IValue e = l.get(k);
      all_tensors = all_tensors && (e.isTensor() || e.isNone());
      all_strings = all_strings && e.isString();
    }
    if (all_tensors) {
      std::vector<at::Tensor> ts;
      for (size_t k = 0; k < l.size(); k++) {
        IValue e = l.get(k);
        ts.push_back(e.isTensor() ? e.toTensor() : at::Tensor());
      }
      tensors(ts);
    } else if (all_strings) {
      i.push_back(kStrs);
      i.push_back(static_cast<int64_t>(l.size()));
      for (size_t k = 0; k < l.size(); k++) {
        IValue e = l.get(k);
        i.push_back(static_cast<int64_t>(e.toStringRef().size()));
        s += e.toStringRef();
      }
    } else {
      throw std::invalid_argument("returned a list of " + l.elementType()->str() + ", which CallOp cannot pass back");
    }
  }

  // Hands the streams over in malloc'd arrays, the tensors wrapped last.
  void emit(hc_aten_values *out) {
    try {
      out->i = dup_array(i);
      out->ni = static_cast<int32_t>(i.size());
      out->d = dup_array(d);
      out->nd = static_cast<int32_t>(d.size());
      out->s = dup_array(std::vector<char>(s.begin(), s.end()));
      out->ns = static_cast<int32_t>(s.size());
      out->t = dup_array(std::vector<hc_tensor>(t.size(), nullptr));
      for (size_t k = 0; k < t.size(); k++) {
        out->t[k] = hc::wrap(t[k]);
        out->nt = static_cast<int32_t>(k + 1);
      }
      out->nt = static_cast<int32_t>(t.size());
    } catch (...) {
      if (out->t)
        for (int32_t k = 0; k < out->nt; k++) hc_tensor_free(out->t[k], 1);
      hc_aten_values_free(out);
      throw;
    }
  }
};

} // namespace
} // namespace hc::aten

using namespace hc::aten;

extern "C" {

hc_err hc_aten_lookup(const char *name, int32_t nname, int32_t *id, char **schema, char **overloads) {
  *id = -1;
  *schema = nullptr;
  *overloads = nullptr;
  return hc::guard([&] {
    std::string full(name, static_cast<size_t>(nname));
    c10::OperatorName on = split_name(full);
    auto &dispatcher = c10::Dispatcher::singleton();
    auto op = dispatcher.findSchema(on);
    if (!op) {
      std::vector<std::string> same;
      for (const auto &n : dispatcher.getAllOpNames())
        if (n.name == on.name) same.push_back(qualified(n));
      if (same.empty()) return;
      std::sort(same.begin(), same.end());
      std::string list;
      for (const auto &q : same) list += q + "\n";
      *overloads = dup_string(list);
      return;
    }
    std::string s = schema_string(op->schema());
    Registry &r = registry();
    std::lock_guard<std::mutex> lock(r.mu);
    std::string key = qualified(on);
    auto it = r.ids.find(key);
    int32_t found;
    if (it != r.ids.end()) {
      found = it->second;
    } else {
      found = static_cast<int32_t>(r.ops.size());
      r.ops.push_back(*op);
      r.ids.emplace(key, found);
    }
    *schema = dup_string(s);
    *id = found;
  });
}

hc_err hc_aten_boxed(int32_t id, const hc_tensor *t, int32_t nt, const int64_t *i, int32_t ni,
                     const double *d, int32_t nd, const char *s, int32_t ns, hc_aten_values *out) {
  *out = hc_aten_values{};
  return hc::guard([&] {
    c10::OperatorHandle op = handle(id);
    const c10::FunctionSchema &schema = op.schema();
    Reader r{nullptr, t, nt, 0, i, ni, 0, d, nd, 0, s, ns, 0};
    std::vector<Given> given;
    while (r.ii < r.ni) given.push_back(read_given(r));
    if (!r.done()) r.fail("the argument streams hold values no tag accounts for");
    std::vector<IValue> stack = bind_args(schema, given);
    op.callBoxed(&stack);
    const auto &rets = schema.returns();
    Encoder e;
    for (size_t k = 0; k < stack.size(); k++) e.value(stack[k], k < rets.size() ? rets[k].real_type() : nullptr);
    e.emit(out);
  });
}

void hc_aten_values_free(hc_aten_values *v) {
  if (!v) return;
  std::free(v->t);
  std::free(v->i);
  std::free(v->d);
  std::free(v->s);
  *v = hc_aten_values{};
}

} // extern "C"
