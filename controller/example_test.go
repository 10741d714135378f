package controller_test

import (
	"fmt"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/bridge/nn"
	"github.com/hotcb/hotcb/controller"
	"github.com/hotcb/hotcb/ops"
	"github.com/hotcb/hotcb/torchenv"
)

func repoFile(t *testing.T, rel string) string {
	_, here, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(here), "..", rel)
}

// TestExampleGradNormCallback loads examples/callbacks/grad_norm.go as a go_file and checks the
// norm it logs against the gradient computed here.
func TestExampleGradNormCallback(t *testing.T) {
	var lines []string
	c, err := controller.New(controller.Options{PollEveryStep: true, AllowAnyOwner: true})
	require.NoError(t, err)
	defer c.Close()
	model := nn.NewSequential(nn.NewLinear(4, 3), nn.NewReLU(), nn.NewLinear(3, 2))
	env := &torchenv.Env{Model: model, Log: func(s string) { lines = append(lines, s) }}
	require.NoError(t, c.Submit(ops.Op{Op: "load", ID: "gradnorm", Init: map[string]any{"every": 1},
		Target: &ops.CallbackTarget{Kind: "go_file", Path: repoFile(t, "examples/callbacks/grad_norm.go"), Symbol: "GradNorm"}}))
	x, y := bridge.Randn(bridge.Shape{5, 4}), bridge.RandInt(0, 2, bridge.Shape{5})
	bridge.CrossEntropy(model.Forward(x), y).Backward()
	c.Apply(env, torchenv.BackwardEnd)
	require.Equal(t, controller.Applied, c.LastResults()[0].Decision, "%v", c.LastResults()[0].Err)
	want := nn.Parameters(model)[0].Grad().Norm(2).Item()
	require.Len(t, lines, 2, strings.Join(lines, "\n"))
	require.Contains(t, lines[1], "|grad 0.weight|_2 = ")
	var got float64
	_, err = fmt.Sscanf(lines[1][strings.Index(lines[1], "= ")+2:], "%g", &got)
	require.NoError(t, err)
	require.InDelta(t, want, got, 1e-5)
}
