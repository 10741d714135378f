package bridge

// #include "hotcb_torch.h"
import "C"

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"unsafe"

	"github.com/hotcb/hotcb/bridge/torchfile"
)

// Files are in torch.save's format: Python's torch.load reads what Save writes, and Load reads
// what Python's torch.save writes. Tensors are stored on the CPU, detached, so a file written on
// a GPU machine loads anywhere.

// Named is a tensor with a name, as in a state dict.
type Named struct {
	Name   string
	Tensor *Tensor
}

// Encode serialises named tensors, in order, as a dict (torch.load returns a dict). A "/" in a
// name nests dicts: "model/fc.weight" is ckpt["model"]["fc.weight"] in Python (and reads back
// in Go, flattened, as "model.fc.weight").
func Encode(items []Named) ([]byte, error) {
	for _, it := range items {
		if it.Tensor == nil {
			return nil, &Error{Op: "save", Msg: fmt.Sprintf("tensor %q is nil", it.Name)}
		}
		if it.Tensor.h == nil {
			return nil, &Error{Op: "save", Msg: fmt.Sprintf("tensor %q: %v", it.Name, ErrFreed), Err: ErrFreed}
		}
	}
	var v Value
	if err := v.NestedDict(items, "/"); err != nil {
		return nil, &Error{Op: "save", Msg: err.Error(), Err: err}
	}
	return EncodeValue(&v)
}

// EncodeTensor serialises a single tensor (torch.load returns the tensor).
func EncodeTensor(t *Tensor) ([]byte, error) {
	if t == nil || t.h == nil {
		return nil, &Error{Op: "save", Msg: "nil or freed tensor", Err: ErrFreed}
	}
	var v Value
	v.Tensor(t)
	return EncodeValue(&v)
}

// Decode reads torch.save bytes (see package torchfile). Nested dicts and lists are flattened
// into dotted names ("model.fc.weight", "param_groups.0.lr"); ints, floats and bools become 0-d
// tensors (int64, float64, bool); other values (strings, None, objects) are skipped and counted.
// Tensors come back on the CPU, detached; views of one storage share it, as in PyTorch.
func Decode(data []byte) (items []Named, skipped int, err error) {
	if len(data) == 0 {
		return nil, 0, &Error{Op: "load", Msg: "empty input: not a torch.save file"}
	}
	root, err := torchfile.ReadBytes(data)
	if err != nil {
		return nil, 0, &Error{Op: "load", Msg: err.Error(), Err: err}
	}
	leaves, skipped := torchfile.Flatten(root)
	err = Try(func() {
		storages := map[*torchfile.Storage]*Tensor{}
		items = make([]Named, len(leaves))
		for i, l := range leaves {
			items[i] = Named{Name: l.Name, Tensor: leafTensor(l.Value, storages)}
		}
	})
	if err != nil {
		return nil, 0, err
	}
	return items, skipped, nil
}

func leafTensor(v any, storages map[*torchfile.Storage]*Tensor) *Tensor {
	switch x := v.(type) {
	case int64:
		return FromSlice([]int64{x}).Reshape()
	case float64:
		return FromSlice([]float64{x}).Reshape()
	case bool:
		return FromSlice([]bool{x}).Reshape()
	case *torchfile.TensorRef:
		st, ok := storages[x.Storage]
		if !ok {
			dt, err := ParseDType(x.Storage.DType)
			if err != nil {
				panic(&Error{Op: "load", Msg: err.Error()})
			}
			var p unsafe.Pointer
			if len(x.Storage.Data) > 0 {
				p = unsafe.Pointer(&x.Storage.Data[0])
			}
			st = fromData("load", p, dt, Shape{x.Storage.Numel()}, CPU, x.Storage.Data)
			storages[x.Storage] = st
		}
		is := make([]int64, 0, 2+2*len(x.Size))
		is = append(is, int64(len(x.Size)))
		is = append(is, x.Size...)
		is = append(is, x.Stride...)
		is = append(is, x.Offset)
		return call1("load", C.HC_AS_STRIDED, []*Tensor{st}, is, nil)
	}
	panic(&Error{Op: "load", Msg: fmt.Sprintf("unexpected leaf %T", v)})
}

// Save writes one tensor to path (atomically: a crash leaves the old file or the new one).
func Save(path string, t *Tensor) error {
	b, err := EncodeTensor(t)
	if err != nil {
		return err
	}
	return writeFileAtomic(path, b)
}

// SaveNamed writes named tensors to path as a dict, in order.
func SaveNamed(path string, items []Named) error {
	b, err := Encode(items)
	if err != nil {
		return err
	}
	return writeFileAtomic(path, b)
}

// SaveMap writes a map of tensors to path as a dict with sorted keys.
func SaveMap(path string, m map[string]*Tensor) error { return SaveNamed(path, SortedNamed(m)) }

// SortedNamed turns a map into Named items sorted by name.
func SortedNamed(m map[string]*Tensor) []Named {
	items := make([]Named, 0, len(m))
	for k, v := range m {
		items = append(items, Named{k, v})
	}
	sort.Slice(items, func(i, j int) bool { return items[i].Name < items[j].Name })
	return items
}

// Load reads a file holding a single tensor (torch.save(tensor)).
func Load(path string) (*Tensor, error) {
	items, _, err := loadFile(path)
	if err != nil {
		return nil, err
	}
	if len(items) != 1 || items[0].Name != "" {
		return nil, &Error{Op: "load", Msg: fmt.Sprintf("%s holds %d named values, not a single tensor (use LoadNamed)", path, len(items))}
	}
	return items[0].Tensor, nil
}

// LoadNamed reads a file written by SaveNamed or by torch.save of a dict (see Decode).
func LoadNamed(path string) ([]Named, error) {
	items, _, err := loadFile(path)
	return items, err
}

// LoadMap is LoadNamed as a map.
func LoadMap(path string) (map[string]*Tensor, error) {
	items, _, err := loadFile(path)
	if err != nil {
		return nil, err
	}
	m := make(map[string]*Tensor, len(items))
	for _, it := range items {
		m[it.Name] = it.Tensor
	}
	return m, nil
}

func loadFile(path string) ([]Named, int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, 0, err
	}
	items, skipped, err := Decode(b)
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w", path, err)
	}
	return items, skipped, nil
}

// writeFileAtomic writes data to a temporary file next to path, syncs it and renames it over
// path.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, werr := f.Write(data)
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(tmp, path)
	}
	if werr != nil {
		os.Remove(tmp)
		return werr
	}
	return nil
}
