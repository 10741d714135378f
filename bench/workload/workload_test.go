package workload

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestMLPStepLearnsTheSameWithAndWithoutFree(t *testing.T) {
	plain, freed := NewMLP(MLPTiny), NewMLP(MLPTiny)
	freed.Free = true
	start := plain.Loss().Item()
	require.Equal(t, start, freed.Loss().Item(), "same seed, same weights")
	for range 30 {
		plain.Step()
		freed.Step()
	}
	end := plain.Loss().Item()
	require.Less(t, end, start, "SGD on a fixed batch lowers the loss")
	require.Equal(t, end, freed.Loss().Item(), "Free must not change what the step computes")
	require.Equal(t, start, plain.Check(), "Check is the loss of a fresh model")
}

func TestNewKnowsEveryName(t *testing.T) {
	for _, name := range Names {
		w, err := New(name, Options{LockOSThread: true, Free: true})
		require.NoError(t, err, name)
		w.Run(2)
	}
	_, err := New("conv", Options{})
	require.Error(t, err)
}
