package models_test

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/bridge/nn"
	"github.com/hotcb/hotcb/internal/torchpy"
	"github.com/hotcb/hotcb/models"
)

const cnnPy = `
import sys, torch, torch.nn as nn
class SmallCNN(nn.Module):
    def __init__(self, c, classes):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(c, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1))
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(64, classes))
    def forward(self, x):
        return self.classifier(self.features(x))
d = torch.load(sys.argv[1])
x = d.pop("input")
m = SmallCNN(3, 6)
m.load_state_dict(d)
m.eval()
torch.save(m(x).detach(), sys.argv[2])
`

func TestSmallCNNMatchesPyTorch(t *testing.T) {
	torchpy.Interpreter(t)
	dir := t.TempDir()
	bridge.ManualSeed(5)
	m := models.NewSmallCNN(3, 6)
	x := bridge.Randn(bridge.Shape{2, 3, 32, 32})
	in := filepath.Join(dir, "in.pt")
	require.NoError(t, bridge.SaveNamed(in, append(nn.StateDict(m), bridge.Named{Name: "input", Tensor: x})))
	torchpy.Run(t, cnnPy, in, filepath.Join(dir, "out.pt"))
	ref, err := bridge.Load(filepath.Join(dir, "out.pt"))
	require.NoError(t, err)
	nn.Eval(m)
	got := m.Forward(x)
	require.Equal(t, bridge.Shape{2, 6}, got.Shape())
	require.InDeltaSlice(t, ref.Float64s(), got.Float64s(), 1e-5)
	require.Len(t, nn.Parameters(models.MLP(784, 256, 10)), 4)
}
