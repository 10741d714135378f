package nn_test

import (
	"testing"

	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/bridge/nn"
)

type benchBlock struct {
	nn.Node
	Ln1, Ln2        *nn.LayerNorm
	Q, K, V, O, Fc1 *nn.Linear
	Fc2             *nn.Linear
	drop            float64
}

func newBenchBlock() *benchBlock {
	return &benchBlock{Ln1: nn.NewLayerNorm(bridge.Shape{8}), Ln2: nn.NewLayerNorm(bridge.Shape{8}),
		Q: nn.NewLinear(8, 8), K: nn.NewLinear(8, 8), V: nn.NewLinear(8, 8), O: nn.NewLinear(8, 8),
		Fc1: nn.NewLinear(8, 8), Fc2: nn.NewLinear(8, 8)}
}

type benchModel struct {
	nn.Node
	Tok    *nn.Embedding
	Blocks []*benchBlock
	Head   *nn.Linear
}

// BenchmarkNamedParameters walks a 12-block transformer-shaped model (110 modules, 198
// parameters), as a per-step callback reading gradients does; the walk reads every module's fields.
func BenchmarkNamedParameters(b *testing.B) {
	m := &benchModel{Tok: nn.NewEmbedding(16, 8), Head: nn.NewLinear(8, 16)}
	for range 12 {
		m.Blocks = append(m.Blocks, newBenchBlock())
	}
	b.Logf("%d modules, %d parameters", len(nn.NamedModules(m)), len(nn.Parameters(m)))
	b.ResetTimer()
	for range b.N {
		nn.NamedParameters(m)
	}
}
