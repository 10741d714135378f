package bridge

import (
	"fmt"
	"reflect"
	"sort"
)

// Tuple is a Python tuple among Go values (AppendGo, Value.Go): a TorchScript method's
// (logits, hidden) comes back as Tuple{logits, hidden}.
type Tuple []any

// AppendGo appends a Go value: nil (None), bool, the integer kinds (int), float32 and float64
// (float), string, *Tensor, Tuple (tuple), slices of any of these (list), and maps with string or
// integer keys (dict, sorted by key). Anything else is an error naming its type and where it is
// ("value[1][\"mask\"]"); nothing is appended then.
func (v *Value) AppendGo(x any) error { return v.AppendGoAs(x, "value") }

// AppendGoAs is AppendGo naming x name in errors ("argument 2[\"mask\"]: ...").
func (v *Value) AppendGoAs(x any, name string) error {
	var w Value
	if err := w.appendGo(x, name, 0); err != nil {
		return err
	}
	v.Append(&w)
	return nil
}

func (v *Value) appendGo(x any, at string, depth int) error {
	if depth > 256 {
		return fmt.Errorf("%s: nests deeper than 256", at)
	}
	switch x := x.(type) {
	case nil:
		v.None()
		return nil
	case *Tensor:
		if x == nil || x.h == nil {
			return fmt.Errorf("%s: a nil or freed tensor", at)
		}
		v.Tensor(x)
		return nil
	case Tuple:
		v.Tuple(len(x))
		for i, e := range x {
			if err := v.appendGo(e, fmt.Sprintf("%s[%d]", at, i), depth+1); err != nil {
				return err
			}
		}
		return nil
	case *Value:
		if err := x.Check(); err != nil {
			return fmt.Errorf("%s: %w", at, err)
		}
		v.Append(x)
		return nil
	}
	r := reflect.ValueOf(x)
	switch r.Kind() {
	case reflect.Bool:
		v.Bool(r.Bool())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.Int(r.Int())
	case reflect.Uint8, reflect.Uint16, reflect.Uint32:
		v.Int(int64(r.Uint()))
	case reflect.Float32, reflect.Float64:
		v.Float(r.Float())
	case reflect.String:
		v.Str(r.String())
	case reflect.Slice, reflect.Array:
		v.List(r.Len())
		for i := 0; i < r.Len(); i++ {
			if err := v.appendGo(r.Index(i).Interface(), fmt.Sprintf("%s[%d]", at, i), depth+1); err != nil {
				return err
			}
		}
	case reflect.Map:
		keys := r.MapKeys()
		switch r.Type().Key().Kind() {
		case reflect.String:
			sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			sort.Slice(keys, func(i, j int) bool { return keys[i].Int() < keys[j].Int() })
		default:
			return fmt.Errorf("%s: a map keyed by %s (a dict takes str or int keys)", at, r.Type().Key())
		}
		v.Dict(len(keys))
		for _, k := range keys {
			if k.Kind() == reflect.String {
				v.Str(k.String())
			} else {
				v.Int(k.Int())
			}
			if err := v.appendGo(r.MapIndex(k).Interface(), fmt.Sprintf("%s[%#v]", at, k.Interface()), depth+1); err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("%s: a %T has no Python form (use nil, bool, ints, floats, string, *bridge.Tensor, bridge.Tuple, slices and maps of them)", at, x)
	}
	return nil
}

// Go returns the value as Go values: nil (None), bool, int64, float64, string, *Tensor, Tuple,
// []any (list), map[string]any or map[int64]any (dict). A malformed value is an error.
func (v *Value) Go() (any, error) {
	d := goDecoder{v: v}
	x, err := d.next(0)
	if err == nil && (d.c != len(v.Codes) || d.f != len(v.Floats) || d.s != len(v.Strings) || d.t != len(v.Tensors)) {
		err = fmt.Errorf("value: left over after the value")
	}
	return x, err
}

type goDecoder struct {
	v          *Value
	c, f, s, t int
}

func (d *goDecoder) code() (int64, error) {
	if d.c >= len(d.v.Codes) {
		return 0, fmt.Errorf("value: the codes end inside a value")
	}
	d.c++
	return d.v.Codes[d.c-1], nil
}

func (d *goDecoder) next(depth int) (any, error) {
	if depth > 256 {
		return nil, fmt.Errorf("value: nests deeper than 256")
	}
	tag, err := d.code()
	if err != nil {
		return nil, err
	}
	switch tag {
	case TagNone:
		return nil, nil
	case TagBool, TagInt:
		n, err := d.code()
		if tag == TagBool {
			return n != 0, err
		}
		return n, err
	case TagFloat:
		if d.f >= len(d.v.Floats) {
			return nil, fmt.Errorf("value: more float tags than Floats")
		}
		d.f++
		return d.v.Floats[d.f-1], nil
	case TagStr:
		if d.s >= len(d.v.Strings) {
			return nil, fmt.Errorf("value: more str tags than Strings")
		}
		d.s++
		return d.v.Strings[d.s-1], nil
	case TagTensor:
		if d.t >= len(d.v.Tensors) {
			return nil, fmt.Errorf("value: more tensor tags than Tensors")
		}
		d.t++
		return d.v.Tensors[d.t-1], nil
	case TagList, TagTuple:
		n, err := d.code()
		if err != nil || n < 0 || n > int64(len(d.v.Codes)) {
			return nil, fmt.Errorf("value: bad length %d", n)
		}
		out := make([]any, n)
		for i := range out {
			if out[i], err = d.next(depth + 1); err != nil {
				return nil, err
			}
		}
		if tag == TagTuple {
			return Tuple(out), nil
		}
		return out, nil
	case TagDict:
		n, err := d.code()
		if err != nil || n < 0 || n > int64(len(d.v.Codes)) {
			return nil, fmt.Errorf("value: bad length %d", n)
		}
		strs, ints := map[string]any{}, map[int64]any{}
		for i := int64(0); i < n; i++ {
			k, err := d.next(depth + 1)
			if err != nil {
				return nil, err
			}
			val, err := d.next(depth + 1)
			if err != nil {
				return nil, err
			}
			switch k := k.(type) {
			case string:
				strs[k] = val
			case int64:
				ints[k] = val
			default:
				return nil, fmt.Errorf("value: a dict key of type %T", k)
			}
		}
		if len(strs) > 0 && len(ints) > 0 {
			return nil, fmt.Errorf("value: a dict's keys mix int and str")
		}
		if len(ints) > 0 {
			return ints, nil
		}
		return strs, nil
	}
	return nil, fmt.Errorf("value: unknown tag %d", tag)
}

// Tensors lists the tensors a Go value (as Value.Go returns) holds, depth first; dicts in key
// order.
func Tensors(x any) []*Tensor {
	var out []*Tensor
	var walk func(x any)
	walk = func(x any) {
		switch x := x.(type) {
		case *Tensor:
			out = append(out, x)
		case Tuple:
			for _, e := range x {
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		case []*Tensor:
			out = append(out, x...)
		case map[string]any:
			keys := make([]string, 0, len(x))
			for k := range x {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				walk(x[k])
			}
		case map[int64]any:
			keys := make([]int64, 0, len(x))
			for k := range x {
				keys = append(keys, k)
			}
			sort.Slice(keys, func(i, j int) bool { return keys[i] < keys[j] })
			for _, k := range keys {
				walk(x[k])
			}
		case map[string]*Tensor:
			keys := make([]string, 0, len(x))
			for k := range x {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				out = append(out, x[k])
			}
		}
	}
	walk(x)
	return out
}
