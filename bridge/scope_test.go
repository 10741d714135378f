package bridge_test

import (
	"errors"
	"runtime"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	. "github.com/hotcb/hotcb/bridge"
)

func TestScopeFreesWhatItCreatedAndKeepsTheRest(t *testing.T) {
	w := Randn(Shape{4, 3}).SetRequiresGrad(true)
	x := Randn(Shape{2, 3})
	before := ReadMemoryStats().PressureBytes
	var y, z, kept *Tensor
	Scope(func() {
		y = x.MatMul(w.Transpose(0, 1))
		z = y.Relu()
		kept = Keep(z.Sum())
		require.True(t, InScope(y))
		require.False(t, InScope(kept))
		require.False(t, InScope(w), "tensors made before the scope are not owned")
		z.Sum().Backward()
	})
	require.True(t, y.IsFreed())
	require.True(t, z.IsFreed())
	require.False(t, kept.IsFreed())
	require.False(t, w.IsFreed())
	require.False(t, x.IsFreed())
	require.NotNil(t, w.Grad(), "backward inside the scope leaves the parameter's gradient")
	require.InDelta(t, kept.Item(), x.MatMul(w.Transpose(0, 1)).Relu().Sum().Item(), 1e-6)
	// Everything but the kept tensor was returned to the pressure count at once.
	after := ReadMemoryStats().PressureBytes
	require.Less(t, after-before, int64(4096), "scope left %d bytes counted", after-before)

	err := Try(func() { y.Relu() })
	require.True(t, errors.Is(err, ErrFreed), "use after the scope: %v", err)
	require.Error(t, y.Free(), "a second free reports ErrFreed")
}

func TestScopeFreeInsideAndNested(t *testing.T) {
	x := Ones(Shape{3})
	var a, b, inner *Tensor
	Scope(func() {
		a = x.MulScalar(2)
		require.NoError(t, a.Free(), "Free inside a scope frees now")
		b = x.MulScalar(3)
		Scope(func() {
			inner = b.Add(x)
			require.True(t, InScope(inner))
		})
		require.True(t, inner.IsFreed(), "the inner scope freed its tensor")
		require.False(t, b.IsFreed(), "the outer scope's tensor is alive inside it")
		require.Equal(t, []float32{3, 3, 3}, b.Float32s())
	})
	require.True(t, a.IsFreed())
	require.True(t, b.IsFreed())
}

func TestScopePanicFreesAndPropagates(t *testing.T) {
	var y *Tensor
	err := Try(func() {
		Scope(func() {
			y = Ones(Shape{2}).AddScalar(1)
			Randn(Shape{2, 3}).MatMul(Randn(Shape{4, 5})) // panics with *Error
		})
	})
	var be *Error
	require.True(t, errors.As(err, &be), "got %v", err)
	require.Contains(t, be.Msg, "shapes cannot be multiplied")
	require.True(t, y.IsFreed())
	// The thread's scope slot was reset: a tensor made now is garbage collected as usual.
	z := Ones(Shape{1})
	require.False(t, InScope(z))
}

func TestScopeDoesNotOwnOtherGoroutinesTensors(t *testing.T) {
	var mine, theirs *Tensor
	Scope(func() {
		mine = Ones(Shape{2})
		done := make(chan struct{})
		go func() {
			defer close(done)
			theirs = Ones(Shape{2})
		}()
		<-done
	})
	require.True(t, mine.IsFreed())
	require.False(t, theirs.IsFreed(), "a goroutine started in the scope runs on another thread")
	require.False(t, InScope(theirs))
}

// Many goroutines open scopes at once while others allocate outside any scope: each scope frees
// exactly its own tensors.
func TestScopeConcurrent(t *testing.T) {
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				if g%2 == 1 {
					outside := Ones(Shape{4}).MulScalar(float64(i))
					if InScope(outside) || outside.IsFreed() {
						errs <- errors.New("a tensor made outside any scope was adopted")
						return
					}
					continue
				}
				var made []*Tensor
				Scope(func() {
					for k := range 5 {
						made = append(made, Ones(Shape{8}).MulScalar(float64(k)))
					}
				})
				for _, m := range made {
					if !m.IsFreed() {
						errs <- errors.New("a scoped tensor survived its scope")
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func TestScopeKeepsPressureFlatOverManySteps(t *testing.T) {
	x, y := Randn(Shape{16, 32}), RandInt(0, 10, Shape{16})
	w1, b1 := Randn(Shape{64, 32}).MulScalar(0.05).SetRequiresGrad(true), Zeros(Shape{64}).SetRequiresGrad(true)
	w2, b2 := Randn(Shape{10, 64}).MulScalar(0.05).SetRequiresGrad(true), Zeros(Shape{10}).SetRequiresGrad(true)
	params := []*Tensor{w1, b1, w2, b2}
	step := func() (loss float64) {
		Scope(func() {
			l := CrossEntropy(Linear(Linear(x, w1, b1).Relu(), w2, b2), y)
			l.Backward()
			AddGradsInPlace(params, -0.1)
			loss = l.Item()
		})
		return loss
	}
	first := step()
	start := ReadMemoryStats()
	var last float64
	for range 2000 {
		last = step()
	}
	end := ReadMemoryStats()
	require.Less(t, last, first, "the loss goes down")
	require.Equal(t, start.PressureBytes, end.PressureBytes, "every step's tensors were freed by the scope")
	require.Equal(t, start.Collections, end.Collections, "no garbage collection was needed")
	for _, p := range params {
		require.Nil(t, p.Grad(), "AddGradsInPlace dropped the gradient")
	}
	runtime.KeepAlive(params)
}

func TestAddGradsInPlaceMatchesOneByOneAndSkipsMissingGrads(t *testing.T) {
	build := func() []*Tensor {
		ManualSeed(7)
		return []*Tensor{Randn(Shape{3, 2}).SetRequiresGrad(true), Randn(Shape{2}).SetRequiresGrad(true),
			Randn(Shape{2}).SetRequiresGrad(true)}
	}
	a, b := build(), build()
	lossOf := func(p []*Tensor) *Tensor { return p[0].Sum().Add(p[1].Mul(p[1]).Sum()) } // p[2] unused
	lossOf(a).Backward()
	lossOf(b).Backward()
	require.Nil(t, a[2].Grad())
	AddGradsInPlace(a, -0.5)
	NoGrad(func() {
		b[0].AddGradInPlace(-0.5)
		b[1].AddGradInPlace(-0.5)
	})
	for k := range a {
		require.Equal(t, b[k].Float32s(), a[k].Float32s(), "param %d", k)
		require.Nil(t, a[k].Grad())
	}
	require.False(t, a[0].Grad() != nil)
	AddGradsInPlace(nil, 1) // nothing to do
	err := Try(func() { AddGradsInPlace([]*Tensor{a[0], nil}, 1) })
	require.Error(t, err, "a nil tensor is refused")
	freed := Ones(Shape{1})
	freed.Free()
	require.True(t, errors.Is(Try(func() { AddGradsInPlace([]*Tensor{freed}, 1) }), ErrFreed))
}

func TestUnscopedInsideScope(t *testing.T) {
	var scoped, free, after *Tensor
	Scope(func() {
		Unscoped(func() { free = Ones(Shape{2}) })
		after = Ones(Shape{2})
		scoped = free.Add(after)
	})
	require.False(t, free.IsFreed(), "made while the scope was suspended")
	require.False(t, InScope(free))
	require.True(t, after.IsFreed(), "the scope resumes after Unscoped")
	require.True(t, scoped.IsFreed())
	Unscoped(func() { free = Ones(Shape{1}) }) // no scope at all: runs f
	require.False(t, free.IsFreed())
}
