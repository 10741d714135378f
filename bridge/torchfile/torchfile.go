package torchfile

import (
	"archive/zip"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Storage is the raw data of one torch storage, shared by every tensor that views it.
type Storage struct {
	Key      string
	DType    string // "float32", "int64", ... (see dtypeOfStorage)
	Location string // "cpu", "cuda:0", ...
	Data     []byte // little-endian elements
}

// ElemSize is the size in bytes of one element of dtype.
func ElemSize(dtype string) int {
	switch dtype {
	case "float64", "int64":
		return 8
	case "float32", "int32":
		return 4
	case "float16", "bfloat16", "int16":
		return 2
	}
	return 1
}

// Numel is the number of elements the storage holds.
func (s *Storage) Numel() int64 { return int64(len(s.Data) / ElemSize(s.DType)) }

// TensorRef is a tensor as the pickle describes it: a strided view of a storage.
type TensorRef struct {
	Storage      *Storage
	Offset       int64
	Size         []int64
	Stride       []int64
	RequiresGrad bool
}

// Check verifies that the view stays inside its storage.
func (t *TensorRef) Check() error {
	if len(t.Size) != len(t.Stride) {
		return fmt.Errorf("tensor has %d sizes but %d strides", len(t.Size), len(t.Stride))
	}
	if t.Offset < 0 {
		return fmt.Errorf("negative storage offset %d", t.Offset)
	}
	last := t.Offset
	for i, s := range t.Size {
		if s < 0 || t.Stride[i] < 0 {
			return fmt.Errorf("negative size or stride in %v / %v", t.Size, t.Stride)
		}
		if s == 0 {
			return nil // empty tensor: nothing is read
		}
		if t.Stride[i] > 0 && s-1 > (1<<62)/t.Stride[i] {
			return fmt.Errorf("size %v with stride %v overflows", t.Size, t.Stride)
		}
		last += (s - 1) * t.Stride[i]
	}
	if n := t.Storage.Numel(); last >= n {
		return fmt.Errorf("view (offset %d, size %v, stride %v) reads element %d of a storage of %d elements",
			t.Offset, t.Size, t.Stride, last, n)
	}
	return nil
}

// Dict is an ordered dict (dict and OrderedDict alike).
type Dict struct {
	Keys   []any
	Values []any
	index  map[any]int
}

// Set adds or replaces a key (keys are comparable: the pickle machine admits only hashable ones).
func (d *Dict) Set(k, v any) {
	if d.index == nil {
		d.index = map[any]int{}
	}
	if i, ok := d.index[k]; ok {
		d.Values[i] = v
		return
	}
	d.index[k] = len(d.Keys)
	d.Keys = append(d.Keys, k)
	d.Values = append(d.Values, v)
}

// List is a Python list (a pointer, because a pickle appends to a list after memoizing it).
type List struct{ Items []any }

// Tuple is a Python tuple.
type Tuple []any

// Global is a reference to a Python class or function by module and name.
type Global struct{ Module, Name string }

func (g Global) String() string { return g.Module + "." + g.Name }

// Object is anything the reader does not model (a class instance, a numpy scalar ...).
type Object struct {
	Class Global
	Args  []any
	State any
}

// Read parses a torch.save file held in r.
func Read(r io.ReaderAt, size int64) (any, error) {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		if isLegacy(r) {
			return nil, errors.New("this is the legacy (PyTorch < 1.6) torch.save format, which is not supported: re-save it with a newer PyTorch")
		}
		return nil, fmt.Errorf("not a torch.save file: %w", err)
	}
	var pkl *zip.File
	files := map[string]*zip.File{}
	for _, f := range zr.File {
		files[f.Name] = f
		if f.Name == "data.pkl" || strings.HasSuffix(f.Name, "/data.pkl") {
			if pkl == nil || len(f.Name) < len(pkl.Name) {
				pkl = f
			}
		}
	}
	if pkl == nil {
		return nil, errors.New("not a torch.save file: no data.pkl in the archive")
	}
	prefix := strings.TrimSuffix(pkl.Name, "data.pkl")
	if isScript(zr, prefix) {
		return nil, ErrTorchScript
	}
	if bo, ok := files[prefix+"byteorder"]; ok {
		b, err := readEntry(bo, 16)
		if err != nil {
			return nil, err
		}
		if strings.TrimSpace(string(b)) != "little" {
			return nil, fmt.Errorf("byte order %q is not supported", strings.TrimSpace(string(b)))
		}
	}
	data, err := readEntry(pkl, 1<<30)
	if err != nil {
		return nil, err
	}
	storages := map[string]*Storage{}
	m := &machine{in: data, memo: map[int]any{}}
	m.persistent = func(pid any) (any, error) {
		t, ok := pid.(Tuple)
		if !ok || len(t) < 5 || t[0] != "storage" {
			return nil, fmt.Errorf("unknown persistent id %v", pid)
		}
		cls, ok1 := t[1].(Global)
		key, ok2 := t[2].(string)
		loc, _ := t[3].(string)
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("malformed storage reference %v", pid)
		}
		if s, ok := storages[key]; ok {
			return s, nil
		}
		dt, err := dtypeOfStorage(cls.Name)
		if err != nil {
			return nil, err
		}
		f, ok := files[prefix+"data/"+key]
		if !ok {
			return nil, fmt.Errorf("storage %q is missing from the archive", key)
		}
		b, err := readEntry(f, 1<<40)
		if err != nil {
			return nil, err
		}
		if len(b)%ElemSize(dt) != 0 {
			return nil, fmt.Errorf("storage %q has %d bytes, not a whole number of %s elements", key, len(b), dt)
		}
		s := &Storage{Key: key, DType: dt, Location: loc, Data: b}
		storages[key] = s
		return s, nil
	}
	return m.run()
}

// ErrTorchScript is Read's error for a TorchScript archive (torch.jit.save), which holds code
// and a module object rather than a torch.save value.
var ErrTorchScript = errors.New("this is a TorchScript module (torch.jit.save), not a torch.save file: load it with jit.Load (package github.com/hotcb/hotcb/bridge/jit), or train it with hotcb train --model FILE")

// Kind is what a file holds, as far as loading it goes (Sniff).
type Kind int

const (
	NotTorch    Kind = iota // neither a zip archive nor a pickle
	Legacy                  // a bare pickle: torch.save of PyTorch < 1.6 (or _use_new_zipfile_serialization=False), or pickle.dump
	TorchSave               // a torch.save archive: Read reads it
	TorchScript             // a torch.jit.save archive: package bridge/jit loads it
	OtherZip                // a zip archive that is neither
)

func (k Kind) String() string {
	return [...]string{"not a PyTorch file", "a bare pickle (legacy torch.save or pickle.dump)", "a torch.save file",
		"a TorchScript module (torch.jit.save)", "a zip archive that PyTorch did not write"}[k]
}

// Sniff tells what r holds from the archive's entry names (or a pickle's first byte), without
// reading the data.
func Sniff(r io.ReaderAt, size int64) Kind {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		if isLegacy(r) {
			return Legacy
		}
		return NotTorch
	}
	for _, f := range zr.File {
		if f.Name == "data.pkl" || strings.HasSuffix(f.Name, "/data.pkl") {
			if isScript(zr, strings.TrimSuffix(f.Name, "data.pkl")) {
				return TorchScript
			}
			return TorchSave
		}
	}
	return OtherZip
}

// isScript reports whether the archive has what torch.jit.save writes beside data.pkl: the
// module's code and its constants.
func isScript(zr *zip.Reader, prefix string) bool {
	for _, f := range zr.File {
		if f.Name == prefix+"constants.pkl" || strings.HasPrefix(f.Name, prefix+"code/") {
			return true
		}
	}
	return false
}

// NamesFile reports whether name (a --model value, say) names a file rather than one of the
// builtins: it is none of them and has a directory or an extension in it, or a file of that name
// exists. `hotcb train --model` and package trainer read their model names this way.
func NamesFile(name string, builtins ...string) bool {
	for _, b := range builtins {
		if name == b {
			return false
		}
	}
	if strings.ContainsRune(name, filepath.Separator) || filepath.Ext(name) != "" {
		return true
	}
	_, err := os.Stat(name)
	return err == nil
}

// ReadBytes parses a torch.save file held in memory.
func ReadBytes(b []byte) (any, error) { return Read(bytes.NewReader(b), int64(len(b))) }

func isLegacy(r io.ReaderAt) bool {
	var head [2]byte
	_, err := r.ReadAt(head[:], 0)
	return err == nil && head[0] == 0x80 // a bare pickle (magic number first)
}

func readEntry(f *zip.File, limit int64) ([]byte, error) {
	if int64(f.UncompressedSize64) > limit {
		return nil, fmt.Errorf("archive entry %s is too large (%d bytes)", f.Name, f.UncompressedSize64)
	}
	rc, err := f.Open()
	if err != nil {
		return nil, fmt.Errorf("archive entry %s: %w", f.Name, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, limit+1))
	if err != nil {
		return nil, fmt.Errorf("archive entry %s: %w", f.Name, err)
	}
	return b, nil
}

func dtypeOfStorage(class string) (string, error) {
	switch class {
	case "FloatStorage":
		return "float32", nil
	case "DoubleStorage":
		return "float64", nil
	case "HalfStorage":
		return "float16", nil
	case "BFloat16Storage":
		return "bfloat16", nil
	case "LongStorage":
		return "int64", nil
	case "IntStorage":
		return "int32", nil
	case "ShortStorage":
		return "int16", nil
	case "CharStorage":
		return "int8", nil
	case "ByteStorage":
		return "uint8", nil
	case "BoolStorage":
		return "bool", nil
	}
	return "", fmt.Errorf("storage type %s is not supported", class)
}

// Item is one leaf of a flattened file: a *TensorRef, int64, float64 or bool.
type Item struct {
	Name  string
	Value any
}

// Flatten lists the tensors and numbers of a value tree, naming each by its path with dots
// ("model.fc.weight", "param_groups.0.lr"), in order. Other leaves (strings, None, objects) are
// counted in skipped.
func Flatten(v any) (items []Item, skipped int) {
	// A pickle can make a container hold itself (DUP then APPEND); such cycles, and nesting
	// deeper than maxDepth, are skipped rather than followed forever.
	// Shared containers (a DAG) could still multiply the paths, so the walk also stops after
	// maxVisits nodes.
	const maxDepth, maxVisits = 256, 1 << 20
	visits := 0
	visiting := map[any]bool{}
	var walk func(prefix string, v any, depth int)
	join := func(p, k string) string {
		if p == "" {
			return k
		}
		return p + "." + k
	}
	enter := func(key any, depth int) bool {
		if depth > maxDepth || visiting[key] {
			skipped++
			return false
		}
		visiting[key] = true
		return true
	}
	walk = func(prefix string, v any, depth int) {
		if visits++; visits > maxVisits {
			skipped++
			return
		}
		switch x := v.(type) {
		case *TensorRef, int64, float64, bool:
			items = append(items, Item{prefix, x})
		case *Dict:
			if !enter(x, depth) {
				return
			}
			defer delete(visiting, x)
			for i, k := range x.Keys {
				walk(join(prefix, keyString(k)), x.Values[i], depth+1)
			}
		case *List:
			if !enter(x, depth) {
				return
			}
			defer delete(visiting, x)
			for i, e := range x.Items {
				walk(join(prefix, strconv.Itoa(i)), e, depth+1)
			}
		case Tuple:
			if depth > maxDepth {
				skipped++
				return
			}
			for i, e := range x {
				walk(join(prefix, strconv.Itoa(i)), e, depth+1)
			}
		default:
			skipped++
		}
	}
	walk("", v, 0)
	return items, skipped
}

func keyString(k any) string {
	switch x := k.(type) {
	case string:
		return x
	case int64:
		return strconv.FormatInt(x, 10)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case bool:
		return strconv.FormatBool(x)
	}
	return fmt.Sprint(k)
}
