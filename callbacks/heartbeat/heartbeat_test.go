package heartbeat

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/callback"
	"github.com/hotcb/hotcb/torchenv"
)

func TestHeartbeatEveryNSteps(t *testing.T) {
	h, err := New("hb", map[string]any{"every": 3, "message": "alive"})
	require.NoError(t, err)
	var lines []string
	env := &torchenv.Env{Log: func(s string) { lines = append(lines, s) }}
	for step := int64(0); step < 7; step++ {
		env.Step = step
		require.NoError(t, h.Handle(torchenv.TrainStepEnd, env))
	}
	require.Equal(t, []string{
		"[hb] train_step_end step=0 alive",
		"[hb] train_step_end step=3 alive",
		"[hb] train_step_end step=6 alive",
	}, lines)

	lines = nil
	env.Step = 6
	require.NoError(t, h.Handle(torchenv.ForwardEnd, env))
	require.NoError(t, h.SetParams(map[string]any{"message": ""}))
	require.NoError(t, h.Handle(torchenv.EpochEnd, env))
	require.Equal(t, []string{"[hb] forward_end step=6 alive", "[hb] epoch_end step=6"}, lines)
}

func TestHeartbeatToStdoutWithoutLog(t *testing.T) {
	h, err := New("hb", nil)
	require.NoError(t, err)
	var buf bytes.Buffer
	h.out = &buf
	require.NoError(t, h.Handle(torchenv.TrainStepEnd, &torchenv.Env{Step: 100}))
	require.NoError(t, h.Handle(torchenv.TrainStepEnd, &torchenv.Env{Step: 101}))
	require.NoError(t, h.Handle(torchenv.FitStart, nil))
	require.Equal(t, "[hb] train_step_end step=100\n[hb] fit_start step=0\n", buf.String())
}

func TestHeartbeatParams(t *testing.T) {
	h, err := New("hb", map[string]any{"every": "10", "message": 42})
	require.NoError(t, err, "CLI text and a number as the message")
	require.Equal(t, Params{Every: 10, Message: "42"}, h.Params())
	for _, bad := range []map[string]any{{"every": 0}, {"every": -5}, {"every": 2.5}, {"every": 3, "mesage": "x"}} {
		err := h.SetParams(bad)
		require.Error(t, err, "%v", bad)
		require.Equal(t, Params{Every: 10, Message: "42"}, h.Params(), "%v changed the params", bad)
	}
	require.ErrorContains(t, h.SetParams(map[string]any{"every": 0}), `param "every"`)
	_, err = New("hb", map[string]any{"every": 0})
	require.Error(t, err)
}

func TestHeartbeatRegistered(t *testing.T) {
	names := callback.Default.Names()
	require.Contains(t, names, "hotcb.modules.cb.callbacks.heartbeat#HeartbeatCallback")
	require.Contains(t, names, "hotcb.modules.cb.callbacks#HeartbeatCallback")
	require.Contains(t, names, "github.com/hotcb/hotcb/callbacks/heartbeat#Heartbeat")
	f, err := callback.Default.Lookup("hotcb.modules.cb.callbacks.heartbeat", "HeartbeatCallback")
	require.NoError(t, err)
	cb, err := f("beat", map[string]any{"every": 5})
	require.NoError(t, err)
	require.Equal(t, "beat", cb.ID())
}
