package params

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"
)

type label string

type point struct {
	X int     `json:"x"`
	Y float64 `json:"y"`
}

// One form for every source: integers int64, other numbers float64, never a json.Number.
func TestNormalize(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   any
		want any
	}{
		{"nil", nil, nil},
		{"bool", true, true},
		{"string", "x", "x"},
		{"numeric string stays a string", "1e-3", "1e-3"},
		{"named string", label("a"), "a"},
		{"int", 50, int64(50)},
		{"int32", int32(-7), int64(-7)},
		{"int8", int8(3), int64(3)},
		{"uint", uint(7), int64(7)},
		{"uint8", uint8(255), int64(255)},
		{"uint64 in int64 range", uint64(1 << 62), int64(1 << 62)},
		{"uint64 above int64", uint64(math.MaxUint64), uint64(math.MaxUint64)},
		{"float64", 0.5, 0.5},
		{"integral float64 stays float64", 2.0, 2.0},
		{"float32 as written", float32(0.1), 0.1},
		{"json.Number int", json.Number("50"), int64(50)},
		{"json.Number negative", json.Number("-3"), int64(-3)},
		{"json.Number float", json.Number("2.0"), 2.0},
		{"json.Number exponent", json.Number("1e3"), 1000.0},
		{"json.Number beyond int64", json.Number("9223372036854775808"), uint64(1 << 63)},
		{"json.Number beyond uint64", json.Number("99999999999999999999"), 1e20},
		{"duration", 250 * time.Millisecond, "250ms"},
		{"pointer", func() any { n := int16(4); return &n }(), int64(4)},
		{"nil pointer", (*int)(nil), nil},
		{"nested", map[string]any{"a": []any{json.Number("1"), json.Number("1.5"), map[string]any{"b": int32(2)}}},
			map[string]any{"a": []any{int64(1), 1.5, map[string]any{"b": int64(2)}}}},
		{"typed map", map[string]int{"a": 1}, map[string]any{"a": int64(1)}},
		{"any-keyed map", map[any]any{"a": 1, 2: "b", true: 1.5}, map[string]any{"a": int64(1), "2": "b", "true": 1.5}},
		{"typed slice", []float32{0.25, 1}, []any{0.25, 1.0}},
		{"array", [2]int{1, 2}, []any{int64(1), int64(2)}},
		{"nil slice", []int(nil), nil},
		{"struct through JSON", point{X: 1, Y: 0.5}, map[string]any{"x": int64(1), "y": 0.5}},
		{"time through JSON", time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC), "2024-01-02T03:04:05Z"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Normalize(tc.in)
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestNormalizeRefusesWhatJSONCannotCarry(t *testing.T) {
	for _, tc := range []struct {
		in   any
		want string
	}{
		{math.NaN(), "NaN cannot be recorded: JSON has no NaN or infinity"},
		{math.Inf(-1), "-Inf cannot be recorded"},
		{float32(math.Inf(1)), "+Inf cannot be recorded"},
		{json.Number("1e999"), "1e999 is out of range for a 64-bit float"},
		{json.Number("abc"), `"abc" is not a number`},
		{map[string]any{"a": []any{1, math.NaN()}}, `"a": [1]: NaN cannot be recorded`},
		{make(chan int), "a chan int cannot be a parameter value"},
		{map[point]int{{}: 1}, "a key must be a string"},
	} {
		_, err := Normalize(tc.in)
		require.ErrorContains(t, err, tc.want, "%#v", tc.in)
	}
}

func TestNormalizeMapNamesTheKeyAndCopies(t *testing.T) {
	in := map[string]any{"every": 50, "sub": map[string]any{"n": int32(1)}}
	got, err := NormalizeMap(in)
	require.NoError(t, err)
	require.Equal(t, map[string]any{"every": int64(50), "sub": map[string]any{"n": int64(1)}}, got)
	require.Equal(t, 50, in["every"], "the input is not modified")
	require.Equal(t, int32(1), in["sub"].(map[string]any)["n"])

	_, err = NormalizeMap(map[string]any{"lr": math.Inf(1), "a": 1})
	require.EqualError(t, err, `"lr": +Inf cannot be recorded: JSON has no NaN or infinity`)

	m, err := NormalizeMap(nil)
	require.NoError(t, err)
	require.Nil(t, m)
}

// The same text through JSON (with UseNumber, as ops.Parse reads), YAML and the normalizer gives
// the same values.
func TestNormalizeJSONAndYAMLAgree(t *testing.T) {
	const doc = `{"every": 50, "lr": 0.001, "scale": 2.5, "paths": ["loss", 3], "sub": {"n": -1, "on": true}}`
	var fromJSON, fromYAML map[string]any
	dec := json.NewDecoder(strings.NewReader(doc))
	dec.UseNumber()
	require.NoError(t, dec.Decode(&fromJSON))
	require.NoError(t, yaml.Unmarshal([]byte(doc), &fromYAML))
	a, err := NormalizeMap(fromJSON)
	require.NoError(t, err)
	b, err := NormalizeMap(fromYAML)
	require.NoError(t, err)
	require.Equal(t, a, b)
	require.Equal(t, map[string]any{"every": int64(50), "lr": 0.001, "scale": 2.5, "paths": []any{"loss", int64(3)},
		"sub": map[string]any{"n": int64(-1), "on": true}}, a)
}

func TestEqual(t *testing.T) {
	for _, tc := range []struct {
		a, b any
		want bool
	}{
		{50, int64(50), true},
		{50, 50.0, true},
		{json.Number("50"), int64(50), true},
		{json.Number("50.0"), 50, true},
		{uint64(math.MaxUint64), json.Number("18446744073709551615"), true},
		{uint64(math.MaxUint64), float64(math.MaxUint64), false}, // the float is 2^64
		{int64(1<<53 + 1), float64(1 << 53), false},
		{0.1, float32(0.1), false},
		{50, "50", false},
		{"50", 50, false},
		{math.NaN(), math.NaN(), false},
		{"a", "a", true},
		{nil, nil, true},
		{nil, 0, false},
		{true, 1, false},
		{map[string]any{"every": 50, "paths": []any{"loss"}}, map[string]any{"every": json.Number("50"), "paths": []string{"loss"}}, true},
		{map[string]any{"every": 50}, map[string]any{"every": 51}, false},
		{map[string]any{"every": 50}, map[string]any{"every": 50, "x": nil}, false},
		{map[any]any{"a": 1}, map[string]any{"a": 1.0}, true},
		{[]any{1, 2}, []any{1.0, json.Number("2")}, true},
		{[]any{1, 2}, []any{1}, false},
		{[]any{}, []any(nil), false},
	} {
		require.Equal(t, tc.want, Equal(tc.a, tc.b), "Equal(%#v, %#v)", tc.a, tc.b)
		require.Equal(t, tc.want, Equal(tc.b, tc.a), "Equal(%#v, %#v)", tc.b, tc.a)
	}
}

// Float, Int and Bool read what Decode reads: numbers of any form and their text.
func TestScalarHelpers(t *testing.T) {
	f, err := Float("1e-3")
	require.NoError(t, err)
	require.Equal(t, 0.001, f)
	for _, v := range []any{0.5, float32(0.5), json.Number("0.5"), " 0.5 ", "5e-1"} {
		f, err := Float(v)
		require.NoError(t, err, "%#v", v)
		require.Equal(t, 0.5, f)
	}
	_, err = Float("abc")
	require.EqualError(t, err, `want a number, got "abc"`)
	_, err = Float(true)
	require.Error(t, err)

	for _, v := range []any{3, int64(3), 3.0, json.Number("3"), "3", uint8(3)} {
		n, err := Int(v)
		require.NoError(t, err, "%#v", v)
		require.Equal(t, 3, n)
	}
	_, err = Int(2.5)
	require.EqualError(t, err, "want an integer, got 2.5")
	_, err = Int("x")
	require.ErrorContains(t, err, "want an integer")

	for _, v := range []any{true, 1, "true", "on", json.Number("1")} {
		b, err := Bool(v)
		require.NoError(t, err, "%#v", v)
		require.True(t, b)
	}
	_, err = Bool(2)
	require.EqualError(t, err, "want a bool, got 2")

	fs, err := Floats([]any{"0.9", 0.999})
	require.NoError(t, err)
	require.Equal(t, []float64{0.9, 0.999}, fs)
	fs, err = Floats("0.9, 0.99")
	require.NoError(t, err)
	require.Equal(t, []float64{0.9, 0.99}, fs)
	_, err = Floats([]any{"a", 1})
	require.EqualError(t, err, `param "0": want a number, got "a"`)
	_, err = Floats(nil)
	require.EqualError(t, err, "want a list, got null")
}

// Through ForJSON and back, a value keeps its kind: 2.0 stays a float64, 2 an int64.
func TestForJSONKeepsFloatsFloats(t *testing.T) {
	in := map[string]any{"end": 2.0, "n": int64(2), "lr": 0.001, "neg": -0.0, "big": 1e21, "f32": float32(3),
		"l": []any{1.0, int64(1)}, "m": map[string]any{"w": 5.0}, "s": "2.0", "nil": nil}
	b, err := json.Marshal(ForJSON(in))
	require.NoError(t, err)
	require.JSONEq(t, `{"end":2.0,"n":2,"lr":0.001,"neg":-0.0,"big":1e21,"f32":3.0,"l":[1.0,1],"m":{"w":5.0},"s":"2.0","nil":null}`, string(b))
	require.Contains(t, string(b), `"end":2.0`)
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.UseNumber()
	var back map[string]any
	require.NoError(t, dec.Decode(&back))
	got, err := NormalizeMap(back)
	require.NoError(t, err)
	want, err := NormalizeMap(in)
	require.NoError(t, err)
	require.Equal(t, want, got)
	require.Equal(t, 2.0, in["end"], "the input is not modified")

	_, err = json.Marshal(ForJSON(map[string]any{"x": math.Inf(1)}))
	require.Error(t, err, "what JSON cannot hold still fails")
	require.Nil(t, ForJSONMap(nil))
}
