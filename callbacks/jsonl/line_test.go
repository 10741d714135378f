package jsonl

import (
	"encoding/json"
	"math"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/callbacks/stats/summary"
	"github.com/hotcb/hotcb/torchenv"
)

func TestLineIsJSON(t *testing.T) {
	var l Line
	l.Begin()
	l.Header("m", "train_step_end", &torchenv.Env{Step: 3, Epoch: 0.5, Phase: "val"})
	l.Str("s", "quote\" back\\ nl\n tab\t ctl\x01 é \xff end")
	l.Int("i", -42)
	l.Float("f", 1e-7)
	l.Float("big", 1e300)
	l.Float("nan", math.NaN())
	l.Float("pinf", math.Inf(1))
	l.Float("ninf", math.Inf(-1))
	l.Bool("b", true)
	l.Null("n")
	l.Ints("shape", []int64{})
	l.Strs("names", []string{"a", "b\"c"})
	l.Object("o")
	l.Object("inner")
	l.Close()
	l.Int("x", 1)
	l.Close()
	l.Summary("sum", summary.Summary{Shape: bridge.Shape{2}, DType: bridge.Float32, Numel: 2, HasMoments: true,
		Mean: 1, Std: math.NaN(), HasRange: true, Min: 0, Max: 2})
	b := l.End()
	require.Equal(t, byte('\n'), b[len(b)-1])
	var m map[string]any
	require.NoError(t, json.Unmarshal(b, &m), "%s", b)
	require.Equal(t, "quote\" back\\ nl\n tab\t ctl\x01 é \ufffd end", m["s"])
	require.Equal(t, 3.0, m["step"])
	require.Equal(t, 0.5, m["epoch"])
	require.Equal(t, "val", m["phase"])
	require.Equal(t, 1e-7, m["f"])
	require.Equal(t, 1e300, m["big"])
	for k, want := range map[string]float64{"nan": math.NaN(), "pinf": math.Inf(1), "ninf": math.Inf(-1)} {
		f, err := strconv.ParseFloat(m[k].(string), 64)
		require.NoError(t, err, "Go reads %q back", m[k])
		if math.IsNaN(want) {
			require.True(t, math.IsNaN(f))
		} else {
			require.Equal(t, want, f)
		}
	}
	require.Equal(t, []any{}, m["shape"])
	require.Equal(t, map[string]any{"inner": map[string]any{}, "x": 1.0}, m["o"])
	require.Equal(t, map[string]any{"shape": []any{2.0}, "dtype": "float32", "numel": 2.0, "mean": 1.0,
		"std": "NaN", "min": 0.0, "max": 2.0, "nan": 0.0, "inf": 0.0}, m["sum"])

	// Begin starts over in the same buffer.
	l.Begin()
	l.Int("a", 1)
	require.Equal(t, "{\"a\":1}\n", string(l.End()))
	require.Zero(t, testing.AllocsPerRun(100, func() {
		l.Begin()
		l.Header("m", "e", &torchenv.Env{})
		l.Float("loss", 0.5)
		l.End()
	}), "a reused Line does not allocate")
}

func FuzzLineString(f *testing.F) {
	for _, s := range []string{"", "a\"b", "\x00\x1f\x7f", "\xff\xfe", "é€𝄞", "\u2028"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var l Line
		l.Begin()
		l.Str(s, s)
		var m map[string]string
		require.NoError(t, json.Unmarshal(l.End(), &m))
		want, _ := json.Marshal(s) // encoding/json also replaces invalid UTF-8 with U+FFFD
		var ws string
		require.NoError(t, json.Unmarshal(want, &ws))
		require.Equal(t, ws, m[ws])
	})
}

// TestFloatsAsPythonWritesThem: numbers are written as hotcb's JSONL logger (json.dumps) writes
// them, so the files compare equal byte for byte: a whole float keeps ".0", and a million is
// positional, not 1e+06.
func TestFloatsAsPythonWritesThem(t *testing.T) {
	var l Line
	l.Begin()
	l.Float("a", 2)
	l.Float("b", 1e6)
	l.Float("c", 1e-5)
	l.Float("d", 1e17)
	l.Int("e", 2)
	require.Equal(t, `{"a":2.0,"b":1000000.0,"c":1e-05,"d":1e+17,"e":2}`+"\n", string(l.End()))
}
