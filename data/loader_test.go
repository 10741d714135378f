package data

import (
	"context"
	"errors"
	"runtime"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/bridge"
)

// indexDataset has n examples whose input row is [i, -i] and whose label is i.
func indexDataset(t testing.TB, n int) *TensorDataset {
	xs := make([]float32, 2*n)
	ys := make([]int64, n)
	for i := range ys {
		xs[2*i], xs[2*i+1], ys[i] = float32(i), float32(-i), int64(i)
	}
	ds, err := NewTensorDataset(bridge.FromSlice(xs, int64(n), 2), bridge.FromSlice(ys), nil, Norm{})
	require.NoError(t, err)
	return ds
}

// exampleOnly hides TensorDataset's Batch so that the loader stacks Examples.
type exampleOnly struct{ Dataset }

// counting counts the batches built.
type counting struct {
	*TensorDataset
	built atomic.Int64
}

func (c *counting) Batch(idx []int64) (x, y *bridge.Tensor) {
	c.built.Add(1)
	return c.TensorDataset.Batch(idx)
}

// failing panics like a failing tensor operation when it builds batch `at`.
type failing struct {
	*TensorDataset
	at, n int
	val   any
}

func (f *failing) Batch(idx []int64) (x, y *bridge.Tensor) {
	f.n++
	if f.n > f.at {
		panic(f.val)
	}
	return f.TensorDataset.Batch(idx)
}

// waitGoroutines waits until at most n goroutines run (others may be finishing).
func waitGoroutines(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > n {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines, want ≤ %d:\n%s", runtime.NumGoroutine(), n, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// collect runs one epoch and checks each batch's inputs against its labels.
func collect(t *testing.T, l *Loader, epoch int) (labels [][]int64) {
	for b := range l.Epoch(context.Background(), epoch) {
		y := b.Y.Int64s()
		require.Equal(t, b.Indices, y)
		require.Equal(t, len(labels), b.Index)
		require.Equal(t, epoch, b.Epoch)
		x := b.X.Float32s()
		require.Equal(t, bridge.Shape{int64(len(y)), 2}, b.X.Shape())
		for j, v := range y {
			require.Equal(t, []float32{float32(v), float32(-v)}, x[2*j:2*j+2])
		}
		labels = append(labels, y)
	}
	return labels
}

func TestLoaderCoversEveryIndexOnce(t *testing.T) {
	ds := indexDataset(t, 103)
	for _, tc := range []struct {
		name     string
		ds       Dataset
		prefetch int
	}{{"batcher", ds, 2}, {"examples", exampleOnly{ds}, 3}, {"synchronous", ds, -1}, {"synchronous examples", exampleOnly{ds}, -1}} {
		l, err := NewLoader(tc.ds, LoaderOptions{BatchSize: 10, Shuffle: true, Seed: 5, Prefetch: tc.prefetch})
		require.NoError(t, err)
		require.Equal(t, 11, l.Len())
		batches := collect(t, l, 0)
		require.Len(t, batches, 11, tc.name)
		require.Len(t, batches[10], 3, tc.name)
		all := slices.Concat(batches...)
		require.Equal(t, l.Order(0), all, tc.name)
		slices.Sort(all)
		for i, v := range all {
			require.Equal(t, int64(i), v, tc.name)
		}
		require.NoError(t, l.Close())
	}
}

func TestLoaderDropLast(t *testing.T) {
	ds := indexDataset(t, 103)
	for _, tc := range []struct {
		n, batch  int
		drop      bool
		len, last int
	}{{103, 10, true, 10, 10}, {103, 10, false, 11, 3}, {100, 10, true, 10, 10}, {100, 10, false, 10, 10}, {103, 200, true, 0, 0}, {103, 200, false, 1, 103}} {
		l, err := NewLoader(ds.Subset(0, tc.n), LoaderOptions{BatchSize: tc.batch, DropLast: tc.drop, Shuffle: true})
		require.NoError(t, err)
		require.Equal(t, tc.len, l.Len(), "%+v", tc)
		batches := collect(t, l, 1)
		require.Len(t, batches, tc.len, "%+v", tc)
		if tc.len > 0 {
			require.Len(t, batches[len(batches)-1], tc.last, "%+v", tc)
		}
		seen := map[int64]bool{}
		for _, v := range slices.Concat(batches...) {
			require.False(t, seen[v], "index %d twice", v)
			seen[v] = true
		}
		require.NoError(t, l.Close())
	}
}

func TestLoaderOrders(t *testing.T) {
	ds := indexDataset(t, 50)
	l, err := NewLoader(ds, LoaderOptions{BatchSize: 8, Shuffle: true, Seed: 11})
	require.NoError(t, err)
	defer l.Close()
	l2, err := NewLoader(ds, LoaderOptions{BatchSize: 8, Shuffle: true, Seed: 11})
	require.NoError(t, err)
	defer l2.Close()
	e0, e1 := slices.Concat(collect(t, l, 0)...), slices.Concat(collect(t, l, 1)...)
	require.NotEqual(t, e0, e1, "epochs should be shuffled differently")
	require.Equal(t, e0, slices.Concat(collect(t, l2, 0)...), "same seed, same order")
	require.Equal(t, e1, slices.Concat(collect(t, l2, 1)...))
	// Epoch e uses Seed+e.
	l3, err := NewLoader(ds, LoaderOptions{BatchSize: 8, Shuffle: true, Seed: 12})
	require.NoError(t, err)
	defer l3.Close()
	require.Equal(t, l.Order(1), l3.Order(0))
	require.NotEqual(t, l.Order(0), l3.Order(0))

	plain, err := NewLoader(ds, LoaderOptions{BatchSize: 8})
	require.NoError(t, err)
	defer plain.Close()
	order := slices.Concat(collect(t, plain, 3)...)
	for i, v := range order {
		require.Equal(t, int64(i), v)
	}
}

func TestLoaderBreakStopsGoroutine(t *testing.T) {
	ds := indexDataset(t, 1000)
	base := runtime.NumGoroutine()
	l, err := NewLoader(ds, LoaderOptions{BatchSize: 10, Prefetch: 4})
	require.NoError(t, err)
	for range 3 {
		n := 0
		for range l.Epoch(context.Background(), 0) {
			if n++; n == 5 {
				break
			}
		}
		waitGoroutines(t, base)
	}
	// An iterator dropped mid-epoch without Close is stopped by the loader's Close.
	it := l.Iter(context.Background(), 0)
	_, ok := it.Next()
	require.True(t, ok)
	it2 := l.Iter(context.Background(), 1)
	require.Greater(t, runtime.NumGoroutine(), base)
	require.NoError(t, l.Close())
	waitGoroutines(t, base)
	_, ok = it.Next()
	require.False(t, ok)
	require.ErrorIs(t, it.Err(), ErrClosed)
	_, ok = it2.Next()
	require.False(t, ok)
	require.ErrorIs(t, it2.Err(), ErrClosed)

	// After Close, new iterations yield nothing and start no goroutine.
	it3 := l.Iter(context.Background(), 2)
	_, ok = it3.Next()
	require.False(t, ok)
	require.ErrorIs(t, it3.Err(), ErrClosed)
	waitGoroutines(t, base)
}

func TestLoaderContext(t *testing.T) {
	ds := indexDataset(t, 1000)
	base := runtime.NumGoroutine()
	l, err := NewLoader(ds, LoaderOptions{BatchSize: 10})
	require.NoError(t, err)
	defer l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	it := l.Iter(ctx, 0)
	_, ok := it.Next()
	require.True(t, ok)
	cancel()
	_, ok = it.Next()
	require.False(t, ok)
	require.ErrorIs(t, it.Err(), context.Canceled)
	waitGoroutines(t, base)

	ctx, cancel = context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	n := 0
	for range l.Epoch(ctx, 0) {
		n++
		time.Sleep(2 * time.Millisecond)
	}
	require.Less(t, n, 100)
	require.ErrorIs(t, ctx.Err(), context.DeadlineExceeded)
	waitGoroutines(t, base)

	// A complete epoch has no error; Next after the end stays false.
	it = l.Iter(context.Background(), 0)
	for _, ok := it.Next(); ok; _, ok = it.Next() {
	}
	require.NoError(t, it.Err())
	_, ok = it.Next()
	require.False(t, ok)
	it.Close()
}

func TestLoaderPrefetchIsBounded(t *testing.T) {
	for _, depth := range []int{1, 3} {
		ds := &counting{TensorDataset: indexDataset(t, 1000)}
		l, err := NewLoader(ds, LoaderOptions{BatchSize: 10, Prefetch: depth})
		require.NoError(t, err)
		it := l.Iter(context.Background(), 0)
		// The queue fills with `depth` batches plus the one the goroutine blocks on.
		require.Eventually(t, func() bool { return ds.built.Load() == int64(depth+1) }, 5*time.Second, time.Millisecond)
		time.Sleep(20 * time.Millisecond)
		require.Equal(t, int64(depth+1), ds.built.Load())
		_, ok := it.Next()
		require.True(t, ok)
		require.Eventually(t, func() bool { return ds.built.Load() == int64(depth+2) }, 5*time.Second, time.Millisecond)
		it.Close()
		require.NoError(t, l.Close())
	}
	// Synchronous mode builds only what is asked for.
	ds := &counting{TensorDataset: indexDataset(t, 1000)}
	l, err := NewLoader(ds, LoaderOptions{BatchSize: 10, Prefetch: -1})
	require.NoError(t, err)
	it := l.Iter(context.Background(), 0)
	time.Sleep(10 * time.Millisecond)
	require.Zero(t, ds.built.Load())
	it.Next()
	require.Equal(t, int64(1), ds.built.Load())
	it.Close()
}

// BenchmarkLoaderPrefetchOverlap: a slow dataset (2 ms a batch) and a slow consumer (2 ms a
// batch); with prefetching the epoch takes about half as long as building and consuming one
// after the other. A benchmark, not a test: wall-clock ratios are noise on a shared machine
// (TestLoaderPrefetch checks structurally that batches are built ahead).
func BenchmarkLoaderPrefetchOverlap(b *testing.B) {
	ds := &slow{TensorDataset: indexDataset(b, 400), d: 2 * time.Millisecond}
	run := func(prefetch int) time.Duration {
		l, err := NewLoader(ds, LoaderOptions{BatchSize: 10, Prefetch: prefetch})
		if err != nil {
			b.Fatal(err)
		}
		defer l.Close()
		t0 := time.Now()
		for range l.Epoch(context.Background(), 0) {
			time.Sleep(2 * time.Millisecond)
		}
		return time.Since(t0)
	}
	var seq, pre time.Duration
	for b.Loop() {
		seq += run(-1)
		pre += run(2)
	}
	b.ReportMetric(float64(seq.Milliseconds())/float64(b.N), "ms-in-loop")
	b.ReportMetric(float64(pre.Milliseconds())/float64(b.N), "ms-prefetched")
}

type slow struct {
	*TensorDataset
	d time.Duration
}

func (s *slow) Batch(idx []int64) (x, y *bridge.Tensor) {
	time.Sleep(s.d)
	return s.TensorDataset.Batch(idx)
}

func TestLoaderPanicReachesConsumer(t *testing.T) {
	base := runtime.NumGoroutine()
	torchErr := &bridge.Error{Op: "index_select", Msg: "out of memory"}
	for _, prefetch := range []int{2, -1} {
		ds := &failing{TensorDataset: indexDataset(t, 100), at: 3, val: torchErr}
		l, err := NewLoader(ds, LoaderOptions{BatchSize: 10, Prefetch: prefetch})
		require.NoError(t, err)
		n := 0
		err = bridge.Try(func() {
			for range l.Epoch(context.Background(), 0) {
				n++
			}
		})
		require.Same(t, torchErr, err)
		require.Equal(t, 3, n)
		require.NoError(t, l.Close())
		waitGoroutines(t, base)
	}
	// Other panics arrive as a message with the producer's stack.
	ds := &failing{TensorDataset: indexDataset(t, 100), at: 0, val: errors.New("boom")}
	l, err := NewLoader(ds, LoaderOptions{BatchSize: 10})
	require.NoError(t, err)
	defer l.Close()
	it := l.Iter(context.Background(), 4)
	func() {
		defer func() {
			r := recover()
			require.Contains(t, r, "data: building batch 0 of epoch 4: boom")
			require.Contains(t, r, "goroutine")
		}()
		it.Next()
	}()
	_, ok := it.Next()
	require.False(t, ok)
}

func TestLoaderDeviceAndOptions(t *testing.T) {
	ds := indexDataset(t, 20)
	cpu := bridge.CPU
	l, err := NewLoader(ds, LoaderOptions{BatchSize: 7, Device: &cpu})
	require.NoError(t, err)
	defer l.Close()
	for b := range l.Epoch(context.Background(), 0) {
		require.Equal(t, bridge.CPU, b.X.Device())
		b.Free()
		require.True(t, b.X.IsFreed())
	}
	_, err = NewLoader(ds, LoaderOptions{BatchSize: -1})
	require.Error(t, err)
	_, err = NewLoader(nil, LoaderOptions{})
	require.Error(t, err)
	d, err := NewLoader(ds, LoaderOptions{})
	require.NoError(t, err)
	require.Equal(t, 1, d.Len()) // default batch 64
}

// TestBatchBuildTime reports what gathering a batch of 128 32×32 RGB images costs.
func TestBatchBuildTime(t *testing.T) {
	ds, err := Shapes(ShapesOptions{N: 10000, Size: 32, Channels: 3, Seed: 1})
	require.NoError(t, err)
	l, err := NewLoader(ds, LoaderOptions{BatchSize: 128, Shuffle: true, Prefetch: -1})
	require.NoError(t, err)
	defer l.Close()
	it := l.Iter(context.Background(), 0)
	defer it.Close()
	it.Next() // warm up
	const k = 50
	t0 := time.Now()
	for range k {
		b, ok := it.Next()
		require.True(t, ok)
		b.Free()
	}
	per := time.Since(t0) / k
	t.Logf("batch of 128×3×32×32 float32 (%.1f MB) built in %v", float64(128*3*32*32*4)/1e6, per)
	if !raceEnabled {
		require.Less(t, per, 10*time.Millisecond)
	}
}

func BenchmarkBatch128x3x32x32(b *testing.B) {
	ds, err := Shapes(ShapesOptions{N: 10000, Size: 32, Channels: 3, Seed: 1})
	require.NoError(b, err)
	l, err := NewLoader(ds, LoaderOptions{BatchSize: 128, Shuffle: true, Prefetch: -1})
	require.NoError(b, err)
	defer l.Close()
	order := l.Order(0)
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		k := i % (len(order) / 128)
		x, y := ds.Batch(order[k*128 : (k+1)*128])
		x.Free()
		y.Free()
	}
}
