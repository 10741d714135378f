// A reference for the shim entry optim.TorchStateDict needs (it is not in cpp/ yet): write a
// Python value given in prefix form (optim.TorchValue) in torch.save's format. value_of is what
// hc_save_value would do between decoding its arguments and torch::jit::pickle_save, as hc_save
// does for a dict of tensors. save_value.sh builds this program and checks, with Python, that
// the files it writes from Go's TorchStateDict load into torch.optim.
//
// Usage: save_value DIR — reads DIR/codes.txt (the codes, whitespace separated),
// DIR/floats.txt (one float per line, in Go's shortest round-trip form), DIR/strings.txt (one
// string per line) and DIR/tensors.pt (a dict t0, t1, … of the tensors, by bridge.SaveNamed),
// and writes DIR/value.pt.
#include <ATen/ATen.h>
#include <ATen/core/Dict.h>
#include <ATen/core/List.h>
#include <ATen/core/ivalue.h>
#include <torch/csrc/jit/serialization/pickle.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

// The tags of optim.TorchValue.Codes.
enum Tag : int64_t { kNone, kBool, kInt, kFloat, kStr, kTensor, kList, kTuple, kDict };

struct Streams {
  const std::vector<int64_t> &codes;
  const std::vector<double> &floats;
  const std::vector<std::string> &strings;
  const std::vector<at::Tensor> &tensors;
  size_t c = 0, f = 0, s = 0, t = 0;

  int64_t code() {
    if (c >= codes.size()) throw std::invalid_argument("the codes end inside a value");
    return codes[c++];
  }
  int64_t length() {
    int64_t n = code();
    if (n < 0 || static_cast<size_t>(n) > codes.size()) throw std::invalid_argument("bad length " + std::to_string(n));
    return n;
  }
};

c10::IValue value_of(Streams &st, int depth = 0) {
  if (depth > 256) throw std::invalid_argument("the value nests deeper than 256");
  switch (st.code()) {
  case kNone:
    return c10::IValue();
  case kBool:
    return c10::IValue(st.code() != 0);
  case kInt:
    return c10::IValue(st.code());
  case kFloat:
    if (st.f >= st.floats.size()) throw std::invalid_argument("more float tags than floats");
    return c10::IValue(st.floats[st.f++]);
  case kStr:
    if (st.s >= st.strings.size()) throw std::invalid_argument("more str tags than strings");
    return c10::IValue(st.strings[st.s++]);
  case kTensor:
    if (st.t >= st.tensors.size()) throw std::invalid_argument("more tensor tags than tensors");
    return c10::IValue(st.tensors[st.t++].detach().to(at::kCPU));
  case kList: {
    // A list of AnyType: pickled as a plain list (a typed List[int] would be pickled through
    // torch.jit._pickle.build_intlist).
    int64_t n = st.length();
    c10::impl::GenericList l(c10::AnyType::get());
    l.reserve(n);
    for (int64_t i = 0; i < n; i++) l.push_back(value_of(st, depth + 1));
    return c10::IValue(l);
  }
  case kTuple: {
    int64_t n = st.length();
    std::vector<c10::IValue> elems;
    elems.reserve(n);
    for (int64_t i = 0; i < n; i++) elems.push_back(value_of(st, depth + 1));
    return c10::IValue(c10::ivalue::Tuple::create(std::move(elems)));
  }
  case kDict: {
    // Keys are all ints or all strs (state is keyed by parameter index, the rest by name).
    int64_t n = st.length();
    std::vector<std::pair<c10::IValue, c10::IValue>> items;
    items.reserve(n);
    for (int64_t i = 0; i < n; i++) {
      c10::IValue k = value_of(st, depth + 1);
      if (!k.isInt() && !k.isString()) throw std::invalid_argument("a dict key that is neither int nor str");
      items.emplace_back(std::move(k), value_of(st, depth + 1));
    }
    bool ints = !items.empty() && items[0].first.isInt();
    c10::impl::GenericDict d(ints ? c10::TypePtr(c10::IntType::get()) : c10::TypePtr(c10::StringType::get()),
                             c10::AnyType::get());
    for (auto &kv : items) {
      if (kv.first.isInt() != ints) throw std::invalid_argument("a dict mixes int and str keys");
      if (d.contains(kv.first)) throw std::invalid_argument("a dict repeats a key");
      d.insert(std::move(kv.first), std::move(kv.second));
    }
    return c10::IValue(d);
  }
  }
  throw std::invalid_argument("unknown tag " + std::to_string(st.codes[st.c - 1]));
}

std::vector<char> read_file(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  return std::vector<char>(std::istreambuf_iterator<char>(in), {});
}

} // namespace

int main(int argc, char **argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: save_value DIR\n");
    return 2;
  }
  std::string dir = argv[1];
  try {
    std::vector<int64_t> codes;
    std::ifstream cin(dir + "/codes.txt");
    for (int64_t c; cin >> c;) codes.push_back(c);
    std::vector<double> floats;
    std::ifstream fin(dir + "/floats.txt");
    for (std::string line; std::getline(fin, line);) floats.push_back(std::strtod(line.c_str(), nullptr));
    std::vector<std::string> strings;
    std::ifstream sin(dir + "/strings.txt");
    for (std::string line; std::getline(sin, line);) strings.push_back(line);
    std::vector<at::Tensor> tensors;
    auto td = torch::jit::pickle_load(read_file(dir + "/tensors.pt")).toGenericDict();
    for (size_t i = 0; i < td.size(); i++) tensors.push_back(td.at("t" + std::to_string(i)).toTensor());

    Streams st{codes, floats, strings, tensors};
    c10::IValue v = value_of(st);
    if (st.c != codes.size() || st.f != floats.size() || st.s != strings.size() || st.t != tensors.size())
      throw std::invalid_argument("values left over after the value");
    std::vector<char> bytes = torch::jit::pickle_save(v);
    std::ofstream out(dir + "/value.pt", std::ios::binary);
    out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!out) throw std::runtime_error("cannot write value.pt");
  } catch (const std::exception &e) {
    std::fprintf(stderr, "save_value: %s\n", e.what());
    return 1;
  }
  return 0;
}
