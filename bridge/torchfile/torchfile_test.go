package torchfile

import (
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func readFixture(t *testing.T, name string) any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	v, err := ReadBytes(b)
	require.NoError(t, err)
	return v
}

// values decodes a TensorRef's elements in logical (row-major) order, for float32/int64/float64.
func values(t *testing.T, r *TensorRef) []float64 {
	t.Helper()
	var out []float64
	var walk func(dim int, off int64)
	walk = func(dim int, off int64) {
		if dim == len(r.Size) {
			es := int64(ElemSize(r.Storage.DType))
			b := r.Storage.Data[off*es : (off+1)*es]
			switch r.Storage.DType {
			case "float32":
				out = append(out, float64(math.Float32frombits(binary.LittleEndian.Uint32(b))))
			case "float64":
				out = append(out, math.Float64frombits(binary.LittleEndian.Uint64(b)))
			case "int64":
				out = append(out, float64(int64(binary.LittleEndian.Uint64(b))))
			default:
				t.Fatalf("values: dtype %s", r.Storage.DType)
			}
			return
		}
		for i := int64(0); i < r.Size[dim]; i++ {
			walk(dim+1, off+i*r.Stride[dim])
		}
	}
	walk(0, r.Offset)
	return out
}

func TestReadsAStateDict(t *testing.T) {
	items, skipped := Flatten(readFixture(t, "state_dict.pt"))
	require.Zero(t, skipped)
	require.Len(t, items, 2)
	require.Equal(t, "weight", items[0].Name)
	require.Equal(t, "bias", items[1].Name)
	w := items[0].Value.(*TensorRef)
	require.Equal(t, "float32", w.Storage.DType)
	require.Equal(t, []int64{2, 3}, w.Size)
	require.Equal(t, []float64{0, 1, 2, 3, 4, 5}, values(t, w))
	require.Equal(t, []float64{0.5, -0.5}, values(t, items[1].Value.(*TensorRef)))
}

func TestReadsANestedCheckpoint(t *testing.T) {
	items, skipped := Flatten(readFixture(t, "checkpoint.pt"))
	require.Equal(t, 2, skipped, "the string and the None")
	byName := map[string]any{}
	var names []string
	for _, it := range items {
		byName[it.Name] = it.Value
		names = append(names, it.Name)
	}
	require.Equal(t, []string{"model.w", "views.0", "views.1", "step", "lr", "flag", "mask", "half", "param"}, names)
	require.Equal(t, int64(12), byName["step"])
	require.Equal(t, 0.25, byName["lr"])
	require.Equal(t, true, byName["flag"])

	v0, v1 := byName["views.0"].(*TensorRef), byName["views.1"].(*TensorRef)
	require.Same(t, v0.Storage, v1.Storage, "views share one storage")
	require.Equal(t, []float64{2, 3, 4}, values(t, v0))
	require.Equal(t, []int64{5, 2}, v1.Size)
	require.Equal(t, []float64{0, 5, 1, 6, 2, 7, 3, 8, 4, 9}, values(t, v1))
	require.Equal(t, "bool", byName["mask"].(*TensorRef).Storage.DType)
	require.Equal(t, "float16", byName["half"].(*TensorRef).Storage.DType)
	p := byName["param"].(*TensorRef)
	require.True(t, p.RequiresGrad)
	require.Equal(t, []float64{1, 1, 1, 1}, values(t, byName["model.w"].(*TensorRef)))
}

func TestErrors(t *testing.T) {
	legacy, err := os.ReadFile(filepath.Join("testdata", "legacy.pt"))
	require.NoError(t, err)
	_, err = ReadBytes(legacy)
	require.ErrorContains(t, err, "legacy (PyTorch < 1.6) torch.save format")

	_, err = ReadBytes([]byte("hello"))
	require.ErrorContains(t, err, "not a torch.save file")

	good, err := os.ReadFile(filepath.Join("testdata", "state_dict.pt"))
	require.NoError(t, err)
	_, err = ReadBytes(good[:len(good)-40])
	require.ErrorContains(t, err, "not a torch.save file")
}

func TestPickleMachineErrors(t *testing.T) {
	run := func(p []byte) error {
		m := &machine{in: p, memo: map[int]any{}}
		_, err := m.run()
		return err
	}
	require.ErrorContains(t, run([]byte{0x80, 2}), "truncated")
	require.ErrorContains(t, run([]byte{'0', '.'}), "underflow")
	require.ErrorContains(t, run([]byte{'h', 9, '.'}), "memo key 9 not found")
	require.ErrorContains(t, run([]byte{0xff}), "unsupported pickle opcode 0xff")
	require.ErrorContains(t, run([]byte{'X', 0xff, 0xff, 0xff, 0x7f}), "truncated")
	require.ErrorContains(t, run([]byte{'Q', '.'}), "underflow")
	require.ErrorContains(t, run([]byte{'N', 'Q', '.'}), "persistent id without a loader")
	// a storage view that reads past the end is refused
	s := &Storage{DType: "float32", Data: make([]byte, 16)}
	r := &TensorRef{Storage: s, Size: []int64{2, 3}, Stride: []int64{3, 1}}
	require.ErrorContains(t, r.Check(), "reads element 5 of a storage of 4 elements")
	require.NoError(t, (&TensorRef{Storage: s, Size: []int64{2, 2}, Stride: []int64{2, 1}}).Check())
	require.NoError(t, (&TensorRef{Storage: s, Size: []int64{0, 9}, Stride: []int64{9, 1}}).Check())
}

func TestLongDecoding(t *testing.T) {
	require.Equal(t, int64(-1), decodeLong([]byte{0xff}))
	require.Equal(t, int64(255), decodeLong([]byte{0xff, 0x00}))
	require.Equal(t, int64(math.MinInt64), decodeLong([]byte{0, 0, 0, 0, 0, 0, 0, 0x80}))
	big := decodeLong(bytes.Repeat([]byte{0xff}, 9))
	require.Equal(t, "-1", big.(interface{ String() string }).String())
}

// FuzzRead feeds arbitrary bytes to the reader: it must never panic, and every tensor it
// accepts must stay inside its storage.
func FuzzRead(f *testing.F) {
	for _, name := range []string{"state_dict.pt", "checkpoint.pt", "legacy.pt"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		require.NoError(f, err)
		f.Add(b)
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := ReadBytes(data)
		if err != nil {
			return
		}
		items, _ := Flatten(v)
		for _, it := range items {
			if r, ok := it.Value.(*TensorRef); ok {
				require.NoError(t, r.Check(), it.Name)
			}
		}
	})
}

// FuzzPickle fuzzes the pickle machine alone (zip parsing would hide most mutations).
func FuzzPickle(f *testing.F) {
	f.Add([]byte{0x80, 2, '}', 'q', 0, '(', 'X', 1, 0, 0, 0, 'a', 'K', 1, 'u', '.'})
	f.Add([]byte{0x80, 2, ']', '(', 'K', 1, 'K', 2, 'e', '.'})
	f.Add([]byte{'c', 'c', 'o', 'l', 'l', 'e', 'c', 't', 'i', 'o', 'n', 's', '\n', 'O', 'r', 'd', 'e', 'r', 'e', 'd', 'D', 'i', 'c', 't', '\n', ')', 'R', '}', 'b', '.'})
	f.Fuzz(func(t *testing.T, data []byte) {
		m := &machine{in: data, memo: map[int]any{}}
		v, err := m.run()
		if err == nil {
			Flatten(v)
		}
	})
}

// TestSelfReferenceAndFanOut: a list that holds itself, and a chain of lists each holding the
// next one twice (2^40 paths), flatten quickly instead of forever.
func TestSelfReferenceAndFanOut(t *testing.T) {
	m := &machine{in: []byte("\x80\x02](22K\x02e."), memo: map[int]any{}}
	v, err := m.run()
	require.NoError(t, err)
	items, skipped := Flatten(v)
	require.Equal(t, []Item{{Name: "2", Value: int64(2)}}, items)
	require.Equal(t, 2, skipped)

	leaf := &List{Items: []any{int64(1)}}
	for i := 0; i < 40; i++ {
		leaf = &List{Items: []any{leaf, leaf}}
	}
	items, skipped = Flatten(leaf)
	require.LessOrEqual(t, len(items), 1<<20)
	require.Positive(t, skipped)
}
