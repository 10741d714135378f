package pyjson

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestQuoteNonFiniteLeavesStringsAlone(t *testing.T) {
	out, ok := QuoteNonFinite([]byte(`{"a NaN \" Infinity": NaN, "b": [-Infinity, Infinity]}`))
	require.True(t, ok)
	require.Equal(t, `{"a NaN \" Infinity": "NaN", "b": ["-Infinity", "Infinity"]}`, string(out))
	out, ok = QuoteNonFinite([]byte(`{"s":"a\"NaN","t":"NaN in text"}`))
	require.False(t, ok)
	require.Equal(t, `{"s":"a\"NaN","t":"NaN in text"}`, string(out))
}

func TestNumber(t *testing.T) {
	for raw, want := range map[string]float64{
		"0": 0, " 2.5 ": 2.5, "-1e-3": -0.001, "1e999": math.Inf(1), "-1e999": math.Inf(-1),
		`"Infinity"`: math.Inf(1), `"-inf"`: math.Inf(-1),
	} {
		v, ok := Number([]byte(raw))
		require.True(t, ok, raw)
		require.Equal(t, want, v, raw)
	}
	v, ok := Number([]byte(`"NaN"`))
	require.True(t, ok)
	require.True(t, math.IsNaN(v))
	for _, raw := range []string{"", `"1"`, "true", "null", "[1]", "1x", `"nan "`} {
		_, ok := Number([]byte(raw))
		require.False(t, ok, raw)
	}
}
