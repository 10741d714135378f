package featviz

import (
	"image"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/aten"
	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/bridge/nn"
	"github.com/hotcb/hotcb/torchenv"
)

// wantSeqSize is the size of n token × channel maps of rows × cols cells of cw × ch pixels,
// from the layout rules: a gutter of row numbers, a band of column numbers above each map, a
// sample band when there are several, the colour bar under the two-line header, margins.
func wantSeqSize(n, rows, cols, cw, ch int) (int, int) {
	gut := textWidth(strconv.Itoa(rows-1)) + 2
	block := bandH + rows*ch
	if n > 1 {
		block += bandH
	}
	return max(minWidth, 2*margin+gut+cols*cw, 2*margin+legendW), 2*margin + headerH + bandH + n*block + (n-1)*sampleGap
}

// wantAttnSize is the size of n samples × h heads of t × t attention maps of cell pixels: ⌈√h⌉
// columns of tiles, each a gutter of query numbers and a band with the head's label above.
func wantAttnSize(n, h, t, cell int) (int, int) {
	cols := int(math.Ceil(math.Sqrt(float64(h))))
	rows := (h + cols - 1) / cols
	tileW, tileH := textWidth(strconv.Itoa(t-1))+2+t*cell, bandH+t*cell
	block := rows*tileH + (rows-1)*gap
	if n > 1 {
		block += bandH
	}
	return max(minWidth, 2*margin+cols*tileW+(cols-1)*2*gap, 2*margin+legendW), 2*margin + headerH + bandH + n*block + (n-1)*sampleGap
}

func TestSequenceLayoutArithmetic(t *testing.T) {
	// Pinned by hand once: [1, 48, 64] (the GPT example's block output) gets cells of 6 × 4
	// pixels, a 384 × 192 map, not a 64 × 48 thumbnail or a strip.
	l := layoutSeq(1, 48, 64, 0)
	require.Equal(t, [2]int{6, 4}, [2]int{l.cellW, l.cellH})
	require.Equal(t, [2]int{4 + (7 + 2) + 64*6 + 4, 4 + 16 + 7 + 7 + 48*4 + 4}, [2]int{l.width, l.height})
	w, h := wantSeqSize(1, 48, 64, 6, 4)
	require.Equal(t, [2]int{w, h}, [2]int{l.width, l.height})
	// a short, wide sequence and a long, narrow one both stay readable
	require.Equal(t, [2]int{1, 16}, [2]int{layoutSeq(1, 8, 512, 0).cellW, layoutSeq(1, 8, 512, 0).cellH})
	require.Equal(t, [2]int{12, 2}, [2]int{layoutSeq(1, 100, 32, 0).cellW, layoutSeq(1, 100, 32, 0).cellH})
	// an explicit scale makes square cells
	require.Equal(t, [2]int{3, 3}, [2]int{layoutSeq(1, 8, 8, 3).cellW, layoutSeq(1, 8, 8, 3).cellH})

	a := layoutAttn(1, 4, 48, 0)
	require.Equal(t, 3, a.cell, "48 keys of 3 pixels: about attnTarget")
	require.Equal(t, [2]int{4 + 2*(9+144) + 4 + 4, 4 + 16 + 7 + 2*(7+144) + 2 + 4}, [2]int{a.width, a.height})
	w, h = wantAttnSize(1, 4, 48, 3)
	require.Equal(t, [2]int{w, h}, [2]int{a.width, a.height})
}

// causalProbs returns n × h rows of t × t causal attention weights (row i spread over keys ≤ i).
func causalProbs(rng *rand.Rand, n, h, t int) []float32 {
	out := make([]float32, n*h*t*t)
	for m := range n * h {
		for i := range t {
			row := out[(m*t+i)*t : (m*t+i+1)*t]
			var sum float64
			w := make([]float64, i+1)
			for j := range w {
				w[j] = math.Exp(2 * rng.NormFloat64())
				sum += w[j]
			}
			for j := range w {
				row[j] = float32(w[j] / sum)
			}
		}
	}
	return out
}

func rgbOf(img image.Image, x, y int) [3]uint8 {
	r, g, b, _ := img.At(x, y).RGBA()
	return [3]uint8{uint8(r >> 8), uint8(g >> 8), uint8(b >> 8)}
}

func lut(i int) [3]uint8 { c := viridis[i]; return [3]uint8{c.R, c.G, c.B} }

func TestIsAttention(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	probs := causalProbs(rng, 1, 2, 6)
	fr := func(shape []int64, data []float32) *frame {
		return &frame{full: shape, shape: shape, data: data, channels: 16}
	}
	require.True(t, isAttention(fr([]int64{1, 2, 6, 6}, probs)))
	require.True(t, isAttention(fr([]int64{2, 6, 6}, probs)), "[N, T, T]")
	require.False(t, isAttention(fr([]int64{1, 12, 6}, probs)), "not square")
	require.False(t, isAttention(fr([]int64{12, 6}, probs)), "rank 2")
	half := make([]float32, len(probs))
	for i, v := range probs {
		half[i] = v / 2
	}
	require.False(t, isAttention(fr([]int64{1, 2, 6, 6}, half)), "rows summing to 1/2")
	cut := &frame{full: []int64{1, 2, 12, 12}, shape: []int64{1, 2, 12, 6}, data: half, channels: 16}
	require.False(t, isAttention(cut), "a cut that changes the last dims")
	neg := append([]float32(nil), probs...)
	neg[0], neg[7] = -0.5, 1.5
	require.False(t, isAttention(fr([]int64{1, 2, 6, 6}, neg)), "a negative value")
	nan := append([]float32(nil), probs...)
	nan[0] = float32(math.NaN())
	require.False(t, isAttention(fr([]int64{1, 2, 6, 6}, nan)))
	randn := make([]float32, 72)
	for i := range randn {
		randn[i] = float32(rng.NormFloat64())
	}
	require.False(t, isAttention(fr([]int64{1, 2, 6, 6}, randn)), "a conv's square maps")
}

func TestSequenceHeatMap(t *testing.T) {
	// [2, 20, 30]: value r·30 + c, so the colours rise along each row and down the map.
	data := make([]float32, 2*20*30)
	for i := range data {
		data[i] = float32(i % 600)
	}
	fr := &frame{layer: "transformer.h.0", kind: "Module", full: []int64{2, 20, 30}, shape: []int64{2, 20, 30}, data: data}
	img, err := render(fr)
	require.NoError(t, err)
	l := layoutSeq(2, 20, 30, 0)
	w, h := wantSeqSize(2, 20, 30, l.cellW, l.cellH)
	require.Equal(t, image.Rect(0, 0, w, h), img.Bounds())
	require.Greater(t, w, 300, "wide enough to read")
	require.Greater(t, h, 2*150, "tall enough to read")
	cell := func(sample, r, c int) [3]uint8 {
		x := margin + l.gutter + c*l.cellW + l.cellW/2
		y := margin + headerH + bandH + sample*(l.blockH+sampleGap) + 2*bandH + r*l.cellH + l.cellH/2
		return rgbOf(img, x, y)
	}
	for s := range 2 {
		require.Equal(t, lut(0), cell(s, 0, 0), "below the 1st percentile: the darkest")
		require.Equal(t, lut(levels-1), cell(s, 19, 29), "above the 99th: the brightest")
		mid := cell(s, 10, 0)
		require.NotEqual(t, lut(0), mid)
		require.NotEqual(t, lut(levels-1), mid)
	}

	// A long sequence is drawn up to maxSeqRows positions, a wide one up to maxSeqCols channels.
	big := &frame{layer: "rnn", kind: "LSTM", full: []int64{1, 300, 600}, shape: []int64{1, 300, 600},
		data: make([]float32, 300*600)}
	img, err = render(big)
	require.NoError(t, err)
	w, h = wantSeqSize(1, maxSeqRows, maxSeqCols, 1, 1)
	require.Equal(t, image.Rect(0, 0, w, h), img.Bounds())
}

func TestAttentionMaps(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	const T = 12
	fr := &frame{layer: "transformer.h.0.attn.probs", kind: "Module", full: []int64{1, 6, T, T}, shape: []int64{1, 4, T, T},
		data: causalProbs(rng, 1, 4, T), channels: 4}
	img, err := render(fr)
	require.NoError(t, err)
	l := layoutAttn(1, 4, T, 0)
	w, h := wantAttnSize(1, 4, T, l.cell)
	require.Equal(t, image.Rect(0, 0, w, h), img.Bounds(), "4 of 6 heads")
	px := func(head, q, k int) [3]uint8 {
		x := margin + (head%l.cols)*(l.tileW+2*gap) + l.gutter + k*l.cell + l.cell/2
		y := margin + headerH + bandH + (head/l.cols)*(l.tileH+gap) + bandH + q*l.cell + l.cell/2
		return rgbOf(img, x, y)
	}
	for head := range 4 {
		require.Equal(t, lut(levels-1), px(head, 0, 0), "the first query attends to itself alone")
		for q := range T {
			for k := q + 1; k < T; k++ {
				require.Equal(t, lut(0), px(head, q, k), "masked keys are 0: the darkest")
			}
		}
	}

	// [N, T, T]: one map per sample
	fr3 := &frame{layer: "attn", kind: "Module", full: []int64{2, T, T}, shape: []int64{2, T, T}, data: causalProbs(rng, 2, 1, T)}
	img, err = render(fr3)
	require.NoError(t, err)
	w, h = wantAttnSize(2, 1, T, layoutAttn(2, 1, T, 0).cell)
	require.Equal(t, image.Rect(0, 0, w, h), img.Bounds())

	// the same shape with values that are no distributions is a conv's maps
	data := make([]float32, 4*T*T)
	for i := range data {
		data[i] = float32(rng.NormFloat64())
	}
	conv := &frame{layer: "conv", kind: "Conv2d", full: []int64{1, 4, T, T}, shape: []int64{1, 4, T, T}, data: data, channels: 4}
	img, err = render(conv)
	require.NoError(t, err)
	w, h = wantMapSize(1, 4, T, T, autoScale(T, T))
	require.Equal(t, image.Rect(0, 0, w, h), img.Bounds())
}

// probe is the identity: a named point whose value forward hooks see.
type probe struct{ nn.Node }

func (p *probe) Forward(x *bridge.Tensor) *bridge.Tensor { return p.Fire(x, x) }

// selfAttn is causal single-head self-attention without weights: [B, T, C] → [B, T, C], its
// probabilities [B, T, T] through the probe.
type selfAttn struct {
	nn.Node
	probs *probe
}

func (a *selfAttn) Forward(x *bridge.Tensor) *bridge.Tensor {
	s := x.Shape()
	att := aten.MulScalar(aten.Bmm(x, aten.Transpose(x, 1, 2)), aten.FloatScalar(1/math.Sqrt(float64(s[2]))))
	ones := aten.Ones([]int64{s[1], s[1]}, aten.Options{DType: aten.D(bridge.Bool)})
	att = aten.MaskedFillScalar(att, aten.LogicalNot(aten.Tril(ones, 0)), aten.FloatScalar(math.Inf(-1)))
	att = a.probs.Forward(aten.Softmax(att, -1, nil))
	return a.Fire(x, aten.Bmm(att, x))
}

// Through the hooks: a sequence block and its attention probabilities are drawn as a token ×
// channel map and a T × T map, and a step that accumulates gradients over micro-batches
// (forward_end and backward_end once per micro-batch, as trainer.StepWith dispatches them) is
// captured once, under its own step number.
func TestSequenceModelThroughHooks(t *testing.T) {
	bridge.ManualSeed(5)
	attn := &selfAttn{probs: &probe{}}
	attn.Add("probs", attn.probs)
	model := nn.NewSequential(attn)
	x := bridge.Randn(bridge.Shape{4, 10, 24})
	env := &torchenv.Env{Model: model, RunDir: t.TempDir(), Log: func(string) {}}
	f, err := New("fv", map[string]any{"every": 2, "samples": 1, "layers": []any{"0", "0.probs"}})
	require.NoError(t, err)
	require.NoError(t, f.OnAttach(env))
	for step := range 5 {
		env.Step = int64(step)
		require.NoError(t, f.Handle(torchenv.TrainStepStart, env))
		for range 3 { // micro-batches
			model.Forward(x)
			require.NoError(t, f.Handle(torchenv.ForwardEnd, env))
			require.NoError(t, f.Handle(torchenv.BackwardEnd, env))
		}
		for _, ev := range []string{torchenv.OptimizerStepEnd, torchenv.TrainStepEnd, torchenv.TrainBatchEnd} {
			require.NoError(t, f.Handle(ev, env))
		}
	}
	require.NoError(t, f.Close())
	require.Equal(t, int64(6), f.Stats().Captured, "steps 0, 2, 4 × 2 layers, one micro-batch each")
	require.Equal(t, []string{"/0", "/0.probs", "2/0", "2/0.probs", "4/0", "4/0.probs"}, stepsWritten(t, f.Dir()))
	img := decodePNG(t, filepath.Join(f.Dir(), fileBase(2, "0")+".png"))
	l := layoutSeq(1, 10, 24, 0)
	w, h := wantSeqSize(1, 10, 24, l.cellW, l.cellH)
	require.Equal(t, image.Rect(0, 0, w, h), img.Bounds(), "[1, 10, 24] as a token × channel map")
	img = decodePNG(t, filepath.Join(f.Dir(), fileBase(2, "0.probs")+".png"))
	w, h = wantAttnSize(1, 1, 10, layoutAttn(1, 1, 10, 0).cell)
	require.Equal(t, image.Rect(0, 0, w, h), img.Bounds(), "[1, 10, 10] as attention")
}

// A sequence's capture copies the positions and channels that are drawn: a long attention map
// stays square.
func TestSequenceCaptureIsBounded(t *testing.T) {
	cfg := &hookConfig{every: 1, samples: 1, channels: 16}
	for _, c := range []struct{ in, want []int64 }{
		{[]int64{2, 300, 600}, []int64{1, maxSeqRows, maxSeqCols}},
		{[]int64{2, 300, 300}, []int64{1, maxSeqRows, maxSeqRows}},
		{[]int64{2, 40, 30}, []int64{1, 40, 30}},
	} {
		fr, err := capture("l", "Module", bridge.Randn(bridge.Shape(c.in)), 0, cfg)
		require.NoError(t, err)
		require.Equal(t, c.want, fr.shape, "%v", c.in)
		require.Equal(t, c.in, fr.full)
		require.Len(t, fr.data, int(c.want[0]*c.want[1]*c.want[2]))
	}
	npy := *cfg
	npy.npy = true
	fr, err := capture("l", "Module", bridge.Randn(bridge.Shape{2, 300, 600}), 0, &npy)
	require.NoError(t, err)
	require.Equal(t, []int64{1, 300, 600}, fr.shape, "npy keeps it all")
	_, err = render(fr)
	require.NoError(t, err)
}
