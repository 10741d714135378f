package summary_test

import (
	"encoding/json"
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/callbacks/stats/summary"
)

func TestOf(t *testing.T) {
	x := bridge.FromSlice([]float64{1, 2, 3, 4, math.Inf(-1)}, 5)
	s, err := summary.Of(x.SetRequiresGrad(true))
	require.NoError(t, err)
	require.Equal(t, bridge.Float64, s.DType)
	require.Equal(t, math.Inf(-1), s.Min)
	require.Equal(t, 4.0, s.Max)
	require.EqualValues(t, 0, s.NaN)
	require.EqualValues(t, 1, s.Inf)

	_, err = summary.Of(nil)
	require.ErrorContains(t, err, "nil tensor")
	y := bridge.Ones(bridge.Shape{2})
	require.NoError(t, y.Free())
	_, err = summary.Of(y)
	require.ErrorIs(t, err, bridge.ErrFreed, "errors are returned, not panicked")
}

func TestNumber(t *testing.T) {
	for _, c := range []struct {
		in   any
		want float64
		ok   bool
	}{
		{3, 3, true}, {int64(-2), -2, true}, {uint8(7), 7, true}, {float32(0.5), 0.5, true},
		{true, 1, true}, {json.Number("1e3"), 1000, true}, {json.Number("x"), 0, false},
		{"3", 0, false}, {nil, 0, false},
	} {
		got, ok := summary.Number(c.in)
		require.Equal(t, c.ok, ok, "%#v", c.in)
		require.Equal(t, c.want, got, "%#v", c.in)
	}
}
