package metrics

import (
	"math"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

// pyRepr holds Python 3's repr (and json.dumps) of each value, from
//
//	python3 -c 'import json; [print(json.dumps(v)) for v in (...)]'
var pyRepr = []struct {
	v    float64
	want string
}{
	{0.0, "0.0"},
	{math.Copysign(0, -1), "-0.0"},
	{1.0, "1.0"},
	{0.25, "0.25"},
	{1e-05, "1e-05"},
	{0.0001, "0.0001"},
	{0.00012345, "0.00012345"},
	{1e16, "1e+16"},
	{1e15, "1000000000000000.0"},
	{9999999999999998.0, "9999999999999998.0"},
	{123456789.0, "123456789.0"},
	{3.141592653589793, "3.141592653589793"},
	{2.5e-10, "2.5e-10"},
	{1.7976931348623157e308, "1.7976931348623157e+308"},
	{5e-324, "5e-324"},
	{-1.5e-07, "-1.5e-07"},
	{0.1, "0.1"},
	{100.0, "100.0"},
	{1e22, "1e+22"},
	{123456789012345678.0, "1.2345678901234568e+17"},
	{0.003, "0.003"},
	{1712345678.1234567, "1712345678.1234567"},
}

func TestPyFloatMatchesPythonRepr(t *testing.T) {
	for _, c := range pyRepr {
		require.Equal(t, c.want, string(appendPyFloat(nil, c.v)), "%v", c.v)
	}
	require.Equal(t, `"NaN"`, string(appendPyFloat(nil, math.NaN())))
	require.Equal(t, `"Infinity"`, string(appendPyFloat(nil, math.Inf(1))))
	require.Equal(t, `"-Infinity"`, string(appendPyFloat(nil, math.Inf(-1))))
}

func TestPyFloatRoundTrips(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 100000 {
		v := math.Float64frombits(r.Uint64())
		if math.IsNaN(v) || math.IsInf(v, 0) {
			continue
		}
		s := string(appendPyFloat(nil, v))
		got, err := strconv.ParseFloat(s, 64)
		require.NoError(t, err, s)
		require.Equal(t, v, got, s)
	}
}

func TestAppendInt(t *testing.T) {
	for _, v := range []int64{0, 7, -7, 10, 1234567890, math.MaxInt64, math.MinInt64} {
		require.Equal(t, strconv.FormatInt(v, 10), string(appendInt(nil, v)))
	}
}
