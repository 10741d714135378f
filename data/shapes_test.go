package data

import (
	"bytes"
	"image/png"
	"math"
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/bridge"
)

func TestShapesShapesAndDTypes(t *testing.T) {
	for _, tc := range []struct{ size, channels, classes int }{{28, 1, 4}, {32, 3, 8}, {32, 1, 6}, {16, 3, 2}} {
		ds, err := Shapes(ShapesOptions{N: 100, Size: tc.size, Channels: tc.channels, Classes: tc.classes, Seed: 3})
		require.NoError(t, err)
		require.Equal(t, bridge.Shape{100, int64(tc.channels), int64(tc.size), int64(tc.size)}, ds.Images.Shape())
		require.Equal(t, bridge.Float32, ds.Images.DType())
		require.Equal(t, bridge.Shape{100}, ds.Labels.Shape())
		require.Equal(t, bridge.Int64, ds.Labels.DType())
		require.Equal(t, ShapeClasses[:tc.classes], ds.Classes)
		require.Equal(t, tc.channels, ds.Norm.Channels())
		require.Equal(t, 100, ds.Len())
	}
}

func TestShapesDefaults(t *testing.T) {
	ds, err := Shapes(ShapesOptions{N: 60})
	require.NoError(t, err)
	require.Equal(t, bridge.Shape{60, 1, 28, 28}, ds.Images.Shape())
	require.Len(t, ds.Classes, 6)
}

func TestShapesDeterministic(t *testing.T) {
	opts := ShapesOptions{N: 300, Size: 32, Channels: 3, Classes: 8, Seed: 42}
	a, err := Shapes(opts)
	require.NoError(t, err)
	// The result must not depend on how images were spread over goroutines.
	prev := runtime.GOMAXPROCS(1)
	b, err := Shapes(opts)
	runtime.GOMAXPROCS(prev)
	require.NoError(t, err)
	require.Equal(t, a.Images.Float32s(), b.Images.Float32s())
	require.Equal(t, a.Labels.Int64s(), b.Labels.Int64s())
	require.Equal(t, a.Norm, b.Norm)

	opts.Seed = 43
	c, err := Shapes(opts)
	require.NoError(t, err)
	require.NotEqual(t, a.Labels.Int64s(), c.Labels.Int64s())
	require.NotEqual(t, a.Images.Float32s(), c.Images.Float32s())
}

// Golden values: integer draws only, so they hold on every architecture. If they change, every
// dataset a user generated before changes too.
func TestShapesGolden(t *testing.T) {
	ds, err := Shapes(ShapesOptions{N: 12, Seed: 7})
	require.NoError(t, err)
	require.Equal(t, []int64{2, 0, 1, 2, 1, 5, 3, 4, 0, 5, 4, 3}, ds.Labels.Int64s())
}

func TestShapesClassBalance(t *testing.T) {
	for _, k := range []int{2, 4, 6, 8} {
		ds, err := Shapes(ShapesOptions{N: 1003, Classes: k, Seed: 1})
		require.NoError(t, err)
		counts := ds.ClassCounts()
		require.Len(t, counts, k)
		for _, c := range counts {
			require.InDelta(t, 1003/k, c, 1)
		}
		// Shuffled, not sorted by class.
		labels := ds.Labels.Int64s()
		runs := 0
		for i := 1; i < len(labels); i++ {
			if labels[i] != labels[i-1] {
				runs++
			}
		}
		require.Greater(t, runs, len(labels)/3)
	}
}

func TestShapesValues(t *testing.T) {
	for _, ch := range []int{1, 3} {
		ds, err := Shapes(ShapesOptions{N: 500, Channels: ch, Seed: 5})
		require.NoError(t, err)
		raw := ds.Raw().Float32s()
		lo, hi := float32(math.Inf(1)), float32(math.Inf(-1))
		for _, v := range raw {
			lo, hi = min(lo, v), max(hi, v)
		}
		require.GreaterOrEqual(t, lo, float32(-1e-5))
		require.LessOrEqual(t, hi, float32(1+1e-5))
		require.Greater(t, hi-lo, float32(0.8), "images should span most of [0, 1]")
		// Normalised: zero mean and unit std per channel.
		m := ds.Images.MeanDims([]int64{0, 2, 3}, false).Float64s()
		s := ds.Images.Transpose(0, 1).Reshape(int64(ch), -1).StdDims([]int64{1}, false, false).Float64s()
		for c := 0; c < ch; c++ {
			require.InDelta(t, 0, m[c], 1e-3)
			require.InDelta(t, 1, s[c], 1e-3)
		}
		require.False(t, ds.Images.IsNaN().Any().Item() != 0)
	}
}

func TestShapesNoiseAndNorm(t *testing.T) {
	clean, err := Shapes(ShapesOptions{N: 50, Noise: -1, Seed: 9})
	require.NoError(t, err)
	noisy, err := Shapes(ShapesOptions{N: 50, Noise: 0.2, Seed: 9, Norm: &clean.Norm})
	require.NoError(t, err)
	require.Equal(t, clean.Norm, noisy.Norm)
	require.Equal(t, clean.Labels.Int64s(), noisy.Labels.Int64s())
	// Same shapes, more noise: the difference is noise-sized.
	diff := noisy.Raw().Sub(clean.Raw()).Std(false).Item()
	require.InDelta(t, 0.2, diff, 0.05)
}

func TestShapesBadOptions(t *testing.T) {
	for _, o := range []ShapesOptions{
		{N: -1}, {Size: 4}, {Size: 1000}, {Channels: 2}, {Classes: 1}, {Classes: 9},
		{Noise: 2}, {Noise: math.NaN()}, {Channels: 3, Norm: &Norm{Mean: []float32{0}, Std: []float32{1}}},
		{Norm: &Norm{Mean: []float32{0}, Std: []float32{0}}},
	} {
		_, err := Shapes(o)
		require.Error(t, err, "%+v", o)
		require.Contains(t, err.Error(), "data: shapes:")
	}
}

func TestRenormalize(t *testing.T) {
	ds, err := Shapes(ShapesOptions{N: 40, Channels: 3, Seed: 2})
	require.NoError(t, err)
	id, err := ds.Renormalize(Identity(3))
	require.NoError(t, err)
	require.InDeltaSlice(t, ds.Raw().Float32s(), id.Images.Float32s(), 1e-5)
	back, err := id.Renormalize(ds.Norm)
	require.NoError(t, err)
	require.InDeltaSlice(t, ds.Images.Float32s(), back.Images.Float32s(), 1e-4)
	_, err = ds.Renormalize(Identity(1))
	require.Error(t, err)
}

func TestTensorDatasetViews(t *testing.T) {
	ds, err := Shapes(ShapesOptions{N: 30, Seed: 2})
	require.NoError(t, err)
	x, y := ds.Example(7)
	require.Equal(t, bridge.Shape{1, 28, 28}, x.Shape())
	require.Equal(t, ds.Labels.Int64s()[7], y.ItemInt())
	bx, by := ds.Batch([]int64{7, 3})
	require.Equal(t, x.Float32s(), bx.Narrow(0, 0, 1).Float32s())
	require.Equal(t, []int64{ds.Labels.Int64s()[7], ds.Labels.Int64s()[3]}, by.Int64s())
	sub := ds.Subset(10, 20)
	require.Equal(t, 10, sub.Len())
	require.Equal(t, ds.Labels.Int64s()[10:20], sub.Labels.Int64s())
	require.Same(t, ds, ds.To(bridge.CPU))

	_, err = NewTensorDataset(ds.Images, ds.Labels.Narrow(0, 0, 5), nil, ds.Norm)
	require.ErrorContains(t, err, "same N")
	_, err = NewTensorDataset(ds.Images, ds.Labels.To(bridge.Float32), nil, ds.Norm)
	require.ErrorContains(t, err, "int64")
	nd, err := NewTensorDataset(ds.Images, ds.Labels, ds.Classes, ds.Norm)
	require.NoError(t, err)
	require.Equal(t, 30, nd.Len())
}

func TestClassGridPNG(t *testing.T) {
	ds, err := Shapes(ShapesOptions{N: 200, Channels: 3, Size: 32, Classes: 8, Seed: 1})
	require.NoError(t, err)
	var buf bytes.Buffer
	require.NoError(t, ds.WriteClassGrid(&buf, 5, GridOptions{Scale: 2}))
	img, err := png.Decode(&buf)
	require.NoError(t, err)
	// 5 columns and 8 rows of 64-pixel images, 1-pixel gaps.
	require.Equal(t, 5*65+1, img.Bounds().Dx())
	require.Equal(t, 8*65+1, img.Bounds().Dy())

	path := t.TempDir() + "/grid.png"
	require.NoError(t, ds.SaveClassGrid(path, 4, GridOptions{}))
	require.Error(t, ds.SaveClassGrid(t.TempDir()+"/missing/grid.png", 4, GridOptions{}))

	// Without a normalisation the grid scales min..max; bad shapes are errors.
	buf.Reset()
	require.NoError(t, WriteGrid(&buf, ds.Images.Narrow(0, 0, 3), Norm{}, GridOptions{Cols: 2}))
	require.Error(t, WriteGrid(&buf, ds.Labels, Norm{}, GridOptions{}))
	require.Error(t, WriteGrid(&buf, ds.Images.Narrow(0, 0, 0), Norm{}, GridOptions{}))
}

func BenchmarkShapes10k(b *testing.B) {
	for b.Loop() {
		_, err := Shapes(ShapesOptions{N: 10000, Seed: 1})
		require.NoError(b, err)
	}
}
