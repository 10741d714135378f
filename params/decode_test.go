package params

import (
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

type mode string

type inner struct {
	Size  int     `hotcb:"size,min=1"`
	Scale float64 // key "scale"
}

type all struct {
	B    bool
	I    int
	I8   int8
	I16  int16
	I32  int32
	I64  int64
	U    uint
	U8   uint8
	U16  uint16
	U32  uint32
	U64  uint64
	F32  float32
	F64  float64
	S    string
	Mode mode
	D    time.Duration
	Ints []int
	Strs []string
	Fs   []float64
	Ds   []time.Duration
	Arr  [2]float64
	M    map[string]float64
	MS   map[string]inner `hotcb:"ms"`
	N    inner
	P    *int
	PS   *inner `hotcb:"ps"`
	PL   *[]string
	A    any
	Skip int `hotcb:"-"`
	priv int
}

func intp(i int) *int { return &i }

func TestDecodeConversions(t *testing.T) {
	tests := []struct {
		name string
		in   map[string]any
		want all
	}{
		{"bool", map[string]any{"b": true}, all{B: true}},
		{"bool text", map[string]any{"b": "TRUE"}, all{B: true}},
		{"bool yes", map[string]any{"b": "yes"}, all{B: true}},
		{"bool off", map[string]any{"b": " off "}, all{}},
		{"bool 1", map[string]any{"b": 1}, all{B: true}},
		{"bool json 1", map[string]any{"b": json.Number("1")}, all{B: true}},
		{"bool float 0", map[string]any{"b": 0.0}, all{}},
		{"int from float64", map[string]any{"i": 10.0}, all{I: 10}},
		{"int from yaml int", map[string]any{"i": 10}, all{I: 10}},
		{"int from text", map[string]any{"i": "10"}, all{I: 10}},
		{"int from text with spaces", map[string]any{"i": " -7 "}, all{I: -7}},
		{"int from text 1e3", map[string]any{"i": "1e3"}, all{I: 1000}},
		{"int from json.Number", map[string]any{"i": json.Number("42")}, all{I: 42}},
		{"int from json.Number 1e2", map[string]any{"i": json.Number("1e2")}, all{I: 100}},
		{"int from uint8", map[string]any{"i": uint8(7)}, all{I: 7}},
		{"int from float32", map[string]any{"i": float32(3)}, all{I: 3}},
		{"int8 bounds", map[string]any{"i8": -128, "i16": 32767, "i32": -2147483648.0}, all{I8: -128, I16: 32767, I32: math.MinInt32}},
		{"int64 min", map[string]any{"i64": "-9223372036854775808"}, all{I64: math.MinInt64}},
		{"int64 max json", map[string]any{"i64": json.Number("9223372036854775807")}, all{I64: math.MaxInt64}},
		{"int64 from float -2^63", map[string]any{"i64": -9223372036854775808.0}, all{I64: math.MinInt64}},
		{"negative zero", map[string]any{"i": math.Copysign(0, -1)}, all{}},
		{"uint", map[string]any{"u": 3.0, "u8": "255", "u16": json.Number("65535"), "u32": uint32(9)}, all{U: 3, U8: 255, U16: 65535, U32: 9}},
		{"uint64 max", map[string]any{"u64": json.Number("18446744073709551615")}, all{U64: math.MaxUint64}},
		{"uint64 max text", map[string]any{"u64": "18446744073709551615"}, all{U64: math.MaxUint64}},
		{"uint64 max Go", map[string]any{"u64": uint64(math.MaxUint64)}, all{U64: math.MaxUint64}},
		{"float from int", map[string]any{"f64": 3, "f32": int64(2)}, all{F64: 3, F32: 2}},
		{"float from text", map[string]any{"f64": "3e-4", "f32": "0.5"}, all{F64: 3e-4, F32: 0.5}},
		{"float from json.Number", map[string]any{"f64": json.Number("0.1")}, all{F64: 0.1}},
		{"float inf", map[string]any{"f64": "inf", "f32": math.Inf(-1)}, all{F64: math.Inf(1), F32: float32(math.Inf(-1))}},
		{"float from uint64", map[string]any{"f64": uint64(1 << 63)}, all{F64: 1 << 63}},
		{"string", map[string]any{"s": "hello", "mode": "sum"}, all{S: "hello", Mode: "sum"}},
		{"string from named string", map[string]any{"s": mode("x")}, all{S: "x"}},
		{"duration text", map[string]any{"d": "250ms"}, all{D: 250 * time.Millisecond}},
		{"duration seconds float", map[string]any{"d": 1.5}, all{D: 1500 * time.Millisecond}},
		{"duration seconds int", map[string]any{"d": 2}, all{D: 2 * time.Second}},
		{"duration seconds text", map[string]any{"d": "0.3"}, all{D: 300 * time.Millisecond}},
		{"duration json.Number", map[string]any{"d": json.Number("10")}, all{D: 10 * time.Second}},
		{"duration Go", map[string]any{"d": time.Minute}, all{D: time.Minute}},
		{"duration negative", map[string]any{"d": "-1s"}, all{D: -time.Second}},
		{"slice from []any", map[string]any{"ints": []any{1.0, 2, "3", json.Number("4")}}, all{Ints: []int{1, 2, 3, 4}}},
		{"slice from Go slice", map[string]any{"ints": []int64{5, 6}, "strs": []string{"a"}}, all{Ints: []int{5, 6}, Strs: []string{"a"}}},
		{"slice from comma text", map[string]any{"strs": "a, b,c", "ints": "1,2"}, all{Strs: []string{"a", "b", "c"}, Ints: []int{1, 2}}},
		{"slice from bracketed text", map[string]any{"fs": "[0.5, 1e-3]"}, all{Fs: []float64{0.5, 1e-3}}},
		{"slice from one word", map[string]any{"strs": "solo"}, all{Strs: []string{"solo"}}},
		{"slice from empty text", map[string]any{"strs": ""}, all{Strs: []string{}}},
		{"slice from empty brackets", map[string]any{"ints": "[]"}, all{Ints: []int{}}},
		{"slice from scalar", map[string]any{"ints": 3}, all{Ints: []int{3}}},
		{"slice from json.Number", map[string]any{"ints": json.Number("3")}, all{Ints: []int{3}}},
		{"slice of durations", map[string]any{"ds": "1s,250ms, 2"}, all{Ds: []time.Duration{time.Second, 250 * time.Millisecond, 2 * time.Second}}},
		{"empty slice", map[string]any{"ints": []any{}}, all{Ints: []int{}}},
		{"array", map[string]any{"arr": []any{0.9, "0.999"}}, all{Arr: [2]float64{0.9, 0.999}}},
		{"array from text", map[string]any{"arr": "0.9,0.99"}, all{Arr: [2]float64{0.9, 0.99}}},
		{"map", map[string]any{"m": map[string]any{"loss": 1, "acc": "0.5"}}, all{M: map[string]float64{"loss": 1, "acc": 0.5}}},
		{"map from Go map", map[string]any{"m": map[string]int{"loss": 2}}, all{M: map[string]float64{"loss": 2}}},
		{"map from yaml any keys", map[string]any{"m": map[any]any{"loss": 2}}, all{M: map[string]float64{"loss": 2}}},
		{"map of structs", map[string]any{"ms": map[string]any{"a": map[string]any{"size": 2}}}, all{MS: map[string]inner{"a": {Size: 2}}}},
		{"nested struct", map[string]any{"n": map[string]any{"size": 3, "scale": 0.5}}, all{N: inner{Size: 3, Scale: 0.5}}},
		{"nested dotted", map[string]any{"n.size": 3, "m.loss": 1}, all{N: inner{Size: 3}, M: map[string]float64{"loss": 1}}},
		{"pointer", map[string]any{"p": 5}, all{P: intp(5)}},
		{"pointer null", map[string]any{"p": nil, "ints": nil, "m": nil, "a": nil}, all{}},
		{"pointer to struct", map[string]any{"ps": map[string]any{"size": 1}}, all{PS: &inner{Size: 1}}},
		{"pointer to slice", map[string]any{"pl": "x,y"}, all{PL: &[]string{"x", "y"}}},
		{"any kept as is", map[string]any{"a": json.Number("1.5")}, all{A: json.Number("1.5")}},
		{"any map", map[string]any{"a": map[string]any{"k": []any{1}}}, all{A: map[string]any{"k": []any{1}}}},
		{"key matching", map[string]any{"F_64": 1, "Mode": "m", "u-8": 2}, all{F64: 1, Mode: "m", U8: 2}},
		{"nil src", nil, all{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got all
			require.NoError(t, Decode(tc.in, &got))
			require.Equal(t, tc.want, got)
		})
	}
}

func TestDecodeFailures(t *testing.T) {
	tests := []struct {
		name string
		in   map[string]any
		msg  string // the whole message
	}{
		{"float to int", map[string]any{"i": 2.5}, `param "i": want an integer, got 2.5`},
		{"text to int", map[string]any{"i": "ten"}, `param "i": want an integer, got "ten"`},
		{"bool to int", map[string]any{"i": true}, `param "i": want an integer, got true`},
		{"null to int", map[string]any{"i": nil}, `param "i": want an integer, got null`},
		{"inf to int", map[string]any{"i": math.Inf(1)}, `param "i": want an integer, got +Inf`},
		{"int8 overflow", map[string]any{"i8": 128}, `param "i8": want an integer from -128 to 127 (int8), got 128`},
		{"int8 underflow text", map[string]any{"i8": "-129"}, `param "i8": want an integer from -128 to 127 (int8), got "-129"`},
		{"int16 overflow", map[string]any{"i16": 40000.0}, `param "i16": want an integer from -32768 to 32767 (int16), got 40000`},
		{"int64 overflow float", map[string]any{"i64": 1e19}, `param "i64": want an integer from -9223372036854775808 to 9223372036854775807 (int64), got 1e+19`},
		{"int64 overflow json", map[string]any{"i64": json.Number("9223372036854775808")}, `param "i64": want an integer from -9223372036854775808 to 9223372036854775807 (int64), got 9223372036854775808`},
		{"negative to uint", map[string]any{"u": -1}, `param "u": want a non-negative integer (uint), got -1`},
		{"negative text to uint8", map[string]any{"u8": "-1"}, `param "u8": want a non-negative integer (uint8), got "-1"`},
		{"uint8 overflow", map[string]any{"u8": 256}, `param "u8": want an integer from 0 to 255 (uint8), got 256`},
		{"uint64 overflow", map[string]any{"u64": 2e19}, `param "u64": want an integer from 0 to 18446744073709551615 (uint64), got 2e+19`},
		{"fraction to uint", map[string]any{"u": 0.5}, `param "u": want a non-negative integer, got 0.5`},
		{"text to float", map[string]any{"f64": "abc"}, `param "f64": want a number, got "abc"`},
		{"NaN", map[string]any{"f64": math.NaN()}, `param "f64": want a number, got NaN`},
		{"NaN text", map[string]any{"f64": "nan"}, `param "f64": want a number, got "nan"`},
		{"float out of range text", map[string]any{"f64": "1e400"}, `param "f64": want a number, got "1e400"`},
		{"float32 overflow", map[string]any{"f32": 1e39}, `param "f32": want a number within float32 range (±3.4028234663852886e+38), got 1e+39`},
		{"bool to float", map[string]any{"f64": false}, `param "f64": want a number, got false`},
		{"number to string", map[string]any{"s": 3}, `param "s": want a string, got 3`},
		{"json.Number to string", map[string]any{"s": json.Number("3")}, `param "s": want a string, got 3`},
		{"bool to string", map[string]any{"mode": true}, `param "mode": want a string, got true`},
		{"bad bool", map[string]any{"b": "maybe"}, `param "b": want a bool, got "maybe"`},
		{"2 to bool", map[string]any{"b": 2}, `param "b": want a bool, got 2`},
		{"bad duration", map[string]any{"d": "soon"}, `param "d": want a duration ("250ms", "1m30s", or seconds as a number), got "soon"`},
		{"duration overflow", map[string]any{"d": 1e10}, `param "d": want a duration ("250ms", "1m30s", or seconds as a number), got 1e+10`},
		{"duration overflow int", map[string]any{"d": int64(1) << 40}, `param "d": want a duration ("250ms", "1m30s", or seconds as a number), got 1099511627776`},
		{"bool to duration", map[string]any{"d": true}, `param "d": want a duration ("250ms", "1m30s", or seconds as a number), got true`},
		{"wrong slice element", map[string]any{"ints": []any{1, "x", 3}}, `param "ints.1": want an integer, got "x"`},
		{"wrong text element", map[string]any{"fs": "1,,2"}, `param "fs.1": want a number, got ""`},
		{"map to slice", map[string]any{"ints": map[string]any{"a": 1}}, `param "ints": want a list, got map[a:1]`},
		{"array length", map[string]any{"arr": []any{0.9}}, `param "arr": want a list of 2 elements, got [0.9]`},
		{"null to array", map[string]any{"arr": nil}, `param "arr": want a list, got null`},
		{"map element", map[string]any{"m": map[string]any{"loss": "high"}}, `param "m.loss": want a number, got "high"`},
		{"map non-string keys", map[string]any{"m": map[int]float64{1: 2}}, `param "m": want a map with string keys, got map[1:2]`},
		{"list to map", map[string]any{"m": []any{1}}, `param "m": want a map with string keys, got [1]`},
		{"nested struct field", map[string]any{"n": map[string]any{"scale": "big"}}, `param "n.scale": want a number, got "big"`},
		{"nested dotted field", map[string]any{"n.scale": "big"}, `param "n.scale": want a number, got "big"`},
		{"nested in map", map[string]any{"ms": map[string]any{"a": map[string]any{"size": 1.5}}}, `param "ms.a.size": want an integer, got 1.5`},
		{"scalar to struct", map[string]any{"n": 3}, `param "n": want a map, got 3`},
		{"null to struct", map[string]any{"n": nil}, `param "n": want a map, got null`},
		{"pointer element", map[string]any{"ps": map[string]any{"size": "x"}}, `param "ps.size": want an integer, got "x"`},
		{"unknown", map[string]any{"i": 1, "f65": 2}, `param "f65": unknown key (did you mean "f64"?); valid keys: b, i, i8, i16, i32, i64, u, u8, u16, u32, u64, f32, f64, s, mode, d, ints, strs, fs, ds, arr, m, ms, n, p, ps, pl, a`},
		{"unknown without suggestion", map[string]any{"zzzzzz": 2}, `param "zzzzzz": unknown key; valid keys: b, i, i8, i16, i32, i64, u, u8, u16, u32, u64, f32, f64, s, mode, d, ints, strs, fs, ds, arr, m, ms, n, p, ps, pl, a`},
		{"hidden field is unknown", map[string]any{"skip": 1}, `param "skip": unknown key; valid keys: b, i, i8, i16, i32, i64, u, u8, u16, u32, u64, f32, f64, s, mode, d, ints, strs, fs, ds, arr, m, ms, n, p, ps, pl, a`},
		{"unknown nested", map[string]any{"n": map[string]any{"sise": 1}}, `param "n.sise": unknown key (did you mean "size"?); valid keys: size, scale`},
		{"unknown nested dotted", map[string]any{"n.sise": 1}, `param "n.sise": unknown key (did you mean "size"?); valid keys: size, scale`},
		{"unknown dotted head", map[string]any{"x.y": 1}, `param "x.y": unknown key; valid keys: b, i, i8, i16, i32, i64, u, u8, u16, u32, u64, f32, f64, s, mode, d, ints, strs, fs, ds, arr, m, ms, n, p, ps, pl, a`},
		{"duplicate key", map[string]any{"f_64": 1, "f64": 2}, `param "f_64": want a single value ("f64" is given too), got 1`},
		{"direct and dotted", map[string]any{"n": map[string]any{}, "n.size": 2}, `param "n.size": want either "n" or "n.size", not both, got 2`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got all
			err := Decode(tc.in, &got)
			require.Error(t, err)
			require.Equal(t, tc.msg, err.Error())
			var pe *Error
			require.ErrorAs(t, err, &pe)
			require.Equal(t, all{}, got, "dst must not change")
		})
	}
}

func TestErrorFields(t *testing.T) {
	var got all
	err := Decode(map[string]any{"ms": map[string]any{"a": map[string]any{"size": 0}}}, &got)
	require.Equal(t, []*Error{{Key: "ms.a.size", Value: 0, Want: ">= 1", Rule: "min=1"}}, Errors(err))

	err = Decode(map[string]any{"n": map[string]any{"sise": 1}}, &got)
	require.ErrorIs(t, err, ErrUnknownKey)
	require.Equal(t, []*Error{{Key: "n.sise", Value: 1, Valid: []string{"size", "scale"}}}, Errors(err))

	err = Decode(map[string]any{"i8": 300}, &got)
	require.NotErrorIs(t, err, ErrUnknownKey)
	require.Equal(t, []*Error{{Key: "i8", Value: 300, Want: "an integer from -128 to 127 (int8)"}}, Errors(err))
	require.Nil(t, Errors(nil))
}

func TestDecodeReportsEveryProblem(t *testing.T) {
	before := all{I: 7, S: "keep", Ints: []int{1}, M: map[string]float64{"a": 1}, P: intp(3), PS: &inner{Size: 9}}
	got := before
	err := Decode(map[string]any{
		"i":    "x",
		"ints": []any{1, 2.5, "y"},
		"evry": 10,
		"m":    map[string]any{"a": 2, "b": "z"},
		"p":    4,
		"ps":   map[string]any{"size": 5},
		"s":    "changed",
	}, &got)
	keys := []string{}
	for _, e := range Errors(err) {
		keys = append(keys, e.Key)
	}
	require.Equal(t, []string{"evry", "i", "ints.1", "ints.2", "m.b"}, keys)
	require.Len(t, strings.Split(err.Error(), "\n"), 5)
	// Nothing changed, not even through shared maps or pointers.
	require.Equal(t, all{I: 7, S: "keep", Ints: []int{1}, M: map[string]float64{"a": 1}, P: intp(3), PS: &inner{Size: 9}}, got)
	require.Same(t, before.P, got.P)
	require.Same(t, before.PS, got.PS)
}

func TestDecodeLeavesSharedValuesAlone(t *testing.T) {
	old := all{M: map[string]float64{"a": 1}, PS: &inner{Size: 2, Scale: 3}, Ints: []int{1, 2}, Arr: [2]float64{1, 2}}
	keepM, keepPS, keepInts := old.M, old.PS, old.Ints
	got := old
	require.NoError(t, Decode(map[string]any{"m.b": 2, "ps.size": 4, "ints": "9"}, &got))
	require.Equal(t, map[string]float64{"a": 1, "b": 2}, got.M, "maps merge")
	require.Equal(t, &inner{Size: 4, Scale: 3}, got.PS, "pointees merge")
	require.Equal(t, []int{9}, got.Ints, "lists replace")
	require.Equal(t, map[string]float64{"a": 1}, keepM)
	require.Equal(t, &inner{Size: 2, Scale: 3}, keepPS)
	require.Equal(t, []int{1, 2}, keepInts)
}

func TestDecodePartialUpdate(t *testing.T) {
	got := all{I: 1, S: "s", N: inner{Size: 2, Scale: 0.5}, M: map[string]float64{"a": 1, "b": 2}}
	require.NoError(t, Decode(map[string]any{"n": map[string]any{"size": 5}, "m": map[string]any{"b": nil, "c": 3}}, &got))
	require.Equal(t, all{I: 1, S: "s", N: inner{Size: 5, Scale: 0.5}, M: map[string]float64{"a": 1, "c": 3}}, got)
}

func TestDecodeIdempotent(t *testing.T) {
	in := map[string]any{
		"i": 3, "ints": "1,2", "m": map[string]any{"x": 1, "y": nil}, "ps": map[string]any{"size": 2},
		"n.scale": 2, "a": []any{"k"}, "d": "1s", "arr": []any{1, 2},
	}
	var once, twice all
	require.NoError(t, Decode(in, &once))
	twice = once
	require.NoError(t, Decode(in, &twice))
	require.Equal(t, once, twice)
	var fresh all
	require.NoError(t, Decode(in, &fresh))
	require.Equal(t, once, fresh)
}

func TestDecodeJSON(t *testing.T) {
	doc := `{"i": 3, "i64": 9007199254740993, "u64": 18446744073709551615, "f32": 0.1, "d": 0.25,
	         "ints": [1, 2], "m": {"loss": 1e-3}, "n": {"size": 2}, "a": {"x": [1]}}`
	for _, useNumber := range []bool{false, true} {
		dec := json.NewDecoder(strings.NewReader(doc))
		if useNumber {
			dec.UseNumber()
		}
		var m map[string]any
		require.NoError(t, dec.Decode(&m))
		var got all
		err := Decode(m, &got)
		if !useNumber {
			// float64 cannot hold 2^64-1: it reads as 2^64, one past the range.
			require.EqualError(t, err, `param "u64": want an integer from 0 to 18446744073709551615 (uint64), got 1.8446744073709552e+19`)
			delete(m, "u64")
			require.NoError(t, Decode(m, &got))
			require.Equal(t, int64(9007199254740992), got.I64, "float64 rounds 2^53+1")
			continue
		}
		require.NoError(t, err)
		require.Equal(t, int64(9007199254740993), got.I64, "json.Number is exact")
		require.Equal(t, uint64(math.MaxUint64), got.U64)
		require.Equal(t, 3, got.I)
		require.Equal(t, float32(0.1), got.F32)
		require.Equal(t, 250*time.Millisecond, got.D)
		require.Equal(t, []int{1, 2}, got.Ints)
		require.Equal(t, map[string]float64{"loss": 1e-3}, got.M)
		require.Equal(t, inner{Size: 2}, got.N)
		require.Equal(t, map[string]any{"x": []any{json.Number("1")}}, got.A)
	}
}

func TestAllowUnknown(t *testing.T) {
	var got all
	require.NoError(t, Decode(map[string]any{"i": 1, "nope": 2, "n": map[string]any{"size": 2, "zz": 1}, "x.y": 1}, &got, AllowUnknown()))
	require.Equal(t, all{I: 1, N: inner{Size: 2}}, got)
}

func TestScalarsAsStrings(t *testing.T) {
	type layers struct {
		Layer string
		Names []string
		Tags  map[string]string
	}
	tests := []struct {
		in   any
		want string
	}{
		{0, "0"},
		{3.0, "3"},
		{1e6, "1000000"},
		{0.5, "0.5"},
		{1e21, "1e+21"},
		{float32(0.1), "0.1"},
		{uint64(math.MaxUint64), "18446744073709551615"},
		{json.Number("1.50"), "1.50"},
		{true, "true"},
		{"text", "text"},
	}
	for _, tc := range tests {
		var got layers
		require.NoError(t, Decode(map[string]any{"layer": tc.in}, &got, ScalarsAsStrings()))
		require.Equal(t, tc.want, got.Layer)
		if _, isString := tc.in.(string); !isString {
			require.Error(t, Decode(map[string]any{"layer": tc.in}, &layers{}), "without the option")
		}
	}
	var got layers
	require.NoError(t, Decode(map[string]any{"names": []any{0, "fc", 2.5}, "tags": map[string]any{"a": 1}}, &got, ScalarsAsStrings()))
	require.Equal(t, layers{Names: []string{"0", "fc", "2.5"}, Tags: map[string]string{"a": "1"}}, got)
	require.EqualError(t, Decode(map[string]any{"layer": nil}, &got, ScalarsAsStrings()), `param "layer": want a string, got null`)
}

func TestKeyMatching(t *testing.T) {
	type cfg struct {
		EveryN     int
		LogDir     string `hotcb:"log_dir"`
		HTTPPort   int
		Layer2Name string
		MaxLR      float64
	}
	require.Equal(t, []string{"every_n", "log_dir", "http_port", "layer2_name", "max_lr"}, Keys(cfg{}))
	for _, k := range []string{"every_n", "everyn", "EveryN", "everyN", "EVERY_N", "every-n"} {
		var got cfg
		require.NoError(t, Decode(map[string]any{k: 4}, &got), k)
		require.Equal(t, 4, got.EveryN, k)
	}
	var got cfg
	require.NoError(t, Decode(map[string]any{"logdir": "a", "http_port": 80, "layer2name": "x", "max_lr": 0.1}, &got))
	require.Equal(t, cfg{LogDir: "a", HTTPPort: 80, Layer2Name: "x", MaxLR: 0.1}, got)
	err := Decode(map[string]any{"evry_n": 1}, &got)
	require.EqualError(t, err, `param "evry_n": unknown key (did you mean "every_n"?); valid keys: every_n, log_dir, http_port, layer2_name, max_lr`)
}

func TestEmbedded(t *testing.T) {
	type Common struct {
		Every int `hotcb:"every,min=1"`
	}
	type Sub struct{ X int }
	type cfg struct {
		Common
		Sub  `hotcb:"sub"`
		Name string
	}
	require.Equal(t, []string{"every", "sub", "name"}, Keys(&cfg{}))
	var got cfg
	require.NoError(t, Decode(map[string]any{"every": 2, "sub": map[string]any{"x": 1}, "name": "n"}, &got))
	require.Equal(t, cfg{Common: Common{Every: 2}, Sub: Sub{X: 1}, Name: "n"}, got)
	require.EqualError(t, Decode(map[string]any{"every": 0}, &got), `param "every": want >= 1 (min=1), got 0`)
	require.Equal(t, map[string]any{"every": 2, "sub": map[string]any{"x": 1}, "name": "n"}, Encode(got))
}

func TestRecursiveType(t *testing.T) {
	type node struct {
		Val  int
		Next *node
	}
	var got node
	require.NoError(t, Decode(map[string]any{"val": 1, "next": map[string]any{"val": 2, "next": map[string]any{"val": 3}}}, &got))
	require.Equal(t, 3, got.Next.Next.Val)
	require.EqualError(t, Decode(map[string]any{"next.next.val": "x"}, &got), `param "next.next.val": want an integer, got "x"`)
	require.Equal(t, 3, got.Next.Next.Val)
	require.Equal(t, []string{"val", "next"}, Keys(got))
}

func TestBadDestinations(t *testing.T) {
	type badType struct{ C chan int }
	type badIface struct{ S interface{ String() string } }
	type badMapKey struct{ M map[int]int }
	type nestedBad struct{ In struct{ F func() } }
	type dup struct {
		A int `hotcb:"x"`
		X int
	}
	type badRule struct {
		N int `hotcb:"n,min=abc"`
	}
	type unknownRule struct {
		N int `hotcb:"n,required"`
	}
	type boolRange struct {
		B bool `hotcb:"b,max=1"`
	}
	type structRule struct {
		S inner `hotcb:"s,min=1"`
	}
	type badOneof struct {
		N int `hotcb:"n,oneof=1|x"`
	}
	type badLen struct {
		S string `hotcb:"s,min=-1"`
	}
	var i int
	tests := []struct {
		dst any
		msg string
	}{
		{nil, "params: Decode needs a non-nil pointer to a struct, got <nil>"},
		{all{}, "params: Decode needs a non-nil pointer to a struct, got params.all"},
		{(*all)(nil), "params: Decode needs a non-nil pointer to a struct, got *params.all"},
		{&i, "params: Decode needs a non-nil pointer to a struct, got *int"},
		{&badType{}, "params: params.badType: field C: unsupported type chan int"},
		{&badIface{}, "params: params.badIface: field S: unsupported type interface { String() string }"},
		{&badMapKey{}, "params: params.badMapKey: field M: unsupported type map[int]int (map keys must be strings)"},
		{&nestedBad{}, "params: params.nestedBad: field In: params: struct { F func() }: field F: unsupported type func()"},
		{&dup{}, `params: params.dup: fields A and X both answer to key "x"`},
		{&badRule{}, `params: params.badRule: field N: rule "min=abc": bound "abc" is not an integer`},
		{&unknownRule{}, `params: params.unknownRule: field N: rule "required": want min=, max= or oneof=`},
		{&boolRange{}, `params: params.boolRange: field B: rule "max=1": a bool has no range`},
		{&structRule{}, `params: params.structRule: field S: rules "min=1" need numbers, strings or durations (or lists and maps of them), not params.inner`},
		{&badOneof{}, `params: params.badOneof: field N: rule "oneof=1|x": option "x" is not an integer`},
		{&badLen{}, `params: params.badLen: field S: rule "min=-1": a string's bound is a length, want a whole number >= 0`},
	}
	for _, tc := range tests {
		err := Decode(map[string]any{}, tc.dst)
		require.EqualError(t, err, tc.msg)
		var pe *Error
		require.False(t, errors.As(err, &pe), "a setup error is not an *Error")
	}
	require.Nil(t, Keys(&badType{}))
	require.Nil(t, Encode(badType{}))
}

func TestDecodeConcurrent(t *testing.T) {
	type fresh struct {
		A int `hotcb:"a,min=0"`
		B []string
	}
	done := make(chan error)
	for i := range 8 {
		go func() {
			var got fresh
			err := Decode(map[string]any{"a": i, "b": "x,y"}, &got)
			if err == nil && (got.A != i || len(got.B) != 2) {
				err = errors.New("wrong result")
			}
			done <- err
		}()
	}
	for range 8 {
		require.NoError(t, <-done)
	}
}
