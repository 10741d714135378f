package torchenv_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/bridge/nn"
	"github.com/hotcb/hotcb/torchenv"
)

func TestLookup(t *testing.T) {
	model := nn.NewSequential(nn.NewLinear(3, 2), nn.NewBatchNorm2d(2))
	loss := bridge.Scalar(0.5)
	env := &torchenv.Env{Step: 7, Epoch: 1.5, Phase: "train", Model: model, Loss: loss,
		Extra: map[string]any{
			"metrics": map[string]float64{"val_acc": 0.9},
			"nested":  map[string]any{"t": map[string]*bridge.Tensor{"x": loss}},
		}}
	for _, c := range []struct {
		path string
		want any
	}{
		{"step", int64(7)}, {"epoch", 1.5}, {"phase", "train"}, {"loss", loss},
		{"extra.metrics.val_acc", 0.9}, {"extra.nested.t.x", loss},
	} {
		v, err := env.Lookup(c.path)
		require.NoError(t, err, c.path)
		require.Equal(t, c.want, v, c.path)
	}
	v, err := env.Lookup("model.0")
	require.NoError(t, err)
	require.Equal(t, "Linear", nn.Kind(v.(nn.Module)))
	w, err := env.LookupTensor("model.0.weight")
	require.NoError(t, err)
	require.Equal(t, bridge.Shape{2, 3}, w.Shape())
	rv, err := env.LookupTensor("model.1.running_var")
	require.NoError(t, err, "buffers are found too")
	require.Equal(t, bridge.Shape{2}, rv.Shape())

	_, err = env.LookupTensor("model.0.weight.grad")
	require.ErrorContains(t, err, "has no gradient yet")
	nn.Parameters(model)[0].Square().Sum().Backward()
	g, err := env.LookupTensor("model.0.weight.grad")
	require.NoError(t, err)
	require.Equal(t, bridge.Shape{2, 3}, g.Shape())

	for _, c := range []struct{ path, want string }{
		{"outputs", `env path "outputs": not set at this safe point`},
		{"lossy", `unknown root "lossy"`},
		{"step.x", `"step" has no fields`},
		{"extra.metrics.nope", `no key "nope"`},
		{"extra.metrics.val_acc.more", "cannot look up \"more\" in a float64"},
		{"model.9", `the model has no module, parameter or buffer "9"`},
		{"epoch", ""},
	} {
		_, err := env.Lookup(c.path)
		if c.want == "" {
			require.NoError(t, err)
			continue
		}
		require.ErrorContains(t, err, c.want, c.path)
	}
	_, err = env.LookupTensor("phase")
	require.ErrorContains(t, err, "is a string, not a tensor")
	_, err = (&torchenv.Env{}).Lookup("model.x")
	require.ErrorContains(t, err, "no model in the env")
}

func TestStopRequestAndLog(t *testing.T) {
	env := &torchenv.Env{}
	stop, _ := env.StopRequested()
	require.False(t, stop)
	env.RequestStop("loss is NaN")
	env.RequestStop("second reason")
	stop, why := env.StopRequested()
	require.True(t, stop)
	require.Equal(t, "loss is NaN", why, "the first reason is kept")
	var got []string
	env.Log = func(s string) { got = append(got, s) }
	env.Logf("step %d", 3)
	require.Equal(t, []string{"step 3"}, got)
	var nilEnv *torchenv.Env
	nilEnv.Logf("no panic")
	require.Len(t, torchenv.Events, 10)
}
