package data

import (
	"context"
	"errors"
	"math/rand"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// leakOptions: the bridge's background runtime.GC (bridge.notePressure.func1), started when
// libtorch allocations pass a threshold, ends by itself; it is not the loader's.
var leakOptions = []goleak.Option{goleak.IgnoreCurrent(), goleak.IgnoreAnyFunction("github.com/hotcb/hotcb/bridge.notePressure.func1")}

// TestLoaderLeavesNoGoroutine: whatever way an epoch ends — complete, left early at every
// point, its context cancelled, its producer panicking, its iterator abandoned and the loader
// closed — no prefetching goroutine survives the loader's Close (checked by goleak, not by
// counting).
func TestLoaderLeavesNoGoroutine(t *testing.T) {
	defer goleak.VerifyNone(t, leakOptions...)
	for _, prefetch := range []int{1, 4, -1} {
		l, err := NewLoader(indexDataset(t, 200), LoaderOptions{BatchSize: 10, Prefetch: prefetch, Shuffle: true})
		require.NoError(t, err)
		bg := context.Background()
		n := 0
		for range l.Epoch(bg, 0) {
			n++
		}
		require.Equal(t, 20, n)
		for k := 0; k < 20; k++ { // leave at every point
			i := 0
			for range l.Epoch(bg, k) {
				if i++; i > k {
					break
				}
			}
		}
		ctx, cancel := context.WithCancel(bg)
		it := l.Iter(ctx, 1)
		_, ok := it.Next()
		require.True(t, ok)
		cancel()
		_, ok = it.Next()
		require.False(t, ok)
		abandoned := l.Iter(bg, 2) // never closed by its user
		_, ok = abandoned.Next()
		require.True(t, ok)
		require.NoError(t, l.Close())
	}
	f := &failing{TensorDataset: indexDataset(t, 100), at: 2, val: errors.New("boom")}
	l, err := NewLoader(f, LoaderOptions{BatchSize: 10, Prefetch: 3})
	require.NoError(t, err)
	require.Panics(t, func() {
		for range l.Epoch(context.Background(), 0) {
		}
	})
	require.NoError(t, l.Close())
}

// TestLoaderCloseFromAnotherGoroutine: Loader.Close "may be called from any" goroutine, here
// while the training goroutine is in the middle of an epoch, or starting the next one. The
// consumer sees its epoch end with ErrClosed, never hangs, and no goroutine is left.
func TestLoaderCloseFromAnotherGoroutine(t *testing.T) {
	defer goleak.VerifyNone(t, leakOptions...)
	ds := indexDataset(t, 200)
	rng := rand.New(rand.NewSource(1))
	for round := 0; round < 40; round++ {
		l, err := NewLoader(ds, LoaderOptions{BatchSize: 5, Prefetch: 1 + round%4})
		require.NoError(t, err)
		done := make(chan error, 1)
		go func() {
			for e := 0; ; e++ {
				it := l.Iter(context.Background(), e)
				for _, ok := it.Next(); ok; _, ok = it.Next() {
				}
				err := it.Err()
				it.Close()
				if err != nil {
					done <- err
					return
				}
			}
		}()
		time.Sleep(time.Duration(rng.Intn(2000)) * time.Microsecond)
		require.NoError(t, l.Close())
		select {
		case err := <-done:
			require.ErrorIs(t, err, ErrClosed)
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d: the consumer did not see the loader close", round)
		}
	}
}
