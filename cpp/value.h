// The prefix form of a value (bridge.Value; described at hc_save_value in hotcb_torch.h) in both
// directions: read_value builds a c10::IValue from Go's streams, ValueWriter writes one into an
// hc_value_out. Not part of the public header.
#pragma once

#include <ATen/core/ivalue.h>
#include <ATen/core/jit_type.h>

#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "internal.h"

namespace hc {

// Reads one value from the streams; every read is bounds-checked, since they come from Go code
// that may be wrong. With for_save, tensors are taken detached and on the CPU and containers are
// of Any (what pickling needs); otherwise tensors are passed as they are and a list or dict gets
// the element type its elements share (List[Tensor], Dict[str, Tensor] ...), as a TorchScript
// method's argument types require.
struct ValueReader {
  const int64_t *codes;
  int64_t nc;
  const double *f;
  int64_t nf;
  std::vector<std::string> strings;
  const hc_tensor *t;
  int64_t nt;
  bool for_save;
  int64_t c = 0, fi = 0, si = 0, ti = 0;

  int64_t code() {
    if (c >= nc) throw std::invalid_argument("the codes end inside a value (at code " + std::to_string(c) + ")");
    return codes[c++];
  }
  int64_t length() {
    int64_t n = code();
    if (n < 0 || n > nc) throw std::invalid_argument("bad length " + std::to_string(n));
    return n;
  }

  // The type the values share, or Any.
  c10::TypePtr common(const std::vector<c10::IValue> &vs) const {
    if (for_save || vs.empty()) return c10::AnyType::get();
    c10::TypePtr ty = c10::unshapedType(vs[0].type()); // List[Tensor], not of one tensor's shape
    for (size_t i = 1; i < vs.size(); i++) {
      auto u = c10::unifyTypes(ty, c10::unshapedType(vs[i].type()));
      if (!u) return c10::AnyType::get();
      ty = *u;
    }
    return ty;
  }

  c10::IValue read(int depth) {
    if (depth > 256) throw std::invalid_argument("the value nests deeper than 256");
    int64_t tag = code();
    switch (tag) {
    case 0:
      return c10::IValue();
    case 1: {
      int64_t b = code();
      if (b != 0 && b != 1) throw std::invalid_argument("bool code " + std::to_string(b) + " (0 or 1)");
      return c10::IValue(b != 0);
    }
    case 2:
      return c10::IValue(code());
    case 3:
      if (fi >= nf) throw std::invalid_argument("more float tags than Floats (" + std::to_string(nf) + ")");
      return c10::IValue(f[fi++]);
    case 4:
      if (si >= static_cast<int64_t>(strings.size())) throw std::invalid_argument("more str tags than Strings (" + std::to_string(strings.size()) + ")");
      return c10::IValue(strings[si++]);
    case 5: {
      if (ti >= nt) throw std::invalid_argument("more tensor tags than Tensors (" + std::to_string(nt) + ")");
      if (t[ti] == nullptr) throw std::invalid_argument("tensor " + std::to_string(ti) + " is nil or freed");
      const at::Tensor &x = t[ti++]->t;
      return c10::IValue(for_save ? x.detach().to(at::kCPU) : x);
    }
    case 6: { // with for_save, a list of AnyType pickles as a plain Python list
      int64_t n = length();
      std::vector<c10::IValue> elems;
      elems.reserve(n);
      for (int64_t i = 0; i < n; i++) elems.push_back(read(depth + 1));
      c10::impl::GenericList l(common(elems));
      l.reserve(n);
      for (auto &e : elems) l.push_back(std::move(e));
      return c10::IValue(l);
    }
    case 7: {
      int64_t n = length();
      std::vector<c10::IValue> elems;
      elems.reserve(n);
      for (int64_t i = 0; i < n; i++) elems.push_back(read(depth + 1));
      return c10::IValue(c10::ivalue::Tuple::create(std::move(elems)));
    }
    case 8: {
      int64_t n = length();
      std::vector<std::pair<c10::IValue, c10::IValue>> items;
      std::vector<c10::IValue> values;
      items.reserve(n);
      for (int64_t i = 0; i < n; i++) {
        c10::IValue k = read(depth + 1);
        if (!k.isInt() && !k.isString())
          throw std::invalid_argument("dict key " + std::to_string(i) + " is neither an int nor a str");
        items.emplace_back(std::move(k), read(depth + 1));
        values.push_back(items.back().second);
      }
      bool ints = !items.empty() && items[0].first.isInt();
      c10::impl::GenericDict d(ints ? c10::TypePtr(c10::IntType::get()) : c10::TypePtr(c10::StringType::get()),
                               common(values));
      for (auto &kv : items) {
        if (kv.first.isInt() != ints) throw std::invalid_argument("a dict's keys mix int and str");
        if (d.contains(kv.first))
          throw std::invalid_argument("dict key " + (ints ? std::to_string(kv.first.toInt()) : kv.first.toStringRef()) + " repeats");
        d.insert(std::move(kv.first), std::move(kv.second));
      }
      return c10::IValue(d);
    }
    }
    throw std::invalid_argument("unknown tag " + std::to_string(tag));
  }
};

// read_value reads the whole value the streams hold (ns NUL-terminated strings one after the
// other in s); a stream not used up is an error.
inline c10::IValue read_value(const int64_t *codes, int64_t nc, const double *f, int64_t nf, const char *s,
                              int64_t ns, const hc_tensor *t, int64_t nt, bool for_save) {
  ValueReader r{codes, nc, f, nf, {}, t, nt, for_save};
  for (int64_t k = 0; k < ns; k++) {
    r.strings.emplace_back(s);
    s += r.strings.back().size() + 1;
  }
  c10::IValue v = r.read(0);
  if (r.c != nc || r.fi != nf || r.si != ns || r.ti != nt)
    throw std::invalid_argument("left over after the value: " + std::to_string(nc - r.c) + " codes, " +
                                std::to_string(nf - r.fi) + " floats, " + std::to_string(ns - r.si) + " strings, " +
                                std::to_string(nt - r.ti) + " tensors");
  return v;
}

// ValueWriter appends values in the prefix form; out() hands the streams over (malloc'd, the
// tensors as new handles) for Go to read and free. A value that has no Go form (an object, a
// device, a future ...) is an error naming its type.
struct ValueWriter {
  std::vector<int64_t> codes;
  std::vector<double> floats;
  std::string strings; // NUL-terminated, one after the other
  int64_t nstrings = 0;
  std::vector<at::Tensor> tensors;

  void str(const std::string &s) {
    if (s.find('\0') != std::string::npos) throw std::invalid_argument("a string holds a NUL byte");
    codes.push_back(4);
    strings += s;
    strings.push_back('\0');
    nstrings++;
  }
  void tensor(const at::Tensor &x) {
    codes.push_back(5);
    tensors.push_back(x);
  }
  void begin(int64_t tag, size_t n) {
    codes.push_back(tag);
    codes.push_back(static_cast<int64_t>(n));
  }

  void write(const c10::IValue &v, int depth = 0) {
    if (depth > 256) throw std::invalid_argument("the value nests deeper than 256");
    if (v.isNone()) {
      codes.push_back(0);
    } else if (v.isBool()) {
      codes.push_back(1);
      codes.push_back(v.toBool() ? 1 : 0);
    } else if (v.isInt()) {
      codes.push_back(2);
      codes.push_back(v.toInt());
    } else if (v.isDouble()) {
      codes.push_back(3);
      floats.push_back(v.toDouble());
    } else if (v.isString()) {
      str(v.toStringRef());
    } else if (v.isTensor()) {
      tensor(v.toTensor());
    } else if (v.isList()) {
      auto l = v.toListRef();
      begin(6, l.size());
      for (const auto &e : l) write(e, depth + 1);
    } else if (v.isTuple()) {
      const auto &elems = v.toTupleRef().elements();
      begin(7, elems.size());
      for (const auto &e : elems) write(e, depth + 1);
    } else if (v.isGenericDict()) {
      auto d = v.toGenericDict();
      begin(8, d.size());
      for (const auto &kv : d) {
        if (!kv.key().isInt() && !kv.key().isString())
          throw std::invalid_argument("a dict keyed by " + kv.key().type()->repr_str() + " (Go takes int or str keys)");
        write(kv.key(), depth + 1);
        write(kv.value(), depth + 1);
      }
    } else {
      throw std::invalid_argument("a value of type " + v.type()->repr_str() +
                                  " (Go takes None, bool, int, float, str, tensors and lists, tuples and dicts of them)");
    }
  }

  // out hands the streams to Go; nothing is left allocated if it fails.
  void out(hc_value_out *o) {
    std::memset(o, 0, sizeof(*o));
    auto dup = [](const void *p, size_t bytes) {
      void *q = std::malloc(bytes ? bytes : 1);
      if (q == nullptr) throw std::bad_alloc();
      if (bytes) std::memcpy(q, p, bytes);
      return q;
    };
    try {
      o->codes = static_cast<int64_t *>(dup(codes.data(), codes.size() * sizeof(int64_t)));
      o->f = static_cast<double *>(dup(floats.data(), floats.size() * sizeof(double)));
      o->s = static_cast<char *>(dup(strings.data(), strings.size()));
      o->t = static_cast<hc_tensor *>(std::calloc(tensors.size() ? tensors.size() : 1, sizeof(hc_tensor)));
      if (o->t == nullptr) throw std::bad_alloc();
      for (size_t i = 0; i < tensors.size(); i++) o->t[i] = hc::wrap(tensors[i]);
    } catch (...) {
      if (o->t != nullptr) hc_tensor_free_many(o->t, static_cast<int>(tensors.size()));
      std::free(o->codes);
      std::free(o->f);
      std::free(o->s);
      std::free(o->t);
      std::memset(o, 0, sizeof(*o));
      throw;
    }
    o->nc = static_cast<int64_t>(codes.size());
    o->nf = static_cast<int64_t>(floats.size());
    o->ns = nstrings;
    o->nt = static_cast<int64_t>(tensors.size());
  }
};

// give_bytes copies bytes into malloc'd memory for Go (freed with hc_free).
inline void give_bytes(const std::vector<char> &bytes, char **buf, int64_t *len) {
  char *b = static_cast<char *>(std::malloc(bytes.size() ? bytes.size() : 1));
  if (b == nullptr) throw std::bad_alloc();
  std::memcpy(b, bytes.data(), bytes.size());
  *buf = b;
  *len = static_cast<int64_t>(bytes.size());
}

} // namespace hc
