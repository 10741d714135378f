package data

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/bridge"
)

// idxBytes encodes an IDX file.
func idxBytes(typ byte, dims []int, data []byte) []byte {
	var b bytes.Buffer
	b.Write([]byte{0, 0, typ, byte(len(dims))})
	for _, d := range dims {
		binary.Write(&b, binary.BigEndian, uint32(d))
	}
	b.Write(data)
	return b.Bytes()
}

func gz(t testing.TB, data []byte) []byte {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	_, err := w.Write(data)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	return b.Bytes()
}

// fakeMNIST returns n images of rows×cols whose pixels are (i+r+c)%256 and labels i%10.
func fakeMNIST(n, rows, cols int) (images, labels []byte) {
	pix := make([]byte, n*rows*cols)
	for i := 0; i < n; i++ {
		for r := 0; r < rows; r++ {
			for c := 0; c < cols; c++ {
				pix[(i*rows+r)*cols+c] = byte(i + r + c)
			}
		}
	}
	lbl := make([]byte, n)
	for i := range lbl {
		lbl[i] = byte(i % 10)
	}
	return idxBytes(IDXUint8, []int{n, rows, cols}, pix), idxBytes(IDXUint8, []int{n}, lbl)
}

func writeFile(t testing.TB, dir, name string, data []byte) {
	require.NoError(t, os.WriteFile(filepath.Join(dir, name), data, 0o644))
}

func TestReadIDX(t *testing.T) {
	img, _ := fakeMNIST(3, 4, 5)
	for name, in := range map[string][]byte{"raw": img, "gzip": gz(t, img)} {
		x, err := ReadIDX(bytes.NewReader(in))
		require.NoError(t, err, name)
		require.Equal(t, byte(IDXUint8), x.Type)
		require.Equal(t, []int{3, 4, 5}, x.Dims)
		require.Len(t, x.Data, 60)
		require.Equal(t, uint32(0x0803), x.Magic())
		require.Equal(t, "IDX uint8 [3×4×5]", x.String())
	}
	// Other element types: the data length follows the element size.
	x, err := ReadIDX(bytes.NewReader(idxBytes(IDXFloat64, []int{2, 2}, make([]byte, 32))))
	require.NoError(t, err)
	require.Len(t, x.Data, 32)
	// A zero dimension holds no data.
	x, err = ReadIDX(bytes.NewReader(idxBytes(IDXInt32, []int{0, 7}, nil)))
	require.NoError(t, err)
	require.Empty(t, x.Data)
}

func TestReadIDXErrors(t *testing.T) {
	img, _ := fakeMNIST(3, 4, 5)
	badCRC := gz(t, img)
	badCRC[len(badCRC)-8] ^= 0xff // gzip trailer: CRC-32, then size
	for _, tc := range []struct {
		name string
		in   []byte
		want string
	}{
		{"empty", nil, "empty file"},
		{"short magic", []byte{0, 0, 8}, "truncated header: 3 of 4 magic bytes"},
		{"bad magic", []byte{0x50, 0x4b, 3, 4, 0, 0, 0, 0}, "bad magic number 0x504b0304: not an IDX file"},
		{"unknown type", []byte{0, 0, 0x07, 1, 0, 0, 0, 0}, "unknown element type 0x07"},
		{"no dims", []byte{0, 0, 8, 0}, "zero dimensions"},
		{"short dims", []byte{0, 0, 8, 3, 0, 0, 0, 1, 0, 0}, "truncated header: 6 of 12 dimension bytes"},
		{"truncated data", img[:len(img)-7], "truncated data: IDX uint8 [3×4×5] needs 60 bytes, found 53"},
		{"trailing data", append(append([]byte{}, img...), 0), "trailing bytes after the 60 bytes"},
		{"huge", idxBytes(IDXFloat64, []int{1 << 30, 1 << 30}, nil), "would hold more than"},
		{"huge dim", []byte{0, 0, 8, 1, 0xff, 0xff, 0xff, 0xff}, "dimension 0 is 4294967295, too large"},
		{"truncated gzip", gz(t, img)[:30], "truncated"},
		{"gzip checksum", badCRC, "bad gzip stream"},
		{"gzip trailing junk", append(gz(t, img), 1, 2, 3), "trailing bytes after the gzip stream"},
		{"gzip header only", []byte{0x1f, 0x8b, 1}, "bad gzip stream"},
	} {
		_, err := ReadIDX(bytes.NewReader(tc.in))
		require.ErrorIs(t, err, ErrIDXFormat, tc.name)
		require.ErrorContains(t, err, tc.want, tc.name)
	}
}

func TestLoadMNIST(t *testing.T) {
	for _, compress := range []bool{false, true} {
		dir := t.TempDir()
		img, lbl := fakeMNIST(20, 28, 28)
		tImg, tLbl := fakeMNIST(7, 28, 28)
		suffix := ""
		if compress {
			img, lbl, tImg, tLbl, suffix = gz(t, img), gz(t, lbl), gz(t, tImg), gz(t, tLbl), ".gz"
		}
		writeFile(t, dir, "train-images-idx3-ubyte"+suffix, img)
		writeFile(t, dir, "train-labels-idx1-ubyte"+suffix, lbl)
		writeFile(t, dir, "t10k-images-idx3-ubyte"+suffix, tImg)
		writeFile(t, dir, "t10k-labels-idx1-ubyte"+suffix, tLbl)

		ds, err := LoadMNIST(dir, true)
		require.NoError(t, err)
		require.Equal(t, bridge.Shape{20, 1, 28, 28}, ds.Images.Shape())
		require.Equal(t, bridge.Float32, ds.Images.DType())
		require.Equal(t, MNISTClasses, ds.Classes)
		labels := ds.Labels.Int64s()
		require.Len(t, labels, 20)
		for i, l := range labels {
			require.Equal(t, int64(i%10), l)
		}
		// Pixels: (i+r+c)%256 / 255, normalised with the set's own statistics.
		raw := ds.Raw()
		require.InDelta(t, float64(byte(13+2+5))/255, raw.Narrow(0, 13, 1).Reshape(-1).Narrow(0, 2*28+5, 1).Item(), 1e-5)
		require.InDelta(t, 0, ds.Images.Mean().Item(), 1e-4)
		require.InDelta(t, 1, ds.Images.Std(false).Item(), 1e-4)

		test, err := LoadMNIST(dir, false)
		require.NoError(t, err)
		require.Equal(t, 7, test.Len())
	}
}

func TestLoadMNISTAlternativeNames(t *testing.T) {
	dir := t.TempDir()
	img, lbl := fakeMNIST(3, 5, 4)
	writeFile(t, dir, "train-images.idx3-ubyte", img)
	writeFile(t, dir, "train-labels.idx1-ubyte.gz", gz(t, lbl))
	ds, err := LoadMNIST(dir, true)
	require.NoError(t, err)
	require.Equal(t, bridge.Shape{3, 1, 5, 4}, ds.Images.Shape())
}

func TestLoadMNISTErrors(t *testing.T) {
	img, lbl := fakeMNIST(5, 28, 28)
	_, lbl4 := fakeMNIST(4, 28, 28)
	badLbl := idxBytes(IDXUint8, []int{5}, []byte{1, 2, 3, 12, 4})
	for _, tc := range []struct {
		name        string
		images      []byte // nil: file absent
		labels      []byte
		file, wants string
	}{
		{"no images", nil, lbl, "", "no train-images-idx3-ubyte (tried train-images-idx3-ubyte, train-images-idx3-ubyte.gz"},
		{"no labels", img, nil, "", "no train-labels-idx1-ubyte"},
		{"labels as images", lbl, lbl, "train-images-idx3-ubyte", "magic 0x00000801 is IDX uint8 [5], want uint8 images"},
		{"images as labels", img, img, "train-labels-idx1-ubyte", "magic 0x00000803 is IDX uint8 [5×28×28], want uint8 labels"},
		{"float images", idxBytes(IDXFloat32, []int{1, 1, 1}, make([]byte, 4)), lbl, "train-images-idx3-ubyte", "want uint8 images"},
		{"count mismatch", img, lbl4, "train-labels-idx1-ubyte", "holds 4 labels but"},
		{"label range", img, badLbl, "train-labels-idx1-ubyte", "label 12 of example 3 is not a class 0…9"},
		{"truncated images", img[:1000], lbl, "train-images-idx3-ubyte", "truncated data"},
		{"bad magic", append([]byte{1}, img[1:]...), lbl, "train-images-idx3-ubyte", "bad magic number 0x01000803"},
		{"empty labels file", img, []byte{}, "train-labels-idx1-ubyte", "empty file"},
		{"zero images", idxBytes(IDXUint8, []int{0, 28, 28}, nil), idxBytes(IDXUint8, []int{0}, nil), "train-images-idx3-ubyte", "no images"},
		{"zero-size images", idxBytes(IDXUint8, []int{2, 0, 28}, nil), idxBytes(IDXUint8, []int{2}, []byte{0, 1}), "train-images-idx3-ubyte", "images of 0×28 pixels"},
	} {
		dir := t.TempDir()
		if tc.images != nil {
			writeFile(t, dir, "train-images-idx3-ubyte", tc.images)
		}
		if tc.labels != nil {
			writeFile(t, dir, "train-labels-idx1-ubyte", tc.labels)
		}
		_, err := LoadMNIST(dir, true)
		require.Error(t, err, tc.name)
		require.ErrorContains(t, err, tc.wants, tc.name)
		require.ErrorContains(t, err, filepath.Join(dir, tc.file), tc.name)
	}
	_, err := LoadMNIST(filepath.Join(t.TempDir(), "nowhere"), false)
	require.ErrorContains(t, err, "no t10k-images-idx3-ubyte")
}

func FuzzReadIDX(f *testing.F) {
	img, lbl := fakeMNIST(2, 3, 3)
	f.Add(img)
	f.Add(lbl)
	f.Add(gz(f, lbl))
	f.Add(idxBytes(IDXFloat32, []int{2, 1}, make([]byte, 8)))
	f.Add(idxBytes(IDXInt16, []int{0}, nil))
	f.Add([]byte{0, 0, 8, 1, 0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0x1f, 0x8b, 8, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		x, err := ReadIDX(bytes.NewReader(in))
		if err != nil {
			return
		}
		n := idxTypeSize(x.Type)
		for _, d := range x.Dims {
			n *= d
		}
		if len(x.Data) != n {
			t.Fatalf("%v holds %d bytes, want %d", x, len(x.Data), n)
		}
		if len(in) < 2 || in[0] != 0x1f || in[1] != 0x8b {
			// A raw file parses only if it is exactly header + data.
			if !bytes.Equal(idxBytes(x.Type, x.Dims, x.Data), in) {
				t.Fatalf("%v does not re-encode to its input", x)
			}
		}
	})
}
