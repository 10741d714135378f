package bridge

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// When every slot is taken, Scope still runs its function; tensors are garbage collected.
func TestScopeWithoutFreeSlotFallsBack(t *testing.T) {
	scopeMu.Lock()
	savedFree, savedNext := scopeFree, scopeNext
	scopeFree, scopeNext = nil, maxScopes
	scopeMu.Unlock()
	defer func() {
		scopeMu.Lock()
		scopeFree, scopeNext = savedFree, savedNext
		scopeMu.Unlock()
	}()
	var y *Tensor
	ran := false
	Scope(func() {
		ran = true
		y = Ones(Shape{2}).AddScalar(1)
	})
	require.True(t, ran)
	require.False(t, y.IsFreed())
	require.False(t, InScope(y))
	require.Equal(t, []float32{2, 2}, y.Float32s())
}
