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

// BatchNorm2d counts training forwards in num_batches_tracked (in the shim's batch-norm call),
// not evaluation ones, with autograd off — also inside a Scope, where the counter must survive.
func TestBatchNormCountsTrainingForwards(t *testing.T) {
	bn := nn.NewBatchNorm2d(3)
	x := bridge.Randn(bridge.Shape{4, 3, 5, 5})
	for range 3 {
		bridge.Scope(func() { bn.Forward(x).Sum().Backward() })
	}
	require.False(t, bn.NumBatchesTracked.IsFreed())
	require.Equal(t, int64(3), bn.NumBatchesTracked.ItemInt())
	require.False(t, bn.NumBatchesTracked.RequiresGrad())
	nn.Eval(bn)
	bn.Forward(x)
	require.Equal(t, int64(3), bn.NumBatchesTracked.ItemInt(), "evaluation does not count")
	nn.Train(bn, true)
	bn.Forward(x)
	require.Equal(t, int64(4), bn.NumBatchesTracked.ItemInt())
	// Without a counter, BatchNormTracked is BatchNorm.
	a := bridge.BatchNormTracked(x, bn.Weight, bn.Bias, nil, nil, nil, true, 0.1, 1e-5)
	b := bridge.BatchNorm(x, bn.Weight, bn.Bias, nil, nil, true, 0.1, 1e-5)
	require.Equal(t, b.Float32s(), a.Float32s())
}
