package data

import (
	"bufio"
	"bytes"
	"compress/flate"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
)

// IDX element types (the third byte of the magic number).
const (
	IDXUint8   = 0x08
	IDXInt8    = 0x09
	IDXInt16   = 0x0B
	IDXInt32   = 0x0C
	IDXFloat32 = 0x0D
	IDXFloat64 = 0x0E
)

var idxTypeNames = map[byte]string{
	IDXUint8: "uint8", IDXInt8: "int8", IDXInt16: "int16", IDXInt32: "int32", IDXFloat32: "float32", IDXFloat64: "float64",
}

func idxTypeSize(t byte) int {
	switch t {
	case IDXInt16:
		return 2
	case IDXInt32, IDXFloat32:
		return 4
	case IDXFloat64:
		return 8
	}
	return 1
}

// maxIDXBytes bounds the data an IDX header may announce (16 GiB): larger is a corrupt header.
const maxIDXBytes = 16 << 30

// IDX is a parsed IDX file (the format of MNIST): an element type, dimensions, and the
// elements' bytes, big-endian, row-major.
type IDX struct {
	Type byte
	Dims []int
	Data []byte
}

// Magic is the file's magic number: 0x0000 TT DD (type, number of dimensions).
func (x *IDX) Magic() uint32 { return uint32(x.Type)<<8 | uint32(len(x.Dims)) }

func (x *IDX) String() string {
	ds := make([]string, len(x.Dims))
	for i, d := range x.Dims {
		ds[i] = fmt.Sprint(d)
	}
	return fmt.Sprintf("IDX %s [%s]", idxTypeNames[x.Type], strings.Join(ds, "×"))
}

// ErrIDXFormat is wrapped by every error that ReadIDX returns for malformed input.
var ErrIDXFormat = errors.New("malformed IDX data")

func idxError(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrIDXFormat}, args...)...)
}

// ReadIDX parses one IDX file from r, gunzipping it first if it starts with gzip's magic. It
// checks the magic number, the dimensions, and that exactly the announced data follows.
func ReadIDX(r io.Reader) (*IDX, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	if head, _ := br.Peek(2); len(head) == 2 && head[0] == 0x1f && head[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, idxError("bad gzip stream: %v", err)
		}
		defer zr.Close()
		zr.Multistream(false)
		x, err := readIDX(bufio.NewReaderSize(zr, 64<<10))
		if err != nil {
			return nil, err
		}
		// Multistream(false) stops at the end of the first member; anything after it is junk.
		if n, _ := io.Copy(io.Discard, io.LimitReader(br, 1)); n > 0 {
			return nil, idxError("trailing bytes after the gzip stream")
		}
		return x, nil
	}
	return readIDX(br)
}

func readIDX(r io.Reader) (*IDX, error) {
	var magic [4]byte
	if n, err := io.ReadFull(r, magic[:]); err != nil {
		if n == 0 && err == io.EOF {
			return nil, idxError("empty file")
		}
		return nil, wrapRead(err, "truncated header: %d of 4 magic bytes", n)
	}
	m := binary.BigEndian.Uint32(magic[:])
	if magic[0] != 0 || magic[1] != 0 {
		return nil, idxError("bad magic number 0x%08x: not an IDX file (want 0x0000TTDD)", m)
	}
	typ, nd := magic[2], int(magic[3])
	if _, ok := idxTypeNames[typ]; !ok {
		return nil, idxError("bad magic number 0x%08x: unknown element type 0x%02x", m, typ)
	}
	if nd == 0 {
		return nil, idxError("bad magic number 0x%08x: zero dimensions", m)
	}
	hdr := make([]byte, 4*nd)
	if n, err := io.ReadFull(r, hdr); err != nil {
		return nil, wrapRead(err, "truncated header: %d of %d dimension bytes", n, 4*nd)
	}
	x := &IDX{Type: typ, Dims: make([]int, nd)}
	size := int64(idxTypeSize(typ))
	for i := range x.Dims {
		d := binary.BigEndian.Uint32(hdr[4*i:])
		if d > 1<<31-1 {
			return nil, idxError("dimension %d is %d, too large", i, d)
		}
		x.Dims[i] = int(d)
		if d != 0 && size > maxIDXBytes/int64(d) {
			return nil, idxError("%v would hold more than %d bytes", x, int64(maxIDXBytes))
		}
		size *= int64(d)
	}
	// Grow with the data actually present rather than trusting the header with one allocation.
	var buf bytes.Buffer
	buf.Grow(int(min(size, 1<<20)))
	n, err := buf.ReadFrom(io.LimitReader(r, size))
	if err != nil {
		return nil, wrapRead(err, "reading data")
	}
	if n < size {
		return nil, idxError("truncated data: %v needs %d bytes, found %d", x, size, n)
	}
	// Reading past the end also makes gzip verify its checksum.
	var one [1]byte
	if k, err := io.ReadFull(r, one[:]); k > 0 {
		return nil, idxError("trailing bytes after the %d bytes of data that %v holds", size, x)
	} else if err != io.EOF {
		return nil, wrapRead(err, "after the data")
	}
	x.Data = buf.Bytes()
	return x, nil
}

// wrapRead reports a read failure: a short read as malformed data, anything else (an I/O or
// gzip error) as itself.
func wrapRead(err error, format string, args ...any) error {
	var corrupt flate.CorruptInputError
	switch {
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return idxError(format, args...)
	case errors.Is(err, gzip.ErrChecksum) || errors.Is(err, gzip.ErrHeader) || errors.As(err, &corrupt):
		return idxError("%s: bad gzip stream: %v", fmt.Sprintf(format, args...), err)
	}
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), err)
}
