package aten

import "github.com/hotcb/hotcb/bridge"

// Scalar is a number argument of ATen's Scalar type: an int, a float or a bool.
type Scalar struct {
	kind int8 // 0 int, 1 float, 2 bool
	i    int64
	f    float64
}

// IntScalar is an integer Scalar (an integer tensor combined with it stays integral).
func IntScalar(v int64) Scalar { return Scalar{kind: 0, i: v} }

// FloatScalar is a floating-point Scalar.
func FloatScalar(v float64) Scalar { return Scalar{kind: 1, f: v} }

// BoolScalar is a boolean Scalar.
func BoolScalar(v bool) Scalar {
	s := Scalar{kind: 2}
	if v {
		s.i = 1
	}
	return s
}

// Int and Float read a Scalar result as a number of that kind.
func (s Scalar) Int() int64 {
	if s.kind == 1 {
		return int64(s.f)
	}
	return s.i
}

// Float reads s as a float64.
func (s Scalar) Float() float64 {
	if s.kind == 1 {
		return s.f
	}
	return float64(s.i)
}

// IsFloat says whether s holds a floating-point number.
func (s Scalar) IsFloat() bool { return s.kind == 1 }

// IsBool says whether s holds a bool (Item of a bool tensor).
func (s Scalar) IsBool() bool { return s.kind == 2 }

// Bool reads s as a bool (non-zero is true).
func (s Scalar) Bool() bool {
	if s.kind == 1 {
		return s.f != 0
	}
	return s.i != 0
}

func (s Scalar) encode(a *bridge.ATenArgs) {
	switch s.kind {
	case 1:
		a.Float(s.f)
	case 2:
		a.Bool(s.i != 0)
	default:
		a.Int(s.i)
	}
}

func encodeOptScalar(a *bridge.ATenArgs, s *Scalar) {
	if s == nil {
		a.None()
		return
	}
	s.encode(a)
}

func scalarOf(r *bridge.ATenResult) Scalar {
	switch r.NumTag {
	case 1:
		return FloatScalar(r.F)
	case 2:
		return BoolScalar(r.I != 0)
	}
	return IntScalar(r.I)
}

// Reductions, for the int reduction argument of the loss ops (at::Reduction's numbering, which
// is not bridge.Reduction's: bridge.ReduceMean is 0).
const (
	ReductionNone int64 = 0
	ReductionMean int64 = 1
	ReductionSum  int64 = 2
)

// Layout is a tensor layout; only Strided is of use here.
type Layout int64

// Layouts (at::Layout's numbering).
const (
	Strided Layout = 0
	Sparse  Layout = 1
)

func encodeOptLayout(a *bridge.ATenArgs, l *Layout) {
	if l == nil {
		a.None()
		return
	}
	a.Layout(int64(*l))
}

// MemoryFormat is a memory format (at::MemoryFormat's numbering).
type MemoryFormat int64

// Memory formats.
const (
	ContiguousFormat MemoryFormat = 0
	PreserveFormat   MemoryFormat = 1
	ChannelsLast     MemoryFormat = 2
	ChannelsLast3d   MemoryFormat = 3
)

func encodeOptMemoryFormat(a *bridge.ATenArgs, m *MemoryFormat) {
	if m == nil {
		a.None()
		return
	}
	a.MemoryFormat(int64(*m))
}

// Options are a factory function's dtype, layout, device and pin_memory; nil fields are None
// (libtorch's defaults: float32, strided, CPU, not pinned). The zero value is all defaults.
type Options struct {
	DType     *bridge.DType
	Layout    *Layout
	Device    *bridge.Device
	PinMemory *bool
}

// withDefaults fills the nil dtype and pin_memory with an op's own defaults (randint's dtype is
// long, not None).
func (o Options) withDefaults(dtype *bridge.DType, pin *bool) Options {
	if o.DType == nil {
		o.DType = dtype
	}
	if o.PinMemory == nil {
		o.PinMemory = pin
	}
	return o
}

// orDefault is p, or a pointer to d when p is nil: an optional argument whose schema default is
// not None.
func orDefault[T any](p *T, d T) *T {
	if p == nil {
		return &d
	}
	return p
}

func (o Options) encode(a *bridge.ATenArgs) {
	a.OptDType(o.DType)
	encodeOptLayout(a, o.Layout)
	a.OptDevice(o.Device)
	a.OptBool(o.PinMemory)
}

// I, F, B, D, Dev, S and Str make the pointers optional arguments take.
func I(v int64) *int64 { return &v }

// F is a *float64 for a float? argument.
func F(v float64) *float64 { return &v }

// B is a *bool for a bool? argument.
func B(v bool) *bool { return &v }

// D is a *bridge.DType for a ScalarType? argument.
func D(v bridge.DType) *bridge.DType { return &v }

// Dev is a *bridge.Device for a Device? argument.
func Dev(v bridge.Device) *bridge.Device { return &v }

// S is a *Scalar for a Scalar? argument.
func S(v Scalar) *Scalar { return &v }

// Str is a *string for a str? argument.
func Str(v string) *string { return &v }
