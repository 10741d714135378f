package featviz

import (
	"encoding/binary"
	"fmt"
	"math"
	"strings"
)

// encodeNPY returns data with the given shape as a NumPy .npy file, format version 1.0: the magic
// "\x93NUMPY", the version bytes 1 0, a little-endian uint16 header length, and an ASCII dict
// literal padded with spaces and a final newline so the data starts at a multiple of 64 bytes
// (what numpy itself writes), then the float32 values, little-endian, in C order.
func encodeNPY(shape []int64, data []float32) ([]byte, error) {
	n := int64(1)
	dims := make([]string, len(shape))
	for i, d := range shape {
		if d < 0 {
			return nil, fmt.Errorf("npy: negative dimension in shape %v", shape)
		}
		n *= d
		dims[i] = fmt.Sprint(d)
	}
	if n != int64(len(data)) {
		return nil, fmt.Errorf("npy: shape %v holds %d values, got %d", shape, n, len(data))
	}
	tuple := "(" + strings.Join(dims, ", ")
	if len(dims) == 1 {
		tuple += ","
	}
	tuple += ")"
	header := fmt.Sprintf("{'descr': '<f4', 'fortran_order': False, 'shape': %s, }", tuple)
	const preamble = 10 // magic (6) + version (2) + header length (2)
	total := preamble + len(header) + 1
	if pad := (64 - total%64) % 64; pad > 0 {
		header += strings.Repeat(" ", pad)
	}
	header += "\n"
	if len(header) > math.MaxUint16 {
		return nil, fmt.Errorf("npy: header too long for format 1.0 (%d bytes)", len(header))
	}
	out := make([]byte, 0, preamble+len(header)+4*len(data))
	out = append(out, "\x93NUMPY"...)
	out = append(out, 1, 0)
	out = binary.LittleEndian.AppendUint16(out, uint16(len(header)))
	out = append(out, header...)
	for _, v := range data {
		out = binary.LittleEndian.AppendUint32(out, math.Float32bits(v))
	}
	return out, nil
}
