// hc_aten: the generated ATen ops (tables in aten_gen_*.cpp, made by cmd/atengen); the tag names
// and messages it shares with hc_aten_boxed (aten_boxed.cpp: any registered op, by name).
#include <ATen/core/dispatch/Dispatcher.h>

#include <sstream>

#include "aten_call.h"
#include "aten_gen.h"

namespace hc::aten {

const char *tag_name(int64_t tag) {
  switch (tag) {
  case kNone: return "None";
  case kInt: return "an int";
  case kFloat: return "a float";
  case kBool: return "a bool";
  case kInts: return "a list of ints";
  case kFloats: return "a list of floats";
  case kStr: return "a string";
  case kDtype: return "a dtype";
  case kDevice: return "a device";
  case kLayout: return "a layout";
  case kMemFmt: return "a memory format";
  case kTensors: return "a list of tensors";
  case kBools: return "a list of bools";
  case kTensor: return "a tensor";
  case kDefault: return "Default";
  case kNamed: return "a named argument";
  case kStrs: return "a list of strings";
  case kTuple: return "a tuple";
  }
  return "an unknown tag";
}

// "argument 2 (dim): msg", the argument's name from the registered schema (the Go side names
// the op).
void Reader::fail(const std::string &msg) const {
  std::ostringstream m;
  if (arg > 0) {
    m << "argument " << arg;
    if (op) {
      auto h = c10::Dispatcher::singleton().findSchema({std::string("aten::") + op->name, op->overload});
      if (h && static_cast<size_t>(arg) <= h->schema().arguments().size())
        m << " (" << h->schema().arguments()[arg - 1].name() << ")";
    }
    m << ": ";
  }
  m << msg;
  throw std::invalid_argument(m.str());
}

} // namespace hc::aten

using namespace hc::aten;

extern "C" {

int32_t hc_aten_count(void) { return hc_aten_gen_count; }
const char *hc_aten_table_hash(void) { return hc_aten_gen_hash; }

hc_err hc_aten(int32_t op, const hc_tensor *t, int32_t nt, const int64_t *i, int32_t ni,
               const double *d, int32_t nd, const char *s, int32_t ns, hc_tensor *out, int32_t nout,
               hc_tensor **list, int64_t *nlist, int64_t *iout, double *dout) {
  return hc::guard([&] {
    const Entry *e = hc_aten_gen_entry(op);
    if (!e) throw std::invalid_argument("no generated op " + std::to_string(op) + " in this shim");
    Reader r{e, t, nt, 0, i, ni, 0, d, nd, 0, s, ns, 0};
    Out o{out, nout, 0, list, nlist, iout, dout};
    e->fn(r, o);
  });
}

} // extern "C"
