package aten

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"

	"github.com/hotcb/hotcb/aten/atentable"
	"github.com/hotcb/hotcb/bridge"
)

// CallOp calls any op registered with libtorch's dispatcher by its schema name, through the
// dispatcher's boxed calling convention: the escape hatch for what has no generated function
// (private ops such as aten::_cast_Float, the named-tensor ops, ops of a newer libtorch;
// aten/COVERAGE.md lists what was skipped).
//
//	out, err := aten.CallOp("aten::tril", x, 0)                     // out.Tensor(0)
//	out, err = aten.CallOp("aten::topk", x, 2, aten.Arg("largest", false))
//	out, err = aten.CallOp("aten::add.Tensor", x, y, aten.FloatScalar(0.5))
//
// name is "aten::op" for the op's default overload or "aten::op.overload"; without a namespace
// ("tril") it is aten's. Arguments follow the op's schema (Schema returns it) in its order,
// keyword-only ones included, then any Arg(name, value); those left out, and Default in their
// place, take the schema's defaults. Go values become what the schema declares:
//
//	*bridge.Tensor                 Tensor, Tensor? (nil is None)
//	[]*bridge.Tensor               Tensor[], Tensor?[] (nil entries are None)
//	int, int64 and the other ints  int, SymInt, float, Scalar
//	float64, float32               float, Scalar
//	bool                           bool, Scalar
//	Scalar                         Scalar
//	[]int64, []int, bridge.Shape   int[], SymInt[] (an int fills a fixed-size int[2] too)
//	[]float64, []bool              float[], bool[]
//	string, []string               str, str[]
//	Dimname, []Dimname             Dimname, Dimname[] (a dimension's name: Dimname("N"))
//	bridge.DType, bridge.Device    ScalarType, Device
//	Layout, MemoryFormat           Layout, MemoryFormat
//	nil, a nil pointer or slice    None (an optional argument)
//	I(1), F(0.5), B, S, Str, D, Dev  an optional argument's value, as generated functions take it
//
// Generators are not passed: leave them out or pass nil (sampling draws from the default
// generator).
//
// The result holds one value per return of the schema: *bridge.Tensor (nil for None),
// []*bridge.Tensor, int64, float64, bool, bridge.DType, bridge.Device, Layout, MemoryFormat,
// string, lists of those, []any for a tuple, or nil. Every tensor is a new handle, also when
// the op returns one of its arguments (in-place and out= ops): it shares that argument's
// storage and is released like any result (bridge.Scope applies; Results.Free).
//
// Errors are returned, never panicked, as a *bridge.Error naming the op: an op that is not
// registered (with close names from the generated table), too many arguments, one missing, one
// of a kind its schema parameter cannot take (named as the schema names it), a freed tensor
// (wrapping bridge.ErrFreed), or libtorch's own error.
func CallOp(name string, args ...any) (Results, error) {
	op, err := lookup(name)
	if err != nil {
		return nil, err
	}
	var a bridge.ATenArgs
	for k, v := range args {
		if err := encodeArg(&a, v, false); err != nil {
			return nil, &bridge.Error{Op: op.Name, Msg: fmt.Sprintf("argument %d: %v", k+1, err)}
		}
	}
	vals, err := bridge.ATenCallBoxed(op, &a)
	if err != nil {
		var be *bridge.Error
		if errors.As(err, &be) && strings.Contains(be.Msg, "all symbols must have a namespace") {
			be.Msg += " (pass a dimension's name as aten.Dimname(\"N\"), not a string)"
		}
		return nil, err
	}
	for k, v := range vals {
		vals[k] = fromBridge(v)
	}
	return Results(vals), nil
}

// Schema returns the schema libtorch registered for op name (as CallOp names it), or the error
// CallOp would give for an op that is not registered.
func Schema(name string) (string, error) {
	op, err := lookup(name)
	if err != nil {
		return "", err
	}
	return op.Schema, nil
}

// Default stands, in CallOp's arguments, for the schema's default of the argument in its place.
var Default = defaultArg{}

type defaultArg struct{}

// NamedArg is an argument passed by name (Arg).
type NamedArg struct {
	Name  string
	Value any
}

// Arg passes value as the argument the op's schema calls name; named arguments follow the
// positional ones: CallOp("aten::topk", x, 2, Arg("largest", false)).
func Arg(name string, value any) NamedArg { return NamedArg{Name: name, Value: value} }

// Dimname is the name of a tensor dimension, for the named-tensor ops' Dimname arguments
// (aten::rename, aten::align_to, aten::sum.dim_DimnameList, ...): the dispatcher passes
// dimension names as strings of their own kind ("dimname::N"), which a Go string is not.
type Dimname string

func (d Dimname) boxed() string { return "dimname::" + string(d) }

// Results are what CallOp returned: one value per return of the op's schema.
type Results []any

// Tensor returns value i if it is a tensor, else nil.
func (v Results) Tensor(i int) *bridge.Tensor {
	if i < 0 || i >= len(v) {
		return nil
	}
	t, _ := v[i].(*bridge.Tensor)
	return t
}

// Tensors returns every tensor in v in order, lists and tuples flattened, None left out.
func (v Results) Tensors() []*bridge.Tensor {
	var out []*bridge.Tensor
	var walk func(x any)
	walk = func(x any) {
		switch x := x.(type) {
		case *bridge.Tensor:
			if x != nil {
				out = append(out, x)
			}
		case []*bridge.Tensor:
			for _, t := range x {
				walk(t)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	for _, x := range v {
		walk(x)
	}
	return out
}

// Free frees every tensor in v now.
func (v Results) Free() {
	for _, t := range v.Tensors() {
		t.Free()
	}
}

// ops caches lookups by the name CallOp was given: registered ops stay registered.
var ops sync.Map // string -> bridge.ATenOp

func lookup(name string) (bridge.ATenOp, error) {
	if op, ok := ops.Load(name); ok {
		return op.(bridge.ATenOp), nil
	}
	q := strings.TrimSpace(name)
	if q != "" && !strings.Contains(q, "::") {
		q = "aten::" + q
	}
	op, found, overloads, err := bridge.ATenLookup(q)
	if err != nil {
		return op, err
	}
	if !found {
		return op, notRegistered(q, overloads)
	}
	ops.Store(name, op)
	return op, nil
}

// notRegistered explains an op name the dispatcher does not know: the name's overloads when it
// has some, else close names from the generated table.
func notRegistered(q string, overloads []string) error {
	ns, rest, _ := strings.Cut(q, "::")
	opName, overload, _ := strings.Cut(rest, ".")
	base := ns + "::" + opName
	e := &bridge.Error{Op: q}
	switch {
	case ns == "" || opName == "":
		e.Op, e.Msg = "aten", fmt.Sprintf("%q names no op: want \"aten::NAME\" or \"aten::NAME.OVERLOAD\"", q)
	case len(overloads) > 0 && overload == "":
		e.Msg = fmt.Sprintf("%s has no default overload: name one of %s", base, strings.Join(overloads, ", "))
	case len(overloads) > 0:
		e.Msg = fmt.Sprintf("%s has no overload %q; it has %s", base, overload, strings.Join(overloads, ", "))
	default:
		e.Msg = "no such op is registered with libtorch"
		if ns == "aten" {
			if s := atentable.Suggest(opName, 3); len(s) > 0 {
				for k := range s {
					s[k] = "aten::" + s[k]
				}
				e.Msg += " (did you mean " + strings.Join(s, " or ") + "?)"
			}
		}
	}
	return e
}

// encodeArg adds one CallOp argument; named is set inside an Arg.
func encodeArg(a *bridge.ATenArgs, v any, named bool) error {
	switch x := v.(type) {
	case nil:
		a.None()
	case defaultArg:
		a.Default()
	case NamedArg:
		if named {
			return fmt.Errorf("Arg(%q, ...) holds another Arg", x.Name)
		}
		if x.Name == "" {
			return fmt.Errorf("Arg with an empty name")
		}
		a.Named(x.Name)
		if err := encodeArg(a, x.Value, true); err != nil {
			return fmt.Errorf("Arg(%q): %v", x.Name, err)
		}
	case *bridge.Tensor:
		a.TaggedTensor(x)
	case []*bridge.Tensor:
		if x == nil {
			a.None()
		} else {
			a.Tensors(x)
		}
	case Scalar:
		x.encode(a)
	case *Scalar:
		encodeOptScalar(a, x)
	case int:
		a.Int(int64(x))
	case int8:
		a.Int(int64(x))
	case int16:
		a.Int(int64(x))
	case int32:
		a.Int(int64(x))
	case int64:
		a.Int(x)
	case uint:
		return encodeUint(a, uint64(x))
	case uint8:
		a.Int(int64(x))
	case uint16:
		a.Int(int64(x))
	case uint32:
		a.Int(int64(x))
	case uint64:
		return encodeUint(a, x)
	case float32:
		a.Float(float64(x))
	case float64:
		a.Float(x)
	case bool:
		a.Bool(x)
	case string:
		a.Str(x)
	case []string:
		if x == nil {
			a.None()
		} else {
			a.Strs(x)
		}
	case Dimname:
		a.Str(x.boxed())
	case []Dimname:
		if x == nil {
			a.None()
			break
		}
		v := make([]string, len(x))
		for k, d := range x {
			v[k] = d.boxed()
		}
		a.Strs(v)
	case []int64:
		a.OptInts(x)
	case bridge.Shape:
		a.OptInts(x)
	case []int:
		if x == nil {
			a.None()
			break
		}
		v := make([]int64, len(x))
		for k, e := range x {
			v[k] = int64(e)
		}
		a.Ints(v)
	case []float64:
		a.OptFloats(x)
	case []float32:
		if x == nil {
			a.None()
			break
		}
		v := make([]float64, len(x))
		for k, e := range x {
			v[k] = float64(e)
		}
		a.Floats(v)
	case []bool:
		if x == nil {
			a.None()
		} else {
			a.Bools(x)
		}
	case bridge.DType:
		a.DType(x)
	case bridge.Device:
		a.Device(x)
	case Layout:
		a.Layout(int64(x))
	case MemoryFormat:
		a.MemoryFormat(int64(x))
	case *int64:
		a.OptInt(x)
	case *float64:
		a.OptFloat(x)
	case *bool:
		a.OptBool(x)
	case *string:
		a.OptStr(x)
	case *bridge.DType:
		a.OptDType(x)
	case *bridge.Device:
		a.OptDevice(x)
	case *Layout:
		encodeOptLayout(a, x)
	case *MemoryFormat:
		encodeOptMemoryFormat(a, x)
	default:
		return fmt.Errorf("CallOp cannot pass a %T (want a tensor, a number, a bool, a string, a list of those, "+
			"a Scalar, a bridge.DType or Device, a Layout, a MemoryFormat, nil, Default or Arg)", v)
	}
	return nil
}

func encodeUint(a *bridge.ATenArgs, v uint64) error {
	if v > math.MaxInt64 {
		return fmt.Errorf("%d does not fit an int64", v)
	}
	a.Int(int64(v))
	return nil
}

// fromBridge turns the bridge's layout and memory-format results into this package's types.
func fromBridge(v any) any {
	switch x := v.(type) {
	case bridge.ATenEnum:
		if x.MemoryFormat {
			return MemoryFormat(x.V)
		}
		return Layout(x.V)
	case []any:
		for k := range x {
			x[k] = fromBridge(x[k])
		}
	}
	return v
}
