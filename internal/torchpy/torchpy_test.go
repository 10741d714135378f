package torchpy_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/internal/torchpy"
)

func TestRun(t *testing.T) {
	out := torchpy.Run(t, "import sys, torch; print(sys.argv[1:], torch.tensor([1, 2]).sum().item())", "a", "b c")
	require.Equal(t, "['a', 'b c'] 3\n", out)
}

func TestRunJSON(t *testing.T) {
	var got struct {
		Sum float64 `json:"sum"`
	}
	torchpy.RunJSON(t, `
import json, sys, torch
d = json.load(sys.stdin)
print(json.dumps({"sum": torch.tensor(d["x"]).sum().item()}))`, map[string]any{"x": []float64{1, 2, 3.5}}, &got)
	require.Equal(t, 6.5, got.Sum)
}
