package aten_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/aten"
	"github.com/hotcb/hotcb/bridge"
)

func TestGeneratedOpsRun(t *testing.T) {
	require.NoError(t, aten.CheckShim())
	x := bridge.FromSlice([]float32{1, 2, 3, 4, 5, 6, 7, 8, 9}, 3, 3)
	require.Equal(t, []float32{1, 0, 0, 4, 5, 0, 7, 8, 9}, aten.Tril(x, 0).Float32s())
	require.Equal(t, []float32{0, 2, 3, 0, 0, 6, 0, 0, 0}, aten.Triu(x, 1).Float32s())
	v, i := aten.Topk(x.Reshape(9), 2, -1, true, true)
	require.Equal(t, []float32{9, 8}, v.Float32s())
	require.Equal(t, []int64{8, 7}, i.Int64s())
	parts := aten.Chunk(x, 3, 0)
	require.Len(t, parts, 3)
	require.Equal(t, []float32{4, 5, 6}, parts[1].Float32s())
	y := aten.Add(x, x, aten.FloatScalar(0.5))
	require.Equal(t, float32(1.5), y.Float32s()[0])
	z := aten.Zeros([]int64{2, 3}, aten.Options{DType: aten.D(bridge.Int64)})
	require.Equal(t, bridge.Int64, z.DType())
	require.Equal(t, bridge.Shape{2, 3}, z.Shape())
	aten.Add_(z, aten.OnesLike(z, aten.Options{}, nil), aten.IntScalar(2))
	require.Equal(t, []int64{2, 2, 2, 2, 2, 2}, z.Int64s())
	require.True(t, aten.IsFloatingPoint(x))
	require.Equal(t, int64(2), aten.Size(x, 1)-1)
}

func TestBadArgumentsAreErrors(t *testing.T) {
	x := bridge.Ones(bridge.Shape{2, 3})
	err := bridge.Try(func() { aten.Mm(x, x) })
	require.ErrorContains(t, err, "torch: aten::mm: ")
	var be *bridge.Error
	require.ErrorAs(t, err, &be)
	err = bridge.Try(func() { aten.Tril(nil, 0) })
	require.Error(t, err)
	t.Log(err)
}
