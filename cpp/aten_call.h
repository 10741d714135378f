// aten_call.h — how hc_aten calls a generated ATen op: the arguments, encoded by the Go side
// (package aten) into four streams, are decoded into whatever parameter types the installed
// libtorch declares for the op (at::_ops::NAME::schema), and the results encoded back.
//
// Streams: t (tensor handles, NULL = undefined/None), i (int64: a tag before every non-tensor
// argument, then its values), d (doubles), s (string bytes). Because each argument carries its
// tag, the same encoding decodes into 1.13's int64_t/IntArrayRef and 2.x's SymInt/SymIntArrayRef,
// into int? or Scalar?, and so on: the decoder follows the headers it is compiled against. An op
// that a libtorch version does not declare compiles to an error saying so (see HC_ATEN_OP).
#pragma once

#include <ATen/ATen.h>
#include <ATen/core/List.h>

#include <array>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "internal.h"

namespace hc::aten {

// Tags of the i stream (mirrored in bridge/aten.go).
enum Tag : int64_t {
  kNone = -1,
  kInt = 0,     // value in i
  kFloat = 1,   // value in d
  kBool = 2,    // value in i
  kInts = 3,    // n in i, then n values in i
  kFloats = 4,  // n in i, then n values in d
  kStr = 5,     // byte length in i, bytes in s
  kDtype = 6,   // hc_dtype in i
  kDevice = 7,  // device in i (HC_CPU or a CUDA ordinal)
  kLayout = 8,  // at::Layout in i
  kMemFmt = 9,  // at::MemoryFormat in i
  kTensors = 10, // n in i, then n handles in t (NULL entries allowed for Tensor?[])
  kBools = 11,  // n in i, then n values in i
  kTensor = 12, // a handle in t (hc_aten_boxed only: generated ops know where tensors go)
  // hc_aten_boxed only (cpp/aten_boxed.cpp):
  kDefault = 13, // the argument's default value from the schema
  kNamed = 14,   // byte length of an argument name in i, the name in s, then the argument
  kStrs = 15,    // n in i, then each string's byte length in i, the bytes in s (str[], Dimname[])
  kTuple = 16,   // a result only: n in i, then n values
};

const char *tag_name(int64_t tag);

struct Entry;

// Reader walks the streams; every mistake is an error naming the op and the argument.
struct Reader {
  const Entry *op;
  const hc_tensor *t;
  int nt, ti = 0;
  const int64_t *i;
  int ni, ii = 0;
  const double *d;
  int nd, di = 0;
  const char *s;
  int ns, si = 0;
  int arg = 0; // the argument being decoded (0-based), for messages

  [[noreturn]] void fail(const std::string &msg) const;
  hc_tensor handle() {
    if (ti >= nt) fail("missing a tensor");
    return t[ti++];
  }
  int64_t next_i() {
    if (ii >= ni) fail("missing a value");
    return i[ii++];
  }
  double next_d() {
    if (di >= nd) fail("missing a float value");
    return d[di++];
  }
  int64_t tag() { return next_i(); }
  [[noreturn]] void want(const char *what, int64_t got) const {
    fail(std::string("wants ") + what + ", got " + tag_name(got));
  }
  int64_t count() {
    int64_t n = next_i();
    if (n < 0 || n > (1 << 28)) fail("bad list length " + std::to_string(n));
    return n;
  }
  at::IntArrayRef ints(int64_t n) {
    if (ii + n > ni) fail("list longer than the values given");
    at::IntArrayRef r(i + ii, static_cast<size_t>(n));
    ii += static_cast<int>(n);
    return r;
  }
  at::ArrayRef<double> floats(int64_t n) {
    if (di + n > nd) fail("list longer than the values given");
    at::ArrayRef<double> r(d + di, static_cast<size_t>(n));
    di += static_cast<int>(n);
    return r;
  }
  c10::string_view str(int64_t n) {
    if (si + n > ns) fail("string longer than the bytes given");
    c10::string_view r(s + si, static_cast<size_t>(n));
    si += static_cast<int>(n);
    return r;
  }
  // A number of any kind (int, float, bool), for int, float, bool, Scalar and SymInt parameters.
  at::Scalar number(int64_t tg) {
    switch (tg) {
    case kInt: return at::Scalar(next_i());
    case kFloat: return at::Scalar(next_d());
    case kBool: return at::Scalar(next_i() != 0);
    }
    want("a number", tg);
  }
  bool done() const { return ti == nt && ii == ni && di == nd && si == ns; }
};

template <class T> struct dependent_false : std::false_type {};

// Holder<T> decodes one parameter of type T (cv/ref removed) and keeps what it points to alive
// until the call returns.
template <class T, class = void> struct Holder {
  explicit Holder(Reader &r) {
    r.fail(std::string("has a parameter type this build cannot pass (") + typeid(T).name() + ")");
  }
  T &get() { return *static_cast<T *>(nullptr); } // never reached: the constructor threw
};

template <> struct Holder<at::Tensor> {
  at::Tensor *v; // the handle's tensor (no reference count taken); in-place ops get it mutable
  at::Tensor undefined;
  explicit Holder(Reader &r) {
    hc_tensor h = r.handle();
    v = h ? &h->t : &undefined;
  }
  at::Tensor &get() { return *v; }
};

template <> struct Holder<c10::optional<at::Tensor>> {
  c10::optional<at::Tensor> v;
  explicit Holder(Reader &r) {
    hc_tensor h = r.handle();
    if (h) v = h->t;
  }
  c10::optional<at::Tensor> &get() { return v; }
};

// TensorsHolder reads a list of tensors; only a Tensor?[] may hold None (a nil element).
struct TensorsHolder {
  std::vector<at::Tensor> v;
  explicit TensorsHolder(Reader &r, bool nil_ok = false) {
    int64_t tg = r.tag();
    if (tg != kTensors) r.want("a list of tensors", tg);
    int64_t n = r.count();
    v.reserve(n);
    for (int64_t k = 0; k < n; k++) {
      hc_tensor h = r.handle();
      if (!h && !nil_ok) r.fail("element " + std::to_string(k) + " is nil (a tensor is required)");
      v.push_back(h ? h->t : at::Tensor());
    }
  }
};

template <> struct Holder<at::TensorList> : TensorsHolder {
  at::TensorList ref;
  explicit Holder(Reader &r) : TensorsHolder(r), ref(v) {}
  at::TensorList &get() { return ref; }
};

template <> struct Holder<at::ITensorListRef> : TensorsHolder {
  at::ITensorListRef ref;
  explicit Holder(Reader &r) : TensorsHolder(r), ref(at::TensorList(v)) {}
  at::ITensorListRef &get() { return ref; }
};

template <> struct Holder<c10::List<c10::optional<at::Tensor>>> {
  c10::List<c10::optional<at::Tensor>> v;
  explicit Holder(Reader &r) {
    TensorsHolder h(r, /*nil_ok=*/true);
    v.reserve(h.v.size());
    for (auto &t : h.v) v.push_back(t.defined() ? c10::optional<at::Tensor>(t) : c10::nullopt);
  }
  c10::List<c10::optional<at::Tensor>> &get() { return v; }
};

// Numbers: int64_t, double, bool, at::Scalar, c10::SymInt and their optionals.
template <class T> T number_as(Reader &r, int64_t tg) {
  at::Scalar s = r.number(tg);
  if constexpr (std::is_same_v<T, at::Scalar>) {
    return s;
  } else if constexpr (std::is_same_v<T, bool>) {
    if (tg != kBool) r.want("a bool", tg);
    return s.toBool();
  } else if constexpr (std::is_same_v<T, double>) {
    if (tg == kBool) r.want("a float", tg);
    return s.toDouble();
  } else if constexpr (std::is_same_v<T, int64_t>) {
    if (tg != kInt) r.want("an int", tg);
    return s.toLong();
  } else if constexpr (std::is_same_v<T, c10::SymInt>) {
    if (tg != kInt) r.want("an int", tg);
    if (!c10::SymInt::check_range(s.toLong())) r.fail("value " + std::to_string(s.toLong()) + " is out of range");
    return c10::SymInt(s.toLong());
  } else {
    static_assert(dependent_false<T>::value, "not a number type");
  }
}

template <class T> struct is_number
    : std::bool_constant<std::is_same_v<T, int64_t> || std::is_same_v<T, double> ||
                         std::is_same_v<T, bool> || std::is_same_v<T, at::Scalar> ||
                         std::is_same_v<T, c10::SymInt>> {};

template <class T> struct Holder<T, std::enable_if_t<is_number<T>::value>> {
  T v;
  explicit Holder(Reader &r) : v(number_as<T>(r, r.tag())) {}
  T &get() { return v; }
};

template <class T> struct Holder<c10::optional<T>, std::enable_if_t<is_number<T>::value>> {
  c10::optional<T> v;
  explicit Holder(Reader &r) {
    int64_t tg = r.tag();
    if (tg != kNone) v = number_as<T>(r, tg);
  }
  c10::optional<T> &get() { return v; }
};

// Int lists: IntArrayRef points into the i stream; SymInt lists are views of the same ints.
inline at::IntArrayRef int_list(Reader &r, int64_t tg) {
  if (tg == kInt) return r.ints(1); // an int where an int list is due: a list of one (int[1])
  if (tg != kInts) r.want("a list of ints", tg);
  return r.ints(r.count());
}

template <> struct Holder<at::IntArrayRef> {
  at::IntArrayRef v;
  explicit Holder(Reader &r) : v(int_list(r, r.tag())) {}
  at::IntArrayRef &get() { return v; }
};

// SymInt lists are the same ints (SymInt holds a plain int64 below its symbolic range).
inline c10::SymIntArrayRef sym_ints(Reader &r, at::IntArrayRef v) {
  for (int64_t x : v)
    if (!c10::SymInt::check_range(x)) r.fail("value " + std::to_string(x) + " is out of range");
  return c10::fromIntArrayRefUnchecked(v);
}

template <> struct Holder<c10::SymIntArrayRef> {
  c10::SymIntArrayRef v;
  explicit Holder(Reader &r) : v(sym_ints(r, int_list(r, r.tag()))) {}
  c10::SymIntArrayRef &get() { return v; }
};

template <> struct Holder<at::OptionalIntArrayRef> {
  at::OptionalIntArrayRef v;
  explicit Holder(Reader &r) {
    int64_t tg = r.tag();
    if (tg != kNone) v = int_list(r, tg);
  }
  at::OptionalIntArrayRef &get() { return v; }
};

template <> struct Holder<at::OptionalSymIntArrayRef> {
  at::OptionalSymIntArrayRef v;
  explicit Holder(Reader &r) {
    int64_t tg = r.tag();
    if (tg != kNone) v = sym_ints(r, int_list(r, tg));
  }
  at::OptionalSymIntArrayRef &get() { return v; }
};

template <> struct Holder<c10::optional<at::IntArrayRef>> {
  c10::optional<at::IntArrayRef> v;
  explicit Holder(Reader &r) {
    int64_t tg = r.tag();
    if (tg != kNone) v = int_list(r, tg);
  }
  c10::optional<at::IntArrayRef> &get() { return v; }
};

inline at::ArrayRef<double> float_list(Reader &r, int64_t tg) {
  if (tg != kFloats) r.want("a list of floats", tg);
  return r.floats(r.count());
}

template <> struct Holder<at::ArrayRef<double>> {
  at::ArrayRef<double> v;
  explicit Holder(Reader &r) : v(float_list(r, r.tag())) {}
  at::ArrayRef<double> &get() { return v; }
};

template <> struct Holder<c10::optional<at::ArrayRef<double>>> {
  c10::optional<at::ArrayRef<double>> v;
  explicit Holder(Reader &r) {
    int64_t tg = r.tag();
    if (tg != kNone) v = float_list(r, tg);
  }
  c10::optional<at::ArrayRef<double>> &get() { return v; }
};

template <size_t N> struct Holder<std::array<bool, N>> {
  std::array<bool, N> v{};
  explicit Holder(Reader &r) {
    int64_t tg = r.tag();
    if (tg != kBools) r.want("a list of bools", tg);
    int64_t n = r.count();
    if (n != static_cast<int64_t>(N)) r.fail("wants " + std::to_string(N) + " bools, got " + std::to_string(n));
    for (size_t k = 0; k < N; k++) v[k] = r.next_i() != 0;
  }
  std::array<bool, N> &get() { return v; }
};

inline c10::string_view string_arg(Reader &r, int64_t tg) {
  if (tg != kStr) r.want("a string", tg);
  return r.str(r.count());
}

template <> struct Holder<c10::string_view> {
  c10::string_view v;
  explicit Holder(Reader &r) : v(string_arg(r, r.tag())) {}
  c10::string_view &get() { return v; }
};

template <> struct Holder<c10::optional<c10::string_view>> {
  c10::optional<c10::string_view> v;
  explicit Holder(Reader &r) {
    int64_t tg = r.tag();
    if (tg != kNone) v = string_arg(r, tg);
  }
  c10::optional<c10::string_view> &get() { return v; }
};

template <> struct Holder<std::string> {
  std::string v;
  explicit Holder(Reader &r) : v(std::string(string_arg(r, r.tag()))) {}
  std::string &get() { return v; }
};

// Enums: dtype, device, layout, memory format, and their optionals.
template <class T> T enum_as(Reader &r, int64_t tg) {
  if constexpr (std::is_same_v<T, at::ScalarType>) {
    if (tg != kDtype) r.want("a dtype", tg);
    int64_t v = r.next_i();
    try {
      return hc::scalar_type(static_cast<int>(v));
    } catch (const std::exception &e) {
      r.fail(e.what());
    }
  } else if constexpr (std::is_same_v<T, at::Device>) {
    if (tg != kDevice) r.want("a device", tg);
    int64_t v = r.next_i();
    try {
      return hc::device(static_cast<int>(v));
    } catch (const std::exception &e) {
      r.fail(e.what());
    }
  } else if constexpr (std::is_same_v<T, at::Layout>) {
    if (tg != kLayout) r.want("a layout", tg);
    int64_t v = r.next_i();
    if (v < 0 || v >= static_cast<int64_t>(at::Layout::NumOptions)) r.fail("unknown layout " + std::to_string(v));
    return static_cast<at::Layout>(v);
  } else if constexpr (std::is_same_v<T, at::MemoryFormat>) {
    if (tg != kMemFmt) r.want("a memory format", tg);
    int64_t v = r.next_i();
    if (v < 0 || v >= static_cast<int64_t>(at::MemoryFormat::NumOptions)) r.fail("unknown memory format " + std::to_string(v));
    return static_cast<at::MemoryFormat>(v);
  } else {
    static_assert(dependent_false<T>::value, "not an enum type");
  }
}

template <class T> struct is_enum_arg
    : std::bool_constant<std::is_same_v<T, at::ScalarType> || std::is_same_v<T, at::Device> ||
                         std::is_same_v<T, at::Layout> || std::is_same_v<T, at::MemoryFormat>> {};

template <class T> struct Holder<T, std::enable_if_t<is_enum_arg<T>::value>> {
  T v;
  explicit Holder(Reader &r) : v(enum_as<T>(r, r.tag())) {}
  T &get() { return v; }
};

template <class T> struct Holder<c10::optional<T>, std::enable_if_t<is_enum_arg<T>::value>> {
  c10::optional<T> v;
  explicit Holder(Reader &r) {
    int64_t tg = r.tag();
    if (tg != kNone) v = enum_as<T>(r, tg);
  }
  c10::optional<T> &get() { return v; }
};

// A generator is never passed: sampling uses the default one (bridge.ManualSeed seeds it).
template <> struct Holder<c10::optional<at::Generator>> {
  c10::optional<at::Generator> v;
  explicit Holder(Reader &) {}
  c10::optional<at::Generator> &get() { return v; }
};

// Results go to the out slots: tensors in order (references — in-place and out= results, the
// Go side returns its own argument — are skipped), a list, and a number.
struct Out {
  hc_tensor *t;
  int nt, k = 0;
  hc_tensor **list;
  int64_t *nlist;
  int64_t *iout; // [0] tag (kInt, kFloat, kBool, kDtype), [1] value
  double *dout;

  void tensor(const at::Tensor &v) {
    if (k >= nt) throw std::invalid_argument("more tensor results than slots");
    t[k++] = hc::wrap(v);
  }
  void tensors(const std::vector<at::Tensor> &v) {
    auto *a = static_cast<hc_tensor *>(malloc(sizeof(hc_tensor) * (v.empty() ? 1 : v.size())));
    if (!a) throw std::bad_alloc();
    for (size_t j = 0; j < v.size(); j++) a[j] = nullptr;
    *list = a;
    *nlist = static_cast<int64_t>(v.size());
    for (size_t j = 0; j < v.size(); j++) a[j] = hc::wrap(v[j]);
  }
  void number(int64_t tag, int64_t i, double d) {
    iout[0] = tag;
    iout[1] = i;
    *dout = d;
  }
};

template <class R> void put(Out &o, R &&r) {
  using T = std::remove_cv_t<std::remove_reference_t<R>>;
  if constexpr (std::is_lvalue_reference_v<R &&> && std::is_same_v<T, at::Tensor>) {
    // Tensor& (or const Tensor&): an in-place or out= result, the Go side's own argument
  } else if constexpr (std::is_same_v<T, at::Tensor>) {
    o.tensor(r);
  } else if constexpr (std::is_same_v<T, std::vector<at::Tensor>>) {
    o.tensors(r);
  } else if constexpr (std::is_same_v<T, bool>) {
    o.number(kBool, r ? 1 : 0, 0);
  } else if constexpr (std::is_same_v<T, int64_t>) {
    o.number(kInt, r, 0);
  } else if constexpr (std::is_same_v<T, double>) {
    o.number(kFloat, 0, r);
  } else if constexpr (std::is_same_v<T, c10::SymInt>) {
    o.number(kInt, r.expect_int(), 0);
  } else if constexpr (std::is_same_v<T, at::Scalar>) {
    if (r.isBoolean()) o.number(kBool, r.toBool(), 0);
    else if (r.isIntegral(false)) o.number(kInt, r.toLong(), 0);
    else o.number(kFloat, 0, r.toDouble());
  } else if constexpr (std::is_same_v<T, at::ScalarType>) {
    o.number(kDtype, hc::dtype_of(r), 0);
  } else {
    throw std::invalid_argument(std::string("returns a type this build cannot pass back (") + typeid(T).name() + ")");
  }
}

template <class... E> void put(Out &o, std::tuple<E...> &&r) {
  std::apply([&](auto &&...e) { (put(o, std::forward<decltype(e)>(e)), ...); }, std::move(r));
}

// next counts the argument about to be decoded, for messages.
inline Reader &next(Reader &r) {
  r.arg++;
  return r;
}

template <class F> struct Sig;
template <class R, class... A> struct Sig<R(A...)> {
  template <class Op> static void invoke(Reader &r, Out &o) {
    // Braces evaluate left to right: the streams are read in the parameters' order.
    std::tuple<Holder<std::remove_cv_t<std::remove_reference_t<A>>>...> h{
        Holder<std::remove_cv_t<std::remove_reference_t<A>>>(next(r))...};
    if (!r.done()) {
      r.arg = -1;
      r.fail("was given more arguments than it takes (" + std::to_string(sizeof...(A)) + ")");
    }
    if constexpr (std::is_void_v<R>) {
      std::apply([](auto &...x) { Op::call(x.get()...); }, h);
    } else {
      put(o, std::apply([](auto &...x) -> R { return Op::call(x.get()...); }, h));
    }
  }
};

// is_declared<Op> is true when the installed libtorch defines at::_ops::Op: the generated code
// forward-declares every op it names, so a version without one still compiles.
template <class T, class = void> struct is_declared : std::false_type {};
template <class T> struct is_declared<T, std::void_t<decltype(sizeof(T))>> : std::true_type {};

using Fn = void (*)(Reader &, Out &);

template <class Op> void invoke(Reader &r, Out &o) {
  if constexpr (is_declared<Op>::value) {
    Sig<typename Op::schema>::template invoke<Op>(r, o);
  } else {
    r.arg = -1;
    r.fail("is not in the libtorch this shim was built against");
  }
}

// One generated op: its schema name and overload, and how to call it.
struct Entry {
  const char *name;
  const char *overload;
  Fn fn;
};

} // namespace hc::aten
