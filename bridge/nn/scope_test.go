package nn_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/bridge/nn"
)

// A forward hook runs outside the Scope of the step that ran the forward: what it keeps survives
// the step, while the step's own activations are freed.
func TestForwardHookInsideScopeKeepsWhatItMakes(t *testing.T) {
	seq := nn.NewSequential(nn.NewLinear(3, 4), nn.NewReLU(), nn.NewLinear(4, 2))
	var kept, out *bridge.Tensor
	_, err := nn.RegisterForwardHook(seq, "1", func(name string, m nn.Module, in, o *bridge.Tensor) {
		kept = o.Detach().Clone()
	})
	require.NoError(t, err)
	bridge.Scope(func() {
		out = seq.Forward(bridge.Ones(bridge.Shape{5, 3}))
		out.Sum().Backward()
	})
	require.True(t, out.IsFreed(), "the step's output was freed with its scope")
	require.NotNil(t, kept)
	require.False(t, kept.IsFreed(), "the hook's copy outlives the step")
	require.Equal(t, bridge.Shape{5, 4}, kept.Shape())
	for _, p := range nn.Parameters(seq) {
		require.False(t, p.IsFreed())
		require.NotNil(t, p.Grad())
	}
}
