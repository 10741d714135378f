// Package torchfile reads the files that PyTorch's torch.save writes (the zip format of
// PyTorch ≥ 1.6: a pickle plus one raw entry per storage) without executing anything: a small
// pickle machine understands tensors, storages, dicts (including OrderedDict state dicts),
// lists, tuples and numbers, and keeps everything else as an opaque Object.
//
// It is pure Go so that it can be fuzzed and used without libtorch; package bridge turns the
// TensorRefs it returns into tensors.
package torchfile
