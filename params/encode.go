package params

import (
	"reflect"
	"time"
)

// Encode returns src's fields (src is a struct or a pointer to one) under the keys Decode
// reads, for status displays and for re-applying the last params: Decode(Encode(x), &y) on a
// zero y makes y equal to x in every field Decode sees (through JSON text, integers beyond 2^53
// need UseNumber to survive). Values are plain: bools, numbers and strings of their basic Go type
// (a named `type Mode string` becomes a string), durations as text ("250ms"), nested structs
// and maps as map[string]any, lists and arrays as []any, nil pointers, slices and maps as nil;
// an any field is returned as it is. Encode returns nil when src is not a struct (or is a nil
// pointer) or is a type Decode rejects.
func Encode(src any) map[string]any {
	v := reflect.ValueOf(src)
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return nil
		}
		v = v.Elem()
	}
	if v.Kind() != reflect.Struct {
		return nil
	}
	if _, err := structInfoOf(v.Type()); err != nil {
		return nil
	}
	return encodeStruct(v)
}

func encodeStruct(v reflect.Value) map[string]any {
	info, err := structInfoOf(v.Type())
	if err != nil {
		return nil
	}
	out := make(map[string]any, len(info.fields))
	for _, f := range info.fields {
		out[f.name] = encodeValue(v.FieldByIndex(f.index))
	}
	return out
}

// basic is the unnamed type of each scalar kind, so that named types encode as plain values.
var basic = map[reflect.Kind]reflect.Type{
	reflect.Bool:    reflect.TypeFor[bool](),
	reflect.String:  reflect.TypeFor[string](),
	reflect.Int:     reflect.TypeFor[int](),
	reflect.Int8:    reflect.TypeFor[int8](),
	reflect.Int16:   reflect.TypeFor[int16](),
	reflect.Int32:   reflect.TypeFor[int32](),
	reflect.Int64:   reflect.TypeFor[int64](),
	reflect.Uint:    reflect.TypeFor[uint](),
	reflect.Uint8:   reflect.TypeFor[uint8](),
	reflect.Uint16:  reflect.TypeFor[uint16](),
	reflect.Uint32:  reflect.TypeFor[uint32](),
	reflect.Uint64:  reflect.TypeFor[uint64](),
	reflect.Float32: reflect.TypeFor[float32](),
	reflect.Float64: reflect.TypeFor[float64](),
}

func encodeValue(v reflect.Value) any {
	if v.Type() == durationType {
		return time.Duration(v.Int()).String()
	}
	if b, ok := basic[v.Kind()]; ok {
		return v.Convert(b).Interface()
	}
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return nil
		}
		if v.Kind() == reflect.Interface {
			return v.Elem().Interface()
		}
		return encodeValue(v.Elem())
	case reflect.Struct:
		return encodeStruct(v)
	case reflect.Slice, reflect.Array:
		if v.Kind() == reflect.Slice && v.IsNil() {
			return nil
		}
		out := make([]any, v.Len())
		for i := range out {
			out[i] = encodeValue(v.Index(i))
		}
		return out
	case reflect.Map:
		if v.IsNil() {
			return nil
		}
		out := make(map[string]any, v.Len())
		iter := v.MapRange()
		for iter.Next() {
			out[iter.Key().String()] = encodeValue(iter.Value())
		}
		return out
	}
	return nil
}

// Keys returns the keys Decode accepts for dst (a struct, or a pointer to one, which may be
// nil), in field order: tag names, else field names in snake_case. Nested structs are one key.
// It returns nil for a type Decode rejects.
func Keys(dst any) []string {
	t := reflect.TypeOf(dst)
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == nil || t.Kind() != reflect.Struct {
		return nil
	}
	info, err := structInfoOf(t)
	if err != nil {
		return nil
	}
	return info.names()
}
