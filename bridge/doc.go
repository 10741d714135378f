// Package bridge is hotcb-go's binding to libtorch: tensors, the ops needed to write models and
// losses, autograd, serialization compatible with torch.save/torch.load (Value: any Python value
// of tensors, numbers, strings, lists, tuples and dicts, also as Go values with AppendGo/Go),
// TorchScript modules (ScriptModule, the C side of package bridge/jit), and CUDA helpers.
//
// It is the only package that imports "C". It calls one small C ABI (cpp/hotcb_torch.h) built
// into build/libhotcb_torch.so, so the same Go code runs on a CPU shim or a CUDA shim.
//
// Errors: tensor computations panic with a *Error carrying libtorch's message (use Try, or the
// controller's isolation, to turn them into errors); functions that touch files or the CUDA
// runtime return an error. Memory: intermediates may simply be dropped — the garbage collector
// releases them, and the bridge runs it when libtorch memory held by Go handles grows (see
// SetGCThreshold) — while Free releases a tensor at once, and Scope frees every tensor a
// training step created when the step returns (Keep exempts one). The package also raises
// glibc's malloc trim and mmap thresholds when it loads (Malloc, HOTCB_MALLOC).
package bridge
