package nn_test

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hotcb/hotcb/bridge"
	"github.com/hotcb/hotcb/bridge/nn"
	"github.com/hotcb/hotcb/internal/torchpy"
)

// lossScript evaluates each case's expression on its inputs with torch.nn.functional and prints
// the loss and the gradients of sum(loss * w) with respect to the inputs that require grad.
const lossScript = `
import json, math, sys, warnings, torch
import torch.nn.functional as F
warnings.simplefilter("ignore")
dtypes = {"float32": torch.float32, "float64": torch.float64, "int64": torch.int64}
def fin(xs):
    return [x if math.isfinite(x) else str(x) for x in xs]
out = {}
for c in json.load(sys.stdin):
    v = {}
    for n, x in c["inputs"].items():
        t = torch.tensor(x["data"], dtype=dtypes[x["dtype"]]).reshape(x["shape"])
        v[n] = t.requires_grad_() if x["grad"] else t
    loss = eval(c["expr"], {"F": F, "torch": torch}, dict(v))
    w = torch.tensor(c["w"], dtype=loss.dtype).reshape(loss.shape)
    (loss * w).sum().backward()
    out[c["name"]] = {"shape": list(loss.shape), "loss": fin(loss.detach().reshape(-1).tolist()),
        "grads": {n: fin(v[n].grad.reshape(-1).tolist()) for n, x in c["inputs"].items() if x["grad"]}}
print(json.dumps(out))
`

type lossInput struct {
	Data  []float64 `json:"data"`
	Shape []int64   `json:"shape"`
	DType string    `json:"dtype"`
	Grad  bool      `json:"grad"`
}

type lossCase struct {
	Name   string               `json:"name"`
	Inputs map[string]lossInput `json:"inputs"`
	Expr   string               `json:"expr"`
	W      []float64            `json:"w"` // the weights of the gradient loss, one per loss element
	run    func(v map[string]*bridge.Tensor) *bridge.Tensor
}

type lossResult struct {
	Shape []int64                `json:"shape"`
	Loss  []lossFloat            `json:"loss"`
	Grads map[string][]lossFloat `json:"grads"`
}

// lossFloat is a number in the Python script's output, where "inf", "-inf" and "nan" stand for
// the values JSON cannot hold.
type lossFloat float64

func (f *lossFloat) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		switch s {
		case "inf":
			*f = lossFloat(math.Inf(1))
		case "-inf":
			*f = lossFloat(math.Inf(-1))
		case "nan":
			*f = lossFloat(math.NaN())
		default:
			return fmt.Errorf("not a number: %q", s)
		}
		return nil
	}
	var x float64
	err := json.Unmarshal(b, &x)
	*f = lossFloat(x)
	return err
}

// lossGen makes test inputs; values are float32 (exactly representable in JSON as float64).
type lossGen struct{ r *rand.Rand }

func (g lossGen) uni(lo, hi float64, shape ...int64) lossInput {
	n := bridge.Shape(shape).Numel()
	d := make([]float64, n)
	for i := range d {
		d[i] = float64(float32(lo + (hi-lo)*g.r.Float64()))
	}
	return lossInput{Data: d, Shape: shape, DType: "float32", Grad: true}
}

func (g lossGen) normal(shape ...int64) lossInput {
	in := g.uni(0, 1, shape...)
	for i := range in.Data {
		in.Data[i] = float64(float32(g.r.NormFloat64()))
	}
	return in
}

// logSoftmax makes rows of log-probabilities over the last dim.
func (g lossGen) logSoftmax(shape ...int64) lossInput {
	in := g.normal(shape...)
	c := int(shape[len(shape)-1])
	for i := 0; i < len(in.Data); i += c {
		m, s := math.Inf(-1), 0.0
		for _, x := range in.Data[i : i+c] {
			m = max(m, x)
		}
		for _, x := range in.Data[i : i+c] {
			s += math.Exp(x - m)
		}
		for j := i; j < i+c; j++ {
			in.Data[j] = float64(float32(in.Data[j] - m - math.Log(s)))
		}
	}
	return in
}

func (g lossGen) probs(shape ...int64) lossInput {
	in := g.logSoftmax(shape...)
	for i, x := range in.Data {
		in.Data[i] = float64(float32(math.Exp(x)))
	}
	return in
}

func lossSigns(vals ...float64) lossInput {
	return lossInput{Data: vals, Shape: []int64{int64(len(vals))}, DType: "float32"}
}

func lossInts(shape []int64, vals ...int64) lossInput {
	d := make([]float64, len(vals))
	for i, v := range vals {
		d[i] = float64(v)
	}
	return lossInput{Data: d, Shape: shape, DType: "int64"}
}

func lossConst(in lossInput) lossInput { in.Grad = false; return in }

func (in lossInput) tensor() *bridge.Tensor {
	var t *bridge.Tensor
	switch in.DType {
	case "int64":
		d := make([]int64, len(in.Data))
		for i, x := range in.Data {
			d[i] = int64(x)
		}
		t = bridge.FromSlice(d, in.Shape...)
	case "float64":
		t = bridge.FromSlice(in.Data, in.Shape...)
	default:
		d := make([]float32, len(in.Data))
		for i, x := range in.Data {
			d[i] = float32(x)
		}
		t = bridge.FromSlice(d, in.Shape...)
	}
	if len(in.Shape) == 0 {
		t = t.Reshape() // FromSlice makes a vector
	}
	if in.Grad {
		t.SetRequiresGrad(true)
	}
	return t
}

var lossReductions = []struct {
	py string
	r  bridge.Reduction
}{{"mean", bridge.ReduceMean}, {"sum", bridge.ReduceSum}, {"none", bridge.ReduceNone}}

func lossCases() []lossCase {
	g := lossGen{rand.New(rand.NewPCG(7, 11))}
	var cs []lossCase
	type M = map[string]*bridge.Tensor
	type I = map[string]lossInput
	// add adds a case for each reduction; expr has a %s for the reduction's Python name.
	add := func(name string, in I, expr string, run func(v M, r bridge.Reduction) *bridge.Tensor) {
		for _, red := range lossReductions {
			cs = append(cs, lossCase{Name: name + "/" + red.py, Inputs: in, Expr: fmt.Sprintf(expr, red.py),
				run: func(v M) *bridge.Tensor { return run(v, red.r) }})
		}
	}

	// BCE, with and without (broadcast) weights.
	bceIn := func(w *lossInput) I {
		in := I{"x": g.uni(0.02, 0.98, 3, 4), "y": lossConst(g.uni(0, 1, 3, 4))}
		if w != nil {
			in["w"] = *w
		}
		return in
	}
	add("bce", bceIn(nil), "F.binary_cross_entropy(x, y, reduction='%s')", func(v M, r bridge.Reduction) *bridge.Tensor {
		return nn.BCELoss(v["x"], v["y"], nn.BCEOptions{Reduction: r})
	})
	w4 := lossConst(g.uni(0.5, 2, 4))
	add("bce weight broadcast", bceIn(&w4), "F.binary_cross_entropy(x, y, w, reduction='%s')", func(v M, r bridge.Reduction) *bridge.Tensor {
		return nn.BCELoss(v["x"], v["y"], nn.BCEOptions{Weight: v["w"], Reduction: r})
	})
	w34 := lossConst(g.uni(0.5, 2, 3, 4))
	add("bce weight", bceIn(&w34), "F.binary_cross_entropy(x, y, weight=w, reduction='%s')", func(v M, r bridge.Reduction) *bridge.Tensor {
		return nn.BCELoss(v["x"], v["y"], nn.BCEOptions{Weight: v["w"], Reduction: r})
	})
	bceEdge := I{"x": {Data: []float64{0, 1, 0.5, 1e-30}, Shape: []int64{4}, DType: "float32", Grad: true}, "y": lossSigns(1, 0, 1, 0.5)}
	add("bce log clamped at 0 and 1", bceEdge, "F.binary_cross_entropy(x, y, reduction='%s')", func(v M, r bridge.Reduction) *bridge.Tensor {
		return nn.BCELoss(v["x"], v["y"], nn.BCEOptions{Reduction: r})
	})

	// KL divergence: probabilities or log-probabilities as target, and batchmean.
	add("kl_div", I{"x": g.logSoftmax(3, 5), "y": g.probs(3, 5)}, "F.kl_div(x, y, reduction='%s')",
		func(v M, r bridge.Reduction) *bridge.Tensor {
			return nn.KLDivLoss(v["x"], v["y"], nn.KLDivOptions{Reduction: r})
		})
	add("kl_div log_target", I{"x": g.logSoftmax(2, 3, 4), "y": g.logSoftmax(2, 3, 4)}, "F.kl_div(x, y, reduction='%s', log_target=True)",
		func(v M, r bridge.Reduction) *bridge.Tensor {
			return nn.KLDivLoss(v["x"], v["y"], nn.KLDivOptions{Reduction: r, LogTarget: true})
		})
	for _, lt := range []bool{false, true} {
		name, y := "kl_div batchmean", g.probs(4, 5)
		if lt {
			name, y = name+" log_target", g.logSoftmax(4, 5)
		}
		cs = append(cs, lossCase{Name: name, Inputs: I{"x": g.logSoftmax(4, 5), "y": y},
			Expr: fmt.Sprintf("F.kl_div(x, y, reduction='batchmean', log_target=%v)", map[bool]string{false: "False", true: "True"}[lt]),
			run: func(v M) *bridge.Tensor {
				return nn.KLDivLoss(v["x"], v["y"], nn.KLDivOptions{BatchMean: true, LogTarget: lt})
			}})
	}

	// Smooth L1 and Huber: several beta/delta (0 is L1 for smooth L1), broadcast targets.
	for _, beta := range []float64{1, 0.5, 0} {
		add(fmt.Sprintf("smooth_l1 beta %v", beta), I{"x": g.normal(3, 4), "y": g.normal(3, 4)},
			"F.smooth_l1_loss(x, y, reduction='%s', beta="+fmt.Sprint(beta)+")", func(v M, r bridge.Reduction) *bridge.Tensor {
				return nn.SmoothL1Loss(v["x"], v["y"], beta, r)
			})
	}
	add("smooth_l1 broadcast target", I{"x": g.normal(3, 4), "y": g.normal(4)}, "F.smooth_l1_loss(x, y, reduction='%s', beta=0.3)",
		func(v M, r bridge.Reduction) *bridge.Tensor { return nn.SmoothL1Loss(v["x"], v["y"], 0.3, r) })
	for _, delta := range []float64{1, 0.7, 2.5} {
		add(fmt.Sprintf("huber delta %v", delta), I{"x": g.normal(3, 4), "y": g.normal(3, 4)},
			"F.huber_loss(x, y, reduction='%s', delta="+fmt.Sprint(delta)+")", func(v M, r bridge.Reduction) *bridge.Tensor {
				return nn.HuberLoss(v["x"], v["y"], delta, r)
			})
	}
	add("huber broadcast input", I{"x": g.normal(3, 1), "y": g.normal(3, 4)}, "F.huber_loss(x, y, reduction='%s', delta=0.5)",
		func(v M, r bridge.Reduction) *bridge.Tensor { return nn.HuberLoss(v["x"], v["y"], 0.5, r) })

	// Cosine embedding, margin ranking.
	for _, margin := range []float64{0, 0.2, -0.3} {
		add(fmt.Sprintf("cosine_embedding margin %v", margin), I{"a": g.normal(5, 3), "b": g.normal(5, 3), "y": lossSigns(1, -1, -1, 1, -1)},
			"F.cosine_embedding_loss(a, b, y, margin="+fmt.Sprint(margin)+", reduction='%s')", func(v M, r bridge.Reduction) *bridge.Tensor {
				return nn.CosineEmbeddingLoss(v["a"], v["b"], v["y"], margin, r)
			})
	}
	add("cosine_embedding unbatched", I{"a": g.normal(4), "b": g.normal(4), "y": {Data: []float64{-1}, Shape: []int64{}, DType: "float32"}},
		"F.cosine_embedding_loss(a, b, y, margin=-0.5, reduction='%s')", func(v M, r bridge.Reduction) *bridge.Tensor {
			return nn.CosineEmbeddingLoss(v["a"], v["b"], v["y"], -0.5, r)
		})
	for _, margin := range []float64{0, 0.3} {
		add(fmt.Sprintf("margin_ranking margin %v", margin), I{"a": g.normal(6), "b": g.normal(6), "y": lossSigns(1, -1, 1, 1, -1, -1)},
			"F.margin_ranking_loss(a, b, y, margin="+fmt.Sprint(margin)+", reduction='%s')", func(v M, r bridge.Reduction) *bridge.Tensor {
				return nn.MarginRankingLoss(v["a"], v["b"], v["y"], margin, r)
			})
	}

	// Triplet: defaults, then margin, p, eps and swap.
	trip := func() I { return I{"a": g.normal(5, 4), "p": g.normal(5, 4), "n": g.normal(5, 4)} }
	add("triplet defaults", trip(), "F.triplet_margin_loss(a, p, n, reduction='%s')", func(v M, r bridge.Reduction) *bridge.Tensor {
		o := nn.DefaultTriplet()
		o.Reduction = r
		return nn.TripletMarginLoss(v["a"], v["p"], v["n"], o)
	})
	add("triplet margin p1 swap", trip(), "F.triplet_margin_loss(a, p, n, margin=2.0, p=1, swap=True, reduction='%s')",
		func(v M, r bridge.Reduction) *bridge.Tensor {
			return nn.TripletMarginLoss(v["a"], v["p"], v["n"], nn.TripletOptions{Margin: 2, P: 1, Eps: 1e-6, Swap: true, Reduction: r})
		})
	add("triplet p3 eps", trip(), "F.triplet_margin_loss(a, p, n, margin=0.5, p=3, eps=1e-3, reduction='%s')",
		func(v M, r bridge.Reduction) *bridge.Tensor {
			return nn.TripletMarginLoss(v["a"], v["p"], v["n"], nn.TripletOptions{Margin: 0.5, P: 3, Eps: 1e-3, Reduction: r})
		})
	cs = append(cs, lossCase{Name: "triplet no options", Inputs: trip(), Expr: "F.triplet_margin_loss(a, p, n)",
		run: func(v M) *bridge.Tensor { return nn.TripletMarginLoss(v["a"], v["p"], v["n"]) }})

	// CTC: padded targets with length tensors, concatenated targets with length slices, blank,
	// and an impossible alignment with and without zero_infinity.
	ctcIn := func() I {
		return I{"lp": g.logSoftmax(8, 3, 5), "t": lossInts([]int64{3, 4}, 1, 2, 2, 3, 4, 1, 0, 0, 2, 3, 4, 4),
			"il": lossInts([]int64{3}, 8, 6, 7), "tl": lossInts([]int64{3}, 4, 2, 3)}
	}
	add("ctc", ctcIn(), "F.ctc_loss(lp, t, il, tl, reduction='%s')", func(v M, r bridge.Reduction) *bridge.Tensor {
		return nn.CTCLoss(v["lp"], v["t"], v["il"], v["tl"], nn.CTCOptions{Reduction: r})
	})
	ctcCat := I{"lp": g.logSoftmax(7, 2, 4), "t": lossInts([]int64{5}, 0, 1, 1, 2, 0)}
	add("ctc concatenated targets blank 3", ctcCat, "F.ctc_loss(lp, t, [7, 5], [3, 2], blank=3, reduction='%s')",
		func(v M, r bridge.Reduction) *bridge.Tensor {
			return nn.CTCLossLengths(v["lp"], v["t"], []int64{7, 5}, []int64{3, 2}, nn.CTCOptions{Blank: 3, Reduction: r})
		})
	for _, zi := range []bool{false, true} {
		// sample 1 has input length 2 for a target of 3: impossible, infinite loss.
		in := I{"lp": g.logSoftmax(6, 2, 4), "t": lossInts([]int64{2, 3}, 1, 2, 3, 1, 1, 3), "il": lossInts([]int64{2}, 6, 2), "tl": lossInts([]int64{2}, 3, 3)}
		py := map[bool]string{false: "False", true: "True"}[zi]
		add("ctc impossible zero_infinity "+py, in, "F.ctc_loss(lp, t, il, tl, zero_infinity="+py+", reduction='%s')",
			func(v M, r bridge.Reduction) *bridge.Tensor {
				return nn.CTCLoss(v["lp"], v["t"], v["il"], v["tl"], nn.CTCOptions{Reduction: r, ZeroInfinity: zi})
			})
	}

	// Poisson NLL: log input or rates, full, eps.
	for _, c := range []struct {
		logInput, full bool
		eps            float64
	}{{true, false, 1e-8}, {true, true, 1e-8}, {false, false, 1e-8}, {false, true, 0.1}} {
		x := g.normal(3, 4)
		if !c.logInput {
			x = g.uni(0.01, 4, 3, 4)
		}
		py := func(b bool) string { return map[bool]string{false: "False", true: "True"}[b] }
		add(fmt.Sprintf("poisson_nll log_input %v full %v eps %v", c.logInput, c.full, c.eps),
			I{"x": x, "y": lossConst(g.uni(0, 6, 3, 4))},
			fmt.Sprintf("F.poisson_nll_loss(x, y, log_input=%s, full=%s, eps=%v, reduction='%%s')", py(c.logInput), py(c.full), c.eps),
			func(v M, r bridge.Reduction) *bridge.Tensor {
				return nn.PoissonNLLLoss(v["x"], v["y"], nn.PoissonNLLOptions{LogInput: c.logInput, Full: c.full, Eps: c.eps, Reduction: r})
			})
	}
	cs = append(cs, lossCase{Name: "poisson_nll no options", Inputs: I{"x": g.normal(6), "y": lossConst(g.uni(0, 3, 6))},
		Expr: "F.poisson_nll_loss(x, y)", run: func(v M) *bridge.Tensor { return nn.PoissonNLLLoss(v["x"], v["y"]) }})
	return cs
}

// lossGradWeights are the weights of the gradient loss sum(loss * w): not all equal, so that a
// wrong reduction in the backward shows.
func lossGradWeights(n int64) []float64 {
	w := make([]float64, n)
	for i := range w {
		w[i] = float64(float32(math.Sin(0.37*float64(i) + 1)))
	}
	return w
}

// TestLossesMatchPyTorch cross-checks every loss of loss.go, in every reduction, against
// torch.nn.functional: values and gradients within 1e-5 (relative to the value's magnitude when
// above 1), counting those equal bit for bit.
func TestLossesMatchPyTorch(t *testing.T) {
	torchpy.Interpreter(t)
	cases := lossCases()
	// Go first: the shape of each loss gives the gradient weights Python uses too.
	type goOut struct {
		loss  *bridge.Tensor
		grads map[string]*bridge.Tensor
	}
	start := time.Now()
	outs := make([]goOut, len(cases))
	for i := range cases {
		c := &cases[i]
		v := map[string]*bridge.Tensor{}
		for n, in := range c.Inputs {
			v[n] = in.tensor()
		}
		loss := c.run(v)
		c.W = lossGradWeights(loss.Numel())
		w := bridge.FromSlice(lossF32(c.W), loss.Shape()...)
		loss.Mul(w).Sum().Backward()
		outs[i] = goOut{loss: loss.Detach(), grads: map[string]*bridge.Tensor{}}
		for n, in := range c.Inputs {
			if in.Grad {
				outs[i].grads[n] = v[n].Grad()
			}
		}
	}
	goTime := time.Since(start)

	var want map[string]lossResult
	torchpy.RunJSON(t, lossScript, cases, &want)

	compared, exact, worst := 0, 0, 0.0
	cmp := func(t *testing.T, what string, got *bridge.Tensor, refs []lossFloat) {
		t.Helper()
		require.NotNil(t, got, "%s: PyTorch has it, Go has none", what)
		g := got.Float64s()
		ref := make([]float64, len(refs))
		for i, r := range refs {
			ref[i] = float64(r)
		}
		require.Len(t, g, len(ref), what)
		for i := range g {
			compared++
			if g[i] == ref[i] || (math.IsNaN(g[i]) && math.IsNaN(ref[i])) {
				exact++
				continue
			}
			d := math.Abs(g[i]-ref[i]) / max(1, math.Abs(ref[i]))
			worst = max(worst, d)
			require.LessOrEqual(t, d, 1e-5, "%s[%d]: Go %v, PyTorch %v", what, i, g[i], ref[i])
		}
	}
	for i, c := range cases {
		t.Run(c.Name, func(t *testing.T) {
			w, ok := want[c.Name]
			require.True(t, ok)
			require.Equal(t, w.Shape, []int64(outs[i].loss.Shape()), "loss shape")
			cmp(t, "loss", outs[i].loss, w.Loss)
			require.Len(t, outs[i].grads, len(w.Grads))
			for n, g := range w.Grads {
				cmp(t, "gradient of "+n, outs[i].grads[n], g)
			}
		})
	}
	t.Logf("%d loss cases: %d values and gradient elements compared, %d equal bit for bit, largest difference %g; Go took %v",
		len(cases), compared, exact, worst, goTime.Round(time.Millisecond))
}

func lossF32(xs []float64) []float32 {
	out := make([]float32, len(xs))
	for i, x := range xs {
		out[i] = float32(x)
	}
	return out
}

func TestLossArgumentErrors(t *testing.T) {
	x := bridge.Full(bridge.Shape{3, 4}, 0.5)
	y := bridge.Zeros(bridge.Shape{3, 4})
	cases := []struct {
		name string
		f    func()
		want string
	}{
		{"bce target shape", func() { nn.BCELoss(x, bridge.Zeros(bridge.Shape{4})) },
			"torch: nn.BCELoss: the target's shape [4] differs from the input's shape [3, 4]"},
		{"bce weight shape", func() { nn.BCELoss(x, y, nn.BCEOptions{Weight: bridge.Ones(bridge.Shape{3})}) },
			"nn.BCELoss: the weight's shape [3] does not broadcast to the target's shape [3, 4]"},
		{"bce nil input", func() { nn.BCELoss(nil, y) }, "nn.BCELoss: input is nil"},
		{"unknown reduction", func() { nn.HuberLoss(x, y, 1, bridge.Reduction(9)) }, "nn.HuberLoss: unknown reduction 9"},
		{"two lossReductions", func() { nn.SmoothL1Loss(x, y, 1, bridge.ReduceSum, bridge.ReduceSum) }, "one reduction at most"},
		{"smooth l1 shapes", func() { nn.SmoothL1Loss(x, bridge.Zeros(bridge.Shape{2, 4}), 1) },
			"nn.SmoothL1Loss: the input's shape [3, 4] and the target's shape [2, 4] do not broadcast"},
		{"kl batchmean and sum", func() {
			nn.KLDivLoss(x, y, nn.KLDivOptions{BatchMean: true, Reduction: bridge.ReduceSum})
		}, "nn.KLDivLoss: BatchMean is a reduction of its own"},
		{"margin ranking dims", func() { nn.MarginRankingLoss(x, y, bridge.Ones(bridge.Shape{3}), 0) },
			"nn.MarginRankingLoss: x1, x2 and target must have as many dims"},
		{"libtorch's own check", func() { nn.SmoothL1Loss(x, y, -1) }, "smooth_l1_loss"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := bridge.Try(c.f)
			require.Error(t, err)
			require.Contains(t, err.Error(), c.want)
		})
	}
}
